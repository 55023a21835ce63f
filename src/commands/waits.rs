//! Who waits for a question's answer right now: presence, not conversation (like heartbeats,
//! it is not in the log and not rebuilt).
//!
//! A wait records until when it waits ([`waiting`]); a wait whose client gave up on it records
//! when ([`abandoned`]). From these the inbox says whether anyone still waits for an open
//! question, and the sweeper withdraws a question whose wait was abandoned and not resumed
//! within the grace period. Both are best effort: a wait that cannot record itself still waits.

use std::collections::HashMap;

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Context;

/// Only for a question that is open: a wait for anything else records nothing.
const WAITING: &str = "\
INSERT INTO question_waits (tenant_id, session_id, question_id, waiting_until)
SELECT $1, $2, $3, $4
WHERE EXISTS (SELECT 1 FROM questions
              WHERE tenant_id = $1 AND session_id = $2 AND id = $3 AND status = 'open')
ON CONFLICT (tenant_id, session_id, question_id) DO UPDATE
SET waiting_until = greatest(question_waits.waiting_until, EXCLUDED.waiting_until),
    abandoned_at = NULL";

const ABANDONED: &str = "\
UPDATE question_waits SET abandoned_at = now(), waiting_until = least(waiting_until, now())
WHERE tenant_id = $1 AND session_id = $2 AND question_id = $3";

const WAITS: &str = "\
SELECT question_id, waiting_until, abandoned_at FROM question_waits
WHERE tenant_id = $1 AND session_id = $2 AND question_id = ANY($3)";

/// What is known of the waits for one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    /// The latest time some wait for it runs until.
    pub waiting_until: OffsetDateTime,
    /// When the last wait for it was abandoned by its client (and none began since).
    pub abandoned_at: Option<OffsetDateTime>,
}

impl Wait {
    /// Is someone waiting at `now`?
    pub fn waiting_at(&self, now: OffsetDateTime) -> bool {
        self.waiting_until > now
    }
}

/// A wait for `question_id` runs until `until`.
pub async fn waiting(
    pool: &PgPool,
    tenant_id: Uuid,
    session_id: Uuid,
    question_id: Uuid,
    until: OffsetDateTime,
) {
    let recorded = sqlx::query(WAITING)
        .bind(tenant_id)
        .bind(session_id)
        .bind(question_id)
        .bind(until)
        .execute(pool)
        .await;
    if let Err(e) = recorded {
        tracing::debug!(question = %question_id, "cannot record a wait: {e}");
    }
}

/// The client of a wait for `question_id` gave up on it.
pub async fn abandoned(pool: &PgPool, tenant_id: Uuid, session_id: Uuid, question_id: Uuid) {
    let recorded = sqlx::query(ABANDONED)
        .bind(tenant_id)
        .bind(session_id)
        .bind(question_id)
        .execute(pool)
        .await;
    if let Err(e) = recorded {
        tracing::warn!(question = %question_id, "cannot record an abandoned wait: {e}");
    }
}

/// The waits recorded for these questions of a session.
pub async fn waits(
    pool: &PgPool,
    tenant_id: Uuid,
    session_id: Uuid,
    question_ids: &[Uuid],
) -> Result<HashMap<Uuid, Wait>, sqlx::Error> {
    if question_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, OffsetDateTime, Option<OffsetDateTime>)> = sqlx::query_as(WAITS)
        .bind(tenant_id)
        .bind(session_id)
        .bind(question_ids)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, waiting_until, abandoned_at)| {
            (
                id,
                Wait {
                    waiting_until,
                    abandoned_at,
                },
            )
        })
        .collect())
}

/// A wait in progress, recorded as abandoned if it is dropped before [`Abandonment::finished`]
/// (its client hung up while it waited).
pub struct Abandonment {
    pool: PgPool,
    tenant_id: Uuid,
    session_id: Uuid,
    question_id: Uuid,
    finished: bool,
}

impl Abandonment {
    pub fn new(pool: &PgPool, ctx: &Context, session_id: Uuid, question_id: Uuid) -> Abandonment {
        Abandonment {
            pool: pool.clone(),
            tenant_id: ctx.tenant_id,
            session_id,
            question_id,
            finished: false,
        }
    }

    /// The wait ended by itself (answered, timed out, refused): nothing to record.
    pub fn finished(&mut self) {
        self.finished = true;
    }
}

impl Drop for Abandonment {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (pool, tenant, session, question) = (
            self.pool.clone(),
            self.tenant_id,
            self.session_id,
            self.question_id,
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { abandoned(&pool, tenant, session, question).await });
        }
    }
}
