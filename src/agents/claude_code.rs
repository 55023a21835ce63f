//! Claude Code (and Codex and Gemini CLI, whose events [`Agent::normalize`] puts in Claude
//! Code's terms), driven through its hooks: what each hook event means for Switchboard, once.
//! `switchboard hook <agent>` (a command hook: reads the event on standard input, prints the
//! output) and `POST /api/v1/hooks/claude-code` (Claude Code's `http` hook) both call
//! [`handle`], over REST or in process respectively ([`AgentApi`]).
//!
//! Every event of one agent session lands in one Switchboard session: its id is a UUID v5 of
//! the tenant and the agent's `session_id` ([`Agent::session_for`]), so no state is kept
//! between calls.
//!
//! - `SessionStart` opens (or resumes) the session with its working directory, project,
//!   branch and host; `UserPromptSubmit` shows what the person typed in the terminal (as the
//!   person's, marked as typed there) and names the session after its first prompt;
//!   `PostToolUse` shows the tool call compactly (tool, what it was used on, whether it
//!   worked, how long it took, the beginning of its output, all bounded); `Stop` shows Claude's
//!   final message; `SessionEnd` says the process exited (what it still asked is withdrawn, and
//!   the session waits for its next run).
//! - What the person sent reaches Claude at the next event whose output can carry it:
//!   `SessionStart`, `UserPromptSubmit` and `PostToolUse` hand it over as `additionalContext`,
//!   `Stop` as `{"decision":"block","reason":…}` (Claude continues with it); every other event
//!   leaves it unread.
//! - `PermissionRequest` asks the person (Allow, Deny, or edit then allow); nobody deciding in
//!   time withdraws the question and decides nothing (Claude Code asks in its terminal), or
//!   denies with `on_timeout: deny`. The question also expires on the server a little after,
//!   should the hook be killed first.
//! - With `stop_wait`, `Stop` asks "what next?" (a `next_instruction` question carrying Claude's
//!   final message) and waits that long: the person's answer continues the run as a block;
//!   nobody answering withdraws the question and lets Claude stop.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::agent::Agent;
use crate::agent_api::{AgentApi, Caller, Outgoing, ToolError};
use crate::commands::{Decision, approval_question};
use crate::domain::choices;
use crate::domain::questions::{MAX_ACTIVITY_OUTPUT, MAX_ACTIVITY_SUMMARY, cut, seconds};
use crate::wire::MessageJson;
use projections::{SessionDescribed, ToolActivity};

/// The status of a refusal that says the session does not exist (yet).
const NOT_FOUND: u16 = 404;
/// How much longer than the hook waits the server keeps its question open: the hook's own
/// withdrawal (with its reason) comes first unless the hook was killed.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// At most this many characters of a prompt or a final message are shown as a step.
const STEP_CHARS: usize = 20_000;
/// The longest one wait for an answer is asked for; longer waits are several.
const WAIT_SLICE: Duration = Duration::from_secs(60);

/// The Switchboard session of Claude Code session `claude_session` of `tenant`.
pub fn session_for(tenant: Uuid, claude_session: &str) -> Uuid {
    Agent::ClaudeCode.session_for(tenant, claude_session)
}

/// What a hook that nobody answered in time does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Refuse the tool call.
    Deny,
}

/// How the hooks behave.
#[derive(Clone, Debug)]
pub struct Options {
    /// Whose hooks they are.
    pub agent: Agent,
    /// How long a permission request waits for the person.
    pub timeout: Duration,
    pub on_timeout: Option<OnTimeout>,
    /// How long `Stop` waits for what to do next (zero: it does not ask).
    pub stop_wait: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            agent: Agent::ClaudeCode,
            timeout: Duration::from_secs(50),
            on_timeout: None,
            stop_wait: Duration::ZERO,
        }
    }
}

/// The fields of a hook event Switchboard reads (Claude Code sends more).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct HookEvent {
    pub session_id: String,
    pub hook_event_name: String,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub tool_name: Option<String>,
    #[serde(default)]
    pub tool_input: Option<Map<String, Value>>,
    #[serde(default)]
    pub tool_use_id: Option<String>,
    #[serde(default)]
    pub tool_response: Option<Value>,
    #[serde(default, deserialize_with = "crate::wire::optional_whole_number")]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub last_assistant_message: Option<String>,
    #[serde(default)]
    pub stop_hook_active: Option<bool>,
    /// The permission rules Claude Code offers to add with a decision (`PermissionRequest`).
    #[serde(default)]
    pub permission_suggestions: Option<Vec<Value>>,
    /// Why a tool call failed (`PostToolUseFailure`).
    #[serde(default)]
    pub error: Option<String>,
}

