//! The five agent tools: arguments, descriptions written for a model, structured results with a
//! text rendering, and the blocking wait for an answer (progress while waiting, a block limit,
//! then `wait_for_answer`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::backend::{Backend, Caller, Outgoing, Sent, ToolError};
use crate::commands::Context;
use crate::domain::client_type;
use crate::wire::MessageJson;

/// Default longest silence towards a client whose call carries a progress token while it
/// waits (clients time out calls that stay silent; 15 s is the contract's bound).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

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
    /// The question, self-contained, with the options if there are any.
    pub question_text: String,
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
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EndSessionArgs {
    /// The session to end.
    pub agent_instance_id: String,
}

#[derive(Debug, Serialize)]
struct LogStepResult {
    success: bool,
    agent_instance_id: Uuid,
    step_number: i32,
    user_feedback: Vec<String>,
}

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum AnswerStatus {
    Answered,
    Pending,
}

#[derive(Debug, Serialize)]
struct AnswerResult {
    status: AnswerStatus,
    agent_instance_id: Uuid,
    question_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
    /// Messages the user sent before the question (ask_question / send_message only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user_feedback: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SendMessageResult {
    success: bool,
    agent_instance_id: Uuid,
    message_id: Uuid,
    queued_user_messages: Vec<MessageJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<AnswerStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    question_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
}

#[derive(Debug, Serialize)]
struct EndSessionResult {
    success: bool,
    agent_instance_id: Uuid,
    final_status: String,
}

/// The MCP server: one per request (stateless Streamable HTTP) or per stdio connection.
#[derive(Clone)]
pub struct AgentTools {
    backend: Arc<dyn Backend>,
    /// How long a question blocks before answering `pending`.
    block_limit: Duration,
    /// Longest silence towards a waiting client that asked for progress.
    progress_interval: Duration,
    /// The agent type when the request says nothing (the stdio bridge's configuration).
    default_agent_type: Option<String>,
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
    Ok(CallToolResult::error(vec![ContentBlock::text(e.0)]))
}

