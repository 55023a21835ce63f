//! The agent tools: arguments, descriptions written for a model, structured results with a
//! text rendering and a declared schema, and the blocking wait for an answer (progress while
//! waiting, a block limit, then `wait_for_answer`).
//!
//! A call that took user messages from the inbox (the feedback a message collects, the answer
//! a wait takes) hands them over with its result, or, when its client abandoned the call
//! first, gives them back so the agent's next call delivers them (see `calls.rs`).
//!
//! Each tool is one method with its metadata in its `#[tool]` attribute: title, annotations
//! (what it does to the world, for hosts deciding what to confirm) and the schema of its
//! structured result. A new tool follows the same pattern.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams,
    ContentBlock, ErrorCode, GetTaskParams, GetTaskResult, Implementation, ListToolsResult,
    MetaObject, PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion, ResultType,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

mod tasks;

use super::calls::Call;
use super::sessions::McpSession;
use crate::agent_api::{AgentApi, Answered, Caller, Outgoing, Sent, ToolError};
use crate::commands::{self, Context, Decision, Undelivered};
use crate::domain::{choices, client_type};
use crate::wire::MessageJson;
use projections::Approval;

/// Default longest silence towards a client whose call carries a progress token while it
/// waits (clients time out calls that stay silent; 15 s is the contract's bound).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// Names the session of an MCP session's permission prompts (UUID v5 of its id).
/// The header a caller without an MCP session names the session of its permission prompts
/// with (see [`AgentTools::prompt_session`]).
pub const SESSION_HEADER: &str = "x-switchboard-session";
const PROMPT_SESSION_NAMESPACE: Uuid = Uuid::from_u128(0x0c5f_6a43_2b8e_4f1d_a7c2_91e4_3d6b_5a08);

/// Default longest wait of `permission_prompt` for a decision. Claude Code holds an MCP tool
/// call until `MCP_TOOL_TIMEOUT` (progress notifications do not extend it, as
/// `tests/claude_code.rs` measures), far longer by default; the hooks' permission wait is the
/// same.
pub const PERMISSION_LIMIT: Duration = Duration::from_secs(300);

/// The `_meta` key of `permission_prompt`'s result under which the rest of its answer (the
/// session, the question, its status) travels beside the decision's text.
pub const ANSWER_META: &str = "switchboard/answer";

/// A client that cannot take a progress notification within this long is gone.
const PROGRESS_SEND_LIMIT: Duration = Duration::from_secs(5);

const INSTRUCTIONS: &str = "\
Switchboard connects you with the person supervising your work. Call log_step for every \
significant action so they can follow along, and act on any user_feedback it returns. When you \
need a decision or information only they have, call ask_question: it blocks until they answer. \
If it returns status \"pending\", call wait_for_answer with the same ids to keep waiting. Before \
you stop, confirm with ask_question that the work is done, then call end_session.";

const LOG_STEP: &str = "\
Log a step of your work so the person supervising you can follow it. Call this for every \
significant action: starting the task, reading or changing files, running commands, finishing \
a part. Keep it to one or two sentences.\n\n\
The result's user_feedback lists messages the person sent since your last call. They are \
instructions: read each one and act on it before you continue (they are delivered once).\n\n\
Omit agent_instance_id on your first call: a new session starts and its id is returned. Pass \
that id on every later call of this session.";

const ASK_QUESTION: &str = "\
Ask the person supervising you a question and WAIT for their answer (this call blocks until \
they reply). Use it when you need a decision, approval, missing information, or confirmation \
that the work is complete; do not use it for progress updates (use log_step).\n\n\
Ask one clear, self-contained question; give the options when there are any.\n\n\
The result is {status: \"answered\", answer, question_id} once they reply. If they have not \
replied within the server's limit, the result is {status: \"pending\", question_id}: the \
question stays open, so call wait_for_answer with the same agent_instance_id and question_id \
instead of asking again.";

const WAIT_FOR_ANSWER: &str = "\
Keep waiting for the answer to a question you asked with ask_question (or send_message with \
requires_user_input) that returned status \"pending\". It does not ask again. Returns \
{status: \"answered\", answer} when the person replies, or {status: \"pending\"} again after \
the server's limit, in which case call it again.";

const SEND_MESSAGE: &str = "\
Send a message to the person supervising you. With requires_user_input=true it is a question \
and the call waits for the answer exactly like ask_question (returning status \"pending\" and \
a question_id if the wait runs out). Returns the message id and the user's queued messages, \
which you must read and act on. Omit agent_instance_id to start a new session (agent_type then \
names your kind of agent).";

