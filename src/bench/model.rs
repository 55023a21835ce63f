//! A scripted stand-in for Anthropic's Messages API on loopback, for driving the real Claude
//! Code CLI offline (`bench hooks`, and the tests that run Claude Code): `POST /v1/messages` answered as Anthropic answers it
//! (SSE when `stream` is true, a JSON message otherwise), from a script that reads the request
//! (never the call count: the CLI repeats a request when a stream breaks). Every request is
//! kept, with when it came, for the test to read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// What the model says in one turn.
#[derive(Clone, Debug)]
pub enum Block {
    Text(String),
    /// A tool call (its id is made from the request, so a repeated request gets the same).
    Tool {
        name: String,
        input: Value,
    },
}

pub fn text(text: &str) -> Block {
    Block::Text(text.to_owned())
}

pub fn bash(command: &str) -> Block {
    Block::Tool {
        name: "Bash".into(),
        input: json!({"command": command, "description": "Run a command"}),
    }
}

/// A gate a reply can wait at until the test opens it (once open, it stays open).
#[derive(Default)]
pub struct Gate {
    open: AtomicBool,
    opened: Notify,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.opened.notify_waiters();
    }

    async fn passed(&self) {
        loop {
            let opened = self.opened.notified();
            if self.open.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }
}

/// The model's reply to one request.
pub struct Reply {
    pub blocks: Vec<Block>,
    /// Answer only once this gate is open.
    pub after: Option<Arc<Gate>>,
}

impl From<Vec<Block>> for Reply {
    fn from(blocks: Vec<Block>) -> Reply {
        Reply {
            blocks,
            after: None,
        }
    }
}

/// One request as the script reads it.
pub struct Request<'a>(pub &'a Value);

impl Request<'_> {
    /// Whether this is the agent's own conversation (it offers tools), not one of the CLI's
    /// side requests.
    pub fn is_agent(&self) -> bool {
        self.0["tools"].as_array().is_some_and(|t| !t.is_empty())
    }

    /// The tool results of the last user turn: (tool_use_id, text, is_error).
    pub fn tool_results(&self) -> Vec<(String, String, bool)> {
        let last = self.0["messages"].as_array().and_then(|m| m.last());
        last.map(results_of).unwrap_or_default()
    }

    /// Every tool result of the conversation, oldest first.
    pub fn all_tool_results(&self) -> Vec<(String, String, bool)> {
        let messages = self.0["messages"].as_array().into_iter().flatten();
        messages.flat_map(results_of).collect()
    }

    /// Everything the last user turn says, as text (its text blocks, tool results, hook
    /// feedback).
    pub fn last_user_text(&self) -> String {
        self.0["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .map(|m| flat_text(&m["content"]))
            .unwrap_or_default()
    }

    /// Everything the request says, as text.
    pub fn all_text(&self) -> String {
        self.0.to_string()
    }

    /// How many turns the conversation has.
    pub fn turns(&self) -> usize {
        self.0["messages"].as_array().map_or(0, Vec::len)
    }
}

/// A message's tool results: (tool_use_id, text, is_error).
fn results_of(message: &Value) -> Vec<(String, String, bool)> {
    message["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            (
                b["tool_use_id"].as_str().unwrap_or("").to_owned(),
                flat_text(&b["content"]),
                b["is_error"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// The text of a message's content (a string, or blocks).
fn flat_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b {
                Value::String(s) => s.clone(),
                b if b["text"].is_string() => b["text"].as_str().unwrap().to_owned(),
                b => flat_text(&b["content"]),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

pub type Script = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// A request the model received, with when.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    script: Script,
    received: Arc<Mutex<Vec<Received>>>,
}

/// The stand-in, serving until dropped.
pub struct Model {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Model {
    pub async fn start(script: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Model {
        let received = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            script: Arc::new(script),
            received: received.clone(),
        };
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .fallback(|| async { (StatusCode::NOT_FOUND, axum::Json(json!({"type": "error", "error": {"type": "not_found_error", "message": "not scripted"}}))) })
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Model {
            url,
            received,
            stop,
        }
    }

    /// The agent's requests so far (the CLI's side requests left out), oldest first.
    pub fn agent_requests(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| Request(&r.body).is_agent())
            .cloned()
            .collect()
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
    }
}

async fn messages(State(shared): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    shared.received.lock().unwrap().push(Received {
        at: Instant::now(),
        body: request.clone(),
    });
    let reply = (shared.script)(&Request(&request));
    if let Some(gate) = &reply.after {
        gate.passed().await;
    }
    let turn = Request(&request).turns();
    let content: Vec<Value> = reply
        .blocks
        .iter()
        .enumerate()
        .map(|(i, block)| match block {
            Block::Text(text) => json!({"type": "text", "text": text}),
            Block::Tool { name, input } => json!({
                "type": "tool_use", "id": format!("toolu_{turn:04}_{i:02}"), "name": name,
                "input": input,
            }),
        })
        .collect();
    let stop_reason = if reply.blocks.iter().any(|b| matches!(b, Block::Tool { .. })) {
        "tool_use"
    } else {
        "end_turn"
    };
    let model = request["model"]
        .as_str()
        .unwrap_or("claude-scripted")
        .to_owned();
    let id = format!("msg_scripted_{turn:04}");
    let usage = json!({"input_tokens": 10, "output_tokens": 10});
    if request["stream"] != true {
        return axum::Json(json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": usage,
        }))
        .into_response();
    }
    let mut events = Vec::new();
    let mut event =
        |name: &str, data: Value| events.push(format!("event: {name}\ndata: {data}\n\n"));
    event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 1}}}),
    );
    for (index, block) in content.iter().enumerate() {
        let (start, delta) = match block["type"].as_str() {
            Some("text") => (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": block["text"]}),
            ),
            _ => (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
            ),
        };
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
    }
    event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 10}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        events.concat(),
    )
        .into_response()
}
