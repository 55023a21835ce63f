//! Notifications reach real receivers: a webhook endpoint that verifies Standard Webhooks
//! signatures with the `standardwebhooks` package, an SMTP server (aiosmtpd), and a push
//! endpoint that checks the VAPID JWT and decrypts the RFC 8291 payload with its own key
//! (`tests/notify/receivers.py`, in a venv the test makes). Faults: a receiver that fails,
//! a question answered before its retry, a server killed mid-delivery, two servers at once.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::receivers::{Receiver, WITHIN};
use common::{ServerProcess, TestApp};
use serde_json::{Value, json};
use switchboard::app::Config;
use switchboard::auth::api_keys;
use switchboard::commands::Scope;
use switchboard::eventlog::EventLog;
use switchboard::notify::email::Smtp;
use switchboard::notify::{NotifyConfig, RetrySchedule};
use uuid::Uuid;

/// Delivery settings for tests: private targets allowed, retries within a second.
fn fast(retry: &str) -> NotifyConfig {
    NotifyConfig {
        allow_private: true,
        retry: RetrySchedule::parse(retry, "1h").unwrap(),
        lease: Duration::from_secs(3),
        request_timeout: Duration::from_secs(2),
        ..NotifyConfig::default()
    }
}

/// A test app whose tenant has a user account (channels are facts on its account stream).
async fn app_with(notify: NotifyConfig) -> TestApp {
    let app = TestApp::spawn_with(Config {
        notify,
        ..Config::default()
    })
    .await;
    common::create_user(&app.log, app.tenant).await;
    app
}

/// How many events the log holds.
async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// What the agent waiting for `question` receives.
async fn answer_to(app: &TestApp, session: Uuid, question: Uuid) -> Value {
    let waited: Value = app
        .get_json(&format!(
            "/api/v1/messages/pending?agent_instance_id={session}&question_id={question}"
        ))
        .await;
    waited["messages"][0]["content"].clone()
}

