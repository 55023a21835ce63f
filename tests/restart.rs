//! PostgreSQL restarts under waiting agents: the server recovers by itself (`/health` back to
//! 200, no process restart) and replies posted afterwards are delivered. Its own test binary,
//! because it stops the cluster the binary's tests share.

mod common;

use std::time::Duration;

use common::TestApp;
use serde_json::{Value, json};
use uuid::Uuid;

async fn health(app: &TestApp) -> u16 {
    match app.client.get(app.url("/health")).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_recovers_from_a_database_restart_and_delivers_replies() {
    let app = TestApp::spawn().await;
    let Some(cluster) = common::cluster().await else {
        eprintln!("NOT RUN: DATABASE_URL is set, and an external server cannot be restarted here");
        return;
    };
    let mut agents = Vec::new();
    for _ in 0..10 {
        let session = Uuid::new_v4();
        let sent: Value = app
            .post(
                "/api/v1/messages/agent",
                &json!({"agent_instance_id": session, "agent_type": "t", "content": "?", "requires_user_input": true}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        agents.push((session, sent["message_id"].as_str().unwrap().to_owned()));
    }
    let mut waiting = Vec::new();
    for (session, question) in &agents {
        let request = app.get(&format!(
            "/api/v1/messages/pending?agent_instance_id={session}&last_read_message_id={question}&wait=120"
        ));
        waiting.push(tokio::spawn(async move {
            request.send().await.unwrap().json::<Value>().await.unwrap()
        }));
    }
    while app.hub.waiters() < agents.len() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    tokio::task::spawn_blocking(|| cluster.stop_now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(health(&app).await, 503);
    tokio::task::spawn_blocking(|| cluster.start_again())
        .await
        .unwrap()
        .unwrap();
    let mut status = 0;
    for _ in 0..300 {
        status = health(&app).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the server reconnects by itself");

    for (session, _) in &agents {
        let response = app
            .post(
                "/api/v1/messages/user",
                &json!({"agent_instance_id": session, "content": format!("after the restart {session}"), "mark_as_read": false}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    for (task, (session, _)) in waiting.into_iter().zip(&agents) {
        let answer = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            answer["messages"][0]["content"],
            format!("after the restart {session}"),
            "{answer}"
        );
    }
}
