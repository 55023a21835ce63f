//! Regression tests for the trust defects black-box runs found: revocation and expiry end
//! access that is already open, on every node, also when the LISTEN connection went silent;
//! keyed retries never fail or duplicate; a rebuild is never undone by a running server; one
//! append's failure is never another's; an answer is handed over once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::proxy::FreezingProxy;
use common::{ServerProcess, TestApp, switchboard};
use serde_json::{Value, json};
use switchboard::auth::{Authenticator, Claims, Grant};
use switchboard::commands::{self, Context, Scope};
use switchboard::domain::Content;
use switchboard::push::Hub;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn agent_message(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let response = client
        .post(format!("{base}/api/v1/messages/agent"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Start a session with a question; returns (session, question id).
async fn question(app: &TestApp, token: &str) -> (Uuid, String) {
    let session = Uuid::new_v4();
    let (status, sent) = agent_message(
        &app.client,
        &app.address,
        token,
        json!({"agent_instance_id": session, "agent_type": "t", "content": "May I?",
               "requires_user_input": true}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    (session, sent["message_id"].as_str().unwrap().to_owned())
}

async fn reply(app: &TestApp, session: Uuid, content: &str) {
    let sent = app
        .post(
            "/api/v1/messages/user",
            &json!({"agent_instance_id": session, "content": content, "mark_as_read": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
}

/// Everything an event stream sends until it ends or `limit` passes: (text, ended).
async fn drain(mut response: reqwest::Response, limit: Duration) -> (String, bool) {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) | Ok(Err(_)) => return (text, true),
            Err(_) => return (text, false),
        }
    }
}

async fn open_stream(client: &reqwest::Client, base: &str, token: &str) -> reqwest::Response {
    let response = client
        .get(format!("{base}/api/v1/stream"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

fn rand_gap() -> u32 {
    Uuid::new_v4().as_fields().0
}

async fn key_id_of(app: &TestApp, token: &str) -> Uuid {
    let claims: Claims = app.keys.verify(token).unwrap();
    claims.jti.unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_gets_nothing_more_from_streams_or_waits_on_any_node() {
    let app = TestApp::spawn().await;
    let node_b = ServerProcess::start(&app.db).await;
    let token = app.key(app.tenant, Scope::Agent).await;
    let (session, question_id) = question(&app, &token).await;

    let streams = [
        open_stream(&app.client, &app.address, &token).await,
        open_stream(&app.client, &node_b.address, &token).await,
    ];
    let waiting = |base: String| {
        let (client, token) = (app.client.clone(), token.clone());
        let url = format!(
            "{base}/api/v1/messages/pending?agent_instance_id={session}\
             &last_read_message_id={question_id}&wait=60"
        );
        tokio::spawn(async move {
            let response = client.get(url).bearer_auth(token).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    let polls = [
        waiting(app.address.clone()),
        waiting(node_b.address.clone()),
    ];
    tokio::time::sleep(Duration::from_millis(500)).await;

    let key_id = key_id_of(&app, &token).await.to_string();
    let revoked = switchboard(&app.db, &["keys", "revoke", &key_id], None).await;
    assert!(revoked.status.success());
    reply(&app, session, "posted after the revocation").await;

    for poll in polls {
        let (status, body) = poll.await.unwrap();
        assert_eq!(status, 401, "{body}");
        assert!(!body.contains("posted after"), "{body}");
    }
    for stream in streams {
        let (text, ended) = drain(stream, Duration::from_secs(10)).await;
        assert!(ended, "the stream of a revoked key ends");
        assert!(!text.contains("posted after"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_access_ends_when_the_token_expires() {
    let app = TestApp::spawn().await;
    let (session, question_id) = question(&app, &app.token).await;
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 2;
    let short = app
        .keys
        .sign(&Claims {
            sub: app.tenant.to_string(),
            jti: None,
            iat: None,
            exp: Some(exp),
            scope: None,
            aud: None,
        })
        .unwrap();
    let stream = open_stream(&app.client, &app.address, &short).await;
    let poll = app
        .client
        .get(app.url(&format!(
            "/api/v1/messages/pending?agent_instance_id={session}\
             &last_read_message_id={question_id}&wait=60"
        )))
        .bearer_auth(&short)
        .send();
    // The validator allows 30 s of clock leeway at the door; an open request ends at `exp`.
    let (poll, (text, ended)) = tokio::join!(poll, async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        reply(&app, session, "after the expiry").await;
        drain(stream, Duration::from_secs(10)).await
    });
    assert!(ended);
    assert!(!text.contains("after the expiry"), "{text}");
    let poll = poll.unwrap();
    assert_eq!(poll.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_a_node_whose_listen_connection_went_silent() {
    let app = TestApp::spawn().await;
    let proxy = FreezingProxy::start(&app.db.options).await;
    let node = ServerProcess::start_at(&proxy.url(&app.db.options), &[]).await;
    let token = app.key(app.tenant, Scope::Agent).await;
    let verify = |token: String| {
        let (client, url) = (app.client.clone(), node.url("/api/v1/auth/verify"));
        async move {
            let response = client.get(url).bearer_auth(token).send().await.unwrap();
            response.status().as_u16()
        }
    };
    assert_eq!(
        verify(token.clone()).await,
        200,
        "the key works (and is cached)"
    );
    let stream = open_stream(&app.client, &node.address, &token).await;
    assert!(
        proxy.freeze_listeners() >= 1,
        "the node's LISTEN connection is frozen"
    );

    let key_id = key_id_of(&app, &token).await.to_string();
    let revoked = switchboard(&app.db, &["keys", "revoke", &key_id], None).await;
    assert!(revoked.status.success());
    // Its NOTIFY never reaches the node; the cached record expires, and the listener's own
    // round trip finds the connection dead.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while verify(token.clone()).await != 401 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the revoked key is still accepted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, ended) = drain(stream, Duration::from_secs(30)).await;
    assert!(
        ended,
        "the revoked key's stream ends once the listener resyncs"
    );
    // The node recovered its LISTEN connection: a reply still wakes a waiting agent there.
    let (session, question_id) = question(&app, &app.token).await;
    let url = node.url(&format!(
        "/api/v1/messages/pending?agent_instance_id={session}\
         &last_read_message_id={question_id}&wait=60"
    ));
    let waiting = tokio::spawn({
        let (client, token) = (app.client.clone(), app.token.clone());
        async move {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    reply(&app, session, "still pushed").await;
    let answer = waiting.await.unwrap();
    assert_eq!(answer["messages"][0]["content"], "still pushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_with_one_key_on_two_nodes_all_get_the_first_answer() {
    let app = TestApp::spawn().await;
    let node_b = ServerProcess::start(&app.db).await;
    let (session, _) = question(&app, &app.token).await;
    // Pairs 0-4 ms apart, a few pairs at a time.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(8));
    let mut pairs = Vec::new();
    for i in 0..100 {
        let key = format!("retry-{i}");
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let send = |base: String, key: String| {
            let (client, token) = (app.client.clone(), app.token.clone());
            async move {
                let response = client
                    .post(format!("{base}/api/v1/messages/user"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", key)
                    .json(&json!({"agent_instance_id": session, "content": "once",
                                  "mark_as_read": false}))
                    .send()
                    .await
                    .unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }
        };
        let (first, second) = (
            send(app.address.clone(), key.clone()),
            send(node_b.address.clone(), key),
        );
        pairs.push(tokio::spawn(async move {
            let gap = Duration::from_micros(u64::from(rand_gap()) % 4_000);
            let (a, b) = tokio::join!(first, async {
                tokio::time::sleep(gap).await;
                second.await
            });
            drop(permit);
            (a, b)
        }));
    }
    for pair in pairs {
        let (a, b) = pair.await.unwrap();
        assert_eq!(a.0, 200, "{}", a.1);
        assert_eq!(b.0, 200, "{}", b.1);
        assert_eq!(a.1, b.1, "both get the first answer");
    }
    let messages: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'user_message'",
    )
    .bind(session)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(messages, 100);
}

#[tokio::test]
async fn an_idempotency_key_that_is_not_visible_ascii_is_refused_never_ignored() {
    let app = TestApp::spawn().await;
    let (session, _) = question(&app, &app.token).await;
    for _ in 0..2 {
        let response = app
            .post(
                "/api/v1/messages/user",
                &json!({"agent_instance_id": session, "content": "hi", "mark_as_read": false}),
            )
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes("retry-é-1".as_bytes()).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422);
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("Idempotency-Key"));
    }
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'user_message'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(messages, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_is_not_undone_by_a_running_server() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let step = |n: u32| {
        let (client, base, token) = (app.client.clone(), app.address.clone(), app.token.clone());
        async move {
            let body = json!({"agent_instance_id": session, "agent_type": "t",
                              "content": format!("step {n}")});
            let (status, sent) = agent_message(&client, &base, &token, body).await;
            assert_eq!(status, 200, "{sent}");
            sent["step_number"].as_i64().unwrap()
        }
    };
    step(1).await;
    // The row goes wrong (by hand, or a bug); the server reads it (a new session state is read
    // from the database) and remembers it after its next append.
    sqlx::query("UPDATE sessions SET step_count = 100 WHERE id = $1")
        .bind(session)
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.log.forget_all().await;
    assert_eq!(step(2).await, 101);
    let rebuilt = switchboard(&app.db, &["projections", "rebuild"], None).await;
    assert!(rebuilt.status.success());
    // The server still remembers step_count 101; its next append must not write that back.
    assert_eq!(step(3).await, 3);
    let check = switchboard(&app.db, &["projections", "rebuild", "--check"], None).await;
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_server_remembers_of_a_session_does_not_grow_with_its_unread_messages() {
    let app = TestApp::spawn().await;
    let (session, _) = question(&app, &app.token).await;
    let big = "x".repeat(1_500_000);
    for _ in 0..20 {
        reply(&app, session, &big).await;
    }
    assert!(
        app.log.remembered_bytes() < 64 * 1024,
        "{} bytes remembered",
        app.log.remembered_bytes()
    );
    // They are all delivered, with their text, by the agent's next message.
    let (status, sent) = agent_message(
        &app.client,
        &app.address,
        &app.token,
        json!({"agent_instance_id": session, "content": "read them"}),
    )
    .await;
    assert_eq!(status, 200);
    let queued = sent["queued_user_messages"].as_array().unwrap();
    assert_eq!(queued.len(), 20);
    assert!(
        queued
            .iter()
            .all(|m| m["content"].as_str().unwrap().len() == big.len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_appends_failure_is_never_another_tenants() {
    let app = TestApp::spawn().await;
    let doomed = Uuid::new_v4();
    // The database refuses one tenant's appends, with an error that is not a lost race.
    // (One statement at a time, as Citus passes each to the workers; on Citus a trigger on a
    // distributed table needs its consent, a mere name elsewhere.)
    let mut conn = app.db.pool.acquire().await.unwrap();
    for statement in [
        "SET citus.enable_unsafe_triggers = on".to_owned(),
        format!(
            "CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.tenant_id = '{doomed}' THEN RAISE EXCEPTION 'refused'; END IF;
                 RETURN NEW;
             END $$"
        ),
        "CREATE TRIGGER refuse_doomed BEFORE INSERT ON events
             FOR EACH ROW EXECUTE FUNCTION refuse_doomed()"
            .to_owned(),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    drop(conn);
    let tenants: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();
    for round in 0..20 {
        let mut appends = Vec::new();
        for tenant in tenants.iter().copied().chain([doomed]) {
            let log = app.log.clone();
            appends.push(tokio::spawn(async move {
                let input = commands::AgentMessageInput {
                    agent_type: Some(switchboard::domain::AgentType::parse("t", "t").unwrap()),
                    ..commands::AgentMessageInput::new(
                        Uuid::new_v4(),
                        Content::parse("c", format!("round {round}")).unwrap(),
                    )
                };
                let ctx = Context::system(tenant);
                (
                    tenant,
                    commands::send_agent_message(&log, &ctx, input).await,
                )
            }));
        }
        for append in appends {
            let (tenant, outcome) = append.await.unwrap();
            if tenant == doomed {
                assert!(outcome.is_err());
            } else {
                assert!(outcome.is_ok(), "round {round}: {:?}", outcome.err());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_found_in_the_history_is_handed_over_once() {
    let app = TestApp::spawn().await;
    let (session, question_id) = question(&app, &app.token).await;
    let question_id: Uuid = question_id.parse().unwrap();
    // The agent gave up waiting and logged a step; then the person answered.
    agent_message(
        &app.client,
        &app.address,
        &app.token,
        json!({"agent_instance_id": session, "content": "carrying on meanwhile"}),
    )
    .await;
    reply(&app, session, "yes, go ahead").await;
    let ctx = Context::system(app.tenant);
    let auth = Arc::new(Authenticator::new(app.keys.clone(), app.db.pool.clone()));
    let mut access = auth.guard(Grant::SYSTEM);
    let hub = Hub::new();
    let answer = commands::wait_for_answer(
        &app.log,
        &hub,
        &ctx,
        session,
        question_id,
        Duration::from_secs(1),
        &CancellationToken::new(),
        &mut access,
    )
    .await
    .unwrap()
    .expect("answered");
    assert_eq!(answer.messages[0].content, "yes, go ahead");
    // The agent's next step does not receive it a second time.
    let (_, sent) = agent_message(
        &app.client,
        &app.address,
        &app.token,
        json!({"agent_instance_id": session, "content": "doing it"}),
    )
    .await;
    assert_eq!(sent["queued_user_messages"], json!([]));
}
