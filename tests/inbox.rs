//! The inbox in a real browser: the machine's Chromium, driven by `playwright-core` from npm
//! (installed by the test under target/prereqs) through `tests/inbox/browser.js`. Agents are
//! real MCP clients (rmcp) and REST callers. A person signs in with a link, sees a question
//! arrive live, answers it by keyboard and the agent's blocked call returns the answer; on a
//! phone-sized screen too. Plus sign-out, bad links, another tenant's session, XSS probes and
//! notifications. The settings page against real receivers (`tests/notify/receivers.py`): a
//! webhook added, its secret shown once, tested, a refusing one failing in view, web push on
//! the device (a synthetic browser subscription that is the test's push endpoint: headless
//! Chromium cannot reach a push service). The runs also write the README's screenshots to
//! `docs/screenshots/`.
//!
//! Without Chromium, Node.js or the npm registry these tests fail and say what to install.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::TestApp;
use common::receivers::Receiver;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use switchboard::app::Config;
use switchboard::auth::web_sessions;
use switchboard::notify::{NotifyConfig, RetrySchedule};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use uuid::Uuid;

use switchboard::bench::inbox::PLAYWRIGHT_CORE;

/// A scenario of `tests/inbox/browser.js` running in Chromium.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Browser {
    async fn start(app: &TestApp, scenario: &str, args: Value) -> Browser {
        Browser::start_at(&app.url("/"), scenario, args).await
    }

    /// The scenario against the server at `base` (a proxy in front of the test's, say).
    async fn start_at(base: &str, scenario: &str, mut args: Value) -> Browser {
        let modules = tokio::task::spawn_blocking(|| {
            common::prereqs::npm("playwright", &[PLAYWRIGHT_CORE]).join("node_modules")
        })
        .await
        .unwrap();
        args["chromium"] = json!(common::prereqs::chromium());
        args["base"] = json!(base);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/inbox/browser.js");
        let mut command = Command::new("node");
        command
            .arg(script)
            .arg(scenario)
            .arg(args.to_string())
            .env("NODE_PATH", modules);
        Browser::attach(command)
    }

    /// Any script that speaks the same "WORD {json}" lines (an MCP host's, say).
    fn attach(mut command: Command) -> Browser {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (install Node.js, or run .ci/run)");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Browser {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// The value of the next `word` line the script reports; fails with the script's errors
    /// if it ends first or takes over a minute.
    async fn expect(&mut self, word: &str) -> Value {
        let next = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix(word).and_then(|r| r.strip_prefix(' ')) {
                    return Some(serde_json::from_str(rest).unwrap());
                }
            }
            None
        };
        match tokio::time::timeout(Duration::from_secs(60), next).await {
            Ok(Some(value)) => value,
            Ok(None) => {
                let status = self.child.wait().await.unwrap();
                let stderr = (&mut self.stderr).await.unwrap();
                panic!("the browser script ended ({status}) before {word}:\n{stderr}");
            }
            Err(_) => panic!("no {word} from the browser script within a minute"),
        }
    }

    /// Tell the script `word` (a scenario that listens waits for it).
    async fn tell(&mut self, word: &str, value: Value) {
        let line = format!("{word} {value}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Wait for the script to end; it must succeed.
    async fn finish(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the browser script ends")
            .unwrap();
        let stderr = self.stderr.await.unwrap();
        assert!(status.success(), "the browser script failed: {stderr}");
    }
}

/// The channel the tenant's (one) reply came through, as its event records it.
async fn answered_via(app: &TestApp) -> String {
    sqlx::query_scalar(
        "SELECT metadata->>'client_type' FROM events WHERE tenant_id = $1
         AND event_type = 'user_message'",
    )
    .bind(app.tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// A one-time sign-in link for `tenant`.
async fn link(app: &TestApp, tenant: Uuid) -> String {
    let link = web_sessions::create_link(&app.db.pool, tenant, 15)
        .await
        .unwrap();
    app.url(&format!("/login/{}", link.token))
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

type Agent = RunningService<RoleClient, ()>;

/// An MCP client, as Claude Code would connect.
async fn agent(app: &TestApp) -> Agent {
    let headers = [(
        http::HeaderName::from_static("x-client-type"),
        http::HeaderValue::from_static("claude-code"),
    )];
    let config = StreamableHttpClientTransportConfig::with_uri(app.url("/mcp"))
        .auth_header(&app.token)
        .custom_headers(headers.into_iter().collect());
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("initialize")
}

async fn call(agent: &Agent, tool: &'static str, args: Value) -> Value {
    let result = agent
        .call_tool(
            CallToolRequestParams::new(tool).with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .expect("a tool result");
    assert_ne!(result.is_error, Some(true), "{tool} failed: {result:?}");
    // permission_prompt's answer travels in _meta beside its text.
    let meta = result
        .meta
        .and_then(|m| m.0.get(switchboard::mcp::ANSWER_META).cloned());
    result
        .structured_content
        .or(meta)
        .expect("structured content")
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app.post(path, &body).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Other sessions in the inbox, so that it looks like a day's work: one working, one waiting,
/// one ended.
async fn other_sessions(app: &TestApp) {
    let (working, waiting, ended) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let say = |id: Uuid, agent: &str, content: &str, question: bool| {
        json!({"agent_instance_id": id, "agent_type": agent, "content": content,
               "requires_user_input": question})
    };
    for body in [
        say(
            ended,
            "codex",
            "Done: migrated the billing tables to the new schema.",
            false,
        ),
        say(
            working,
            "cursor",
            "Running the test suite: 214 passed, 0 failed. Now profiling the import path.",
            false,
        ),
        say(
            waiting,
            "python-sdk",
            "Deploy to **staging** finished. Promote build `2026.11.29-3` to production?",
            true,
        ),
    ] {
        post(app, "/api/v1/messages/agent", body).await;
    }
    post(
        app,
        "/api/v1/sessions/end",
        json!({"agent_instance_id": ended}),
    )
    .await;
}

const DIFF: &str = "diff --git a/src/storage.rs b/src/storage.rs
index 3b18e51..a9c4f2d 100644
--- a/src/storage.rs
+++ b/src/storage.rs
@@ -10,7 +10,9 @@ impl Storage {
     pub fn open(path: &Path) -> Result<Storage> {
-        let file = File::open(path)?;
+        let file = OpenOptions::new().read(true).write(true).open(path)?;
+        file.lock_exclusive()?;
         Ok(Storage { file })
     }
 }
diff --git a/tests/storage.rs b/tests/storage.rs
new file mode 100644
--- /dev/null
+++ b/tests/storage.rs
@@ -0,0 +1,4 @@
+#[test]
+fn a_second_open_waits_for_the_lock() {
+    assert!(Storage::open(PATH).is_err());
+}
";

/// An MCP agent's session with some history: steps, a plan with code, a diff.
async fn session_with_history(app: &TestApp, agent: &Agent) -> String {
    let step = call(
        agent,
        "log_step",
        json!({"step_description": "Reading `src/storage.rs` to understand how files are locked."}),
    )
    .await;
    let session = step["agent_instance_id"].as_str().unwrap().to_owned();
    post(
        app,
        "/api/v1/messages/agent",
        json!({
            "agent_instance_id": session,
            "content": "Plan:\n\n1. Open the file read-write\n2. Take an **exclusive lock**\n3. Add a test\n\n```rust\nfile.lock_exclusive()?;\n```",
            "git_diff": DIFF,
        }),
    )
    .await;
    post(
        app,
        "/api/v1/messages/user",
        json!({"agent_instance_id": session, "content": "Sounds good, go ahead.", "mark_as_read": true}),
    )
    .await;
    session
}

const QUESTION: &str = "Should I also lock the WAL file? It is opened in `wal.rs` with \
                        `File::create`, so two processes could write to it at once.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_a_link_sees_the_question_arrive_and_answers_the_waiting_agent() {
    let app = TestApp::spawn().await;
    other_sessions(&app).await;
    let agent = agent(&app).await;
    let session = session_with_history(&app, &agent).await;
    let mut browser = Browser::start(
        &app,
        "answer",
        json!({
            "link": link(&app, app.tenant).await,
            "session": session,
            "question": "Should I also lock the WAL file?",
            "answer_lines": ["Yes, lock it too.", "Use the same helper."],
            // Another agent is waiting too (see `other_sessions`).
            "title_asked": "(2) Inbox",
            "title_answered": "(1) ",
            "screenshots": screenshots(),
        }),
    )
    .await;
    let ready = browser.expect("READY").await;
    let bytes = ready["load"]["bytes"].as_u64().unwrap();
    assert!(
        bytes <= 150_000,
        "first load transferred {bytes} bytes: {ready}"
    );
    println!("first load: {bytes} bytes, {}", ready["load"]["files"]);

    // The agent asks and blocks until the person answers in the browser.
    let session_id = session.clone();
    let asked = tokio::spawn(async move {
        let answer = call(
            &agent,
            "ask_question",
            json!({"agent_instance_id": session, "question_text": QUESTION}),
        )
        .await;
        (agent, answer)
    });
    let seen = browser.expect("SEEN").await;
    assert!(
        seen["title"].as_str().unwrap().starts_with("(2) Inbox"),
        "{seen}"
    );
    let done = browser.expect("DONE").await;
    assert!(
        done["title"].as_str().unwrap().starts_with("(1) "),
        "{done}"
    );
    browser.finish().await;
    let (agent, answer) = tokio::time::timeout(Duration::from_secs(10), asked)
        .await
        .expect("the agent's call returns")
        .unwrap();
    assert_eq!(answer["answer"], "Yes, lock it too.\nUse the same helper.");
    // The person ended the session from its page.
    let ended = agent
        .call_tool(
            CallToolRequestParams::new("log_step").with_arguments(
                json!({"agent_instance_id": session_id, "step_description": "more"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .expect("a tool result");
    assert_eq!(ended.is_error, Some(true), "{ended:?}");
    agent.cancel().await.unwrap();

    // The log says who answered: the person's web session.
    let (web_session, actor): (Option<String>, String) = sqlx::query_as(
        "SELECT metadata->>'web_session', metadata->>'actor' FROM events
         WHERE tenant_id = $1 AND event_type = 'user_message' ORDER BY seq DESC LIMIT 1",
    )
    .bind(app.tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(actor, "user");
    let web_session = Uuid::parse_str(&web_session.expect("a web session")).unwrap();
    let tenant: Uuid = sqlx::query_scalar("SELECT tenant_id FROM web_sessions WHERE id = $1")
        .bind(web_session)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(tenant, app.tenant);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_sized_screen_the_question_is_answered_without_zooming() {
    let app = TestApp::spawn().await;
    other_sessions(&app).await;
    let agent = agent(&app).await;
    let session = session_with_history(&app, &agent).await;
    let asked = tokio::spawn({
        let session = session.clone();
        async move {
            let answer = call(
                &agent,
                "ask_question",
                json!({"agent_instance_id": session, "question_text": QUESTION}),
            )
            .await;
            (agent, answer)
        }
    });
    // The question is waiting before the phone opens the inbox.
    for _ in 0..200 {
        if app.hub.waiters() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let browser = Browser::start(
        &app,
        "phone",
        json!({
            "link": link(&app, app.tenant).await,
            "session": session,
            "question": "Should I also lock the WAL file?",
            "answer": "Yes — lock it with the same helper.",
            "screenshots": screenshots(),
        }),
    )
    .await;
    browser.finish().await;
    let (agent, answer) = tokio::time::timeout(Duration::from_secs(10), asked)
        .await
        .expect("the agent's call returns")
        .unwrap();
    assert_eq!(answer["answer"], "Yes — lock it with the same helper.");
    agent.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_and_signing_out_everywhere_ends_every_open_page() {
    let app = TestApp::spawn().await;
    let links = [
        link(&app, app.tenant).await,
        link(&app, app.tenant).await,
        link(&app, app.tenant).await,
    ];
    let mut browser = Browser::start(&app, "sign_out", json!({ "links": links })).await;
    let signed_out = browser.expect("SIGNED_OUT").await;
    // The signed-out cookie no longer opens anything, on the API either.
    let cookie = signed_out["cookie"].as_str().unwrap();
    let status = app
        .client
        .get(app.url("/api/v1/sessions"))
        .header("Cookie", format!("switchboard_session={cookie}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    browser.expect("DONE").await;
    browser.finish().await;
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM web_sessions WHERE tenant_id = $1 AND revoked_at IS NULL",
    )
    .bind(app.tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(open, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_used_and_unknown_links_sign_nobody_in() {
    let app = TestApp::spawn().await;
    let expired = link(&app, app.tenant).await;
    let token = expired.rsplit('/').next().unwrap();
    sqlx::query(
        "UPDATE login_links SET expires_at = now() - interval '1 minute' WHERE token_sha256 = $1",
    )
    .bind(switchboard::auth::api_keys::token_sha256(token))
    .execute(&app.db.pool)
    .await
    .unwrap();
    let used = link(&app, app.tenant).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let first_use = no_redirects
        .post(&used)
        .header("Origin", app.url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(first_use.status(), 303);
    let unknown = app.url("/login/not-a-link-anyone-made");
    let mut browser = Browser::start(
        &app,
        "bad_links",
        json!({"links": {"expired": expired, "used": used, "unknown": unknown}}),
    )
    .await;
    let seen = browser.expect("DONE").await;
    browser.finish().await;
    assert_eq!(seen["expired"]["status"], 410, "{seen}");
    assert!(
        seen["expired"]["text"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{seen}"
    );
    assert_eq!(seen["used"]["status"], 410, "{seen}");
    assert!(
        seen["used"]["text"]
            .as_str()
            .unwrap()
            .contains("used already"),
        "{seen}"
    );
    assert_eq!(seen["unknown"]["status"], 404, "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_session_page_is_a_404_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let other = Uuid::new_v4();
    let theirs = Uuid::new_v4();
    let other_key = app.key(other, switchboard::commands::Scope::Agent).await;
    let response = app
        .client
        .post(app.url("/api/v1/messages/agent"))
        .bearer_auth(other_key)
        .json(&json!({"agent_instance_id": theirs, "agent_type": "x", "content": "private plans"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let mut browser = Browser::start(
        &app,
        "other_tenant",
        json!({"link": link(&app, app.tenant).await, "theirs": theirs, "missing": Uuid::new_v4()}),
    )
    .await;
    let seen = browser.expect("DONE").await;
    browser.finish().await;
    assert_eq!(seen["theirs"], 404, "{seen}");
    assert_eq!(seen["missing"], 404, "{seen}");
    assert_eq!(seen["same"], true, "{seen}");
    assert!(!seen["text"].as_str().unwrap().contains("private plans"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_text_that_tries_to_be_markup_or_script_shows_as_harmless_text() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let probes = [
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "<img src=x onerror=\"window.xss=1\"> <script>window.xss=2</script>",
        "<a href=\"javascript:window.xss=3\">click</a> ![i](javascript:window.xss=4)",
        "<iframe src=\"javascript:alert(5)\"></iframe> <svg onload=alert(6)>",
    ];
    let mut browser = Browser::start(
        &app,
        "xss",
        json!({"link": link(&app, app.tenant).await, "session": session, "marker": "probe-end"}),
    )
    .await;
    browser.expect("READY").await;
    // Live: the probes arrive while the inbox is open, as steps and as a question.
    for (n, probe) in probes.iter().enumerate() {
        post(
            &app,
            "/api/v1/messages/agent",
            json!({"agent_instance_id": session, "agent_type": "<b>bold</b>",
                   "content": probe, "requires_user_input": n == 0}),
        )
        .await;
    }
    post(
        &app,
        "/api/v1/messages/agent",
        json!({"agent_instance_id": session, "content": "probe-end <img src=x onerror=alert(7)>",
               "requires_user_input": true}),
    )
    .await;
    let found = browser.expect("DONE").await;
    browser.finish().await;
    assert_eq!(found["images"], 0, "{found}");
    assert_eq!(found["scripts"], 0, "{found}");
    assert_eq!(found["javascriptLinks"], 0, "{found}");
    assert_eq!(found["flag"], 0, "{found}");
    let text = found["text"].as_str().unwrap();
    assert!(text.contains("<img src=x onerror=alert(1)>"), "{text}");
    assert!(text.contains("<script>window.xss=2</script>"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_while_the_inbox_is_in_the_background_shows_a_notification_for_its_session() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    post(
        &app,
        "/api/v1/messages/agent",
        json!({"agent_instance_id": session, "agent_type": "claude-code", "content": "Starting"}),
    )
    .await;
    let mut browser = Browser::start(
        &app,
        "notification",
        json!({"link": link(&app, app.tenant).await}),
    )
    .await;
    browser.expect("READY").await;
    post(
        &app,
        "/api/v1/messages/agent",
        json!({"agent_instance_id": session, "content": "May I run the migration on production?",
               "requires_user_input": true}),
    )
    .await;
    let shown = browser.expect("DONE").await;
    browser.finish().await;
    let shown = shown.as_array().unwrap();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0]["body"], "May I run the migration on production?");
    assert_eq!(shown[0]["tag"], format!("question-{session}"));
    assert_eq!(shown[0]["url"], app.url(&format!("/sessions/{session}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_settings_page_a_person_adds_tests_and_removes_channels_and_sees_failures() {
    // Retries within a fraction of a second, given up after one: failures show at once. The
    // public URL is the server's own, so the pushes' answer buttons are the worker's to press.
    let app = TestApp::spawn_public(Config {
        notify: NotifyConfig {
            allow_private: true,
            retry: RetrySchedule::parse("200ms", "1s").unwrap(),
            lease: Duration::from_secs(3),
            request_timeout: Duration::from_secs(2),
            ..NotifyConfig::default()
        },
        ..Config::default()
    })
    .await;
    common::create_user(&app.log, app.tenant).await;
    let mut webhook = Receiver::webhook(&[]).await;
    let mut refusing = Receiver::webhook(&["--fail-first", "1000"]).await;
    let vapid: Value = app.get_json("/api/v1/notifications/vapid-public-key").await;
    let vapid_key = vapid["public_key"].as_str().unwrap().to_owned();
    let mut push = Receiver::start(&["push", "--vapid-key", &vapid_key]).await;
    let session = Uuid::new_v4();
    post(
        &app,
        "/api/v1/messages/agent",
        json!({"agent_instance_id": session, "agent_type": "claude-code", "content": "Starting"}),
    )
    .await;
    let mut browser = Browser::start(
        &app,
        "settings",
        json!({
            "link": link(&app, app.tenant).await,
            "webhook": webhook.url(),
            "refusing": refusing.url(),
            "subscription": push.ready["subscription"],
            "screenshots": screenshots(),
        }),
    )
    .await;

    // The secret the page showed is the one deliveries are signed with.
    let secret = browser.expect("SECRET").await;
    webhook.secret(secret["secret"].as_str().unwrap()).await;
    // The page in front of the person says so: push would wait for it.
    let present: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM inbox_presence WHERE tenant_id = $1 AND focused_until > now())",
    )
    .bind(app.tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(present, "the focused settings page reports its presence");
    browser.tell("TOLD", json!({})).await;
    let test = webhook.next("WEBHOOK").await;
    assert_eq!(test["verified"], true, "{test}");
    assert_eq!(test["payload"]["type"], "test", "{test}");
    for n in 1..=2 {
        let refused = refusing.next("WEBHOOK").await;
        assert_eq!(refused["status"], 500, "attempt {n}: {refused}");
    }

    let on = browser.expect("PUSH_ON").await;
    assert_eq!(
        on["key"],
        vapid_key.as_str(),
        "subscribed with the server's key: {on}"
    );
    assert!(
        on["notice"]
            .as_str()
            .unwrap()
            .contains("Notifications to one of your channels are failing"),
        "{on}"
    );
    assert!(on["failure"].as_str().unwrap().contains("500"), "{on}");
    assert!(on["attempts"].as_u64().unwrap() >= 2, "{on}");
    // The form's one saved change is in the log (the refused ones changed nothing).
    let changes: Vec<Value> = sqlx::query_scalar(
        "SELECT data::jsonb FROM events WHERE tenant_id = $1
         AND event_type = 'notification_policy_changed' ORDER BY seq",
    )
    .bind(app.tenant)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let policy = &changes[0]["policy"];
    assert_eq!(policy["presence"], false, "{policy}");
    assert_eq!(policy["escalate_after_seconds"]["email"], 600, "{policy}");
    assert_eq!(policy["notify"]["failure"]["email"], true, "{policy}");
    assert_eq!(policy["quiet_hours"], Value::Null, "{policy}");

    // A question reaches the webhook and, encrypted, the device's subscription.
    let asked = post(
        &app,
        "/api/v1/messages/agent",
        json!({"agent_instance_id": session, "content": "May I drop the old index?",
               "requires_user_input": true}),
    )
    .await;
    let question = webhook.next("WEBHOOK").await;
    assert_eq!(question["verified"], true, "{question}");
    assert_eq!(question["payload"]["type"], "question.asked", "{question}");
    let pushed = push.next("PUSH").await;
    assert_eq!(
        pushed["payload"]["message_id"], asked["message_id"],
        "{pushed}"
    );
    browser.tell("PUSH", pushed["payload"].clone()).await;

    let done = browser.expect("SHOWN").await;
    let shown = done["notifications"].as_array().unwrap();
    assert_eq!(shown.len(), 1, "{done}");
    assert_eq!(shown[0]["title"], "claude-code asks", "{done}");
    assert_eq!(shown[0]["body"], "May I drop the old index?", "{done}");
    assert_eq!(shown[0]["tag"], format!("question-{session}"), "{done}");
    assert_eq!(
        shown[0]["url"],
        app.url(&format!("/sessions/{session}")),
        "{done}"
    );

    // An approval (in another session) is pushed with its buttons; Allow answers it.
    let deploying = Uuid::new_v4();
    let approval = post(
        &app,
        "/api/v1/messages/agent",
        json!({"agent_instance_id": deploying, "agent_type": "claude-code",
               "content": "May I run make deploy?", "requires_user_input": true,
               "approval": {"tool_name": "Bash", "input": {"command": "make deploy"}}}),
    )
    .await;
    let pushed = push.next("PUSH").await;
    assert_eq!(pushed["payload"]["message_id"], approval["message_id"]);
    browser.tell("PUSH", pushed["payload"].clone()).await;
    let pressed = browser.expect("PRESSED").await;
    assert_eq!(pressed["buttons"], json!(["Allow", "Deny"]), "{pressed}");
    assert_eq!(
        pressed["pressed"]["after"], pressed["pressed"]["before"],
        "no page opened: {pressed}"
    );
    let question = approval["message_id"].as_str().unwrap();
    let mut answered = Value::Null;
    for _ in 0..100 {
        let waited: Value = app
            .get_json(&format!(
                "/api/v1/messages/pending?agent_instance_id={deploying}&question_id={question}"
            ))
            .await;
        answered = waited["messages"][0]["content"].clone();
        if !answered.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, "Allow", "the agent receives the press");
    assert_eq!(answered_via(&app).await, "push action");
    browser.expect("DONE").await;
    browser.finish().await;

    // What is left: the refusing webhook; the removals are facts in the log.
    let channels: Value = app.get_json("/api/v1/notifications/channels").await;
    let left: Vec<&str> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["description"].as_str().unwrap())
        .collect();
    let refusing_origin = refusing.url().rsplit_once("/hooks").unwrap().0.to_owned();
    assert_eq!(left, [refusing_origin.as_str()], "{channels}");
    let removed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE tenant_id = $1
         AND event_type = 'notification_channel_removed'",
    )
    .bind(app.tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(removed, 2, "the device's push channel and the webhook");
}

/// The agent's decisions, as the person makes them in the browser: an option pressed, a
/// command edited then allowed, a file edit denied with a reason, another tool allowed.
async fn decisions_in_the_browser(phone: bool) {
    let app = TestApp::spawn().await;
    let agent = agent(&app).await;
    let started = call(
        &agent,
        "log_step",
        json!({"step_description": "Cleaning up the build before the release"}),
    )
    .await;
    let session = started["agent_instance_id"].as_str().unwrap().to_owned();
    let browser = Browser::start(
        &app,
        "decide",
        json!({
            "link": link(&app, app.tenant).await,
            "session": session,
            "phone": phone,
            "option": "Squash",
            "command": "rm -rf build && cargo build --release",
            "edited_command": "rm -rf build/tmp && cargo build --release",
            "old_line": "fn open(path: &Path)",
            "new_line": "fn open(path: &Path, timeout: Duration)",
            "reason": "Keep the old signature; add open_with_timeout instead",
            "other_tool_text": "https://docs.rs/tokio",
            "screenshots": screenshots(),
        }),
    )
    .await;
    let asked = async {
        let merge = call(
            &agent,
            "ask_question",
            json!({"agent_instance_id": session, "question_text": "How should I merge the branch?",
                   "options": ["Squash", "Rebase", "Merge commit"]}),
        )
        .await;
        let mut decisions = Vec::new();
        for (tool, input) in [
            (
                "Bash",
                json!({"command": "rm -rf build && cargo build --release",
                            "description": "Clean build for the release"}),
            ),
            (
                "Edit",
                json!({"file_path": "/home/me/app/src/storage.rs",
                            "old_string": "pub fn open(path: &Path) -> Result<Storage> {",
                            "new_string": "pub fn open(path: &Path, timeout: Duration) -> Result<Storage> {"}),
            ),
            (
                "WebFetch",
                json!({"url": "https://docs.rs/tokio", "prompt": "How do timeouts work?"}),
            ),
        ] {
            let decided = call(
                &agent,
                "permission_prompt",
                json!({"agent_instance_id": session, "tool_name": tool, "input": input}),
            )
            .await;
            decisions.push(decided["decision"].clone());
        }
        (merge, decisions)
    };
    let ((merge, decisions), ()) = tokio::join!(asked, browser.finish());
    assert_eq!(merge["chosen_option"], "Squash");
    assert_eq!(
        decisions,
        [
            json!({"behavior": "allow",
                   "updatedInput": {"command": "rm -rf build/tmp && cargo build --release"}}),
            json!({"behavior": "deny",
                   "message": "Keep the old signature; add open_with_timeout instead"}),
            json!({"behavior": "allow",
                   "updatedInput": {"url": "https://docs.rs/tokio", "prompt": "How do timeouts work?"}}),
        ]
    );
    // The log says who decided: the person's web session, on every decision.
    let deciders: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT metadata->>'web_session' FROM events
         WHERE tenant_id = $1 AND event_type = 'user_message' ORDER BY seq",
    )
    .bind(app.tenant)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(deciders.len(), 4);
    assert!(deciders.iter().all(Option::is_some), "{deciders:?}");
    agent.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_are_buttons_and_approvals_are_allowed_edited_or_denied_in_the_browser() {
    decisions_in_the_browser(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_options_and_approvals_fit_the_screen_and_work_by_touch() {
    decisions_in_the_browser(true).await;
}

/// Several requests open at once in one session, as a coding agent makes them: each answered on
/// its own in the browser, in any order, and each waiting agent gets its own answer; one
/// withdrawn by its agent, one raced by two tabs, one answered from the reply box, the rest
/// withdrawn when the session ends, all of it live.
async fn questions_in_the_browser(phone: bool) {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let ask = |body: Value| {
        let app = &app;
        async move {
            let mut body = body;
            body["agent_instance_id"] = json!(session);
            body["agent_type"] = json!("claude-code");
            body["requires_user_input"] = json!(true);
            let sent = post(app, "/api/v1/messages/agent", body).await;
            sent["message_id"].as_str().unwrap().to_owned()
        }
    };
    let bash = |command: &str, extra: Value| {
        let mut input = json!({"command": command});
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"content": format!("May I run {command}?"),
               "approval": {"tool_name": "Bash", "input": input}})
    };
    post(
        &app,
        "/api/v1/messages/agent",
        json!({"agent_instance_id": session, "agent_type": "claude-code",
               "content": format!("Release notes so far:\n\n{}", "- fixed a thing\n".repeat(40)),
               "session": {"title": "Release 2026.12", "project": "shop", "branch": "release",
                           "host": "build-7", "cwd": "/home/me/shop"}}),
    )
    .await;
    let withdrawn = ask(bash("cargo publish --dry-run", json!({}))).await;
    let older = ask(bash("ls build", json!({}))).await;
    let newer = ask(bash(
        "git push --force origin main",
        json!({"dangerouslyDisableSandbox": true, "ticket": "OPS-12"}),
    ))
    .await;
    let options = ask(json!({"content": "Which colour for the banner?",
                             "options": ["Red", "Green"]}))
    .await;
    let plain = ask(json!({"content": "Which database should the staging copy use?"})).await;
    let last = ask(json!({"content": "Anything else before I tag it?"})).await;
    let wait = |question: &str| {
        let request = app.get(&format!(
            "/api/v1/messages/pending?agent_instance_id={session}&question_id={question}&wait=120"
        ));
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        })
    };
    let (wait_older, wait_newer) = (wait(&older), wait(&newer));
    // The browser reaches the server through a proxy that can drop its connections.
    let proxy =
        common::cutting_proxy::CuttingProxy::start(app.address.trim_start_matches("http://")).await;
    let link = link(&app, app.tenant)
        .await
        .replace(&app.address, &proxy.address);
    let mut browser = Browser::start_at(
        &proxy.url("/"),
        "questions",
        json!({
            "link": link,
            "session": session,
            "phone": phone,
            "questions": {"older": older, "newer": newer, "withdrawn": withdrawn,
                          "options": options, "plain": plain, "last": last},
            "reason": "Never force-push main",
            "withdraw_reason": "nobody decided within 50 s",
            "plain_text": "Which database should the staging copy use?",
            "newest_text": "Anything else before I tag it?",
            "draft": "Use the nightly snapshot",
            "new_title": "Release 2026.12, tagged",
            "screenshots": screenshots(),
        }),
    )
    .await;

    browser.expect("ALLOWED_OLDER").await;
    let (status, got) = wait_older.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(got["messages"][0]["chosen_option"], "Allow", "{got}");
    assert!(
        !wait_newer.is_finished(),
        "the newer approval's waiter got an answer"
    );
    browser.tell("DENY_NEWER", json!({})).await;
    browser.expect("DENIED_NEWER").await;
    let (_, got) = wait_newer.await.unwrap();
    assert_eq!(got["messages"][0]["content"], "Never force-push main");
    assert!(got["messages"][0].get("chosen_option").is_none());

    post(
        &app,
        &format!("/api/v1/sessions/{session}/questions/{withdrawn}/withdraw"),
        json!({"reason": "nobody decided within 50 s"}),
    )
    .await;
    browser.tell("WITHDRAWN", json!({})).await;
    let raced = browser.expect("RACED").await;
    let errors: Vec<&str> = raced["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        errors
            .iter()
            .filter(|e| e.contains("already answered"))
            .count(),
        1,
        "one tab was told: {errors:?}"
    );
    let questions: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/questions"))
        .await;
    let by_id = |id: &str| questions.iter().find(|q| q["id"] == id).unwrap().clone();
    assert_eq!(by_id(&options)["status"], "answered");
    browser.tell("COMPOSE", json!({})).await;
    browser.expect("OFFLINE").await;
    proxy.cut_all();
    browser.expect("COMPOSED").await;
    let messages: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await;
    let answer = messages
        .iter()
        .find(|m| m["content"] == "Use the nightly snapshot")
        .expect("the reply was sent");
    assert_eq!(
        answer["question_id"], plain,
        "the reply box answered the plain question"
    );
    browser.expect("RENAMED").await;
    let renamed: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(renamed["title"], "Release 2026.12, tagged");
    let renamed_by: String = sqlx::query_scalar(
        "SELECT metadata->>'actor' FROM events WHERE tenant_id = $1
         AND event_type = 'session_described' ORDER BY seq DESC LIMIT 1",
    )
    .bind(app.tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(renamed_by, "user", "the log says the person renamed it");
    post(
        &app,
        "/api/v1/sessions/end",
        json!({"agent_instance_id": session}),
    )
    .await;
    browser.tell("ENDED", json!({})).await;
    browser.expect("DONE").await;
    browser.finish().await;
    let answers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type = 'user_message'",
    )
    .bind(app.tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        answers, 4,
        "allow, deny, one option, the reply: nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_questions_open_at_once_are_each_answered_on_their_own_in_the_browser() {
    questions_in_the_browser(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_several_open_questions_fit_and_close_live() {
    questions_in_the_browser(true).await;
}

/// A real Claude Code run (`tests/claude_code.rs` has its rules), watched and steered from the
/// inbox in Chromium: the session appears live, the approval is allowed there, "what next?" is
/// answered from the reply box and the run continues; then it exits.
async fn claude_code_in_the_browser(phone: bool) {
    use common::claude::{Machine, finished};
    use switchboard::bench::model::{Model, Request, bash, text};

    const PROMPT: &str = "Add a health check endpoint";
    const FINAL: &str = "Added `src/health.rs` with a `GET /health` route.\n\n- returns `200 ok`\n- no database call";
    const INSTRUCTION: &str = "Now add a test for it";
    let app = TestApp::spawn().await;
    // Four quick looks around (one fails), a change that needs leave, a summary; then, told
    // what next, one more step.
    let model = Model::start(|r: &Request| {
        if !r.is_agent() {
            return vec![text("ok")].into();
        }
        if r.last_user_text().contains(INSTRUCTION) {
            return vec![bash("echo 'test added'")].into();
        }
        let done = r.all_tool_results().len();
        if r.all_text().contains("test added") {
            return vec![text("The test is in `tests/health.rs`.")].into();
        }
        match done {
            0 => vec![bash("ls")].into(),
            1 => vec![bash("cat Cargo.toml")].into(),
            2 => vec![bash("pwd")].into(),
            3 => vec![bash("echo looking")].into(),
            4 => vec![bash("touch src/health.rs")].into(),
            _ => vec![text(FINAL)].into(),
        }
    })
    .await;
    let machine = Machine::new();
    std::fs::create_dir_all(machine.file("src")).unwrap();
    machine
        .setup(
            &app.address,
            &app.token,
            &["--permission-wait", "60s", "--stop-wait", "60s"],
        )
        .await;
    let link = link(&app, app.tenant).await;
    let mut browser = Browser::start(
        &app,
        "claude_code",
        json!({"link": link, "phone": phone, "title": PROMPT, "instruction": INSTRUCTION,
               "final_text": "Added src/health.rs", "screenshots": screenshots()}),
    )
    .await;
    let run = machine.claude(&model.url, &app.token, PROMPT, &[]);
    browser.expect("ALLOWED").await;
    browser.expect("INSTRUCTED").await;
    // The run goes on with the instruction; its next "what next?" nobody answers: the person
    // withdraws it, and Claude Code stops.
    let sessions: Vec<Value> = app.get_json("/api/v1/sessions").await;
    let session = sessions[0]["id"].as_str().unwrap().to_owned();
    let second = loop {
        let open: Vec<Value> = app
            .get_json(&format!("/api/v1/sessions/{session}/questions?status=open"))
            .await;
        if let Some(q) = open.into_iter().find(|q| q["content"] != FINAL) {
            break q;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(second["kind"], "next_instruction");
    post(
        &app,
        &format!(
            "/api/v1/sessions/{session}/questions/{}/withdraw",
            second["id"].as_str().unwrap()
        ),
        json!({"reason": "done for today"}),
    )
    .await;
    let done = finished(run, Duration::from_secs(120)).await;
    assert!(done.success, "{}{}", done.stdout, done.stderr);
    assert!(
        machine.file("src/health.rs").exists(),
        "allowed in the browser: ran"
    );
    assert!(
        model
            .agent_requests()
            .iter()
            .any(|r| Request(&r.body).last_user_text().contains(INSTRUCTION)),
        "the instruction typed in the browser reached the model"
    );
    browser.tell("EXITED", json!({})).await;
    let shown = browser.expect("DONE").await;
    assert!(shown["activity"].as_u64().unwrap() >= 6, "{shown}");
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claude_code_run_is_watched_approved_and_continued_in_the_browser() {
    claude_code_in_the_browser(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_a_claude_code_run_is_approved_and_continued() {
    claude_code_in_the_browser(true).await;
}

/// An email's answer link in the browser, on a phone and a desktop: it shows what was asked
/// and answers only when its button is pressed; the other answer's link then says how the
/// question closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_link_asks_before_it_answers_on_a_phone_and_a_desktop() {
    // The email a real SMTP server receives, opened in the browser; its links are followed.
    let smtp = Receiver::start(&["smtp"]).await;
    let app = TestApp::spawn_public(Config {
        notify: NotifyConfig {
            smtp: Some(
                switchboard::notify::email::Smtp::new(
                    smtp.ready["url"].as_str().unwrap(),
                    "Switchboard <switchboard@example.com>",
                    "localhost",
                    Duration::from_secs(5),
                )
                .unwrap(),
            ),
            ..NotifyConfig::default()
        },
        ..Config::default()
    })
    .await;
    let mut smtp = smtp;
    common::create_user(&app.log, app.tenant).await;
    post(
        &app,
        "/api/v1/notifications/channels",
        json!({"kind": "email", "to": "ada@example.com"}),
    )
    .await;
    let session = Uuid::new_v4();
    let sent = post(
        &app,
        "/api/v1/messages/agent",
        json!({"agent_instance_id": session, "agent_type": "claude-code",
               "content": "Ship release 2.0 to production?", "requires_user_input": true,
               "options": ["Ship it", "Wait"]}),
    )
    .await;
    let question: Uuid = sent["message_id"].as_str().unwrap().parse().unwrap();
    let mail = smtp.next("EMAIL").await;
    assert_eq!(
        mail["subject"], "claude-code asks: Ship release 2.0 to production?",
        "{mail}"
    );
    let mut browser = Browser::start(
        &app,
        "answer_link",
        json!({"email": mail["html"], "screenshots": screenshots()}),
    )
    .await;
    browser.expect("DONE").await;
    browser.finish().await;
    let waited: Value = app
        .get_json(&format!(
            "/api/v1/messages/pending?agent_instance_id={session}&question_id={question}"
        ))
        .await;
    assert_eq!(waited["messages"][0]["content"], "Ship it", "{waited}");
    assert_eq!(answered_via(&app).await, "email action");
}

/// An MCP host connects by OAuth with the official TypeScript client (2.x), its own OAuth code:
/// discovery from `/mcp`'s 401, the metadata, the client known by its metadata document (served
/// over https by a test CA the server trusts) or registered dynamically, PKCE; the person signs
/// in by a link and allows on the consent page in Chromium; the code exchange, tool calls, a
/// refresh and tool calls again; Settings lists the app and disconnects it, and its token is
/// refused from then on.
async fn an_mcp_host_connects_by_oauth(mode: &str) {
    let document = common::https::serve_document("/oauth/client.json").await;
    // The metadata document is served on loopback, by a CA of the test's own.
    let mut config = Config {
        oauth_allow_private: true,
        ..Config::default()
    };
    config.notify.extra_roots = std::sync::Arc::new(vec![document.ca.clone()]);
    let app = TestApp::spawn_public(config).await;
    common::create_user(&app.log, app.tenant).await;
    let mut command = common::node_with_mcp_client("mcp_oauth.cjs");
    command.arg(mode).arg(app.url("/mcp"));
    let mut host = Browser::attach(command);
    let callback = host.expect("CALLBACK").await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (name, vouched_by) = if mode == "cimd" {
        document.set(
            json!({
                "client_id": document.url,
                "client_name": "Test host (metadata document)",
                "redirect_uris": [callback],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none"
            })
            .to_string(),
        );
        host.tell("METADATA", json!({ "url": document.url })).await;
        ("Test host (metadata document)", "127.0.0.1")
    } else {
        ("Test host (registered)", "Not verified")
    };
    let authorize = host.expect("AUTHORIZE").await;
    let mut browser = Browser::start(
        &app,
        "connect-app",
        json!({
            "link": link(&app, app.tenant).await,
            "app": name,
            "vouched_by": vouched_by,
            "redirect": callback,
            "suffix": if mode == "cimd" { "" } else { "-registered" },
            "screenshots": screenshots(),
        }),
    )
    .await;
    browser.tell("AUTHORIZE", authorize).await;
    let allowed = browser.expect("ALLOWED").await;
    assert!(
        allowed["url"].as_str().unwrap().contains("code="),
        "{allowed}"
    );
    let connected = host.expect("CONNECTED").await;
    assert!(
        connected["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("ask_question"))
    );
    let refreshed = host.expect("REFRESHED").await;
    host.finish().await;
    let listed: Value = app.get_json("/api/v1/apps").await;
    assert_eq!(listed["apps"][0]["name"], name, "{listed}");

    browser.tell("CONNECTED", json!({})).await;
    browser.expect("DISCONNECTED").await;
    browser.finish().await;
    for token in [&connected["access_token"], &refreshed["access_token"]] {
        let status = app
            .client
            .post(app.url("/mcp"))
            .bearer_auth(token.as_str().unwrap())
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, http::StatusCode::UNAUTHORIZED);
    }
    let events: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, data::jsonb FROM events WHERE tenant_id = $1
         AND event_type LIKE 'app_%' ORDER BY seq",
    )
    .bind(app.tenant)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let kinds: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["app_connected", "app_disconnected"]);
    assert_eq!(events[0].1["client_name"], name);
    if mode == "cimd" {
        assert_eq!(events[0].1["client_id"], document.url);
        assert!(document.fetched() >= 1, "the metadata document was fetched");
    }
    // What the app said reached the session it opened.
    let sessions: Value = app.get_json("/api/v1/sessions").await;
    assert_eq!(sessions.as_array().map(Vec::len), Some(2), "{sessions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_host_known_by_its_metadata_document_connects_by_oauth() {
    an_mcp_host_connects_by_oauth("cimd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_host_that_registers_itself_connects_by_oauth() {
    an_mcp_host_connects_by_oauth("dcr").await;
}
