//! Checking the log: every tenant's sequence is 1, 2, 3, ... without gaps, every event's
//! `prev_hash` is the hash before it, every hash matches the event's contents, every session's
//! versions are 1, 2, 3, ..., and no session's projection records events the log no longer
//! has (which is how removing the last events shows). Any edit, removal or reordering of
//! stored events fails one of these at the first position it touches.

use std::collections::HashMap;

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::LogError;
use super::chain::{GENESIS, Hash, Link};

const EVENTS: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text,
       metadata::text, recorded_at, prev_hash, hash
FROM events WHERE ($1::uuid IS NULL OR tenant_id = $1) ORDER BY tenant_id, seq";

/// What the projections say each stream's log holds (sessions, and accounts, whose stream id is
/// the tenant id): written in the same statements as the events, so it records the end of every
/// stream even after its last events are removed.
const SESSION_ENDS: &str = "\
SELECT tenant_id, id, version, last_seq FROM sessions WHERE ($1::uuid IS NULL OR tenant_id = $1)
UNION ALL
SELECT tenant_id, tenant_id, version, last_seq FROM users WHERE ($1::uuid IS NULL OR tenant_id = $1)";

type Row = (
    Uuid,
    i64,
    Uuid,
    i32,
    Uuid,
    String,
    String,
    String,
    OffsetDateTime,
    Vec<u8>,
    Vec<u8>,
);

/// The first place a tenant's log is broken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Break {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tenant {} seq {}: {}",
            self.tenant_id, self.seq, self.reason
        )
    }
}

/// One tenant's log as verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantChain {
    pub tenant_id: Uuid,
    pub events: u64,
    pub last_seq: i64,
    /// Hex SHA-256 of the last event: record it to detect a rewritten history later.
    pub head_hash: String,
    pub broken: Option<Break>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub ok: bool,
    pub events: u64,
    pub tenants: Vec<TenantChain>,
}

impl ChainReport {
    pub fn breaks(&self) -> impl Iterator<Item = &Break> {
        self.tenants.iter().filter_map(|t| t.broken.as_ref())
    }
}

/// Walks one tenant's events in seq order.
struct Walk {
    tenant_id: Uuid,
    events: u64,
    last_seq: i64,
    last_hash: Hash,
    stream_versions: HashMap<Uuid, i32>,
    broken: Option<Break>,
}

impl Walk {
    fn new(tenant_id: Uuid) -> Walk {
        Walk {
            tenant_id,
            events: 0,
            last_seq: 0,
            last_hash: GENESIS,
            stream_versions: HashMap::new(),
            broken: None,
        }
    }

    fn step(&mut self, row: &Row) {
        self.events += 1;
        if self.broken.is_some() {
            return;
        }
        let (
            tenant_id,
            seq,
            stream_id,
            stream_version,
            event_id,
            event_type,
            data,
            metadata,
            recorded_at,
            prev_hash,
            hash,
        ) = row;
        let fail = |seq: i64, reason: String| {
            Some(Break {
                tenant_id: *tenant_id,
                seq,
                reason,
            })
        };
        let expected_seq = self.last_seq + 1;
        if *seq != expected_seq {
            self.broken = fail(
                expected_seq,
                format!("missing: the next event present is seq {seq}"),
            );
            return;
        }
        if prev_hash.as_slice() != self.last_hash {
            self.broken = fail(
                *seq,
                "prev_hash is not the hash of the event before it (an event was removed, \
                 inserted or reordered)"
                    .into(),
            );
            return;
        }
        let link = Link {
            tenant_id: *tenant_id,
            seq: *seq,
            stream_id: *stream_id,
            stream_version: *stream_version,
            event_id: *event_id,
            recorded_at: *recorded_at,
            event_type,
            data,
            metadata,
        };
        let computed = link.hash(&self.last_hash);
        if hash.as_slice() != computed {
            self.broken = fail(
                *seq,
                "hash does not match the event's contents (its data, metadata or fields were \
                 changed)"
                    .into(),
            );
            return;
        }
        let version = self.stream_versions.entry(*stream_id).or_insert(0);
        if *stream_version != *version + 1 {
            self.broken = fail(
                *seq,
                format!(
                    "session {stream_id} jumps from version {} to {stream_version}",
                    *version
                ),
            );
            return;
        }
        *version = *stream_version;
        self.last_seq = *seq;
        self.last_hash = computed;
    }

    /// Close the walk, checking each session's recorded end (version, last seq) against it.
    fn finish(mut self, session_ends: &[(Uuid, i32, i64)]) -> TenantChain {
        if self.broken.is_none() {
            for &(session_id, version, last_seq) in session_ends {
                let logged = self.stream_versions.get(&session_id).copied().unwrap_or(0);
                if version > logged {
                    self.broken = Some(Break {
                        tenant_id: self.tenant_id,
                        seq: self.last_seq + 1,
                        reason: format!(
                            "the log ends at seq {} but session {session_id} is recorded up to \
                             seq {last_seq} (version {version}, the log has version {logged}): \
                             events were removed",
                            self.last_seq
                        ),
                    });
                    break;
                }
            }
        }
        TenantChain {
            tenant_id: self.tenant_id,
            events: self.events,
            last_seq: self.last_seq,
            head_hash: hex::encode(self.last_hash),
            broken: self.broken,
        }
    }
}

/// Verify one tenant's log, or every tenant's, in one consistent snapshot.
pub async fn verify(pool: &PgPool, tenant: Option<Uuid>) -> Result<ChainReport, LogError> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let report = verify_in(&mut tx, tenant).await?;
    tx.rollback().await?;
    Ok(report)
}

/// [`verify`] in the caller's transaction (a replay checks what it wrote before committing).
pub async fn verify_in(
    tx: &mut PgConnection,
    tenant: Option<Uuid>,
) -> Result<ChainReport, LogError> {
    // The primary key already holds the order: stream from it rather than sort first.
    sqlx::query("SET LOCAL enable_sort = off")
        .execute(&mut *tx)
        .await?;
    let ends: Vec<(Uuid, Uuid, i32, i64)> = sqlx::query_as(SESSION_ENDS)
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
    let mut session_ends: HashMap<Uuid, Vec<(Uuid, i32, i64)>> = HashMap::new();
    for (tenant_id, session_id, version, last_seq) in ends {
        session_ends
            .entry(tenant_id)
            .or_default()
            .push((session_id, version, last_seq));
    }
    let mut report = ChainReport::default();
    let mut walk: Option<Walk> = None;
    {
        let mut rows = sqlx::query_as::<_, Row>(EVENTS)
            .bind(tenant)
            .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            if walk.as_ref().is_none_or(|w| w.tenant_id != row.0) {
                if let Some(done) = walk.take() {
                    let ends = session_ends.remove(&done.tenant_id).unwrap_or_default();
                    report.tenants.push(done.finish(&ends));
                }
                walk = Some(Walk::new(row.0));
            }
            walk.as_mut().expect("set above").step(&row);
        }
    }
    if let Some(done) = walk.take() {
        let ends = session_ends.remove(&done.tenant_id).unwrap_or_default();
        report.tenants.push(done.finish(&ends));
    }
    // Tenants whose sessions are recorded but whose events are all gone.
    for (tenant_id, ends) in session_ends {
        report.tenants.push(Walk::new(tenant_id).finish(&ends));
    }
    report.tenants.sort_by_key(|t| t.tenant_id);
    report.events = report.tenants.iter().map(|t| t.events).sum();
    report.ok = report.tenants.iter().all(|t| t.broken.is_none());
    Ok(report)
}
