//! `/api/v1/messages/*`: the conversation between an agent and its person.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::app::AppState;
use crate::commands::{
    self, AgentMessageInput, CommandError, Context, PendingStatus, UserMessageInput,
};
use crate::domain::questions::{self, RawDescription, Target};
use crate::domain::{self, AgentType, Content, GitDiffUpdate, InvalidInput, choices};
use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, Params, PathParams};
use crate::http::streamed::{self, Shape};
use crate::metrics::{Parked, Waiter};
use crate::wire::{self, MessageJson};

#[derive(Debug, Deserialize)]
pub struct AgentMessageBody {
    agent_instance_id: String,
    #[serde(default)]
    agent_type: Option<String>,
    content: String,
    #[serde(default)]
    requires_user_input: bool,
    #[serde(default)]
    send_email: Option<bool>,
    #[serde(default)]
    send_sms: Option<bool>,
    #[serde(default)]
    send_push: Option<bool>,
    #[serde(default)]
    git_diff: Option<String>,
    #[serde(default)]
    message_metadata: Option<Map<String, Value>>,
    /// Choices a question offers.
    #[serde(default)]
    options: Option<Vec<String>>,
    /// A tool call the question asks leave for.
    #[serde(default)]
    approval: Option<ApprovalBody>,
    /// A question asking what to do next, after a finished turn.
    #[serde(default)]
    next_instruction: bool,
    /// A question unanswered this long expires.
    #[serde(default)]
    expires_in_seconds: Option<f64>,
    /// Leave the person's queued messages unread: they are not returned, and the read
    /// cursor stays where it is.
    #[serde(default)]
    leave_unread: bool,
    /// What the session is about and where it runs (an object: see [`SessionBody`]).
    #[serde(default)]
    session: Option<Map<String, Value>>,
    /// The message reports a tool the agent used.
    #[serde(default)]
    activity: Option<ActivityBody>,
}

#[derive(Debug, Deserialize)]
pub struct ActivityBody {
    tool: String,
    #[serde(default)]
    summary: String,
    ok: bool,
    #[serde(default, deserialize_with = "crate::wire::optional_whole_number")]
    duration_ms: Option<u64>,
    #[serde(default)]
    output: Option<String>,
}

/// A session's title and context, as a request gives them.
#[derive(Debug, Default, Deserialize)]
pub struct SessionBody {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    /// The agent's client program and version.
    #[serde(default)]
    pub client: Option<String>,
}

