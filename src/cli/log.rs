//! `switchboard log "step"`: a script reports progress. It prints the session id, so the
//! first step starts a session the next ones (and `ask`) continue:
//! `export SWITCHBOARD_SESSION=$(switchboard log "build started")`.

use std::process::ExitCode;

use clap::Args;
use uuid::Uuid;

use super::Outcome;
use crate::client::AgentMessage;
use crate::config::ServerArgs;
use crate::wire::MessageJson;

#[derive(Args, Debug)]
pub struct LogArgs {
    /// What the script is doing.
    step: String,

    /// Log to this session (default: a new one).
    #[arg(long, env = "SWITCHBOARD_SESSION")]
    session: Option<Uuid>,

    /// The agent type a new session is started with.
    #[arg(long, default_value = "shell")]
    agent_type: String,

    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: LogArgs) -> Outcome {
    let client = args.server.client("log")?;
    let step = AgentMessage::step(
        args.session.unwrap_or_else(Uuid::now_v7),
        &args.agent_type,
        args.step,
    );
    let sent = client.send_agent_message(&step).await?;
    show_earlier(&sent.queued_user_messages);
    println!("{}", sent.session_id);
    Ok(ExitCode::SUCCESS)
}

/// What the person wrote that the script had not received: sending moved past it, so it is
/// shown (on standard error, beside the script's own output) rather than silently dropped.
pub fn show_earlier(messages: &[MessageJson]) {
    for message in messages {
        eprintln!("message from the person: {}", message.content);
    }
}
