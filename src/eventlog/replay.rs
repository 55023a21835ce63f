//! Replaying an export into an empty database: the recovery and migration path.
//!
//! Every event goes back exactly as exported (same sequence numbers, ids, times, data bytes
//! and hashes); the projections are then folded from the log by the code that rebuilds them,
//! and the chain is verified before anything commits. A file that does not verify, or a
//! database that already has events, changes nothing.

use std::io::BufRead;

use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::LogError;
use super::rebuild;
use super::verify::{self, ChainReport};
use crate::push::notice::REBUILD_CHANNEL;

/// Events per INSERT at most, and bytes: PostgreSQL refuses messages over 1 GB, and a batch
/// is held in memory, so a file of large events is written in many small statements.
const BATCH: usize = 5_000;
const BATCH_BYTES: usize = 32 << 20;

const INSERT: &str = "\
INSERT INTO events (tenant_id, seq, stream_id, stream_version, event_id, event_type, data,
                    metadata, recorded_at, prev_hash, hash)
SELECT e.tenant_id, e.seq, e.stream_id, e.stream_version, e.event_id, e.event_type,
       e.data::json, e.metadata::json, e.recorded_at, e.prev_hash, e.hash
FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::int[], $5::uuid[], $6::text[],
            $7::text[], $8::text[], $9::timestamptz[], $10::bytea[], $11::bytea[])
     AS e(tenant_id, seq, stream_id, stream_version, event_id, event_type, data, metadata,
          recorded_at, prev_hash, hash)";

/// One line of an export (`txid` is the exporting database's and is not carried over).
#[derive(Deserialize)]
struct Line<'a> {
    tenant_id: Uuid,
    seq: i64,
    session_id: Uuid,
    stream_version: i32,
    event_id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow)]
    metadata: &'a RawValue,
    recorded_at: String,
    prev_hash: String,
    hash: String,
}

#[derive(Default)]
struct Columns {
    bytes: usize,
    tenant_id: Vec<Uuid>,
    seq: Vec<i64>,
    stream_id: Vec<Uuid>,
    stream_version: Vec<i32>,
    event_id: Vec<Uuid>,
    event_type: Vec<String>,
    data: Vec<String>,
    metadata: Vec<String>,
    recorded_at: Vec<time::OffsetDateTime>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    fn push(&mut self, number: u64, line: Line<'_>) -> Result<(), ReplayError> {
        let bad = |what: &str| ReplayError::Input(format!("line {number}: {what}"));
        let hash = |text: &str, field: &str| {
            hex::decode(text)
                .ok()
                .filter(|h| h.len() == 32)
                .ok_or_else(|| bad(&format!("{field} is not 32 hex-encoded bytes")))
        };
        self.recorded_at.push(
            crate::timestamp::parse(&line.recorded_at)
                .ok_or_else(|| bad("recorded_at is not an RFC 3339 time"))?,
        );
        self.prev_hash.push(hash(&line.prev_hash, "prev_hash")?);
        self.hash.push(hash(&line.hash, "hash")?);
        self.tenant_id.push(line.tenant_id);
        self.seq.push(line.seq);
        self.stream_id.push(line.session_id);
        self.stream_version.push(line.stream_version);
        self.event_id.push(line.event_id);
        self.bytes += 300 + line.data.get().len() + line.metadata.get().len();
        self.event_type.push(line.event_type);
        self.data.push(line.data.get().to_owned());
        self.metadata.push(line.metadata.get().to_owned());
        Ok(())
    }

    fn len(&self) -> usize {
        self.seq.len()
    }

    fn full(&self) -> bool {
        self.len() >= BATCH || self.bytes >= BATCH_BYTES
    }

    async fn insert(&mut self, conn: &mut PgConnection) -> Result<(), LogError> {
        let c = std::mem::take(self);
        sqlx::query(INSERT)
            .bind(c.tenant_id)
            .bind(c.seq)
            .bind(c.stream_id)
            .bind(c.stream_version)
            .bind(c.event_id)
            .bind(c.event_type)
            .bind(c.data)
            .bind(c.metadata)
            .bind(c.recorded_at)
            .bind(c.prev_hash)
            .bind(c.hash)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// What a replay did.
#[derive(Debug)]
pub struct Replayed {
    pub events: u64,
    /// Streams (sessions and accounts) folded into the projections.
    pub streams: u64,
    pub chain: ChainReport,
}

#[derive(Debug)]
pub enum ReplayError {
    /// The file is not an export (which line, and why).
    Input(String),
    /// The database already has events.
    NotEmpty(i64),
    /// The events do not form intact chains; nothing was written.
    Broken(ChainReport),
    Log(LogError),
    Io(std::io::Error),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Input(m) => f.write_str(m),
            ReplayError::NotEmpty(n) => write!(
                f,
                "replay needs an empty database; this one has {n} events (nothing was written)"
            ),
            ReplayError::Broken(report) => match report.breaks().next() {
                Some(first) => write!(
                    f,
                    "the export does not verify: {first} (nothing was written)"
                ),
                None => f.write_str("the export does not verify (nothing was written)"),
            },
            ReplayError::Log(e) => write!(f, "{e}"),
            ReplayError::Io(e) => write!(f, "cannot read the export: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

impl From<LogError> for ReplayError {
    fn from(e: LogError) -> Self {
        ReplayError::Log(e)
    }
}

impl From<sqlx::Error> for ReplayError {
    fn from(e: sqlx::Error) -> Self {
        ReplayError::Log(e.into())
    }
}

/// Replay the NDJSON export read from `input` into `pool`'s empty log, in one transaction.
pub async fn replay(pool: &PgPool, input: impl BufRead) -> Result<Replayed, ReplayError> {
    let mut tx = pool.begin().await?;
    // Nobody appends while the log is being restored.
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let present: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    if present > 0 {
        return Err(ReplayError::NotEmpty(present));
    }
    let mut columns = Columns::default();
    let mut events = 0u64;
    for (index, text) in input.lines().enumerate() {
        let text = text.map_err(ReplayError::Io)?;
        let number = index as u64 + 1;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| {
            ReplayError::Input(format!("line {number}: not an exported event: {e}"))
        })?;
        columns.push(number, line)?;
        events += 1;
        if columns.full() {
            columns.insert(&mut tx).await?;
        }
    }
    if columns.len() > 0 {
        columns.insert(&mut tx).await?;
    }
    let streams = rebuild::rewrite(&mut tx).await?;
    let chain = verify::verify_in(&mut tx, None).await?;
    if !chain.ok {
        return Err(ReplayError::Broken(chain));
    }
    // Running servers forget what they knew of the (empty) log.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(REBUILD_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Replayed {
        events,
        streams,
        chain,
    })
}
