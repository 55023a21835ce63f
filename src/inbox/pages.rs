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

use super::views::{self, Frame, Questions, SessionHead};
use super::{read, session_path};
use crate::app::AppState;
use crate::auth::AuthError;
use crate::commands;
use crate::eventlog::LogError;
use crate::eventlog::read::{Page, StoredEvent, events_after};
use projections::Event;

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
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
    service_info: fn() -> Response,
) -> Response {
    if !wants_html(&headers) {
        return service_info();
    }
    let tenant = match person(&app, &headers, "").await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let list = match query.map(|Query(q)| q.parse()) {
        Ok(Ok(list)) => list,
        _ => read::ListQuery {
            limit: read::PAGE_SIZE,
            ..read::ListQuery::default()
        },
    };
    let pool = app.log.pool();
    let shown = async {
        let listed = read::sessions(pool, tenant, &list, app.config.idle_before()).await?;
        let waiting = read::waiting(pool, tenant).await?;
        Ok::<_, LogError>((listed, waiting))
    };
    let (listed, waiting) = match shown.await {
        Ok(shown) => shown,
        Err(e) => return unavailable(&app, &e),
    };
    // The notice is a courtesy: without it the inbox still shows.
    let failing = match app.notifier.channel_health(tenant).await {
        Ok(health) => health.iter().filter(|h| h.failing).count(),
        Err(e) => {
            tracing::warn!("inbox: cannot read notification health: {e}");
            0
        }
    };
    let server_url = app.config.public_url.join("");
    html(
        StatusCode::OK,
        views::inbox(
            &frame(&app, Some(waiting)),
            &listed,
            &list,
            &server_url,
            failing,
        ),
    )
}

/// The list's query: `show` (open, waiting, working, idle, ended, all), `q` (search), and the
/// position a "Show more" continues from (`after_waiting`, `after_at`, `after_id`).
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    show: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    after_waiting: Option<String>,
    #[serde(default)]
    after_at: Option<String>,
    #[serde(default)]
    after_id: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

/// The most sessions one list fragment carries (a page refreshing what it shows asks for as
/// many as it has, up to this).
const MAX_LIST: i64 = 500;

impl ListParams {
    fn parse(&self) -> Result<read::ListQuery, &'static str> {
        let show = read::Show::parse(self.show.as_deref().unwrap_or(""))
            .ok_or("show: must be open, waiting, working, idle, ended or all")?;
        let search = self
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(|q| q.chars().filter(|c| !c.is_control()).take(200).collect());
        let after = match (&self.after_waiting, &self.after_at, &self.after_id) {
            (None, None, None) => None,
            (Some(waiting), Some(at), Some(id)) => Some(read::After {
                waiting: waiting == "true",
                last_activity_at: time::OffsetDateTime::parse(
                    at,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|_| "after_at: must be an RFC 3339 time")?,
                id: Uuid::try_parse(id).map_err(|_| "after_id: must be a UUID")?,
            }),
            _ => return Err("after_waiting, after_at and after_id go together"),
        };
        let limit = match self.limit.as_deref() {
            None => read::PAGE_SIZE,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIST).contains(n))
                .ok_or("limit: must be a whole number from 1 to 500")?,
        };
        Ok(read::ListQuery {
            show,
            search,
            after,
            limit,
        })
    }
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
        let pool = app.log.pool();
        let (events, earlier) = read::latest_events(pool, tenant, session_id, TIMELINE).await?;
        let questions = questions(&app, tenant, session_id, &events, &[]).await?;
        let live = read::liveness(pool, tenant, session_id, app.config.idle_before()).await?;
        let waiting = read::waiting(pool, tenant).await?;
        Ok::<_, LogError>(Some((
            state.session,
            events,
            questions,
            live,
            waiting,
            earlier,
        )))
    };
    match shown.await {
        Ok(Some((session, events, questions, live, waiting, earlier))) => {
            let head = head(&session, live);
            html(
                StatusCode::OK,
                views::session(
                    &frame(&app, Some(waiting)),
                    &head,
                    &events,
                    &questions,
                    earlier,
                ),
            )
        }
        Ok(None) => session_not_found(&app),
        Err(e) => unavailable(&app, &e),
    }
}

