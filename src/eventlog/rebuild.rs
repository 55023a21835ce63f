//! Rebuilding the projections from the log, and checking that the live tables equal a
//! rebuild. Both fold the log with the functions the append path uses
//! ([`projections::session::apply`], [`projections::account::apply`]), so any difference is a
//! bug (or tampering), never a matter of two implementations.
//!
//! Memory stays bounded whatever the size of the log: events are read through a server-side
//! cursor in (tenant, stream, version) order, so only one stream is being folded at a time;
//! the live tables are read through cursors in the same order and compared as they go
//! (a merge); rebuilt rows are written in batches bounded in bytes; fetches shrink when rows are
//! large. Message texts, which no projection needs, are left out of large events' reads.

use std::collections::{BTreeMap, VecDeque};

use projections::{Account, InboxMessage, RecordedEvent, SessionState, is_account_stream};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::LogError;
use super::read::{self, EventRow, InboxRecord, SessionRecord};
use super::write::{InboxColumns, SessionColumns};

/// Every event in stream order. A large message's text is replaced by "" (folding never
/// reads it), so rows stay small; the other fields are exactly as stored.
const STREAM_EVENTS: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type,
       CASE WHEN event_type IN ('agent_message', 'user_message')
                 AND octet_length(data::text) > 4096
            THEN jsonb_set(data::jsonb, '{content}', '\"\"'::jsonb)::text
            ELSE data::text END,
       recorded_at
FROM events ORDER BY tenant_id, stream_id, stream_version";

const LIVE_SESSIONS: &str = "\
SELECT tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at, git_diff,
       version, last_seq, step_count, read_cursor, unread_count
FROM sessions ORDER BY tenant_id, id";

const LIVE_INBOX: &str = "\
SELECT tenant_id, session_id, stream_version, message_id, seq, created_at FROM inbox
ORDER BY tenant_id, session_id, stream_version";

const LIVE_USERS: &str = "\
SELECT tenant_id, name, email, created_at, version, last_seq FROM users ORDER BY tenant_id";

const INSERT_SESSIONS: &str = "\
INSERT INTO sessions (tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
                      git_diff, version, last_seq, step_count, read_cursor, unread_count)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::timestamptz[], $7::timestamptz[], $8::text[], $9::int[], $10::bigint[],
                     $11::int[], $12::uuid[], $13::int[])";

const INSERT_INBOX: &str = "\
INSERT INTO inbox (tenant_id, session_id, stream_version, message_id, seq, created_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::uuid[], $5::bigint[],
                     $6::timestamptz[])";

const INSERT_USERS: &str = "\
INSERT INTO users (tenant_id, name, email, created_at, version, last_seq)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::int[],
                     $6::bigint[])";

const BUMP_GENERATION: &str = "UPDATE projection_generation SET generation = generation + 1";

/// Rows written per INSERT at most, and bytes.
const WRITE_ROWS: usize = 5_000;
const WRITE_BYTES: usize = 16 << 20;
/// What one fetch from a cursor aims to carry, and its bounds in rows.
const FETCH_BYTES: usize = 8 << 20;
const FETCH_ROWS: (usize, usize) = (16, 2_000);
/// Differences reported in full; beyond these only counted.
const MAX_REPORTED: usize = 1_000;

/// A server-side cursor read in batches whose size adapts to the rows' size.
struct Cursor<T> {
    name: &'static str,
    rows: VecDeque<T>,
    fetch: usize,
    done: bool,
    size: fn(&T) -> usize,
}

impl<T: for<'r> FromRow<'r, PgRow> + Send + Unpin> Cursor<T> {
    async fn open(
        conn: &mut PgConnection,
        name: &'static str,
        query: &str,
        size: fn(&T) -> usize,
    ) -> Result<Cursor<T>, LogError> {
        let declare = format!("DECLARE {name} NO SCROLL CURSOR FOR {query}");
        sqlx::query(sqlx::AssertSqlSafe(declare))
            .execute(&mut *conn)
            .await?;
        Ok(Cursor {
            name,
            rows: VecDeque::new(),
            fetch: FETCH_ROWS.0 * 8,
            done: false,
            size,
        })
    }