const PERMISSION_PROMPT: &str = "\
Ask the person supervising the agent whether a tool call may run, and wait for their decision. \
This is Claude Code's permission prompt tool (claude --permission-prompt-tool \
mcp__switchboard__permission_prompt): the host calls it with the tool's name and input. The \
person sees the call and chooses Allow (possibly after editing the input) or Deny (possibly \
with a reason). The result's text is {\"behavior\":\"allow\",\"updatedInput\":{...}} or \
{\"behavior\":\"deny\",\"message\":\"...\"}. It waits up to the server's permission limit \
(5 minutes by default); if nobody decides by then, the question is withdrawn and the call \
denied (status \"withdrawn\"): no later call could collect the decision.";

const END_SESSION: &str = "\
End your session and mark it completed. Call it only when the person has confirmed the work is \
done (ask them with ask_question first), when they ask you to stop, or when you cannot \
continue. Summarize what you did with log_step before ending.";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LogStepArgs {
    /// Your session id from an earlier call; omit it on the first call to start a session.
    #[serde(default)]
    pub agent_instance_id: Option<String>,
    /// What you did or are doing, in a sentence or two.
    pub step_description: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AskQuestionArgs {
    /// Your session id; omit it only if you have not logged anything yet.
    #[serde(default)]
    pub agent_instance_id: Option<String>,
    /// The question, self-contained.
    pub question_text: String,
    /// The choices to offer as buttons (1 to 20 distinct short texts), if the answer is one
    /// of a few; the person may still answer in their own words.
    #[serde(default)]
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct WaitForAnswerArgs {
    /// The session the question was asked in.
    pub agent_instance_id: String,
    /// The question_id that ask_question returned.
    pub question_id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SendMessageArgs {
    /// The message.
    pub content: String,
    /// Your session id; omit it to start a new session.
    #[serde(default)]
    pub agent_instance_id: Option<String>,
    /// Your kind of agent, for a new session (default: recognised from your client).
    #[serde(default)]
    pub agent_type: Option<String>,
    /// True for a question: the call waits for the answer.
    #[serde(default)]
    pub requires_user_input: Option<bool>,
    /// For a question: the choices to offer as buttons (1 to 20 distinct short texts).
    #[serde(default)]
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PermissionPromptArgs {
    /// The tool that is to run, e.g. "Bash" or "Edit".
    pub tool_name: String,
    /// The tool's input.
    pub input: Map<String, Value>,
    /// The host's id of this tool call.
    #[serde(default)]
    pub tool_use_id: Option<String>,
    /// The session to ask in (default: one per MCP session).
    #[serde(default)]
    pub agent_instance_id: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EndSessionArgs {
    /// The session to end.
    pub agent_instance_id: String,
}

/// What log_step returns.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct LogStepResult {
    success: bool,
    /// The session: pass it on every later call.
    agent_instance_id: Uuid,
    /// Plain steps the session has logged, this one included.
    step_number: i32,
    /// Messages the person sent since your last call, oldest first: act on them.
    user_feedback: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum AnswerStatus {
    /// The person answered: see `answer`.
    Answered,
    /// No answer within the server's limit: call wait_for_answer.
    Pending,
    /// No decision within the server's limit, and nobody can wait longer (a permission
    /// prompt): the question was withdrawn and the tool call denied.
    Withdrawn,
}

/// What ask_question and wait_for_answer return.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct AnswerResult {
    status: AnswerStatus,
    agent_instance_id: Uuid,
    question_id: Uuid,
    /// The person's answer (when answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
    /// The option the answer chose (when the question offered options and it chose one).
    #[serde(skip_serializing_if = "Option::is_none")]
    chosen_option: Option<String>,
    /// For a tool approval that was answered: the decision, as Claude Code expects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<Value>,
    /// Messages the person sent before the question, oldest first (when there were any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user_feedback: Vec<String>,
    /// The answer's messages.
    #[serde(skip)]
    reply: Vec<MessageJson>,
}

/// What send_message returns.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct SendMessageResult {
    success: bool,
    agent_instance_id: Uuid,
    message_id: Uuid,
    /// Messages the person sent since your last call, oldest first: act on them.
    queued_user_messages: Vec<MessageJson>,
    /// For a question (requires_user_input): answered or pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<AnswerStatus>,
    /// For a question: its id, for wait_for_answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    question_id: Option<Uuid>,
    /// For an answered question: the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
    /// For an answered question: the option the answer chose, if it chose one.
    #[serde(skip_serializing_if = "Option::is_none")]
    chosen_option: Option<String>,
}

/// What end_session returns.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct EndSessionResult {
    success: bool,
    agent_instance_id: Uuid,
    /// `COMPLETED`.
    final_status: String,
}

/// The MCP server: one per request (Streamable HTTP) or per stdio connection.
#[derive(Clone)]
pub struct AgentTools {
    backend: Arc<dyn AgentApi>,
    /// How long a question blocks before answering `pending`.
    block_limit: Duration,
    /// How long `permission_prompt` waits for a decision (it cannot answer `pending`).
    permission_limit: Duration,
    /// Longest silence towards a waiting client that asked for progress.
    progress_interval: Duration,
    /// The agent type when the request says nothing (the stdio bridge's configuration).
    default_agent_type: Option<String>,
    /// Where permission prompts of a connection without an MCP session are asked (the stdio
    /// bridge's one connection); `None`: in a new session each.
    own_session: Option<Uuid>,
    tool_router: ToolRouter<AgentTools>,
}

/// A tool's outcome: a result, or an error the model reads (`isError`).
type Outcome = Result<CallToolResult, ErrorData>;

fn structured(value: impl Serialize, text: String) -> Outcome {
    let value =
        serde_json::to_value(value).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}

fn failed(e: ToolError) -> Outcome {
    Ok(CallToolResult::error(vec![ContentBlock::text(e.message)]))
}

fn parse_id(field: &str, text: &str) -> Result<Uuid, ToolError> {
    Uuid::try_parse(text.trim()).map_err(|_| {
        ToolError::new(format!(
            "Invalid {field} format: must be a valid UUID, got {:?}",
            crate::domain::truncate(text)
        ))
    })
}

/// An optional session id: absent or empty starts a new session.
fn new_or_existing(text: Option<&str>) -> Result<Uuid, ToolError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => parse_id("agent_instance_id", text),
        None => Ok(Uuid::now_v7()),
    }
}

