//! Operating a server: `/metrics` read by the Prometheus project's own text-format parser
//! (the `prometheus_client` Python package) and checked to move with traffic of every kind
//! (REST, long-polls, event streams, MCP), with notification deliveries and with a lost LISTEN
//! connection; and the request
//! log in both formats: one line per request with its route template, status, duration,
//! request id and tenant, a line per question asked and answered, never a token or a word
//! anyone wrote, no error for a client that hangs up, no colour codes in a file.
//!
//! Each test runs the server as its own process, so the metrics it reads are that server's
//! alone and its log is what an operator would see.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::receivers::Receiver;
use common::{Logs, ServerProcess, TestApp, prereqs};
use rmcp::model::{CallToolRequestParams, ClientConfig, Implementation};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use switchboard::auth::api_keys;
use switchboard::commands::Scope;
use switchboard::eventlog::EventLog;
use uuid::Uuid;

/// Words that must never reach a log line.
const SECRET_WORDS: &str = "Launch codes are tangerine-42";

/// A parsed scrape: (metric name with sorted labels) → value.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0.get(&key(name, labels)).copied().unwrap_or(0.0)
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// Parse the Prometheus text format with the reference Python client's parser, which raises
/// on anything malformed.
fn parse(text: &str) -> Scrape {
    let python = prereqs::python("prometheus", &[&["prometheus-client==0.26.0"]]);
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value, "type": family.type})
json.dump(samples, sys.stdout)
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let mut scrape = HashMap::new();
    for sample in samples {
        let labels: Vec<(String, String)> = sample["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        scrape.insert(
            key(sample["name"].as_str().unwrap(), &labels),
            sample["value"].as_f64().unwrap(),
        );
    }
    Scrape(scrape)
}

