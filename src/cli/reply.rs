//! `switchboard reply <session> "text"`: answer an agent from the command line. The message
//! waits in the agent's queue (`mark_as_read: false`), so a waiting agent receives it.

use std::process::ExitCode;

use clap::Args;
use uuid::Uuid;

use super::Outcome;
use crate::config::ServerArgs;

#[derive(Args, Debug)]
pub struct ReplyArgs {
    /// The session to answer (as `switchboard inbox` lists it).
    session: Uuid,

    /// What to say.
    text: String,

    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: ReplyArgs) -> Outcome {
    let client = args.server.client("reply")?;
    client
        .send_user_message(args.session, &args.text, false)
        .await?;
    Ok(ExitCode::SUCCESS)
}
