//! The deliveries store: rows the consumer created, claimed by deliverers, finished with every
//! attempt recorded, and listed for people.
//!
//! Claiming is a lease, not a held lock: a claim bumps `claims` (the fencing token) and moves
//! `next_attempt_at` to the end of the lease, all in one `FOR UPDATE SKIP LOCKED` statement,
//! so concurrent processes never claim the same row and a process that dies mid-delivery
//! leaves it due again when the lease ends. Finishing applies only while the row still carries
//! the claim's token, so a late finisher never overwrites a newer claim's outcome; its attempt
//! is recorded all the same.

use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::channels::{Kind, database};
use super::notification::{Notification, Trigger};
use crate::commands::CommandError;
use crate::domain::InvalidInput;

/// A delivery a process has claimed: everything needed to send it.
#[derive(Debug)]
pub struct Claimed {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub channel_id: Uuid,
    pub kind: Kind,
    pub target: String,
    pub secret: Value,
    pub session_id: Option<Uuid>,
    /// For a question: which one (it is not sent once the question has closed).
    pub question_id: Option<Uuid>,
    pub notification: Notification,
    /// The fencing token of this claim.
    pub claim: i32,
    /// The number of the attempt this claim may make: its claim's, not counting the claims
    /// the policy gave back (a claim that died mid-attempt leaves a gap).
    pub attempt: i32,
    /// When its first attempt was made: retries give up a while after it (a delivery the
    /// policy held for hours still gets its full day of retries).
    pub first_attempt_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    /// When the event that called for it was recorded, and its tenant sequence number.
    pub event_at: OffsetDateTime,
    pub event_seq: Option<i64>,
    /// Set when a notification of requests is sent: the newest request it tells of.
    pub told_seq: Option<i64>,
}

type ClaimedRow = (
    Uuid,
    Uuid,
    Uuid,
    String,
    String,
    Value,
    Option<Uuid>,
    Option<Uuid>,
    Value,
    i32,
    OffsetDateTime,
    OffsetDateTime,
    Option<i64>,
    i32,
    Option<OffsetDateTime>,
);

/// Tenants with deliveries due (read without locking: the claim decides).
const DUE_TENANTS: &str = "\
SELECT DISTINCT tenant_id FROM notification_deliveries
WHERE status = 'pending' AND next_attempt_at <= now()
LIMIT $1";

/// One tenant's due deliveries are claimed, unless their channel was removed meanwhile (a
/// consumer pass that read the channel before the removal committed after it): those end as
/// skipped, and nothing is sent with the wiped secret. Every part names the tenant, so on
/// Citus the statement runs on that tenant's node.
const CLAIM: &str = "\
WITH due AS (
    SELECT tenant_id, id FROM notification_deliveries
    WHERE tenant_id = $3 AND status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), orphaned AS (
    UPDATE notification_deliveries d
    SET status = 'skipped', last_error = 'the channel was removed', finished_at = now()
    FROM due, notification_channels c
    WHERE d.tenant_id = $3 AND c.tenant_id = $3 AND d.id = due.id
      AND c.id = d.channel_id AND c.removed_at IS NOT NULL
)
UPDATE notification_deliveries d
SET claims = d.claims + 1, held = false, next_attempt_at = now() + make_interval(secs => $2)
FROM due, notification_channels c
WHERE d.tenant_id = $3 AND c.tenant_id = $3 AND d.id = due.id
  AND c.id = d.channel_id AND c.removed_at IS NULL
RETURNING d.tenant_id, d.id, d.channel_id, c.kind, c.target, c.secret, d.session_id,
          d.question_id, d.payload, d.claims, d.created_at, d.event_at, d.event_seq,
          d.claims - d.holds,
          (SELECT min(a.started_at) FROM notification_attempts a
           WHERE a.tenant_id = $3 AND a.delivery_id = d.id)";

