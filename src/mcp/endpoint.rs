//! `/mcp`: the Streamable HTTP endpoint, in front of rmcp.
//!
//! rmcp runs the protocol of each message on a fresh handler, as in its stateless mode. What
//! must happen before and around that happens here, in this order:
//! - a foreign `Host` or `Origin` is refused (403), then a caller without valid credentials
//!   (401), before anything is read;
//! - the body is read once: malformed JSON is a JSON-RPC parse error (HTTP 400), and a batch
//!   is served message by message for clients of 2025-03-26 (the one revision with batches)
//!   and refused with a JSON-RPC error for later ones;
//! - `initialize` opens an MCP session (`sessions.rs`), every later request naming one is
//!   checked against the caller's tenant (404 otherwise), and DELETE ends it;
//! - `notifications/cancelled` reaches the call it names on whichever node holds it
//!   (`calls.rs`); that call's response stream then ends without a result;
//! - every request gets a [`Call`]: its tool hands the result over, or gives back what it
//!   took when the client cancelled or hung up first.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::StreamExt;
use futures::future::join_all;
use http_body::Frame;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, ErrorCode, ProtocolVersion,
};
use rmcp::transport::common::http_header::{
    EVENT_STREAM_MIME_TYPE, HEADER_MCP_PROTOCOL_VERSION, HEADER_SESSION_ID, JSON_MIME_TYPE,
};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::calls::{Call, CallId, Registration};
use super::guard::{self, HostRule, OriginRule};
use super::sessions::{self, McpSession};
use super::tools::AgentTools;
use crate::app::AppState;
use crate::auth::AuthError;
use crate::auth::request::{self, RequestError};
use crate::commands::Context;

type Protocol = StreamableHttpService<AgentTools, NeverSessionManager>;

/// A request named a session this caller does not have (the code the MCP SDKs use).
const SESSION_NOT_FOUND: ErrorCode = ErrorCode(-32001);

/// The endpoint's fixed parts, shared by its requests.
pub struct Endpoint {
    app: AppState,
    /// rmcp answering each request on its own event stream (progress, then the result).
    streaming: Protocol,
    /// rmcp answering with plain JSON where it can: the messages of a batch.
    plain: Protocol,
    hosts: Vec<HostRule>,
    /// `None`: any origin.
    origins: Option<Vec<OriginRule>>,
}

/// `/mcp` and `/mcp/`.
pub fn routes<S: Clone + Send + Sync + 'static>(app: AppState, tools: AgentTools) -> Router<S> {
    let mcp = &app.config.mcp;
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_sse_keep_alive(Some(mcp.progress_interval))
        .with_cancellation_token(app.shutdown.child_token())
        .with_max_request_body_bytes(app.config.body_limit)
        // Checked here, before authentication, for every method.
        .disable_allowed_hosts();
    let protocol = |config: StreamableHttpServerConfig| {
        let tools = tools.clone();
        StreamableHttpService::new(
            move || Ok(tools.clone()),
            Arc::new(NeverSessionManager::default()),
            config,
        )
    };
    let origins = match &mcp.allowed_origins {
        Some(list) if list.iter().any(|o| o.trim() == "*") => None,
        Some(list) => Some(parse_all(list, OriginRule::parse)),
        None => {
            let mut origins = OriginRule::loopback();
            origins.push(
                OriginRule::parse(&app.config.public_url.origin())
                    .expect("the public URL is an origin"),
            );
            Some(origins)
        }
    };
    let endpoint = Arc::new(Endpoint {
        streaming: protocol(config.clone()),
        plain: protocol(config.with_json_response(true)),
        hosts: parse_all(&mcp.allowed_hosts, HostRule::parse),
        origins,
        app,
    });
    Router::new()
        .route("/mcp", any(handle))
        .route("/mcp/", any(handle))
        .with_state(endpoint)
}

/// Entries were validated when the configuration was read.
fn parse_all<T>(list: &[String], parse: fn(&str) -> Result<T, String>) -> Vec<T> {
    list.iter()
        .filter_map(|entry| {
            parse(entry)
                .inspect_err(|e| tracing::warn!("MCP endpoint: ignoring {e}"))
                .ok()
        })
        .collect()
}

