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

use projections::{
    Account, InboxMessage, Question, RecordedEvent, SessionState, is_account_stream,
};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::LogError;
use super::read::{self, EventRow, InboxRecord, QuestionRecord, SessionRecord};
use super::write::{InboxColumns, QuestionColumns, SessionColumns};

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
       version, last_seq, step_count, read_cursor, unread_count, open_questions, title, project,
       cwd, branch, host, client, exited_at
FROM sessions ORDER BY tenant_id, id";

const LIVE_QUESTIONS: &str = "\
SELECT tenant_id, session_id, id, kind, status, asked_at, asked_seq, expires_at, closed_at,
       closed_seq, closed_by, answer_id, reason
FROM questions ORDER BY tenant_id, session_id, id";

const LIVE_INBOX: &str = "\
SELECT tenant_id, session_id, stream_version, message_id, seq, created_at FROM inbox
ORDER BY tenant_id, session_id, stream_version";

const LIVE_USERS: &str = "\
SELECT tenant_id, name, email, created_at, version, last_seq FROM users ORDER BY tenant_id";

/// In the order `SessionColumns` binds (whether the diff changed is not stored).
const INSERT_SESSIONS: &str = "\
INSERT INTO sessions (tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
                      git_diff, version, last_seq, step_count, read_cursor, unread_count,
                      open_questions, title, project, cwd, branch, host, client, exited_at)
SELECT tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at, git_diff,
       version, last_seq, step_count, read_cursor, unread_count, open_questions, title, project,
       cwd, branch, host, client, exited_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
            $6::timestamptz[], $7::timestamptz[], $8::bool[], $9::text[], $10::int[],
            $11::bigint[], $12::int[], $13::uuid[], $14::int[], $15::int[], $16::text[],
            $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::timestamptz[])
     AS u(tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
          git_diff_changed, git_diff, version, last_seq, step_count, read_cursor, unread_count,
          open_questions, title, project, cwd, branch, host, client, exited_at)";

const INSERT_QUESTIONS: &str = "\
INSERT INTO questions (tenant_id, session_id, id, kind, status, asked_at, asked_seq, expires_at,
                       closed_at, closed_seq, closed_by, answer_id, reason)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                     $6::timestamptz[], $7::bigint[], $8::timestamptz[], $9::timestamptz[],
                     $10::bigint[], $11::text[], $12::uuid[], $13::text[])";

const INSERT_INBOX: &str = "\
INSERT INTO inbox (tenant_id, session_id, stream_version, message_id, seq, created_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::uuid[], $5::bigint[],
                     $6::timestamptz[])";

const INSERT_USERS: &str = "\
INSERT INTO users (tenant_id, name, email, created_at, version, last_seq)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::int[],
                     $6::bigint[])";

/// A new generation, written by this binary's fold.
const BUMP_GENERATION: &str =
    "UPDATE projection_generation SET generation = generation + 1, fold_version = $1";

/// The version of the fold this binary runs. Raise it whenever the fold derives the
/// projections differently from the same log (new tables or columns, changed rules): a server
/// that finds projections written by an older fold rebuilds them on start ([`upgrade`]).
/// 2: questions are first-class (the `questions` table, sessions' context and open count).
pub const FOLD_VERSION: i32 = 2;

const FOLD_VERSION_NOW: &str = "SELECT fold_version FROM projection_generation FOR UPDATE";
const ANY_EVENT: &str = "SELECT EXISTS (SELECT 1 FROM events)";
const SET_FOLD_VERSION: &str = "UPDATE projection_generation SET fold_version = $1";

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
    /// A session's state and every `questions` row it wrote (by id).
    Session(Box<(SessionState, BTreeMap<Uuid, Question>)>),
    Account(Account),
}

