//! Bad input of every kind gets a clear 4xx with `{"detail": ...}` and changes nothing.

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// A request as raw parts, so that bodies can be anything at all.
struct Probe {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
}

fn probe(name: &'static str, method: Method, path: &str, body: &str, status: u16) -> Probe {
    Probe {
        name,
        method,
        path: path.to_owned(),
        content_type: Some("application/json"),
        body: body.as_bytes().to_vec(),
        status,
    }
}

fn agent(name: &'static str, body: &str, status: u16) -> Probe {
    probe(name, Method::POST, "/api/v1/messages/agent", body, status)
}

fn get(name: &'static str, path: &str, status: u16) -> Probe {
    Probe {
        content_type: None,
        ..probe(name, Method::GET, path, "", status)
    }
}

async fn state(app: &TestApp) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM sessions),
                (SELECT count(*) FROM inbox), (SELECT count(*) FROM session_heartbeats)",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_bad_input_is_a_clear_4xx_that_changes_nothing() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let ok = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "agent_type": "t", "content": "hello"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let message_id = ok.json::<Value>().await.unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let id = session.to_string();
    let big_diff = format!(
        "diff --git a/f b/f\\nindex 1a2..3b4 100644\\n--- a/f\\n+++ b/f\\n@@ -1 +1 @@\\n{}",
        "+x\\n".repeat(400_000)
    );
    let deep = format!(
        r#"{{"agent_instance_id": "{id}", "content": "x", "message_metadata": {{"a": {}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let probes = vec![
        agent("malformed JSON", r#"{"agent_instance_id": "#, 400),
        agent("not an object", "[1, 2, 3]", 422),
        agent("null body", "null", 422),
        agent("empty body", "", 400),
        agent("deeply nested", &deep, 400),
        agent(
            "missing content",
            &format!(r#"{{"agent_instance_id": "{id}"}}"#),
            422,
        ),
        agent(
            "missing session id",
            r#"{"content": "x", "agent_type": "t"}"#,
            422,
        ),
        agent(
            "content is a number",
            &format!(r#"{{"agent_instance_id": "{id}", "content": 5}}"#),
            422,
        ),
        agent(
            "session id is a number",
            r#"{"agent_instance_id": 5, "content": "x"}"#,
            422,
        ),
        agent(
            "flag is a string",
            &format!(
                r#"{{"agent_instance_id": "{id}", "content": "x", "requires_user_input": "yes"}}"#
            ),
            422,
        ),
        agent(
            "flag is null",
            &format!(
                r#"{{"agent_instance_id": "{id}", "content": "x", "requires_user_input": null}}"#
            ),
            422,
        ),
        agent(
            "metadata is an array",
            &format!(r#"{{"agent_instance_id": "{id}", "content": "x", "message_metadata": [1]}}"#),
            422,
        ),
        agent(
            "empty content",
            &format!(r#"{{"agent_instance_id": "{id}", "content": ""}}"#),
            422,
        ),
        agent(
            "blank content",
            &format!(r#"{{"agent_instance_id": "{id}", "content": " \n\t "}}"#),
            422,
        ),
        agent(
            "invalid session id",
            r#"{"agent_instance_id": "not-a-uuid", "content": "x", "agent_type": "t"}"#,
            422,
        ),
        agent(
            "NUL in content",
            &format!(r#"{{"agent_instance_id": "{id}", "content": "a\u0000b"}}"#),
            422,
        ),
        agent(
            "NUL in agent type",
            r#"{"agent_instance_id": "6f0d3e5e-0f3e-4a7e-9b1e-3c7d2a1b0c9d", "content": "x", "agent_type": "a\u0000"}"#,
            422,
        ),
        agent(
            "NUL in a metadata value",
            &format!(
                r#"{{"agent_instance_id": "{id}", "content": "x", "message_metadata": {{"a": ["b\u0000"]}}}}"#
            ),
            422,
        ),
        agent(
            "NUL in a metadata key",
            &format!(
                r#"{{"agent_instance_id": "{id}", "content": "x", "message_metadata": {{"a\u0000": 1}}}}"#
            ),
            422,
        ),
        agent(
            "NUL in a git diff",
            &format!(
                r#"{{"agent_instance_id": "{id}", "content": "x", "git_diff": "diff\u0000"}}"#
            ),
            422,
        ),
        agent(
            "lone surrogate",
            &format!(r#"{{"agent_instance_id": "{id}", "content": "\ud800"}}"#),
            400,
        ),
        agent(
            "reversed surrogates",
            &format!(r#"{{"agent_instance_id": "{id}", "content": "\udc00\ud800"}}"#),
            400,
        ),
        agent(
            "agent type too long",
            &format!(
                r#"{{"agent_instance_id": "{}", "content": "x", "agent_type": "{}"}}"#,
                Uuid::new_v4(),
                "a".repeat(500)
            ),
            422,
        ),
        agent(
            "git diff over 1 MiB",
            &format!(
                r#"{{"agent_instance_id": "{id}", "content": "x", "git_diff": "{big_diff}"}}"#
            ),
            422,
        ),
        agent(
            "body over 2 MiB",
            &format!(
                r#"{{"agent_instance_id": "{id}", "content": "{}"}}"#,
                "x".repeat(3 << 20)
            ),
            413,
        ),
        Probe {
            content_type: Some("text/plain"),
            ..agent(
                "wrong content type",
                &format!(r#"{{"agent_instance_id": "{id}", "content": "x"}}"#),
                415,
            )
        },
        Probe {
            content_type: None,
            ..agent(
                "no content type",
                &format!(r#"{{"agent_instance_id": "{id}", "content": "x"}}"#),
                415,
            )
        },
        Probe {
            body: b"{\"agent_instance_id\": \"\xff\xfe\", \"content\": \"x\"}".to_vec(),
            ..agent("invalid UTF-8", "", 400)
        },
        probe(
            "user message: unknown session",
            Method::POST,
            "/api/v1/messages/user",
            &format!(
                r#"{{"agent_instance_id": "{}", "content": "x"}}"#,
                Uuid::new_v4()
            ),
            404,
        ),
        probe(
            "user message: empty content",
            Method::POST,
            "/api/v1/messages/user",
            &format!(r#"{{"agent_instance_id": "{id}", "content": ""}}"#),
            422,
        ),
        probe(
            "user message: NUL",
            Method::POST,
            "/api/v1/messages/user",
            &format!(r#"{{"agent_instance_id": "{id}", "content": "\u0000"}}"#),
            422,
        ),
        probe(
            "user message: mark_as_read string",
            Method::POST,
            "/api/v1/messages/user",
            &format!(r#"{{"agent_instance_id": "{id}", "content": "x", "mark_as_read": "no"}}"#),
            422,
        ),
        probe(
            "end: empty object",
            Method::POST,
            "/api/v1/sessions/end",
            "{}",
            422,
        ),
        probe(
            "end: invalid id",
            Method::POST,
            "/api/v1/sessions/end",
            r#"{"agent_instance_id": "x"}"#,
            422,
        ),
        probe(
            "end: unknown session",
            Method::POST,
            "/api/v1/sessions/end",
            &format!(r#"{{"agent_instance_id": "{}"}}"#, Uuid::new_v4()),
            404,
        ),
        get("pending: no session id", "/api/v1/messages/pending", 422),
        get(
            "pending: invalid session id",
            "/api/v1/messages/pending?agent_instance_id=abc",
            422,
        ),
        get(
            "pending: invalid cursor",
            &format!("/api/v1/messages/pending?agent_instance_id={id}&last_read_message_id=abc"),
            422,
        ),
        get(
            "pending: invalid UTF-8",
            "/api/v1/messages/pending?agent_instance_id=%FF%FE",
            422,
        ),
        get(
            "pending: unknown session",
            &format!(
                "/api/v1/messages/pending?agent_instance_id={}",
                Uuid::new_v4()
            ),
            404,
        ),
        probe(
            "request-input: invalid id",
            Method::PATCH,
            "/api/v1/messages/123/request-input",
            "",
            422,
        ),
        probe(
            "request-input: unknown id",
            Method::PATCH,
            &format!("/api/v1/messages/{}/request-input", Uuid::new_v4()),
            "",
            404,
        ),
        probe(
            "heartbeat: invalid id",
            Method::POST,
            "/api/v1/agents/instances/nope/heartbeat",
            "",
            422,
        ),
        probe(
            "heartbeat: unknown session",
            Method::POST,
            &format!("/api/v1/agents/instances/{}/heartbeat", Uuid::new_v4()),
            "",
            404,
        ),
        get("sessions: limit 0", "/api/v1/sessions?limit=0", 422),
        get(
            "sessions: limit huge",
            "/api/v1/sessions?limit=99999999999999999999",
            422,
        ),
        get("sessions: limit text", "/api/v1/sessions?limit=ten", 422),
        get(
            "sessions: unknown status",
            "/api/v1/sessions?status=SLEEPING",
            422,
        ),
        get(
            "sessions: bad time",
            "/api/v1/sessions?before=yesterday",
            422,
        ),
        get("session: invalid id", "/api/v1/sessions/abc", 422),
        get(
            "session: unknown",
            &format!("/api/v1/sessions/{}", Uuid::new_v4()),
            404,
        ),
        get(
            "messages: unknown session",
            &format!("/api/v1/sessions/{}/messages", Uuid::new_v4()),
            404,
        ),
    ];

    let before = state(&app).await;
    let mut failures = Vec::new();
    for probe in probes {
        let mut request = app
            .client
            .request(probe.method.clone(), app.url(&probe.path))
            .bearer_auth(&app.token)
            .body(probe.body.clone());
        if let Some(content_type) = probe.content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let detail = body["detail"].as_str().unwrap_or_default();
        if status != probe.status || detail.is_empty() {
            failures.push(format!(
                "{}: {status} {body} (expected {})",
                probe.name, probe.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(state(&app).await, before, "bad input changed nothing");

    // The session still works, and its one message is as it was.
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/messages/{message_id}/request-input")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn odd_but_valid_unicode_is_kept_exactly() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let content =
        "emoji 👩‍💻, RTL ‏שלום‏, combining é, zero-width \u{200b}, BOM \u{feff}, CJK 漢字, \u{10FFFF}";
    let response = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "agent_type": "t", "content": content,
                    "message_metadata": {"nested": {"n": -0.0, "big": 1e300, "s": "\u{1F600}"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let messages: Value = app
        .get(&format!("/api/v1/sessions/{session}/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(messages[0]["content"], content);
    let chain = switchboard::eventlog::verify::verify(&app.db.pool, None)
        .await
        .unwrap();
    assert!(chain.ok, "{chain:?}");
}

/// A client that sends its body a byte at a time cannot hold a connection: the whole body
/// must arrive within the body timeout, else 408 and the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_trickle_in_are_cut_off_with_408_and_a_closed_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(switchboard::app::Config {
        body_timeout: std::time::Duration::from_secs(2),
        ..switchboard::app::Config::default()
    })
    .await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut clients = Vec::new();
    for _ in 0..50 {
        let (host, token) = (host.clone(), app.token.clone());
        clients.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
            let (mut reader, mut writer) = stream.into_split();
            let head = format!(
                "POST /api/v1/messages/agent HTTP/1.1\r\nHost: {host}\r\n\
                 Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
                 Content-Length: 1000\r\n\r\n{{"
            );
            writer.write_all(head.as_bytes()).await.unwrap();
            let trickle = tokio::spawn(async move {
                while writer.write_all(b" ").await.is_ok() {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            });
            let mut response = Vec::new();
            let read = reader.read_to_end(&mut response);
            tokio::time::timeout(std::time::Duration::from_secs(30), read)
                .await
                .expect("the server closes the connection")
                .unwrap();
            trickle.abort();
            String::from_utf8_lossy(&response).into_owned()
        }));
    }
    for client in clients {
        let response = client.await.unwrap();
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
        assert!(response.contains("did not arrive"), "{response}");
    }
    assert_eq!(state(&app).await, (0, 0, 0, 0), "nothing was appended");
}

/// Large events come in pages bounded in bytes: `/events` returns fewer than `limit` and says
/// where to go on, so a reader never holds more than a few MiB whatever the events' size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_large_events_are_bounded_in_bytes() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let big = "x".repeat(1_500_000);
    for _ in 0..5 {
        let sent = app
            .post(
                "/api/v1/messages/agent",
                &json!({"agent_instance_id": session, "agent_type": "t", "content": big}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 200);
    }
    let mut after = 0;
    let mut pages = 0;
    loop {
        let page: Value = app
            .get(&format!("/api/v1/events?after={after}&limit=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        let bytes: usize = events.iter().map(|e| e.to_string().len()).sum();
        assert!(bytes < 6 << 20, "a page of {bytes} bytes");
        pages += 1;
        after = page["next_after"].as_i64().unwrap();
    }
    assert_eq!(after, 6, "every event was paged through");
    assert!(pages >= 2, "{pages} pages");
}
