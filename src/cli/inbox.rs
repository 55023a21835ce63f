//! `switchboard inbox`: the questions waiting for an answer, one per line (tab-separated:
//! session, question, agent type, asked at, question text), or one JSON object per line with
//! `--json`. A session may have several open at once; answer one with
//! `switchboard reply <session> "..." --to <question>`.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use uuid::Uuid;

use super::Outcome;
use crate::client::{ClientError, SessionSummary};
use crate::config::ServerArgs;

/// Sessions read per request.
const PAGE: u32 = 100;

#[derive(Args, Debug)]
pub struct InboxArgs {
    /// One JSON object per line: session_id, agent_type, question_id, kind, question,
    /// options, asked_at.
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
    kind: String,
    question: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Vec<String>>,
    asked_at: String,
}

pub async fn run(args: InboxArgs) -> Outcome {
    let client = args.server.client("inbox")?;
    let mut out = std::io::stdout().lock();
    let mut before: Option<(String, Uuid)> = None;
    loop {
        let page = client
            .sessions(
                "AWAITING_INPUT",
                before.as_ref().map(|(at, id)| (at.as_str(), *id)),
                PAGE,
            )
            .await?;
        for session in &page {
            for question in open_questions(&client, session).await? {
                if args.json {
                    serde_json::to_writer(&mut out, &question)?;
                    writeln!(out)?;
                } else {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}",
                        question.session_id,
                        question.question_id,
                        one_line(&question.agent_type),
                        question.asked_at,
                        one_line(&question.question)
                    )?;
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => {
                before = Some((last.last_activity_at.clone(), last.id));
            }
            _ => break,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The session's open questions, oldest first.
async fn open_questions(
    client: &crate::client::Client,
    session: &SessionSummary,
) -> Result<Vec<OpenQuestion>, ClientError> {
    let questions = match client.questions(session.id, "open").await {
        Ok(questions) => questions,
        // Gone since it was listed.
        Err(ClientError::Refused { status: 404, .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(questions
        .into_iter()
        .map(|q| OpenQuestion {
            session_id: session.id,
            agent_type: session.agent_type.clone(),
            question_id: q.id,
            kind: q.kind,
            question: q.content,
            options: q.options,
            asked_at: q.asked_at,
        })
        .collect())
}

/// Text on one line: tabs and line breaks (which would split the columns) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
