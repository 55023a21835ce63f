//! The question sweeper: closes questions whose time has come, in every tenant.
//!
//! - A question whose deadline passed (`expires_at`) expires.
//! - A question whose wait was abandoned by its client (an MCP call cancelled or hung up, a
//!   long-poll dropped) and that nobody waited for again within the grace period is withdrawn:
//!   nobody is left to receive its answer.
//!
//! Each is a command on the tenant's log with an event id derived from the question, so the
//! sweepers of several processes closing the same question at once append one event. One look
//! is one statement: what is due, and when the next thing will be. The sweeper sleeps until
//! then (at most [`MAX_PAUSE`]), or until a commit may have added a deadline (at most once per
//! [`MIN_LOOK_INTERVAL`]). Once in a while it forgets the waits of questions that closed.

use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::App;
use crate::commands::{self, CommandError, Context};
use crate::eventlog::EventLog;
use crate::push::Hub;
use projections::Actor;

/// The longest the sweeper sleeps without looking.
pub const MAX_PAUSE: Duration = Duration::from_secs(30);
/// The shortest time between two looks.
pub const MIN_LOOK_INTERVAL: Duration = Duration::from_secs(1);
/// How often the waits of closed questions are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(600);
/// Questions closed per kind and look at most (the next look takes the rest at once).
const PER_LOOK: i64 = 100;

/// What is due, and when the next thing is (a row with `what = 'next'`).
const LOOK: &str = "\
(SELECT 'expire' AS what, tenant_id, session_id, id, NULL::timestamptz AS at
 FROM questions WHERE status = 'open' AND expires_at <= now()
 ORDER BY expires_at LIMIT $2)
UNION ALL
(SELECT 'withdraw', w.tenant_id, w.session_id, w.question_id, NULL
 FROM question_waits w
 JOIN questions q ON q.tenant_id = w.tenant_id AND q.session_id = w.session_id
                 AND q.id = w.question_id
 WHERE w.abandoned_at <= now() - $1 AND q.status = 'open'
 LIMIT $2)
UNION ALL
SELECT 'next', NULL, NULL, NULL, least(
    (SELECT min(expires_at) FROM questions WHERE status = 'open' AND expires_at > now()),
    (SELECT min(w.abandoned_at) + $1 FROM question_waits w
     JOIN questions q ON q.tenant_id = w.tenant_id AND q.session_id = w.session_id
                     AND q.id = w.question_id
     WHERE q.status = 'open' AND w.abandoned_at > now() - $1))";

const FORGET: &str = "\
DELETE FROM question_waits w
WHERE NOT EXISTS (SELECT 1 FROM questions q
                  WHERE q.tenant_id = w.tenant_id AND q.session_id = w.session_id
                    AND q.id = w.question_id AND q.status = 'open')";

type Row = (
    String,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
    Option<OffsetDateTime>,
);

/// Start `app`'s sweeper; it stops when the app shuts down.
pub fn start(app: &App) {
    let sweeper = Sweeper {
        log: app.log.clone(),
        grace: app.config.abandoned_grace,
    };
    let hub = app.hub.clone();
    let shutdown = app.shutdown.clone();
    tokio::spawn(async move { sweeper.run(hub, shutdown).await });
}

struct Sweeper {
    log: EventLog,
    /// How long an abandoned wait may be resumed before its question is withdrawn.
    grace: Duration,
}

impl Sweeper {
    async fn run(self, hub: std::sync::Arc<Hub>, shutdown: CancellationToken) {
        let mut news = hub.watch_all();
        let mut forgotten = tokio::time::Instant::now();
        let mut failing = false;
        while !shutdown.is_cancelled() {
            let started = tokio::time::Instant::now();
            let pause = match self.look().await {
                Ok(pause) => {
                    failing = false;
                    pause
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!("question sweeper: {e}");
                    }
                    failing = true;
                    Duration::from_secs(1)
                }
            };
            if started - forgotten >= FORGET_EVERY {
                forgotten = started;
                if let Err(e) = sqlx::query(FORGET).execute(self.log.pool()).await {
                    tracing::debug!("question sweeper: cannot forget closed waits: {e}");
                }
            }
            if !pause.is_zero() {
                tokio::select! {
                    _ = news.changed() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            tokio::time::sleep_until(started + MIN_LOOK_INTERVAL).await;
        }
    }

    /// Close what is due; how long until the next thing will be.
    async fn look(&self) -> Result<Duration, sqlx::Error> {
        let grace = self.grace.as_secs_f64();
        let rows: Vec<Row> = sqlx::query_as(LOOK)
            .bind(time::Duration::seconds_f64(grace))
            .bind(PER_LOOK)
            .fetch_all(self.log.pool())
            .await?;
        let now = OffsetDateTime::now_utc();
        let mut pause = MAX_PAUSE;
        let mut busy = false;
        for (what, tenant, session, question, at) in rows {
            match (what.as_str(), tenant, session, question) {
                ("expire", Some(tenant), Some(session), Some(question)) => {
                    busy = true;
                    let ctx = Context::system(tenant);
                    let expired =
                        commands::expire_question(&self.log, &ctx, session, question, now).await;
                    report(question, "expire", expired.map(drop));
                }
                ("withdraw", Some(tenant), Some(session), Some(question)) => {
                    busy = true;
                    let ctx = Context::system(tenant);
                    let reason = format!(
                        "the agent's wait for it was abandoned and it did not wait again within {} s",
                        self.grace.as_secs()
                    );
                    let withdrawn = commands::withdraw_question(
                        &self.log,
                        &ctx,
                        session,
                        question,
                        Actor::System,
                        reason,
                    )
                    .await;
                    report(question, "withdraw", withdrawn.map(drop));
                }
                ("next", _, _, _) => {
                    if let Some(at) = at {
                        let until = (at - now).max(time::Duration::ZERO);
                        pause = pause.min(until.try_into().unwrap_or(MAX_PAUSE));
                    }
                }
                _ => {}
            }
        }
        Ok(if busy { Duration::ZERO } else { pause })
    }
}

/// Log how closing a question went: closed by another process (or answered first) is fine.
fn report(question: Uuid, what: &str, outcome: Result<(), CommandError>) {
    match outcome {
        Ok(()) => tracing::info!(%question, "question sweeper: {what}"),
        Err(CommandError::Conflict(_) | CommandError::NotFound(_)) => {}
        Err(e) => tracing::warn!(%question, "question sweeper: cannot {what}: {e}"),
    }
}
