//! `switchboard bench notify`: how soon a person hears about a question, against a real
//! `switchboard serve` process and a local webhook receiver (in this process) that checks
//! each delivery's Standard Webhooks signature.
//!
//! - latency: one question at a time, from the `POST /messages/agent` acknowledgement (the
//!   commit) and from sending it, to the signed webhook arriving;
//! - throughput: one tenant with `--channels` webhook channels, `--questions` questions posted
//!   at once; deliveries per second until every (channel, question) arrived, each exactly once;
//! - answered from a push: an approval is asked and its agent waits (a long-poll for that
//!   question); a web push receiver in this process decrypts the push (RFC 8291, with the
//!   subscription's private key), presses its Allow (POSTs the capability URL), and the agent
//!   wakes with the answer. Timed from the commit to the push received, and to the agent woken.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use clap::Args;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

use super::{BenchDb, Latencies, Server};
use crate::auth::api_keys;
use crate::commands::{self, Context, Scope};
use crate::domain::UserName;
use crate::eventlog::EventLog;
use crate::notify::{web_push, webhook};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Args, Debug, Clone)]
pub struct NotifyArgs {
    /// Questions timed one at a time.
    #[arg(long, default_value_t = 200)]
    pub samples: u32,
    /// Webhook channels of the tenant in the throughput run.
    #[arg(long, default_value_t = 100)]
    pub channels: u32,
    /// Questions posted at once in the throughput run (each goes to every channel).
    #[arg(long, default_value_t = 50)]
    pub questions: u32,
}

/// A delivery as the receiver saw it.
struct Received {
    at: Instant,
    /// The question's message id.
    message_id: String,
    webhook_id: String,
}

/// The local receiver: `/c/<n>` is channel n; every request's signature is checked against
/// that channel's secret, and what verifies is reported.
struct Receiver {
    address: String,
    secrets: Arc<Mutex<HashMap<String, String>>>,
    received: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Result<Receiver, BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = format!("http://{}", listener.local_addr()?);
        let secrets: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let (tx, received) = mpsc::unbounded_channel();
        let known = secrets.clone();
        let task = serve(listener, move |request| {
            receive(request, known.clone(), tx.clone())
        });
        Ok(Receiver {
            address,
            secrets,
            received,
            task,
        })
    }
}

async fn receive(
    request: Request<Incoming>,
    secrets: Arc<Mutex<HashMap<String, String>>>,
    tx: mpsc::UnboundedSender<Received>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let path = request.uri().path().to_owned();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let secret = secrets.lock().await.get(&path).cloned();
    let verified = secret.is_some_and(|secret| {
        timestamp
            .parse()
            .ok()
            .and_then(|ts| webhook::sign(&secret, &id, ts, &body).ok())
            == Some(signature)
    });
    let message_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["data"]["message_id"].as_str().map(str::to_owned));
    let status = match (verified, message_id) {
        (true, Some(message_id)) => {
            let _ = tx.send(Received {
                at,
                message_id,
                webhook_id: id,
            });
            200
        }
        _ => 400,
    };
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("a response builds"))
}

/// Serve HTTP/1 on `listener` with `handle`, until the task is aborted.
fn serve<F, Fut>(listener: tokio::net::TcpListener, handle: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handle);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// A push as the push receiver decrypted it.
struct Pushed {
    at: Instant,
    payload: Value,
}

