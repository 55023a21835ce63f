//! Request bodies arrive in time or not at all. Request heads must arrive within the serve
//! loop's header timeout; a body must then arrive, whole, within `Config::body_timeout`,
//! whatever its pace: a client that trickles a byte a second cannot hold a connection (and
//! a database-backed handler) open for minutes. The body is read here, bounded by the body
//! limit, and handed on in full.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};
use tower::{Layer, Service};

use super::error::ApiError;

/// Read request bodies whole, within `timeout` and `limit`, before the handler runs. A request
/// without a body (every long-poll and stream) passes straight through: its future is the
/// inner service's, with nothing added to what a parked request holds.
#[derive(Clone, Copy, Debug)]
pub struct InTimeLayer {
    pub limit: usize,
    pub timeout: Duration,
}

impl<S> Layer<S> for InTimeLayer {
    type Service = InTime<S>;

    fn layer(&self, inner: S) -> InTime<S> {
        InTime {
            inner,
            bounds: *self,
        }
    }
}

#[derive(Clone, Debug)]
pub struct InTime<S> {
    inner: S,
    bounds: InTimeLayer,
}

impl<S> Service<Request> for InTime<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let has_body = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|n| n.as_bytes() != b"0")
            || request.headers().contains_key(header::TRANSFER_ENCODING);
        if !has_body {
            return Either::Left(self.inner.call(request));
        }
        // The service that was made ready serves this request; a clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let bounds = self.bounds;
        Either::Right(Box::pin(async move {
            match read(request, bounds).await {
                Ok(request) => inner.call(request).await,
                Err(refused) => Ok(refused),
            }
        }))
    }
}

/// The request with its body read whole, or the answer that refuses it.
async fn read(request: Request, bounds: InTimeLayer) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, bounds.limit);
    let bytes = match tokio::time::timeout(bounds.timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return Err(if too_large {
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
            });
        }
        Err(_) => {
            return Err(closing(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    bounds.timeout.as_secs()
                ),
            )));
        }
    };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// An error after which the connection is not worth keeping: the rest of the body is unread.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
