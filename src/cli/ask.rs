//! `switchboard ask`: a shell script or CI job asks a person a question and gets the answer on
//! standard output. It blocks on long-polls (woken the moment the answer commits) and rides
//! out a server restart; exit 0 with the answer, 124 (as `timeout` does) when `--timeout`
//! runs out first (the question is then withdrawn, and expires on the server should this
//! process die first), 1 on any other failure (a question withdrawn or expired included).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::time::Instant;
use uuid::Uuid;

use super::Outcome;
use crate::client::{AgentMessage, ClientError};
use crate::config::ServerArgs;
use crate::wire::MessageJson;

/// The exit code when no answer came in time.
const TIMED_OUT: u8 = 124;

#[derive(Args, Debug)]
pub struct AskArgs {
    /// The question.
    question: String,

    /// A choice to offer the person; repeat for each.
    #[arg(long = "option", value_name = "CHOICE")]
    options: Vec<String>,

    /// Ask in this session (default: a new one, named on standard error).
    #[arg(long, env = "SWITCHBOARD_SESSION")]
    session: Option<Uuid>,

    /// Give up after this long: 90s, 10m, 2h, 1d (default: wait until answered).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// The agent type a new session is started with.
    #[arg(long, default_value = "shell")]
    agent_type: String,

    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: AskArgs) -> Outcome {
    let client = args.server.client("ask")?;
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let question = AgentMessage {
        requires_user_input: true,
        options: args.options,
        expires_in_seconds: args.timeout.map(|t| t.as_secs_f64().max(1.0)),
        ..AgentMessage::step(
            args.session.unwrap_or_else(Uuid::now_v7),
            &args.agent_type,
            args.question,
        )
    };
    let asked = client.send_agent_message(&question).await?;
    super::log::show_earlier(&asked.queued_user_messages);
    eprintln!(
        "asked in session {} (question {}); waiting for the answer",
        asked.session_id, asked.message_id
    );
    let answer = client
        .answer_by(asked.session_id, asked.message_id, deadline)
        .await?;
    let Some(answer) = answer else {
        let reason = format!(
            "switchboard ask gave up after {}",
            crate::domain::questions::seconds(args.timeout.unwrap_or_default())
        );
        match client
            .withdraw_question(asked.session_id, asked.message_id, &reason)
            .await
        {
            Ok(()) => eprintln!("no answer in time; the question is withdrawn"),
            // Answered in the very moment it gave up: the answer stands, and is printed.
            Err(ClientError::Refused { status: 409, .. }) => {
                if let Some(answer) = client
                    .wait_for_answer(asked.session_id, asked.message_id, Duration::ZERO)
                    .await
                    .ok()
                    .flatten()
                {
                    return print(&answer);
                }
                eprintln!("no answer in time");
            }
            Err(e) => eprintln!("no answer in time; withdrawing the question failed: {e}"),
        }
        return Ok(ExitCode::from(TIMED_OUT));
    };
    print(&answer)
}

fn print(answer: &[MessageJson]) -> Outcome {
    let mut out = std::io::stdout().lock();
    for message in answer {
        writeln!(out, "{}", message.content)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `90`, `90s`, `10m`, `2h`, `1d`: a whole number with an optional unit (default seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let seconds_per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: use a number with s, m, h or d, e.g. 10m"
            ));
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: use a whole number with s, m, h or d, e.g. 10m"))?;
    number
        .checked_mul(seconds_per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "m",
            "1.5m",
            "-3s",
            "10 minutes",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