    async fn peek(&mut self, conn: &mut PgConnection) -> Result<Option<&T>, LogError> {
        if self.rows.is_empty() && !self.done {
            let fetch = format!("FETCH {} FROM {}", self.fetch, self.name);
            let rows: Vec<T> = sqlx::query_as(sqlx::AssertSqlSafe(fetch))
                .fetch_all(&mut *conn)
                .await?;
            self.done = rows.len() < self.fetch;
            if !rows.is_empty() {
                let bytes: usize = rows.iter().map(|r| (self.size)(r) + 64).sum();
                let per_row = (bytes / rows.len()).max(1);
                self.fetch = (FETCH_BYTES / per_row).clamp(FETCH_ROWS.0, FETCH_ROWS.1);
            }
            self.rows.extend(rows);
        }
        Ok(self.rows.front())
    }

    async fn next(&mut self, conn: &mut PgConnection) -> Result<Option<T>, LogError> {
        self.peek(conn).await?;
        Ok(self.rows.pop_front())
    }
}

/// One stream folded from the log.
enum Folded {
    Session(SessionState),
    Account(Account),
}

impl Folded {
    fn key(&self) -> (Uuid, Uuid) {
        match self {
            Folded::Session(s) => (s.session.tenant_id, s.session.id),
            Folded::Account(a) => (a.tenant_id, a.tenant_id),
        }
    }
}

/// Folds the log stream by stream, in (tenant, stream) order.
struct Fold {
    events: Cursor<EventRow>,
    pending: Option<RecordedEvent>,
    count: u64,
}

impl Fold {
    async fn open(conn: &mut PgConnection) -> Result<Fold, LogError> {
        // The stream-version key already holds the order: read it rather than sort.
        sqlx::query("SET LOCAL enable_sort = off")
            .execute(&mut *conn)
            .await?;
        Ok(Fold {
            events: Cursor::open(conn, "rebuild_events", STREAM_EVENTS, |row: &EventRow| {
                row.6.len()
            })
            .await?,
            pending: None,
            count: 0,
        })
    }

    /// The next stream's final state, or `None` at the end of the log.
    async fn next(&mut self, conn: &mut PgConnection) -> Result<Option<Folded>, LogError> {
        let mut folded: Option<Folded> = None;
        loop {
            let recorded = match self.pending.take() {
                Some(recorded) => recorded,
                None => match self.events.next(conn).await? {
                    Some(row) => read::recorded(row)?,
                    None => return Ok(folded),
                },
            };
            let key = (recorded.tenant_id, recorded.stream_id);
            if folded.as_ref().is_some_and(|f| f.key() != key) {
                self.pending = Some(recorded);
                return Ok(folded);
            }
            self.count += 1;
            let corrupt = |e: projections::ProjectionError| {
                LogError::Corrupt(format!("tenant {}: {e}", recorded.tenant_id))
            };
            folded = Some(
                if is_account_stream(recorded.tenant_id, recorded.stream_id) {
                    let before = match folded {
                        Some(Folded::Account(a)) => Some(a),
                        _ => None,
                    };
                    Folded::Account(
                        projections::account::apply(before, &recorded).map_err(corrupt)?,
                    )
                } else {
                    let before = match folded {
                        Some(Folded::Session(s)) => Some(s),
                        _ => None,
                    };
                    Folded::Session(
                        projections::session::apply(before, &recorded).map_err(corrupt)?,
                    )
                },
            );
        }
    }
}

/// One way in which the live projections differ from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub tenant_id: Uuid,
    pub stream_id: Uuid,
    pub what: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if is_account_stream(self.tenant_id, self.stream_id) {
            "account"
        } else {
            "session"
        };
        write!(
            f,
            "tenant {} {kind} {}: {}",
            self.tenant_id, self.stream_id, self.what
        )
    }
}

/// Result of a rebuild or a check.
#[derive(Debug, Clone, Default)]
pub struct RebuildReport {
    pub events: u64,
    /// Streams folded: sessions and accounts.
    pub streams: u64,
    /// The first differences found (at most a thousand are kept).
    pub differences: Vec<Difference>,
    /// How many differences there were in all.
    pub different: u64,
}

