//! Long-poll: `GET /messages/pending?wait=` answers at once when there is something, the moment
//! a reply is committed otherwise (on this node or another), and frees its waiter when the
//! client hangs up. Faults: the LISTEN connection killed under 100 waiting agents.

mod common;

use std::time::Duration;

use common::{ServerProcess, TestApp};
use serde_json::{Value, json};
use uuid::Uuid;

async fn start_session(app: &TestApp) -> (Uuid, String) {
    let session = Uuid::new_v4();
    let sent: Value = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "agent_type": "t", "content": "Which database?", "requires_user_input": true}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (session, sent["message_id"].as_str().unwrap().to_owned())
}

fn wait_url(session: Uuid, question: &str, wait: u32) -> String {
    format!(
        "/api/v1/messages/pending?agent_instance_id={session}&last_read_message_id={question}&wait={wait}"
    )
}

async fn reply(client: &reqwest::Client, base: &str, token: &str, session: Uuid, content: &str) {
    let response = client
        .post(format!("{base}/api/v1/messages/user"))
        .bearer_auth(token)
        .json(&json!({"agent_instance_id": session, "content": content, "mark_as_read": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn waiters_drop_to(app: &TestApp, expected: usize) {
    for _ in 0..200 {
        if app.hub.waiters() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} waiters remain, expected {expected}", app.hub.waiters());
}

#[tokio::test]
async fn a_waiting_agent_gets_the_reply_when_it_is_committed() {
    let app = TestApp::spawn().await;
    let (session, question) = start_session(&app).await;
    let waiting = tokio::spawn({
        let request = app.get(&wait_url(session, &question, 60));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    });
    waiters_drop_to(&app, 1).await;
    reply(&app.client, &app.address, &app.token, session, "PostgreSQL").await;
    // Answered long before the 60 s wait ends, with the reply.
    let answer = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer["status"], "ok");
    assert_eq!(answer["messages"][0]["content"], "PostgreSQL");
    waiters_drop_to(&app, 0).await;
}

#[tokio::test]
async fn messages_already_there_are_returned_at_once_and_an_empty_wait_ends_ok() {
    let app = TestApp::spawn().await;
    let (session, question) = start_session(&app).await;
    let empty: Value = app
        .get(&wait_url(session, &question, 1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        empty,
        json!({"agent_instance_id": session, "messages": [], "status": "ok"})
    );
    reply(
        &app.client,
        &app.address,
        &app.token,
        session,
        "already here",
    )
    .await;
    let found: Value = app
        .get(&wait_url(session, &question, 300))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["messages"][0]["content"], "already here");
    // A stale cursor (the agent has spoken since) does not wait either.
    app.post(
        "/api/v1/messages/agent",
        &json!({"agent_instance_id": session, "content": "moving on"}),
    )
    .send()
    .await
    .unwrap();
    let stale: Value = app
        .get(&wait_url(session, &question, 300))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stale["status"], "stale");
    for bad in ["-1", "301", "NaN", "inf", "soon"] {
        let url = format!("/api/v1/messages/pending?agent_instance_id={session}&wait={bad}");
        let response = app.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 422, "wait={bad}");
    }
}

#[tokio::test]
async fn a_client_that_hangs_up_frees_its_waiter() {
    let app = TestApp::spawn().await;
    let mut sessions = Vec::new();
    for _ in 0..20 {
        sessions.push(start_session(&app).await);
    }
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut calls = Vec::new();
    for (session, question) in &sessions {
        calls.push(
            impatient
                .get(app.url(&wait_url(*session, question, 120)))
                .bearer_auth(&app.token)
                .send(),
        );
    }
    for outcome in futures::future::join_all(calls).await {
        assert!(outcome.unwrap_err().is_timeout());
    }
    waiters_drop_to(&app, 0).await;
}

#[tokio::test]
async fn a_reply_posted_on_another_node_wakes_the_waiter_here() {
    let app = TestApp::spawn().await;
    let other_node = ServerProcess::start(&app.db).await;
    let (session, question) = start_session(&app).await;
    let waiting = tokio::spawn({
        let request = app.get(&wait_url(session, &question, 60));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    });
    waiters_drop_to(&app, 1).await;
    reply(
        &app.client,
        &other_node.address,
        &app.token,
        session,
        "from node B",
    )
    .await;
    let answer = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer["messages"][0]["content"], "from node B");
    assert!(other_node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_listen_connection_loses_no_reply_for_100_waiting_agents() {
    let app = TestApp::spawn().await;
    let mut sessions = Vec::new();
    for _ in 0..100 {
        sessions.push(start_session(&app).await);
    }
    let mut waiting = Vec::new();
    for (session, question) in &sessions {
        let request = app.get(&wait_url(*session, question, 120));
        waiting.push(tokio::spawn(async move {
            request.send().await.unwrap().json::<Value>().await.unwrap()
        }));
    }
    waiters_drop_to(&app, 100).await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'switchboard listener'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "exactly one LISTEN connection");
    for (session, _) in &sessions {
        reply(
            &app.client,
            &app.address,
            &app.token,
            *session,
            &format!("answer for {session}"),
        )
        .await;
    }
    for (task, (session, _)) in waiting.into_iter().zip(&sessions) {
        let answer = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            answer["messages"][0]["content"],
            format!("answer for {session}")
        );
    }
}

#[tokio::test]
async fn sigterm_answers_parked_requests_and_the_server_exits_promptly() {
    let app = TestApp::spawn().await;
    let node = ServerProcess::start(&app.db).await;
    let (session, question) = start_session(&app).await;
    let client = reqwest::Client::new();
    let parked = client
        .get(node.url(&wait_url(session, &question, 120)))
        .bearer_auth(&app.token)
        .send();
    let mut stream = client
        .get(node.url("/api/v1/stream"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    let parked = tokio::spawn(parked);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let exit = tokio::task::spawn_blocking(move || node.terminate())
        .await
        .unwrap();
    // The contract is an exit within 5 s of SIGTERM.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(exit.success());
    let answer: Value = parked.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(
        answer,
        json!({"agent_instance_id": session, "messages": [], "status": "ok"})
    );
    // The event stream was ended, not cut: reading it finishes.
    while let Some(chunk) = stream.chunk().await.unwrap() {
        assert!(chunk.starts_with(b":"), "only keep-alives: {chunk:?}");
    }
}
