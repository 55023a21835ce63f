//! A host that gives up on `ask_question` (its timeout, or the person pressing Esc: it sends
//! `notifications/cancelled`; or it closes the stream) and comes back with its next call gets
//! the person's answer, exactly once, on any node.
//!
//! Raw HTTP against two nodes on one database (the in-process server and `switchboard serve`
//! as a second process), and the official TypeScript SDK with a request timeout and with an
//! AbortSignal. The race where the call takes the answer just as the cancellation arrives is
//! made certain, not hoped for: a trigger holds the take's write in the database until the
//! cancellation is in.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{ServerProcess, TestApp};
use serde_json::{Value, json};
use switchboard::app::Config;
use switchboard::mcp::McpConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn spawn() -> TestApp {
    TestApp::spawn_with(Config {
        mcp: McpConfig {
            block_limit: Duration::from_secs(60),
            ..McpConfig::default()
        },
        ..Config::default()
    })
    .await
}

/// A minimal Streamable HTTP client: what a host sends, byte for byte under our control.
struct Raw {
    http: reqwest::Client,
    token: String,
    session: Option<String>,
}

impl Raw {
    /// `initialize` at `url`, keeping the session the server opens.
    async fn initialize(url: &str, token: &str) -> Raw {
        let mut raw = Raw {
            http: reqwest::Client::new(),
            token: token.to_owned(),
            session: None,
        };
        let response = raw
            .post(
                url,
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw-host", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        raw.session = Some(
            response.headers()["mcp-session-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        assert!(messages(response).await[0]["result"]["serverInfo"].is_object());
        raw
    }

    fn post(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(body);
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        request
    }

    fn tool(id: i64, name: &str, arguments: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}})
    }

    /// Call a tool at `url` and wait for its structured result.
    async fn call(&self, url: &str, id: i64, name: &str, arguments: Value) -> Value {
        let response = self
            .post(url, &Raw::tool(id, name, arguments))
            .send()
            .await
            .unwrap();
        let messages = messages(response).await;
        let result = messages
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no result for {id}: {messages:?}"));
        assert_ne!(result["result"]["isError"], true, "{result}");
        result["result"]["structuredContent"].clone()
    }

    async fn cancel(&self, url: &str, id: i64) {
        let notice = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": id, "reason": "the host gave up"}});
        let response = self.post(url, &notice).send().await.unwrap();
        assert_eq!(response.status(), 202);
    }
}

