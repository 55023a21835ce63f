//! The REST API over real HTTP: the conversation an SDK performs, each route's fields and
//! statuses, Idempotency-Key, and the service routes.

mod common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn agent_message(app: &TestApp, body: Value) -> (StatusCode, Value) {
    json_of(
        app.post("/api/v1/messages/agent", &body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn user_message(app: &TestApp, session: &str, content: &str, mark_as_read: bool) -> Value {
    let body =
        json!({"agent_instance_id": session, "content": content, "mark_as_read": mark_as_read});
    let (status, body) = json_of(
        app.post("/api/v1/messages/user", &body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn pending(app: &TestApp, session: &str, last_read: Option<&str>) -> (StatusCode, Value) {
    let mut url = format!("/api/v1/messages/pending?agent_instance_id={session}");
    if let Some(last) = last_read {
        url.push_str(&format!("&last_read_message_id={last}"));
    }
    json_of(app.get(&url).send().await.unwrap()).await
}

fn message_keys(message: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = message
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn the_sdk_conversation_over_http() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4().to_string();

    // A step starts the session.
    let (status, step) = agent_message(
        &app,
        json!({"agent_instance_id": session, "agent_type": "claude_code", "content": "Reading the code"}),
    )
    .await;
    assert_eq!(status, 200, "{step}");
    assert_eq!(step["success"], true);
    assert_eq!(step["agent_instance_id"], session);
    assert!(Uuid::parse_str(step["message_id"].as_str().unwrap()).is_ok());
    assert_eq!(step["queued_user_messages"], json!([]));

    // Feedback queued meanwhile comes back with the next step, as a five-key message.
    let feedback = user_message(&app, &session, "Add tests", false).await;
    assert_eq!(feedback["success"], true);
    assert_eq!(feedback["marked_as_read"], false);
    let (_, next) = agent_message(
        &app,
        json!({"agent_instance_id": session, "content": "Editing"}),
    )
    .await;
    let queued = next["queued_user_messages"].as_array().unwrap();
    assert_eq!(queued.len(), 1);
    let message = &queued[0];
    assert_eq!(
        message_keys(message),
        [
            "content",
            "created_at",
            "id",
            "requires_user_input",
            "sender_type"
        ]
    );
    assert_eq!(message["id"], feedback["message_id"]);
    assert_eq!(message["content"], "Add tests");
    assert_eq!(message["sender_type"], "USER");
    assert_eq!(message["requires_user_input"], false);
    assert!(message["created_at"].as_str().unwrap().ends_with('Z'));

    // A question: pending with the question id is empty, then holds the reply, then (a
    // retry) the same reply again, and stale once the agent has moved on.
    let (_, question) = agent_message(
        &app,
        json!({"agent_instance_id": session, "content": "Which database?", "requires_user_input": true}),
    )
    .await;
    let question_id = question["message_id"].as_str().unwrap().to_owned();
    let sessions: Value = app
        .get("/api/v1/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions[0]["status"], "AWAITING_INPUT");
    let (status, empty) = pending(&app, &session, Some(&question_id)).await;
    assert_eq!(status, 200);
    assert_eq!(
        empty,
        json!({"agent_instance_id": session, "messages": [], "status": "ok"})
    );
    user_message(&app, &session, "PostgreSQL", false).await;
    let (_, answer) = pending(&app, &session, Some(&question_id)).await;
    assert_eq!(answer["status"], "ok");
    assert_eq!(answer["messages"][0]["content"], "PostgreSQL");
    let (_, again) = pending(&app, &session, Some(&question_id)).await;
    assert_eq!(again["messages"], answer["messages"]);
    agent_message(
        &app,
        json!({"agent_instance_id": session, "content": "Using PostgreSQL"}),
    )
    .await;
    let (_, stale) = pending(&app, &session, Some(&question_id)).await;
    assert_eq!(stale["status"], "stale");
    assert_eq!(stale["messages"], json!([]));

    // request-input on a step.
    let (_, step) = agent_message(
        &app,
        json!({"agent_instance_id": session, "content": "Done?"}),
    )
    .await;
    let step_id = step["message_id"].as_str().unwrap();
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/messages/{step_id}/request-input")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    let (status, requested) = json_of(response).await;
    assert_eq!(status, 200, "{requested}");
    assert_eq!(
        requested,
        json!({"success": true, "message_id": step_id, "agent_instance_id": session, "messages": [], "status": "ok"})
    );
    let again = app
        .client
        .patch(app.url(&format!("/api/v1/messages/{step_id}/request-input")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);

    // Heartbeat, end, and what is left to read.
    let (status, beat) = json_of(
        app.client
            .post(app.url(&format!("/api/v1/agents/instances/{session}/heartbeat")))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(beat["agent_instance_id"], session);
    assert!(beat["last_heartbeat_at"].as_str().unwrap().ends_with('Z'));

    let (status, ended) = json_of(
        app.post(
            "/api/v1/sessions/end",
            &json!({"agent_instance_id": session}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ended,
        json!({"success": true, "agent_instance_id": session, "final_status": "COMPLETED"})
    );
    let (status, late) = agent_message(
        &app,
        json!({"agent_instance_id": session, "content": "one more"}),
    )
    .await;
    assert_eq!(status, 409, "{late}");
    assert!(late["detail"].as_str().unwrap().contains("ended"));

    let detail: Value = app
        .get(&format!("/api/v1/sessions/{session}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["id"], session);
    assert_eq!(detail["status"], "COMPLETED");
    assert_eq!(detail["agent_type"], "claude_code");
    assert!(detail["ended_at"].is_string());
    assert_eq!(detail["last_heartbeat_at"], beat["last_heartbeat_at"]);
    let messages: Value = app
        .get(&format!("/api/v1/sessions/{session}/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["messages"], messages);
    let contents: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            "Reading the code",
            "Add tests",
            "Editing",
            "Which database?",
            "PostgreSQL",
            "Using PostgreSQL",
            "Done?"
        ]
    );
    assert_eq!(
        messages[6]["requires_user_input"], true,
        "request-input marked it"
    );
}

#[tokio::test]
async fn mark_as_read_defaults_to_true() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4().to_string();
    agent_message(
        &app,
        json!({"agent_instance_id": session, "agent_type": "t", "content": "x"}),
    )
    .await;
    let body = json!({"agent_instance_id": session, "content": "typed in the terminal"});
    let (_, sent) = json_of(
        app.post("/api/v1/messages/user", &body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(sent["marked_as_read"], true);
    let (_, next) =
        agent_message(&app, json!({"agent_instance_id": session, "content": "y"})).await;
    assert_eq!(next["queued_user_messages"], json!([]));
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_nulls_mean_absent() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4().to_string();
    let (status, body) = agent_message(
        &app,
        json!({
            "agent_instance_id": session, "agent_type": "t", "content": "x",
            "send_email": null, "send_sms": false, "send_push": true, "git_diff": null,
            "message_metadata": {"webhook_url": "https://example.com/hook"},
            "a_field_from_a_newer_client": [1, 2, 3]
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn sessions_are_listed_newest_activity_first_with_filters_and_paging() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let session = Uuid::new_v4().to_string();
        agent_message(
            &app,
            json!({"agent_instance_id": session, "agent_type": "t", "content": format!("{n}")}),
        )
        .await;
        ids.push(session);
    }
    app.post(
        "/api/v1/sessions/end",
        &json!({"agent_instance_id": ids[1]}),
    )
    .send()
    .await
    .unwrap();
    user_message(&app, &ids[0], "unread", false).await;
    let all: Value = app
        .get("/api/v1/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [&ids[0], &ids[1], &ids[4], &ids[3], &ids[2]]);
    assert_eq!(all[0]["unread_count"], 1);
    for key in [
        "id",
        "agent_type",
        "status",
        "started_at",
        "ended_at",
        "last_activity_at",
        "unread_count",
    ] {
        assert!(all[0].get(key).is_some(), "{key}");
    }
    let completed: Value = app
        .get("/api/v1/sessions?status=COMPLETED")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(completed.as_array().unwrap().len(), 1);
    assert_eq!(completed[0]["id"], ids[1]);
    let first_two: Value = app
        .get("/api/v1/sessions?limit=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first_two.as_array().unwrap().len(), 2);
    let before = first_two[1]["last_activity_at"].as_str().unwrap();
    let rest: Value = app
        .get(&format!("/api/v1/sessions?before={before}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rest: Vec<&str> = rest
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(rest, [&ids[4], &ids[3], &ids[2]]);
}

#[tokio::test]
async fn an_idempotency_key_makes_retries_safe() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4().to_string();
    let body = json!({"agent_instance_id": session, "agent_type": "t", "content": "once"});
    let send = |key: &'static str, body: Value| {
        app.post("/api/v1/messages/agent", &body)
            .header("Idempotency-Key", key)
            .send()
    };
    let (status, first) = json_of(send("key-1", body.clone()).await.unwrap()).await;
    assert_eq!(status, 200);
    let (status, retry) = json_of(send("key-1", body.clone()).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(first, retry);
    let messages: Value = app
        .get(&format!("/api/v1/sessions/{session}/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(messages.as_array().unwrap().len(), 1);

    let other = json!({"agent_instance_id": session, "content": "different"});
    let (status, refused) = json_of(send("key-1", other).await.unwrap()).await;
    assert_eq!(status, 422, "{refused}");

    let (status, _) = json_of(send("with space", body.clone()).await.unwrap()).await;
    assert_eq!(status, 422);

    // Keys are per tenant: another tenant's identical key is its own request.
    let stranger = app
        .key(Uuid::new_v4(), switchboard::commands::Scope::Agent)
        .await;
    let response = app
        .client
        .post(app.url("/api/v1/messages/agent"))
        .bearer_auth(stranger)
        .header("Idempotency-Key", "key-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, theirs) = json_of(response).await;
    assert_eq!(status, 200);
    assert_ne!(theirs["message_id"], first["message_id"]);
}

#[tokio::test]
async fn service_routes_answer_without_a_token() {
    let app = TestApp::spawn().await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "healthy"})
    );
    let root: Value = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        root["endpoints"]["api"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1")
    );
    let verify: Value = app
        .get("/api/v1/auth/verify")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        verify,
        json!({"success": true, "user_id": app.tenant, "user_name": null, "message": "Authentication successful"})
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = [
        ("/api/v1/messages/agent", "post"),
        ("/api/v1/messages/user", "post"),
        ("/api/v1/messages/pending", "get"),
        ("/api/v1/messages/{message_id}/request-input", "patch"),
        ("/api/v1/sessions/end", "post"),
        ("/api/v1/sessions", "get"),
        ("/api/v1/sessions/{session_id}", "get"),
        ("/api/v1/sessions/{session_id}/messages", "get"),
        (
            "/api/v1/agents/instances/{agent_instance_id}/heartbeat",
            "post",
        ),
        ("/api/v1/auth/verify", "get"),
        ("/api/v1/sessions/{session_id}/stream", "get"),
        ("/api/v1/stream", "get"),
        ("/api/v1/events", "get"),
        ("/api/v1/events/export", "get"),
        ("/api/v1/events/verify", "get"),
        ("/health", "get"),
        ("/metrics", "get"),
        ("/", "get"),
    ];
    for (path, method) in routes {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    for schema in [
        "Message",
        "Session",
        "AgentMessageRequest",
        "PendingResponse",
        "StoredEvent",
        "Error",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

/// A cross-origin preflight for a POST from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/messages/agent"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn requests_get_an_id_and_cors_is_same_origin_unless_configured() {
    let app = TestApp::spawn().await;
    let response = app
        .get("/api/v1/auth/verify")
        .header("Origin", "https://dashboard.example")
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin"),
        "another origin may not read the answer"
    );
    let echoed = app
        .get("/api/v1/auth/verify")
        .header("x-request-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me");
    let foreign = preflight(&app, "https://dashboard.example").await;
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );
    // The server's own origin (its public URL) is allowed.
    let own = preflight(&app, "http://localhost:8080").await;
    assert_eq!(
        own.headers()["access-control-allow-origin"],
        "http://localhost:8080"
    );

    let configured = TestApp::spawn_with(switchboard::app::Config {
        cors_origins: vec![reqwest::header::HeaderValue::from_static(
            "https://dashboard.example",
        )],
        ..switchboard::app::Config::default()
    })
    .await;
    let allowed = preflight(&configured, "https://dashboard.example").await;
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://dashboard.example"
    );
    assert!(
        !preflight(&configured, "https://evil.example")
            .await
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let app = TestApp::spawn().await;
    let (status, body) = json_of(app.get("/api/v1/nothing-here").send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(body["detail"].is_string());
    let (status, body) = json_of(app.get("/api/v1/messages/agent").send().await.unwrap()).await;
    assert_eq!(status, 405);
    assert!(body["detail"].is_string());
}

#[tokio::test]
async fn the_request_id_is_recorded_in_event_metadata() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    app.post(
        "/api/v1/messages/agent",
        &json!({"agent_instance_id": session, "agent_type": "t", "content": "x"}),
    )
    .header("x-request-id", "req-42")
    .header("User-Agent", "Cursor/0.42")
    .send()
    .await
    .unwrap();
    let metadata: Vec<Value> =
        sqlx::query_scalar("SELECT metadata::jsonb FROM events WHERE stream_id = $1")
            .bind(session)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    for m in metadata {
        assert_eq!(m["request_id"], "req-42");
        assert_eq!(m["client_type"], "cursor");
        assert_eq!(m["actor"], "agent");
        assert!(m["key_id"].is_string());
    }
}

#[tokio::test]
async fn health_is_503_when_the_database_is_unreachable() {
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy_with(
            sqlx::postgres::PgConnectOptions::new()
                .socket("/nonexistent-switchboard-socket-dir")
                .username("nobody"),
        );
    let keys = std::sync::Arc::new(common::signing_keys().await);
    let state = switchboard::app::AppState(std::sync::Arc::new(switchboard::app::App::start(
        switchboard::app::Config::default(),
        switchboard::eventlog::EventLog::new(dead.clone()),
        std::sync::Arc::new(switchboard::auth::Authenticator::new(keys.clone(), dead)),
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = switchboard::app::router(state);
    tokio::spawn(switchboard::http::server::serve(
        listener,
        router,
        tokio_util::sync::CancellationToken::new(),
    ));
    let response = reqwest::get(format!("http://{address}/health"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.json::<Value>().await.unwrap()["detail"].is_string());
    // Requests that need the database say so with a 503, not a 500.
    let token = keys
        .sign(&json!({"sub": Uuid::new_v4(), "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 60}))
        .unwrap();
    let response = reqwest::Client::new()
        .get(format!("http://{address}/api/v1/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn paging_follows_the_next_link_and_never_skips_sessions_that_tie() {
    let app = TestApp::spawn().await;
    let mut made = Vec::new();
    for i in 0..7 {
        let session = Uuid::new_v4();
        agent_message(
            &app,
            json!({"agent_instance_id": session, "agent_type": "t", "content": format!("s{i}")}),
        )
        .await;
        made.push(session.to_string());
    }
    // Seven sessions whose last activity is the same instant.
    sqlx::query("UPDATE sessions SET last_activity_at = '2026-01-02T03:04:05.123456Z'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut next = Some("/api/v1/sessions?limit=3".to_owned());
    while let Some(path) = next.take() {
        let response = app.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 200);
        next = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned())
            .map(|link| {
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                link.trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned()
            });
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
    }
    seen.sort();
    made.sort();
    assert_eq!(seen, made, "every session once");
    let lone = app
        .get(&format!("/api/v1/sessions?before_id={}", Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(lone.status(), 422);
}

/// A long queue of big replies is written as it is read (a page at a time, chunked), complete
/// and in order, by every route that hands messages over; an Idempotency-Key retry answers the
/// same, and its record holds references, not the text.
#[tokio::test]
async fn a_long_queue_of_big_replies_is_streamed_whole_and_in_order() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4().to_string();
    let (status, _) = agent_message(
        &app,
        json!({"agent_instance_id": session, "agent_type": "claude-code", "content": "go"}),
    )
    .await;
    assert_eq!(status, 200);
    // 24 replies of 1 MiB: six pages at least.
    let said: Vec<String> = (0..24)
        .map(|i| format!("{i:02}") + &"x".repeat(1 << 20))
        .collect();
    for content in &said {
        user_message(&app, &session, content, false).await;
    }
    let body = json!({"agent_instance_id": session, "content": "next step"});
    let send = || {
        app.post("/api/v1/messages/agent", &body)
            .header("Idempotency-Key", "long-queue")
            .send()
    };
    let response = send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), None, "written as it is read");
    let chunked = response.headers()["transfer-encoding"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(chunked, "chunked");
    let first: Value = response.json().await.unwrap();
    let contents = |answer: &Value, field: &str| -> Vec<String> {
        answer[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(contents(&first, "queued_user_messages"), said);
    assert_eq!(first["success"], true);
    assert!(first["message_id"].is_string() && first["step_number"].is_number());
    // The retry answers the same; the record keeps references only.
    let again: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(again, first);
    let record: i32 = sqlx::query_scalar(
        "SELECT max(octet_length(response::text)) FROM idempotency_keys WHERE key = 'long-queue'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(
        record < 10_000,
        "the record holds references: {record} bytes"
    );
    // A long-poll by cursor and `receive` stream too.
    let cursor = first["message_id"].as_str().unwrap().to_owned();
    for content in &said[..12] {
        user_message(&app, &session, content, false).await;
    }
    let (status, taken) = pending(&app, &session, Some(&cursor)).await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(contents(&taken, "messages"), said[..12]);
    for content in &said[12..] {
        user_message(&app, &session, content, false).await;
    }
    let received: Value = app
        .post(&format!("/api/v1/sessions/{session}/receive"), &json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(contents(&received, "messages"), said[12..]);
}
