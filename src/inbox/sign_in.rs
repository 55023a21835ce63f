//! Signing people in and out.
//!
//! A sign-in link (`/login/<token>`) answers GET with a page whose script POSTs it back: a
//! link preview or a mail scanner that fetches the URL does not use the link up, and a person
//! who opens it is signed in without doing anything. Pasting an agent-scope API key on
//! `/login` works too; that web session ends when the key is revoked. Every POST here must come
//! from the inbox itself (same Origin check as cookie-authenticated API writes): otherwise
//! another site could sign a visitor in to an account of its choosing, or out.

use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::pages::{self, frame, html, problem, signed_in};
use super::views;
use crate::app::AppState;
use crate::auth::web_sessions::{self, LinkRefused, NewWebSession};
use crate::auth::{AuthError, Credential};
use crate::commands::Scope;

/// Where to go after signing in: a page of the inbox (relative to the public URL), or the
/// consent page of an app being connected; nothing else (never another site).
pub(super) fn next_page(next: Option<&str>) -> &str {
    let next = next.unwrap_or("").trim_start_matches('/');
    let session = next
        .strip_prefix("sessions/")
        .is_some_and(|id| uuid::Uuid::try_parse(id).is_ok());
    let connect = next
        .strip_prefix("authorize?")
        .is_some_and(|query| !query.contains(['#', '\\']) && !query.chars().any(char::is_control));
    if session || connect { next } else { "" }
}

/// Signed in: the cookie, and on to the page the person was going to.
fn signed_in_response(app: &AppState, session: &NewWebSession, next: &str) -> Response {
    let site = app.config.public_url.site();
    let max_age = (session.expires_at - OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    let cookie = site.set_cookie(&session.cookie, max_age);
    let to = format!("{}{next}", app.config.public_url.path());
    let mut response = Redirect::to(&to).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("the cookie is visible ASCII"),
    );
    response
}

/// The refusal of a form sent from another site's page, when it was (every form of the inbox
/// is sent from its own pages: Origin or Referer say so).
pub(super) fn from_elsewhere(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    let site = app.config.public_url.site();
    site.check_same_origin(headers).is_err().then(|| {
        problem(
            app,
            StatusCode::FORBIDDEN,
            "Not from this site",
            "This form can only be sent from Switchboard's own pages.",
        )
    })
}