impl HookEvent {
    /// Parse `agent`'s JSON for one hook event.
    pub fn parse(agent: Agent, json: &str) -> Result<HookEvent, String> {
        let not = |e: serde_json::Error| format!("not a {} hook event: {e}", agent.name());
        let fields: Map<String, Value> = serde_json::from_str(json).map_err(not)?;
        let event: HookEvent =
            serde_json::from_value(Value::Object(agent.normalize(fields))).map_err(not)?;
        event.checked()
    }

    /// The event, if its session id is one Claude Code sends.
    pub fn checked(self) -> Result<HookEvent, String> {
        if self.session_id.trim().is_empty() {
            return Err("session_id: the hook event has none".into());
        }
        if self.session_id.chars().count() > 200 || self.session_id.chars().any(char::is_control) {
            return Err("session_id: not one a coding agent sends".into());
        }
        Ok(self)
    }
}

/// Where the session runs, as only the machine it runs on can say (the command hook asks git
/// and the host; an http hook's server cannot).
#[derive(Clone, Debug, Default)]
pub struct Surroundings {
    pub branch: Option<String>,
    pub host: Option<String>,
}

/// What the hook answers Claude Code: its output JSON, when it has one.
pub type Output = Option<Value>;

/// Handle one hook event of `session_id` for `caller`. Cancelling `gone` says Claude Code
/// stopped waiting for this hook (the request went away): a question it asked is withdrawn.
pub async fn handle(
    api: &dyn AgentApi,
    caller: &Caller,
    session_id: Uuid,
    event: &HookEvent,
    surroundings: &Surroundings,
    options: &Options,
    gone: &CancellationToken,
) -> Result<Output, ToolError> {
    let hooked = Hooked {
        api,
        caller,
        session_id,
        event,
        agent: options.agent,
        gone,
    };
    let name = options.agent.name();
    match event.hook_event_name.as_str() {
        "SessionStart" => {
            let source = event.source.as_deref().unwrap_or("startup");
            // Where: the project (the whole directory is in the session's context).
            let place = event.cwd.as_deref().and_then(project_of);
            let text = match place {
                Some(project) => format!("{name} started ({source}) in {project}"),
                None => format!("{name} started ({source})"),
            };
            let mut step = hooked.step(text, hooked.hands_over());
            step.describe.branch = surroundings.branch.clone();
            step.describe.host = surroundings.host.clone();
            let queued = hooked.log(step).await?;
            Ok(hooked.context(&queued))
        }
        "UserPromptSubmit" => {
            let prompt = event.prompt.as_deref().unwrap_or("").trim();
            if !prompt.is_empty() {
                // Shown as the person's, typed in the terminal; a session nobody named is
                // named after it.
                let typed = cut(prompt, STEP_CHARS);
                match api
                    .said_in_terminal(caller, session_id, typed.clone())
                    .await
                {
                    // No SessionStart came (the hooks were installed mid-session, say).
                    Err(e) if e.status == NOT_FOUND => {
                        let started = hooked.step(format!("{name} is working"), false);
                        hooked.log(started).await?;
                        api.said_in_terminal(caller, session_id, typed).await?;
                    }
                    said => said?,
                }
            }
            if !hooked.hands_over() {
                return Ok(None);
            }
            let queued = api.receive_all(caller, session_id).await?;
            Ok(hooked.context(&queued))
        }
        "PostToolUse" => {
            let activity = activity(event);
            let text = match activity.summary.as_str() {
                "" => activity.tool.clone(),
                summary => format!("{}: {summary}", activity.tool),
            };
            let step = Outgoing {
                activity: Some(activity),
                ..hooked.step(text, hooked.hands_over())
            };
            let queued = hooked.log(step).await?;
            Ok(hooked.context(&queued))
        }
        // A failed call: shown the same way, marked failed. (Whether this event's output can
        // carry the person's messages is not measured: they wait for the next event.)
        "PostToolUseFailure" => {
            let activity = activity(event);
            let text = match activity.summary.as_str() {
                "" => format!("{} failed", activity.tool),
                summary => format!("{} failed: {summary}", activity.tool),
            };
            let step = Outgoing {
                activity: Some(activity),
                ..hooked.step(text, false)
            };
            hooked.log(step).await?;
            Ok(None)
        }
        "Stop" => stop(&hooked, options).await,
        "PermissionRequest" => permission_request(&hooked, options).await,
        "Notification" => {
            let message = event.message.as_deref().unwrap_or("(no message)");
            hooked
                .log(hooked.step(format!("{name}: {message}"), false))
                .await?;
            Ok(None)
        }
        "SessionEnd" => {
            // The exit is its own event (the inbox shows it); no step repeats it.
            let reason = cut(event.reason.as_deref().unwrap_or("other"), 200);
            match api.exited(caller, session_id, reason.clone()).await {
                // Nothing was logged of this session before: it starts, then exits.
                Err(e) if e.status == NOT_FOUND => {
                    hooked
                        .log(hooked.step(format!("{name} ran"), false))
                        .await?;
                    api.exited(caller, session_id, reason).await?;
                }
                exited => exited?,
            }
            Ok(None)
        }
        // Other hooks have nothing for Switchboard; deciding nothing is always safe.
        _ => Ok(None),
    }
}