/// Claim up to `limit` due deliveries for `lease_seconds`.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    lease_seconds: f64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let tenants: Vec<Uuid> = sqlx::query_scalar(DUE_TENANTS)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let mut rows: Vec<ClaimedRow> = Vec::new();
    for tenant_id in tenants {
        let left = limit - rows.len() as i64;
        if left <= 0 {
            break;
        }
        let claimed: Vec<ClaimedRow> = sqlx::query_as(CLAIM)
            .bind(left)
            .bind(lease_seconds)
            .bind(tenant_id)
            .fetch_all(pool)
            .await?;
        rows.extend(claimed);
    }
    Ok(rows
        .into_iter()
        .filter_map(
            |(
                tenant_id,
                id,
                channel_id,
                kind,
                target,
                secret,
                session_id,
                question_id,
                payload,
                claim,
                created_at,
                event_at,
                event_seq,
                attempts,
                first_attempt_at,
            )| {
                let notification = serde_json::from_value(payload)
                    .inspect_err(|e| tracing::error!(%id, "unreadable delivery payload: {e}"))
                    .ok()?;
                Some(Claimed {
                    tenant_id,
                    id,
                    channel_id,
                    kind: Kind::parse(&kind)?,
                    target,
                    secret,
                    session_id,
                    question_id,
                    notification,
                    claim,
                    attempt: attempts,
                    first_attempt_at,
                    created_at,
                    event_at,
                    event_seq,
                    told_seq: None,
                })
            },
        )
        .collect())
}

/// How a claimed delivery ends (for now).
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    Delivered,
    /// Try again at this time.
    Retry(OffsetDateTime),
    Failed,
    /// Not sent, and never will be (the question was answered first).
    Skipped,
}

impl Finish {
    fn status(&self) -> &'static str {
        match self {
            Finish::Delivered => "delivered",
            Finish::Retry(_) => "pending",
            Finish::Failed => "failed",
            Finish::Skipped => "skipped",
        }
    }
}

/// One attempt as it ended.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub started_at: OffsetDateTime,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

const FINISH: &str = "\
WITH finished AS (
    UPDATE notification_deliveries
    SET status = $4, next_attempt_at = coalesce($5, next_attempt_at), last_error = $6,
        finished_at = CASE WHEN $4 = 'pending' THEN NULL ELSE $11::timestamptz END,
        told_seq = CASE WHEN $4 = 'delivered' THEN $10 END
    WHERE tenant_id = $1 AND id = $2 AND claims = $3 AND status = 'pending'
    RETURNING id
)
INSERT INTO notification_attempts
    (tenant_id, delivery_id, attempt, started_at, finished_at, status_code, error)
SELECT $1, $2, $9, $7, now(), $8, $6
WHERE $7::timestamptz IS NOT NULL
ON CONFLICT DO NOTHING";

/// Record how `claimed` ended: the attempt (if one was made) and the delivery's new state.
pub async fn finish(
    pool: &PgPool,
    claimed: &Claimed,
    finish: &Finish,
    attempt: Option<&Attempt>,
    note: Option<&str>,
) -> Result<(), sqlx::Error> {
    let next = match finish {
        Finish::Retry(at) => Some(*at),
        _ => None,
    };
    let error = attempt.and_then(|a| a.error.as_deref()).or(note);
    sqlx::query(FINISH)
        .bind(claimed.tenant_id)
        .bind(claimed.id)
        .bind(claimed.claim)
        .bind(finish.status())
        .bind(next)
        .bind(error)
        .bind(attempt.map(|a| a.started_at))
        .bind(attempt.and_then(|a| a.status_code).map(i32::from))
        .bind(claimed.attempt)
        .bind(claimed.told_seq)
        // Citus refuses now() inside CASE: the time is ours.
        .bind(OffsetDateTime::now_utc())
        .execute(pool)
        .await?;
    Ok(())
}

/// Give the claim back without an attempt: the delivery is held, due again at `$4`.
const POSTPONE: &str = "\
UPDATE notification_deliveries SET next_attempt_at = $4, held = true, holds = holds + 1
WHERE tenant_id = $1 AND id = $2 AND claims = $3 AND status = 'pending'";

/// `claimed` is not sent before `until`.
pub async fn postpone(
    pool: &PgPool,
    claimed: &Claimed,
    until: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(POSTPONE)
        .bind(claimed.tenant_id)
        .bind(claimed.id)
        .bind(claimed.claim)
        .bind(until)
        .execute(pool)
        .await?;
    Ok(())
}

