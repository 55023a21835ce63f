//! `/api/v1/sessions/{id}/questions*`: a session's requests and how each stands, and an
//! asker's withdrawal of one it no longer waits for.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use projections::{Actor, QuestionStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::AppState;
use crate::commands::{self, CommandError};
use crate::domain::{self, InvalidInput, questions};
use crate::eventlog::read::{self, Page};
use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, Params, PathParams};
use crate::wire::{QuestionJson, timestamp};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    /// The `asked_seq` of the last question of the previous page.
    #[serde(default)]
    after: Option<String>,
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;
/// The most one page carries of what the questions asked.
const PAGE_BYTES: i64 = 4 << 20;

/// A session's questions, oldest first (a JSON array). A full page carries a
/// `Link: <…>; rel="next"` header naming the next page.
pub async fn list(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams(session_id): PathParams<String>,
    Params(query): Params<ListQuery>,
) -> Result<Response, ApiError> {
    let session_id = domain::parse_uuid("session_id", &session_id)?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            QuestionStatus::parse(s).ok_or_else(|| {
                InvalidInput::new("status", "must be open, answered, withdrawn or expired")
            })
        })
        .transpose()?;
    let limit = domain::parse_limit(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = query
        .after
        .as_deref()
        .map(|a| {
            a.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| InvalidInput::new("after", "must be a sequence number (0 or more)"))
        })
        .transpose()?
        .unwrap_or(0);
    let found = async {
        if app.log.session(ctx.tenant_id, session_id).await?.is_none() {
            return Ok(None);
        }
        let mut conn = app.log.pool().acquire().await?;
        let page = Page {
            rows: limit,
            bytes: PAGE_BYTES,
        };
        let questions =
            read::question_page(&mut conn, ctx.tenant_id, session_id, status, after, page).await?;
        Ok::<_, crate::eventlog::LogError>(Some((questions, page)))
    };
    let Some((questions, page)) = found.await.map_err(CommandError::from)? else {
        return Err(ApiError::not_found(format!(
            "session {session_id} not found"
        )));
    };
    let ids: Vec<Uuid> = questions.iter().map(|(q, _)| q.id).collect();
    let waits = commands::waits::waits(app.log.pool(), ctx.tenant_id, session_id, &ids)
        .await
        .map_err(|e| CommandError::from(crate::eventlog::LogError::from(e)))?;
    let now = time::OffsetDateTime::now_utc();
    let body: Vec<QuestionJson> = questions
        .iter()
        .map(|(q, asked)| QuestionJson::new(q, asked, waits.get(&q.id), now))
        .collect();
    let cut_short = questions.len() as i64 >= page.rows
        || questions.len() < ids.len()
        || body.iter().map(|q| q.content.len()).sum::<usize>() as i64 >= page.bytes;
    let next = questions.last().filter(|_| cut_short).map(|(last, _)| {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        if let Some(status) = status {
            next.append_pair("status", status.as_str());
        }
        next.append_pair("limit", &limit.to_string());
        next.append_pair("after", &last.asked_seq.to_string());
        format!(
            "</api/v1/sessions/{session_id}/questions?{}>; rel=\"next\"",
            next.finish()
        )
    });
    let body = Json(body);
    Ok(
        match next.and_then(|link| HeaderValue::from_str(&link).ok()) {
            Some(link) => ([(header::LINK, link)], body).into_response(),
            None => body.into_response(),
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct WithdrawBody {
    reason: String,
}

#[derive(Debug, Serialize)]
pub struct WithdrawResponse {
    success: bool,
    question_id: Uuid,
    status: QuestionStatus,
    closed_at: String,
}

/// The asker withdraws an open question: nobody waits for its answer any more.
pub async fn withdraw(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    PathParams((session_id, question_id)): PathParams<(String, String)>,
    Body(body): Body<WithdrawBody>,
) -> Result<Json<WithdrawResponse>, ApiError> {
    let session_id = domain::parse_uuid("session_id", &session_id)?;
    let question_id = domain::parse_uuid("question_id", &question_id)?;
    let reason = questions::reason("reason", &body.reason)?;
    let by = match ctx.speaker() {
        Actor::User => Actor::User,
        _ => Actor::Agent,
    };
    let closed =
        commands::withdraw_question(&app.log, &ctx, session_id, question_id, by, reason).await?;
    Ok(Json(WithdrawResponse {
        success: true,
        question_id: closed.question_id,
        status: closed.status,
        closed_at: timestamp(closed.closed_at),
    }))
}
