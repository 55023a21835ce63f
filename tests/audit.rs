//! Audit and replay: the log read through the API by an audit key, exported completely while
//! writers append, verified (also by the CLI after tampering), and replayed into an empty
//! database with identical bytes, chain and projections.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{TestApp, switchboard};
use serde_json::{Value, json};
use switchboard::commands::Scope;
use switchboard::eventlog::{export, rebuild};
use uuid::Uuid;

async fn say(app: &TestApp, token: &str, session: Uuid, content: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/messages/agent"))
        .bearer_auth(token)
        .json(&json!({"agent_instance_id": session, "agent_type": "t", "content": content}))
        .send()
        .await
        .unwrap()
}

async fn conversation(app: &TestApp, sessions: usize, messages: usize) {
    for s in 0..sessions {
        let session = Uuid::new_v4();
        for m in 0..messages {
            let response = say(app, &app.token, session, &format!("s{s} m{m} ünï\u{1F600}")).await;
            assert_eq!(response.status(), 200);
        }
        let reply = app
            .post(
                "/api/v1/messages/user",
                &json!({"agent_instance_id": session, "content": "ok", "mark_as_read": false}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn export_text(app: &TestApp, token: &str, after: i64) -> String {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/events/export?after={after}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    response.text().await.unwrap()
}

#[tokio::test]
async fn an_audit_key_reads_pages_exports_and_verifies_but_writes_nothing() {
    let app = TestApp::spawn().await;
    conversation(&app, 3, 4).await;
    let audit = app.key(app.tenant, Scope::Audit).await;

    // Pages, in order, until the head.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = get_json(
            &app,
            &audit,
            &format!("/api/v1/events?after={after}&limit=4"),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            assert_eq!(page["next_after"], after);
            break;
        }
        after = page["next_after"].as_i64().unwrap();
        paged.extend(events);
    }
    let seqs: Vec<i64> = paged.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(
        seqs.len(),
        3 * (1 + 4 + 1),
        "session_started + 4 messages + a reply, each"
    );

    // The export is the same events, byte for byte the same JSON.
    let exported = lines(&export_text(&app, &audit, 0).await);
    assert_eq!(exported, paged);
    let tail = lines(&export_text(&app, &audit, 10).await);
    assert_eq!(tail[..], paged[10..]);
    let first = &exported[1];
    assert_eq!(first["type"], "agent_message");
    assert_eq!(first["data"]["content"], "s0 m0 ünï\u{1F600}");
    assert_eq!(first["metadata"]["actor"], "agent");
    assert_eq!(first["prev_hash"], exported[0]["hash"]);

    let (status, verified) = get_json(&app, &audit, "/api/v1/events/verify").await;
    assert_eq!(status, 200);
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["events"], seqs.len());
    assert_eq!(verified["last_seq"], seqs.len());
    assert_eq!(verified["head_hash"], exported.last().unwrap()["hash"]);
    assert!(verified["broken"].is_null());

    // Every write is refused, and nothing changes.
    let session = Uuid::parse_str(first["session_id"].as_str().unwrap()).unwrap();
    let writes = [
        (
            "/api/v1/messages/agent",
            json!({"agent_instance_id": session, "agent_type": "t", "content": "x"}),
        ),
        (
            "/api/v1/messages/user",
            json!({"agent_instance_id": session, "content": "x"}),
        ),
        (
            "/api/v1/sessions/end",
            json!({"agent_instance_id": session}),
        ),
    ];
    for (path, body) in writes {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&audit)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("audit"), "{body}");
    }
    let question = first["event_id"].as_str().unwrap();
    let pending = app
        .client
        .get(app.url(&format!(
            "/api/v1/messages/pending?agent_instance_id={session}&last_read_message_id={question}"
        )))
        .bearer_auth(&audit)
        .send()
        .await
        .unwrap();
    assert_eq!(pending.status(), 403);
    let heartbeat = app
        .client
        .post(app.url(&format!("/api/v1/agents/instances/{session}/heartbeat")))
        .bearer_auth(&audit)
        .send()
        .await
        .unwrap();
    assert_eq!(heartbeat.status(), 403);
    let (_, after_writes) = get_json(&app, &audit, "/api/v1/events/verify").await;
    assert_eq!(after_writes["events"], seqs.len(), "nothing was appended");
}