/// The tenant's held deliveries, of one kind of channel when given, are due now: what held
/// them (the policy, someone looking at the inbox) changed, and the deliverer decides again.
const RELEASE_HELD: &str = "\
UPDATE notification_deliveries d SET next_attempt_at = now()
WHERE d.tenant_id = $1 AND d.status = 'pending' AND d.held AND d.next_attempt_at > now()
  AND ($2::text IS NULL OR EXISTS (
      SELECT 1 FROM notification_channels c
      WHERE c.tenant_id = d.tenant_id AND c.id = d.channel_id AND c.kind = $2))";

pub async fn release_held(
    pool: &PgPool,
    tenant_id: Uuid,
    kind: Option<Kind>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(RELEASE_HELD)
        .bind(tenant_id)
        .bind(kind.map(Kind::as_str))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// What else decides when a claimed delivery goes out: until when an inbox of the tenant is
/// focused; when its channel last told of a request of its session, and the newest request
/// told; whether an older notification of the session's requests to the channel is being sent
/// right now (claimed, not held).
const CIRCUMSTANCES: &str = "\
SELECT (SELECT max(focused_until) FROM inbox_presence WHERE tenant_id = $1),
       told.finished_at, told.told_seq,
       EXISTS (SELECT 1 FROM notification_deliveries o
               WHERE o.tenant_id = $1 AND o.channel_id = $2 AND o.session_id = $3
                 AND o.trigger = 'question' AND o.status = 'pending' AND NOT o.held
                 AND o.claims > 0 AND (o.event_at, o.id) < ($5, $4))
FROM (SELECT max(finished_at) AS finished_at, max(told_seq) AS told_seq
      FROM notification_deliveries
      WHERE tenant_id = $1 AND channel_id = $2 AND session_id = $3 AND id <> $4
        AND status = 'delivered' AND trigger = 'question') told";

/// See [`CIRCUMSTANCES`].
pub struct Circumstances {
    pub focused_until: Option<OffsetDateTime>,
    pub last_sent: Option<OffsetDateTime>,
    pub told_seq: Option<i64>,
    pub older_in_flight: bool,
}

pub async fn circumstances(pool: &PgPool, claimed: &Claimed) -> Result<Circumstances, sqlx::Error> {
    let (focused_until, last_sent, told_seq, older_in_flight) = sqlx::query_as(CIRCUMSTANCES)
        .bind(claimed.tenant_id)
        .bind(claimed.channel_id)
        .bind(claimed.session_id)
        .bind(claimed.id)
        .bind(claimed.event_at)
        .fetch_one(pool)
        .await?;
    Ok(Circumstances {
        focused_until,
        last_sent,
        told_seq,
        older_in_flight,
    })
}

/// A request's delivery to this channel for this session that the policy holds: a new request
/// of the session joins it (it tells of every request still open when it goes out, and its
/// next claim, which decides what that is, comes after this read).
const UNSENT_REQUEST: &str = "\
SELECT EXISTS (
    SELECT 1 FROM notification_deliveries
    WHERE tenant_id = $1 AND channel_id = $2 AND session_id = $3
      AND status = 'pending' AND held AND trigger = 'question')";

pub async fn unsent_request(
    conn: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    channel_id: Uuid,
    session_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(UNSENT_REQUEST)
        .bind(tenant_id)
        .bind(channel_id)
        .bind(session_id)
        .fetch_one(conn)
        .await
}

const NEXT_DUE: &str =
    "SELECT min(next_attempt_at) FROM notification_deliveries WHERE status = 'pending'";

/// When the next pending delivery (of any process) becomes due.
pub async fn next_due(pool: &PgPool) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar(NEXT_DUE).fetch_one(pool).await
}

const PENDING: &str = "SELECT count(*) FROM notification_deliveries WHERE status = 'pending'";

/// Deliveries (of every tenant) not yet delivered, failed or skipped.
pub async fn pending(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(PENDING).fetch_one(pool).await
}

/// A new delivery row, as the consumer decides it.
#[derive(Debug)]
pub struct NewDelivery {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub channel_id: Uuid,
    pub session_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    pub event_seq: Option<i64>,
    pub event_at: OffsetDateTime,
    /// For a question: which one.
    pub question_id: Option<Uuid>,
    pub notification: Notification,
}

