//! `/api/v1/sessions*` and the heartbeat: a session's life and what a dashboard shows of it.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use projections::SessionStatus;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::commands::{self, CommandError};
use crate::domain::{self, InvalidInput};
use crate::eventlog::read::SessionFilter;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, Params, PathParams};
use crate::http::streamed::{self, Shape};
use crate::wire::{self, MessageJson, SessionJson};

#[derive(Debug, Deserialize)]
pub struct EndSessionBody {
    agent_instance_id: String,
}

#[derive(Debug, Serialize)]
pub struct EndSessionResponse {
    success: bool,
    agent_instance_id: Uuid,
    final_status: SessionStatus,
}

pub async fn end(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Body(body): Body<EndSessionBody>,
) -> Result<Json<EndSessionResponse>, ApiError> {
    let session_id = domain::parse_uuid("agent_instance_id", &body.agent_instance_id)?;
    let ended = commands::end_session(&app.log, &ctx, session_id).await?;
    Ok(Json(EndSessionResponse {
        success: true,
        agent_instance_id: ended.session_id,
        final_status: ended.final_status,
    }))
}

#[derive(Debug, Serialize)]
pub struct HeartbeatResponse {
    agent_instance_id: Uuid,
    last_heartbeat_at: String,
}

pub async fn heartbeat(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(session_id): PathParams<String>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let session_id = domain::parse_uuid("agent_instance_id", &session_id)?;
    let beat = commands::heartbeat(&app.log, &ctx, session_id).await?;
    Ok(Json(HeartbeatResponse {
        agent_instance_id: beat.session_id,
        last_heartbeat_at: wire::timestamp(beat.last_heartbeat_at),
    }))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    before: Option<String>,
    /// With `before`: the id of the last session seen at that time (keyset paging).
    #[serde(default)]
    before_id: Option<String>,
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

impl ListQuery {
    fn filter(&self) -> Result<SessionFilter, InvalidInput> {
        let status = self
            .status
            .as_deref()
            .map(|s| {
                SessionStatus::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
                    InvalidInput::new("status", "must be ACTIVE, AWAITING_INPUT or COMPLETED")
                })
            })
            .transpose()?;
        let limit = domain::parse_limit(self.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        let before =
            self.before
                .as_deref()
                .map(|text| {
                    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                        .map_err(|_| {
                            InvalidInput::new(
                                "before",
                                "must be an RFC 3339 time such as 2026-01-02T03:04:05Z",
                            )
                        })
                })
                .transpose()?;
        let before_id = self
            .before_id
            .as_deref()
            .map(|id| domain::parse_uuid("before_id", id))
            .transpose()?;
        if before_id.is_some() && before.is_none() {
            return Err(InvalidInput::new(
                "before_id",
                "is only meaningful with before (the last_activity_at of that session)",
            ));
        }
        Ok(SessionFilter {
            status,
            before,
            before_id,
            limit,
        })
    }
}

/// A page of sessions (a JSON array, as the contract has it). A full page carries a
/// `Link: <…>; rel="next"` header naming the next page.
pub async fn list(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Params(query): Params<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter()?;
    let sessions = app
        .log
        .sessions(ctx.tenant_id, filter)
        .await
        .map_err(CommandError::from)?;
    let next = sessions
        .last()
        .filter(|_| sessions.len() as i64 == filter.limit)
        .map(|last| {
            let mut next = url::form_urlencoded::Serializer::new(String::new());
            if let Some(status) = filter.status {
                next.append_pair("status", status.as_str());
            }
            next.append_pair("limit", &filter.limit.to_string());
            next.append_pair("before", &wire::timestamp(last.last_activity_at));
            next.append_pair("before_id", &last.id.to_string());
            format!("</api/v1/sessions?{}>; rel=\"next\"", next.finish())
        });
    let body = Json(sessions.iter().map(SessionJson::from).collect::<Vec<_>>());
    Ok(
        match next.and_then(|link| HeaderValue::from_str(&link).ok()) {
            Some(link) => ([(header::LINK, link)], body).into_response(),
            None => body.into_response(),
        },
    )
}

#[derive(Debug, Serialize)]
pub struct SessionDetail {
    #[serde(flatten)]
    session: SessionJson,
    git_diff: Option<String>,
    last_heartbeat_at: Option<String>,
    messages: Vec<MessageJson>,
}