async fn handle(State(endpoint): State<Arc<Endpoint>>, request: Request) -> Response {
    if let Err(refusal) = guard::check(
        request.headers(),
        &endpoint.hosts,
        endpoint.origins.as_deref(),
    ) {
        return (StatusCode::FORBIDDEN, refusal).into_response();
    }
    let ctx = match authenticate(&endpoint.app, request.headers()).await {
        Ok(ctx) => ctx,
        Err(refused) => return refused,
    };
    let (parts, body) = request.into_parts();
    match parts.method {
        Method::POST => {
            let body = match axum::body::to_bytes(body, endpoint.app.config.body_limit).await {
                Ok(body) => body,
                Err(_) => {
                    let limit = endpoint.app.config.body_limit;
                    let detail = format!("Payload Too Large: request body exceeds {limit} bytes");
                    return (StatusCode::PAYLOAD_TOO_LARGE, detail).into_response();
                }
            };
            endpoint.post(&ctx, parts, body).await
        }
        Method::DELETE => endpoint.delete(&ctx, &parts.headers).await,
        // No stream of server-initiated messages: this server sends none.
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST, DELETE")],
            "Method Not Allowed",
        )
            .into_response(),
    }
}

impl Endpoint {
    async fn post(&self, ctx: &Context, parts: Parts, body: Bytes) -> Response {
        if let Some(refused) = refuse_media_types(&parts.headers) {
            return refused;
        }
        // The 2026 protocol has no sessions: a header left over from an older one is ignored.
        let session = match parts.headers.get(HEADER_SESSION_ID) {
            Some(header) if !speaks_2026(&parts.headers, &body) => {
                match self.session(ctx, header).await {
                    Ok(session) => Some(session),
                    Err(refused) => return refused,
                }
            }
            _ => None,
        };
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'[') {
            return self.batch(ctx, session.as_ref(), &parts, &body).await;
        }
        match serde_json::from_slice::<ClientJsonRpcMessage>(&body) {
            Ok(message) => {
                self.one(
                    ctx,
                    session.as_ref(),
                    &parts,
                    body,
                    &message,
                    &self.streaming,
                )
                .await
            }
            Err(e) => invalid(&e, &body),
        }
    }

    /// The caller's open session named by `header`, else 404 (also for another tenant's).
    async fn session(&self, ctx: &Context, header: &HeaderValue) -> Result<McpSession, Response> {
        let found = match header.to_str() {
            Ok(id) => sessions::find(self.app.log.pool(), ctx, id).await,
            Err(_) => Ok(None),
        };
        match found {
            Ok(Some(session)) => Ok(session),
            Ok(None) => Err(rpc_error(
                StatusCode::NOT_FOUND,
                SESSION_NOT_FOUND,
                "Session not found: send initialize to start a new session",
            )),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// One message: opened sessions for `initialize`, cancellations routed, calls tracked,
    /// everything else as rmcp answers it.
    async fn one(
        &self,
        ctx: &Context,
        session: Option<&McpSession>,
        parts: &Parts,
        body: Bytes,
        message: &ClientJsonRpcMessage,
        protocol: &Protocol,
    ) -> Response {
        match message {
            ClientJsonRpcMessage::Request(request) => {
                if let ClientRequest::InitializeRequest(init) = &request.request {
                    let response = self.handled(protocol, ctx, None, parts, body, None).await;
                    let client = &init.params.client_info.name;
                    let version = init.params.protocol_version.to_string();
                    return self.open_session(ctx, response, client, &version).await;
                }
                let registration = session.map(|s| {
                    self.app.mcp_calls.register(CallId {
                        session: s.id,
                        request: request_id(&request.id),
                    })
                });
                let call = registration
                    .as_ref()
                    .map_or_else(Call::new, |r| r.call.clone());
                // rmcp answers a 2026 request only once its first message exists (to choose
                // JSON or a stream, and the status): a tool call that waits for a person
                // would send no headers for minutes. Such a call gets its stream's headers at
                // once instead.
                let early = std::ptr::eq(protocol, &self.streaming)
                    && matches!(request.request, ClientRequest::CallToolRequest(_))
                    && accepts_event_stream(&parts.headers)
                    && speaks_2026(&parts.headers, &body);
                let handled = self.handled(protocol, ctx, session, parts, body, Some(call.clone()));
                let response = if early {
                    early_headers(handled, self.app.config.mcp.progress_interval).await
                } else {
                    handled.await
                };
                response.map(|body| Body::new(CallBody::new(body, call, registration)))
            }
            ClientJsonRpcMessage::Notification(notification) => {
                if let (ClientNotification::CancelledNotification(cancelled), Some(session)) =
                    (&notification.notification, session)
                {
                    if let Some(id) = &cancelled.params.request_id {
                        self.app
                            .mcp_calls
                            .cancel(session.id, Some(&request_id(id)))
                            .await;
                    }
                    return StatusCode::ACCEPTED.into_response();
                }
                self.handled(protocol, ctx, session, parts, body, None)
                    .await
            }
            ClientJsonRpcMessage::Response(_) | ClientJsonRpcMessage::Error(_) => {
                self.handled(protocol, ctx, session, parts, body, None)
                    .await
            }
        }
    }

    /// Hand one message to rmcp, with what the tools read from the request: the caller, its
    /// session and its call. The future borrows nothing (a long call's may run on its own).
    fn handled(
        &self,
        protocol: &Protocol,
        ctx: &Context,
        session: Option<&McpSession>,
        parts: &Parts,
        body: Bytes,
        call: Option<Arc<Call>>,
    ) -> impl Future<Output = Response> + Send + 'static {
        let mut request = http::Request::from_parts(parts.clone(), Body::from(body));
        let extensions = request.extensions_mut();
        extensions.insert(ctx.clone());
        if let Some(session) = session {
            extensions.insert(session.clone());
        }
        if let Some(call) = call {
            extensions.insert(call);
        }
        let protocol = protocol.clone();
        async move { protocol.handle(request).await.map(Body::new) }
    }

    /// Name the session `initialize` opened in its response. Should the database refuse it,
    /// the client is served without a session, as one that never sends the header.
    async fn open_session(
        &self,
        ctx: &Context,
        mut response: Response,
        client: &str,
        version: &str,
    ) -> Response {
        if response.status() != StatusCode::OK {
            return response;
        }
        match sessions::open(self.app.log.pool(), ctx, client, version).await {
            Ok(session) => {
                let id = HeaderValue::from_str(&session.id.to_string()).expect("a uuid header");
                response.headers_mut().insert(HEADER_SESSION_ID, id);
            }
            Err(e) => tracing::warn!("MCP session not recorded, serving without one: {e}"),
        }
        response
    }

    /// A JSON-RPC batch: served for clients of 2025-03-26, refused with a JSON-RPC error by
    /// the revisions that dropped batches.
    async fn batch(
        &self,
        ctx: &Context,
        session: Option<&McpSession>,
        parts: &Parts,
        body: &Bytes,
    ) -> Response {
        let version = parts
            .headers
            .get(HEADER_MCP_PROTOCOL_VERSION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| session.map(|s| s.protocol_version.clone()))
            .unwrap_or_else(|| ProtocolVersion::V_2025_03_26.to_string());
        if version.as_str() >= ProtocolVersion::V_2025_06_18.as_str() {
            let message = format!(
                "Invalid Request: protocol version {version} has no JSON-RPC batches; send one \
                 message per request"
            );
            return rpc_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                &message,
            );
        }
        let items: Vec<Box<RawValue>> = match serde_json::from_slice(body) {
            Ok(items) => items,
            Err(e) => return invalid(&e, body),
        };
        if items.is_empty() {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                "Invalid Request: empty batch",
            );
        }
        let replies = join_all(items.iter().map(|item| async move {
            let text = Bytes::copy_from_slice(item.get().as_bytes());
            match serde_json::from_slice::<ClientJsonRpcMessage>(&text) {
                // A session's first message stands alone: its id travels in a header.
                Ok(ClientJsonRpcMessage::Request(request))
                    if matches!(request.request, ClientRequest::InitializeRequest(_)) =>
                {
                    Some(json!({"jsonrpc": "2.0", "id": request.id, "error": {
                        "code": ErrorCode::INVALID_REQUEST.0, "message": "Invalid Request: initialize cannot be batched"}}))
                }
                Ok(message) => {
                    let is_request = matches!(message, ClientJsonRpcMessage::Request(_));
                    let response = self
                        .one(ctx, session, parts, text, &message, &self.plain)
                        .await;
                    if is_request {
                        reply(response).await
                    } else {
                        None
                    }
                }
                Err(_) => Some(json!({"jsonrpc": "2.0", "id": id_of(&text), "error": {
                    "code": ErrorCode::INVALID_REQUEST.0, "message": "Invalid Request"}})),
            }
        }))
        .await;
        let replies: Vec<Value> = replies.into_iter().flatten().collect();
        if replies.is_empty() {
            return StatusCode::ACCEPTED.into_response();
        }
        axum::Json(replies).into_response()
    }

    async fn delete(&self, ctx: &Context, headers: &HeaderMap) -> Response {
        // Without a session (the 2026 protocol has none) there is nothing to end.
        let Some(header) = headers.get(HEADER_SESSION_ID) else {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "POST")],
                "Method Not Allowed: DELETE ends an MCP session, and this request names none",
            )
                .into_response();
        };
        let session = match self.session(ctx, header).await {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        match sessions::end(self.app.log.pool(), ctx, session.id).await {
            Ok(_) => {
                self.app.mcp_calls.cancel(session.id, None).await;
                StatusCode::NO_CONTENT.into_response()
            }
            Err(e) => unavailable(&e),
        }
    }
}