/// The channel the (one) reply came through, as its event records it.
async fn answered_via(app: &TestApp) -> String {
    sqlx::query_scalar(
        "SELECT metadata->>'client_type' FROM events WHERE event_type = 'user_message'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// A test app that sends email to an SMTP sink, and the sink.
async fn app_with_smtp() -> (TestApp, Receiver) {
    let smtp = Receiver::start(&["smtp"]).await;
    let notify = NotifyConfig {
        smtp: Some(
            Smtp::new(
                smtp.ready["url"].as_str().unwrap(),
                "Switchboard <switchboard@example.com>",
                "localhost",
                Duration::from_secs(5),
            )
            .unwrap(),
        ),
        ..fast("300ms")
    };
    (app_with(notify).await, smtp)
}

/// The same settings for a server started as a process.
const FAST_ENV: &[(&str, &str)] = &[
    ("SWITCHBOARD_NOTIFY_ALLOW_PRIVATE", "true"),
    ("SWITCHBOARD_NOTIFY_RETRY", "300ms"),
    ("SWITCHBOARD_NOTIFY_LEASE", "3s"),
    ("SWITCHBOARD_NOTIFY_TIMEOUT", "2s"),
];

async fn add_channel(client: &reqwest::Client, base: &str, token: &str, body: Value) -> Value {
    let response = client
        .post(format!("{base}/api/v1/notifications/channels"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let json: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{json}");
    json
}

async fn webhook_channel(app: &TestApp, receiver: &mut Receiver) -> Value {
    let body = json!({ "kind": "webhook", "url": receiver.url() });
    let channel = add_channel(&app.client, &app.address, &app.token, body).await;
    receiver
        .secret(
            channel["secret"]
                .as_str()
                .expect("the secret is shown once"),
        )
        .await;
    channel
}

async fn say(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    session: Uuid,
    content: &str,
    extra: Value,
) -> Uuid {
    let mut body = json!({
        "agent_instance_id": session,
        "agent_type": "claude-code",
        "content": content,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let response = client
        .post(format!("{base}/api/v1/messages/agent"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let json: Value = response.json().await.unwrap();
    json["message_id"].as_str().unwrap().parse().unwrap()
}

async fn ask(app: &TestApp, session: Uuid, question: &str) -> Uuid {
    let extra = json!({ "requires_user_input": true });
    say(
        &app.client,
        &app.address,
        &app.token,
        session,
        question,
        extra,
    )
    .await
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let page: Value = app
        .get_json(&format!("/api/v1/notifications/deliveries{query}"))
        .await;
    page["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Poll the deliveries API until `done` holds (the attempt record lands just after the send).
async fn deliveries_until(app: &TestApp, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let list = deliveries(app, "").await;
        if done(&list) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries never settled: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn codes(delivery: &Value) -> Vec<Value> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_reaches_a_webhook_once_signed_with_a_link_to_the_session() {
    let app = app_with(fast("300ms")).await;
    let mut receiver = Receiver::webhook(&[]).await;
    let channel = webhook_channel(&app, &mut receiver).await;
    assert!(channel["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(channel["kind"], "webhook");
    assert!(
        channel["description"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    let session = Uuid::new_v4();
    let step = json!({});
    say(
        &app.client,
        &app.address,
        &app.token,
        session,
        "reading the code",
        step,
    )
    .await;
    let question = ask(&app, session, "Ship the <migration> now?").await;

    let hook = receiver.next("WEBHOOK").await;
    assert_eq!(hook["verified"], true, "{hook}");
    assert_eq!(hook["path"], "/hooks/switchboard");
    let payload = &hook["payload"];
    assert_eq!(payload["type"], "question.asked");
    let data = &payload["data"];
    assert_eq!(data["session_id"], session.to_string());
    assert_eq!(data["message_id"], question.to_string());
    assert_eq!(data["text"], "Ship the <migration> now?");
    assert_eq!(data["agent_type"], "claude-code");
    assert_eq!(data["sms"], false);
    assert_eq!(
        data["url"],
        format!("http://localhost:8080/sessions/{session}")
    );
    assert_eq!(hook["id"], data["delivery_id"]);
    // Nothing for the plain step, nothing twice.
    assert!(receiver.rest(Duration::from_secs(2)).await.is_empty());

    let list = deliveries_until(&app, |l| {
        l.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(list.len(), 1);
    let delivery = &list[0];
    assert_eq!(delivery["id"], hook["id"]);
    assert_eq!(delivery["channel_id"], channel["id"]);
    assert_eq!(delivery["channel_kind"], "webhook");
    assert_eq!(delivery["trigger"], "question");
    assert_eq!(delivery["event_id"], question.to_string());
    assert_eq!(codes(delivery), [json!(200)]);

    let listed: Value = app.get_json("/api/v1/notifications/channels").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none(), "secrets are shown once");
    // The secret is nowhere in the log.
    let log: Value = app.get_json("/api/v1/events?limit=1000").await;
    assert!(
        !log.to_string()
            .contains(channel["secret"].as_str().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_retries_until_it_takes_the_delivery_once() {
    let app = app_with(fast("300ms,600ms")).await;
    let mut receiver = Receiver::webhook(&["--fail-first", "2"]).await;
    webhook_channel(&app, &mut receiver).await;
    ask(&app, Uuid::new_v4(), "Which region?").await;

    let tries: Vec<Value> = [
        receiver.next("WEBHOOK").await,
        receiver.next("WEBHOOK").await,
        receiver.next("WEBHOOK").await,
    ]
    .into();
    let statuses: Vec<&Value> = tries.iter().map(|t| &t["status"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)]);
    assert!(
        tries
            .iter()
            .all(|t| t["id"] == tries[0]["id"] && t["verified"] == true)
    );
    assert!(receiver.rest(Duration::from_secs(2)).await.is_empty());

    let list = deliveries_until(&app, |l| {
        l.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    let delivery = &list[0];
    assert_eq!(codes(delivery), [json!(500), json!(500), json!(200)]);
    let attempts = delivery["attempts"].as_array().unwrap();
    // The status, not what the receiver said (it may be an internal service's words).
    assert_eq!(attempts[0]["error"], "HTTP 500");
    assert_eq!(attempts[2]["error"], Value::Null);
    assert_eq!(delivery["last_error"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_answered_before_its_retry_is_not_sent_again() {
    let app = app_with(fast("3s")).await;
    let mut receiver = Receiver::webhook(&["--fail-first", "1"]).await;
    webhook_channel(&app, &mut receiver).await;
    let session = Uuid::new_v4();
    ask(&app, session, "Proceed?").await;
    assert_eq!(receiver.next("WEBHOOK").await["status"], 500);
    let reply = app
        .post(
            "/api/v1/messages/user",
            &json!({ "agent_instance_id": session, "content": "yes" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert!(receiver.rest(Duration::from_secs(5)).await.is_empty());
    let list = deliveries_until(&app, |l| {
        l.first().is_some_and(|d| d["status"] == "skipped")
    })
    .await;
    assert!(
        list[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("closed before delivery")
    );
    assert_eq!(codes(&list[0]), [json!(500)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagged_messages_are_coalesced_per_session_but_questions_always_notify() {
    let app = app_with(fast("300ms")).await;
    let mut receiver = Receiver::webhook(&[]).await;
    webhook_channel(&app, &mut receiver).await;
    let (c, base, token) = (&app.client, app.address.as_str(), app.token.as_str());
    let session = Uuid::new_v4();
    for n in 0..3 {
        let sms = json!({ "send_sms": true });
        say(c, base, token, session, &format!("build {n} failed"), sms).await;
    }
    let first = receiver.next("WEBHOOK").await;
    assert_eq!(first["payload"]["type"], "message.sent");
    assert_eq!(first["payload"]["data"]["sms"], true);
    assert_eq!(first["payload"]["data"]["text"], "build 0 failed");
    ask(&app, session, "Retry the build?").await;
    let question = receiver.next("WEBHOOK").await;
    assert_eq!(question["payload"]["type"], "question.asked");
    // Another session is not coalesced with this one; a plain step notifies nobody.
    let other = Uuid::new_v4();
    say(
        c,
        base,
        token,
        other,
        "deploy failed",
        json!({ "send_sms": true }),
    )
    .await;
    assert_eq!(
        receiver.next("WEBHOOK").await["payload"]["data"]["session_id"],
        other.to_string()
    );
    assert!(receiver.rest(Duration::from_secs(2)).await.is_empty());

    // The tenant turns question notifications off: only flagged questions go out.
    let off = app
        .client
        .put(app.url("/api/v1/notifications/settings"))
        .bearer_auth(&app.token)
        .json(&json!({ "questions": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    ask(&app, Uuid::new_v4(), "Unflagged question").await;
    let flagged = json!({ "requires_user_input": true, "send_sms": true });
    say(c, base, token, Uuid::new_v4(), "Flagged question", flagged).await;
    let got = receiver.next("WEBHOOK").await;
    assert_eq!(got["payload"]["data"]["text"], "Flagged question");
    assert!(receiver.rest(Duration::from_secs(2)).await.is_empty());
    let settings: Value = app.get_json("/api/v1/notifications/settings").await;
    assert_eq!(settings["questions"], false, "{settings}");
    assert_eq!(settings["notify"]["approval"]["web_push"], false);
    assert_eq!(settings["notify"]["session_ended"]["webhook"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_notification_goes_out_at_once_and_removed_channels_hear_nothing() {
    let app = app_with(fast("300ms")).await;
    let mut receiver = Receiver::webhook(&[]).await;
    let channel = webhook_channel(&app, &mut receiver).await;
    let id = channel["id"].as_str().unwrap();
    let tested: Value = app
        .post(
            &format!("/api/v1/notifications/channels/{id}/test"),
            &json!({}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["status"], "delivered", "{tested}");
    assert_eq!(tested["trigger"], "test");
    assert_eq!(codes(&tested), [json!(200)]);
    let hook = receiver.next("WEBHOOK").await;
    assert_eq!(hook["payload"]["type"], "test");
    assert_eq!(hook["verified"], true);

    let removed = app
        .client
        .delete(app.url(&format!("/api/v1/notifications/channels/{id}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    ask(&app, Uuid::new_v4(), "Anyone there?").await;
    assert!(receiver.rest(Duration::from_secs(2)).await.is_empty());
    let listed: Value = app.get_json("/api/v1/notifications/channels").await;
    assert_eq!(listed, json!([]));
    let log: Value = app.get_json("/api/v1/events?limit=1000").await;
    let types: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["session_id"] == app.tenant.to_string())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "user_created",
            "notification_channel_added",
            "notification_channel_removed"
        ]
    );
    let again = app
        .client
        .delete(app.url(&format!("/api/v1/notifications/channels/{id}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_channel_sends_text_and_escaped_html_through_smtp() {
    let (app, mut smtp) = app_with_smtp().await;
    let body = json!({ "kind": "email", "to": "ada@example.com" });
    let channel = add_channel(&app.client, &app.address, &app.token, body).await;
    assert_eq!(channel["to"], "ada@example.com");
    assert_eq!(channel["description"], "email to …@example.com");
    let session = Uuid::new_v4();
    ask(&app, session, "Drop table <users>?\nIt has 3 rows.").await;

    let mail = smtp.next("EMAIL").await;
    assert_eq!(mail["mail_from"], "switchboard@example.com");
    assert_eq!(mail["rcpt_tos"], json!(["ada@example.com"]));
    assert_eq!(mail["subject"], "claude-code asks: Drop table <users>?");
    assert_eq!(mail["content_type"], "multipart/alternative");
    let link = format!("http://localhost:8080/sessions/{session}");
    // SMTP carries CRLF line ends.
    let text = mail["text"].as_str().unwrap().replace("\r\n", "\n");
    assert!(
        text.contains("Drop table <users>?\nIt has 3 rows.") && text.contains(&link),
        "{text}"
    );
    let html = mail["html"].as_str().unwrap();
    assert!(html.contains("Drop table &lt;users&gt;?"), "{html}");
    assert!(!html.contains("<users>"));
    assert!(html.contains(&format!("href=\"{link}\"")));
    assert!(smtp.rest(Duration::from_secs(1)).await.is_empty());
    let list = deliveries_until(&app, |l| {
        l.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(codes(&list[0]), [json!(250)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_push_is_vapid_signed_and_encrypted_for_the_subscription() {
    let app = app_with(fast("300ms")).await;
    // Public: the inbox fetches it before anyone signs a request.
    let key: Value = app
        .client
        .get(app.url("/api/v1/notifications/vapid-public-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["public_key"].as_str().unwrap();
    assert_eq!(key.len(), 87, "a base64url uncompressed P-256 point");
    let mut push = Receiver::start(&["push", "--vapid-key", key]).await;
    let subscription = push.ready["subscription"].clone();
    let body = json!({ "kind": "web_push", "subscription": subscription });
    let channel = add_channel(&app.client, &app.address, &app.token, body).await;
    assert_eq!(channel["kind"], "web_push");
    let session = Uuid::new_v4();
    let question = ask(&app, session, "Approve the deploy?").await;

    let got = push.next("PUSH").await;
    assert_eq!(got["ttl"], "86400");
    assert_eq!(got["urgency"], "high");
    assert_eq!(got["subject"], "http://localhost:8080");
    let payload = &got["payload"];
    assert_eq!(payload["title"], "claude-code asks");
    assert_eq!(payload["body"], "Approve the deploy?");
    assert_eq!(payload["message_id"], question.to_string());
    assert_eq!(
        payload["url"],
        format!("http://localhost:8080/sessions/{session}")
    );
    let list = deliveries_until(&app, |l| {
        l.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(codes(&list[0]), [json!(201)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_targets_and_bodies_are_checked_and_refusals_change_nothing() {
    let strict = TestApp::spawn().await;
    let relaxed = app_with(fast("300ms")).await;
    let cases: &[(&TestApp, Value, u16)] = &[
        (
            &strict,
            json!({ "kind": "webhook", "url": "http://127.0.0.1:9/x" }),
            400,
        ),
        (
            &strict,
            json!({ "kind": "webhook", "url": "http://localhost:9/x" }),
            400,
        ),
        (
            &strict,
            json!({ "kind": "webhook", "url": "http://10.0.0.8/x" }),
            400,
        ),
        (
            &relaxed,
            json!({ "kind": "webhook", "url": "http://169.254.169.254/latest/meta-data" }),
            400,
        ),
        (
            &relaxed,
            json!({ "kind": "webhook", "url": "http://[::ffff:a9fe:a9fe]/" }),
            400,
        ),
        (
            &relaxed,
            json!({ "kind": "webhook", "url": "ftp://example.com/" }),
            400,
        ),
        (
            &relaxed,
            json!({ "kind": "webhook", "url": "http://user:pw@127.0.0.1/" }),
            400,
        ),
        (
            &relaxed,
            json!({ "kind": "webhook", "url": "not a url" }),
            400,
        ),
        (
            &relaxed,
            json!({ "kind": "webhook", "url": "http://no-such-host.invalid/" }),
            400,
        ),
        (
            &relaxed,
            json!({ "kind": "webhook", "url": "http://127.0.0.1/\u{0}" }),
            422,
        ),
        (&relaxed, json!({ "kind": "webhook" }), 422),
        (&relaxed, json!({ "kind": "webhook", "url": 5 }), 422),
        (
            &relaxed,
            json!({ "kind": "pager", "url": "http://127.0.0.1/" }),
            422,
        ),
        (&relaxed, json!({ "url": "http://127.0.0.1/" }), 422),
        (
            &relaxed,
            json!({ "kind": "email", "to": "ada@example.com" }),
            400,
        ),
        (
            &relaxed,
            json!({ "kind": "web_push", "subscription": { "endpoint": "http://127.0.0.1:9/p",
            "keys": { "p256dh": "AAAA", "auth": "AAAA" } } }),
            422,
        ),
        (
            &relaxed,
            json!({ "kind": "web_push", "subscription": {} }),
            422,
        ),
    ];
    for (app, body, status) in cases {
        let response = app
            .post("/api/v1/notifications/channels", body)
            .send()
            .await
            .unwrap();
        let got = response.status().as_u16();
        let detail: Value = response.json().await.unwrap();
        assert_eq!(got, *status, "{body}: {detail}");
        assert!(detail["detail"].is_string(), "{detail}");
        // A name's addresses are not told: the tenant learns the rule, not the network.
        if body["url"] == "http://localhost:9/x" {
            let said = detail["detail"].as_str().unwrap();
            assert!(said.contains("localhost resolves to a loopback"), "{said}");
            assert!(
                !said.contains("127.0.0.1") && !said.contains("::1"),
                "{said}"
            );
        }
    }
    for app in [&strict, &relaxed] {
        let listed: Value = app.get_json("/api/v1/notifications/channels").await;
        assert_eq!(listed, json!([]));
    }
    let malformed = relaxed
        .client
        .post(relaxed.url("/api/v1/notifications/channels"))
        .bearer_auth(&relaxed.token)
        .header("content-type", "application/json")
        .body("{\"kind\": \"webhook\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);

    // Audit keys read and never write; another tenant's channel is a missing one.
    let audit = relaxed.key(relaxed.tenant, Scope::Audit).await;
    let refused = relaxed
        .client
        .post(relaxed.url("/api/v1/notifications/channels"))
        .bearer_auth(&audit)
        .json(&json!({ "kind": "webhook", "url": "http://127.0.0.1:9/x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let mine = add_channel(
        &relaxed.client,
        &relaxed.address,
        &relaxed.token,
        json!({ "kind": "webhook", "url": "http://127.0.0.1:9/x" }),
    )
    .await;
    let stranger = relaxed.key(Uuid::new_v4(), Scope::Agent).await;
    let id = mine["id"].as_str().unwrap();
    for (method, path) in [
        (
            reqwest::Method::DELETE,
            format!("/api/v1/notifications/channels/{id}"),
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/notifications/channels/{id}/test"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/v1/notifications/channels/{}", Uuid::new_v4()),
        ),
    ] {
        let response = relaxed
            .client
            .request(method, relaxed.url(&path))
            .bearer_auth(&stranger)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    for query in [
        "?status=lost",
        "?limit=0",
        "?channel_id=x",
        "?before=yesterday",
    ] {
        let response = relaxed
            .get(&format!("/api/v1/notifications/deliveries{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{query}");
    }
    let bad_settings = relaxed
        .client
        .put(relaxed.url("/api/v1/notifications/settings"))
        .bearer_auth(&relaxed.token)
        .json(&json!({ "questions": "sometimes" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_settings.status(), 422);
    let listed: Value = relaxed.get_json("/api/v1/notifications/channels").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // A tenant with keys but no account (from before users were recorded) is told why.
    let accountless = relaxed
        .client
        .post(relaxed.url("/api/v1/notifications/channels"))
        .bearer_auth(&stranger)
        .json(&json!({ "kind": "webhook", "url": "http://127.0.0.1:9/x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(accountless.status(), 409);
    let detail: Value = accountless.json().await.unwrap();
    assert!(
        detail["detail"].as_str().unwrap().contains("users create"),
        "{detail}"
    );
    let theirs: Value = relaxed
        .client
        .get(relaxed.url("/api/v1/notifications/channels"))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs, json!([]), "no half-added channel is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_deliver_each_notification_once() {
    let app = app_with(fast("300ms")).await;
    let other = ServerProcess::start_with(&app.db, FAST_ENV).await;
    let mut receiver = Receiver::webhook(&[]).await;
    webhook_channel(&app, &mut receiver).await;
    let mut questions = Vec::new();
    for n in 0..20 {
        let base = if n % 2 == 0 {
            app.address.as_str()
        } else {
            other.address.as_str()
        };
        let extra = json!({ "requires_user_input": true });
        let text = format!("question {n}");
        questions.push(say(&app.client, base, &app.token, Uuid::new_v4(), &text, extra).await);
    }
    let mut seen: HashMap<String, u32> = HashMap::new();
    for _ in 0..20 {
        let hook = receiver.next("WEBHOOK").await;
        assert_eq!(hook["verified"], true);
        *seen
            .entry(
                hook["payload"]["data"]["message_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    assert!(
        receiver.rest(Duration::from_secs(3)).await.is_empty(),
        "a duplicate"
    );
    assert_eq!(seen.len(), 20);
    for question in questions {
        assert_eq!(seen.get(&question.to_string()), Some(&1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_delivery_leaves_the_delivery_to_another() {
    let db = common::database().await;
    let keys = common::signing_keys().await;
    let tenant = Uuid::new_v4();
    let (_, token) = api_keys::create(&db.pool, &keys, tenant, "test", Scope::Agent, None)
        .await
        .unwrap();
    common::create_user(&EventLog::new(db.pool.clone()), tenant).await;
    let client = reqwest::Client::new();
    // The receiver holds the first request open without answering.
    let mut receiver = Receiver::webhook(&["--hang-first", "1"]).await;
    let first = ServerProcess::start_with(&db, FAST_ENV).await;
    let body = json!({ "kind": "webhook", "url": receiver.url() });
    let channel = add_channel(&client, &first.address, &token, body).await;
    receiver.secret(channel["secret"].as_str().unwrap()).await;
    let extra = json!({ "requires_user_input": true });
    let question = say(
        &client,
        &first.address,
        &token,
        Uuid::new_v4(),
        "Merge?",
        extra,
    )
    .await;
    let hung = receiver.next("HUNG").await;
    first.kill();

    let second = ServerProcess::start_with(&db, FAST_ENV).await;
    let hook = receiver.next("WEBHOOK").await;
    assert_eq!(
        hook["id"], hung["id"],
        "the same delivery, the same webhook-id"
    );
    assert_eq!(hook["verified"], true);
    assert_eq!(hook["payload"]["data"]["message_id"], question.to_string());
    assert!(receiver.rest(Duration::from_secs(2)).await.is_empty());
    let deadline = tokio::time::Instant::now() + WITHIN;
    let page = loop {
        let page: Value = client
            .get(format!(
                "{}/api/v1/notifications/deliveries",
                second.address
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["deliveries"][0]["status"] == "delivered" {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let delivery = &page["deliveries"][0];
    // The dead process's attempt left no record; the second claim is attempt 2.
    assert_eq!(delivery["attempts"][0]["attempt"], 2);
    assert_eq!(delivery["attempts"][0]["status_code"], 200);
}

#[tokio::test]
async fn the_openapi_document_describes_the_notification_routes() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get_json("/openapi.json").await;
    for (path, method) in [
        ("/api/v1/notifications/channels", "post"),
        ("/api/v1/notifications/channels", "get"),
        ("/api/v1/notifications/channels/{channel_id}", "delete"),
        ("/api/v1/notifications/channels/{channel_id}/test", "post"),
        ("/api/v1/notifications/deliveries", "get"),
        ("/api/v1/notifications/settings", "get"),
        ("/api/v1/notifications/settings", "put"),
        ("/api/v1/notifications/vapid-public-key", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    for schema in [
        "NewChannel",
        "Channel",
        "AddedChannel",
        "Delivery",
        "NotificationSettings",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

/// `switchboard --data-dir <dir> <args>`, which must succeed; its standard output.
async fn cli(db: &common::TestDb, data_dir: &str, args: &[&str]) -> String {
    let args: Vec<&str> = [&["--data-dir", data_dir], args].concat();
    let out = common::switchboard(db, &args, None).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}:\n{stdout}\n{stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_lists_tests_and_removes_channels() {
    let db = common::database().await;
    let tenant = Uuid::new_v4();
    common::create_user(&EventLog::new(db.pool.clone()), tenant).await;
    let data_dir = std::env::temp_dir().join(format!("switchboard-notify-cli-{}", Uuid::new_v4()));
    let (data_dir, user) = (data_dir.to_str().unwrap().to_owned(), tenant.to_string());
    let mut receiver = Receiver::webhook(&[]).await;
    let added = cli(
        &db,
        &data_dir,
        &[
            "notify",
            "channels",
            "add",
            "--user",
            &user,
            "--notify-allow-private",
            "webhook",
            receiver.url(),
        ],
    )
    .await;
    assert!(added.contains("Signing secret (shown once):"), "{added}");
    receiver.secret(added.lines().last().unwrap()).await;
    let id = added.split_whitespace().nth(3).unwrap().to_owned();
    let listed = cli(
        &db,
        &data_dir,
        &["notify", "channels", "list", "--user", &user],
    )
    .await;
    assert!(
        listed.contains(&id) && listed.contains("webhook"),
        "{listed}"
    );

    let tested = cli(
        &db,
        &data_dir,
        &[
            "notify",
            "channels",
            "test",
            "--user",
            &user,
            "--notify-allow-private",
            &id,
        ],
    )
    .await;
    assert!(
        tested.contains("delivered") && tested.contains("attempt 1"),
        "{tested}"
    );
    let hook = receiver.next("WEBHOOK").await;
    assert_eq!(
        (hook["verified"].clone(), hook["payload"]["type"].clone()),
        (json!(true), json!("test"))
    );
    let history = cli(
        &db,
        &data_dir,
        &[
            "notify",
            "deliveries",
            "--user",
            &user,
            "--status",
            "delivered",
        ],
    )
    .await;
    assert!(
        history.contains("test") && history.contains(": 200"),
        "{history}"
    );

    let removed = cli(
        &db,
        &data_dir,
        &["notify", "channels", "remove", "--user", &user, &id],
    )
    .await;
    assert!(removed.contains("Removed channel"), "{removed}");
    let listed = cli(
        &db,
        &data_dir,
        &["notify", "channels", "list", "--user", &user],
    )
    .await;
    assert!(listed.trim().is_empty(), "{listed}");
    // The channel facts fold into the account like any account event, and chain like any.
    cli(&db, &data_dir, &["projections", "rebuild", "--check"]).await;
    cli(&db, &data_dir, &["verify"]).await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// An earlier message turned into a question (request-input) after the person had already
/// written is a question like any other: it is open, so it is notified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_turned_into_a_question_after_a_reply_is_notified() {
    let app = app_with(fast("300ms")).await;
    let mut receiver = Receiver::webhook(&[]).await;
    webhook_channel(&app, &mut receiver).await;
    let session = Uuid::new_v4();
    let step = say(
        &app.client,
        &app.address,
        &app.token,
        session,
        "Migrated the users table.",
        json!({}),
    )
    .await;
    let reply = app
        .post(
            "/api/v1/messages/user",
            &json!({"agent_instance_id": session, "content": "nice", "mark_as_read": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let asked = app
        .client
        .patch(app.url(&format!("/api/v1/messages/{step}/request-input")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    let questions: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/questions"))
        .await;
    assert_eq!(questions[0]["status"], "open", "{questions:?}");
    let hook = receiver.next("WEBHOOK").await;
    assert_eq!(hook["payload"]["type"], "question.asked", "{hook}");
    assert_eq!(hook["payload"]["data"]["message_id"], step.to_string());
    let list = deliveries_until(&app, |l| {
        l.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(list[0]["trigger"], "question");
}

/// One question to 60 channels makes 60 deliveries at one instant: pages of 50 then 10, each
/// delivery on exactly one page.
#[tokio::test]
async fn delivery_pages_never_skip_deliveries_that_share_a_time() {
    let app = app_with(fast("1h")).await;
    for n in 0..60 {
        // Nobody listens there: the deliveries stay, which is all this needs.
        let body = json!({ "kind": "webhook", "url": format!("http://127.0.0.1:9/hook{n}") });
        add_channel(&app.client, &app.address, &app.token, body).await;
    }
    ask(&app, Uuid::new_v4(), "Which region?").await;
    let first = loop {
        let page: Value = app
            .get_json("/api/v1/notifications/deliveries?limit=50")
            .await;
        if page["deliveries"].as_array().unwrap().len() == 50 {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let next = first["next_before"].as_str().expect("a next page");
    let next_id = first["next_before_id"].as_str().expect("and where in it");
    let second: Value = app
        .get_json(&format!(
            "/api/v1/notifications/deliveries?limit=50&before={}&before_id={next_id}",
            urlencoding(next)
        ))
        .await;
    assert!(second.get("next_before").is_none(), "{second}");
    let mut ids: Vec<&str> = first["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["deliveries"].as_array().unwrap())
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 60, "{second}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60, "each delivery once");
    // A time alone: everything created before it.
    let response = app
        .get("/api/v1/notifications/deliveries?before=2020-01-01T00:00:00Z")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for bad in ["before=yesterday", &format!("before_id={next_id}")] {
        let bad = app
            .get(&format!("/api/v1/notifications/deliveries?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422);
    }
}

/// `text` as a URL query value.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn delete_channel(app: &TestApp, id: &str, key: &str) -> u16 {
    app.client
        .delete(app.url(&format!("/api/v1/notifications/channels/{id}")))
        .bearer_auth(&app.token)
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn keyed_add(app: &TestApp, key: &str, url: &str) -> (u16, Value) {
    let response = app
        .post(
            "/api/v1/notifications/channels",
            &json!({ "kind": "webhook", "url": url }),
        )
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A client whose answer was lost retries with the same Idempotency-Key and gets the first
/// answer again (the webhook's secret included); a removal retried likewise; a key reused for
/// another request is refused; nothing is recorded twice.
#[tokio::test]
async fn retried_channel_adds_and_removals_answer_as_the_first() {
    let app = app_with(fast("1h")).await;
    let (status, first) = keyed_add(&app, "add-1", "http://127.0.0.1:9/a").await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = keyed_add(&app, "add-1", "http://127.0.0.1:9/a").await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first, "the same channel and secret");
    let (status, other) = keyed_add(&app, "add-1", "http://127.0.0.1:9/b").await;
    assert_eq!(status, 422, "{other}");
    let listed: Value = app.get_json("/api/v1/notifications/channels").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    let id = first["id"].as_str().unwrap();
    assert_eq!(delete_channel(&app, id, "remove-1").await, 200);
    assert_eq!(delete_channel(&app, id, "remove-1").await, 200, "the retry");
    assert_eq!(
        delete_channel(&app, id, "remove-2").await,
        404,
        "a new request"
    );
    let (status, gone) = keyed_add(&app, "add-1", "http://127.0.0.1:9/a").await;
    assert_eq!(status, 409, "{gone}");
    let facts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type LIKE 'notification_channel_%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(facts, 2, "one added, one removed");
}

/// A burst of adds near the cap cannot pass it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_adds_stays_within_the_channel_cap() {
    let app = app_with(fast("1h")).await;
    for n in 0..190 {
        let body = json!({ "kind": "webhook", "url": format!("http://127.0.0.1:9/{n}") });
        add_channel(&app.client, &app.address, &app.token, body).await;
    }
    let adds = (0..40).map(|n| {
        let request = app.post(
            "/api/v1/notifications/channels",
            &json!({ "kind": "webhook", "url": format!("http://127.0.0.1:9/burst{n}") }),
        );
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(adds).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        30,
        "{statuses:?}"
    );
    let listed: Value = app.get_json("/api/v1/notifications/channels").await;
    assert_eq!(listed.as_array().unwrap().len(), 200);
}

/// A delivery left pending for a channel removed meanwhile (a consumer pass that read the
/// channel before the removal committed after it) is skipped, never sent with the wiped secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_channel_is_never_sent_what_a_pass_queued_for_it() {
    let app = app_with(fast("300ms")).await;
    let mut receiver = Receiver::webhook(&[]).await;
    let channel = webhook_channel(&app, &mut receiver).await;
    ask(&app, Uuid::new_v4(), "First?").await;
    receiver.next("WEBHOOK").await;
    let id = channel["id"].as_str().unwrap();
    assert_eq!(delete_channel(&app, id, "remove").await, 200);
    // What the race leaves: a pending delivery for the removed channel.
    let queued: Uuid = sqlx::query_scalar(
        "INSERT INTO notification_deliveries (tenant_id, id, channel_id, session_id, event_id,
             event_seq, event_at, trigger, question_seq, payload, status, next_attempt_at)
         SELECT tenant_id, gen_random_uuid(), channel_id, session_id, event_id, event_seq,
                event_at, trigger, question_seq, payload, 'pending', now()
         FROM notification_deliveries LIMIT 1
         RETURNING id",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let mut status = String::new();
    for _ in 0..100 {
        status = sqlx::query_scalar("SELECT status FROM notification_deliveries WHERE id = $1")
            .bind(queued)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        if status != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "skipped");
    assert!(
        receiver.rest(Duration::from_secs(1)).await.is_empty(),
        "nothing was sent"
    );
}

/// A browser that renews its push subscription (`pushsubscriptionchange`, or the inbox turning
/// push on again) registers the new one saying which it replaces: the old channel goes, so no
/// dead channel is left to fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_push_subscription_replaces_its_channel() {
    let app = app_with(fast("300ms")).await;
    let key: Value = app.get_json("/api/v1/notifications/vapid-public-key").await;
    let push = Receiver::start(&["push", "--vapid-key", key["public_key"].as_str().unwrap()]).await;
    let old = push.ready["subscription"].clone();
    let first = add_channel(
        &app.client,
        &app.address,
        &app.token,
        json!({ "kind": "web_push", "subscription": old }),
    )
    .await;
    let mut renewed = old.clone();
    renewed["endpoint"] = json!(format!("{}/renewed", old["endpoint"].as_str().unwrap()));
    // A NUL byte or a huge value is refused, and nothing changes.
    for bad in [json!("https://push.example/\u{0}"), json!("x".repeat(5000))] {
        let body = json!({ "kind": "web_push", "subscription": renewed, "replaces": bad });
        let response = app
            .post("/api/v1/notifications/channels", &body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422);
    }
    let body = json!({ "kind": "web_push", "subscription": renewed, "replaces": old["endpoint"] });
    let second = add_channel(&app.client, &app.address, &app.token, body).await;
    let listed: Value = app.get_json("/api/v1/notifications/channels").await;
    let ids: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, [&second["id"]], "only the renewed one: {listed}");
    assert_ne!(first["id"], second["id"]);
}

/// A webhook's question carries one signed URL per option: a receiver answers with one POST
/// and no key, the agent waiting receives it, the answer records the channel it came through;
/// the same URL again is answered as the first time; another option's URL, once the question
/// is answered, says how it closed and changes nothing; a forged or altered URL answers
/// nothing; the capability is no API key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_answers_a_question_with_one_post() {
    let app = app_with(fast("300ms")).await;
    let mut receiver = Receiver::webhook(&[]).await;
    webhook_channel(&app, &mut receiver).await;
    let session = Uuid::new_v4();
    let extra = json!({ "requires_user_input": true, "options": ["Squash", "Rebase"] });
    let question = say(
        &app.client,
        &app.address,
        &app.token,
        session,
        "Merge how?",
        extra,
    )
    .await;
    let hook = receiver.next("WEBHOOK").await;
    assert_eq!(hook["verified"], true);
    let asked = &hook["payload"]["data"]["question"];
    assert_eq!(asked["id"], question.to_string(), "{asked}");
    assert_eq!(asked["options"], json!(["Squash", "Rebase"]));
    let url = |option: &str| {
        asked["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["option"] == option)
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (rebase, squash) = (url("Rebase"), url("Squash"));
    assert!(
        rebase.starts_with("http://localhost:8080/api/v1/actions/"),
        "{rebase}"
    );
    // Reached at this server's address (the public URL is another's in tests).
    let here = |public: &str| public.replace("http://localhost:8080", &app.address);

    // Forged or altered: nothing.
    let before = event_count(&app).await;
    let forged = format!("{}x", here(&rebase));
    for wrong in [forged.as_str(), "http://x/api/v1/actions/not-a-token"] {
        let wrong = wrong.replace("http://x", &app.address);
        let response = app.client.post(&wrong).send().await.unwrap();
        assert_eq!(response.status(), 403, "{wrong}");
    }
    // Fetched (a link preview, a mail scanner): nothing.
    let fetched = app.client.get(here(&rebase)).send().await.unwrap();
    assert_eq!(fetched.status(), 405);
    // The capability is not a key.
    let token = rebase.rsplit('/').next().unwrap();
    let as_key = app
        .client
        .get(app.url("/api/v1/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_key.status(), 401);
    assert_eq!(event_count(&app).await, before, "nothing appended");

    let answered = app.client.post(here(&rebase)).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    let first: Value = answered.json().await.unwrap();
    assert_eq!(first["answer"], "Rebase");
    assert_eq!(answer_to(&app, session, question).await, "Rebase");
    assert_eq!(answered_via(&app).await, "webhook action");

    let after = event_count(&app).await;
    let again = app.client.post(here(&rebase)).send().await.unwrap();
    assert_eq!(again.status(), 200, "a retry is answered as the first");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = app.client.post(here(&squash)).send().await.unwrap();
    assert_eq!(other.status(), 409);
    let said: Value = other.json().await.unwrap();
    assert!(
        said["detail"]
            .as_str()
            .unwrap()
            .contains("already answered"),
        "{said}"
    );
    assert_eq!(event_count(&app).await, after, "nothing more appended");
}

/// An email's question has one link per answer: opening a link (as a mail scanner or a link
/// preview does) shows the question and answers nothing; the page's button answers once, and
/// the waiting agent has it; the other answer's link then says how the question closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_link_answers_only_when_its_button_is_pressed() {
    let (app, mut smtp) = app_with_smtp().await;
    let body = json!({ "kind": "email", "to": "ada@example.com" });
    add_channel(&app.client, &app.address, &app.token, body).await;
    let session = Uuid::new_v4();
    let extra = json!({ "requires_user_input": true, "options": ["Ship it", "Wait"] });
    let question = say(
        &app.client,
        &app.address,
        &app.token,
        session,
        "Release 2.0?",
        extra,
    )
    .await;
    let mail = smtp.next("EMAIL").await;
    let text = mail["text"].as_str().unwrap().replace("\r\n", "\n");
    let link = |option: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{option}: ")))
            .unwrap_or_else(|| panic!("no link for {option}: {text}"));
        line.split_once(": ")
            .unwrap()
            .1
            .replace("http://localhost:8080", &app.address)
    };
    let (ship, wait) = (link("Ship it"), link("Wait"));
    assert!(text.contains(&format!(
        "Reply in the inbox: http://localhost:8080/sessions/{session}"
    )));
    let html = mail["html"].as_str().unwrap();
    assert!(
        html.contains(">Ship it</a>") && html.contains(">Reply in the inbox</a>"),
        "{html}"
    );

    // Fetched, as a scanner does: the page, and nothing answered.
    let before = event_count(&app).await;
    let page = app.client.get(&ship).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Release 2.0?") && page.contains("Answer “Ship it”"),
        "{page}"
    );
    assert_eq!(
        event_count(&app).await,
        before,
        "opening the link answers nothing"
    );

    // The button (a POST from the page itself).
    let press = |url: String| {
        app.client
            .post(url)
            .header("Origin", "http://localhost:8080")
            .send()
    };
    let pressed = press(ship.clone()).await.unwrap();
    assert_eq!(pressed.status(), 200);
    assert!(pressed.text().await.unwrap().contains("Answered “Ship it”"));
    assert_eq!(answer_to(&app, session, question).await, "Ship it");
    assert_eq!(answered_via(&app).await, "email action");

    // The other answer, and the same one again from another site: nothing changes.
    let after = event_count(&app).await;
    let other = press(wait.clone()).await.unwrap();
    assert_eq!(other.status(), 409);
    assert!(
        other
            .text()
            .await
            .unwrap()
            .contains("It was already answered on")
    );
    let closed = app.client.get(&wait).send().await.unwrap();
    assert_eq!(closed.status(), 409);
    let cross = app
        .client
        .post(&ship)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert_eq!(event_count(&app).await, after);
}

/// A web push of a question carries its answers (the buttons a notification shows, each with
/// its capability URL, as the service worker gives them): an approval's Allow and Deny; one
/// POST answers it, recorded as a push action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_approval_is_answered_from_its_buttons() {
    let app = app_with(fast("300ms")).await;
    let mut push = push_channel(&app).await;
    let session = Uuid::new_v4();
    let extra = json!({ "requires_user_input": true,
        "approval": { "tool_name": "Bash", "input": { "command": "make deploy" },
                      "suggestions": [{ "type": "setMode", "mode": "acceptEdits" }] } });
    let question = say(
        &app.client,
        &app.address,
        &app.token,
        session,
        "May I deploy?",
        extra,
    )
    .await;
    let got = push.next("PUSH").await;
    let actions = got["payload"]["actions"]
        .as_array()
        .expect("answer buttons")
        .clone();
    let options: Vec<&str> = actions
        .iter()
        .map(|a| a["option"].as_str().unwrap())
        .collect();
    assert_eq!(
        options,
        ["Allow", "Deny"],
        "what a notification shows of three"
    );
    let allow = actions[0]["url"]
        .as_str()
        .unwrap()
        .replace("http://localhost:8080", &app.address);
    let answered = app.client.post(&allow).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(answer_to(&app, session, question).await, "Allow");
    assert_eq!(answered_via(&app).await, "push action");
}

/// A web push channel whose subscription is a push receiver's (it decrypts what arrives).
async fn push_channel(app: &TestApp) -> Receiver {
    let key: Value = app.get_json("/api/v1/notifications/vapid-public-key").await;
    let push = Receiver::start(&["push", "--vapid-key", key["public_key"].as_str().unwrap()]).await;
    let body = json!({ "kind": "web_push", "subscription": push.ready["subscription"].clone() });
    add_channel(&app.client, &app.address, &app.token, body).await;
    push
}

/// Change the tenant's notification policy; the policy now in force.
async fn put_policy(app: &TestApp, change: Value) -> Value {
    let r = app
        .client
        .put(app.url("/api/v1/notifications/settings"))
        .bearer_auth(&app.token)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{change}");
    r.json().await.unwrap()
}

async fn answer(app: &TestApp, session: Uuid, question: Uuid, text: &str) {
    let reply = app
        .post(
            "/api/v1/messages/user",
            &json!({ "agent_instance_id": session, "question_id": question, "content": text }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

/// A burst of 50 requests in one session: the first is told at once (with its answers), the
/// other 49 together when the coalescing window ends ("50 requests wait"), and nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_requests_is_told_once_per_coalescing_window() {
    let app = app_with(fast("300ms")).await;
    let mut receiver = Receiver::webhook(&[]).await;
    webhook_channel(&app, &mut receiver).await;
    put_policy(&app, json!({ "coalesce_seconds": 3 })).await;
    let session = Uuid::new_v4();
    let first = ask(&app, session, "Question 0?").await;
    let got = receiver.next("WEBHOOK").await;
    assert_eq!(got["payload"]["data"]["question"]["id"], first.to_string());
    for n in 1..50 {
        ask(&app, session, &format!("Question {n}?")).await;
    }
    let together = receiver.next("WEBHOOK").await;
    let data = &together["payload"]["data"];
    assert_eq!(data["waiting"], 50, "{together}");
    assert!(data.get("question").is_none(), "no answers of one request");
    let text = data["text"].as_str().unwrap();
    let told = "50 requests wait for your answer in this session, among them: Question ";
    assert!(text.starts_with(told), "{text}");
    assert!(receiver.rest(Duration::from_secs(4)).await.is_empty());
    // Two notifications went out. The other requests joined the second; one that could not
    // join (the held one was being decided on at that moment) was not sent, because the
    // second had told of it.
    let list = deliveries(&app, "").await;
    let delivered = list.iter().filter(|d| d["status"] == "delivered").count();
    assert_eq!(delivered, 2, "{list:#?}");
    for other in list.iter().filter(|d| d["status"] != "delivered") {
        assert_eq!(other["status"], "skipped", "{other}");
        let why = other["last_error"].as_str().unwrap();
        assert!(why.contains("an earlier notification told"), "{other}");
    }
}

/// Escalation: a request that waits less than the channel's delay never reaches it; one that
/// waits longer does, then. Quiet hours hold what comes in them until they end (or are turned
/// off); the log records every change of the policy, and a bad one changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_and_quiet_hours_hold_requests_and_answered_ones_are_never_sent() {
    let app = app_with(fast("300ms")).await;
    let mut receiver = Receiver::webhook(&[]).await;
    webhook_channel(&app, &mut receiver).await;
    let policy = put_policy(&app, json!({ "escalate_after_seconds": { "webhook": 2 } })).await;
    assert_eq!(policy["escalate_after_seconds"]["webhook"], 2);
    let session = Uuid::new_v4();
    let quick = ask(&app, session, "Answered at once?").await;
    answer(&app, session, quick, "yes").await;
    let asked_at = tokio::time::Instant::now();
    let slow = ask(&app, Uuid::new_v4(), "Left waiting?").await;
    let got = receiver.next("WEBHOOK").await;
    assert!(
        asked_at.elapsed() >= Duration::from_secs(2),
        "escalated, not sent at once"
    );
    assert_eq!(got["payload"]["data"]["question"]["id"], slow.to_string());
    assert!(receiver.rest(Duration::from_secs(1)).await.is_empty());
    let list = deliveries_until(&app, |l| l.iter().any(|d| d["status"] == "skipped")).await;
    let skipped = list.iter().find(|d| d["status"] == "skipped").unwrap();
    assert!(
        skipped["last_error"]
            .as_str()
            .unwrap()
            .contains("closed before delivery")
    );
    assert_eq!(codes(skipped), Vec::<Value>::new(), "never attempted");

    // Quiet hours around now (UTC): a request waits for their end.
    let now = time::OffsetDateTime::now_utc();
    let hhmm = |t: time::OffsetDateTime| format!("{:02}:{:02}", t.hour(), t.minute());
    let (from, until) = (
        now - time::Duration::hours(1),
        now + time::Duration::hours(1),
    );
    let quiet = json!({ "from": hhmm(from), "until": hhmm(until), "time_zone": "UTC" });
    put_policy(
        &app,
        json!({ "quiet_hours": quiet, "escalate_after_seconds": {} }),
    )
    .await;
    let held = ask(&app, Uuid::new_v4(), "Asked at night?").await;
    assert!(receiver.rest(Duration::from_secs(2)).await.is_empty());
    let list = deliveries(&app, "").await;
    let pending = list
        .iter()
        .find(|d| d["status"] == "pending")
        .expect("held, not sent");
    let due = time::OffsetDateTime::parse(
        pending["next_attempt_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((due.hour(), due.minute()), (until.hour(), until.minute()));
    // A bad change is refused and changes nothing.
    let before = event_count(&app).await;
    for bad in [
        json!({ "quiet_hours": { "from": "22:00", "until": "07:00", "time_zone": "Nowhere/City" } }),
        json!({ "quiet_hours": { "from": "9:00", "until": "07:00", "time_zone": "UTC" } }),
        json!({ "coalesce_seconds": -1 }),
        json!({ "escalate_after_seconds": { "email": 99999999 } }),
        json!({ "notify": { "question": { "email": true } } }),
        json!({ "loud_hours": true }),
        json!({ "quiet_hours": { "from": "22:00", "until": "07:00", "time_zone": "UTC\u{0}" } }),
        json!({ "quiet_hours": { "from": "22:00\u{0}", "until": "07:00", "time_zone": "UTC" } }),
    ] {
        let r = app
            .client
            .put(app.url("/api/v1/notifications/settings"))
            .bearer_auth(&app.token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{bad}");
        let problem: Value = r.json().await.unwrap();
        assert!(problem["detail"].as_str().is_some(), "{problem}");
    }
    assert_eq!(event_count(&app).await, before);
    // Quiet hours end (turned off): what they held goes out at once.
    put_policy(&app, json!({ "quiet_hours": null })).await;
    let got = receiver.next("WEBHOOK").await;
    assert_eq!(got["payload"]["data"]["question"]["id"], held.to_string());

    // Each change is an event on the account stream with the whole policy, by the user.
    let changes: Vec<(Value, Value)> = sqlx::query_as(
        "SELECT data::jsonb, metadata::jsonb FROM events
         WHERE event_type = 'notification_policy_changed' ORDER BY seq",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[1].0["policy"]["quiet_hours"], quiet);
    assert_eq!(changes[2].0["policy"]["quiet_hours"], Value::Null);
    assert_eq!(changes[0].1["actor"], "user", "{:?}", changes[0].1);
    // Changing nothing records nothing.
    let before = event_count(&app).await;
    put_policy(&app, json!({ "quiet_hours": null })).await;
    assert_eq!(event_count(&app).await, before);
}

/// Presence: while an inbox is focused, push waits (a webhook does not); when it is no longer
/// focused, what push held goes out. A policy can route approvals to push only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_waits_while_an_inbox_is_focused_and_topics_choose_their_channels() {
    let app = app_with(fast("300ms")).await;
    let mut push = push_channel(&app).await;
    let mut receiver = Receiver::webhook(&[]).await;
    webhook_channel(&app, &mut receiver).await;
    let presence = |focused: bool| {
        app.client
            .put(app.url("/api/v1/notifications/presence"))
            .bearer_auth(&app.token)
            .json(&json!({ "focused": focused }))
            .send()
    };
    assert_eq!(presence(true).await.unwrap().status(), 204);
    let question = ask(&app, Uuid::new_v4(), "Seen in the inbox?").await;
    let hook = receiver.next("WEBHOOK").await;
    assert_eq!(
        hook["payload"]["data"]["question"]["id"],
        question.to_string()
    );
    assert!(
        push.rest(Duration::from_secs(2)).await.is_empty(),
        "push waits"
    );
    assert_eq!(presence(false).await.unwrap().status(), 204);
    let got = push.next("PUSH").await;
    assert_eq!(got["payload"]["message_id"], question.to_string());

    // Approvals by push only; plain questions by webhook only.
    let only = |push: bool| json!({ "webhook": !push, "email": false, "web_push": push });
    put_policy(
        &app,
        json!({ "notify": { "approval": only(true), "question": only(false) } }),
    )
    .await;
    let extra = json!({ "requires_user_input": true,
        "approval": { "tool_name": "Bash", "input": { "command": "make deploy" } } });
    let (c, base, token) = (&app.client, app.address.as_str(), app.token.as_str());
    let approval = say(c, base, token, Uuid::new_v4(), "May I deploy?", extra).await;
    let got = push.next("PUSH").await;
    assert_eq!(got["payload"]["message_id"], approval.to_string());
    let plain = ask(&app, Uuid::new_v4(), "Which branch?").await;
    let hook = receiver.next("WEBHOOK").await;
    assert_eq!(hook["payload"]["data"]["question"]["id"], plain.to_string());
    assert!(push.rest(Duration::from_secs(1)).await.is_empty());
    assert!(receiver.rest(Duration::from_secs(1)).await.is_empty());
    let bad = app
        .client
        .put(app.url("/api/v1/notifications/presence"))
        .bearer_auth(&app.token)
        .json(&json!({ "focused": "yes" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}