/// The questions among `events` (asked there, or answered there) and among `also`, with who
/// waits for those still open.
async fn questions(
    app: &AppState,
    tenant: Uuid,
    session_id: Uuid,
    events: &[StoredEvent],
    also: &[Uuid],
) -> Result<Questions, LogError> {
    let mut ids: Vec<Uuid> = also.to_vec();
    for stored in events {
        match Event::from_stored(&stored.event_type, &stored.data) {
            Ok(Event::AgentMessage(_)) => ids.push(stored.event_id),
            Ok(Event::InputRequested(r)) => ids.push(r.message_id),
            Ok(Event::UserMessage(m)) => ids.extend(m.answers.question()),
            _ => {}
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let rows = app.log.questions(tenant, session_id, Some(&ids)).await?;
    let open: Vec<Uuid> = rows.iter().filter(|q| q.is_open()).map(|q| q.id).collect();
    let waits = commands::waits::waits(app.log.pool(), tenant, session_id, &open).await?;
    let unread = read::unread(app.log.pool(), tenant, session_id).await?;
    Ok(Questions {
        rows: rows.into_iter().map(|q| (q.id, q)).collect(),
        waits,
        unread,
        now: time::OffsetDateTime::now_utc(),
    })
}

fn head(
    session: &projections::Session,
    live: Option<(time::OffsetDateTime, read::Liveness)>,
) -> SessionHead<'_> {
    let (last_seen_at, liveness) =
        live.unwrap_or((session.last_activity_at, read::Liveness::Working));
    SessionHead {
        session,
        liveness,
        last_seen_at,
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

/// `/inbox/list`: a page of the session list, for the inbox page to swap in (the first page)
/// or to append ("Show more").
pub async fn list_fragment(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let tenant = match fragment_person(&app, &headers).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let list = match query.map(|Query(q)| q.parse()) {
        Ok(Ok(list)) => list,
        Ok(Err(reason)) => return fragment_error(StatusCode::UNPROCESSABLE_ENTITY, reason),
        Err(_) => {
            return fragment_error(StatusCode::UNPROCESSABLE_ENTITY, "the query is not valid");
        }
    };
    let pool = app.log.pool();
    let shown = async {
        let listed = read::sessions(pool, tenant, &list, app.config.idle_before()).await?;
        let waiting = read::waiting(pool, tenant).await?;
        Ok::<_, LogError>((listed, waiting))
    };
    match shown.await {
        Ok((listed, waiting)) => {
            let server_url = app.config.public_url.join("");
            let now = time::OffsetDateTime::now_utc();
            html(
                StatusCode::OK,
                views::session_list(
                    &frame(&app, None),
                    &listed,
                    &list,
                    waiting,
                    now,
                    &server_url,
                ),
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
        let pool = app.log.pool();
        let mut conn = pool.acquire().await?;
        let events: Vec<StoredEvent> =
            events_after(&mut conn, tenant, Some(session_id), after, FRAGMENT).await?;
        drop(conn);
        // Question cards the page shows that may have changed: the open ones (who waits for
        // them changes without an event) and those that closed since.
        let changed = app
            .log
            .questions(tenant, session_id, None)
            .await?
            .into_iter()
            .filter(|q| q.is_open() || q.closed_seq.is_some_and(|seq| seq > after))
            .filter(|q| q.asked_seq <= after)
            .map(|q| q.id)
            .take(MAX_CARDS)
            .collect::<Vec<_>>();
        let cards = read::events_by_id(pool, tenant, session_id, &changed).await?;
        let mut shown = events.clone();
        shown.extend(cards.iter().cloned());
        let questions = questions(&app, tenant, session_id, &shown, &changed).await?;
        // How each re-rendered card's question was answered (its answer may be older).
        let answer_ids: Vec<Uuid> = changed
            .iter()
            .filter_map(|id| questions.rows.get(id)?.answer_id)
            .collect();
        let answers = read::events_by_id(pool, tenant, session_id, &answer_ids).await?;
        let live = read::liveness(pool, tenant, session_id, app.config.idle_before()).await?;
        let waiting = read::waiting(pool, tenant).await?;
        Ok::<_, LogError>(Some((
            state.session,
            events,
            (cards, answers),
            questions,
            live,
            waiting,
        )))
    };
    match update.await {
        Ok(Some((session, events, (cards, answers), questions, live, waiting))) => {
            let more = read::filled(&events, FRAGMENT);
            let update = views::session_update(
                &frame(&app, None),
                &head(&session, live),
                &events,
                &cards,
                &answers,
                &questions,
                waiting,
                more,
            );
            html(StatusCode::OK, update)
        }
        Ok(None) => fragment_error(StatusCode::NOT_FOUND, "no such session"),
        Err(e) => fragment_failed(&e),
    }
}

/// The most question cards one fragment re-renders.
const MAX_CARDS: usize = 100;

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