impl RebuildReport {
    fn differ(&mut self, tenant_id: Uuid, stream_id: Uuid, what: String) {
        self.different += 1;
        if self.differences.len() < MAX_REPORTED {
            self.differences.push(Difference {
                tenant_id,
                stream_id,
                what,
            });
        }
    }
}

/// The live tables, read through cursors in the fold's order.
struct Live {
    sessions: Cursor<SessionRecord>,
    inbox: Cursor<InboxRecord>,
    users: Cursor<UserRecord>,
}

#[derive(sqlx::FromRow)]
struct UserRecord {
    tenant_id: Uuid,
    name: String,
    email: Option<String>,
    created_at: time::OffsetDateTime,
    version: i32,
    last_seq: i64,
}

impl From<UserRecord> for Account {
    fn from(r: UserRecord) -> Account {
        Account {
            tenant_id: r.tenant_id,
            name: r.name,
            email: r.email,
            created_at: r.created_at,
            version: r.version,
            last_seq: r.last_seq,
        }
    }
}

impl Live {
    async fn open(conn: &mut PgConnection) -> Result<Live, LogError> {
        Ok(Live {
            sessions: Cursor::open(conn, "live_sessions", LIVE_SESSIONS, |r: &SessionRecord| {
                r.git_diff_len()
            })
            .await?,
            inbox: Cursor::open(conn, "live_inbox", LIVE_INBOX, |_| 64).await?,
            users: Cursor::open(conn, "live_users", LIVE_USERS, |r: &UserRecord| {
                r.name.len()
            })
            .await?,
        })
    }