const INSERT: &str = "\
INSERT INTO notification_deliveries
    (tenant_id, id, channel_id, session_id, event_id, event_seq, event_at, trigger, question_id,
     payload, status, next_attempt_at)
SELECT *, 'pending', now() FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[],
     $5::uuid[], $6::bigint[], $7::timestamptz[], $8::text[], $9::uuid[], $10::jsonb[])
ON CONFLICT DO NOTHING";

/// Insert deliveries (ids already present are left as they are).
pub async fn insert(
    conn: &mut sqlx::PgConnection,
    rows: &[NewDelivery],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&NewDelivery) -> Option<Uuid>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(INSERT)
        .bind(rows.iter().map(|r| r.tenant_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.channel_id).collect::<Vec<_>>())
        .bind(column(|r| r.session_id))
        .bind(column(|r| r.event_id))
        .bind(rows.iter().map(|r| r.event_seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event_at).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.notification.trigger.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(column(|r| r.question_id))
        .bind(
            rows.iter()
                .map(|r| serde_json::to_value(&r.notification).expect("JSON serializes"))
                .collect::<Vec<_>>(),
        )
        .execute(conn)
        .await?;
    Ok(())
}

const INSERT_CLAIMED: &str = "\
WITH channel AS (
    SELECT tenant_id, id, kind, target, secret FROM notification_channels
    WHERE tenant_id = $1 AND id = $2 AND added_seq IS NOT NULL AND removed_at IS NULL
), inserted AS (
    INSERT INTO notification_deliveries
        (tenant_id, id, channel_id, event_at, trigger, payload, status, claims, next_attempt_at)
    SELECT tenant_id, $3, id, now(), 'test', $4, 'pending', 1, now() + make_interval(secs => $5)
    FROM channel
    RETURNING created_at
)
SELECT channel.kind, channel.target, channel.secret, inserted.created_at FROM channel, inserted";

/// A delivery created already claimed by the caller (a test the caller sends at once); `None`
/// when the tenant has no such channel.
pub async fn insert_claimed(
    pool: &PgPool,
    tenant_id: Uuid,
    channel_id: Uuid,
    notification: Notification,
    lease_seconds: f64,
) -> Result<Option<Claimed>, sqlx::Error> {
    let id = Uuid::now_v7();
    let row: Option<(String, String, Value, OffsetDateTime)> = sqlx::query_as(INSERT_CLAIMED)
        .bind(tenant_id)
        .bind(channel_id)
        .bind(id)
        .bind(serde_json::to_value(&notification).expect("JSON serializes"))
        .bind(lease_seconds)
        .fetch_optional(pool)
        .await?;
    Ok(row.and_then(|(kind, target, secret, created_at)| {
        Some(Claimed {
            tenant_id,
            id,
            channel_id,
            kind: Kind::parse(&kind)?,
            target,
            secret,
            session_id: None,
            question_id: None,
            notification,
            claim: 1,
            attempt: 1,
            first_attempt_at: None,
            event_at: created_at,
            event_seq: None,
            told_seq: None,
            created_at,
        })
    }))
}

/// How a channel's latest finished delivery ended: whether its notifications arrive.
#[derive(Clone, Debug)]
pub struct Health {
    pub channel_id: Uuid,
    pub failing: bool,
    pub at: OffsetDateTime,
    pub error: Option<String>,
}

const HEALTH: &str = "\
SELECT c.id, last.status = 'failed', last.finished_at, last.last_error
FROM notification_channels c
CROSS JOIN LATERAL (
    SELECT d.status, d.finished_at, d.last_error FROM notification_deliveries d
    WHERE d.tenant_id = c.tenant_id AND d.channel_id = c.id
      AND d.status IN ('delivered', 'failed')
    ORDER BY d.finished_at DESC
    LIMIT 1
) last
WHERE c.tenant_id = $1 AND c.added_seq IS NOT NULL AND c.removed_at IS NULL";

/// The health of the tenant's channels that have finished a delivery.
pub async fn health(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<Health>, sqlx::Error> {
    let rows: Vec<(Uuid, bool, OffsetDateTime, Option<String>)> = sqlx::query_as(HEALTH)
        .bind(tenant_id)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(channel_id, failing, at, error)| Health {
            channel_id,
            failing,
            at,
            error,
        })
        .collect())
}

