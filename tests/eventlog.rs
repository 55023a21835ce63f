//! The event log's guarantees, against a real PostgreSQL: append-only in the database,
//! gap-free per-tenant order under concurrency, optimistic concurrency, permanent idempotency
//! and a hash chain that catches tampering.

mod common;

use projections::{Actor, AgentMessage, Event, Metadata, SessionStarted, UserMessage};
use switchboard::eventlog::verify::verify;
use switchboard::eventlog::{EventLog, ExpectedVersion, LogError, NewEvent};
use uuid::Uuid;

fn metadata() -> Metadata {
    Metadata {
        actor: Actor::Agent,
        key_id: None,
        client_type: Some("test".into()),
        request_id: None,
        web_session: None,
        imported: None,
    }
}

fn started() -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event: Event::SessionStarted(SessionStarted {
            agent_type: "test".into(),
        }),
    }
}

fn step(content: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event: Event::AgentMessage(AgentMessage {
            content: content.into(),
            ..AgentMessage::default()
        }),
    }
}

async fn start_session(log: &EventLog, tenant: Uuid) -> Uuid {
    let session = Uuid::new_v4();
    log.append(
        tenant,
        session,
        ExpectedVersion::NoStream,
        vec![started(), step("hello")],
        &metadata(),
    )
    .await
    .unwrap();
    session
}