/// One hook event of one session.
struct Hooked<'a> {
    api: &'a dyn AgentApi,
    caller: &'a Caller,
    session_id: Uuid,
    event: &'a HookEvent,
    agent: Agent,
    gone: &'a CancellationToken,
}

impl Hooked<'_> {
    /// Whether this event's output can hand the person's messages over.
    fn hands_over(&self) -> bool {
        self.agent.hands_over_at(&self.event.hook_event_name)
    }

    /// The output handing `messages` over at this event, when there are any.
    fn context(&self, messages: &[MessageJson]) -> Output {
        (!messages.is_empty()).then(|| {
            self.agent
                .context(&self.event.hook_event_name, handed_over(messages))
        })
    }

    /// A step saying `content`; `hands_over`: this event's output can carry the person's
    /// queued messages to Claude Code (else they stay unread).
    fn step(&self, content: String, hands_over: bool) -> Outgoing {
        Outgoing {
            leaves_unread: !hands_over,
            describe: SessionDescribed {
                project: self.event.cwd.as_deref().and_then(project_of),
                cwd: self.event.cwd.clone(),
                ..SessionDescribed::default()
            },
            ..Outgoing::step(self.session_id, self.agent.agent_type(), content)
        }
    }

    /// Log a step; the person's messages it received, when it could hand them over.
    async fn log(&self, message: Outgoing) -> Result<Vec<MessageJson>, ToolError> {
        Ok(self.api.send(self.caller, message).await?.queued)
    }
}

/// The person's messages as one text for Claude.
fn handed_over(messages: &[MessageJson]) -> String {
    let said: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    format!(
        "The person supervising you sent this through Switchboard:\n\n{}",
        said.join("\n\n")
    )
}

/// Claude finished its turn: what the person sent continues it; else, with `stop_wait`, ask
/// what next and wait.
async fn stop(hooked: &Hooked<'_>, options: &Options) -> Result<Output, ToolError> {
    let (api, caller, session_id) = (hooked.api, hooked.caller, hooked.session_id);
    let said = hooked
        .event
        .last_assistant_message
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map_or_else(
            || match hooked.agent {
                Agent::ClaudeCode => "Claude finished its turn.".to_owned(),
                other => format!("{} finished its turn.", other.name()),
            },
            |s| cut(s, STEP_CHARS),
        );
    let queued = match api.receive_all(caller, session_id).await {
        // The first event of the session: nobody said anything yet.
        Err(e) if e.status == NOT_FOUND => Vec::new(),
        queued => queued?,
    };
    if !queued.is_empty() || options.stop_wait.is_zero() {
        hooked.log(hooked.step(said, true)).await?;
        return Ok(block(&queued));
    }
    let question = Outgoing {
        requires_user_input: true,
        next_instruction: true,
        expires_in: Some(options.stop_wait + EXPIRY_MARGIN),
        ..hooked.step(said, true)
    };
    let asked = api.send(caller, question).await?;
    if !asked.queued.is_empty() {
        // Sent in the instant between: that is what to do next.
        let reason = "the person had already said what to do next".to_owned();
        api.withdraw(caller, session_id, asked.message_id, reason)
            .await?;
        return Ok(block(&asked.queued));
    }
    let nobody = format!(
        "nobody said what to do next within {}; {} stopped",
        seconds(options.stop_wait),
        hooked.agent.name()
    );
    let answer = answer_or_withdraw(hooked, asked.message_id, options.stop_wait, nobody).await?;
    Ok(answer.and_then(|answer| block(&answer)))
}