/// The JSON-RPC messages of a response (JSON or an event stream), read to its end.
async fn messages(response: reqwest::Response) -> Vec<Value> {
    let text = tokio::time::timeout(Duration::from_secs(30), response.text())
        .await
        .expect("the response ends")
        .unwrap();
    if let Ok(message) = serde_json::from_str(&text) {
        return vec![message];
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}

async fn until_waiters(app: &TestApp, n: usize) {
    for _ in 0..1000 {
        if app.hub.waiters() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} waiters, have {}", app.hub.waiters());
}

async fn reply(app: &TestApp, session: &str, content: &str) {
    let response = app
        .post(
            "/api/v1/messages/user",
            &json!({"agent_instance_id": session, "content": content, "mark_as_read": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Types of the events of an agent session, oldest first.
async fn event_types(app: &TestApp, session: &str) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT event_type FROM events WHERE stream_id = $1::uuid ORDER BY stream_version",
    )
    .bind(session)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    rows.into_iter().map(|(t,)| t).collect()
}

/// Wait until the session's last event is of type `last`; its event types then.
async fn until_last_event(app: &TestApp, session: &str, last: &str) -> Vec<String> {
    let mut events = Vec::new();
    for _ in 0..500 {
        events = event_types(app, session).await;
        if events.last().map(String::as_str) == Some(last) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no {last} event: {events:?}");
}

/// The agent's next two steps: the first carries `feedback`, the second nothing.
async fn next_steps_deliver_once(raw: &Raw, url: &str, session: &str, feedback: &[&str]) {
    let next = raw
        .call(
            url,
            90,
            "log_step",
            json!({"agent_instance_id": session, "step_description": "back"}),
        )
        .await;
    assert_eq!(next["user_feedback"], json!(feedback), "{next}");
    let after = raw
        .call(
            url,
            91,
            "log_step",
            json!({"agent_instance_id": session, "step_description": "again"}),
        )
        .await;
    assert_eq!(after["user_feedback"], json!([]), "delivered once: {after}");
}

/// Holds every `messages_received` append (a wait taking an answer) in the database until the
/// `release` table has a row: the take is then certainly in flight when the test acts.
async fn hold_takes(app: &TestApp) {
    for statement in [
        "CREATE TABLE release (at timestamptz)",
        "CREATE FUNCTION hold_take() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           WHILE NOT EXISTS (SELECT 1 FROM release) LOOP PERFORM pg_sleep(0.02); END LOOP;
           RETURN NEW;
         END $$",
        "CREATE TRIGGER hold_take BEFORE INSERT ON events FOR EACH ROW
         WHEN (NEW.event_type = 'messages_received') EXECUTE FUNCTION hold_take()",
    ] {
        sqlx::query(statement).execute(&app.db.pool).await.unwrap();
    }
}

/// Wait until a take is held by [`hold_takes`].
async fn until_take_held(app: &TestApp) {
    for _ in 0..1000 {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event = 'PgSleep'",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if held > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no take was held");
}

async fn release_takes(app: &TestApp) {
    sqlx::query("INSERT INTO release VALUES (now())")
        .execute(&app.db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_call_cancelled_on_another_node_leaves_the_answer_for_the_next_call() {
    let app = spawn().await;
    let node_b = ServerProcess::start(&app.db).await;
    let (a, b) = (app.url("/mcp"), node_b.url("/mcp"));
    let raw = Raw::initialize(&a, &app.token).await;
    let session = raw
        .call(&a, 1, "log_step", json!({"step_description": "start"}))
        .await["agent_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The question's stream stays open on node A while node B takes the cancellation.
    let asking = raw
        .post(
            &a,
            &Raw::tool(
                2,
                "ask_question",
                json!({"agent_instance_id": session, "question_text": "Deploy?"}),
            ),
        )
        .send()
        .await
        .unwrap();
    until_waiters(&app, 1).await;
    raw.cancel(&b, 2).await;
    until_waiters(&app, 0).await;
    let sent = messages(asking).await;
    assert!(
        sent.iter().all(|m| m.get("id").is_none()),
        "no result for a cancelled call: {sent:?}"
    );

    reply(&app, &session, "yes, deploy").await;
    next_steps_deliver_once(&raw, &b, &session, &["yes, deploy"]).await;
    assert!(
        !event_types(&app, &session)
            .await
            .contains(&"messages_returned".to_owned())
    );
}

#[tokio::test]
async fn an_answer_taken_as_the_cancellation_arrives_goes_back_and_comes_once() {
    let app = spawn().await;
    let node_b = ServerProcess::start(&app.db).await;
    let (a, b) = (app.url("/mcp"), node_b.url("/mcp"));
    let raw = Raw::initialize(&a, &app.token).await;
    let session = raw
        .call(&a, 1, "log_step", json!({"step_description": "start"}))
        .await["agent_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    reply(&app, &session, "before the question").await;
    hold_takes(&app).await;

    let asking = raw
        .post(
            &a,
            &Raw::tool(
                2,
                "ask_question",
                json!({"agent_instance_id": session, "question_text": "Deploy?"}),
            ),
        )
        .send()
        .await
        .unwrap();
    until_waiters(&app, 1).await;
    reply(&app, &session, "yes, deploy").await;
    // The call is taking the answer (its write is held) when the host gives up.
    until_take_held(&app).await;
    raw.cancel(&b, 2).await;
    release_takes(&app).await;
    let sent = messages(asking).await;
    assert!(
        sent.iter().all(|m| m.get("id").is_none()),
        "no result for a cancelled call: {sent:?}"
    );
    let events = until_last_event(&app, &session, "messages_returned").await;
    assert_eq!(
        events[events.len() - 2..],
        ["messages_received", "messages_returned"],
        "{events:?}"
    );

    // The feedback the question collected and the answer: both with the next call, once.
    next_steps_deliver_once(&raw, &b, &session, &["before the question", "yes, deploy"]).await;
    let check = switchboard::eventlog::rebuild::check(&app.db.pool)
        .await
        .unwrap();
    assert!(check.differences.is_empty(), "{check:?}");
}

#[tokio::test]
async fn a_wait_taken_as_the_host_hangs_up_goes_back_to_wait_for_answer() {
    let app = spawn().await;
    // No session: a host that never sends Mcp-Session-Id, or a 2026 host that cancels by
    // closing the stream.
    let raw = Raw {
        http: reqwest::Client::new(),
        token: app.token.clone(),
        session: None,
    };
    let url = app.url("/mcp");
    let asked: Value = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": uuid::Uuid::new_v4(), "agent_type": "raw-host",
                    "content": "Deploy?", "requires_user_input": true}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (session, question) = (
        asked["agent_instance_id"].as_str().unwrap().to_owned(),
        asked["message_id"].clone(),
    );
    hold_takes(&app).await;
    let waiting = raw
        .post(
            &url,
            &Raw::tool(
                2,
                "wait_for_answer",
                json!({"agent_instance_id": session, "question_id": question}),
            ),
        )
        .send()
        .await
        .unwrap();
    until_waiters(&app, 1).await;
    reply(&app, &session, "yes").await;
    until_take_held(&app).await;
    drop(waiting);
    // The server sees the hang-up only when it next writes; give it time, then let the take
    // finish: the call, abandoned, gives the answer back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    release_takes(&app).await;
    let events = until_last_event(&app, &session, "messages_returned").await;
    assert_eq!(
        events[events.len() - 2..],
        ["messages_received", "messages_returned"],
        "the wait took the answer and gave it back: {events:?}"
    );
    let answered = raw
        .call(
            &url,
            3,
            "wait_for_answer",
            json!({"agent_instance_id": session, "question_id": question}),
        )
        .await;
    assert_eq!(answered["answer"], "yes", "{answered}");
    next_steps_deliver_once(&raw, &url, &session, &[]).await;
}

/// A node script of `tests/sdk` run with the SDK installed, talking JSON lines.
struct Script {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Script {
    fn start(name: &str, args: &[&str]) -> Script {
        let mut child = common::node_with_mcp_sdk(name)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (install Node.js)");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Script { child, lines }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("the script reports within a minute")
            .unwrap()
            .expect("the script reports");
        let line: Value = serde_json::from_str(&line).unwrap();
        assert!(line.get("failed").is_none(), "{line}");
        assert!(line.get("unexpected").is_none(), "{line}");
        line
    }

    async fn proceed(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
    }

    async fn finish(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the script ends")
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

/// The TypeScript SDK gives up (`mode`), the person answers afterwards, and the next call
/// brings the answer, once.
async fn the_typescript_sdk_gives_up(mode: &str) {
    let app = spawn().await;
    let mut script = Script::start("mcp_give_up.cjs", &[&app.url("/mcp"), &app.token, mode]);
    let started = script.next().await;
    let session = started["session"].as_str().unwrap().to_owned();
    assert!(started["mcp_session"].is_string(), "a session: {started}");
    let gave_up = script.next().await;
    assert!(gave_up["gave_up"].is_string(), "{gave_up}");
    // The cancellation reached the call: it no longer waits.
    until_waiters(&app, 0).await;
    reply(&app, &session, "yes, deploy").await;
    script.proceed().await;
    let back = script.next().await;
    assert_eq!(
        back["next"]["user_feedback"],
        json!(["yes, deploy"]),
        "{back}"
    );
    assert_eq!(back["after"]["user_feedback"], json!([]), "{back}");
    script.finish().await;
    // The kind of agent is the client's name from initialize (no header said otherwise).
    let listed: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(listed["agent_type"], "claude-code", "{listed}");
    // The host ended its MCP session.
    let ended: Option<(bool,)> =
        sqlx::query_as("SELECT ended_at IS NOT NULL FROM mcp_sessions WHERE id = $1::uuid")
            .bind(started["mcp_session"].as_str())
            .fetch_optional(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(ended, Some((true,)));
}

#[tokio::test]
async fn the_typescript_sdk_times_out_and_its_next_call_brings_the_answer() {
    the_typescript_sdk_gives_up("timeout").await;
}

#[tokio::test]
async fn the_typescript_sdk_aborts_and_its_next_call_brings_the_answer() {
    the_typescript_sdk_gives_up("abort").await;
}

#[tokio::test]
async fn hosts_that_give_up_are_not_logged_as_errors() {
    let app = spawn().await;
    let (node, logs) = ServerProcess::start_logged(&app.db, &[("RUST_LOG", "info")]).await;
    let url = node.url("/mcp");
    let raw = Raw::initialize(&url, &app.token).await;
    let ask = |id: i64, progress: bool| {
        let mut message = Raw::tool(id, "ask_question", json!({"question_text": "Deploy?"}));
        if progress {
            message["params"]["_meta"] = json!({"progressToken": id});
        }
        message
    };
    // Hang up on a call, with and without progress; cancel one.
    for (id, progress) in [(1, false), (2, true)] {
        let asking = raw.post(&url, &ask(id, progress)).send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(asking);
    }
    let asking = raw.post(&url, &ask(3, true)).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    raw.cancel(&url, 3).await;
    assert!(messages(asking).await.iter().all(|m| m.get("id").is_none()));
    raw.call(
        &url,
        4,
        "log_step",
        json!({"step_description": "still fine"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(node.terminate().success());
    let lines = logs.lines();
    assert!(
        lines.iter().any(|l| l.contains("INFO")),
        "the log was captured: {lines:#?}"
    );
    let errors: Vec<&String> = lines.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