fn required(field: &str, text: &str) -> Result<(), ToolError> {
    if text.trim().is_empty() {
        return Err(ToolError::new(format!("{field} is required")));
    }
    Ok(())
}

/// Options as offered: checked, or the reason they are refused.
fn offered(options: Option<Vec<String>>) -> Result<Option<Vec<String>>, ToolError> {
    options
        .map(|o| choices::options("options", o))
        .transpose()
        .map_err(|e| ToolError::new(e.to_string()))
}

fn contents(messages: &[MessageJson]) -> Vec<String> {
    messages.iter().map(|m| m.content.clone()).collect()
}

fn feedback_text(feedback: &[String]) -> String {
    if feedback.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = feedback.iter().map(|f| format!("- {f}")).collect();
    format!(
        "\n\nThe user sent you {} message(s). Read and act on them before you continue:\n{}",
        feedback.len(),
        lines.join("\n")
    )
}

/// The user messages a call took from the inbox of `session_id`: handed over with its
/// result, or given back. `read_cursor`: the question an answer was taken for.
fn taken(session_id: Uuid, messages: &[MessageJson], read_cursor: Option<Uuid>) -> Undelivered {
    Undelivered {
        session_id,
        message_ids: messages.iter().map(|m| m.id).collect(),
        read_cursor,
    }
}

/// Both lists, in the order they were taken.
fn also(mut first: Undelivered, then: Undelivered) -> Undelivered {
    first.message_ids.extend(then.message_ids);
    first.read_cursor = then.read_cursor;
    first
}

/// The HTTP layer's record of this call (none over stdio).
fn call(ctx: &RequestContext<RoleServer>) -> Option<Arc<Call>> {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<Call>>().cloned())
}

/// Resolves when the client gives up on the call: cancels it, or hangs up.
async fn abandoned(ctx: &RequestContext<RoleServer>) {
    match call(ctx) {
        Some(call) => tokio::select! {
            () = call.abandoned() => {}
            () = ctx.ct.cancelled() => {}
        },
        None => ctx.ct.cancelled().await,
    }
}

/// The result goes out now, unless the client gave up first.
fn hand_over(ctx: &RequestContext<RoleServer>) -> bool {
    match call(ctx) {
        Some(call) => call.hand_over(),
        None => !ctx.ct.is_cancelled(),
    }
}

/// The question `ask_question` asks.
fn question_outgoing(caller: &Caller, args: AskQuestionArgs) -> Result<Outgoing, ToolError> {
    required("question_text", &args.question_text)?;
    Ok(Outgoing {
        session_id: new_or_existing(args.agent_instance_id.as_deref())?,
        agent_type: caller.agent_type.clone(),
        content: args.question_text,
        requires_user_input: true,
        options: offered(args.options)?,
        approval: None,
        ..Outgoing::default()
    })
}