#[tokio::test]
async fn bad_parameters_are_422_and_other_tenants_logs_are_invisible() {
    let app = TestApp::spawn().await;
    conversation(&app, 1, 2).await;
    for query in [
        "after=-1",
        "after=abc",
        "after=1.5",
        "limit=0",
        "limit=1001",
        "limit=x",
    ] {
        let (status, body) = get_json(&app, &app.token, &format!("/api/v1/events?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert!(body["detail"].is_string());
    }
    let (status, _) = get_json(&app, &app.token, "/api/v1/events/export?after=-5").await;
    assert_eq!(status, 422);

    let stranger = app.key(Uuid::new_v4(), Scope::Audit).await;
    let (_, page) = get_json(&app, &stranger, "/api/v1/events").await;
    assert_eq!(page["events"], json!([]));
    assert_eq!(page["head"], 0);
    assert_eq!(export_text(&app, &stranger, 0).await, "");
    let (_, verified) = get_json(&app, &stranger, "/api/v1/events/verify").await;
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["events"], 0);

    let unauthenticated = app
        .client
        .get(app.url("/api/v1/events/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn exports_while_writers_append_return_every_event_once_in_order() {
    let app = TestApp::spawn().await;
    let other_tenant = Uuid::new_v4();
    let other = app.key(other_tenant, Scope::Agent).await;
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut writers = Vec::new();
    for w in 0..4 {
        let token = if w % 2 == 0 {
            app.token.clone()
        } else {
            other.clone()
        };
        let client = app.client.clone();
        let url = app.url("/api/v1/messages/agent");
        let writing = writing.clone();
        writers.push(tokio::spawn(async move {
            let session = Uuid::new_v4();
            let mut n = 0;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"agent_instance_id": session, "agent_type": "t", "content": format!("{w}/{n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                n += 1;
            }
        }));
    }

    // One tenant through the API, all tenants through the horizon-cut export, each
    // resumed from where the previous round stopped, while the writers run.
    let mut tenant_seen: Vec<Value> = Vec::new();
    let mut all_seen: Vec<Value> = Vec::new();
    let mut after_seq = 0;
    let mut after = export::Position::START;
    let rounds = |done: bool| async move {
        if !done {
            tokio::time::sleep(Duration::from_millis(30)).await
        }
    };
    for round in 0..40 {
        let last = round == 39;
        if last {
            writing.store(false, std::sync::atomic::Ordering::Relaxed);
            for writer in writers.drain(..) {
                writer.await.unwrap();
            }
        }
        for event in lines(&export_text(&app, &app.token, after_seq).await) {
            after_seq = event["seq"].as_i64().unwrap();
            tenant_seen.push(event);
        }
        let mut out = Vec::new();
        let exported = export::export_all(&app.db.pool, &after, &mut out)
            .await
            .unwrap();
        after = exported.next;
        all_seen.extend(lines(std::str::from_utf8(&out).unwrap()));
        rounds(last).await;
    }

    let head = export::tenant_head(&app.db.pool, app.tenant).await.unwrap();
    assert!(
        head > 20,
        "the writers appended while exporting ({head} events)"
    );
    let seqs: Vec<i64> = tenant_seen
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "every event once, in order"
    );

    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        all_seen.len() as i64,
        total,
        "every tenant's every event, once"
    );
    let mut per_tenant: HashMap<String, Vec<i64>> = HashMap::new();
    for event in &all_seen {
        per_tenant
            .entry(event["tenant_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(event["seq"].as_i64().unwrap());
    }
    assert_eq!(per_tenant.len(), 2);
    for seqs in per_tenant.values() {
        assert_eq!(
            *seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "in order, no gaps"
        );
    }
}

/// An export without the exporting database's transaction ids, by tenant and sequence (a
/// replay writes in one transaction, so the transaction order of tenants may differ).
fn without_txids(text: &[u8]) -> Vec<Value> {
    let mut events: Vec<Value> = lines(std::str::from_utf8(text).unwrap())
        .into_iter()
        .map(|mut e| {
            e.as_object_mut().unwrap().remove("txid");
            e
        })
        .collect();
    events.sort_by_key(|e| {
        (
            e["tenant_id"].as_str().unwrap().to_owned(),
            e["seq"].as_i64().unwrap(),
        )
    });
    events
}

#[tokio::test]
async fn replaying_an_export_into_an_empty_database_reproduces_the_log_and_projections() {
    let app = TestApp::spawn().await;
    conversation(&app, 4, 3).await;
    let other = app.key(Uuid::new_v4(), Scope::Agent).await;
    let session = Uuid::new_v4();
    say(&app, &other, session, "another tenant").await;
    let ended = app
        .client
        .post(app.url("/api/v1/sessions/end"))
        .bearer_auth(&other)
        .json(&json!({"agent_instance_id": session}))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);

    let exported = switchboard(&app.db, &["export"], None).await;
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let tenant_only = switchboard(
        &app.db,
        &["export", "--user", &app.tenant.to_string()],
        None,
    )
    .await;
    assert!(tenant_only.status.success());
    assert!(without_txids(&tenant_only.stdout).len() < without_txids(&exported.stdout).len());

    let empty = common::database().await;
    let replayed = switchboard(&empty, &["replay", "--from", "-"], Some(&exported.stdout)).await;
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let again = switchboard(&empty, &["export"], None).await;
    assert_eq!(
        without_txids(&again.stdout),
        without_txids(&exported.stdout),
        "same events, same bytes"
    );

    let verified = switchboard(&empty, &["verify"], None).await;
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let mut original = app.db.pool.acquire().await.unwrap();
    let mut restored = empty.pool.acquire().await.unwrap();
    assert_eq!(
        rebuild::load_live(&mut restored).await.unwrap(),
        rebuild::load_live(&mut original).await.unwrap(),
        "identical projections"
    );
    let check = switchboard(&empty, &["projections", "rebuild", "--check"], None).await;
    assert!(check.status.success());

    // A second replay into the now non-empty database is refused and changes nothing.
    let refused = switchboard(&empty, &["replay", "--from", "-"], Some(&exported.stdout)).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("empty database"));
    let unchanged = switchboard(&empty, &["export"], None).await;
    assert_eq!(
        without_txids(&unchanged.stdout),
        without_txids(&exported.stdout)
    );
}

#[tokio::test]
async fn a_doctored_export_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    conversation(&app, 2, 2).await;
    let exported = switchboard(&app.db, &["export"], None).await;
    let text = String::from_utf8(exported.stdout).unwrap();
    let doctored = text.replacen("s1 m0", "s1 m0 (edited)", 1);
    assert_ne!(doctored, text);
    let mut removed: Vec<&str> = text.lines().collect();
    removed.remove(3);
    let removed = removed.join("\n");
    for (what, input) in [
        ("edited", doctored.as_str()),
        ("removed", removed.as_str()),
        ("garbage", "{\"not\": \"an event\"}\n"),
    ] {
        let empty = common::database().await;
        let replayed =
            switchboard(&empty, &["replay", "--from", "-"], Some(input.as_bytes())).await;
        assert!(!replayed.status.success(), "{what}");
        let stderr = String::from_utf8_lossy(&replayed.stderr);
        assert!(
            stderr.contains("nothing was written") || stderr.contains("line 1"),
            "{what}: {stderr}"
        );
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&empty.pool)
            .await
            .unwrap();
        assert_eq!(count, 0, "{what}");
    }
}

