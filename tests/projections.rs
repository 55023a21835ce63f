//! The live projections equal a rebuild from the log, after a randomized, concurrent workload
//! that exercises every command (and so every event type and fold rule).

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard::commands::{self, AgentMessageInput, CommandError, Context, UserMessageInput};
use switchboard::domain::{AgentType, Content, GitDiffUpdate};
use switchboard::eventlog::{EventLog, rebuild, verify};
use uuid::Uuid;

const DIFF: &str =
    "diff --git a/f b/f\nindex 1a2b3c4..5d6e7f8 100644\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b";

/// One simulated agent with its person, doing random things to a few sessions.
async fn actor(log: EventLog, ctx: Context, sessions: Vec<Uuid>, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut last_agent_message: Vec<Option<Uuid>> = vec![None; sessions.len()];
    for step in 0..steps {
        let i = rng.random_range(0..sessions.len());
        let session = sessions[i];
        let content = Content::parse("content", format!("message {step} from {seed}")).unwrap();
        let result: Result<(), CommandError> = match rng.random_range(0..100) {
            0..35 => {
                let git_diff = match rng.random_range(0..10) {
                    0 => Some(GitDiffUpdate::parse("git_diff", DIFF).unwrap()),
                    1 => Some(GitDiffUpdate::Clear),
                    _ => None,
                };
                let input = AgentMessageInput {
                    session_id: session,
                    agent_type: Some(AgentType::parse("agent_type", "fuzz").unwrap()),
                    content,
                    requires_user_input: rng.random_bool(0.3),
                    send_email: None,
                    send_sms: None,
                    send_push: rng.random_bool(0.5).then_some(true),
                    git_diff,
                    message_metadata: None,
                    options: None,
                    approval: None,
                    next_instruction: false,
                    expires_in: None,
                    leaves_unread: false,
                    describe: Default::default(),
                };
                commands::send_agent_message(&log, &ctx, input)
                    .await
                    .map(|sent| last_agent_message[i] = Some(sent.message_id))
            }
            35..65 => {
                let input = UserMessageInput {
                    session_id: session,
                    content,
                    mark_as_read: rng.random_bool(0.25),
                    updated_input: None,
                    target: Default::default(),
                };
                commands::send_user_message(&log, &ctx, input)
                    .await
                    .map(drop)
            }
            65..80 => {
                let cursor = log
                    .session(ctx.tenant_id, session)
                    .await
                    .unwrap()
                    .and_then(|s| s.session.read_cursor);
                let last_read = if rng.random_bool(0.8) {
                    cursor
                } else {
                    Some(Uuid::new_v4())
                };
                commands::pending(&log, &ctx, session, last_read)
                    .await
                    .map(drop)
            }
            80..90 => match last_agent_message[i] {
                Some(message) => commands::request_input(&log, &ctx, message).await.map(drop),
                None => Ok(()),
            },
            90..93 => commands::end_session(&log, &ctx, session).await.map(drop),
            _ => commands::heartbeat(&log, &ctx, session).await.map(drop),
        };
        match result {
            Ok(()) => {}
            // Ended sessions, questions asked twice, sessions not started yet: all expected.
            Err(
                CommandError::Conflict(_) | CommandError::BadRequest(_) | CommandError::NotFound(_),
            ) => {}
            Err(other) => panic!("seed {seed} step {step}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_equals_live_after_a_random_concurrent_workload_on_two_nodes() {
    let db = common::database().await;
    // Two logs with separate knowledge stand for two server processes on one database.
    let nodes = [
        EventLog::new(db.pool.clone()),
        EventLog::new(db.pool.clone()),
    ];
    let seed: u64 = std::env::var("SWITCHBOARD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("SWITCHBOARD_TEST_SEED={seed}");
    let tenants: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut actors = Vec::new();
    for (n, tenant) in tenants.iter().enumerate() {
        // Several actors share each tenant's sessions, so appends contend for the same locks.
        let sessions: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        for k in 0..4u64 {
            actors.push(tokio::spawn(actor(
                nodes[k as usize % 2].clone(),
                common::ctx(*tenant),
                sessions.clone(),
                seed.wrapping_add(n as u64 * 100 + k),
                60,
            )));
        }
    }
    for actor in actors {
        actor.await.unwrap();
    }

    let report = rebuild::check(&db.pool).await.unwrap();
    assert!(
        report.events > 200,
        "the workload appended {} events",
        report.events
    );
    assert!(
        report.differences.is_empty(),
        "seed {seed}: {:#?}",
        report.differences
    );
    let chain = verify::verify(&db.pool, None).await.unwrap();
    assert!(chain.ok, "seed {seed}: {chain:?}");
    assert_eq!(chain.tenants.len(), 3);

    // A real rebuild replaces the tables with exactly what was there.
    let rebuilt = rebuild::rebuild(&db.pool).await.unwrap();
    assert!(rebuilt.differences.is_empty());
    assert!(
        rebuild::check(&db.pool)
            .await
            .unwrap()
            .differences
            .is_empty()
    );
}

#[tokio::test]
async fn check_reports_a_tampered_projection_and_rebuild_repairs_it() {
    let db = common::database().await;
    let log = EventLog::new(db.pool.clone());
    let ctx = common::ctx(Uuid::new_v4());
    let sessions = vec![Uuid::new_v4(), Uuid::new_v4()];
    actor(log.clone(), ctx.clone(), sessions.clone(), 7, 40).await;
    assert!(
        rebuild::check(&db.pool)
            .await
            .unwrap()
            .differences
            .is_empty()
    );

    sqlx::query("UPDATE sessions SET status = 'COMPLETED', unread_count = 42 WHERE id = $1")
        .bind(sessions[0])
        .execute(&db.pool)
        .await
        .unwrap();
    let report = rebuild::check(&db.pool).await.unwrap();
    assert_eq!(report.differences.len(), 1, "{:#?}", report.differences);
    assert_eq!(report.differences[0].stream_id, sessions[0]);

    let repaired = rebuild::rebuild(&db.pool).await.unwrap();
    assert_eq!(repaired.differences.len(), 1);
    assert!(
        rebuild::check(&db.pool)
            .await
            .unwrap()
            .differences
            .is_empty()
    );
}