impl SessionBody {
    pub fn raw(&self) -> RawDescription<'_> {
        RawDescription {
            title: self.title.as_deref(),
            project: self.project.as_deref(),
            cwd: self.cwd.as_deref(),
            branch: self.branch.as_deref(),
            host: self.host.as_deref(),
            client: self.client.as_deref(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApprovalBody {
    tool_name: String,
    input: Map<String, Value>,
    #[serde(default)]
    tool_use_id: Option<String>,
    /// Permission rules "Always allow" adds (Claude Code's `permission_suggestions`).
    #[serde(default)]
    suggestions: Vec<Value>,
    /// The agent runs the call as asked or not at all: no edited input.
    #[serde(default)]
    input_fixed: bool,
}

#[derive(Debug, Serialize)]
pub struct AgentMessageResponse {
    success: bool,
    agent_instance_id: Uuid,
    message_id: Uuid,
    // `queued_user_messages`, written as they are read (see `streamed`).
    /// Extension: plain steps the session has logged, this message included.
    step_number: i32,
}

pub async fn agent_message(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Body(body): Body<AgentMessageBody>,
) -> Result<Response, ApiError> {
    let message_metadata = body
        .message_metadata
        .map(|m| domain::message_metadata("message_metadata", m))
        .transpose()?;
    // What the metadata says of the session, and what the explicit fields say over it.
    let mut describe = message_metadata
        .as_ref()
        .map(questions::described_by_metadata)
        .unwrap_or_default();
    if let Some(session) = body.session {
        let session: SessionBody = serde_json::from_value(Value::Object(session))
            .map_err(|e| InvalidInput::new("session", e.to_string()))?;
        let explicit = session.raw().parse("session")?;
        let over = |field: &mut Option<String>, given: Option<String>| {
            if given.is_some() {
                *field = given;
            }
        };
        over(&mut describe.title, explicit.title);
        over(&mut describe.project, explicit.project);
        over(&mut describe.cwd, explicit.cwd);
        over(&mut describe.branch, explicit.branch);
        over(&mut describe.host, explicit.host);
        over(&mut describe.client, explicit.client);
    }
    let input = AgentMessageInput {
        session_id: domain::parse_uuid("agent_instance_id", &body.agent_instance_id)?,
        agent_type: body
            .agent_type
            .as_deref()
            .map(|t| AgentType::parse("agent_type", t))
            .transpose()?,
        content: Content::parse("content", body.content)?,
        requires_user_input: body.requires_user_input,
        send_email: body.send_email,
        send_sms: body.send_sms,
        send_push: body.send_push,
        git_diff: body
            .git_diff
            .as_deref()
            .map(|d| GitDiffUpdate::parse("git_diff", d))
            .transpose()?,
        message_metadata,
        options: body
            .options
            .map(|o| choices::options("options", o))
            .transpose()?,
        approval: body
            .approval
            .map(|a| {
                let approval = choices::approval(
                    &a.tool_name,
                    a.input,
                    a.tool_use_id.as_deref(),
                    a.suggestions,
                );
                approval.map(|approval| projections::Approval {
                    input_fixed: a.input_fixed,
                    ..approval
                })
            })
            .transpose()?,
        next_instruction: body.next_instruction,
        expires_in: body
            .expires_in_seconds
            .map(|s| questions::expires_in("expires_in_seconds", s))
            .transpose()?,
        leaves_unread: body.leave_unread,
        describe,
        activity: body
            .activity
            .map(|a| {
                questions::activity(
                    "activity",
                    projections::ToolActivity {
                        tool: a.tool,
                        summary: a.summary,
                        ok: a.ok,
                        duration_ms: a.duration_ms,
                        output: a.output,
                    },
                )
            })
            .transpose()?,
    };
    let sent = commands::send_agent_message(&app.log, &ctx, input).await?;
    let head = AgentMessageResponse {
        success: true,
        agent_instance_id: sent.session_id,
        message_id: sent.message_id,
        step_number: sent.step_number,
    };
    let (log, tenant, queued) = (&app.log, ctx.tenant_id, sent.queued_user_messages);
    streamed::with_messages(
        &head,
        "queued_user_messages",
        log,
        tenant,
        queued,
        Shape::Sdk,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct UserMessageBody {
    agent_instance_id: String,
    content: String,
    #[serde(default = "default_true")]
    mark_as_read: bool,
    /// Allow a tool call with this input instead (only as the answer "Allow" to an approval).
    #[serde(default)]
    updated_input: Option<Map<String, Value>>,
    /// The question this answers: its id, or `null` for none; absent, the newest open one.
    #[serde(default, deserialize_with = "present")]
    question_id: Option<Value>,
    /// Typed in the agent's own terminal (a hook reports it): delivered there, answers nothing.
    #[serde(default)]
    terminal: bool,
}

fn default_true() -> bool {
    true
}

/// A field that was sent, `null` included (absent stays `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Debug, Serialize)]
pub struct UserMessageResponse {
    success: bool,
    message_id: Uuid,
    marked_as_read: bool,
    /// Extension: the option of the open question this message chose (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    chosen_option: Option<String>,
    /// Extension: the question this message answered (absent when it answered none).
    #[serde(skip_serializing_if = "Option::is_none")]
    question_id: Option<Uuid>,
}

pub async fn user_message(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Body(body): Body<UserMessageBody>,
) -> Result<Json<UserMessageResponse>, ApiError> {
    let input = UserMessageInput {
        session_id: domain::parse_uuid("agent_instance_id", &body.agent_instance_id)?,
        content: Content::parse("content", body.content)?,
        mark_as_read: body.mark_as_read,
        updated_input: body
            .updated_input
            .map(|i| choices::tool_input("updated_input", i))
            .transpose()?,
        target: Target::parse("question_id", body.question_id.as_ref())?,
        terminal: body.terminal,
    };
    let sent = commands::send_user_message(&app.log, &ctx, input).await?;
    Ok(Json(UserMessageResponse {
        success: true,
        message_id: sent.message_id,
        marked_as_read: sent.marked_as_read,
        chosen_option: sent.chosen_option,
        question_id: sent.question_id,
    }))
}

#[derive(Debug, Deserialize)]
pub struct PendingQuery {
    agent_instance_id: String,
    #[serde(default)]
    last_read_message_id: Option<String>,
    /// Wait for the answer to this question (instead of reading by cursor).
    #[serde(default)]
    question_id: Option<String>,
    /// Seconds to hold the request when there is nothing yet (0–300).
    #[serde(default)]
    wait: Option<String>,
}

/// The longest a long-poll may be held.
const MAX_WAIT_SECONDS: f64 = 300.0;

fn parse_wait(text: &str) -> Result<Duration, InvalidInput> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..=MAX_WAIT_SECONDS).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| InvalidInput::new("wait", "must be a number of seconds from 0 to 300"))
}

#[derive(Debug, Serialize)]
pub struct PendingResponse {
    agent_instance_id: Uuid,
    messages: Vec<MessageJson>,
    status: PendingStatus,
}

/// A [`PendingResponse`] whose messages are written as they are read (see `streamed`).
#[derive(Debug, Serialize)]
struct PendingHead {
    agent_instance_id: Uuid,
    status: PendingStatus,
}

pub async fn pending(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Params(query): Params<PendingQuery>,
) -> Result<Response, ApiError> {
    let session_id = domain::parse_uuid("agent_instance_id", &query.agent_instance_id)?;
    // An empty value means "not given", as in the system this replaces.
    let last_read = query
        .last_read_message_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| domain::parse_uuid("last_read_message_id", s))
        .transpose()?;
    let wait = query
        .wait
        .as_deref()
        .map(parse_wait)
        .transpose()?
        .unwrap_or_default();
    let question_id = query
        .question_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| domain::parse_uuid("question_id", s))
        .transpose()?;
    if let Some(question_id) = question_id {
        if last_read.is_some() {
            return Err(InvalidInput::new(
                "question_id",
                "waits for one question's answer; do not give last_read_message_id with it",
            )
            .into());
        }
        let answer = question_answer(&app, &ctx, session_id, question_id, wait).await?;
        return Ok(Json(PendingResponse {
            agent_instance_id: session_id,
            messages: answer
                .map(|a| wire::messages(&a.messages))
                .unwrap_or_default(),
            status: PendingStatus::Ok,
        })
        .into_response());
    }
    let pending = answer(&app, &ctx, session_id, last_read, wait).await?;
    let head = PendingHead {
        agent_instance_id: pending.session_id,
        status: pending.status,
    };
    let (log, tenant) = (&app.log, ctx.tenant_id);
    streamed::with_messages(&head, "messages", log, tenant, pending.messages, Shape::Sdk).await
}

