//! `switchboard inbox`: the questions waiting for an answer, one per line (tab-separated:
//! session, agent type, asked at, question), or one JSON object per line with `--json`.
//! Answer one with `switchboard reply <session> "..."`.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use uuid::Uuid;

use super::Outcome;
use crate::client::{Client, ClientError, SessionSummary};
use crate::config::ServerArgs;
use ::projections::SenderType;

/// Sessions read per request.
const PAGE: u32 = 100;

#[derive(Args, Debug)]
pub struct InboxArgs {
    /// One JSON object per line: session_id, agent_type, question_id, question, asked_at.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Serialize)]
struct OpenQuestion {
    session_id: Uuid,
    agent_type: String,
    question_id: Uuid,
    question: String,
    asked_at: String,
}

pub async fn run(args: InboxArgs) -> Outcome {
    let client = args.server.client("inbox")?;
    let mut out = std::io::stdout().lock();
    let mut before: Option<String> = None;
    loop {
        let page = client
            .sessions("AWAITING_INPUT", before.as_deref(), PAGE)
            .await?;
        for session in &page {
            let Some(question) = open_question(&client, session).await? else {
                continue;
            };
            if args.json {
                serde_json::to_writer(&mut out, &question)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    question.session_id,
                    one_line(&question.agent_type),
                    question.asked_at,
                    one_line(&question.question)
                )?;
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => {
                before = Some(last.last_activity_at.clone());
            }
            _ => break,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The session's newest agent message that asks for input.
async fn open_question(
    client: &Client,
    session: &SessionSummary,
) -> Result<Option<OpenQuestion>, ClientError> {
    let messages = match client.messages(session.id).await {
        Ok(messages) => messages,
        // Ended or gone since it was listed.
        Err(ClientError::Refused { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(messages
        .into_iter()
        .rev()
        .find(|m| m.sender_type == SenderType::Agent && m.requires_user_input)
        .map(|m| OpenQuestion {
            session_id: session.id,
            agent_type: session.agent_type.clone(),
            question_id: m.id,
            question: m.content,
            asked_at: m.created_at,
        }))
}

/// Text on one line: tabs and line breaks (which would split the columns) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