impl Folded {
    fn key(&self) -> (Uuid, Uuid) {
        match self {
            Folded::Session(folded) => (folded.0.session.tenant_id, folded.0.session.id),
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
                    let (before, mut rows) = match folded {
                        Some(Folded::Session(folded)) => {
                            let (state, rows) = *folded;
                            (Some(state), rows)
                        }
                        _ => (None, BTreeMap::new()),
                    };
                    let mut changed = Vec::new();
                    let state = projections::session::apply(before, &recorded, &mut changed)
                        .map_err(corrupt)?;
                    for q in changed {
                        rows.insert(q.id, q);
                    }
                    Folded::Session(Box::new((state, rows)))
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
    questions: Cursor<QuestionRecord>,
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
            questions: Cursor::open(conn, "live_questions", LIVE_QUESTIONS, |_| 256).await?,
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
            while let Some(row) = self.questions.next(conn).await? {
                let question = row.into_question()?;
                report.differ(
                    question.tenant_id,
                    question.session_id,
                    format!("questions holds {} the log does not", question.id),
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
            Folded::Session(folded) => {
                let (expected, expected_questions) = &**folded;
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
                let mut questions = Vec::new();
                while let Some(row) = self.questions.peek(conn).await? {
                    let row_key = row.key();
                    if row_key > (tenant_id, stream_id) {
                        break;
                    }
                    let question = self
                        .questions
                        .next(conn)
                        .await?
                        .expect("peeked")
                        .into_question()?;
                    if row_key == (tenant_id, stream_id) {
                        questions.push(question);
                    } else {
                        report.differ(
                            question.tenant_id,
                            question.session_id,
                            format!("questions holds {} the log does not", question.id),
                        );
                    }
                }
                let expected_questions: Vec<&Question> = expected_questions.values().collect();
                if questions.iter().collect::<Vec<_>>() != expected_questions {
                    report.differ(
                        tenant_id,
                        stream_id,
                        format!(
                            "questions differ\n  from the log: {expected_questions:?}\n  live:         {questions:?}"
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
        "live_questions",
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
    for table in ["inbox", "questions", "sessions", "users"] {
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
    sqlx::query(BUMP_GENERATION)
        .bind(FOLD_VERSION)
        .execute(&mut *conn)
        .await?;
    Ok(streams)
}

/// Bring projections written by an older fold up to this binary's: rebuild them from the log
/// (appends wait meanwhile, as for `projections rebuild`). Returns the number of streams
/// rebuilt, or `None` when they were current (or the log is empty).
pub async fn upgrade(pool: &PgPool) -> Result<Option<u64>, LogError> {
    let mut tx = pool.begin().await?;
    let version: i32 = sqlx::query_scalar(FOLD_VERSION_NOW)
        .fetch_one(&mut *tx)
        .await?;
    if version >= FOLD_VERSION {
        tx.rollback().await?;
        return Ok(None);
    }
    let any: bool = sqlx::query_scalar(ANY_EVENT).fetch_one(&mut *tx).await?;
    if !any {
        sqlx::query(SET_FOLD_VERSION)
            .bind(FOLD_VERSION)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(None);
    }
    sqlx::query("LOCK TABLE events IN SHARE MODE")
        .execute(&mut *tx)
        .await?;
    let streams = rewrite(&mut tx).await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(crate::push::notice::REBUILD_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(streams))
}

/// Rebuilt rows waiting to be inserted.
#[derive(Default)]
struct Batch {
    sessions: SessionColumns,
    inbox: InboxColumns,
    questions: QuestionColumns,
    users: Vec<Account>,
    rows: usize,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, folded: Folded) {
        match folded {
            Folded::Session(folded) => {
                let (state, questions) = *folded;
                self.bytes += 256 + state.session.git_diff.as_ref().map_or(0, String::len);
                self.rows += 1 + state.inbox.len() + questions.len();
                self.sessions.push(&state.session, true);
                for message in &state.inbox {
                    self.inbox.push(message);
                }
                for question in questions.values() {
                    self.bytes += 200 + question.reason.as_ref().map_or(0, String::len);
                    self.questions.push(question);
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
            sessions,
            inbox,
            questions,
            users,
            ..
        } = std::mem::take(self);
        if !sessions.id.is_empty() {
            sessions
                .bind(sqlx::query(INSERT_SESSIONS))
                .execute(&mut *conn)
                .await?;
        }
        if !inbox.tenant_id.is_empty() {
            inbox
                .bind(sqlx::query(INSERT_INBOX))
                .execute(&mut *conn)
                .await?;
        }
        if !questions.is_empty() {
            questions
                .bind(sqlx::query(INSERT_QUESTIONS))
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
    /// Every question, open or closed, by (tenant, session, id).
    pub questions: BTreeMap<(Uuid, Uuid, Uuid), Question>,
    pub users: BTreeMap<Uuid, Account>,
}

/// Read every live projection row (see [`LiveRows`]; use [`check`] for real logs).
pub async fn load_live(conn: &mut PgConnection) -> Result<LiveRows, LogError> {
    let mut rows = LiveRows::default();
    let sessions: Vec<SessionRecord> = sqlx::query_as(LIVE_SESSIONS).fetch_all(&mut *conn).await?;
    for record in sessions {
        let session = record.into_session()?;
        let key = (session.tenant_id, session.id);
        let state = SessionState {
            session,
            inbox: Vec::new(),
            questions: Vec::new(),
        };
        rows.sessions.insert(key, state);
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
    let questions: Vec<QuestionRecord> =
        sqlx::query_as(LIVE_QUESTIONS).fetch_all(&mut *conn).await?;
    for record in questions {
        let question = record.into_question()?;
        let key = (question.tenant_id, question.session_id);
        if question.is_open()
            && let Some(state) = rows.sessions.get_mut(&key)
        {
            state.questions.push(question.clone());
        }
        rows.questions.insert((key.0, key.1, question.id), question);
    }
    for state in rows.sessions.values_mut() {
        state.questions.sort_by_key(|q| (q.asked_seq, q.id));
    }
    let users: Vec<UserRecord> = sqlx::query_as(LIVE_USERS).fetch_all(&mut *conn).await?;
    for record in users {
        rows.users.insert(record.tenant_id, Account::from(record));
    }
    Ok(rows)
}