/// A block whose reason is `messages` (Claude continues with it), when there are any.
fn block(messages: &[MessageJson]) -> Output {
    (!messages.is_empty()).then(|| json!({"decision": "block", "reason": handed_over(messages)}))
}

/// Ask the person about the tool call; the decision to print, or none when none came.
///
/// Claude Code's PermissionRequest carries no `tool_use_id`: each request is its own question
/// (two identical parallel calls ask twice, each answered on its own, in the order asked), and
/// its answer goes back to the hook call that asked, which is the tool call that waits.
async fn permission_request(hooked: &Hooked<'_>, options: &Options) -> Result<Output, ToolError> {
    let (api, caller, event) = (hooked.api, hooked.caller, hooked.event);
    let tool_name = event
        .tool_name
        .clone()
        .ok_or_else(|| ToolError::new("a PermissionRequest hook event without tool_name"))?;
    let mut approval = choices::approval(
        &tool_name,
        event.tool_input.clone().unwrap_or_default(),
        event.tool_use_id.as_deref(),
        event.permission_suggestions.clone().unwrap_or_default(),
    )
    .map_err(|e| ToolError::new(e.to_string()))?;
    approval.input_fixed = !hooked.agent.edits_input();
    let question = Outgoing {
        requires_user_input: true,
        approval: Some(approval.clone()),
        expires_in: Some(options.timeout + EXPIRY_MARGIN),
        ..hooked.step(approval_question(&approval), false)
    };
    let asked = api.send(caller, question).await?;
    let wait = seconds(options.timeout);
    // An agent that runs what its hook leaves undecided is denied instead.
    let on_timeout = match hooked.agent.runs_undecided() {
        true => Some(OnTimeout::Deny),
        false => options.on_timeout,
    };
    let nobody = match on_timeout {
        Some(OnTimeout::Deny) => {
            format!("nobody decided within {wait}; the hook denied the tool call")
        }
        None => format!("nobody decided within {wait}; {}", hooked.agent.undecided()),
    };
    let answer = answer_or_withdraw(hooked, asked.message_id, options.timeout, nobody).await?;
    let decision = match (answer, on_timeout) {
        (Some(answer), _) => Decision::from_answer(&approval, &answer),
        (None, Some(OnTimeout::Deny)) => Decision::Deny {
            message: format!("Nobody decided within {wait} on Switchboard; denied."),
        },
        (None, None) => return Ok(None),
    };
    Ok(Some(hooked.agent.permission_output(&decision)))
}

/// How waiting for a question's answer ended.
enum Waited {
    Answered(Vec<MessageJson>),
    /// It closed without an answer (withdrawn or expired by someone else).
    Closed,
    /// Nobody answered in time.
    Nobody,
    /// Claude Code stopped waiting for the hook.
    Gone,
}

/// The answer to `question` within `wait`; when none comes, the question is withdrawn (for
/// `nobody`, or because Claude Code stopped waiting) and `None` returned, unless it was
/// answered in that very moment: then that answer stands.
async fn answer_or_withdraw(
    hooked: &Hooked<'_>,
    question: Uuid,
    wait: Duration,
    nobody: String,
) -> Result<Option<Vec<MessageJson>>, ToolError> {
    let reason = match wait_until(hooked, question, wait).await? {
        Waited::Answered(answer) => return Ok(Some(answer)),
        Waited::Closed => return Ok(None),
        Waited::Nobody => nobody,
        Waited::Gone => "the hook was stopped before anyone answered".to_owned(),
    };
    let (api, caller, session_id) = (hooked.api, hooked.caller, hooked.session_id);
    if api.withdraw(caller, session_id, question, reason).await? {
        return Ok(None);
    }
    // Answered in that very moment: the answer stands.
    let stop = CancellationToken::new();
    match api
        .answer(caller, session_id, question, Duration::ZERO, &stop)
        .await
    {
        Ok(answer) => Ok(answer.map(|a| a.messages)),
        // Withdrawn or expired by someone else after all.
        Err(_) => Ok(None),
    }
}

