//! `switchboard hook claude-code`: Claude Code's hooks, answered from Switchboard.
//!
//! Claude Code runs the command once per hook event with the event as JSON on standard input
//! and reads a decision, when there is one, from standard output. `PermissionRequest` asks the
//! person (a tool approval: Allow, Deny, or edit then allow) and prints the decision in the
//! hook output format; `SessionStart`, `Notification`, `Stop` and `SessionEnd` are logged as
//! steps (and `SessionEnd` ends the session). Every event of one Claude Code session lands in
//! the same Switchboard session: its id is a UUID v5 of the tenant and Claude Code's
//! `session_id`, so no state is kept between calls.
//!
//! When nobody decides in time the command prints nothing and exits 0: Claude Code then asks
//! in its terminal as usual. With `--on-timeout deny` it denies instead. A failure (server
//! unreachable, key refused) exits 1, which Claude Code treats as a non-blocking error.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use super::Outcome;
use super::ask::parse_duration;
use crate::client::{AgentMessage, Client};
use crate::commands::{Decision, approval_question};
use crate::config::ServerArgs;
use crate::domain::choices;
use crate::wire::ApprovalJson;

/// Names a Claude Code session's Switchboard session (UUID v5 of "<tenant>/<session_id>").
const CLAUDE_CODE_SESSIONS: Uuid = Uuid::from_u128(0x8e3b_51c4_7d29_4a06_b1f8_2c5d_9e40_6a17);
/// The agent type of sessions the hooks start.
const AGENT_TYPE: &str = "claude-code";
/// At most this much of standard input is read: hook events are small.
const MAX_EVENT_BYTES: u64 = 4 << 20;

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Claude Code hooks: PermissionRequest asks the person; SessionStart, Notification, Stop
    /// and SessionEnd are logged. Reads one hook event (JSON) on standard input.
    ClaudeCode(ClaudeCodeArgs),
}

#[derive(Args, Debug)]
pub struct ClaudeCodeArgs {
    /// How long a permission request waits for the person: 90s, 10m, 1h. Keep it below the
    /// hook's `timeout` in Claude Code's settings (60 s unless set).
    #[arg(long, value_parser = parse_duration, default_value = "50s")]
    timeout: Duration,

    /// What a permission request that nobody decided in time does: by default nothing (Claude
    /// Code asks in its terminal); `deny` refuses the tool call.
    #[arg(long, value_enum)]
    on_timeout: Option<OnTimeout>,

    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnTimeout {
    Deny,
}

/// The fields of a hook event this command reads (Claude Code sends more).
#[derive(Debug, Deserialize)]
struct HookEvent {
    session_id: String,
    hook_event_name: String,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    tool_name: Option<String>,
    #[serde(default)]
    tool_input: Option<Map<String, Value>>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

pub async fn run(command: HookCommand) -> Outcome {
    match command {
        HookCommand::ClaudeCode(args) => claude_code(args).await,
    }
}

async fn claude_code(args: ClaudeCodeArgs) -> Outcome {
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_EVENT_BYTES)
        .read_to_string(&mut input)?;
    let event: HookEvent = serde_json::from_str(&input)
        .map_err(|e| format!("standard input is not a Claude Code hook event: {e}"))?;
    if event.session_id.trim().is_empty() {
        return Err("the hook event has no session_id".into());
    }
    let client = args.server.client("hook")?.as_client_type(AGENT_TYPE);
    let tenant = client.user_id().await?;
    let session_id = Uuid::new_v5(
        &CLAUDE_CODE_SESSIONS,
        format!("{tenant}/{}", event.session_id).as_bytes(),
    );
    let step = |content: String| AgentMessage {
        session_id,
        agent_type: AGENT_TYPE.to_owned(),
        content,
        requires_user_input: false,
        options: Vec::new(),
        approval: None,
    };
    match event.hook_event_name.as_str() {
        "PermissionRequest" => return permission_request(&client, &args, session_id, event).await,
        "SessionStart" => {
            let source = event.source.as_deref().unwrap_or("startup");
            let cwd = event.cwd.as_deref().unwrap_or("?");
            let text = format!("Claude Code session started ({source}) in {cwd}");
            client.send_agent_message(&step(text)).await?;
        }
        "Notification" => {
            let message = event.message.as_deref().unwrap_or("(no message)");
            let text = format!("Claude Code: {message}");
            client.send_agent_message(&step(text)).await?;
        }
        "Stop" => {
            let text = "Claude Code finished its turn".to_owned();
            client.send_agent_message(&step(text)).await?;
        }
        "SessionEnd" => {
            let reason = event.reason.as_deref().unwrap_or("other");
            let text = format!("Claude Code session ended ({reason})");
            client.send_agent_message(&step(text)).await?;
            client.end_session(session_id).await?;
        }
        // Other hooks have nothing to log here; deciding nothing is always safe.
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Ask the person about the tool call; print their decision, or nothing when none came.
async fn permission_request(
    client: &Client,
    args: &ClaudeCodeArgs,
    session_id: Uuid,
    event: HookEvent,
) -> Outcome {
    let tool_name = event
        .tool_name
        .ok_or("a PermissionRequest hook event without tool_name")?;
    let approval = choices::approval(
        &tool_name,
        event.tool_input.unwrap_or_default(),
        event.tool_use_id.as_deref(),
    )?;
    let question = AgentMessage {
        session_id,
        agent_type: AGENT_TYPE.to_owned(),
        content: approval_question(&approval),
        requires_user_input: true,
        options: Vec::new(),
        approval: Some(ApprovalJson::from(&approval)),
    };
    let deadline = Instant::now() + args.timeout;
    let asked = client.send_agent_message(&question).await?;
    let answer = client
        .answer_by(asked.session_id, asked.message_id, Some(deadline))
        .await?;
    let decision = match (answer, args.on_timeout) {
        (Some(answer), _) => Decision::from_answer(&approval.input, &answer),
        (None, Some(OnTimeout::Deny)) => Decision::Deny {
            message: format!(
                "Nobody decided within {} s on Switchboard; denied.",
                args.timeout.as_secs()
            ),
        },
        (None, None) => {
            eprintln!("no decision in time; Claude Code asks in its terminal");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let output = json!({
        "hookSpecificOutput": {
            "hookEventName": "PermissionRequest",
            "decision": decision.to_json(),
        }
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{output}")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
