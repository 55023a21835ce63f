//! Another tenant's session or message answers exactly like a missing one, on every route, and
//! nothing of the owner's changes.

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard::commands::Scope;
use uuid::Uuid;

struct Ids {
    session: String,
    agent_message: String,
    user_message: String,
}

/// Every route that takes an id, as (method, path, body) for the given ids.
fn probes(ids: &Ids) -> Vec<(Method, String, Option<Value>)> {
    let s = &ids.session;
    vec![
        (
            Method::POST,
            "/api/v1/messages/user".into(),
            Some(json!({"agent_instance_id": s, "content": "hi"})),
        ),
        (
            Method::GET,
            format!("/api/v1/messages/pending?agent_instance_id={s}"),
            None,
        ),
        (
            Method::GET,
            format!(
                "/api/v1/messages/pending?agent_instance_id={s}&last_read_message_id={}",
                ids.agent_message
            ),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/messages/{}/request-input", ids.agent_message),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/messages/{}/request-input", ids.user_message),
            None,
        ),
        (
            Method::POST,
            "/api/v1/sessions/end".into(),
            Some(json!({"agent_instance_id": s})),
        ),
        (
            Method::POST,
            format!("/api/v1/agents/instances/{s}/heartbeat"),
            None,
        ),
        (Method::GET, format!("/api/v1/sessions/{s}"), None),
        (Method::GET, format!("/api/v1/sessions/{s}/messages"), None),
        // Without an agent type, sending to an unknown session is refused.
        (
            Method::POST,
            "/api/v1/messages/agent".into(),
            Some(json!({"agent_instance_id": s, "content": "x"})),
        ),
    ]
}

async fn call(
    app: &TestApp,
    token: &str,
    (method, path, body): &(Method, String, Option<Value>),
) -> (u16, String) {
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn owner_state(app: &TestApp) -> Vec<(i64, String, i32)> {
    sqlx::query_as("SELECT seq, status, unread_count FROM events JOIN sessions ON sessions.tenant_id = events.tenant_id AND sessions.id = events.stream_id WHERE events.tenant_id = $1 ORDER BY seq")
        .bind(app.tenant)
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn another_tenants_ids_answer_like_missing_ones_on_every_route() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4().to_string();
    let step: Value = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "agent_type": "t", "content": "secret plan"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reply: Value = app
        .post("/api/v1/messages/user", &json!({"agent_instance_id": session, "content": "secret reply", "mark_as_read": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owned = Ids {
        session: session.clone(),
        agent_message: step["message_id"].as_str().unwrap().to_owned(),
        user_message: reply["message_id"].as_str().unwrap().to_owned(),
    };
    let missing = Ids {
        session: Uuid::new_v4().to_string(),
        agent_message: Uuid::new_v4().to_string(),
        user_message: Uuid::new_v4().to_string(),
    };
    let before = owner_state(&app).await;

    for scope in [Scope::Agent, Scope::Audit] {
        let stranger = app.key(Uuid::new_v4(), scope).await;
        for (foreign, absent) in probes(&owned).iter().zip(probes(&missing)) {
            let (status, detail) = call(&app, &stranger, foreign).await;
            let (absent_status, absent_detail) = call(&app, &stranger, &absent).await;
            let normalised = detail
                .replace(&owned.session, "ID")
                .replace(&owned.agent_message, "ID")
                .replace(&owned.user_message, "ID");
            let absent_normalised = absent_detail
                .replace(&missing.session, "ID")
                .replace(&missing.agent_message, "ID")
                .replace(&missing.user_message, "ID");
            assert_eq!(
                (status, &normalised),
                (absent_status, &absent_normalised),
                "{scope:?} {} {}",
                foreign.0,
                foreign.1
            );
            assert!(
                status == 404 || status == 400 || status == 403,
                "{} {}: {status}",
                foreign.0,
                foreign.1
            );
            assert!(!detail.contains("secret"));
        }
        let listed: Value = app
            .client
            .get(app.url("/api/v1/sessions"))
            .bearer_auth(&stranger)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed, json!([]));
    }
    assert_eq!(
        owner_state(&app).await,
        before,
        "nothing of the owner's changed"
    );

    // A stranger naming the same session id with an agent type gets a session of its own.
    let stranger = app.key(Uuid::new_v4(), Scope::Agent).await;
    let response = app
        .client
        .post(app.url("/api/v1/messages/agent"))
        .bearer_auth(&stranger)
        .json(&json!({"agent_instance_id": session, "agent_type": "t", "content": "mine"}))
        .send()
        .await
        .unwrap();
    let theirs: Value = response.json().await.unwrap();
    assert_eq!(
        theirs["queued_user_messages"],
        json!([]),
        "the owner's reply is not delivered"
    );
    let messages: Value = app
        .client
        .get(app.url(&format!("/api/v1/sessions/{session}/messages")))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(messages.as_array().unwrap().len(), 1);
    assert_eq!(messages[0]["content"], "mine");
    assert_eq!(owner_state(&app).await, before);
}
