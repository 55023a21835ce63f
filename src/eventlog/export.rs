//! Reading the log out, for auditors: one tenant's events in sequence order, page by page, or
//! every tenant's in transaction order.
//!
//! One tenant: its sequence is gap-free and in commit order, so "seq > n" pages never skip an
//! event, however the pages interleave with appends, and no snapshot has to stay open while a
//! slow client reads. An export stops at the head it saw when it began.
//!
//! All tenants: there is no global sequence, so an export takes every event of the
//! transactions older than the oldest one still running (`pg_snapshot_xmin`), tenant by
//! tenant in sequence order, and reports that horizon. Any transaction that could still commit
//! is at or above it, so the next export (`--after` = horizon - 1) takes up exactly where this
//! one stopped and nothing is ever skipped. Because a writer only appends after reading the
//! tenant's head, an event's txid is larger than that of every earlier event of its tenant:
//! what one export holds of a tenant is always the continuation of the previous one.
//!
//! On Citus transaction ids are each node's own, so there is no horizon: an export of all
//! users takes each tenant's events up to its head as it began, and reports those heads.

use std::collections::BTreeMap;
use std::io::Write;

use futures::{Stream, TryStreamExt, stream};
use sqlx::PgPool;
use uuid::Uuid;

use super::LogError;
use super::read::{self, Page, StoredEvent};

/// What the command-line export reads at a time.
const CLI_PAGE: Page = Page {
    rows: 5_000,
    bytes: 16 << 20,
};

/// The tenant's events after `after`, up to and including `until`, in pages within `page`.
pub fn tenant_pages(
    pool: PgPool,
    tenant_id: Uuid,
    after: i64,
    until: i64,
    page: Page,
) -> impl Stream<Item = Result<Vec<StoredEvent>, LogError>> + Send + 'static {
    stream::try_unfold((after, page), move |(last, asked)| {
        let pool = pool.clone();
        async move {
            if last >= until {
                return Ok(None);
            }
            let this = Page {
                rows: asked.rows.min(until - last),
                ..asked
            };
            let mut conn = pool.acquire().await?;
            let events = read::events_after(&mut conn, tenant_id, None, last, this).await?;
            match events.last() {
                Some(newest) => {
                    let next = (newest.seq, page.after(this, events.len()));
                    Ok(Some((events, next)))
                }
                None => Ok(None),
            }
        }
    })
}

/// The tenant's newest sequence number.
pub async fn tenant_head(pool: &PgPool, tenant_id: Uuid) -> Result<i64, LogError> {
    let mut conn = pool.acquire().await?;
    read::tenant_head(&mut conn, tenant_id).await
}

/// Write the tenant's events after `after` as NDJSON; returns how many.
pub async fn export_tenant(
    pool: &PgPool,
    tenant_id: Uuid,
    after: i64,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let head = tenant_head(pool, tenant_id).await?;
    let written = write_tenant(pool, tenant_id, after, head, &mut String::new(), out).await?;
    out.flush()?;
    Ok(written)
}

/// Write the tenant's events after `from` up to `head`, one JSON line each, a page at a time
/// (`text` is the page's buffer, reused); how many were written.
async fn write_tenant(
    pool: &PgPool,
    tenant_id: Uuid,
    from: i64,
    head: i64,
    text: &mut String,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let mut pages = std::pin::pin!(tenant_pages(pool.clone(), tenant_id, from, head, CLI_PAGE));
    let mut written = 0;
    while let Some(page) = pages.try_next().await? {
        text.clear();
        for event in &page {
            event.write_json(text);
            text.push('\n');
        }
        out.write_all(text.as_bytes())?;
        written += page.len() as u64;
    }
    Ok(written)
}

const ALL_AFTER: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text AS data,
       metadata::text AS metadata, recorded_at, txid, prev_hash, hash
FROM events WHERE txid > $1 AND txid < $2 ORDER BY tenant_id, seq";

const SNAPSHOT_XMIN: &str = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

/// Where an export of all users stopped, for the next one to continue from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// Plain PostgreSQL: every event of a transaction up to this one was exported
    /// (`Horizon(0)`: nothing yet, on either kind of database).
    Horizon(i64),
    /// Citus, where transaction ids are each node's own and make no horizon: each tenant's
    /// events up to its sequence number were exported (a tenant not named: none of them).
    Heads(BTreeMap<Uuid, i64>),
}