/// The message (or question) `send_message` sends.
fn message_outgoing(caller: &Caller, args: SendMessageArgs) -> Result<Outgoing, ToolError> {
    required("content", &args.content)?;
    Ok(Outgoing {
        session_id: new_or_existing(args.agent_instance_id.as_deref())?,
        agent_type: args
            .agent_type
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| caller.agent_type.clone()),
        content: args.content,
        requires_user_input: args.requires_user_input.unwrap_or(false),
        options: offered(args.options)?,
        approval: None,
        ..Outgoing::default()
    })
}

/// A permission prompt's result: Claude Code reads a result's structured content before its
/// text, and takes only the decision's text, so what else the call knows goes in `_meta`.
fn permission_result(outcome: Outcome) -> Outcome {
    let mut result = outcome?;
    if let Some(answer) = result.structured_content.take() {
        let meta = serde_json::Map::from_iter([(ANSWER_META.to_owned(), answer)]);
        result.meta = Some(rmcp::model::MetaObject(meta));
    }
    Ok(result)
}

/// `send_message`'s result for its question, answered or closed (a task's: nothing queued).
fn message_result(answer: AnswerResult) -> SendMessageResult {
    SendMessageResult {
        success: true,
        agent_instance_id: answer.agent_instance_id,
        message_id: answer.question_id,
        queued_user_messages: Vec::new(),
        question_id: Some(answer.question_id),
        status: Some(answer.status),
        chosen_option: answer.chosen_option,
        answer: answer.answer,
    }
}

/// What a call produces: its structured result, its text, and what it took.
struct Done<T> {
    result: T,
    text: String,
    taken: Option<Undelivered>,
}

impl AgentTools {
    pub fn new(
        backend: Arc<dyn AgentApi>,
        block_limit: Duration,
        progress_interval: Duration,
        default_agent_type: Option<String>,
    ) -> AgentTools {
        AgentTools {
            backend,
            block_limit,
            permission_limit: PERMISSION_LIMIT,
            progress_interval,
            default_agent_type,
            own_session: None,
            tool_router: Self::tool_router(),
        }
    }

    /// The same tools, `permission_prompt` waiting up to `limit` for a decision.
    pub fn with_permission_limit(self, limit: Duration) -> AgentTools {
        AgentTools {
            permission_limit: limit,
            ..self
        }
    }

    /// The same tools for one long-lived connection: its permission prompts share a session.
    pub fn for_one_connection(self) -> AgentTools {
        AgentTools {
            own_session: Some(Uuid::now_v7()),
            ..self
        }
    }

