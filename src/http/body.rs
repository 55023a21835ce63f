//! Request bodies arrive in time or not at all. Request heads must arrive within the serve
//! loop's header timeout; a body must then arrive, whole, within `Config::body_timeout`,
//! whatever its pace: a client that trickles a byte a second cannot hold a connection (and
//! a database-backed handler) open for minutes. The body is read here, bounded by the body
//! limit, and handed on in full.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::Config;

pub async fn read_in_time(State(config): State<Config>, request: Request, next: Next) -> Response {
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|n| n.as_bytes() != b"0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, config.body_limit);
    let bytes = match tokio::time::timeout(config.body_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                )
                .into_response()
            } else {
                closing(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                ))
            };
        }
        Err(_) => {
            return closing(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    config.body_timeout.as_secs()
                ),
            ));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// An error after which the connection is not worth keeping: the rest of the body is unread.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