/// A delivery as people see it, with its attempts.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryView {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub channel_kind: String,
    pub trigger: String,
    pub session_id: Option<Uuid>,
    /// The triggering event (the agent's message, or the input request).
    pub event_id: Option<Uuid>,
    /// pending, delivered, failed or skipped.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the next attempt is due (pending deliveries).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AttemptView {
    pub attempt: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

/// Which deliveries a listing shows: newest first, after `before` in that order (a delivery's
/// creation time and id: many deliveries of one pass share a time).
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub channel_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub before: Option<(OffsetDateTime, Uuid)>,
    pub limit: i64,
}

/// The statuses a delivery can have.
pub const STATUSES: [&str; 4] = ["pending", "delivered", "failed", "skipped"];

impl DeliveryFilter {
    pub fn status(text: &str) -> Result<String, InvalidInput> {
        let text = text.trim().to_ascii_lowercase();
        STATUSES
            .contains(&text.as_str())
            .then_some(text)
            .ok_or_else(|| {
                InvalidInput::new("status", "must be pending, delivered, failed or skipped")
            })
    }
}

type DeliveryRow = (
    Uuid,
    Uuid,
    String,
    String,
    Option<Uuid>,
    Option<Uuid>,
    String,
    OffsetDateTime,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<String>,
);

const LIST: &str = "\
SELECT d.id, d.channel_id, c.kind, d.trigger, d.session_id, d.event_id, d.status, d.created_at,
       d.next_attempt_at, d.finished_at, d.last_error
FROM notification_deliveries d
JOIN notification_channels c ON c.tenant_id = d.tenant_id AND c.id = d.channel_id
WHERE d.tenant_id = $1 AND ($2::text IS NULL OR d.status = $2)
  AND ($3::uuid IS NULL OR d.channel_id = $3) AND ($4::uuid IS NULL OR d.session_id = $4)
  AND ($5::timestamptz IS NULL OR (d.created_at, d.id) < ($5, $7))
ORDER BY d.created_at DESC, d.id DESC
LIMIT $6";

type AttemptRow = (
    Uuid,
    i32,
    OffsetDateTime,
    OffsetDateTime,
    Option<i32>,
    Option<String>,
);

const ATTEMPTS: &str = "\
SELECT delivery_id, attempt, started_at, finished_at, status_code, error
FROM notification_attempts WHERE tenant_id = $1 AND delivery_id = ANY($2)
ORDER BY delivery_id, attempt";

/// The tenant's deliveries, newest first, each with its attempts.
pub async fn list(
    pool: &PgPool,
    tenant_id: Uuid,
    filter: &DeliveryFilter,
) -> Result<Vec<DeliveryView>, CommandError> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(LIST)
        .bind(tenant_id)
        .bind(filter.status.as_deref())
        .bind(filter.channel_id)
        .bind(filter.session_id)
        .bind(filter.before.map(|(at, _)| at))
        .bind(filter.limit)
        .bind(filter.before.map(|(_, id)| id))
        .fetch_all(pool)
        .await
        .map_err(database)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let attempts: Vec<AttemptRow> = sqlx::query_as(ATTEMPTS)
        .bind(tenant_id)
        .bind(&ids)
        .fetch_all(pool)
        .await
        .map_err(database)?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                channel_id,
                channel_kind,
                trigger,
                session_id,
                event_id,
                status,
                created_at,
                next_attempt_at,
                finished_at,
                last_error,
            )| {
                let attempts = attempts
                    .iter()
                    .filter(|a| a.0 == id)
                    .map(|a| AttemptView {
                        attempt: a.1,
                        started_at: a.2,
                        finished_at: a.3,
                        status_code: a.4,
                        error: a.5.clone(),
                    })
                    .collect();
                DeliveryView {
                    id,
                    channel_id,
                    channel_kind,
                    trigger: Trigger::parse(&trigger).map_or(trigger, |t| t.as_str().to_owned()),
                    session_id,
                    event_id,
                    next_attempt_at: (status == "pending").then_some(next_attempt_at),
                    status,
                    created_at,
                    finished_at,
                    last_error,
                    attempts,
                }
            },
        )
        .collect())
}