#[tokio::test]
async fn the_verify_command_names_the_first_broken_position() {
    let app = TestApp::spawn().await;
    conversation(&app, 2, 3).await;
    assert!(
        switchboard(&app.db, &["verify"], None)
            .await
            .status
            .success()
    );
    let mut tx = app.db.pool.begin().await.unwrap();
    // On Citus the forger's SET LOCAL must reach the workers too (a mere name elsewhere).
    sqlx::query("SET LOCAL citus.propagate_set_commands = 'local'")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET data = '{\"content\":\"forged\",\"requires_user_input\":false}' WHERE seq = 3")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let verified = switchboard(
        &app.db,
        &["verify", "--user", &app.tenant.to_string()],
        None,
    )
    .await;
    assert!(!verified.status.success());
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert!(stderr.contains("seq 3"), "{stderr}");
    let (_, body) = get_json(&app, &app.token, "/api/v1/events/verify").await;
    assert_eq!(body["ok"], false);
    assert_eq!(body["broken"]["seq"], 3, "{body}");
}

/// The `continue with: switchboard export ...` arguments an export printed.
fn continuation(output: &std::process::Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("continue with: switchboard export "))
        .unwrap_or_else(|| panic!("no continuation in {stderr}"));
    line.split_whitespace().map(str::to_owned).collect()
}

