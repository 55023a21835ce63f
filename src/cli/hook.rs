//! `switchboard hook claude-code`: Claude Code's hooks, answered from Switchboard.
//!
//! Claude Code runs the command once per hook event with the event as JSON on standard input
//! and reads a decision, when there is one, from standard output. Every event of one Claude
//! Code session lands in the same Switchboard session: its id is a UUID v5 of the tenant and
//! Claude Code's `session_id`, so no state is kept between calls.
//!
//! - `PermissionRequest` asks the person (a tool approval: Allow, Deny, or edit then allow) and
//!   prints the decision. When nobody decides in time it withdraws the question (so the inbox
//!   stops offering it) and prints nothing, and Claude Code asks in its terminal as usual; with
//!   `--on-timeout deny` it denies instead. The question also expires on the server shortly after
//!   the hook's timeout, should Claude Code kill the hook first.
//! - What the person sent meanwhile is handed to Claude Code where a hook's output can carry it
//!   (`SessionStart`, `UserPromptSubmit` and `PostToolUse` as `additionalContext`, `Stop` as a
//!   `block` whose reason is the message, so Claude continues with it); every other event is
//!   logged without taking them, so they stay unread for the next event that can.
//! - `SessionEnd` ends the session (which withdraws whatever it still asked).
//!
//! A failure (server unreachable, key refused) exits 1, which Claude Code treats as a
//! non-blocking error.

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
use crate::client::{AgentMessage, Client, ClientError, SessionDescription};
use crate::commands::{Decision, approval_question};
use crate::config::ServerArgs;
use crate::domain::choices;
use crate::wire::{ApprovalJson, MessageJson};

/// Names a Claude Code session's Switchboard session (UUID v5 of "<tenant>/<session_id>").
const CLAUDE_CODE_SESSIONS: Uuid = Uuid::from_u128(0x8e3b_51c4_7d29_4a06_b1f8_2c5d_9e40_6a17);
/// The agent type of sessions the hooks start.
const AGENT_TYPE: &str = "claude-code";
/// At most this much of standard input is read: hook events are small.
const MAX_EVENT_BYTES: u64 = 4 << 20;
/// How much longer than the hook waits the server keeps its question open: the hook's own
/// withdrawal (with its reason) comes first unless the hook was killed.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// At most this many characters of a prompt or tool activity are logged as a step.
const STEP_CHARS: usize = 2000;

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Claude Code hooks: PermissionRequest asks the person; the person's messages reach
    /// Claude at SessionStart, UserPromptSubmit, PostToolUse and Stop; the others are logged.
    /// Reads one hook event (JSON) on standard input.
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
    #[serde(default)]
    prompt: Option<String>,
}