fn parse_id(field: &str, text: &str) -> Result<Uuid, ToolError> {
    Uuid::try_parse(text.trim()).map_err(|_| {
        ToolError(format!(
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
        return Err(ToolError(format!("{field} is required")));
    }
    Ok(())
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

impl AgentTools {
    pub fn new(
        backend: Arc<dyn Backend>,
        block_limit: Duration,
        progress_interval: Duration,
        default_agent_type: Option<String>,
    ) -> AgentTools {
        AgentTools {
            backend,
            block_limit,
            progress_interval,
            default_agent_type,
            tool_router: Self::tool_router(),
        }
    }

    /// Who is calling: the request's authenticated context (HTTP), else the bridge's own
    /// configuration or the client's name from `initialize`.
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Caller {
        let context = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Context>().cloned());
        let agent_type = context
            .as_ref()
            .and_then(|c| c.client_type.clone())
            .or_else(|| self.default_agent_type.clone())
            .or_else(|| {
                let info = ctx.peer.peer_info()?;
                Some(client_type::detect(None, Some(&info.client_info.name)))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Caller {
            context,
            agent_type,
        }
    }

    /// Wait for the answer to `question_id` up to the block limit, telling a client that
    /// asked for progress that the call is alive. `None`: not answered within the limit.
    async fn await_answer(
        &self,
        caller: &Caller,
        session_id: Uuid,
        question_id: Uuid,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Option<Vec<MessageJson>>, ToolError> {
        let token = ctx.meta.get_progress_token();
        let started = Instant::now();
        let deadline = started + self.block_limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let slice = if token.is_some() {
                left.min(self.progress_interval)
            } else {
                left
            };
            let answer = tokio::select! {
                answer = self.backend.answer(caller, session_id, question_id, slice) => answer?,
                () = ctx.ct.cancelled() => return Err(ToolError("cancelled".into())),
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
                    return Err(ToolError("the client went away".into()));
                }
            }
        }
    }

    /// Ask (send a question) and wait for its answer.
    async fn ask(
        &self,
        caller: &Caller,
        outgoing: Outgoing,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(Sent, AnswerResult), ToolError> {
        let sent = self.backend.send(caller, outgoing).await?;
        let mut result = self
            .answer_result(caller, sent.session_id, sent.message_id, ctx)
            .await?;
        result.user_feedback = contents(&sent.queued);
        Ok((sent, result))
    }

    async fn answer_result(
        &self,
        caller: &Caller,
        session_id: Uuid,
        question_id: Uuid,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<AnswerResult, ToolError> {
        let answer = self
            .await_answer(caller, session_id, question_id, ctx)
            .await?;
        let (status, answer) = match answer {
            Some(messages) => (
                AnswerStatus::Answered,
                Some(contents(&messages).join("\n\n")),
            ),
            None => (AnswerStatus::Pending, None),
        };
        Ok(AnswerResult {
            status,
            agent_instance_id: session_id,
            question_id,
            answer,
            user_feedback: Vec::new(),
        })
    }

    fn answer_text(&self, result: &AnswerResult) -> String {
        let body = match &result.answer {
            Some(answer) => format!("The user answered:\n\n{answer}"),
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
    #[tool(description = LOG_STEP)]
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
                    },
                )
                .await?;
            Ok::<_, ToolError>(LogStepResult {
                success: true,
                agent_instance_id: sent.session_id,
                step_number: sent.step_number,
                user_feedback: contents(&sent.queued),
            })
        };
        match run.await {
            Ok(result) => {
                let text = format!(
                    "Step {} logged in session {}.{}",
                    result.step_number,
                    result.agent_instance_id,
                    feedback_text(&result.user_feedback)
                );
                structured(result, text)
            }
            Err(e) => failed(e),
        }
    }

    #[tool(description = ASK_QUESTION)]
    async fn ask_question(
        &self,
        Parameters(args): Parameters<AskQuestionArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            required("question_text", &args.question_text)?;
            let session_id = new_or_existing(args.agent_instance_id.as_deref())?;
            let outgoing = Outgoing {
                session_id,
                agent_type: caller.agent_type.clone(),
                content: args.question_text,
                requires_user_input: true,
            };
            self.ask(&caller, outgoing, &ctx)
                .await
                .map(|(_, result)| result)
        };
        match run.await {
            Ok(result) => {
                let text = self.answer_text(&result);
                structured(result, text)
            }
            Err(e) => failed(e),
        }
    }

    #[tool(description = WAIT_FOR_ANSWER)]
    async fn wait_for_answer(
        &self,
        Parameters(args): Parameters<WaitForAnswerArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            let session_id = parse_id("agent_instance_id", &args.agent_instance_id)?;
            let question_id = parse_id("question_id", &args.question_id)?;
            self.answer_result(&caller, session_id, question_id, &ctx)
                .await
        };
        match run.await {
            Ok(result) => {
                let text = self.answer_text(&result);
                structured(result, text)
            }
            Err(e) => failed(e),
        }
    }

    #[tool(description = SEND_MESSAGE)]
    async fn send_message(
        &self,
        Parameters(args): Parameters<SendMessageArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            required("content", &args.content)?;
            let session_id = new_or_existing(args.agent_instance_id.as_deref())?;
            let outgoing = Outgoing {
                session_id,
                agent_type: args
                    .agent_type
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| caller.agent_type.clone()),
                content: args.content,
                requires_user_input: args.requires_user_input.unwrap_or(false),
            };
            let (sent, answer) = if outgoing.requires_user_input {
                let (sent, answer) = self.ask(&caller, outgoing, &ctx).await?;
                (sent, Some(answer))
            } else {
                (self.backend.send(&caller, outgoing).await?, None)
            };
            Ok::<_, ToolError>(SendMessageResult {
                success: true,
                agent_instance_id: sent.session_id,
                message_id: sent.message_id,
                queued_user_messages: sent.queued,
                question_id: answer.as_ref().map(|a| a.question_id),
                status: answer.as_ref().map(|a| a.status),
                answer: answer.and_then(|a| a.answer),
            })
        };
        match run.await {
            Ok(result) => {
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
                structured(result, text)
            }
            Err(e) => failed(e),
        }
    }

    #[tool(description = END_SESSION)]
    async fn end_session(
        &self,
        Parameters(args): Parameters<EndSessionArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Outcome {
        let caller = self.caller(&ctx);
        let run = async {
            let session_id = parse_id("agent_instance_id", &args.agent_instance_id)?;
            let final_status = self.backend.end(&caller, session_id).await?;
            Ok::<_, ToolError>(EndSessionResult {
                success: true,
                agent_instance_id: session_id,
                final_status,
            })
        };
        match run.await {
            Ok(result) => {
                let text = format!(
                    "Session {} ended ({}).",
                    result.agent_instance_id, result.final_status
                );
                structured(result, text)
            }
            Err(e) => failed(e),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AgentTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "switchboard",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }
}
