//! `/token`, `/revoke` and `/register`: form (or JSON, for registration) in, JSON out, errors
//! as RFC 6749 §5.2 says (`error`, `error_description`), never cached.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::authorize::{same_resource, scope, verifies};
use crate::app::AppState;
use crate::auth::apps::{self, Authorization, Exchanged, Refreshed, Tokens};
use crate::commands::{CommandError, Context, connected_apps};

/// Largest registration request read.
const MAX_REGISTRATION_BYTES: usize = 16 * 1024;

fn no_store(status: StatusCode, body: Value) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response()
}

/// An error answer (RFC 6749 §5.2).
struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        no_store(
            self.status,
            json!({ "error": self.code, "error_description": self.description }),
        )
    }
}

fn error(status: StatusCode, code: &'static str, description: &str) -> OAuthError {
    OAuthError {
        status,
        code,
        description: description.to_owned(),
    }
}

fn invalid_request(description: &str) -> OAuthError {
    error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant(description: &str) -> OAuthError {
    error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn unavailable(e: &dyn std::fmt::Display) -> OAuthError {
    tracing::warn!("OAuth endpoint failed: {e}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the server cannot answer right now; retry shortly",
    )
}

/// A form body's parameters; each at most once (RFC 6749 §3.2).
fn form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(invalid_request(
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if value.contains('\0') {
            return Err(invalid_request(&format!("{name} contains a NUL character")));
        }
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(invalid_request(&format!("{name} is given more than once")));
        }
    }
    Ok(params)
}

fn required<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid_request(&format!("{name} is required")))
}

/// Who the token endpoint acts as when it records a connection's facts: the app's key.
fn as_app(tenant_id: Uuid, key_id: Uuid) -> Context {
    Context {
        key_id: Some(key_id),
        client_type: Some("oauth".into()),
        ..Context::system(tenant_id)
    }
}

fn tokens(tokens: &Tokens) -> Response {
    no_store(
        StatusCode::OK,
        json!({
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": tokens.expires_in,
            "refresh_token": tokens.refresh_token,
            "scope": tokens.scope.as_str(),
        }),
    )
}

/// `POST /token`.
pub async fn token(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match form(&headers, &body) {
        Ok(params) => params,
        Err(refused) => return refused.into_response(),
    };
    let outcome = match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => code_grant(&app, &params).await,
        Some("refresh_token") => refresh_grant(&app, &params).await,
        Some(other) => Err(error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!(
                "grant type {other:?} is not supported (authorization_code, refresh_token are)"
            ),
        )),
        None => Err(invalid_request("grant_type is required")),
    };
    outcome.unwrap_or_else(IntoResponse::into_response)
}

fn check_resource(app: &AppState, params: &HashMap<String, String>) -> Result<(), OAuthError> {
    let ours = super::resource(&app.config.public_url);
    match params.get("resource") {
        Some(asked) if !same_resource(asked, &ours) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            &format!("this server issues tokens for {ours} only"),
        )),
        _ => Ok(()),
    }
}