/// Wait up to `wait` for the answer to `question`, riding out a server that is away for a
/// while.
async fn wait_until(
    hooked: &Hooked<'_>,
    question: Uuid,
    wait: Duration,
) -> Result<Waited, ToolError> {
    let (api, caller, session_id) = (hooked.api, hooked.caller, hooked.session_id);
    let deadline = tokio::time::Instant::now() + wait;
    api.waiting(caller, session_id, question, wait).await?;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if hooked.gone.is_cancelled() {
            return Ok(Waited::Gone);
        }
        if left.is_zero() {
            return Ok(Waited::Nobody);
        }
        let answer = api
            .answer(
                caller,
                session_id,
                question,
                left.min(WAIT_SLICE),
                hooked.gone,
            )
            .await;
        match answer {
            Ok(Some(answer)) => return Ok(Waited::Answered(answer.messages)),
            Ok(None) => {}
            Err(e) => match api.question_status(caller, session_id, question).await {
                Ok(status) if status != "open" && status != "answered" => {
                    return Ok(Waited::Closed);
                }
                // Away for a moment: look again shortly.
                Ok(_) | Err(_) => {
                    tracing::warn!("waiting for an answer: {e}; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1).min(left)) => {}
                        () = hooked.gone.cancelled() => {}
                    }
                }
            },
        }
    }
}

/// A tool call as Claude Code reported it, bounded.
fn activity(event: &HookEvent) -> ToolActivity {
    let input = event.tool_input.clone().unwrap_or_default();
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let summary = text("command")
        .or_else(|| text("file_path"))
        .or_else(|| text("notebook_path"))
        .or_else(|| text("pattern"))
        .or_else(|| text("url"))
        .or_else(|| text("query"))
        .or_else(|| text("description"))
        .unwrap_or("");
    let response = event.tool_response.as_ref();
    let field = |key: &str| response.and_then(|r| r.get(key));
    let failed = event.hook_event_name == "PostToolUseFailure"
        || field("interrupted").and_then(Value::as_bool) == Some(true)
        || field("is_error").and_then(Value::as_bool) == Some(true)
        || field("success").and_then(Value::as_bool) == Some(false)
        || field("error").is_some_and(|e| !e.is_null());
    let output = match (response, &event.error) {
        (_, Some(error)) => Some(error.clone()),
        (Some(Value::String(s)), None) => Some(s.clone()),
        (Some(r), None) => {
            let mut printed = String::new();
            for key in ["stdout", "stderr", "error", "content"] {
                if let Some(text) = r.get(key).and_then(Value::as_str) {
                    if !printed.is_empty() && !text.is_empty() {
                        printed.push('\n');
                    }
                    printed.push_str(text);
                }
            }
            Some(printed)
        }
        (None, None) => None,
    }
    .map(|o| cut(o.trim(), MAX_ACTIVITY_OUTPUT))
    .filter(|o| !o.is_empty());
    ToolActivity {
        tool: cut(event.tool_name.as_deref().unwrap_or("a tool"), 200),
        summary: cut(summary, MAX_ACTIVITY_SUMMARY),
        ok: !failed,
        duration_ms: event.duration_ms,
        output,
    }
}

/// The project a working directory belongs to: its last component.
fn project_of(cwd: &str) -> Option<String> {
    std::path::Path::new(cwd)
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_activity_is_compact_and_bounded() {
        let event = HookEvent {
            tool_name: Some("Bash".into()),
            tool_input: Some(
                json!({"command": "cargo test", "description": "Run the tests"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            tool_response: Some(
                json!({"stdout": "x".repeat(10_000), "stderr": "", "interrupted": false}),
            ),
            duration_ms: Some(1234),
            ..HookEvent::default()
        };
        let a = activity(&event);
        assert_eq!(
            (a.tool.as_str(), a.summary.as_str(), a.ok),
            ("Bash", "cargo test", true)
        );
        assert_eq!(a.duration_ms, Some(1234));
        assert_eq!(a.output.unwrap().chars().count(), MAX_ACTIVITY_OUTPUT);
        let failed = HookEvent {
            tool_name: Some("Bash".into()),
            tool_response: Some(json!({"stdout": "", "stderr": "boom", "interrupted": true})),
            ..HookEvent::default()
        };
        assert!(!activity(&failed).ok);
    }

    #[test]
    fn sessions_are_named_by_tenant_and_claude_session() {
        let tenant = Uuid::new_v4();
        assert_eq!(session_for(tenant, "a"), session_for(tenant, "a"));
        assert_ne!(session_for(tenant, "a"), session_for(tenant, "b"));
        assert_ne!(session_for(tenant, "a"), session_for(Uuid::new_v4(), "a"));
        let parse = |json| HookEvent::parse(Agent::ClaudeCode, json);
        assert!(parse(r#"{"session_id":"","hook_event_name":"Stop"}"#).is_err());
        assert!(parse(r#"{"hello":1}"#).is_err());
    }
}
