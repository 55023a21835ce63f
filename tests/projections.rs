//! The live projections equal a rebuild from the log, after a randomized, concurrent workload
//! that exercises every command (and so every event type and fold rule). Each actor first plays
//! a fixed script on a session of its own that produces every kind of session event, so what
//! the test covers does not depend on the seed; then it does random things to sessions it
//! shares with others, so appends contend.

mod common;

use std::time::Duration;

use projections::{Actor, SessionDescribed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard::commands::{
    self, AgentMessageInput, CommandError, Context, Undelivered, UserMessageInput,
};
use switchboard::domain::choices;
use switchboard::domain::questions::Target;
use switchboard::domain::{AgentType, Content, GitDiffUpdate};
use switchboard::eventlog::{EventLog, rebuild, verify};
use time::OffsetDateTime;
use uuid::Uuid;

const DIFF: &str =
    "diff --git a/f b/f\nindex 1a2b3c4..5d6e7f8 100644\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b";

/// Every event type a session's stream can hold.
const SESSION_EVENTS: [&str; 12] = [
    "session_started",
    "agent_message",
    "user_message",
    "input_requested",
    "messages_read",
    "messages_received",
    "messages_returned",
    "git_diff_updated",
    "question_withdrawn",
    "question_expired",
    "session_described",
    "session_ended",
];

fn content(text: String) -> Content {
    Content::parse("content", text).unwrap()
}

fn says(session: Uuid, text: String) -> AgentMessageInput {
    AgentMessageInput {
        agent_type: Some(AgentType::parse("agent_type", "fuzz").unwrap()),
        ..AgentMessageInput::new(session, content(text))
    }
}

fn asks(session: Uuid, text: String) -> AgentMessageInput {
    AgentMessageInput {
        requires_user_input: true,
        ..says(session, text)
    }
}

fn answers(session: Uuid, text: &str, target: Target) -> UserMessageInput {
    UserMessageInput {
        session_id: session,
        content: content(text.to_owned()),
        mark_as_read: false,
        updated_input: None,
        target,
        terminal: false,
    }
}

/// A moment after every deadline the workload sets.
fn far_future() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(1)
}

/// Every kind of session event, on a session of its own.
async fn script(log: &EventLog, ctx: &Context) {
    let s = Uuid::new_v4();
    let step = AgentMessageInput {
        git_diff: Some(GitDiffUpdate::parse("git_diff", DIFF).unwrap()),
        describe: SessionDescribed {
            title: Some("scripted".into()),
            ..SessionDescribed::default()
        },
        ..says(s, "start".into())
    };
    let started = commands::send_agent_message(log, ctx, step).await.unwrap();
    // Read by cursor.
    commands::send_user_message(log, ctx, answers(s, "note", Target::Unnamed))
        .await
        .unwrap();
    commands::pending(log, ctx, s, Some(started.message_id))
        .await
        .unwrap();
    // A step becomes a question; answered, its answer received and given back.
    let later = commands::send_agent_message(log, ctx, says(s, "later".into()))
        .await
        .unwrap();
    commands::request_input(log, ctx, later.message_id)
        .await
        .unwrap();
    commands::send_user_message(
        log,
        ctx,
        answers(s, "yes", Target::Question(later.message_id)),
    )
    .await
    .unwrap();
    let answer = receive(log, ctx, s, later.message_id).await.unwrap();
    commands::return_undelivered(
        log,
        ctx,
        Undelivered {
            session_id: s,
            message_ids: answer.taken,
            read_cursor: Some(later.message_id),
        },
    )
    .await
    .unwrap();
    // Withdrawn, expired, and one left open when the session ends.
    let gave_up = commands::send_agent_message(log, ctx, asks(s, "withdraw me".into()))
        .await
        .unwrap();
    commands::withdraw_question(
        log,
        ctx,
        s,
        gave_up.message_id,
        Actor::Agent,
        "gave up".into(),
    )
    .await
    .unwrap();
    let deadline = AgentMessageInput {
        expires_in: Some(Duration::from_secs(60)),
        ..asks(s, "expire me".into())
    };
    let expiring = commands::send_agent_message(log, ctx, deadline)
        .await
        .unwrap();
    commands::expire_question(log, ctx, s, expiring.message_id, far_future())
        .await
        .unwrap();
    commands::send_agent_message(log, ctx, asks(s, "left open".into()))
        .await
        .unwrap();
    commands::end_session(log, ctx, s).await.unwrap();
}

/// Take the answer to `question`, at once.
async fn receive(
    log: &EventLog,
    ctx: &Context,
    session: Uuid,
    question: Uuid,
) -> Result<commands::Answer, CommandError> {
    let hub = switchboard::push::Hub::new();
    let auth = std::sync::Arc::new(switchboard::auth::Authenticator::new(
        std::sync::Arc::new(common::signing_keys().await),
        log.pool().clone(),
    ));
    let mut access = auth.guard(ctx.grant);
    let stop = tokio_util::sync::CancellationToken::new();
    commands::wait_for_answer(
        log,
        &hub,
        ctx,
        session,
        question,
        Duration::ZERO,
        &stop,
        &mut access,
    )
    .await?
    .ok_or_else(|| CommandError::Conflict("not answered yet".into()))
}

