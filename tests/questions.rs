//! Requests with a lifecycle, over REST: every answer names the question it answers, several
//! questions are open at once and each waiter receives its own answer, questions are withdrawn
//! (by their asker, by an abandoned wait, by the session's end) and expire, answering a closed
//! one is refused saying how it closed, and the log, its export and replay, and a rebuild all
//! keep it.

mod common;

use std::time::Duration;

use common::{TestApp, switchboard};
use serde_json::{Value, json};
use switchboard::app::Config;
use switchboard::commands::Scope;
use switchboard::eventlog::rebuild;
use uuid::Uuid;

/// The agent asks in `session`; the question's id.
async fn ask(app: &TestApp, session: Uuid, content: &str, extra: Value) -> Uuid {
    let mut body = json!({
        "agent_instance_id": session, "agent_type": "claude-code", "content": content,
        "requires_user_input": true,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let sent: Value = app
        .post("/api/v1/messages/agent", &body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sent["message_id"]
        .as_str()
        .unwrap_or_else(|| panic!("asked: {sent}"))
        .parse()
        .unwrap()
}

/// A tool approval for running `command`.
async fn approval(app: &TestApp, session: Uuid, command: &str) -> Uuid {
    ask(
        app,
        session,
        &format!("May I run {command}?"),
        json!({"approval": {"tool_name": "Bash", "input": {"command": command}}}),
    )
    .await
}

/// The person writes `body` (with `agent_instance_id` = `session`); status and answer.
async fn say(app: &TestApp, token: &str, session: Uuid, body: Value) -> (u16, Value) {
    let mut body = body;
    body["agent_instance_id"] = json!(session);
    if body.get("mark_as_read").is_none() {
        body["mark_as_read"] = json!(false);
    }
    let response = app
        .client
        .post(app.url("/api/v1/messages/user"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Wait (long-poll, up to 30 s) for the answer to `question`: status and body.
async fn wait(app: &TestApp, session: Uuid, question: Uuid) -> (u16, Value) {
    let response = app
        .get(&format!(
            "/api/v1/messages/pending?agent_instance_id={session}&question_id={question}&wait=30"
        ))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn questions(app: &TestApp, session: Uuid) -> Vec<Value> {
    app.get_json(&format!("/api/v1/sessions/{session}/questions"))
        .await
}

async fn question(app: &TestApp, session: Uuid, id: Uuid) -> Value {
    questions(app, session)
        .await
        .into_iter()
        .find(|q| q["id"] == id.to_string())
        .unwrap_or_else(|| panic!("no question {id}"))
}

async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// Wait until the question's list row says someone waits for it.
async fn until_waiting(app: &TestApp, session: Uuid, id: Uuid) {
    for _ in 0..500 {
        if question(app, session, id).await["waiting"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nobody waits for {id}");
}

/// Wait until the hub has `n` parked waiters.
async fn until_waiters(app: &TestApp, n: usize) {
    for _ in 0..500 {
        if app.hub.waiters() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} waiters, not {n}", app.hub.waiters());
}

#[tokio::test]
async fn two_open_approvals_are_answered_each_on_its_own_and_each_waiter_gets_its_own() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let a = approval(&app, session, "ls build").await;
    let b = approval(&app, session, "git push --force origin main").await;
    let open = questions(&app, session).await;
    assert_eq!(open.len(), 2);
    assert!(
        open.iter()
            .all(|q| q["status"] == "open" && q["kind"] == "approval")
    );

    let (wait_a, wait_b) = (wait(&app, session, a), wait(&app, session, b));
    tokio::pin!(wait_a, wait_b);
    // Both park; then the person allows the older one, with an edited input.
    tokio::select! {
        _ = &mut wait_a => panic!("A answered before anyone answered it"),
        _ = &mut wait_b => panic!("B answered before anyone answered it"),
        () = until_waiters(&app, 2) => {}
    }
    let (status, sent) = say(
        &app,
        &app.token,
        session,
        json!({"question_id": a, "content": "Allow",
               "updated_input": {"command": "ls -la build"}}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["question_id"], a.to_string());
    assert_eq!(sent["chosen_option"], "Allow");
    let (status, got) = (&mut wait_a).await;
    assert_eq!(status, 200);
    assert_eq!(got["messages"].as_array().unwrap().len(), 1, "{got}");
    assert_eq!(
        got["messages"][0]["updated_input"],
        json!({"command": "ls -la build"})
    );
    // B's waiter did not receive A's answer: it still waits, and gets its own.
    tokio::select! {
        _ = &mut wait_b => panic!("B's waiter woke with A's answer"),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    let (status, _) = say(
        &app,
        &app.token,
        session,
        json!({"question_id": b, "content": "Deny"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, got) = (&mut wait_b).await;
    assert_eq!(got["messages"][0]["content"], "Deny");
    assert_eq!(got["messages"][0]["chosen_option"], "Deny");

    let closed = questions(&app, session).await;
    assert!(
        closed.iter().all(|q| q["status"] == "answered"),
        "{closed:?}"
    );
    assert!(closed.iter().all(|q| q["closed_by"] == "user"));
    // Each answer was received by its waiter: the agent's next message is not handed them
    // again.
    let next: Value = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "content": "done"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(next["queued_user_messages"], json!([]), "{next}");
    let session_row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(session_row["status"], "ACTIVE");
    assert_eq!(session_row["open_questions"], 0);
}

#[tokio::test]
async fn a_message_naming_no_question_answers_the_newest_open_one_and_null_answers_none() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let port = ask(&app, session, "Which port?", json!({})).await;
    let push = approval(&app, session, "git push --force origin main").await;
    let before = event_count(&app).await;

    // "Allow" naming no approval, while two questions are open, allows nothing.
    let (status, refused) = say(&app, &app.token, session, json!({"content": "Allow"})).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("must name the approval"),
        "{refused}"
    );
    assert_eq!(event_count(&app).await, before, "nothing appended");

    // A plain note answers nothing.
    let (status, note) = say(
        &app,
        &app.token,
        session,
        json!({"content": "a note", "question_id": null}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(note.get("question_id").is_none(), "{note}");
    assert_eq!(question(&app, session, port).await["status"], "open");
    assert_eq!(question(&app, session, push).await["status"], "open");

    // An old client's reply (no question_id) answers the newest open question: the approval,
    // which a reply in words denies, as it always did.
    let (_, legacy) = say(&app, &app.token, session, json!({"content": "not yet"})).await;
    assert_eq!(legacy["question_id"], push.to_string());
    assert_eq!(question(&app, session, push).await["status"], "answered");
    assert_eq!(question(&app, session, port).await["status"], "open");
    // Then the next one names none again: the port, now the only open question.
    let (_, last) = say(&app, &app.token, session, json!({"content": "5432"})).await;
    assert_eq!(last["question_id"], port.to_string());
    let (_, none_open) = say(&app, &app.token, session, json!({"content": "thanks"})).await;
    assert!(none_open.get("question_id").is_none(), "{none_open}");
}

#[tokio::test]
async fn unknown_foreign_and_closed_questions_are_refused_and_nothing_is_appended() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let answered = ask(&app, session, "Ship it?", json!({"options": ["yes", "no"]})).await;
    let (status, _) = say(
        &app,
        &app.token,
        session,
        json!({"question_id": answered, "content": "yes"}),
    )
    .await;
    assert_eq!(status, 200);
    let withdrawn = ask(&app, session, "Deploy?", json!({})).await;
    let response = app
        .post(
            &format!("/api/v1/sessions/{session}/questions/{withdrawn}/withdraw"),
            &json!({"reason": "the hook timed out"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Another tenant's question, in another tenant's session.
    let other = app.key(Uuid::new_v4(), Scope::Agent).await;
    let theirs_session = Uuid::new_v4();
    let theirs: Value = app
        .client
        .post(app.url("/api/v1/messages/agent"))
        .bearer_auth(&other)
        .json(
            &json!({"agent_instance_id": theirs_session, "agent_type": "x",
                      "content": "theirs?", "requires_user_input": true}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let theirs = theirs["message_id"].as_str().unwrap().to_owned();

    let before = event_count(&app).await;
    let cases = [
        (session, json!(Uuid::new_v4()), 404, "not found"),
        (session, json!(theirs), 404, "not found"),
        (theirs_session, json!(theirs), 404, "not found"),
        (session, json!(answered), 409, "already answered at"),
        (session, json!(withdrawn), 409, "was withdrawn at"),
        (session, json!("not-a-uuid"), 422, "question_id"),
        (session, json!(7), 422, "question_id"),
    ];
    for (in_session, question_id, expected, says) in cases {
        let (status, body) = say(
            &app,
            &app.token,
            in_session,
            json!({"question_id": question_id, "content": "no"}),
        )
        .await;
        assert_eq!(status, expected, "{question_id}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{question_id}: {detail}");
    }
    let (_, body) = say(
        &app,
        &app.token,
        session,
        json!({"question_id": withdrawn, "content": "no"}),
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .ends_with("the hook timed out")
    );
    assert_eq!(event_count(&app).await, before, "nothing was appended");
}

#[tokio::test]
async fn of_answers_sent_at_once_to_one_question_one_wins_and_the_rest_are_told() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let q = ask(
        &app,
        session,
        "Which one?",
        json!({"options": ["A", "B", "C"]}),
    )
    .await;
    let tries = (0..12).map(|n| {
        let app = &app;
        async move {
            let choice = ["A", "B", "C"][n % 3];
            say(
                app,
                &app.token,
                session,
                json!({"question_id": q, "content": choice}),
            )
            .await
        }
    });
    let results = futures::future::join_all(tries).await;
    let won: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("already answered")
        );
    }
    let answers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'user_message' AND tenant_id = $1",
    )
    .bind(app.tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(answers, 1, "one answer in the log");
    let row = question(&app, session, q).await;
    assert_eq!(row["answer_id"], won[0]["message_id"]);
}

#[tokio::test]
async fn questions_are_withdrawn_by_their_asker_and_by_the_end_of_their_session() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let q = approval(&app, session, "touch x").await;
    let waiting = wait(&app, session, q);
    tokio::pin!(waiting);
    tokio::select! {
        _ = &mut waiting => panic!("answered early"),
        () = until_waiters(&app, 1) => {}
    }
    let path = format!("/api/v1/sessions/{session}/questions/{q}/withdraw");
    let withdrawn = app
        .post(&path, &json!({"reason": "nobody decided within 50 s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), 200);
    let withdrawn: Value = withdrawn.json().await.unwrap();
    assert_eq!(withdrawn["status"], "withdrawn");
    // Its waiter is told, in a sentence.
    let (status, told) = (&mut waiting).await;
    assert_eq!(status, 409, "{told}");
    assert!(told["detail"].as_str().unwrap().contains("withdrawn"));
    let again = app
        .post(&path, &json!({"reason": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let bad = app
        .post(&path, &json!({"reason": " "}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let row = question(&app, session, q).await;
    assert_eq!(row["closed_by"], "agent");
    assert_eq!(row["reason"], "nobody decided within 50 s");

    // The session ends: what it still asked is withdrawn with it.
    let left = ask(&app, session, "Anything else?", json!({})).await;
    let ended = app
        .post(
            "/api/v1/sessions/end",
            &json!({"agent_instance_id": session}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    let row = question(&app, session, left).await;
    assert_eq!(row["status"], "withdrawn");
    assert_eq!(row["reason"], "the session ended");
    let (status, body) = say(
        &app,
        &app.token,
        session,
        json!({"question_id": left, "content": "no"}),
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("the session ended"),
        "{body}"
    );
}

/// A server whose sweeper withdraws abandoned questions after a second.
async fn quick_sweeper() -> TestApp {
    TestApp::spawn_with(Config {
        abandoned_grace: Duration::from_secs(1),
        ..Config::default()
    })
    .await
}

/// Wait (up to 20 s) until the question's status is `status`; its row.
async fn until_status(app: &TestApp, session: Uuid, id: Uuid, status: &str) -> Value {
    let mut row = Value::Null;
    for _ in 0..200 {
        row = question(app, session, id).await;
        if row["status"] == status {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("question {id} is not {status}: {row}");
}

#[tokio::test]
async fn questions_expire_at_their_deadline_and_cannot_be_answered_after_it() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let q = ask(&app, session, "Quick?", json!({"expires_in_seconds": 1})).await;
    assert!(question(&app, session, q).await["expires_at"].is_string());
    let row = until_status(&app, session, q, "expired").await;
    assert_eq!(row["closed_by"], "system");
    let (status, body) = say(
        &app,
        &app.token,
        session,
        json!({"question_id": q, "content": "yes"}),
    )
    .await;
    assert_eq!(status, 409);
    assert!(body["detail"].as_str().unwrap().contains("expired"));
    let (status, _) = wait(&app, session, q).await;
    assert_eq!(status, 409, "a waiter is told it expired");
    // A deadline on a step is refused.
    let step = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "content": "step", "expires_in_seconds": 5}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(step.status(), 422);
}

#[tokio::test]
async fn an_abandoned_wait_withdraws_its_question_unless_the_agent_waits_again() {
    let app = quick_sweeper().await;
    let session = Uuid::new_v4();
    let gone = ask(&app, session, "Still there?", json!({})).await;
    let back = ask(&app, session, "Coming back?", json!({})).await;
    for q in [gone, back] {
        let waiting = tokio::spawn({
            let request = app.get(&format!(
                "/api/v1/messages/pending?agent_instance_id={session}&question_id={q}&wait=30"
            ));
            async move { request.send().await }
        });
        until_waiters(&app, 1).await;
        until_waiting(&app, session, q).await;
        // The client hangs up mid-wait.
        waiting.abort();
        for _ in 0..200 {
            if app.hub.waiters() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // The agent comes back for one of them within the grace period.
    let resumed = wait(&app, session, back);
    tokio::pin!(resumed);
    tokio::select! {
        _ = &mut resumed => panic!("answered early"),
        () = until_waiters(&app, 1) => {}
    }
    let row = until_status(&app, session, gone, "withdrawn").await;
    assert_eq!(row["closed_by"], "system");
    assert!(
        row["reason"].as_str().unwrap().contains("abandoned"),
        "{row}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(question(&app, session, back).await["status"], "open");
    let (status, _) = say(
        &app,
        &app.token,
        session,
        json!({"question_id": back, "content": "yes"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, got) = (&mut resumed).await;
    assert_eq!(got["messages"][0]["content"], "yes");
}

#[tokio::test]
async fn the_list_says_kind_status_times_and_who_waits_and_pages() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let plain = ask(&app, session, "Which database?", json!({})).await;
    let next = ask(
        &app,
        session,
        "Done. What next?",
        json!({"next_instruction": true}),
    )
    .await;
    let tool = approval(&app, session, "make release").await;
    let list = questions(&app, session).await;
    let kinds: Vec<&str> = list.iter().map(|q| q["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["question", "next_instruction", "approval"]);
    assert_eq!(list[0]["content"], "Which database?");
    assert_eq!(list[2]["approval"]["input"]["command"], "make release");
    assert!(list.iter().all(|q| q["waiting"] == false));
    let waiting = wait(&app, session, next);
    tokio::pin!(waiting);
    tokio::select! {
        _ = &mut waiting => panic!("answered early"),
        () = until_waiters(&app, 1) => {}
    }
    until_waiting(&app, session, next).await;
    assert_eq!(question(&app, session, plain).await["waiting"], false);

    // Paging: a full page names the next.
    let first = app
        .get(&format!("/api/v1/sessions/{session}/questions?limit=2"))
        .send()
        .await
        .unwrap();
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let page: Vec<Value> = first.json().await.unwrap();
    assert_eq!(page.len(), 2);
    let next_url = link
        .trim_start_matches('<')
        .split_once('>')
        .unwrap()
        .0
        .to_owned();
    let rest: Vec<Value> = app.get_json(&next_url).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["id"], tool.to_string());
    let open: Vec<Value> = app
        .get_json(&format!("/api/v1/sessions/{session}/questions?status=open"))
        .await;
    assert_eq!(open.len(), 3);
    for bad in ["status=closed", "limit=0", "after=-1"] {
        let response = app
            .get(&format!("/api/v1/sessions/{session}/questions?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{bad}");
    }
    let missing = app
        .get(&format!("/api/v1/sessions/{}/questions", Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_session_has_a_title_and_context_its_agent_and_person_set() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let sent = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "agent_type": "codex", "content": "start",
                    "message_metadata": {"cwd": "/src/shop", "git_branch": "fix-login"},
                    "session": {"title": "Fix the login page", "host": "build-7"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let row: Value = app.get_json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(row["title"], "Fix the login page");
    assert_eq!(row["cwd"], "/src/shop");
    assert_eq!(row["branch"], "fix-login");
    assert_eq!(row["host"], "build-7");
    let patched = app
        .client
        .patch(app.url(&format!("/api/v1/sessions/{session}")))
        .bearer_auth(&app.token)
        .json(&json!({"title": "Login fix", "host": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let row: Value = patched.json().await.unwrap();
    assert_eq!(row["title"], "Login fix");
    assert_eq!(row["host"], Value::Null);
    let described: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'session_described'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(described, 2);
    // Repeating what it says already records nothing.
    app.post(
        "/api/v1/messages/agent",
        &json!({"agent_instance_id": session, "content": "again",
                "message_metadata": {"cwd": "/src/shop"}}),
    )
    .send()
    .await
    .unwrap();
    let again: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'session_described'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(again, 2);
    let bad = app
        .client
        .patch(app.url(&format!("/api/v1/sessions/{session}")))
        .bearer_auth(&app.token)
        .json(&json!({"title": "a\nb"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn export_replay_and_rebuild_keep_every_question_and_how_it_closed() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let a = approval(&app, session, "ls").await;
    let b = ask(&app, session, "Port?", json!({"expires_in_seconds": 600})).await;
    let c = ask(&app, session, "Withdraw me", json!({})).await;
    say(
        &app,
        &app.token,
        session,
        json!({"question_id": a, "content": "Allow", "updated_input": {"command": "ls -a"}}),
    )
    .await;
    say(
        &app,
        &app.token,
        session,
        json!({"content": "note", "question_id": null}),
    )
    .await;
    app.post(
        &format!("/api/v1/sessions/{session}/questions/{c}/withdraw"),
        &json!({"reason": "changed my mind"}),
    )
    .send()
    .await
    .unwrap();
    let waited = wait(&app, session, a).await;
    assert_eq!(waited.0, 200);
    let other = Uuid::new_v4();
    ask(&app, other, "Left open at the end", json!({})).await;
    app.post("/api/v1/sessions/end", &json!({"agent_instance_id": other}))
        .send()
        .await
        .unwrap();
    assert_eq!(question(&app, session, b).await["status"], "open");

    let check = rebuild::check(&app.db.pool).await.unwrap();
    assert!(check.differences.is_empty(), "{:#?}", check.differences);
    let exported = switchboard(&app.db, &["export"], None).await;
    assert!(exported.status.success());
    let empty = common::database().await;
    let replayed = switchboard(&empty, &["replay", "--from", "-"], Some(&exported.stdout)).await;
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let mut original = app.db.pool.acquire().await.unwrap();
    let mut restored = empty.pool.acquire().await.unwrap();
    let (original, restored) = (
        rebuild::load_live(&mut original).await.unwrap(),
        rebuild::load_live(&mut restored).await.unwrap(),
    );
    assert_eq!(original.questions.len(), 4);
    assert_eq!(
        restored, original,
        "identical projections, questions included"
    );
    let rebuilt = switchboard(&empty, &["projections", "rebuild", "--check"], None).await;
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stdout)
    );
    // A tampered question row is found, and a rebuild repairs it.
    sqlx::query("UPDATE questions SET status = 'open', closed_at = NULL WHERE id = $1")
        .bind(c)
        .execute(&empty.pool)
        .await
        .unwrap();
    let report = rebuild::check(&empty.pool).await.unwrap();
    assert_eq!(report.differences.len(), 1, "{:#?}", report.differences);
    rebuild::rebuild(&empty.pool).await.unwrap();
    assert!(
        rebuild::check(&empty.pool)
            .await
            .unwrap()
            .differences
            .is_empty()
    );
}

#[tokio::test]
async fn projections_of_an_older_fold_are_rebuilt_once_on_start() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let q = ask(&app, session, "Old question?", json!({})).await;
    // As an older server left them: no questions rows, an older fold version.
    sqlx::query("DELETE FROM questions")
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projection_generation SET fold_version = 1")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert!(
        !rebuild::check(&app.db.pool)
            .await
            .unwrap()
            .differences
            .is_empty()
    );
    assert_eq!(rebuild::upgrade(&app.db.pool).await.unwrap(), Some(1));
    assert!(
        rebuild::check(&app.db.pool)
            .await
            .unwrap()
            .differences
            .is_empty()
    );
    assert_eq!(question(&app, session, q).await["status"], "open");
    assert_eq!(rebuild::upgrade(&app.db.pool).await.unwrap(), None, "once");
}