pub async fn get(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(session_id): PathParams<String>,
) -> Result<Json<SessionDetail>, ApiError> {
    let session_id = domain::parse_uuid("session_id", &session_id)?;
    let state = app
        .log
        .session(ctx.tenant_id, session_id)
        .await
        .map_err(CommandError::from)?
        .ok_or_else(|| not_found(session_id))?;
    let messages = session_messages(&app, ctx.tenant_id, session_id).await?;
    let heartbeat = app
        .log
        .last_heartbeat(ctx.tenant_id, session_id)
        .await
        .map_err(CommandError::from)?;
    Ok(Json(SessionDetail {
        session: SessionJson::from(&state.session),
        git_diff: state.session.git_diff.clone(),
        last_heartbeat_at: heartbeat.map(wire::timestamp),
        messages,
    }))
}

pub async fn messages(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(session_id): PathParams<String>,
) -> Result<Json<Vec<MessageJson>>, ApiError> {
    let session_id = domain::parse_uuid("session_id", &session_id)?;
    let messages = session_messages(&app, ctx.tenant_id, session_id).await?;
    if messages.is_empty() {
        // Every session starts with an agent message; none means no such session here.
        return Err(not_found(session_id));
    }
    Ok(Json(messages))
}

async fn session_messages(
    app: &AppState,
    tenant_id: Uuid,
    session_id: Uuid,
) -> Result<Vec<MessageJson>, ApiError> {
    let events = app
        .log
        .stream(tenant_id, session_id)
        .await
        .map_err(CommandError::from)?;
    Ok(wire::messages(&projections::messages(&events)))
}

/// A session's title and context, as a person (or its agent) edits them.
#[derive(Debug, Deserialize)]
pub struct DescribeBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    host: Option<String>,
}

/// `PATCH /sessions/{id}`: set (or, with "", clear) the session's title and context.
pub async fn describe(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(session_id): PathParams<String>,
    Body(body): Body<DescribeBody>,
) -> Result<Json<SessionJson>, ApiError> {
    let session_id = domain::parse_uuid("session_id", &session_id)?;
    let described = domain::questions::RawDescription {
        title: body.title.as_deref(),
        project: body.project.as_deref(),
        cwd: body.cwd.as_deref(),
        branch: body.branch.as_deref(),
        host: body.host.as_deref(),
        client: None,
    }
    .parse("session")?;
    commands::describe_session(&app.log, &ctx, session_id, described).await?;
    let state = app
        .log
        .session(ctx.tenant_id, session_id)
        .await
        .map_err(CommandError::from)?
        .ok_or_else(|| not_found(session_id))?;
    Ok(Json(SessionJson::from(&state.session)))
}

#[derive(Debug, Deserialize)]
pub struct ExitedBody {
    reason: String,
}

#[derive(Debug, Serialize)]
pub struct ExitedResponse {
    success: bool,
    /// False when it was recorded already.
    recorded: bool,
}

/// `POST /sessions/{id}/exited`: the session's agent process exited (its open questions are
/// withdrawn); the session goes on, and the agent receives what is sent when it runs again.
pub async fn exited(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(session_id): PathParams<String>,
    Body(body): Body<ExitedBody>,
) -> Result<Json<ExitedResponse>, ApiError> {
    let session_id = domain::parse_uuid("session_id", &session_id)?;
    let reason = domain::questions::reason("reason", &body.reason)?;
    let recorded = commands::agent_exited(&app.log, &ctx, session_id, reason).await?;
    Ok(Json(ExitedResponse {
        success: true,
        recorded,
    }))
}

#[derive(Debug, Serialize)]
pub struct ReceivedResponse {
    agent_instance_id: Uuid,
    // `messages`: every message the person had queued for the agent, oldest first (now read).
}

/// `POST /sessions/{id}/receive`: the agent takes every message queued for it, now.
pub async fn receive(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(session_id): PathParams<String>,
) -> Result<Response, ApiError> {
    let session_id = domain::parse_uuid("session_id", &session_id)?;
    let refs = commands::receive_all(&app.log, &ctx, session_id).await?;
    let head = ReceivedResponse {
        agent_instance_id: session_id,
    };
    let (log, tenant) = (&app.log, ctx.tenant_id);
    streamed::with_messages(&head, "messages", log, tenant, refs, Shape::Full).await
}

fn not_found(session_id: Uuid) -> ApiError {
    ApiError::not_found(format!("session {session_id} not found"))
}