async fn code_grant(
    app: &AppState,
    params: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let code = required(params, "code")?;
    let client_id = required(params, "client_id")?;
    let verifier = required(params, "code_verifier")?;
    let redirect_uri = params.get("redirect_uri").filter(|r| !r.is_empty());
    check_resource(app, params)?;
    // What the code was issued for must be what this request says (RFC 6749 §4.1.3, RFC 7636).
    let check = |issued: &Authorization| {
        if issued.client_id != client_id {
            return Err(invalid_grant("the code was issued to another client"));
        }
        match redirect_uri {
            Some(uri) if *uri != issued.redirect_uri => {
                return Err(invalid_grant(
                    "redirect_uri is not the one the code was issued for",
                ));
            }
            None if issued.redirect_uri_given => {
                return Err(invalid_request(
                    "redirect_uri is required: the authorization request named one",
                ));
            }
            _ => {}
        }
        if !verifies(verifier, &issued.code_challenge) {
            return Err(invalid_grant(
                "the code_verifier does not match the code_challenge",
            ));
        }
        Ok(())
    };
    let pool = app.log.pool();
    let exchanged = apps::exchange_code(pool, app.auth.keys(), code, check)
        .await
        .map_err(|e| unavailable(&e))?;
    let (issued, authorization) = match exchanged {
        Exchanged::Connected(connected) => *connected,
        Exchanged::Refused(refused) => return Err(refused),
        Exchanged::Reused { tenant_id, key_id } => {
            connected_apps::disconnect(
                &app.log,
                &as_app(tenant_id, key_id),
                key_id,
                "its authorization code was presented a second time",
            )
            .await
            .map_err(|e| unavailable(&e))?;
            return Err(invalid_grant(
                "the code was already used; the access it gave has been revoked",
            ));
        }
        Exchanged::Invalid => {
            return Err(invalid_grant(
                "the code is unknown, expired or already used",
            ));
        }
    };
    let ctx = as_app(issued.tenant_id, issued.key_id);
    let recorded = connected_apps::record_connected(
        &app.log,
        &ctx,
        issued.key_id,
        &authorization.client_id,
        &authorization.client_name,
        &authorization.redirect_uri,
    )
    .await;
    if let Err(e) = recorded {
        // An app nobody can see connected must not keep its key.
        let _ = crate::auth::api_keys::revoke(pool, issued.key_id).await;
        return Err(match e {
            CommandError::Conflict(m) => error(StatusCode::BAD_REQUEST, "invalid_grant", &m),
            other => unavailable(&other),
        });
    }
    Ok(tokens(&issued))
}

async fn refresh_grant(
    app: &AppState,
    params: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let refresh_token = required(params, "refresh_token")?;
    let client_id = required(params, "client_id")?;
    if scope(params.get("scope").map(String::as_str)).is_none() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the only scope is \"agent\"",
        ));
    }
    check_resource(app, params)?;
    match apps::refresh(app.log.pool(), app.auth.keys(), refresh_token, client_id)
        .await
        .map_err(|e| unavailable(&e))?
    {
        Refreshed::Tokens(issued) => Ok(tokens(&issued)),
        Refreshed::Replayed { tenant_id, key_id } => {
            connected_apps::disconnect(
                &app.log,
                &as_app(tenant_id, key_id),
                key_id,
                "a refresh token was presented a second time",
            )
            .await
            .map_err(|e| unavailable(&e))?;
            Err(invalid_grant(
                "the refresh token was already used; the app has been disconnected",
            ))
        }
        Refreshed::Invalid(why) => Err(invalid_grant(why)),
    }
}

/// `POST /revoke` (RFC 7009): the app behind a refresh or access token is disconnected. The
/// answer is 200 whether or not the token was good.
pub async fn revoke(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match form(&headers, &body) {
        Ok(params) => params,
        Err(refused) => return refused.into_response(),
    };
    let token = match required(&params, "token") {
        Ok(token) => token,
        Err(refused) => return refused.into_response(),
    };
    let found = match apps::grant_of(app.log.pool(), app.auth.keys(), token).await {
        Ok(found) => found,
        Err(e) => return unavailable(&e).into_response(),
    };
    if let Some((key_id, tenant_id, client_id)) = found
        && params.get("client_id").is_none_or(|c| *c == client_id)
        && let Err(e) = connected_apps::disconnect(
            &app.log,
            &as_app(tenant_id, key_id),
            key_id,
            "the app signed out (token revocation)",
        )
        .await
    {
        return unavailable(&e).into_response();
    }
    no_store(StatusCode::OK, json!({}))
}

/// `POST /register` (RFC 7591).
pub async fn register(State(app): State<AppState>, body: Bytes) -> Response {
    if body.len() > MAX_REGISTRATION_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            &format!("client metadata is at most {MAX_REGISTRATION_BYTES} bytes"),
        )
        .into_response();
    }
    match super::clients::register(app.log.pool(), &body).await {
        Ok(registered) => no_store(StatusCode::CREATED, registered),
        Err(e) => {
            let status = if e.code == "temporarily_unavailable" {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            error(status, e.code, &e.description).into_response()
        }
    }
}