impl Position {
    pub const START: Position = Position::Horizon(0);
}

/// What [`export_all`] wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    pub events: u64,
    /// Pass as `after` to continue.
    pub next: Position,
}

/// Write every tenant's events after `after` as NDJSON, tenant by tenant in sequence order:
/// on plain PostgreSQL up to the horizon (see the module documentation), on Citus up to each
/// tenant's head as it was when the export began.
pub async fn export_all(
    pool: &PgPool,
    after: &Position,
    out: &mut impl Write,
) -> Result<Exported, ExportError> {
    let citus = crate::database::pool_is_citus(pool)
        .await
        .map_err(LogError::from)?;
    let nothing_yet = BTreeMap::new();
    match (citus, after) {
        (false, Position::Horizon(txid)) => export_below_horizon(pool, *txid, out).await,
        (true, Position::Horizon(0)) => export_to_heads(pool, &nothing_yet, out).await,
        (true, Position::Heads(heads)) => export_to_heads(pool, heads, out).await,
        _ => Err(ExportError::OtherDatabase),
    }
}

/// Every tenant's head, in tenant order.
const TENANT_HEADS: &str =
    "SELECT tenant_id, max(seq) FROM events GROUP BY tenant_id ORDER BY tenant_id";

/// Each tenant's events after `after`'s sequence number for it, up to its head now. A
/// tenant's sequence is gap-free and in commit order, so its head being visible means every
/// event up to it is, and the next export continues exactly there.
async fn export_to_heads(
    pool: &PgPool,
    after: &BTreeMap<Uuid, i64>,
    out: &mut impl Write,
) -> Result<Exported, ExportError> {
    let heads: Vec<(Uuid, i64)> = sqlx::query_as(TENANT_HEADS)
        .fetch_all(pool)
        .await
        .map_err(LogError::from)?;
    let mut next = after.clone();
    let mut events = 0;
    let mut text = String::new();
    for (tenant_id, head) in heads {
        let from = after.get(&tenant_id).copied().unwrap_or(0);
        events += write_tenant(pool, tenant_id, from, head, &mut text, out).await?;
        next.insert(tenant_id, head.max(from));
    }
    out.flush()?;
    Ok(Exported {
        events,
        next: Position::Heads(next),
    })
}

/// Plain PostgreSQL: the events of transactions after `after_txid` and below the horizon.
async fn export_below_horizon(
    pool: &PgPool,
    after_txid: i64,
    out: &mut impl Write,
) -> Result<Exported, ExportError> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(LogError::from)?;
    // The primary key already holds the order: stream from it rather than sort first.
    sqlx::query("SET LOCAL enable_sort = off")
        .execute(&mut *tx)
        .await
        .map_err(LogError::from)?;
    let horizon: i64 = sqlx::query_scalar(SNAPSHOT_XMIN)
        .fetch_one(&mut *tx)
        .await
        .map_err(LogError::from)?;
    let mut events = 0;
    {
        let mut rows = sqlx::query_as::<_, StoredEvent>(ALL_AFTER)
            .bind(after_txid)
            .bind(horizon)
            .fetch(&mut *tx);
        let mut line = String::new();
        while let Some(event) = rows.try_next().await.map_err(LogError::from)? {
            line.clear();
            event.write_json(&mut line);
            line.push('\n');
            out.write_all(line.as_bytes())?;
            events += 1;
        }
    }
    tx.rollback().await.map_err(LogError::from)?;
    out.flush()?;
    Ok(Exported {
        events,
        next: Position::Horizon((horizon - 1).max(after_txid)),
    })
}

#[derive(Debug)]
pub enum ExportError {
    Log(LogError),
    Io(std::io::Error),
    /// A cursor of the other kind of database (a transaction horizon on Citus, tenant heads
    /// on plain PostgreSQL).
    OtherDatabase,
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::Log(e) => write!(f, "{e}"),
            ExportError::Io(e) => write!(f, "cannot write the export: {e}"),
            ExportError::OtherDatabase => write!(
                f,
                "this cursor continues an export of another kind of database (plain \
                 PostgreSQL or Citus); start again without --cursor"
            ),
        }
    }
}

impl std::error::Error for ExportError {}

impl From<LogError> for ExportError {
    fn from(e: LogError) -> Self {
        ExportError::Log(e)
    }
}

impl From<std::io::Error> for ExportError {
    fn from(e: std::io::Error) -> Self {
        ExportError::Io(e)
    }
}