fn event_ids(output: &std::process::Output) -> Vec<String> {
    lines(std::str::from_utf8(&output.stdout).unwrap())
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn chained_exports_continue_with_their_own_cursor_and_refuse_the_other_kind() {
    let app = TestApp::spawn().await;
    let other = app.key(Uuid::new_v4(), Scope::Agent).await;
    conversation(&app, 2, 2).await;
    say(&app, &other, Uuid::new_v4(), "another tenant").await;

    let all = switchboard(&app.db, &["export"], None).await;
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let cursor = continuation(&all);
    assert_eq!(cursor[0], "--cursor");
    // A transaction horizon on plain PostgreSQL, tenant heads on Citus.
    assert!(
        cursor[1].starts_with("c1-") || cursor[1].starts_with("c2-"),
        "{cursor:?}"
    );
    let tenant = app.tenant.to_string();
    let mine = switchboard(&app.db, &["export", "--user", &tenant], None).await;
    let mine_next = continuation(&mine);
    assert_eq!(mine_next, ["--user", tenant.as_str(), "--after-seq", "8"]);

    conversation(&app, 1, 2).await;
    say(&app, &other, Uuid::new_v4(), "more").await;
    let rest = switchboard(&app.db, &["export", "--cursor", &cursor[1]], None).await;
    assert!(
        rest.status.success(),
        "{}",
        String::from_utf8_lossy(&rest.stderr)
    );
    // An export stops below the oldest transaction still running (the server's own may hold
    // it back for a moment): compare with a whole export that reached the same horizon.
    let mut whole = switchboard(&app.db, &["export"], None).await;
    for _ in 0..100 {
        if continuation(&whole) == continuation(&rest) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        whole = switchboard(&app.db, &["export"], None).await;
    }
    let mut chained = event_ids(&all);
    chained.extend(event_ids(&rest));
    let mut everything = event_ids(&whole);
    assert!(event_ids(&rest).len() >= 6, "what came after, at least");
    chained.sort();
    everything.sort();
    assert_eq!(chained, everything, "the chain has every event once");

    let args: Vec<&str> = ["export"]
        .into_iter()
        .chain(mine_next.iter().map(String::as_str))
        .collect();
    let mine_rest = switchboard(&app.db, &args, None).await;
    let seqs: Vec<i64> = lines(std::str::from_utf8(&mine_rest.stdout).unwrap())
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [9, 10, 11, 12]);

    for (args, says) in [
        (vec!["export", "--after-seq", "3"], "add --user"),
        (
            vec!["export", "--user", &tenant, "--cursor", &cursor[1]],
            "--after-seq",
        ),
        (vec!["export", "--cursor", "8"], "not a cursor printed by"),
        (vec!["export", "--after", "3"], "--after is gone"),
        (
            vec!["export", "--user", &tenant, "--after", "3"],
            "--after is gone",
        ),
    ] {
        let refused = switchboard(&app.db, &args, None).await;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(refused.stdout.is_empty(), "{args:?} exports nothing");
    }
}