    /// Compare one folded stream with its live rows (and report live rows of streams before
    /// it that the log does not have).
    async fn compare(
        &mut self,
        conn: &mut PgConnection,
        folded: Option<&Folded>,
        report: &mut RebuildReport,
    ) -> Result<(), LogError> {
        let key = folded.map(Folded::key);
        // Sessions the log does not have, up to this stream.
        while let Some(row) = self.sessions.peek(conn).await? {
            let row_key = row.key();
            if key.is_some_and(|k| row_key >= k) {
                break;
            }
            self.sessions.next(conn).await?;
            report.differ(
                row_key.0,
                row_key.1,
                "live projections have it, the log does not".into(),
            );
        }
        while let Some(row) = self.users.peek(conn).await? {
            let tenant = row.tenant_id;
            if key.is_some_and(|k| (tenant, tenant) >= k) {
                break;
            }
            self.users.next(conn).await?;
            report.differ(
                tenant,
                tenant,
                "live projections have it, the log does not".into(),
            );
        }
        let Some(folded) = folded else {
            // The end: unread rows left over belong to no stream of the log.
            while let Some(row) = self.inbox.next(conn).await? {
                let message = InboxMessage::from(row);
                report.differ(
                    message.tenant_id,
                    message.session_id,
                    format!(
                        "inbox holds message {} the log does not",
                        message.message_id
                    ),
                );
            }
            return Ok(());
        };
        let (tenant_id, stream_id) = folded.key();
        match folded {
            Folded::Account(expected) => {
                let live = match self.users.peek(conn).await? {
                    Some(row) if row.tenant_id == tenant_id => {
                        self.users.next(conn).await?.map(Account::from)
                    }
                    _ => None,
                };
                match live {
                    None => report.differ(
                        tenant_id,
                        stream_id,
                        "missing from the live projections".into(),
                    ),
                    Some(live) if live != *expected => report.differ(
                        tenant_id,
                        stream_id,
                        format!(
                            "users row differs\n  from the log: {expected:?}\n  live:         {live:?}"
                        ),
                    ),
                    Some(_) => {}
                }
            }
            Folded::Session(expected) => {
                let live = match self.sessions.peek(conn).await? {
                    Some(row) if row.key() == (tenant_id, stream_id) => {
                        match self.sessions.next(conn).await? {
                            Some(row) => Some(row.into_session()?),
                            None => None,
                        }
                    }
                    _ => None,
                };
                let mut inbox = Vec::new();
                while let Some(row) = self.inbox.peek(conn).await? {
                    let row_key = row.key();
                    if row_key > (tenant_id, stream_id) {
                        break;
                    }
                    let message = InboxMessage::from(self.inbox.next(conn).await?.expect("peeked"));
                    if row_key == (tenant_id, stream_id) {
                        inbox.push(message);
                    } else {
                        report.differ(
                            message.tenant_id,
                            message.session_id,
                            format!(
                                "inbox holds message {} the log does not",
                                message.message_id
                            ),
                        );
                    }
                }
                match live {
                    None => report.differ(
                        tenant_id,
                        stream_id,
                        "missing from the live projections".into(),
                    ),
                    Some(live) if live != expected.session => report.differ(
                        tenant_id,
                        stream_id,
                        format!(
                            "sessions row differs\n  from the log: {:?}\n  live:         {live:?}",
                            expected.session
                        ),
                    ),
                    Some(_) => {}
                }
                if inbox != expected.inbox {
                    let ids =
                        |m: &[InboxMessage]| m.iter().map(|m| m.message_id).collect::<Vec<_>>();
                    report.differ(
                        tenant_id,
                        stream_id,
                        format!(
                            "inbox differs\n  from the log: {:?}\n  live:         {:?}",
                            ids(&expected.inbox),
                            ids(&inbox)
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Compare the live projections with a fold of the log in `conn`'s transaction (one snapshot).
async fn compare_in(conn: &mut PgConnection) -> Result<RebuildReport, LogError> {
    let mut fold = Fold::open(conn).await?;
    let mut live = Live::open(conn).await?;
    let mut report = RebuildReport::default();
    loop {
        let folded = fold.next(conn).await?;
        live.compare(conn, folded.as_ref(), &mut report).await?;
        match folded {
            Some(_) => report.streams += 1,
            None => break,
        }
    }
    report.events = fold.count;
    for cursor in [
        "rebuild_events",
        "live_sessions",
        "live_inbox",
        "live_users",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("CLOSE {cursor}")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(report)
}

/// Compare the live projections with a fold of the log, in one snapshot, without blocking
/// writers (the projections are written in the same transactions as the events, so every
/// snapshot sees the two in step).
pub async fn check(pool: &PgPool) -> Result<RebuildReport, LogError> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let report = compare_in(&mut tx).await?;
    tx.rollback().await?;
    Ok(report)
}

/// Replace the live projections with a fold of the log. Appends wait while it runs; the
/// report lists what the rebuild changed. Running servers' decisions made on the old
/// projections can no longer be written (the generation moves on).
pub async fn rebuild(pool: &PgPool) -> Result<RebuildReport, LogError> {
    let mut tx = pool.begin().await?;
    // SHARE conflicts with the ROW EXCLUSIVE lock every append takes on `events`.
    sqlx::query("LOCK TABLE events IN SHARE MODE")
        .execute(&mut *tx)
        .await?;
    let report = compare_in(&mut tx).await?;
    rewrite(&mut tx).await?;
    // Running servers drop what they cached of the old projections.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(crate::push::notice::REBUILD_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(report)
}

/// Empty the projection tables and write a fold of the whole log into them, in `conn`'s
/// transaction, and start a new projection generation. Returns the streams written.
pub async fn rewrite(conn: &mut PgConnection) -> Result<u64, LogError> {
    for table in ["inbox", "sessions", "users"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *conn)
            .await?;
    }
    let mut fold = Fold::open(conn).await?;
    let mut batch = Batch::default();
    let mut streams = 0;
    while let Some(folded) = fold.next(conn).await? {
        streams += 1;
        batch.push(folded);
        if batch.full() {
            batch.write(conn).await?;
        }
    }
    batch.write(conn).await?;
    sqlx::query("CLOSE rebuild_events")
        .execute(&mut *conn)
        .await?;
    sqlx::query(BUMP_GENERATION).execute(&mut *conn).await?;
    Ok(streams)
}

/// Rebuilt rows waiting to be inserted.
#[derive(Default)]
struct Batch {
    sessions: (Vec<Uuid>, SessionColumns),
    inbox: (Vec<Uuid>, InboxColumns),
    users: Vec<Account>,
    rows: usize,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, folded: Folded) {
        match folded {
            Folded::Session(state) => {
                self.bytes += 256 + state.session.git_diff.as_ref().map_or(0, String::len);
                self.rows += 1 + state.inbox.len();
                self.sessions.0.push(state.session.tenant_id);
                self.sessions.1.push(&state.session, true);
                for message in &state.inbox {
                    self.inbox.0.push(message.tenant_id);
                    self.inbox.1.push(message);
                }
            }
            Folded::Account(account) => {
                self.bytes += 256 + account.name.len();
                self.rows += 1;
                self.users.push(account);
            }
        }
    }

    fn full(&self) -> bool {
        self.rows >= WRITE_ROWS || self.bytes >= WRITE_BYTES
    }

    async fn write(&mut self, conn: &mut PgConnection) -> Result<(), LogError> {
        let Batch {
            sessions: (tenants, s),
            inbox: (inbox_tenants, i),
            users,
            ..
        } = std::mem::take(self);
        if !tenants.is_empty() {
            sqlx::query(INSERT_SESSIONS)
                .bind(tenants)
                .bind(s.id)
                .bind(s.agent_type)
                .bind(s.status)
                .bind(s.started_at)
                .bind(s.ended_at)
                .bind(s.last_activity_at)
                .bind(s.git_diff)
                .bind(s.version)
                .bind(s.last_seq)
                .bind(s.step_count)
                .bind(s.read_cursor)
                .bind(s.unread_count)
                .execute(&mut *conn)
                .await?;
        }
        if !inbox_tenants.is_empty() {
            sqlx::query(INSERT_INBOX)
                .bind(inbox_tenants)
                .bind(i.session_id)
                .bind(i.stream_version)
                .bind(i.message_id)
                .bind(i.seq)
                .bind(i.created_at)
                .execute(&mut *conn)
                .await?;
        }
        if !users.is_empty() {
            let (mut ids, mut names, mut emails, mut created, mut versions, mut seqs) =
                (vec![], vec![], vec![], vec![], vec![], vec![]);
            for a in users {
                ids.push(a.tenant_id);
                names.push(a.name);
                emails.push(a.email);
                created.push(a.created_at);
                versions.push(a.version);
                seqs.push(a.last_seq);
            }
            sqlx::query(INSERT_USERS)
                .bind(ids)
                .bind(names)
                .bind(emails)
                .bind(created)
                .bind(versions)
                .bind(seqs)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// Every live projection row, in memory: for tests that compare two small databases.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LiveRows {
    pub sessions: BTreeMap<(Uuid, Uuid), SessionState>,
    pub users: BTreeMap<Uuid, Account>,
}

/// Read every live projection row (see [`LiveRows`]; use [`check`] for real logs).
pub async fn load_live(conn: &mut PgConnection) -> Result<LiveRows, LogError> {
    let mut rows = LiveRows::default();
    let sessions: Vec<SessionRecord> = sqlx::query_as(LIVE_SESSIONS).fetch_all(&mut *conn).await?;
    for record in sessions {
        let session = record.into_session()?;
        let key = (session.tenant_id, session.id);
        let inbox = Vec::new();
        rows.sessions.insert(key, SessionState { session, inbox });
    }
    let inbox: Vec<InboxRecord> = sqlx::query_as(LIVE_INBOX).fetch_all(&mut *conn).await?;
    for record in inbox {
        let message = InboxMessage::from(record);
        if let Some(state) = rows
            .sessions
            .get_mut(&(message.tenant_id, message.session_id))
        {
            state.inbox.push(message);
        }
    }
    let users: Vec<UserRecord> = sqlx::query_as(LIVE_USERS).fetch_all(&mut *conn).await?;
    for record in users {
        rows.users.insert(record.tenant_id, Account::from(record));
    }
    Ok(rows)
}
