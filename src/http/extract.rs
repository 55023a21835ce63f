//! Extractors: the authenticated caller, and JSON/query/path input whose rejections become
//! [`ApiError`]s (so even a malformed request answers `{"detail": ...}`).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::commands::Context;
use crate::domain::{self, client_type};

/// The authenticated caller of an `/api/v1` route, as a command [`Context`].
pub struct Caller(pub Context);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Caller, ApiError> {
        let token = bearer_token(&parts.headers)?;
        // Boxed: a request parked after authenticating keeps none of this state.
        Box::pin(context(app, &parts.headers, token))
            .await
            .map(Caller)
    }
}

/// Authenticate `token` and describe the request for the event metadata.
pub async fn context(
    app: &AppState,
    headers: &HeaderMap,
    token: &str,
) -> Result<Context, ApiError> {
    let identity = app.auth.authenticate(token).await?;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let idempotency_key = text("idempotency-key")
        .map(domain::idempotency_key)
        .transpose()?;
    Ok(Context {
        tenant_id: identity.tenant_id,
        key_id: identity.key_id,
        scope: identity.scope,
        client_type: Some(client_type::detect(
            text("x-client-type"),
            text(header::USER_AGENT.as_str()),
        )),
        request_id: text("x-request-id").map(str::to_owned),
        idempotency_key,
    })
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("Not authenticated: send Authorization: Bearer <API key>")
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("Invalid authentication credentials"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ApiError::unauthorized("Invalid authentication credentials: expected Bearer <token>")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "Invalid authentication credentials: expected Bearer <token>",
        ));
    }
    Ok(token.trim())
}

/// A JSON request body.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

/// Query-string parameters.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params<T>, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Params(value))
    }
}

/// Path parameters.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathParams<T>, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(PathParams(value))
    }
}