/// A web push endpoint that decrypts what it receives with its subscription's private key.
struct PushReceiver {
    subscription: Value,
    pushed: mpsc::UnboundedReceiver<Result<Pushed, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl PushReceiver {
    async fn start() -> Result<PushReceiver, BoxError> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use rand_core::RngCore;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}/push/bench", listener.local_addr()?);
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let mut auth = [0u8; 16];
        rand_core::OsRng.fill_bytes(&mut auth);
        let subscription = json!({
            "endpoint": endpoint,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(key.public_key().to_encoded_point(false).as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(auth),
            },
        });
        let (tx, pushed) = mpsc::unbounded_channel();
        let key = Arc::new(key);
        let task = serve(listener, move |request| {
            let (key, tx) = (key.clone(), tx.clone());
            async move {
                let at = Instant::now();
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let read = web_push::decrypt(&key, &auth, &body)
                    .and_then(|plain| serde_json::from_slice(&plain).map_err(|e| e.to_string()));
                let status = if read.is_ok() { 201 } else { 400 };
                let _ = tx.send(read.map(|payload| Pushed { at, payload }));
                Ok(Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::new()))
                    .expect("a response builds"))
            }
        });
        Ok(PushReceiver {
            subscription,
            pushed,
            task,
        })
    }

    async fn next(&mut self) -> Result<Pushed, BoxError> {
        let got = tokio::time::timeout(Duration::from_secs(30), self.pushed.recv())
            .await
            .map_err(|_| "no push within 30 s")?
            .ok_or("the push receiver stopped")?;
        Ok(got?)
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn post(&self, path: &str, body: &Value) -> Result<Value, BoxError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(path, request).await
    }

    async fn get(&self, path: &str) -> Result<Value, BoxError> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(path, request).await
    }

    async fn send(&self, path: &str, request: reqwest::RequestBuilder) -> Result<Value, BoxError> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let json: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {json}").into());
        }
        Ok(json)
    }

    async fn channel(&self, receiver: &Receiver, n: u32) -> Result<(), BoxError> {
        let path = format!("/c/{n}");
        let body = json!({ "kind": "webhook", "url": format!("{}{path}", receiver.address) });
        let added = self.post("/api/v1/notifications/channels", &body).await?;
        let secret = added["secret"].as_str().ok_or("no secret")?.to_owned();
        receiver.secrets.lock().await.insert(path, secret);
        Ok(())
    }

    async fn ask(&self, text: &str) -> Result<String, BoxError> {
        let body = json!({
            "agent_instance_id": Uuid::new_v4(),
            "agent_type": "bench",
            "content": text,
            "requires_user_input": true,
        });
        let sent = self.post("/api/v1/messages/agent", &body).await?;
        Ok(sent["message_id"]
            .as_str()
            .ok_or("no message id")?
            .to_owned())
    }
}

/// Wait for the next verified delivery.
async fn next(receiver: &mut Receiver) -> Result<Received, BoxError> {
    tokio::time::timeout(Duration::from_secs(30), receiver.received.recv())
        .await
        .map_err(|_| "no delivery within 30 s")?
        .ok_or_else(|| "the receiver stopped".into())
}

/// A new user (channels are facts on its account) and a key for it.
async fn tenant(db: &BenchDb, keys: &crate::auth::SigningKeys) -> Result<String, BoxError> {
    let user = Uuid::new_v4();
    let name = UserName::parse("name", "bench")?;
    commands::create_user(
        &EventLog::new(db.pool.clone()),
        &Context::system(user),
        name,
        None,
    )
    .await?;
    let (_, token) = api_keys::create(&db.pool, keys, user, "bench", Scope::Agent, None).await?;
    Ok(token)
}

pub async fn run(db: &BenchDb, args: &NotifyArgs) -> Result<(), BoxError> {
    let (keys, public, private) = super::scratch_keys()?;
    let server = Server::start(db, (&public, &private), &["--notify-allow-private"])?;
    let http = reqwest::Client::new();
    let mut receiver = Receiver::start().await?;
    println!("notify benchmark (webhooks to a local receiver, signatures checked):");

    let api = Api {
        http: http.clone(),
        base: server.address.clone(),
        token: tenant(db, &keys).await?,
    };
    api.channel(&receiver, 0).await?;
    let (mut from_commit, mut from_send) = (Vec::new(), Vec::new());
    for n in 0..args.samples {
        let sent = Instant::now();
        let message_id = api.ask(&format!("question {n}?")).await?;
        let committed = Instant::now();
        let got = next(&mut receiver).await?;
        if got.message_id != message_id {
            return Err(format!("expected {message_id}, received {}", got.message_id).into());
        }
        from_commit.push(got.at.saturating_duration_since(committed));
        from_send.push(got.at - sent);
    }
    let show = |l: Option<Latencies>| l.map_or("-".into(), |l| l.to_string());
    println!(
        "  question → webhook received, from the commit:  {}",
        show(Latencies::of(from_commit))
    );
    println!(
        "  question → webhook received, from sending it:  {}",
        show(Latencies::of(from_send))
    );

    let api = Api {
        token: tenant(db, &keys).await?,
        ..api
    };
    for n in 1..=args.channels {
        api.channel(&receiver, n).await?;
    }
    let expected = (args.channels * args.questions) as usize;
    let started = Instant::now();
    let asking = {
        let api = Arc::new(api);
        let questions: Vec<_> = (0..args.questions)
            .map(|n| {
                let api = api.clone();
                tokio::spawn(async move { api.ask(&format!("burst {n}?")).await })
            })
            .collect();
        futures::future::join_all(questions)
    };
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let (asked, ()) = tokio::join!(asking, async {
        while seen.len() < expected {
            match next(&mut receiver).await {
                Ok(got) => {
                    if !seen.insert(got.webhook_id) {
                        duplicates += 1;
                    }
                }
                Err(e) => {
                    eprintln!("  throughput run stopped: {e}");
                    break;
                }
            }
        }
    });
    let elapsed = started.elapsed();
    for question in asked {
        question??;
    }
    println!(
        "  {} questions × {} channels: {} deliveries in {:.2} s = {:.0} deliveries/s ({} duplicates)",
        args.questions,
        args.channels,
        seen.len(),
        elapsed.as_secs_f64(),
        seen.len() as f64 / elapsed.as_secs_f64(),
        duplicates
    );
    receiver.task.abort();
    if seen.len() < expected {
        return Err(format!("{} of {expected} deliveries arrived", seen.len()).into());
    }
    let api = Api {
        token: tenant(db, &keys).await?,
        ..api_for(&http, &server)
    };
    answered_from_push(&api, args.samples).await?;
    drop(server);
    Ok(())
}

