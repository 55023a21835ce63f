//! Decisions: questions with options, tool approvals and edited input, through REST, and what
//! the log keeps of them (who decided what). The hooks' decisions are in `tests/hooks.rs`.

mod common;

use common::{TestApp, switchboard};
use serde_json::{Value, json};
use switchboard::commands::Scope;
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
