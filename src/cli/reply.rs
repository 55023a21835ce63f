//! `switchboard reply <session> "text" [--to <question>]`: answer an agent from the command
//! line. The message waits in the agent's queue (`mark_as_read: false`), so a waiting agent
//! receives it. With `--to` it answers exactly that question (`switchboard inbox` lists each
//! open one with its id); without, the session's newest open question, as the server decides
//! for every message that names none.

use std::process::ExitCode;

use clap::Args;
use uuid::Uuid;

use super::Outcome;
use crate::client::Answering;
use crate::config::ServerArgs;

#[derive(Args, Debug)]
pub struct ReplyArgs {
    /// The session to answer (as `switchboard inbox` lists it).
    session: Uuid,

    /// What to say.
    text: String,

    /// The question this answers (its id, as `switchboard inbox` lists it).
    #[arg(long = "to", value_name = "QUESTION")]
    to: Option<Uuid>,

    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: ReplyArgs) -> Outcome {
    let client = args.server.client("reply")?;
    let answering = args.to.map_or(Answering::Newest, Answering::Question);
    let (_, answered) = client
        .send_user_message(args.session, &args.text, false, answering)
        .await?;
    match answered {
        Some(question) => eprintln!("answered question {question}"),
        None => eprintln!("sent (no question was open)"),
    }
    Ok(ExitCode::SUCCESS)
}