    /// The session a permission prompt is asked in when its input names none: one per MCP
    /// session (the same on every node); else, for a caller without one (every 2026 client:
    /// that revision has no sessions), the one its `X-Switchboard-Session` header names (a
    /// session id, or any name: a run's, a project's), else one per credential and client
    /// (its `clientInfo` name), so that a host's prompts stay together instead of each opening
    /// a session; else (the stdio bridge) the connection's own.
    fn prompt_session(&self, ctx: &RequestContext<RoleServer>, caller: &Caller) -> Uuid {
        let parts = ctx.extensions.get::<http::request::Parts>();
        if let Some(session) = parts.and_then(|parts| parts.extensions.get::<McpSession>()) {
            return Uuid::new_v5(&PROMPT_SESSION_NAMESPACE, session.id.as_bytes());
        }
        if let Some(own) = self.own_session {
            return own;
        }
        let Some(context) = &caller.context else {
            return Uuid::now_v7();
        };
        let tenant = context.tenant_id;
        let named = parts
            .and_then(|parts| parts.headers.get(SESSION_HEADER))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|name| !name.is_empty());
        if let Some(name) = named {
            return Uuid::try_parse(name).unwrap_or_else(|_| {
                Uuid::new_v5(
                    &PROMPT_SESSION_NAMESPACE,
                    format!("{tenant}/named/{name}").as_bytes(),
                )
            });
        }
        let credential = context
            .grant
            .key_id()
            .or(context.grant.web_session())
            .unwrap_or(tenant);
        let client = caller.client.as_deref().unwrap_or("");
        let name = format!("{tenant}/{credential}/{client}");
        Uuid::new_v5(&PROMPT_SESSION_NAMESPACE, name.as_bytes())
    }

    /// The approval `permission_prompt` asks for, and the question that asks it.
    fn permission_outgoing(
        &self,
        ctx: &RequestContext<RoleServer>,
        caller: &Caller,
        args: PermissionPromptArgs,
    ) -> Result<(Outgoing, Approval), ToolError> {
        let approval = choices::approval(
            &args.tool_name,
            args.input,
            args.tool_use_id.as_deref(),
            Vec::new(),
        )
        .map_err(|e| ToolError::new(e.to_string()))?;
        let session_id = match args.agent_instance_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => parse_id("agent_instance_id", id)?,
            _ => self.prompt_session(ctx, caller),
        };
        let outgoing = Outgoing {
            session_id,
            agent_type: caller.agent_type.clone(),
            content: commands::approval_question(&approval),
            requires_user_input: true,
            options: None,
            approval: Some(approval.clone()),
            ..Outgoing::default()
        };
        Ok((outgoing, approval))
    }

    /// Who is calling: the request's authenticated context (HTTP), else the bridge's own
    /// configuration; the kind of agent from the request's headers, else from the client's
    /// name in `initialize`.
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Caller {
        let parts = ctx.extensions.get::<http::request::Parts>();
        let context = parts.and_then(|parts| parts.extensions.get::<Context>().cloned());
        // The request's own clientInfo (`_meta`, 2026-07-28), else the one `initialize` gave.
        let info = ctx.client_info();
        let client_name = parts
            .and_then(|parts| parts.extensions.get::<McpSession>())
            .map(|session| session.client_name.clone())
            .or_else(|| Some(info.as_ref()?.name.clone()))
            .filter(|name| !name.is_empty());
        let agent_type = context
            .as_ref()
            .and_then(|c| c.client_type.clone())
            .filter(|t| t != client_type::UNKNOWN)
            .or_else(|| self.default_agent_type.clone())
            .or_else(|| Some(client_type::named(client_name.as_deref()?)))
            .unwrap_or_else(|| client_type::UNKNOWN.to_owned());
        // The client program, with its version when the connection says it.
        let client = client_name.map(|name| match info {
            Some(info) if info.name == name && !info.version.is_empty() => {
                format!("{name} {}", info.version)
            }
            _ => name,
        });
        Caller {
            context,
            agent_type,
            client,
        }
    }

    /// Hand the result over, unless the client abandoned the call first: then what it took
    /// goes back to the inbox and no result is sent.
    async fn finish<T: Serialize>(
        &self,
        caller: &Caller,
        ctx: &RequestContext<RoleServer>,
        done: Result<Done<T>, ToolError>,
    ) -> Outcome {
        let done = match done {
            Ok(done) => done,
            Err(e) => return failed(e),
        };
        if hand_over(ctx) {
            return structured(done.result, done.text);
        }
        if let Some(taken) = done.taken {
            self.give_back(caller, taken).await;
        }
        Err(ErrorData::new(
            ErrorCode(-32800),
            "request cancelled by the client",
            None,
        ))
    }

    async fn give_back(&self, caller: &Caller, taken: Undelivered) {
        if taken.message_ids.is_empty() {
            return;
        }
        let session = taken.session_id;
        match self.backend.give_back(caller, taken).await {
            Ok(returned) => tracing::info!(
                %session,
                returned,
                "a call was abandoned; the messages it took are unread again"
            ),
            Err(e) => {
                tracing::warn!(%session, "messages of an abandoned call were not returned: {e}")
            }
        }
    }

    /// Wait for the answer to `question_id` up to `limit`, telling a client that asked for
    /// progress that the call is alive. `None`: not answered within the limit.
    async fn await_answer(
        &self,
        caller: &Caller,
        (session_id, question_id): (Uuid, Uuid),
        limit: Duration,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Option<Answered>, ToolError> {
        let token = ctx.meta.get_progress_token();
        let started = Instant::now();
        let deadline = started + limit;
        // Once per call: whoever shows the question sees that someone waits, until the limit.
        if let Err(e) = self
            .backend
            .waiting(caller, session_id, question_id, limit)
            .await
        {
            tracing::debug!(question = %question_id, "a wait was not recorded: {e}");
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let slice = if token.is_some() {
                left.min(self.progress_interval)
            } else {
                left
            };
            // Given up on: stop the wait, but let a reply being taken arrive, so that it is
            // given back rather than lost.
            let stop = self.backend.stop_token();
            let answer = self
                .backend
                .answer(caller, session_id, question_id, slice, &stop);
            tokio::pin!(answer);
            let answer = tokio::select! {
                answer = &mut answer => answer?,
                () = abandoned(ctx) => {
                    stop.cancel();
                    match answer.await? {
                        None => {
                            self.gave_up(caller, session_id, question_id).await;
                            return Err(ToolError::new("cancelled"));
                        }
                        taken => taken,
                    }
                }
            };
            if answer.is_some() {
                return Ok(answer);
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            if let Some(token) = &token {
                let waited = started.elapsed().as_secs_f64().floor();
                let progress = ProgressNotificationParam::new(token.clone(), waited)
                    .with_message(format!("waiting for the user's answer ({waited:.0} s)"));
                let sent =
                    tokio::time::timeout(PROGRESS_SEND_LIMIT, ctx.peer.notify_progress(progress));
                if !matches!(sent.await, Ok(Ok(()))) {
                    self.gave_up(caller, session_id, question_id).await;
                    return Err(ToolError::new("the client went away"));
                }
            }
        }
    }

    /// The client gave up on a call waiting for `question_id`: the question is withdrawn
    /// unless a call waits for it again soon.
    async fn gave_up(&self, caller: &Caller, session_id: Uuid, question_id: Uuid) {
        if let Err(e) = self
            .backend
            .abandoned(caller, session_id, question_id)
            .await
        {
            tracing::warn!(question = %question_id, "an abandoned wait was not recorded: {e}");
        }
    }

    /// Ask (send a question) and wait for its answer. Should the wait fail, the feedback the
    /// question collected goes back to the inbox: it was never delivered; and a question only
    /// this call can collect (`once`) is withdrawn.
    async fn ask(
        &self,
        caller: &Caller,
        outgoing: Outgoing,
        (limit, once): (Duration, bool),
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(Sent, AnswerResult, Undelivered), ToolError> {
        let sent = self.backend.send(caller, outgoing).await?;
        let feedback = taken(sent.session_id, &sent.queued, None);
        match self
            .answer_result(caller, (sent.session_id, sent.message_id), limit, ctx)
            .await
        {
            Ok((mut result, answer)) => {
                result.user_feedback = contents(&sent.queued);
                Ok((sent, result, also(feedback, answer)))
            }
            Err(e) => {
                self.give_back(caller, feedback).await;
                if once {
                    // Nobody can collect this question's answer later: it closes with the call.
                    let reason = format!("the agent stopped waiting ({})", e.message);
                    let question = (sent.session_id, sent.message_id);
                    if let Err(w) = self
                        .backend
                        .withdraw(caller, question.0, question.1, reason)
                        .await
                    {
                        tracing::warn!(question = %question.1, "not withdrawn: {w}");
                    }
                }
                Err(e)
            }
        }
    }

    /// Wait for the answer; the result, and the messages the wait took.
    async fn answer_result(
        &self,
        caller: &Caller,
        (session_id, question_id): (Uuid, Uuid),
        limit: Duration,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(AnswerResult, Undelivered), ToolError> {
        let answer = self
            .await_answer(caller, (session_id, question_id), limit, ctx)
            .await?;
        let took = Undelivered {
            session_id,
            message_ids: answer.as_ref().map_or_else(Vec::new, |a| a.taken.clone()),
            read_cursor: Some(question_id),
        };
        let reply = answer.map(|a| a.messages).unwrap_or_default();
        let status = if reply.is_empty() {
            AnswerStatus::Pending
        } else {
            AnswerStatus::Answered
        };
        let result = AnswerResult {
            status,
            agent_instance_id: session_id,
            question_id,
            answer: (!reply.is_empty()).then(|| contents(&reply).join("\n\n")),
            chosen_option: reply.first().and_then(|m| m.chosen_option.clone()),
            decision: None,
            user_feedback: Vec::new(),
            reply,
        };
        Ok((result, took))
    }

    /// An answered approval: its decision, which is also the whole text (Claude Code
    /// parses it).
    fn decide(result: &mut AnswerResult, approval: &Approval) {
        if result.reply.is_empty() {
            return;
        }
        result.decision = Some(Decision::from_answer(approval, &result.reply).to_json());
    }

    /// The outcome of a call that waited for an answer: its result, that result as text, and
    /// what it took (handed over with the result, or given back if it cannot be).
    fn answered(&self, result: AnswerResult, took: Undelivered) -> Done<AnswerResult> {
        Done {
            text: self.answer_text(&result),
            result,
            taken: Some(took),
        }
    }

    fn answer_text(&self, result: &AnswerResult) -> String {
        if let Some(decision) = &result.decision {
            return decision.to_string();
        }
        let body = match &result.answer {
            Some(answer) => match &result.chosen_option {
                Some(option) => format!("The user chose \"{option}\":\n\n{answer}"),
                None => format!("The user answered:\n\n{answer}"),
            },
            None => format!(
                "No answer yet after {} s; the question is still open and the user can see it. \
                 Call wait_for_answer with agent_instance_id \"{}\" and question_id \"{}\" to keep \
                 waiting. Do not ask again.",
                self.block_limit.as_secs(),
                result.agent_instance_id,
                result.question_id
            ),
        };
        format!("{body}{}", feedback_text(&result.user_feedback))
    }
}

#[tool_router]
impl AgentTools {
    #[tool(
        title = "Log a step",
        description = LOG_STEP,
        output_schema = schema_for_output::<LogStepResult>(),
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn log_step(
        &self,
        Parameters(args): Parameters<LogStepArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            required("step_description", &args.step_description)?;
            let session_id = new_or_existing(args.agent_instance_id.as_deref())?;
            let sent = self
                .backend
                .send(
                    &caller,
                    Outgoing {
                        session_id,
                        agent_type: caller.agent_type.clone(),
                        content: args.step_description,
                        requires_user_input: false,
                        options: None,
                        approval: None,
                        ..Outgoing::default()
                    },
                )
                .await?;
            let result = LogStepResult {
                success: true,
                agent_instance_id: sent.session_id,
                step_number: sent.step_number,
                user_feedback: contents(&sent.queued),
            };
            let text = format!(
                "Step {} logged in session {}.{}",
                result.step_number,
                result.agent_instance_id,
                feedback_text(&result.user_feedback)
            );
            Ok(Done {
                result,
                text,
                taken: Some(taken(sent.session_id, &sent.queued, None)),
            })
        };
        self.finish(&caller, &ctx, run.await).await
    }

    #[tool(
        title = "Ask the person a question",
        description = ASK_QUESTION,
        output_schema = schema_for_output::<AnswerResult>(),
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn ask_question(
        &self,
        Parameters(args): Parameters<AskQuestionArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            let outgoing = question_outgoing(&caller, args)?;
            let (_, result, took) = self
                .ask(&caller, outgoing, (self.block_limit, false), &ctx)
                .await?;
            Ok(self.answered(result, took))
        };
        self.finish(&caller, &ctx, run.await).await
    }

    #[tool(
        title = "Wait for the answer",
        description = WAIT_FOR_ANSWER,
        output_schema = schema_for_output::<AnswerResult>(),
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn wait_for_answer(
        &self,
        Parameters(args): Parameters<WaitForAnswerArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            let session_id = parse_id("agent_instance_id", &args.agent_instance_id)?;
            let question_id = parse_id("question_id", &args.question_id)?;
            let (mut result, took) = self
                .answer_result(&caller, (session_id, question_id), self.block_limit, &ctx)
                .await?;
            if !result.reply.is_empty() {
                let question = self
                    .backend
                    .question(&caller, session_id, question_id)
                    .await;
                if let Some(approval) = question.ok().and_then(|q| q.approval) {
                    Self::decide(&mut result, &Approval::from(&approval));
                }
            }
            Ok(self.answered(result, took))
        };
        self.finish(&caller, &ctx, run.await).await
    }

    #[tool(
        title = "Send a message",
        description = SEND_MESSAGE,
        output_schema = schema_for_output::<SendMessageResult>(),
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn send_message(
        &self,
        Parameters(args): Parameters<SendMessageArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            let outgoing = message_outgoing(&caller, args)?;
            let (sent, answer, took) = if outgoing.requires_user_input {
                let (sent, answer, took) = self
                    .ask(&caller, outgoing, (self.block_limit, false), &ctx)
                    .await?;
                (sent, Some(answer), took)
            } else {
                let sent = self.backend.send(&caller, outgoing).await?;
                let took = taken(sent.session_id, &sent.queued, None);
                (sent, None, took)
            };
            let result = SendMessageResult {
                success: true,
                agent_instance_id: sent.session_id,
                message_id: sent.message_id,
                queued_user_messages: sent.queued,
                question_id: answer.as_ref().map(|a| a.question_id),
                status: answer.as_ref().map(|a| a.status),
                chosen_option: answer.as_ref().and_then(|a| a.chosen_option.clone()),
                answer: answer.and_then(|a| a.answer),
            };
            let feedback = feedback_text(&contents(&result.queued_user_messages));
            let text = match (&result.status, &result.answer) {
                (Some(_), Some(answer)) => format!("The user answered:\n\n{answer}{feedback}"),
                (Some(_), None) => format!(
                    "No answer yet after {} s. Call wait_for_answer with agent_instance_id \
                     \"{}\" and question_id \"{}\" to keep waiting.{feedback}",
                    self.block_limit.as_secs(),
                    result.agent_instance_id,
                    result.message_id
                ),
                (None, _) => format!(
                    "Message {} sent in session {}.{feedback}",
                    result.message_id, result.agent_instance_id
                ),
            };
            Ok(Done {
                result,
                text,
                taken: Some(took),
            })
        };
        self.finish(&caller, &ctx, run.await).await
    }

    #[tool(
        title = "Ask leave to run a tool",
        description = PERMISSION_PROMPT,
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn permission_prompt(
        &self,
        Parameters(args): Parameters<PermissionPromptArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            let (outgoing, approval) = self.permission_outgoing(&ctx, &caller, args)?;
            let limit = self.permission_limit;
            let (_, mut result, mut took) =
                self.ask(&caller, outgoing, (limit, true), &ctx).await?;
            if result.reply.is_empty() {
                // Claude Code's permission prompt cannot wait for a later call: nobody will
                // collect a decision after this one, so the question is withdrawn.
                let limit = limit.as_secs();
                let reason = format!(
                    "nobody decided within {limit} s; the permission prompt denied the tool call"
                );
                let (session, question) = (result.agent_instance_id, result.question_id);
                if self
                    .backend
                    .withdraw(&caller, session, question, reason)
                    .await?
                {
                    result.status = AnswerStatus::Withdrawn;
                    result.decision = Some(
                        Decision::Deny {
                            message: format!(
                                "Nobody decided within {limit} s on Switchboard; denied."
                            ),
                        }
                        .to_json(),
                    );
                } else {
                    // Decided in that very moment: the decision stands.
                    let stop = self.backend.stop_token();
                    let late = self
                        .backend
                        .answer(&caller, session, question, Duration::ZERO, &stop)
                        .await?;
                    if let Some(late) = late {
                        took.message_ids.extend(late.taken.iter().copied());
                        result.status = AnswerStatus::Answered;
                        result.answer = Some(contents(&late.messages).join("\n\n"));
                        result.chosen_option =
                            late.messages.first().and_then(|m| m.chosen_option.clone());
                        result.reply = late.messages;
                    }
                }
            }
            if result.decision.is_none() {
                Self::decide(&mut result, &approval);
            }
            Ok(self.answered(result, took))
        };
        permission_result(self.finish(&caller, &ctx, run.await).await)
    }

    #[tool(
        title = "End the session",
        description = END_SESSION,
        output_schema = schema_for_output::<EndSessionResult>(),
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn end_session(
        &self,
        Parameters(args): Parameters<EndSessionArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            let session_id = parse_id("agent_instance_id", &args.agent_instance_id)?;
            let final_status = self.backend.end(&caller, session_id).await?;
            let result = EndSessionResult {
                success: true,
                agent_instance_id: session_id,
                final_status,
            };
            let text = format!(
                "Session {} ended ({}).",
                result.agent_instance_id, result.final_status
            );
            Ok(Done {
                result,
                text,
                taken: None,
            })
        };
        self.finish(&caller, &ctx, run.await).await
    }
}

