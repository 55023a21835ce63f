//! Extractors: the authenticated caller, and JSON/query/path input whose rejections become
//! [`ApiError`]s (so even a malformed request answers `{"detail": ...}`).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::app::AppState;
use crate::auth::request;
use crate::commands::Context;

/// The authenticated caller of an `/api/v1` route, as a command [`Context`]: a Bearer token,
/// or a person's inbox cookie (see [`request::caller`]).
pub struct Caller(pub Context);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Caller, ApiError> {
        // Boxed: a request parked after authenticating keeps none of this state.
        let ctx = Box::pin(caller(app, &parts.method, &parts.headers, None)).await?;
        Ok(Caller(ctx))
    }
}

/// The caller of a request, also for routes that take a token in the query (`access_token`).
pub async fn caller(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Context, ApiError> {
    let site = app.config.public_url.site();
    Ok(request::caller(&app.auth, &site, method, headers, query_token).await?)
}

/// A JSON request body: a JSON object (serde would read a struct from an array too).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, ApiError> {
        // The body was read whole already (`body::read_in_time`): keeping its bytes is free.
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        })?;
        let object = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{');
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        if !object {
            return Err(ApiError::unprocessable(
                "the request body does not match the schema: it must be a JSON object",
            ));
        }
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
