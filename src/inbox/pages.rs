//! The inbox's pages and the fragments that keep them live. Each handler finds the signed-in
//! person (the session cookie), reads, and renders; a page without a signed-in person sends the
//! browser to the sign-in page, a fragment answers 401 (its script then does the same).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::views::{self, Frame, SessionHead};
use super::{read, session_path};
use crate::app::AppState;
use crate::auth::AuthError;
use crate::eventlog::LogError;
use crate::eventlog::read::{Page, StoredEvent, events_after};

/// The most of a session a page shows (its newest events).
const TIMELINE: Page = Page {
    rows: 300,
    bytes: 8 * 1024 * 1024,
};
/// The most a fragment carries; the page asks again for the rest.
const FRAGMENT: Page = Page {
    rows: 200,
    bytes: 4 * 1024 * 1024,
};

/// A rendered page, never cached: it shows one person's conversations.
pub fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// The frame of a page for a person (with the waiting count) or for nobody yet.
pub fn frame(app: &AppState, waiting: Option<i64>) -> Frame<'_> {
    Frame {
        base: app.config.public_url.path(),
        waiting,
    }
}

/// A page that explains a failure.
pub fn problem(app: &AppState, status: StatusCode, heading: &str, text: &str) -> Response {
    let sign_in = status == StatusCode::UNAUTHORIZED;
    html(
        status,
        views::problem(&frame(app, None), heading, text, sign_in),
    )
}

fn unavailable(app: &AppState, e: &LogError) -> Response {
    tracing::warn!("inbox page failed: {e}");
    if e.is_unavailable() {
        problem(
            app,
            StatusCode::SERVICE_UNAVAILABLE,
            "Switchboard is unavailable",
            "The database cannot be reached right now. Try again in a moment.",
        )
    } else {
        problem(
            app,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The page could not be shown. Try again in a moment.",
        )
    }
}

fn session_not_found(app: &AppState) -> Response {
    problem(
        app,
        StatusCode::NOT_FOUND,
        "Session not found",
        "There is no such session in your inbox.",
    )
}

/// The signed-in person's tenant, if the request carries a good session cookie.
pub async fn signed_in(app: &AppState, headers: &HeaderMap) -> Result<Option<Uuid>, AuthError> {
    let site = app.config.public_url.site();
    let Some(cookie) = site.session_cookie(headers) else {
        return Ok(None);
    };
    match app.auth.authenticate_web_session(cookie).await {
        Ok(identity) => Ok(Some(identity.tenant_id)),
        Err(AuthError::Unavailable) => Err(AuthError::Unavailable),
        Err(_) => Ok(None),
    }
}

/// The signed-in person's tenant, else a response that sends the browser to sign in and then
/// on to `next` (a path relative to the public URL).
pub(super) async fn person(
    app: &AppState,
    headers: &HeaderMap,
    next: &str,
) -> Result<Uuid, Response> {
    match signed_in(app, headers).await {
        Ok(Some(tenant)) => Ok(tenant),
        Ok(None) => {
            let base = app.config.public_url.path();
            let to = if next.is_empty() {
                format!("{base}login")
            } else {
                format!("{base}login?next={next}")
            };
            Err(Redirect::to(&to).into_response())
        }
        Err(_) => Err(problem(
            app,
            StatusCode::SERVICE_UNAVAILABLE,
            "Switchboard is unavailable",
            "Your sign-in cannot be checked right now. Try again in a moment.",
        )),
    }
}

/// Does the client want a web page (a browser navigating) rather than JSON?
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

/// `/`: the inbox for browsers, the service description for everyone else.
pub async fn home(
    State(app): State<AppState>,
    headers: HeaderMap,
    service_info: fn() -> Response,
) -> Response {
    if !wants_html(&headers) {
        return service_info();
    }
    let tenant = match person(&app, &headers, "").await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let pool = app.log.pool();
    let listed = match read::sessions(pool, tenant).await {
        Ok(listed) => listed,
        Err(e) => return unavailable(&app, &e),
    };
    let waiting = listed
        .iter()
        .filter(|s| s.status() == projections::SessionStatus::AwaitingInput)
        .count() as i64;
    // The notice is a courtesy: without it the inbox still shows.
    let failing = match app.notifier.channel_health(tenant).await {
        Ok(health) => health.iter().filter(|h| h.failing).count(),
        Err(e) => {
            tracing::warn!("inbox: cannot read notification health: {e}");
            0
        }
    };
    let mcp_url = app.config.public_url.join("mcp");
    html(
        StatusCode::OK,
        views::inbox(&frame(&app, Some(waiting)), &listed, &mcp_url, failing),
    )
}