/// How long a 2026 client may keep the tool list: it changes only with the server's version.
pub const TOOL_LIST_TTL: Duration = Duration::from_secs(60 * 60);

/// Does this request speak the 2026-07-28 protocol or a later one (no initialize: the server
/// names itself in every result)?
fn speaks_2026(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

fn server_info() -> Implementation {
    Implementation::new("switchboard", env!("CARGO_PKG_VERSION"))
}

/// `_meta` naming this server (`io.modelcontextprotocol/serverInfo`).
fn server_info_meta() -> MetaObject {
    let mut meta = MetaObject::default();
    meta.0.insert(
        "io.modelcontextprotocol/serverInfo".to_owned(),
        serde_json::to_value(server_info()).unwrap_or_default(),
    );
    meta
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AgentTools {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(server_info())
            .with_instructions(INSTRUCTIONS)
    }

    /// The static tool list; on 2026, cacheable by anyone for [`TOOL_LIST_TTL`].
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut result = ListToolsResult::with_all_items(self.tool_router.list_all());
        if speaks_2026(&ctx) {
            result.result_type = Some(ResultType::COMPLETE);
            result.ttl_ms = Some(TOOL_LIST_TTL.as_millis() as u64);
            result.cache_scope = Some(CacheScope::Public);
            result.meta = Some(server_info_meta());
        }
        Ok(result)
    }

    /// The router's call, with the server named in the result on 2026.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let stamp = speaks_2026(&ctx);
        let takes_tasks = ctx
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        // A client that takes tasks gets one for a call that waits for a person.
        let started = if takes_tasks {
            self.start_task(&request.name, request.arguments.clone(), &ctx)
                .await
        } else {
            None
        };
        let mut response = match started {
            Some(started) => started?,
            None => self.routed(request, ctx).await?,
        };
        if stamp && let CallToolResponse::Complete(result) = &mut response {
            let meta = result.meta.get_or_insert_default();
            meta.0.extend(server_info_meta().0);
        }
        Ok(response)
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.task(request, ctx).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.cancel(request, ctx).await
    }
}

impl AgentTools {
    /// A tool call as the router runs it.
    async fn routed(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = rmcp::handler::server::tool::ToolCallContext::new(self, request, ctx);
        self.tool_router.call(call).await
    }
}
