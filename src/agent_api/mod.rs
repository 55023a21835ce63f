//! What an agent's side of Switchboard needs, whichever way it is reached: in process (the
//! `/mcp` endpoint and the Claude Code hook endpoint call the commands directly) or over REST
//! (`switchboard mcp-stdio`, `switchboard hook claude-code`). The MCP tools and the coding
//! agents' hooks are written against [`AgentApi`] once.

mod local;
mod remote;

pub use local::Local;
pub use remote::Remote;

use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use projections::{Approval, SessionDescribed, ToolActivity};

use crate::commands::{Context, Undelivered};
use crate::wire::MessageJson;

/// Who calls a tool.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The authenticated request (in process); the stdio bridge authenticates with its key.
    pub context: Option<Context>,
    /// The agent type a new session is started with.
    pub agent_type: String,
    /// The client program (MCP `clientInfo`), recorded in the session's context.
    pub client: Option<String>,
}

/// A message from the agent.
#[derive(Clone, Debug, Default)]
pub struct Outgoing {
    pub session_id: Uuid,
    pub agent_type: String,
    pub content: String,
    pub requires_user_input: bool,
    /// The choices a question offers (checked).
    pub options: Option<Vec<String>>,
    /// The tool call a question asks leave for (checked).
    pub approval: Option<Approval>,
    /// A question asking what to do next (a finished turn).
    pub next_instruction: bool,
    /// A question unanswered this long expires.
    pub expires_in: Option<Duration>,
    /// The agent cannot be handed the person's queued messages with this one: they stay
    /// unread.
    pub leaves_unread: bool,
    /// What the session is about and where it runs (only changes are recorded).
    pub describe: SessionDescribed,
    /// The tool call this step reports (checked).
    pub activity: Option<ToolActivity>,
}

impl Outgoing {
    /// A plain step saying `content` in `session_id` as `agent_type`.
    pub fn step(session_id: Uuid, agent_type: &str, content: String) -> Outgoing {
        Outgoing {
            session_id,
            agent_type: agent_type.to_owned(),
            content,
            ..Outgoing::default()
        }
    }
}

/// What sending returned.
#[derive(Clone, Debug)]
pub struct Sent {
    pub session_id: Uuid,
    pub message_id: Uuid,
    /// Plain steps the session has logged, this one included.
    pub step_number: i32,
    /// User messages the agent had not received yet, oldest first.
    pub queued: Vec<MessageJson>,
}

/// The answer to a question.
#[derive(Clone, Debug)]
pub struct Answered {
    /// The user's reply, oldest first.
    pub messages: Vec<MessageJson>,
    /// Those this wait took from the inbox (rather than finding them read in the history):
    /// they are to be given back if they do not reach the agent.
    pub taken: Vec<Uuid>,
}

/// Why a tool failed, in words for the model, and as an HTTP status (422 for what the
/// caller gave, else as the command or the remote server said). Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolError {
    pub message: String,
    pub status: u16,
}

impl ToolError {
    /// The caller's input is refused.
    pub fn new(message: impl Into<String>) -> ToolError {
        ToolError {
            message: message.into(),
            status: 422,
        }
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ToolError {}

pub type Reply<'a, T> = BoxFuture<'a, Result<T, ToolError>>;

pub trait AgentApi: Send + Sync + 'static {
    /// Send a step or a question; unknown session ids start a session.
    fn send<'a>(&'a self, caller: &'a Caller, message: Outgoing) -> Reply<'a, Sent>;

    /// Wait up to `wait` for the reply to `question_id`; `None` when there is none yet, or
    /// when `stop` (from [`AgentApi::stop_token`]) was cancelled. A reply being taken when
    /// `stop` fires is taken, and returned: the caller hands it over or gives it back.
    /// (Dropping the future instead could lose a reply taken in that moment.)
    fn answer<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
        wait: Duration,
        stop: &'a CancellationToken,
    ) -> Reply<'a, Option<Answered>>;

    /// The question `question_id` of the session (what it offered).
    fn question<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Reply<'a, MessageJson>;

    /// A token to stop one wait with; it is also cancelled when the server shuts down.
    fn stop_token(&self) -> CancellationToken;

    /// Return messages a call took but could not hand over to the inbox; answers how many
    /// are unread again.
    fn give_back<'a>(&'a self, caller: &'a Caller, undelivered: Undelivered) -> Reply<'a, usize>;

    /// End the session; returns its final status.
    fn end<'a>(&'a self, caller: &'a Caller, session_id: Uuid) -> Reply<'a, String>;

    /// A call waits for `question_id`'s answer for `until` from now (whoever shows the question
    /// says so).
    fn waiting<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
        until: Duration,
    ) -> Reply<'a, ()>;

    /// The client gave up on a call that waited for `question_id`'s answer: unless some call
    /// waits for it again soon, the question is withdrawn.
    fn abandoned<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Reply<'a, ()>;

    /// Withdraw an open question nobody will wait for: `Ok(false)` when it closed already
    /// (answered in that very moment, say).
    fn withdraw<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
        reason: String,
    ) -> Reply<'a, bool>;

    /// The agent's process exited: its open questions are withdrawn; the session goes on.
    fn exited<'a>(&'a self, caller: &'a Caller, session_id: Uuid, reason: String) -> Reply<'a, ()>;

    /// Take every message the person queued for the agent, now (oldest first).
    fn receive_all<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
    ) -> Reply<'a, Vec<MessageJson>>;

    /// Record what the person typed in the agent's own terminal (delivered there already).
    fn said_in_terminal<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        content: String,
    ) -> Reply<'a, ()>;

    /// How the question stands now (`open`, `answered`, `withdrawn`, `expired`).
    fn question_status<'a>(
        &'a self,
        caller: &'a Caller,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Reply<'a, String>;
}