/// `/sessions/{id}`: one session's conversation, changes and reply box.
pub async fn session(
    State(app): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Some(session_id) = path.ok().and_then(|Path(id)| Uuid::try_parse(&id).ok()) else {
        return session_not_found(&app);
    };
    let tenant = match person(&app, &headers, &session_path(session_id)).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let shown = async {
        let Some(state) = app.log.session(tenant, session_id).await? else {
            return Ok(None);
        };
        let (events, earlier) =
            read::latest_events(app.log.pool(), tenant, session_id, TIMELINE).await?;
        let waiting = read::waiting(app.log.pool(), tenant).await?;
        Ok::<_, LogError>(Some((state.session, events, earlier, waiting)))
    };
    match shown.await {
        Ok(Some((session, events, earlier, waiting))) => {
            let head = head(&session);
            html(
                StatusCode::OK,
                views::session(&frame(&app, Some(waiting)), &head, &events, earlier),
            )
        }
        Ok(None) => session_not_found(&app),
        Err(e) => unavailable(&app, &e),
    }
}

fn head(session: &projections::Session) -> SessionHead<'_> {
    SessionHead {
        id: session.id,
        agent_type: &session.agent_type,
        status: session.status,
        started_at: session.started_at,
        last_activity_at: session.last_activity_at,
        git_diff: session.git_diff.as_deref(),
    }
}

/// What a fragment answers when it cannot be had. The page's script only reads the status.
pub(super) fn fragment_error(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({ "detail": detail }))).into_response()
}

pub(super) async fn fragment_person(app: &AppState, headers: &HeaderMap) -> Result<Uuid, Response> {
    match signed_in(app, headers).await {
        Ok(Some(tenant)) => Ok(tenant),
        Ok(None) => Err(fragment_error(
            StatusCode::UNAUTHORIZED,
            "You are not signed in",
        )),
        Err(e) => Err(fragment_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
        )),
    }
}

fn fragment_failed(e: &LogError) -> Response {
    tracing::warn!("inbox fragment failed: {e}");
    fragment_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the database is unavailable; retry shortly",
    )
}

/// `/inbox/list`: the session list, for the inbox page to swap in.
pub async fn list_fragment(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let tenant = match fragment_person(&app, &headers).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match read::sessions(app.log.pool(), tenant).await {
        Ok(listed) => {
            let mcp_url = app.config.public_url.join("mcp");
            let now = time::OffsetDateTime::now_utc();
            html(
                StatusCode::OK,
                views::session_list(&frame(&app, None), &listed, now, &mcp_url),
            )
        }
        Err(e) => fragment_failed(&e),
    }
}

#[derive(Debug, Deserialize)]
pub struct AfterQuery {
    #[serde(default)]
    after: Option<String>,
}

/// `/inbox/sessions/{id}?after=<seq>`: what changed in a session since the page's last item.
pub async fn session_fragment(
    State(app): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<Query<AfterQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let tenant = match fragment_person(&app, &headers).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let Some(session_id) = path.ok().and_then(|Path(id)| Uuid::try_parse(&id).ok()) else {
        return fragment_error(StatusCode::NOT_FOUND, "no such session");
    };
    let after = match query.map(|Query(q)| q.after) {
        Ok(None) => 0,
        Ok(Some(text)) => match text.parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                return fragment_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "after: must be a sequence number (0 or more)",
                );
            }
        },
        Err(_) => {
            return fragment_error(StatusCode::UNPROCESSABLE_ENTITY, "the query is not valid");
        }
    };
    let update = async {
        let Some(state) = app.log.session(tenant, session_id).await? else {
            return Ok(None);
        };
        let mut conn = app.log.pool().acquire().await?;
        let events: Vec<StoredEvent> =
            events_after(&mut conn, tenant, Some(session_id), after, FRAGMENT).await?;
        let waiting = read::waiting(app.log.pool(), tenant).await?;
        Ok::<_, LogError>(Some((state.session, events, waiting)))
    };
    match update.await {
        Ok(Some((session, events, waiting))) => {
            let more = read::filled(&events, FRAGMENT);
            let update =
                views::session_update(&frame(&app, None), &head(&session), &events, waiting, more);
            html(StatusCode::OK, update)
        }
        Ok(None) => fragment_error(StatusCode::NOT_FOUND, "no such session"),
        Err(e) => fragment_failed(&e),
    }
}

/// `/inbox/waiting`: how many sessions wait for an answer (for the tab title).
pub async fn waiting(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let tenant = match fragment_person(&app, &headers).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match read::waiting(app.log.pool(), tenant).await {
        Ok(waiting) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({ "waiting": waiting })),
        )
            .into_response(),
        Err(e) => fragment_failed(&e),
    }
}