async fn scrape(client: &reqwest::Client, server: &ServerProcess, token: &str) -> Scrape {
    let response = client
        .get(server.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse(&response.text().await.unwrap())
}

/// Scrape until `check` holds (bounded: 10 s).
async fn scrape_until(
    client: &reqwest::Client,
    server: &ServerProcess,
    token: &str,
    what: &str,
    check: impl Fn(&Scrape) -> bool,
) -> Scrape {
    for _ in 0..100 {
        let scraped = scrape(client, server, token).await;
        if check(&scraped) {
            return scraped;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("metrics never showed {what}");
}

fn parked(scrape: &Scrape, kind: &str) -> f64 {
    scrape.get("switchboard_parked_waiters", &[("kind", kind)])
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

type Mcp = rmcp::service::RunningService<RoleClient, ClientConfig>;

async fn mcp_client(server: &ServerProcess, token: &str) -> Mcp {
    let config =
        StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).auth_header(token);
    ClientConfig::new(Default::default(), Implementation::new("ops-tests", "1"))
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP initialize")
}

fn ask_question(session: Uuid, question: &str) -> CallToolRequestParams {
    let args = json!({"agent_instance_id": session, "question_text": question});
    CallToolRequestParams::new("ask_question").with_arguments(args.as_object().unwrap().clone())
}

#[tokio::test]
async fn metrics_are_prometheus_text_that_moves_with_every_kind_of_traffic() {
    let app = TestApp::spawn().await;
    let metrics_token = "scrape-4b1d";
    let server =
        ServerProcess::start_with(&app.db, &[("SWITCHBOARD_METRICS_TOKEN", metrics_token)]).await;
    let http = reqwest::Client::new();

    for given in [None, Some("wrong"), Some(&app.token[..])] {
        let mut request = http.get(server.url("/metrics"));
        if let Some(token) = given {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{given:?}");
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let before = scrape(&http, &server, metrics_token).await;
    for kind in ["long_poll", "sse", "mcp"] {
        assert_eq!(parked(&before, kind), 0.0, "{kind}");
    }
    assert_eq!(before.get("switchboard_db_connections_max", &[]), 32.0);

    // A question over REST, its agent long-polling for the answer.
    let session = Uuid::new_v4();
    let asked = post(
        &http,
        server.url("/api/v1/messages/agent"),
        &app.token,
        json!({"agent_instance_id": session, "agent_type": "t", "content": "Ship it?",
               "requires_user_input": true}),
    )
    .await;
    let question = asked["message_id"].as_str().unwrap().to_owned();
    let long_poll = tokio::spawn({
        let (http, token) = (http.clone(), app.token.clone());
        let url = server.url(&format!(
            "/api/v1/messages/pending?agent_instance_id={session}\
             &last_read_message_id={question}&wait=60"
        ));
        async move {
            let response = http.get(url).bearer_auth(token).send().await.unwrap();
            response.json::<Value>().await.unwrap()
        }
    });
    // An open event stream.
    let stream = http
        .get(server.url("/api/v1/stream"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // An MCP agent blocked on its own question.
    let mcp = mcp_client(&server, &app.token).await;
    let mcp_session = Uuid::new_v4();
    post(
        &http,
        server.url("/api/v1/messages/agent"),
        &app.token,
        json!({"agent_instance_id": mcp_session, "agent_type": "t", "content": "started"}),
    )
    .await;
    let mcp_call = tokio::spawn({
        let peer = mcp.peer().clone();
        async move { peer.call_tool(ask_question(mcp_session, "Deploy?")).await }
    });

    let parked_now = scrape_until(
        &http,
        &server,
        metrics_token,
        "one parked of each kind",
        |s| {
            ["long_poll", "sse", "mcp"]
                .iter()
                .all(|kind| parked(s, kind) == 1.0)
        },
    )
    .await;
    assert_eq!(
        parked_now.get("switchboard_questions_asked_total", &[])
            - before.get("switchboard_questions_asked_total", &[]),
        2.0
    );
    // Counted from arrival; give both agents time to read once and go to sleep, so that the
    // replies below wake them (and their wake latency is measured).
    tokio::time::sleep(Duration::from_millis(300)).await;

    for target in [session, mcp_session] {
        post(
            &http,
            server.url("/api/v1/messages/user"),
            &app.token,
            json!({"agent_instance_id": target, "content": "yes", "mark_as_read": false}),
        )
        .await;
    }
    let answered = long_poll.await.unwrap();
    assert_eq!(answered["messages"][0]["content"], "yes");
    let result = mcp_call.await.unwrap().expect("the MCP call returns");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    drop(stream);
    let unmatched = http.get(server.url("/no/such/page")).send().await.unwrap();
    assert_eq!(unmatched.status(), 404);
    let one = http
        .get(server.url(&format!("/api/v1/sessions/{session}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);

    let after = scrape_until(&http, &server, metrics_token, "nothing parked", |s| {
        ["long_poll", "sse", "mcp"]
            .iter()
            .all(|kind| parked(s, kind) == 0.0)
    })
    .await;
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let requests = |method, route, status| {
        moved(
            "switchboard_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("POST", "/api/v1/messages/agent", "200"), 2.0);
    assert_eq!(requests("POST", "/api/v1/messages/user", "200"), 2.0);
    assert_eq!(requests("GET", "/api/v1/messages/pending", "200"), 1.0);
    assert_eq!(requests("GET", "/api/v1/stream", "200"), 1.0);
    assert_eq!(requests("GET", "/api/v1/sessions/{session_id}", "200"), 1.0);
    assert_eq!(requests("GET", "unmatched", "404"), 1.0);
    let refused = [("method", "GET"), ("route", "/metrics"), ("status", "401")];
    assert_eq!(after.get("switchboard_http_requests_total", &refused), 3.0);
    assert!(
        requests("POST", "/mcp", "200") >= 2.0,
        "initialize and the call"
    );
    let pending = [("method", "GET"), ("route", "/api/v1/messages/pending")];
    assert_eq!(
        moved("switchboard_http_request_duration_seconds_count", &pending),
        1.0
    );
    assert!(moved("switchboard_http_request_duration_seconds_sum", &pending) > 0.0);
    assert_eq!(moved("switchboard_reply_wake_seconds_count", &[]), 2.0);
    assert_eq!(moved("switchboard_questions_answered_total", &[]), 2.0);
    // Two questions, a step, two replies, and the read cursor moved twice: 7 appends.
    let committed = moved("switchboard_appends_total", &[("outcome", "committed")]);
    assert!(committed >= 7.0, "{committed}");
    assert_eq!(
        moved("switchboard_appends_total", &[("outcome", "failed")]),
        0.0
    );
    assert!(moved("switchboard_group_commit_batch_size_count", &[]) >= 1.0);
    assert!(
        after.get("switchboard_db_connections", &[("state", "in_use")])
            + after.get("switchboard_db_connections", &[("state", "idle")])
            >= 1.0
    );
    for counter in [
        "switchboard_append_retries_total",
        "switchboard_safety_net_catches_total",
    ] {
        assert!(
            after.0.contains_key(&key(counter, &[])),
            "{counter} is exported"
        );
    }
    mcp.cancel().await.unwrap();

    // The LISTEN connections of this database are cut; the server makes its own again.
    assert_eq!(after.get("switchboard_listener_reconnects_total", &[]), 0.0);
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'switchboard listener'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    scrape_until(&http, &server, metrics_token, "a listener reconnect", |s| {
        s.get("switchboard_listener_reconnects_total", &[]) == 1.0
    })
    .await;
}

/// Traffic whose log lines the tests below read: a REST question answered over REST, an MCP
/// question answered and one abandoned, a stream opened with `?access_token=`, a long-poll
/// whose client hangs up. Returns the request id of the REST question.
async fn traffic(app: &TestApp, server: &ServerProcess) -> String {
    let http = reqwest::Client::new();
    let session = Uuid::new_v4();
    let response = http
        .post(server.url("/api/v1/messages/agent"))
        .bearer_auth(&app.token)
        .json(&json!({"agent_instance_id": session, "agent_type": "t",
                      "content": SECRET_WORDS, "requires_user_input": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    post(
        &http,
        server.url("/api/v1/messages/user"),
        &app.token,
        json!({"agent_instance_id": session, "content": SECRET_WORDS, "mark_as_read": false}),
    )
    .await;

    let mcp = mcp_client(server, &app.token).await;
    let mcp_session = Uuid::new_v4();
    post(
        &http,
        server.url("/api/v1/messages/agent"),
        &app.token,
        json!({"agent_instance_id": mcp_session, "agent_type": "t", "content": "started"}),
    )
    .await;
    let call = tokio::spawn({
        let peer = mcp.peer().clone();
        async move {
            peer.call_tool(ask_question(mcp_session, SECRET_WORDS))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    post(
        &http,
        server.url("/api/v1/messages/user"),
        &app.token,
        json!({"agent_instance_id": mcp_session, "content": SECRET_WORDS, "mark_as_read": false}),
    )
    .await;
    call.await.unwrap().expect("the MCP call returns");
    // Another question, whose agent goes away while it waits.
    let abandoned = tokio::spawn({
        let peer = mcp.peer().clone();
        async move {
            peer.call_tool(ask_question(mcp_session, "Still there?"))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    abandoned.abort();
    mcp.cancel().await.unwrap();

    let stream = http
        .get(server.url(&format!(
            "/api/v1/stream?access_token={}&last_event_id=0",
            app.token
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    drop(stream);

    // A long-poll whose client gives up after half a second.
    let hung_up = http
        .get(server.url(&format!(
            "/api/v1/messages/pending?agent_instance_id={mcp_session}&wait=30"
        )))
        .bearer_auth(&app.token)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(hung_up.unwrap_err().is_timeout());
    request_id
}

/// Nothing secret in any line: no key, no message text.
fn assert_nothing_secret(app: &TestApp, logs: &Logs) {
    let signature = app.token.rsplit('.').next().unwrap();
    for line in logs.lines() {
        assert!(!line.contains(signature), "a token in the log: {line}");
        assert!(
            !line.contains("tangerine"),
            "message text in the log: {line}"
        );
    }
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_with_its_route_tenant_and_id_and_no_secrets() {
    let app = TestApp::spawn().await;
    let (server, logs) =
        ServerProcess::start_logged(&app.db, &[("SWITCHBOARD_LOG_FORMAT", "json")]).await;
    let request_id = traffic(&app, &server).await;
    let tenant = app.tenant.to_string();

    let hung_up = logs.wait_for(|l| l.contains("\"status\":499")).await;
    let lines: Vec<Value> = logs
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    let question = requests
        .iter()
        .find(|l| l["request_id"] == request_id.as_str())
        .expect("the question's request line");
    assert_eq!(question["method"], "POST");
    assert_eq!(question["route"], "/api/v1/messages/agent");
    assert_eq!(question["status"], 200);
    assert_eq!(question["tenant"], tenant.as_str());
    assert_eq!(question["level"], "INFO");
    assert!(question["duration_ms"].as_f64().unwrap() > 0.0);
    for route in [
        "/api/v1/messages/user",
        "/api/v1/stream",
        "/mcp",
        "/api/v1/messages/pending",
    ] {
        assert!(
            requests
                .iter()
                .any(|l| l["route"] == route && l["tenant"] == tenant.as_str()),
            "a request line for {route}"
        );
    }
    let hung_up: Value = serde_json::from_str(&hung_up).unwrap();
    assert_eq!(hung_up["route"], "/api/v1/messages/pending");
    assert_eq!(hung_up["level"], "INFO");

    let asked: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "question asked")
        .collect();
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "question answered")
        .collect();
    assert_eq!((asked.len(), answered.len()), (3, 2), "{lines:#?}");
    assert_eq!(asked[0]["tenant"], tenant.as_str());
    assert_eq!(asked[0]["span"]["request_id"], request_id.as_str());
    assert!(
        lines.iter().all(|l| l["level"] != "ERROR"),
        "a client hanging up is not an error: {lines:#?}"
    );
    assert!(
        lines.iter().all(|l| {
            let library = !l["target"]
                .as_str()
                .unwrap_or_default()
                .starts_with("switchboard");
            !library || l["level"] == "WARN"
        }),
        "library chatter stays below WARN: {lines:#?}"
    );
    assert_nothing_secret(&app, &logs);
}

#[tokio::test]
async fn text_logs_carry_the_same_fields_without_colour_codes_when_not_on_a_terminal() {
    let app = TestApp::spawn().await;
    let (server, logs) = ServerProcess::start_logged(&app.db, &[]).await;
    let request_id = traffic(&app, &server).await;
    logs.wait_for(|l| l.contains("status=499")).await;
    let line = logs
        .wait_for(|l| l.contains(&format!("request_id={request_id}")) && l.contains("status="))
        .await;
    for field in [
        "INFO".to_owned(),
        " request ".to_owned(),
        "method=POST".to_owned(),
        "route=/api/v1/messages/agent".to_owned(),
        "status=200".to_owned(),
        "duration_ms=".to_owned(),
        format!("tenant={}", app.tenant),
    ] {
        assert!(line.contains(&field), "{field:?} in {line}");
    }
    let lines = logs.lines();
    assert!(lines.iter().any(|l| l.contains("question answered")));
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "no ANSI escapes: {lines:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains(" ERROR ")), "{lines:#?}");
    assert_nothing_secret(&app, &logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_deliveries_move_the_metrics_by_channel_and_outcome() {
    let db = common::database().await;
    let keys = common::signing_keys().await;
    let tenant = Uuid::new_v4();
    let (_, token) = api_keys::create(&db.pool, &keys, tenant, "test", Scope::Agent, None)
        .await
        .unwrap();
    common::create_user(&EventLog::new(db.pool.clone()), tenant).await;
    let metrics_token = "scrape-5c2e";
    let server = ServerProcess::start_with(
        &db,
        &[
            ("SWITCHBOARD_METRICS_TOKEN", metrics_token),
            ("SWITCHBOARD_NOTIFY_ALLOW_PRIVATE", "true"),
            ("SWITCHBOARD_NOTIFY_RETRY", "200ms"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let deliveries = |s: &Scrape, outcome: &str| {
        s.get(
            "switchboard_notification_deliveries_total",
            &[("channel", "webhook"), ("outcome", outcome)],
        )
    };
    let attempts = |s: &Scrape| {
        s.get(
            "switchboard_notification_attempt_duration_seconds_count",
            &[("channel", "webhook")],
        )
    };
    let before = scrape(&http, &server, metrics_token).await;
    for outcome in ["delivered", "retried", "failed", "skipped"] {
        assert_eq!(deliveries(&before, outcome), 0.0, "{outcome}");
    }
    assert_eq!(before.get("switchboard_notifications_pending", &[]), 0.0);

    // The receiver refuses the first attempt: one retry, then delivered.
    let mut receiver = Receiver::webhook(&["--fail-first", "1"]).await;
    let response = http
        .post(server.url("/api/v1/notifications/channels"))
        .bearer_auth(&token)
        .json(&json!({ "kind": "webhook", "url": receiver.url() }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let channel: Value = response.json().await.unwrap();
    receiver.secret(channel["secret"].as_str().unwrap()).await;
    post(
        &http,
        server.url("/api/v1/messages/agent"),
        &token,
        json!({"agent_instance_id": Uuid::new_v4(), "agent_type": "t", "content": "Ship it?",
               "requires_user_input": true}),
    )
    .await;
    assert_eq!(receiver.next("WEBHOOK").await["status"], 500);
    assert_eq!(receiver.next("WEBHOOK").await["status"], 200);

    let after = scrape_until(&http, &server, metrics_token, "a delivery", |s| {
        deliveries(s, "delivered") == 1.0
    })
    .await;
    assert_eq!(deliveries(&after, "retried"), 1.0);
    assert_eq!(deliveries(&after, "failed"), 0.0);
    assert_eq!(attempts(&after), 2.0);
    // The pending count follows the notifier's looks (at most every 10 s when idle).
    let mut pending = after.get("switchboard_notifications_pending", &[]);
    for _ in 0..150 {
        if pending == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        pending = scrape(&http, &server, metrics_token)
            .await
            .get("switchboard_notifications_pending", &[]);
    }
    assert_eq!(pending, 0.0, "nothing is left pending");
}