#[tokio::test]
async fn the_database_refuses_update_delete_and_truncate_on_events() {
    let db = common::database().await;
    let log = EventLog::new(db.pool.clone());
    start_session(&log, Uuid::new_v4()).await;
    for statement in [
        "UPDATE events SET data = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let error = sqlx::query(statement).execute(&db.pool).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_two_nodes_get_a_gap_free_sequence_in_commit_order() {
    let db = common::database().await;
    // Separate knowledge per log: two server processes racing for one tenant.
    let nodes = [
        EventLog::new(db.pool.clone()),
        EventLog::new(db.pool.clone()),
    ];
    let tenant = Uuid::new_v4();
    let mut writers = Vec::new();
    for n in 0..8 {
        let log = nodes[n % 2].clone();
        writers.push(tokio::spawn(async move {
            let session = start_session(&log, tenant).await;
            for i in 0..10 {
                log.append(
                    tenant,
                    session,
                    ExpectedVersion::Any,
                    vec![step(&format!("step {i}"))],
                    &metadata(),
                )
                .await
                .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // 8 sessions × (2 + 10) events; seq order is commit order: transaction ids never go back.
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT seq, txid FROM events WHERE tenant_id = $1 ORDER BY seq")
            .bind(tenant)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (1..=96).collect::<Vec<_>>());
    assert!(rows.windows(2).all(|w| w[0].1 <= w[1].1), "{rows:?}");
    let report = verify(&db.pool, Some(tenant)).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.events, 96);
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_and_writes_nothing() {
    let db = common::database().await;
    let log = EventLog::new(db.pool.clone());
    let tenant = Uuid::new_v4();
    let session = start_session(&log, tenant).await;
    let error = log
        .append(
            tenant,
            session,
            ExpectedVersion::Exact(1),
            vec![step("late")],
            &metadata(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, LogError::VersionConflict { actual: 2, .. }),
        "{error:?}"
    );
    let error = log
        .append(
            tenant,
            session,
            ExpectedVersion::NoStream,
            vec![started()],
            &metadata(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, LogError::VersionConflict { .. }),
        "{error:?}"
    );
    log.append(
        tenant,
        session,
        ExpectedVersion::Exact(2),
        vec![step("on time")],
        &metadata(),
    )
    .await
    .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 3);
}

#[tokio::test]
async fn appending_an_event_id_again_returns_the_original_and_writes_nothing() {
    let db = common::database().await;
    let log = EventLog::new(db.pool.clone());
    let tenant = Uuid::new_v4();
    let session = start_session(&log, tenant).await;
    let event = step("once");
    let first = log
        .append(
            tenant,
            session,
            ExpectedVersion::Any,
            vec![event.clone()],
            &metadata(),
        )
        .await
        .unwrap();
    // Later, with another expected version even: still the original, permanently.
    log.append(
        tenant,
        session,
        ExpectedVersion::Any,
        vec![step("other")],
        &metadata(),
    )
    .await
    .unwrap();
    let again = log
        .append(
            tenant,
            session,
            ExpectedVersion::Exact(99),
            vec![event.clone()],
            &metadata(),
        )
        .await
        .unwrap();
    assert_eq!(first.events, again.events);

    // Racing retries: exactly one writes.
    let racer = step("raced");
    let mut racers = Vec::new();
    for _ in 0..8 {
        let (log, racer) = (log.clone(), racer.clone());
        racers.push(tokio::spawn(async move {
            log.append(
                tenant,
                session,
                ExpectedVersion::Any,
                vec![racer],
                &metadata(),
            )
            .await
            .unwrap()
        }));
    }
    let mut results = Vec::new();
    for racer in racers {
        results.push(racer.await.unwrap().events);
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_id = $1")
        .bind(racer.event_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert!(verify(&db.pool, None).await.unwrap().ok);
}

/// Writes that only a superuser with triggers disabled can make.
async fn tamper(pool: &sqlx::PgPool, statement: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn log_with_events(n: usize) -> (common::TestDb, Uuid) {
    let db = common::database().await;
    let log = EventLog::new(db.pool.clone());
    let tenant = Uuid::new_v4();
    let session = start_session(&log, tenant).await;
    for i in 0..n - 2 {
        log.append(
            tenant,
            session,
            ExpectedVersion::Any,
            vec![step(&format!("{i}"))],
            &metadata(),
        )
        .await
        .unwrap();
    }
    assert!(verify(&db.pool, None).await.unwrap().ok);
    (db, tenant)
}

async fn first_break(pool: &sqlx::PgPool) -> (i64, String) {
    let report = verify(pool, None).await.unwrap();
    assert!(!report.ok);
    let broken = report.breaks().next().unwrap().clone();
    (broken.seq, broken.reason)
}

#[tokio::test]
async fn verify_names_a_changed_event() {
    let (db, _) = log_with_events(10).await;
    tamper(&db.pool, r#"UPDATE events SET data = '{"content":"forged","requires_user_input":false}' WHERE seq = 5"#).await;
    let (seq, reason) = first_break(&db.pool).await;
    assert_eq!(seq, 5);
    assert!(reason.contains("contents"), "{reason}");
}

#[tokio::test]
async fn verify_names_a_removed_event() {
    let (db, _) = log_with_events(10).await;
    tamper(&db.pool, "DELETE FROM events WHERE seq = 4").await;
    let (seq, reason) = first_break(&db.pool).await;
    assert_eq!(seq, 4);
    assert!(reason.contains("missing"), "{reason}");
}

#[tokio::test]
async fn verify_names_removed_events_at_the_end() {
    let (db, _) = log_with_events(10).await;
    tamper(&db.pool, "DELETE FROM events WHERE seq >= 9").await;
    let (seq, reason) = first_break(&db.pool).await;
    assert_eq!(seq, 9);
    assert!(reason.contains("removed"), "{reason}");
}

#[tokio::test]
async fn verify_names_swapped_events() {
    let (db, _) = log_with_events(10).await;
    tamper(
        &db.pool,
        "UPDATE events SET seq = 1000 WHERE seq = 3;
         UPDATE events SET seq = 3 WHERE seq = 7;
         UPDATE events SET seq = 7 WHERE seq = 1000;",
    )
    .await;
    let (seq, _) = first_break(&db.pool).await;
    assert_eq!(seq, 3);
}

#[tokio::test]
async fn user_messages_and_agent_messages_share_one_tenant_sequence() {
    let db = common::database().await;
    let log = EventLog::new(db.pool.clone());
    let tenant = Uuid::new_v4();
    let a = start_session(&log, tenant).await;
    let b = start_session(&log, tenant).await;
    let reply = NewEvent {
        event_id: Uuid::now_v7(),
        event: Event::UserMessage(UserMessage {
            content: "reply".into(),
            mark_as_read: false,
            ..UserMessage::default()
        }),
    };
    let committed = log
        .append(
            tenant,
            a,
            ExpectedVersion::Exact(2),
            vec![reply],
            &metadata(),
        )
        .await
        .unwrap();
    assert_eq!(committed.last_seq(), Some(5));
    let state = log.session(tenant, a).await.unwrap().unwrap();
    assert_eq!(state.inbox.len(), 1);
    assert_eq!(
        log.session(tenant, b).await.unwrap().unwrap().inbox.len(),
        0
    );
    // Another tenant has its own sequence from 1.
    let other = Uuid::new_v4();
    start_session(&log, other).await;
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM events WHERE tenant_id = $1 ORDER BY seq")
            .bind(other)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(seqs, vec![1, 2]);
}
