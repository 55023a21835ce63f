//! Server-sent events: `GET /api/v1/sessions/{id}/stream` (one session) and
//! `GET /api/v1/stream` (all of the tenant's sessions).
//!
//! Each event's `id:` is its tenant sequence number. A stream registers with the hub, then
//! reads the log after the last id it sent, sends that, and sleeps until nudged; so catch-up
//! (from `Last-Event-ID`) and live delivery are the same loop, with no gap or duplicate at the
//! seam (the sequence is gap-free and commit-ordered, so "after the last id" never skips).
//!
//! Nothing is queued per subscriber: a stream reads the log only as fast as its client takes
//! events, holding at most one batch, so a slow consumer costs no memory and delays no one.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::AccessGuard;
use crate::commands::{CommandError, Context};
use crate::domain::{self, InvalidInput};
use crate::eventlog::read::{self, Page, StoredEvent};
use crate::http::error::ApiError;
use crate::http::extract::{self, Params, PathParams};
use crate::metrics::{Parked, Waiter};
use crate::push::Watch;

/// What a stream reads from the log at a time: a subscriber holds at most this (plus one
/// event, however large), so idle readers of large events cost little.
const BATCH: Page = Page {
    rows: 200,
    bytes: 1 << 20,
};

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// For browsers' EventSource, which cannot send headers.
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    last_event_id: Option<String>,
}

pub async fn session_stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    PathParams(session_id): PathParams<String>,
    Params(query): Params<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let session_id = domain::parse_uuid("session_id", &session_id)?;
    let ctx = caller(&app, &headers, &query).await?;
    if app
        .log
        .session(ctx.tenant_id, session_id)
        .await
        .map_err(CommandError::from)?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "session {session_id} not found"
        )));
    }
    let resume = last_event_id(&headers, &query)?;
    let watch = app.hub.watch_session(ctx.tenant_id, session_id);
    stream(app, ctx, Some(session_id), watch, resume).await
}

pub async fn tenant_stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    Params(query): Params<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let ctx = caller(&app, &headers, &query).await?;
    let resume = last_event_id(&headers, &query)?;
    let watch = app.hub.watch_tenant(ctx.tenant_id);
    stream(app, ctx, None, watch, resume).await
}

/// The Bearer header, else `?access_token=`, else the inbox cookie.
async fn caller(
    app: &AppState,
    headers: &HeaderMap,
    query: &StreamQuery,
) -> Result<Context, ApiError> {
    let token = query.access_token.as_deref();
    Box::pin(extract::caller(app, &Method::GET, headers, token)).await
}

/// Resume point: `Last-Event-ID` header, else `last_event_id`; without either, from now on.
fn last_event_id(headers: &HeaderMap, query: &StreamQuery) -> Result<Option<i64>, InvalidInput> {
    let given = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(query.last_event_id.as_deref());
    given
        .map(|text| {
            text.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    InvalidInput::new("Last-Event-ID", "must be a sequence number (0 or more)")
                })
        })
        .transpose()
}

/// One subscriber's position in the log.
struct Feed {
    app: AppState,
    /// The subscriber's credential: checked before every event, and the stream ends when it
    /// is revoked or expires.
    access: AccessGuard,
    tenant_id: Uuid,
    session_id: Option<Uuid>,
    last_sent: i64,
    batch: VecDeque<StoredEvent>,
    watch: Watch,
    _parked: Parked,
}

async fn stream(
    app: AppState,
    ctx: Context,
    session_id: Option<Uuid>,
    watch: Watch,
    resume: Option<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // The watch is registered before the head is read: nothing committed after it is missed.
    let last_sent = match resume {
        Some(id) => id,
        None => {
            let head = async {
                let mut conn = app.log.pool().acquire().await?;
                read::tenant_head(&mut conn, ctx.tenant_id).await
            };
            head.await.map_err(CommandError::from)?
        }
    };
    let keep_alive = app.config.keep_alive;
    let feed = Feed {
        access: app.auth.guard(ctx.grant),
        app,
        tenant_id: ctx.tenant_id,
        session_id,
        last_sent,
        batch: VecDeque::new(),
        watch,
        _parked: Parked::new(Waiter::Sse),
    };
    let events = futures::stream::unfold(feed, next_event);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive)))
}

/// The next event for the subscriber: from the batch in hand, else from the log, else after
/// the next nudge. Ends on shutdown, if the log cannot be read (the client resumes with
/// Last-Event-ID), and when the subscriber's credential ends (its reconnect then gets 401).
async fn next_event(mut feed: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    loop {
        if !feed.batch.is_empty()
            && let Err(e) = feed.access.check().await
        {
            tracing::info!("event stream ends: {e}");
            return None;
        }
        if let Some(event) = feed.batch.pop_front() {
            feed.last_sent = event.seq;
            let sse = Event::default()
                .id(event.seq.to_string())
                .event(event.event_type.clone())
                .data(event.to_json());
            return Some((Ok(sse), feed));
        }
        let read = async {
            let mut conn = feed.app.log.pool().acquire().await?;
            read::events_after(
                &mut conn,
                feed.tenant_id,
                feed.session_id,
                feed.last_sent,
                BATCH,
            )
            .await
        };
        match read.await {
            Ok(events) if !events.is_empty() => {
                feed.batch.extend(events);
                continue;
            }
            // Everything up to what was sent has been read: announcements of it are no news.
            Ok(_) => feed.watch.observe(feed.last_sent),
            Err(e) => {
                tracing::warn!("event stream ends, the log cannot be read: {e}");
                return None;
            }
        }
        let shutdown = feed.app.shutdown.clone();
        tokio::select! {
            _ = feed.watch.changed() => {}
            _ = shutdown.cancelled() => return None,
            ended = feed.access.ended() => {
                tracing::info!("event stream ends: {ended}");
                return None;
            }
        }
    }
}