/// Does the client take an event stream (as every Streamable HTTP client must)?
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(EVENT_STREAM_MIME_TYPE))
        })
}

/// How long a call may take before its stream's headers go out without its first message.
const HEADERS_AFTER: Duration = Duration::from_millis(250);

/// `handled`'s response, or, when it is not there within [`HEADERS_AFTER`], an event stream
/// whose headers go out now: a comment first, one every `keep_alive` while the call waits, then
/// the call's own stream (or its one JSON message as an event). A client that hangs up drops
/// the stream, which ends the call as a hang-up always does.
async fn early_headers(
    handled: impl Future<Output = Response> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let mut task = tokio::spawn(handled);
    // Dropped (the client hung up) while waiting here: the call stops with it.
    let stop = AbortOnDrop(task.abort_handle());
    match tokio::time::timeout(HEADERS_AFTER, &mut task).await {
        Ok(Ok(response)) => return response,
        Ok(Err(e)) => {
            tracing::error!("an MCP call failed: {e}");
            return rpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::INTERNAL_ERROR,
                "Internal error: the call failed",
            );
        }
        Err(_) => {}
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, axum::Error>>(8);
    let relay = tokio::spawn(async move {
        let _stop = stop;
        let comment = |text: &'static str| Ok(Bytes::from_static(text.as_bytes()));
        if tx.send(comment(": waiting\n\n")).await.is_err() {
            return;
        }
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
        let response = loop {
            tokio::select! {
                done = &mut task => break done,
                _ = ticks.tick() => {
                    if tx.send(comment(": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                }
            }
        };
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                tracing::error!("an MCP call failed: {e}");
                let failed = json!({"jsonrpc": "2.0", "id": null, "error": {
                    "code": ErrorCode::INTERNAL_ERROR.0, "message": "Internal error: the call failed"}});
                let event = format!("event: message\ndata: {failed}\n\n");
                let _ = tx.send(Ok(Bytes::from(event))).await;
                return;
            }
        };
        let streamed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(EVENT_STREAM_MIME_TYPE));
        let mut body = response.into_body().into_data_stream();
        if streamed {
            while let Some(chunk) = body.next().await {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        } else {
            let mut whole = Vec::new();
            while let Some(Ok(chunk)) = body.next().await {
                whole.extend_from_slice(&chunk);
            }
            let text = String::from_utf8_lossy(&whole);
            let mut event = String::from("event: message\n");
            for line in text.lines() {
                event.push_str("data: ");
                event.push_str(line);
                event.push('\n');
            }
            event.push('\n');
            let _ = tx.send(Ok(Bytes::from(event))).await;
        }
    });
    let stream = RelayStream {
        inner: tokio_stream::wrappers::ReceiverStream::new(rx),
        _relay: AbortOnDrop(relay.abort_handle()),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, EVENT_STREAM_MIME_TYPE)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("a valid response")
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The relayed stream; dropping it (the client hung up) stops the relay and the call with it.
struct RelayStream {
    inner: tokio_stream::wrappers::ReceiverStream<Result<Bytes, axum::Error>>,
    _relay: AbortOnDrop,
}

impl futures::Stream for RelayStream {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Does the request speak the 2026-07-28 protocol or a later one? Its `MCP-Protocol-Version`
/// header says so; without the header, its `_meta` does.
fn speaks_2026(headers: &HeaderMap, body: &[u8]) -> bool {
    let v2026 = ProtocolVersion::V_2026_07_28;
    if let Some(version) = headers
        .get(HEADER_MCP_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
    {
        return version >= v2026.as_str();
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        params: Option<ProbeParams>,
    }
    #[derive(serde::Deserialize)]
    struct ProbeParams {
        #[serde(rename = "_meta")]
        meta: Option<ProbeMeta>,
    }
    #[derive(serde::Deserialize)]
    struct ProbeMeta {
        #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
        version: Option<String>,
    }
    serde_json::from_slice::<Probe>(body)
        .ok()
        .and_then(|p| p.params?.meta?.version)
        .is_some_and(|version| version.as_str() >= v2026.as_str())
}

/// The reply to a request of a batch, from its own response (JSON, or the last message of an
/// event stream when the tool sent progress first). `None` when the call was cancelled.
async fn reply(response: Response) -> Option<Value> {
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .ok()?;
    if let Ok(message) = serde_json::from_slice::<Value>(&body) {
        return Some(message);
    }
    let text = String::from_utf8_lossy(&body);
    let last = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .rfind(|message| message.get("result").is_some() || message.get("error").is_some());
    if last.is_some() || status.is_success() {
        return last;
    }
    Some(json!({"jsonrpc": "2.0", "id": null, "error": {
        "code": ErrorCode::INVALID_REQUEST.0, "message": text.trim()}}))
}

/// The request id as JSON text: `7` and `"7"` differ.
fn request_id(id: &rmcp::model::RequestId) -> String {
    serde_json::to_string(id).expect("a request id serializes")
}

/// The `id` of a message that did not parse as JSON-RPC, when it has a usable one.
fn id_of(body: &[u8]) -> Value {
    #[derive(serde::Deserialize)]
    struct WithId {
        id: Value,
    }
    serde_json::from_slice::<WithId>(body)
        .ok()
        .map(|m| m.id)
        .filter(|id| id.is_string() || id.is_number())
        .unwrap_or(Value::Null)
}

/// A body that is not JSON (a parse error), or JSON that is not a JSON-RPC message (an invalid
/// request).
fn invalid(error: &serde_json::Error, body: &[u8]) -> Response {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => rpc_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::PARSE_ERROR,
            &format!("Parse error: {error}"),
        ),
        Category::Data => rpc_error_with_id(
            StatusCode::BAD_REQUEST,
            id_of(body),
            ErrorCode::INVALID_REQUEST,
            &format!("Invalid Request: {error}"),
        ),
    }
}

/// A JSON-RPC error that answers no request in particular.
fn rpc_error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    rpc_error_with_id(status, Value::Null, code, message)
}

fn rpc_error_with_id(status: StatusCode, id: Value, code: ErrorCode, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code.0, "message": message}});
    (status, axum::Json(body)).into_response()
}

