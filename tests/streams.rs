//! Server-sent event streams: ids are tenant sequence numbers, catch-up from Last-Event-ID
//! joins live delivery with no gap or duplicate, keep-alives flow, browsers authenticate with
//! `?access_token=`, and a slow consumer holds up no one.

mod common;

use std::time::Duration;

use common::TestApp;
use serde_json::{Value, json};
use switchboard::app::Config;
use uuid::Uuid;

/// A minimal SSE reader over a streaming response.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug)]
enum Frame {
    Event { id: i64, event: String, data: Value },
    Comment,
}

impl Sse {
    async fn open(app: &TestApp, path: &str, last_event_id: Option<i64>) -> Sse {
        let mut request = app.get(path).header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Sse {
            response,
            buffer: String::new(),
        }
    }

    async fn frame(&mut self) -> Frame {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                let mut comment = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    } else if line.starts_with(':') {
                        comment = true;
                    }
                }
                return match id {
                    Some(id) => Frame::Event {
                        id,
                        event,
                        data: serde_json::from_str(&data).unwrap(),
                    },
                    None if comment => Frame::Comment,
                    None => continue,
                };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.response.chunk())
                .await
                .expect("the stream delivers within 30 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event, skipping keep-alive comments.
    async fn event(&mut self) -> (i64, String, Value) {
        loop {
            if let Frame::Event { id, event, data } = self.frame().await {
                return (id, event, data);
            }
        }
    }
}

async fn say(app: &TestApp, session: Uuid, content: &str) {
    let response = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "agent_type": "t", "content": content}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_session_stream_delivers_its_events_live_with_sequence_ids() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let other = Uuid::new_v4();
    say(&app, session, "first").await;
    say(&app, other, "elsewhere").await;
    let mut stream = Sse::open(&app, &format!("/api/v1/sessions/{session}/stream"), None).await;
    say(&app, other, "still elsewhere").await;
    say(&app, session, "second").await;
    let (id, event, data) = stream.event().await;
    assert_eq!(event, "agent_message");
    assert_eq!(data["data"]["content"], "second");
    assert_eq!(data["session_id"], session.to_string());
    assert_eq!(data["seq"], id);
    assert_eq!(id, 6, "tenant seq: 2 + 2 (other) + 1 + the new message");
    for key in [
        "event_id",
        "stream_version",
        "recorded_at",
        "metadata",
        "hash",
        "prev_hash",
    ] {
        assert!(data.get(key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn the_tenant_stream_resumes_from_last_event_id_without_gap_or_duplicate() {
    let app = TestApp::spawn().await;
    let sessions: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for (n, session) in sessions.iter().enumerate() {
        say(&app, *session, &format!("before {n}")).await;
    }
    // Resume after seq 2 while writers keep appending: ids must run 3, 4, 5, ... exactly.
    let writer = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/messages/agent"),
            app.token.clone(),
        );
        let sessions = sessions.clone();
        tokio::spawn(async move {
            for n in 0..60 {
                let session = sessions[n % sessions.len()];
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"agent_instance_id": session, "content": format!("live {n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        })
    };
    let mut stream = Sse::open(&app, "/api/v1/stream", Some(2)).await;
    let mut ids = Vec::new();
    while ids.len() < 4 + 60 {
        let (id, _, _) = stream.event().await;
        ids.push(id);
    }
    writer.await.unwrap();
    assert_eq!(ids, (3..=66).collect::<Vec<i64>>());

    // The query parameter works like the header.
    let mut again = Sse::open(&app, "/api/v1/stream?last_event_id=65", None).await;
    assert_eq!(again.event().await.0, 66);
}

#[tokio::test]
async fn browsers_authenticate_with_access_token_and_bad_requests_are_refused() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    say(&app, session, "hello").await;
    let url = app.url(&format!(
        "/api/v1/sessions/{session}/stream?access_token={}&last_event_id=0",
        app.token
    ));
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = Sse {
        response,
        buffer: String::new(),
    };
    assert_eq!(stream.event().await.1, "session_started");

    let no_token = app
        .client
        .get(app.url("/api/v1/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    let bad_token = app
        .client
        .get(app.url("/api/v1/stream?access_token=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_token.status(), 401);
    let stranger = app
        .key(Uuid::new_v4(), switchboard::commands::Scope::Agent)
        .await;
    let foreign = app
        .client
        .get(app.url(&format!("/api/v1/sessions/{session}/stream")))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    for bad in ["-1", "x", "1.5"] {
        let response = app
            .get(&format!("/api/v1/stream?last_event_id={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{bad}");
    }
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let app = TestApp::spawn_with(Config {
        keep_alive: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let mut stream = Sse::open(&app, "/api/v1/stream", None).await;
    for _ in 0..3 {
        assert!(matches!(stream.frame().await, Frame::Comment));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_holds_up_no_one_and_loses_nothing() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    say(&app, session, "start").await;
    let mut slow = Sse::open(&app, "/api/v1/stream", None).await;
    let mut fast = Sse::open(&app, "/api/v1/stream", None).await;
    let big = "x".repeat(64 * 1024);
    for n in 0..60 {
        say(&app, session, &format!("{n} {big}")).await;
    }
    // The fast reader gets everything while the slow one has read nothing.
    for expected in 3..=62 {
        assert_eq!(fast.event().await.0, expected);
    }
    for expected in 3..=62 {
        assert_eq!(slow.event().await.0, expected);
    }
}