fn store_failed(app: &AppState, e: &sqlx::Error) -> Response {
    tracing::warn!("sign-in failed: {e}");
    problem(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Switchboard is unavailable",
        "Signing in is not possible right now. Try again in a moment.",
    )
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /login`: the sign-in page (or on, when already signed in).
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    let next = query.as_ref().ok().and_then(|Query(q)| q.next.as_deref());
    let next = next_page(next);
    if let Ok(Some(_)) = signed_in(&app, &headers).await {
        return Redirect::to(&format!("{}{next}", app.config.public_url.path())).into_response();
    }
    html(
        StatusCode::OK,
        views::sign_in(&frame(&app, None), next, None),
    )
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: sign in with a pasted agent-scope API key.
pub async fn with_key(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<KeyForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let Some(refused) = from_elsewhere(&app, &headers) {
        return refused;
    }
    let Ok(Form(form)) = form else {
        return refused(
            &app,
            "",
            StatusCode::BAD_REQUEST,
            "Paste an API key to sign in.",
        );
    };
    let next = next_page(form.next.as_deref());
    let token = form.api_key.trim();
    if token.is_empty() {
        return refused(
            &app,
            next,
            StatusCode::BAD_REQUEST,
            "Paste an API key to sign in.",
        );
    }
    let identity = match app.auth.authenticate(token).await {
        Ok(identity) => identity,
        Err(AuthError::Unavailable) => {
            return problem(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                "Switchboard is unavailable",
                "Your key cannot be checked right now. Try again in a moment.",
            );
        }
        Err(_) => {
            return refused(
                &app,
                next,
                StatusCode::UNAUTHORIZED,
                "That API key is not valid (mistyped, expired or revoked).",
            );
        }
    };
    let Credential::ApiKey { key_id, .. } = identity.grant.credential else {
        return refused(
            &app,
            next,
            StatusCode::UNAUTHORIZED,
            "Paste an API key made by `switchboard keys create` (or a sign-in link).",
        );
    };
    if identity.scope != Scope::Agent {
        return refused(
            &app,
            next,
            StatusCode::FORBIDDEN,
            "An audit key can only read the log. Paste an agent-scope API key.",
        );
    }
    match web_sessions::sign_in_with_key(
        app.log.pool(),
        identity.tenant_id,
        key_id,
        identity.grant.expires_at,
    )
    .await
    {
        Ok(session) => signed_in_response(&app, &session, next),
        Err(e) => store_failed(&app, &e),
    }
}

fn refused(app: &AppState, next: &str, status: StatusCode, why: &str) -> Response {
    html(status, views::sign_in(&frame(app, None), next, Some(why)))
}

fn link_refused(app: &AppState, why: &LinkRefused) -> Response {
    let status = match why {
        LinkRefused::Unknown => StatusCode::NOT_FOUND,
        LinkRefused::Used | LinkRefused::Expired => StatusCode::GONE,
    };
    let text = format!(
        "{why} Ask for a new one (switchboard login-link --user <your user id>), or sign in \
         with an API key."
    );
    let page = views::problem(&frame(app, None), "This link does not work", &text, true);
    html(status, page)
}

/// `GET /login/{token}`: the page that signs in with the link (it does not use the link).
pub async fn link_page(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match web_sessions::link_state(app.log.pool(), &token).await {
        Ok(None) => html(StatusCode::OK, views::link_sign_in(&frame(&app, None))),
        Ok(Some(why)) => link_refused(&app, &why),
        Err(e) => store_failed(&app, &e),
    }
}

/// `POST /login/{token}`: use the link, once.
pub async fn with_link(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if let Some(refused) = from_elsewhere(&app, &headers) {
        return refused;
    }
    match web_sessions::sign_in_with_link(app.log.pool(), &token).await {
        Ok(Ok(session)) => signed_in_response(&app, &session, ""),
        Ok(Err(why)) => link_refused(&app, &why),
        Err(e) => store_failed(&app, &e),
    }
}

/// Signed out: the cookie removed, and on to the sign-in page.
fn signed_out(app: &AppState) -> Response {
    let site = app.config.public_url.site();
    let mut response =
        Redirect::to(&format!("{}login", app.config.public_url.path())).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&site.clear_cookie()).expect("the cookie is visible ASCII"),
    );
    response
}

/// `POST /logout`: end this browser's web session, on every node.
pub async fn sign_out(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refused) = from_elsewhere(&app, &headers) {
        return refused;
    }
    let site = app.config.public_url.site();
    if let Some(cookie) = site.session_cookie(&headers)
        && let Ok(identity) = app.auth.authenticate_web_session(cookie).await
        && let Some(id) = identity.grant.web_session()
        && let Err(e) = app.auth.end_web_session(id).await
    {
        return store_failed(&app, &e);
    }
    signed_out(&app)
}

/// `POST /logout/everywhere`: end every web session of the signed-in person's tenant.
pub async fn sign_out_everywhere(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refused) = from_elsewhere(&app, &headers) {
        return refused;
    }
    match pages::signed_in(&app, &headers).await {
        Ok(Some(tenant)) => match app.auth.end_web_sessions(tenant).await {
            Ok(_) => signed_out(&app),
            Err(e) => store_failed(&app, &e),
        },
        Ok(None) => signed_out(&app),
        Err(_) => problem(
            &app,
            StatusCode::SERVICE_UNAVAILABLE,
            "Switchboard is unavailable",
            "Signing out is not possible right now. Try again in a moment.",
        ),
    }
}