fn unavailable(e: &sqlx::Error) -> Response {
    tracing::warn!("MCP session lookup failed: {e}");
    rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::INTERNAL_ERROR,
        "the database is unavailable; retry shortly",
    )
}

/// POSTs must accept both JSON and an event stream, and send JSON.
fn refuse_media_types(headers: &HeaderMap) -> Option<Response> {
    let accepts = |wanted: &str| {
        headers.get_all(header::ACCEPT).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',').any(|range| {
                    let essence = range.split(';').next().unwrap_or("").trim();
                    essence.eq_ignore_ascii_case(wanted) || essence == "*/*"
                })
            })
        })
    };
    if !accepts(JSON_MIME_TYPE) || !accepts(EVENT_STREAM_MIME_TYPE) {
        return Some(
            (
                StatusCode::NOT_ACCEPTABLE,
                "Not Acceptable: Client must accept both application/json and text/event-stream",
            )
                .into_response(),
        );
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(JSON_MIME_TYPE));
    if !json {
        return Some(
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type: Content-Type must be application/json",
            )
                .into_response(),
        );
    }
    None
}

/// Every MCP request carries a Bearer token; the tools find the caller in the request.
async fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<Context, Response> {
    let metadata = crate::oauth::resource_metadata_url(&app.config.public_url);
    let token = request::bearer_token(headers).map_err(|e| unauthorized(&e, &metadata))?;
    request::mcp_context(&app.auth, headers, token)
        .await
        .map_err(|e| match e {
            RequestError::Auth(e @ AuthError::Unavailable) => {
                detail(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
            }
            RequestError::Auth(e) => unauthorized(&e, &metadata),
            RequestError::Invalid(e) => detail(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
            RequestError::CrossSite(m) => detail(StatusCode::FORBIDDEN, &m),
        })
}

fn detail(status: StatusCode, detail: &str) -> Response {
    (status, axum::Json(json!({ "detail": detail }))).into_response()
}

/// A 401 in the shape MCP clients expect (RFC 6750 §3), so they prompt for credentials: a
/// request without credentials gets the challenge without an error code. Both point to the
/// protected resource metadata (RFC 9728 §5.1), where OAuth clients find how to sign in.
fn unauthorized(e: &AuthError, resource_metadata: &str) -> Response {
    let (challenge, body) = match e {
        AuthError::Missing(m) => (
            format!("Bearer resource_metadata=\"{resource_metadata}\", scope=\"agent\""),
            json!({ "detail": m }),
        ),
        other => (
            format!("Bearer error=\"invalid_token\", resource_metadata=\"{resource_metadata}\""),
            json!({ "error": "invalid_token", "error_description": other.to_string() }),
        ),
    };
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// A call's response: ends, without its result, when the client abandons the call; and
/// abandons the call when the client hangs up before it is over. What the call still sends
/// after that (its last word, a progress notification) is read and dropped, so that the call
/// ends as calls do rather than writing into a closed channel.
struct CallBody {
    inner: Body,
    ended: bool,
    call: Arc<Call>,
    abandoned: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Keeps the call reachable by cancellations while its response lasts.
    _registration: Option<Registration>,
}

/// How long an abandoned call's remaining output is read before it is dropped.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

impl CallBody {
    fn new(inner: Body, call: Arc<Call>, registration: Option<Registration>) -> CallBody {
        CallBody {
            inner,
            ended: false,
            abandoned: Box::pin(call.abandoned()),
            call,
            _registration: registration,
        }
    }
}

impl http_body::Body for CallBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.abandoned.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.ended = true;
        }
        frame
    }
}

impl Drop for CallBody {
    fn drop(&mut self) {
        // Over, or the client is gone: either way nothing more is handed over. A result that
        // was handed over stays so.
        self.call.abandon();
        if self.ended {
            return;
        }
        let mut rest = std::mem::replace(&mut self.inner, Body::empty()).into_data_stream();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let drained = async { while rest.next().await.is_some() {} };
                let _ = tokio::time::timeout(DRAIN_LIMIT, drained).await;
            });
        }
    }
}