/// "50 s", "10 min": a wait as people read it.
pub fn seconds(wait: Duration) -> String {
    let s = wait.as_secs();
    if s >= 120 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

pub async fn run(command: HookCommand) -> Outcome {
    match command {
        HookCommand::ClaudeCode(args) => claude_code(args).await,
    }
}

/// One Claude Code session, as the hook talks to Switchboard about it.
struct Hooked {
    client: Client,
    session_id: Uuid,
    event: HookEvent,
}

impl Hooked {
    /// A step saying `content`; `hands_over`: this event's output can carry the person's
    /// queued messages to Claude Code (else they stay unread).
    fn step(&self, content: String, hands_over: bool) -> AgentMessage {
        AgentMessage {
            leave_unread: !hands_over,
            session: self.event.cwd.as_deref().map(|cwd| SessionDescription {
                project: project_of(cwd),
                cwd: Some(cwd.to_owned()),
                ..SessionDescription::default()
            }),
            ..AgentMessage::step(self.session_id, AGENT_TYPE, content)
        }
    }

    /// Log a step; the person's messages it received, when it could hand them over.
    async fn log(&self, message: AgentMessage) -> Result<Vec<MessageJson>, ClientError> {
        let sent = self.client.send_agent_message(&message).await?;
        Ok(sent.queued_user_messages)
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
    let hooked = Hooked {
        client,
        session_id,
        event,
    };
    let output = match hooked.event.hook_event_name.as_str() {
        "PermissionRequest" => permission_request(&hooked, &args).await?,
        "SessionStart" => {
            let source = hooked.event.source.as_deref().unwrap_or("startup");
            let cwd = hooked.event.cwd.as_deref().unwrap_or("?");
            let mut step = hooked.step(
                format!("Claude Code session started ({source}) in {cwd}"),
                true,
            );
            if let Some(session) = &mut step.session {
                session.branch = hooked.event.cwd.as_deref().and_then(git_branch);
                session.host = host_name();
            }
            let queued = hooked.log(step).await?;
            context_for("SessionStart", &queued)
        }
        "UserPromptSubmit" => {
            let prompt = hooked.event.prompt.as_deref().unwrap_or("(empty prompt)");
            let step = hooked.step(format!("Prompt: {}", cut(prompt)), true);
            let queued = hooked.log(step).await?;
            context_for("UserPromptSubmit", &queued)
        }
        "PostToolUse" => {
            let tool = hooked.event.tool_name.as_deref().unwrap_or("a tool");
            let step = hooked.step(format!("Used {tool}{}", tool_summary(&hooked.event)), true);
            let queued = hooked.log(step).await?;
            context_for("PostToolUse", &queued)
        }
        "Stop" => {
            let step = hooked.step("Claude Code finished its turn".to_owned(), true);
            let queued = hooked.log(step).await?;
            // The person's words become Claude's next instruction.
            (!queued.is_empty())
                .then(|| json!({"decision": "block", "reason": handed_over(&queued)}))
        }
        "Notification" => {
            let message = hooked.event.message.as_deref().unwrap_or("(no message)");
            hooked
                .log(hooked.step(format!("Claude Code: {message}"), false))
                .await?;
            None
        }
        "SessionEnd" => {
            let reason = hooked.event.reason.as_deref().unwrap_or("other");
            let step = hooked.step(format!("Claude Code session ended ({reason})"), false);
            hooked.log(step).await?;
            hooked.client.end_session(session_id).await?;
            None
        }
        // Other hooks have nothing to log here; deciding nothing is always safe.
        _ => None,
    };
    if let Some(output) = output {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{output}")?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The person's messages as one text for Claude.
fn handed_over(messages: &[MessageJson]) -> String {
    let said: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    format!(
        "The person supervising you sent this through Switchboard:\n\n{}",
        said.join("\n\n")
    )
}

/// `additionalContext` for `event` carrying `messages`, when there are any.
fn context_for(event: &str, messages: &[MessageJson]) -> Option<Value> {
    (!messages.is_empty()).then(|| {
        json!({
            "hookSpecificOutput": {
                "hookEventName": event,
                "additionalContext": handed_over(messages),
            }
        })
    })
}

/// Ask the person about the tool call; the decision to print, or none when none came.
async fn permission_request(
    hooked: &Hooked,
    args: &ClaudeCodeArgs,
) -> Result<Option<Value>, Box<dyn std::error::Error + Send + Sync>> {
    let event = &hooked.event;
    let tool_name = event
        .tool_name
        .clone()
        .ok_or("a PermissionRequest hook event without tool_name")?;
    let approval = choices::approval(
        &tool_name,
        event.tool_input.clone().unwrap_or_default(),
        event.tool_use_id.as_deref(),
    )?;
    let question = AgentMessage {
        requires_user_input: true,
        approval: Some(ApprovalJson::from(&approval)),
        expires_in_seconds: Some((args.timeout + EXPIRY_MARGIN).as_secs_f64()),
        ..hooked.step(approval_question(&approval), false)
    };
    let deadline = Instant::now() + args.timeout;
    let asked = hooked.client.send_agent_message(&question).await?;
    let (session, question_id) = (asked.session_id, asked.message_id);
    let answer = match hooked
        .client
        .answer_by(session, question_id, Some(deadline))
        .await
    {
        Ok(answer) => answer,
        // Closed without an answer (the session ended, say): nothing to decide.
        Err(ClientError::Refused {
            status: 409,
            detail,
        }) => {
            eprintln!("{detail}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let answer = match answer {
        Some(answer) => Some(answer),
        None => give_up(hooked, args, question_id).await?,
    };
    let decision = match (answer, args.on_timeout) {
        (Some(answer), _) => Decision::from_answer(&approval.input, &answer),
        (None, Some(OnTimeout::Deny)) => Decision::Deny {
            message: format!(
                "Nobody decided within {} on Switchboard; denied.",
                seconds(args.timeout)
            ),
        },
        (None, None) => {
            eprintln!("no decision in time; Claude Code asks in its terminal");
            return Ok(None);
        }
    };
    Ok(Some(json!({
        "hookSpecificOutput": {
            "hookEventName": "PermissionRequest",
            "decision": decision.to_json(),
        }
    })))
}

/// Nobody decided in time: withdraw the question. An answer that came in that very moment wins
/// (the withdrawal is refused) and is returned.
async fn give_up(
    hooked: &Hooked,
    args: &ClaudeCodeArgs,
    question_id: Uuid,
) -> Result<Option<Vec<MessageJson>>, ClientError> {
    let reason = match args.on_timeout {
        Some(OnTimeout::Deny) => format!(
            "nobody decided within {}; the hook denied the tool call",
            seconds(args.timeout)
        ),
        None => format!(
            "nobody decided within {}; Claude Code asks in its terminal instead",
            seconds(args.timeout)
        ),
    };
    let client = &hooked.client;
    match client
        .withdraw_question(hooked.session_id, question_id, &reason)
        .await
    {
        Ok(()) => Ok(None),
        Err(ClientError::Refused { status: 409, .. }) => {
            match client
                .wait_for_answer(hooked.session_id, question_id, Duration::ZERO)
                .await
            {
                Ok(answer) => Ok(answer),
                Err(ClientError::Refused { status: 409, .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// What a tool was used for, briefly: the command, the file, the pattern.
fn tool_summary(event: &HookEvent) -> String {
    let Some(input) = &event.tool_input else {
        return String::new();
    };
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let said = text("command")
        .or_else(|| text("file_path"))
        .or_else(|| text("notebook_path"))
        .or_else(|| text("pattern"))
        .or_else(|| text("url"))
        .or_else(|| text("description"));
    match said {
        Some(said) => format!(": {}", cut(said)),
        None => String::new(),
    }
}

/// At most [`STEP_CHARS`] characters of `text`.
fn cut(text: &str) -> String {
    match text.char_indices().nth(STEP_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The project a working directory belongs to: its last component.
fn project_of(cwd: &str) -> Option<String> {
    std::path::Path::new(cwd)
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
}

/// The git branch checked out in `cwd`, if it is a repository (asked of git, briefly).
fn git_branch(cwd: &str) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["-C", cwd, "rev-parse", "--abbrev-ref", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let branch = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !branch.is_empty()).then_some(branch)
}

/// This machine's name.
fn host_name() -> Option<String> {
    nix::unistd::gethostname().ok()?.into_string().ok()
}
