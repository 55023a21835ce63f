//! Decisions: questions with options, tool approvals and edited input, through REST and the
//! `switchboard hook claude-code` command, and what the log keeps of them (who decided what).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{TestApp, switchboard};
use serde_json::{Value, json};
use switchboard::commands::Scope;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

async fn events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn ask(app: &TestApp, session: Uuid, extra: Value) -> Uuid {
    let mut body = json!({"agent_instance_id": session, "agent_type": "t",
                          "content": "Which one?", "requires_user_input": true});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, sent) = post(app, &app.token, "/api/v1/messages/agent", body).await;
    assert_eq!(status, 200, "{sent}");
    sent["message_id"].as_str().unwrap().parse().unwrap()
}

async fn messages(app: &TestApp, session: Uuid) -> Vec<Value> {
    app.get_json(&format!("/api/v1/sessions/{session}/messages"))
        .await
}

fn keys(message: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = message
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn an_answer_that_equals_an_option_records_the_choice_and_old_clients_see_nothing_new() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let question = ask(&app, session, json!({"options": ["Red", "Green"]})).await;
    let (status, sent) = post(
        &app,
        &app.token,
        "/api/v1/messages/user",
        json!({"agent_instance_id": session, "content": "Green"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sent["chosen_option"], "Green");
    // A second message is conversation, not the answer: it chooses nothing.
    let (_, later) = post(
        &app,
        &app.token,
        "/api/v1/messages/user",
        json!({"agent_instance_id": session, "content": "Red"}),
    )
    .await;
    assert!(later.get("chosen_option").is_none(), "{later}");

    let said = messages(&app, session).await;
    assert_eq!(said[0]["id"], question.to_string());
    assert_eq!(said[0]["options"], json!(["Red", "Green"]));
    assert_eq!(said[1]["chosen_option"], "Green");
    // Messages without decisions keep exactly the five keys the Python SDK accepts.
    let five = [
        "content",
        "created_at",
        "id",
        "requires_user_input",
        "sender_type",
    ];
    assert_eq!(keys(&said[2]), five);

    // A question without options chooses nothing, whatever the answer says; the answer
    // names its question.
    let plain = Uuid::new_v4();
    let asked = ask(&app, plain, json!({})).await;
    post(
        &app,
        &app.token,
        "/api/v1/messages/user",
        json!({"agent_instance_id": plain, "content": "Green", "mark_as_read": false}),
    )
    .await;
    let said = messages(&app, plain).await;
    assert_eq!(keys(&said[0]), five);
    let mut answer_keys = five.to_vec();
    answer_keys.push("question_id");
    answer_keys.sort_unstable();
    assert_eq!(keys(&said[1]), answer_keys);
    assert_eq!(said[1]["question_id"], asked.to_string());
    // Where the omnara SDK reads messages (`Message(**m)` refuses keys it does not know),
    // they keep exactly the five.
    let pending: Value = app
        .get_json(&format!(
            "/api/v1/messages/pending?agent_instance_id={plain}&last_read_message_id={asked}"
        ))
        .await;
    assert_eq!(pending["messages"].as_array().unwrap().len(), 1);
    assert_eq!(keys(&pending["messages"][0]), five);
}

#[tokio::test]
async fn bad_choices_and_misplaced_edits_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    ask(&app, session, json!({})).await;
    let approval_session = Uuid::new_v4();
    ask(
        &app,
        approval_session,
        json!({"approval": {"tool_name": "Bash", "input": {"command": "make"}}}),
    )
    .await;
    let before = events(&app).await;
    let many: Vec<String> = (0..21).map(|n| format!("option {n}")).collect();
    let agent = |extra: Value| {
        let mut body = json!({"agent_instance_id": session, "content": "Pick"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let refused = [
        ("options on a step", agent(json!({"options": ["A", "B"]}))),
        (
            "an approval on a step",
            agent(json!({"approval": {"tool_name": "Bash", "input": {}}})),
        ),
        (
            "too many",
            agent(json!({"requires_user_input": true, "options": many})),
        ),
        (
            "none",
            agent(json!({"requires_user_input": true, "options": []})),
        ),
        (
            "duplicates",
            agent(json!({"requires_user_input": true, "options": ["A", "A"]})),
        ),
        (
            "NUL",
            agent(json!({"requires_user_input": true, "options": ["A\u{0}"]})),
        ),
        (
            "blank",
            agent(json!({"requires_user_input": true, "options": ["A", "  "]})),
        ),
        (
            "too long",
            agent(json!({"requires_user_input": true, "options": ["x".repeat(201)]})),
        ),
        (
            "not strings",
            agent(json!({"requires_user_input": true, "options": [1, 2]})),
        ),
        (
            "options and an approval",
            agent(json!({"requires_user_input": true, "options": ["A"],
                         "approval": {"tool_name": "Bash", "input": {}}})),
        ),
        (
            "an approval without a tool",
            agent(json!({"requires_user_input": true,
                         "approval": {"tool_name": "", "input": {}}})),
        ),
        (
            "an approval whose input is not an object",
            agent(json!({"requires_user_input": true,
                         "approval": {"tool_name": "Bash", "input": "ls"}})),
        ),
    ];
    for (name, body) in refused {
        let (status, error) = post(&app, &app.token, "/api/v1/messages/agent", body).await;
        assert_eq!(status, 422, "{name}: {error}");
        assert!(error["detail"].as_str().is_some(), "{name}: {error}");
    }
    let user = |session: Uuid, content: &str, input: Value| json!({"agent_instance_id": session, "content": content, "updated_input": input});
    let misplaced = [
        (
            "an edit answering a plain question",
            user(session, "Allow", json!({"command": "ls"})),
        ),
        (
            "an edit that denies",
            user(approval_session, "Deny", json!({"command": "ls"})),
        ),
        (
            "an edit that is not an object",
            user(approval_session, "Allow", json!(["ls"])),
        ),
        (
            "an edit with NUL",
            user(approval_session, "Allow", json!({"command": "l\u{0}s"})),
        ),
    ];
    for (name, body) in misplaced {
        let (status, error) = post(&app, &app.token, "/api/v1/messages/user", body).await;
        assert_eq!(status, 422, "{name}: {error}");
    }
    assert_eq!(events(&app).await, before, "nothing was appended");
}

#[tokio::test]
async fn another_tenant_cannot_decide_and_every_decision_names_who_made_it() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let approval = json!({"tool_name": "Bash", "input": {"command": "rm -rf build"},
                          "tool_use_id": "toolu_9"});
    let question = ask(&app, session, json!({"approval": approval})).await;
    let said = messages(&app, session).await;
    assert_eq!(said[0]["options"], json!(["Allow", "Deny"]));
    assert_eq!(said[0]["approval"], approval);

    // Another tenant's decision: 404 exactly as for a missing session, nothing appended.
    let stranger = app.key(Uuid::new_v4(), Scope::Agent).await;
    let before = events(&app).await;
    for body in [
        json!({"agent_instance_id": session, "content": "Allow"}),
        json!({"agent_instance_id": session, "content": "Allow",
               "updated_input": {"command": "rm -rf /"}}),
    ] {
        let (status, error) = post(&app, &stranger, "/api/v1/messages/user", body).await;
        assert_eq!(status, 404, "{error}");
        assert_eq!(error["detail"], format!("session {session} not found"));
    }
    assert_eq!(events(&app).await, before);

    // The person edits, then allows: one event that says who, what and with which input.
    let (status, sent) = post(
        &app,
        &app.token,
        "/api/v1/messages/user",
        json!({"agent_instance_id": session, "content": "Allow",
               "updated_input": {"command": "rm -rf build/tmp"}}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let export = app
        .get("/api/v1/events/export")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let decision: Value = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event_id"] == sent["message_id"])
        .expect("the decision is exported");
    assert_eq!(decision["type"], "user_message", "{decision}");
    assert_eq!(decision["data"]["chosen_option"], "Allow");
    assert_eq!(
        decision["data"]["updated_input"],
        json!({"command": "rm -rf build/tmp"})
    );
    let key_id: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM api_keys WHERE tenant_id = $1 LIMIT 1")
            .bind(app.tenant)
            .fetch_one(&app.db.pool)
            .await
            .ok();
    assert_eq!(decision["metadata"]["key_id"], json!(key_id), "{decision}");
    assert_eq!(decision["metadata"]["actor"], "user");
    let asked = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event_id"] == question.to_string())
        .unwrap();
    assert_eq!(asked["data"]["approval"], approval);

    // Rebuilding the read models from the log reproduces them.
    let check = switchboard(&app.db, &["projections", "rebuild", "--check"], None).await;
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// `switchboard hook claude-code` fed one hook event; started, not awaited.
fn hook(app: &TestApp, event: &Value, extra: &[&str]) -> tokio::process::Child {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "hook",
            "claude-code",
            "--url",
            &app.address,
            "--api-key",
            &app.token,
        ])
        .args(extra)
        .env_remove("SWITCHBOARD_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = serde_json::to_vec(event).unwrap();
    tokio::spawn(async move {
        stdin.write_all(&bytes).await.unwrap();
    });
    child
}

async fn finished(child: tokio::process::Child) -> (bool, String) {
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the hook finishes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// The documented input of a hook event, as Claude Code sends it.
fn event(session: &str, name: &str, fields: Value) -> Value {
    let mut event = json!({
        "session_id": session,
        "transcript_path": "/home/me/.claude/projects/app/transcript.jsonl",
        "cwd": "/home/me/app",
        "permission_mode": "default",
        "hook_event_name": name,
    });
    event
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    event
}

/// The session waiting for a decision (there is one).
async fn waiting_question(app: &TestApp) -> (Uuid, Value) {
    for _ in 0..200 {
        let sessions: Vec<Value> = app.get_json("/api/v1/sessions?status=AWAITING_INPUT").await;
        if let Some(s) = sessions.first() {
            let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
            let said = messages(app, id).await;
            return (id, said.last().unwrap().clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no question was asked");
}

#[tokio::test]
async fn the_claude_code_hook_asks_the_person_and_logs_the_session() {
    let app = TestApp::spawn().await;
    let claude_session = "2f0d4a4c-claude-session";

    let (_, out) = finished(hook(
        &app,
        &event(claude_session, "SessionStart", json!({"source": "startup"})),
        &[],
    ))
    .await;
    assert_eq!(out, "", "session events decide nothing");

    // PermissionRequest: the person edits the command, then allows it.
    let request = event(
        claude_session,
        "PermissionRequest",
        json!({"tool_name": "Bash", "tool_input": {"command": "npm test", "description": "Run the tests"}}),
    );
    let asking = hook(&app, &request, &["--timeout", "60s"]);
    let (session, question) = waiting_question(&app).await;
    assert_eq!(
        question["approval"],
        json!({"tool_name": "Bash", "input": {"command": "npm test", "description": "Run the tests"}})
    );
    let (status, _) = post(
        &app,
        &app.token,
        "/api/v1/messages/user",
        json!({"agent_instance_id": session, "content": "Allow",
               "updated_input": {"command": "npm test -- --quiet"}}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, out) = finished(asking).await;
    let decided: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        decided,
        json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
               "decision": {"behavior": "allow", "updatedInput": {"command": "npm test -- --quiet"}}}})
    );

    // Denied with a reason.
    let asking = hook(&app, &request, &[]);
    let (again, _) = waiting_question(&app).await;
    assert_eq!(again, session, "every hook call lands in the same session");
    post(
        &app,
        &app.token,
        "/api/v1/messages/user",
        json!({"agent_instance_id": session, "content": "Not now"}),
    )
    .await;
    let (_, out) = finished(asking).await;
    let decided: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        decided["hookSpecificOutput"]["decision"],
        json!({"behavior": "deny", "message": "Not now"})
    );

    // Nobody answers: nothing that decides (Claude Code asks in its terminal) ...
    let (_, out) = finished(hook(&app, &request, &["--timeout", "1s"])).await;
    assert_eq!(out, "");
    // ... or, when told to, a denial.
    let (_, out) = finished(hook(
        &app,
        &request,
        &["--timeout", "1s", "--on-timeout", "deny"],
    ))
    .await;
    let decided: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        decided["hookSpecificOutput"]["decision"]["behavior"],
        "deny"
    );

    for (name, fields) in [
        (
            "Notification",
            json!({"message": "Claude needs your permission to use Bash"}),
        ),
        ("Stop", json!({"stop_hook_active": false})),
        ("SessionEnd", json!({"reason": "prompt_input_exit"})),
    ] {
        let (_, out) = finished(hook(&app, &event(claude_session, name, fields), &[])).await;
        assert_eq!(out, "", "{name}");
    }
    let said: Vec<String> = messages(&app, session)
        .await
        .iter()
        .filter(|m| m["sender_type"] == "AGENT" && m["requires_user_input"] == false)
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        said,
        [
            "Claude Code session started (startup) in /home/me/app",
            "Claude Code: Claude needs your permission to use Bash",
            "Claude Code finished its turn",
            "Claude Code session ended (prompt_input_exit)",
        ]
    );
    let ended: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(ended["status"], "COMPLETED");
    let sessions: Vec<Value> = app.get_json("/api/v1/sessions").await;
    assert_eq!(
        sessions.len(),
        1,
        "one Claude Code session, one Switchboard session"
    );

    // Not a hook event: a clear failure, nothing decided.
    let mut bad = hook(&app, &json!({"hello": 1}), &[]);
    let status = bad.wait().await.unwrap();
    assert!(!status.success());
}

/// What the person sent is never dropped by a hook event: handed to Claude Code where the
/// event's output can carry it, else left unread for the next event that can.
#[tokio::test]
async fn the_hook_hands_the_persons_messages_to_claude_code_or_leaves_them_unread() {
    let app = TestApp::spawn().await;
    let claude = "7d1c-steered-session";
    let run = |name: &'static str, fields: Value| {
        let app = &app;
        async move {
            finished(hook(app, &event(claude, name, fields), &[]))
                .await
                .1
        }
    };
    assert_eq!(
        run("Notification", json!({"message": "Claude is waiting"})).await,
        ""
    );
    let sessions: Vec<Value> = app.get_json("/api/v1/sessions").await;
    let session: Uuid = sessions[0]["id"].as_str().unwrap().parse().unwrap();
    let tell = |text: &'static str| {
        let app = &app;
        async move {
            let (status, _) = post(
                app,
                &app.token,
                "/api/v1/messages/user",
                json!({"agent_instance_id": session, "content": text, "mark_as_read": false,
                       "question_id": null}),
            )
            .await;
            assert_eq!(status, 200);
        }
    };
    let unread = || {
        let app = &app;
        async move {
            let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
            row["unread_count"].as_i64().unwrap()
        }
    };
    let context = |out: &str, event: &str| -> String {
        let out: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        assert_eq!(out["hookSpecificOutput"]["hookEventName"], event, "{out}");
        out["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Events whose output cannot carry messages leave them unread.
    tell("STOP: do not touch prod").await;
    assert_eq!(
        run("Notification", json!({"message": "Claude is waiting"})).await,
        ""
    );
    assert_eq!(
        unread().await,
        1,
        "a notification does not consume the message"
    );
    assert_eq!(run("PreToolUse", json!({"tool_name": "Bash"})).await, "");
    assert_eq!(unread().await, 1);

    // Those that can hand them over do, once.
    let out = run("SessionStart", json!({"source": "resume"})).await;
    assert!(context(&out, "SessionStart").contains("STOP: do not touch prod"));
    assert_eq!(unread().await, 0);
    tell("use the staging database").await;
    let out = run(
        "UserPromptSubmit",
        json!({"prompt": "fix the login bug", "prompt_id": "p1"}),
    )
    .await;
    assert!(context(&out, "UserPromptSubmit").contains("use the staging database"));
    assert_eq!(
        run("UserPromptSubmit", json!({"prompt": "again"})).await,
        ""
    );
    tell("and add a test").await;
    let out = run(
        "PostToolUse",
        json!({"tool_name": "Bash", "tool_input": {"command": "cargo test"},
               "tool_response": {"stdout": "ok", "stderr": "", "interrupted": false}}),
    )
    .await;
    assert!(context(&out, "PostToolUse").contains("and add a test"));
    tell("one more thing: update the changelog").await;
    let out = run(
        "Stop",
        json!({"stop_hook_active": false, "last_assistant_message": "Done."}),
    )
    .await;
    let blocked: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(blocked["decision"], "block", "{blocked}");
    assert!(
        blocked["reason"]
            .as_str()
            .unwrap()
            .contains("one more thing: update the changelog")
    );
    // Nothing new: Claude stops.
    assert_eq!(
        run("Stop", json!({"stop_hook_active": true})).await,
        "",
        "no block without a message"
    );

    // A permission request does not take them either; nobody decides, so it withdraws its
    // question, saying why, and the message waits.
    tell("careful with migrations").await;
    let request = event(
        claude,
        "PermissionRequest",
        json!({"tool_name": "Bash", "tool_input": {"command": "make migrate"}}),
    );
    let (_, out) = finished(hook(&app, &request, &["--timeout", "1s"])).await;
    assert_eq!(out, "");
    assert_eq!(unread().await, 1);
    let (_, out) = finished(hook(
        &app,
        &request,
        &["--timeout", "1s", "--on-timeout", "deny"],
    ))
    .await;
    let denied: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(denied["hookSpecificOutput"]["decision"]["behavior"], "deny");
    let questions: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/questions"))
        .await;
    let reasons: Vec<&str> = questions
        .iter()
        .map(|q| {
            assert_eq!(q["status"], "withdrawn", "{q}");
            assert_eq!(q["closed_by"], "agent");
            assert!(
                q["expires_at"].is_string(),
                "the server would expire it too"
            );
            q["reason"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "nobody decided within 1 s; Claude Code asks in its terminal instead",
            "nobody decided within 1 s; the hook denied the tool call",
        ]
    );

    // The session ends; what was said stays in the log, unread, never silently consumed.
    assert_eq!(run("SessionEnd", json!({"reason": "other"})).await, "");
    assert_eq!(unread().await, 1);
    let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(row["status"], "COMPLETED");
    assert_eq!(row["cwd"], "/home/me/app");
    assert_eq!(row["project"], "app");
    assert!(
        row["host"].is_string(),
        "SessionStart names the host: {row}"
    );
    let steps: Vec<String> = messages(&app, session)
        .await
        .iter()
        .filter(|m| m["sender_type"] == "AGENT" && m["requires_user_input"] == false)
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        steps.contains(&"Prompt: fix the login bug".to_owned()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"Used Bash: cargo test".to_owned()),
        "{steps:?}"
    );
}