/// One simulated agent with its person, doing random things to a few sessions.
async fn actor(log: EventLog, ctx: Context, sessions: Vec<Uuid>, seed: u64, steps: usize) {
    script(&log, &ctx).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut last_agent_message: Vec<Option<Uuid>> = vec![None; sessions.len()];
    let mut asked: Vec<Vec<Uuid>> = vec![Vec::new(); sessions.len()];
    for step in 0..steps {
        let i = rng.random_range(0..sessions.len());
        let session = sessions[i];
        let text = format!("message {step} from {seed}");
        let question = asked[i]
            .get(rng.random_range(0..asked[i].len().max(1)))
            .copied();
        let result: Result<(), CommandError> = match rng.random_range(0..100) {
            0..30 => {
                let requires_user_input = rng.random_bool(0.4);
                let input = AgentMessageInput {
                    requires_user_input,
                    send_push: rng.random_bool(0.5).then_some(true),
                    git_diff: match rng.random_range(0..10) {
                        0 => Some(GitDiffUpdate::parse("git_diff", DIFF).unwrap()),
                        1 => Some(GitDiffUpdate::Clear),
                        _ => None,
                    },
                    options: (requires_user_input && rng.random_bool(0.3))
                        .then(|| vec!["A".to_owned(), "B".to_owned()]),
                    expires_in: (requires_user_input && rng.random_bool(0.2))
                        .then_some(Duration::from_secs(3600)),
                    leaves_unread: rng.random_bool(0.2),
                    describe: SessionDescribed {
                        branch: rng.random_bool(0.1).then(|| format!("b{}", step % 3)),
                        ..SessionDescribed::default()
                    },
                    ..says(session, text)
                };
                commands::send_agent_message(&log, &ctx, input)
                    .await
                    .map(|sent| {
                        last_agent_message[i] = Some(sent.message_id);
                        if requires_user_input {
                            asked[i].push(sent.message_id);
                        }
                    })
            }
            30..38 => {
                let approval = choices::approval(
                    "Bash",
                    serde_json::Map::from_iter([("command".into(), "ls".into())]),
                    None,
                    Vec::new(),
                )
                .unwrap();
                let input = AgentMessageInput {
                    approval: Some(approval),
                    ..asks(session, text)
                };
                commands::send_agent_message(&log, &ctx, input)
                    .await
                    .map(|sent| asked[i].push(sent.message_id))
            }
            38..62 => {
                let target = match (rng.random_range(0..4), question) {
                    (0, _) | (_, None) => Target::Unnamed,
                    (1, _) => Target::Nothing,
                    (_, Some(q)) => Target::Question(q),
                };
                let input = UserMessageInput {
                    mark_as_read: rng.random_bool(0.25),
                    ..answers(session, ["A", "Allow", "Deny", "words"][step % 4], target)
                };
                commands::send_user_message(&log, &ctx, input)
                    .await
                    .map(drop)
            }
            62..72 => {
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
            72..78 => match question {
                Some(q) => receive(&log, &ctx, session, q).await.map(drop),
                None => Ok(()),
            },
            78..84 => match last_agent_message[i] {
                Some(message) => commands::request_input(&log, &ctx, message)
                    .await
                    .map(|r| asked[i].push(r.message_id)),
                None => Ok(()),
            },
            84..88 => match question {
                Some(q) => commands::withdraw_question(&log, &ctx, session, q, Actor::Agent, text)
                    .await
                    .map(drop),
                None => Ok(()),
            },
            88..91 => match question {
                Some(q) => commands::expire_question(&log, &ctx, session, q, far_future())
                    .await
                    .map(drop),
                None => Ok(()),
            },
            91..93 => commands::end_session(&log, &ctx, session).await.map(drop),
            93..96 => {
                let title = SessionDescribed {
                    title: Some(format!("title {}", step % 4)),
                    ..SessionDescribed::default()
                };
                commands::describe_session(&log, &ctx, session, title)
                    .await
                    .map(drop)
            }
            _ => commands::heartbeat(&log, &ctx, session).await.map(drop),
        };
        match result {
            Ok(()) => {}
            // Ended sessions, closed questions, questions asked twice, sessions not started
            // yet, answers a person may not give: all expected.
            Err(
                CommandError::Conflict(_)
                | CommandError::BadRequest(_)
                | CommandError::NotFound(_)
                | CommandError::Invalid(_),
            ) => {}
            Err(other) => panic!("seed {seed} step {step}: {other:?}"),
        }
    }
}

async fn event_types(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT DISTINCT event_type FROM events ORDER BY event_type")
        .fetch_all(pool)
        .await
        .unwrap()
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

    let types = event_types(&db.pool).await;
    for kind in SESSION_EVENTS {
        assert!(types.iter().any(|t| t == kind), "no {kind} in {types:?}");
    }
    let report = rebuild::check(&db.pool).await.unwrap();
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