fn api_for(http: &reqwest::Client, server: &Server) -> Api {
    Api {
        http: http.clone(),
        base: server.address.clone(),
        token: String::new(),
    }
}

/// An approval asked, its agent waiting, its push pressed: commit → push received, and
/// commit → the agent woken with the answer.
async fn answered_from_push(api: &Api, samples: u32) -> Result<(), BoxError> {
    let mut push = PushReceiver::start().await?;
    let body = json!({ "kind": "web_push", "subscription": push.subscription });
    api.post("/api/v1/notifications/channels", &body).await?;
    let (mut to_push, mut to_woken, mut press_to_woken) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..samples {
        let session = Uuid::new_v4();
        let ask = json!({
            "agent_instance_id": session,
            "agent_type": "bench",
            "content": format!("May I run step {n}?"),
            "requires_user_input": true,
            "approval": { "tool_name": "Bash", "input": { "command": format!("make step-{n}") } },
        });
        let sent = api.post("/api/v1/messages/agent", &ask).await?;
        let committed = Instant::now();
        let question = sent["message_id"]
            .as_str()
            .ok_or("no message id")?
            .to_owned();
        // The agent waits for its answer (a long-poll for this question).
        let waiting = {
            let path = format!(
                "/api/v1/messages/pending?agent_instance_id={session}&question_id={question}&wait=30"
            );
            let api = Api {
                http: api.http.clone(),
                base: api.base.clone(),
                token: api.token.clone(),
            };
            tokio::spawn(async move {
                let got = api.get(&path).await;
                (Instant::now(), got)
            })
        };
        let pushed = push.next().await?;
        if pushed.payload["message_id"] != question.as_str() {
            return Err(format!("a push for another question: {}", pushed.payload).into());
        }
        let allow = pushed.payload["actions"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["option"] == "Allow"))
            .and_then(|a| a["url"].as_str())
            .ok_or_else(|| format!("no Allow button: {}", pushed.payload))?;
        // The capability, pressed at this server (its public URL is not its address here).
        let token = allow.rsplit('/').next().unwrap_or_default();
        let pressed = api
            .http
            .post(format!("{}/api/v1/actions/{token}", api.base))
            .send()
            .await?;
        if !pressed.status().is_success() {
            return Err(format!("pressing Allow: {}", pressed.status()).into());
        }
        let (woken, got) = waiting.await?;
        let got = got?;
        if got["messages"][0]["content"] != "Allow" {
            return Err(format!("the agent woke with {got}").into());
        }
        to_push.push(pushed.at.saturating_duration_since(committed));
        to_woken.push(woken.saturating_duration_since(committed));
        press_to_woken.push(woken.saturating_duration_since(pushed.at));
    }
    push.task.abort();
    let show = |l: Option<Latencies>| l.map_or("-".into(), |l| l.to_string());
    println!(
        "  approval → push received (decrypted), from the commit: {}",
        show(Latencies::of(to_push))
    );
    println!(
        "  approval → Allow pressed on the push → agent woken, from the commit: {}",
        show(Latencies::of(to_woken))
    );
    println!(
        "    of which push received → agent woken: {}",
        show(Latencies::of(press_to_woken))
    );
    Ok(())
}