/// The answer to `question_id`, now or after waiting up to `wait`; a client that hangs up
/// while it waits has abandoned the wait. Boxed like [`answer`].
fn question_answer<'a>(
    app: &'a AppState,
    ctx: &'a Context,
    session_id: Uuid,
    question_id: Uuid,
    wait: Duration,
) -> futures::future::BoxFuture<'a, Result<Option<commands::Answer>, CommandError>> {
    Box::pin(async move {
        let _parked = Parked::new(Waiter::LongPoll);
        let mut access = app.auth.guard(ctx.grant);
        let mut watch =
            commands::waits::Abandonment::new(app.log.pool(), ctx, session_id, question_id);
        if !wait.is_zero() {
            let until = time::OffsetDateTime::now_utc() + wait;
            commands::waits::waiting(
                app.log.pool(),
                ctx.tenant_id,
                session_id,
                question_id,
                until,
            )
            .await;
        }
        let answer = commands::wait_for_answer(
            &app.log,
            &app.hub,
            ctx,
            session_id,
            question_id,
            wait,
            &app.shutdown,
            &mut access,
        )
        .await;
        watch.finished();
        answer
    })
}

/// The pending messages, now or after waiting. Boxed here, outside the handler, so that a
/// parked long-poll holds only the small waiting loop (measured: the handler's own future
/// shrinks from 4.3 KiB to well under 1 KiB per parked request).
fn answer<'a>(
    app: &'a AppState,
    ctx: &'a Context,
    session_id: Uuid,
    last_read: Option<Uuid>,
    wait: Duration,
) -> futures::future::BoxFuture<'a, Result<commands::Pending, CommandError>> {
    if wait.is_zero() {
        Box::pin(commands::pending(&app.log, ctx, session_id, last_read))
    } else {
        Box::pin(async move {
            let _parked = Parked::new(Waiter::LongPoll);
            let mut access = app.auth.guard(ctx.grant);
            commands::wait_for_pending(
                &app.log,
                &app.hub,
                ctx,
                session_id,
                last_read,
                wait,
                &app.shutdown,
                &mut access,
            )
            .await
        })
    }
}

#[derive(Debug, Serialize)]
pub struct RequestInputResponse {
    success: bool,
    message_id: Uuid,
    agent_instance_id: Uuid,
    // `messages`, written as they are read (see `streamed`).
    status: PendingStatus,
}

pub async fn request_input(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(message_id): PathParams<String>,
) -> Result<Response, ApiError> {
    let message_id = domain::parse_uuid("message_id", &message_id)?;
    let result = commands::request_input(&app.log, &ctx, message_id).await?;
    let head = RequestInputResponse {
        success: true,
        message_id: result.message_id,
        agent_instance_id: result.session_id,
        status: result.status,
    };
    let (log, tenant) = (&app.log, ctx.tenant_id);
    streamed::with_messages(&head, "messages", log, tenant, result.messages, Shape::Sdk).await
}
