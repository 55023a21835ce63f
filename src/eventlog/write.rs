//! The statement that writes appends: events plus the projection rows they change, for one
//! append or for a batch of appends to different tenants (see `group_commit.rs`).
//!
//! Each kind of row is one part, a data-modifying CTE over `unnest`ed column arrays; parts with
//! nothing to write are left out, so a plain step writes two (its session row and its event).
//! All of it commits or none does. Rows carry their tenant, and every join is on a full primary
//! key (or a prefix of one, for inbox ranges), so plans never depend on how many sessions or
//! unread messages a tenant has. The texts are built once per combination of parts and reused
//! (and so stay prepared).
//!
//! Every event row carries the projection generation its append was decided under;
//! `switchboard_require_generation` raises (SQLSTATE SB001) when a rebuild has happened
//! since, which fails the whole statement (the caller reads again and decides again).

use std::sync::OnceLock;

use projections::{Account, InboxMessage, Question, Session};
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use time::OffsetDateTime;
use uuid::Uuid;

use super::append::Remembered;

/// `$?` stands for the next parameter.
const INSERT_EVENTS: &str = "\
INSERT INTO events (tenant_id, seq, stream_id, stream_version, event_id, event_type, data, metadata,
                    recorded_at, prev_hash, hash)
SELECT e.tenant_id, e.seq, e.stream_id, e.stream_version, e.event_id, e.event_type, e.data::json,
       e.metadata::json, e.recorded_at, e.prev_hash, e.hash
FROM unnest($?::uuid[], $?::bigint[], $?::uuid[], $?::int[], $?::uuid[], $?::text[], $?::text[],
            $?::text[], $?::timestamptz[], $?::bytea[], $?::bytea[], $?::bigint[])
     AS e(tenant_id, seq, stream_id, stream_version, event_id, event_type, data, metadata,
          recorded_at, prev_hash, hash, generation)
WHERE switchboard_require_generation(e.generation)";

const INSERT_SESSIONS: &str = "\
INSERT INTO sessions (tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
                      git_diff, version, last_seq, step_count, read_cursor, unread_count,
                      open_questions, title, project, cwd, branch, host, client, exited_at)
SELECT u.tenant_id, u.id, u.agent_type, u.status, u.started_at, u.ended_at, u.last_activity_at,
       u.git_diff, u.version, u.last_seq, u.step_count, u.read_cursor, u.unread_count,
       u.open_questions, u.title, u.project, u.cwd, u.branch, u.host, u.client, u.exited_at
FROM unnest($?::uuid[], $?::uuid[], $?::text[], $?::text[], $?::timestamptz[], $?::timestamptz[],
            $?::timestamptz[], $?::bool[], $?::text[], $?::int[], $?::bigint[], $?::int[],
            $?::uuid[], $?::int[], $?::int[], $?::text[], $?::text[], $?::text[], $?::text[],
            $?::text[], $?::text[], $?::timestamptz[])
     AS u(tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
          git_diff_changed, git_diff, version, last_seq, step_count, read_cursor, unread_count,
          open_questions, title, project, cwd, branch, host, client, exited_at)";

/// A diff is sent only when it changed; otherwise the stored (possibly large) one stays put.
const UPDATE_SESSIONS: &str = "\
UPDATE sessions s SET
    agent_type = u.agent_type, status = u.status, started_at = u.started_at,
    ended_at = u.ended_at, last_activity_at = u.last_activity_at,
    git_diff = CASE WHEN u.git_diff_changed THEN u.git_diff ELSE s.git_diff END,
    version = u.version, last_seq = u.last_seq, step_count = u.step_count,
    read_cursor = u.read_cursor, unread_count = u.unread_count,
    open_questions = u.open_questions, title = u.title, project = u.project, cwd = u.cwd,
    branch = u.branch, host = u.host, client = u.client, exited_at = u.exited_at
FROM unnest($?::uuid[], $?::uuid[], $?::text[], $?::text[], $?::timestamptz[], $?::timestamptz[],
            $?::timestamptz[], $?::bool[], $?::text[], $?::int[], $?::bigint[], $?::int[],
            $?::uuid[], $?::int[], $?::int[], $?::text[], $?::text[], $?::text[], $?::text[],
            $?::text[], $?::text[], $?::timestamptz[])
     AS u(tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
          git_diff_changed, git_diff, version, last_seq, step_count, read_cursor, unread_count,
          open_questions, title, project, cwd, branch, host, client, exited_at)
WHERE s.tenant_id = u.tenant_id AND s.id = u.id";

/// Messages the agent has now received: each session's unread rows below a version.
const DELETE_INBOX: &str = "\
DELETE FROM inbox i USING unnest($?::uuid[], $?::uuid[], $?::int[]) AS r(tenant_id, session_id, below)
WHERE i.tenant_id = r.tenant_id AND i.session_id = r.session_id AND i.stream_version < r.below";

/// Messages the agent received out of order (the answers it waited for): single rows.
const DELETE_INBOX_ROWS: &str = "\
DELETE FROM inbox i
USING unnest($?::uuid[], $?::uuid[], $?::int[]) AS r(tenant_id, session_id, stream_version)
WHERE i.tenant_id = r.tenant_id AND i.session_id = r.session_id
  AND i.stream_version = r.stream_version";

/// Questions asked (a new row) and closed (the row updated), each once per statement.
const UPSERT_QUESTIONS: &str = "\
INSERT INTO questions (tenant_id, session_id, id, kind, status, asked_at, asked_seq, expires_at,
                       closed_at, closed_seq, closed_by, answer_id, reason)
SELECT * FROM unnest($?::uuid[], $?::uuid[], $?::uuid[], $?::text[], $?::text[],
                     $?::timestamptz[], $?::bigint[], $?::timestamptz[], $?::timestamptz[],
                     $?::bigint[], $?::text[], $?::uuid[], $?::text[])
ON CONFLICT (tenant_id, session_id, id) DO UPDATE SET
    kind = EXCLUDED.kind, status = EXCLUDED.status, asked_at = EXCLUDED.asked_at,
    asked_seq = EXCLUDED.asked_seq, expires_at = EXCLUDED.expires_at,
    closed_at = EXCLUDED.closed_at, closed_seq = EXCLUDED.closed_seq,
    closed_by = EXCLUDED.closed_by, answer_id = EXCLUDED.answer_id, reason = EXCLUDED.reason";

const INSERT_INBOX: &str = "\
INSERT INTO inbox (tenant_id, session_id, stream_version, message_id, seq, created_at)
SELECT * FROM unnest($?::uuid[], $?::uuid[], $?::int[], $?::uuid[], $?::bigint[],
                     $?::timestamptz[])";

const UPSERT_USERS: &str = "\
INSERT INTO users (tenant_id, name, email, created_at, version, last_seq)
SELECT * FROM unnest($?::uuid[], $?::text[], $?::text[], $?::timestamptz[], $?::int[],
                     $?::bigint[])
ON CONFLICT (tenant_id) DO UPDATE SET
    name = EXCLUDED.name, email = EXCLUDED.email, created_at = EXCLUDED.created_at,
    version = EXCLUDED.version, last_seq = EXCLUDED.last_seq";

const NOTIFY: &str = "SELECT pg_notify('switchboard_events', p) FROM unnest($?::text[]) AS p";

const INSERT_IDEMPOTENCY: &str = "\
INSERT INTO idempotency_keys (tenant_id, key, command, fingerprint, response)
SELECT k.tenant_id, k.key, k.command, k.fingerprint, k.response::json
FROM unnest($?::uuid[], $?::text[], $?::text[], $?::bytea[], $?::text[])
     AS k(tenant_id, key, command, fingerprint, response)";

/// An event row to insert.
#[derive(Clone, Debug)]
pub(super) struct EventRow {
    pub seq: i64,
    pub stream_id: Uuid,
    pub stream_version: i32,
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub data: String,
    pub metadata: String,
    pub recorded_at: OffsetDateTime,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// A session's unread messages below `below` were received.
#[derive(Clone, Copy, Debug)]
pub(super) struct InboxCut {
    pub session_id: Uuid,
    pub below: i32,
}

/// An unread message the agent received out of order.
#[derive(Clone, Copy, Debug)]
pub(super) struct InboxRow {
    pub session_id: Uuid,
    pub stream_version: i32,
}

/// What one append writes.
#[derive(Clone, Debug, Default)]
pub(super) struct AppendRows {
    pub events: Vec<EventRow>,
    pub new_sessions: Vec<Session>,
    /// Changed session rows, with whether the diff changed.
    pub changed_sessions: Vec<(Session, bool)>,
    /// Inbox rows the agent has now received.
    pub read: Vec<InboxCut>,
    /// Single inbox rows the agent has now received.
    pub received: Vec<InboxRow>,
    pub unread: Vec<InboxMessage>,
    /// Question rows opened or closed (each question once).
    pub questions: Vec<Question>,
    /// The tenant's account row, when it changed.
    pub account: Option<Account>,
    pub remembered: Option<Remembered>,
    /// The projection generation the append was decided under.
    pub generation: i64,
}

impl AppendRows {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.new_sessions.is_empty()
            && self.changed_sessions.is_empty()
            && self.account.is_none()
            && self.remembered.is_none()
    }

    /// Roughly how many bytes the statement carries for this append.
    pub fn weight(&self) -> usize {
        let events: usize = self
            .events
            .iter()
            .map(|e| 200 + e.data.len() + e.metadata.len())
            .sum();
        let diffs: usize = self
            .new_sessions
            .iter()
            .chain(self.changed_sessions.iter().map(|(s, _)| s))
            .map(|s| 200 + s.git_diff.as_ref().map_or(0, String::len))
            .sum();
        let context: usize = self
            .new_sessions
            .iter()
            .chain(self.changed_sessions.iter().map(|(s, _)| s))
            .map(|s| {
                let c = &s.context;
                [&c.title, &c.project, &c.cwd, &c.branch, &c.host, &c.client]
                    .iter()
                    .map(|f| f.as_ref().map_or(0, String::len))
                    .sum::<usize>()
            })
            .sum();
        let questions: usize = self
            .questions
            .iter()
            .map(|q| 200 + q.reason.as_ref().map_or(0, String::len))
            .sum();
        events
            + diffs
            + context
            + questions
            + 64 * (self.read.len() + self.received.len() + self.unread.len())
    }
}

/// Column arrays for `sessions` rows (also used by rebuild's bulk insert).
#[derive(Default)]
pub(crate) struct SessionColumns {
    pub tenant_id: Vec<Uuid>,
    pub id: Vec<Uuid>,
    pub agent_type: Vec<String>,
    pub status: Vec<&'static str>,
    pub started_at: Vec<OffsetDateTime>,
    pub ended_at: Vec<Option<OffsetDateTime>>,
    pub last_activity_at: Vec<OffsetDateTime>,
    pub git_diff_changed: Vec<bool>,
    pub git_diff: Vec<Option<String>>,
    pub version: Vec<i32>,
    pub last_seq: Vec<i64>,
    pub step_count: Vec<i32>,
    pub read_cursor: Vec<Option<Uuid>>,
    pub unread_count: Vec<i32>,
    pub open_questions: Vec<i32>,
    pub title: Vec<Option<String>>,
    pub project: Vec<Option<String>>,
    pub cwd: Vec<Option<String>>,
    pub branch: Vec<Option<String>>,
    pub host: Vec<Option<String>>,
    pub client: Vec<Option<String>>,
    pub exited_at: Vec<Option<OffsetDateTime>>,
}

impl SessionColumns {
    /// Add a row; its diff is sent only when `diff_changed`.
    pub fn push(&mut self, s: &Session, diff_changed: bool) {
        self.tenant_id.push(s.tenant_id);
        self.id.push(s.id);
        self.agent_type.push(s.agent_type.clone());
        self.status.push(s.status.as_str());
        self.started_at.push(s.started_at);
        self.ended_at.push(s.ended_at);
        self.last_activity_at.push(s.last_activity_at);
        self.git_diff_changed.push(diff_changed);
        self.git_diff.push(if diff_changed {
            s.git_diff.clone()
        } else {
            None
        });
        self.version.push(s.version);
        self.last_seq.push(s.last_seq);
        self.step_count.push(s.step_count);
        self.read_cursor.push(s.read_cursor);
        self.unread_count.push(s.unread_count);
        self.open_questions.push(s.open_questions);
        let c = &s.context;
        self.title.push(c.title.clone());
        self.project.push(c.project.clone());
        self.cwd.push(c.cwd.clone());
        self.branch.push(c.branch.clone());
        self.host.push(c.host.clone());
        self.client.push(c.client.clone());
        self.exited_at.push(s.exited_at);
    }

    pub(crate) fn bind(self, query: PgQuery) -> PgQuery {
        query
            .bind(self.tenant_id)
            .bind(self.id)
            .bind(self.agent_type)
            .bind(self.status)
            .bind(self.started_at)
            .bind(self.ended_at)
            .bind(self.last_activity_at)
            .bind(self.git_diff_changed)
            .bind(self.git_diff)
            .bind(self.version)
            .bind(self.last_seq)
            .bind(self.step_count)
            .bind(self.read_cursor)
            .bind(self.unread_count)
            .bind(self.open_questions)
            .bind(self.title)
            .bind(self.project)
            .bind(self.cwd)
            .bind(self.branch)
            .bind(self.host)
            .bind(self.client)
            .bind(self.exited_at)
    }
}

/// Column arrays for `questions` rows (also used by rebuild's bulk insert).
#[derive(Default)]
pub(crate) struct QuestionColumns {
    pub tenant_id: Vec<Uuid>,
    pub session_id: Vec<Uuid>,
    pub id: Vec<Uuid>,
    pub kind: Vec<&'static str>,
    pub status: Vec<&'static str>,
    pub asked_at: Vec<OffsetDateTime>,
    pub asked_seq: Vec<i64>,
    pub expires_at: Vec<Option<OffsetDateTime>>,
    pub closed_at: Vec<Option<OffsetDateTime>>,
    pub closed_seq: Vec<Option<i64>>,
    pub closed_by: Vec<Option<&'static str>>,
    pub answer_id: Vec<Option<Uuid>>,
    pub reason: Vec<Option<String>>,
}

impl QuestionColumns {
    pub fn push(&mut self, q: &Question) {
        self.tenant_id.push(q.tenant_id);
        self.session_id.push(q.session_id);
        self.id.push(q.id);
        self.kind.push(q.kind.as_str());
        self.status.push(q.status.as_str());
        self.asked_at.push(q.asked_at);
        self.asked_seq.push(q.asked_seq);
        self.expires_at.push(q.expires_at);
        self.closed_at.push(q.closed_at);
        self.closed_seq.push(q.closed_seq);
        self.closed_by
            .push(q.closed_by.map(super::read::actor_name));
        self.answer_id.push(q.answer_id);
        self.reason.push(q.reason.clone());
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    pub(crate) fn bind(self, query: PgQuery) -> PgQuery {
        query
            .bind(self.tenant_id)
            .bind(self.session_id)
            .bind(self.id)
            .bind(self.kind)
            .bind(self.status)
            .bind(self.asked_at)
            .bind(self.asked_seq)
            .bind(self.expires_at)
            .bind(self.closed_at)
            .bind(self.closed_seq)
            .bind(self.closed_by)
            .bind(self.answer_id)
            .bind(self.reason)
    }
}

/// Column arrays for `inbox` rows (also used by rebuild's bulk insert).
#[derive(Default)]
pub(crate) struct InboxColumns {
    pub tenant_id: Vec<Uuid>,
    pub session_id: Vec<Uuid>,
    pub stream_version: Vec<i32>,
    pub message_id: Vec<Uuid>,
    pub seq: Vec<i64>,
    pub created_at: Vec<OffsetDateTime>,
}

impl InboxColumns {
    pub fn push(&mut self, m: &InboxMessage) {
        self.tenant_id.push(m.tenant_id);
        self.session_id.push(m.session_id);
        self.stream_version.push(m.stream_version);
        self.message_id.push(m.message_id);
        self.seq.push(m.seq);
        self.created_at.push(m.created_at);
    }

    pub(crate) fn bind(self, query: PgQuery) -> PgQuery {
        query
            .bind(self.tenant_id)
            .bind(self.session_id)
            .bind(self.stream_version)
            .bind(self.message_id)
            .bind(self.seq)
            .bind(self.created_at)
    }
}

pub(crate) type PgQuery = Query<'static, Postgres, PgArguments>;

/// Idempotency records as columns: tenant, key, command, fingerprint, response.
type IdempotencyColumns = (
    Vec<Uuid>,
    Vec<String>,
    Vec<&'static str>,
    Vec<Vec<u8>>,
    Vec<String>,
);

/// Column arrays for `events` rows.
#[derive(Default)]
struct EventColumns {
    tenant_id: Vec<Uuid>,
    seq: Vec<i64>,
    stream_id: Vec<Uuid>,
    stream_version: Vec<i32>,
    event_id: Vec<Uuid>,
    event_type: Vec<&'static str>,
    data: Vec<String>,
    metadata: Vec<String>,
    recorded_at: Vec<OffsetDateTime>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
    generation: Vec<i64>,
}

impl EventColumns {
    fn push(&mut self, tenant_id: Uuid, generation: i64, e: &EventRow) {
        self.tenant_id.push(tenant_id);
        self.seq.push(e.seq);
        self.stream_id.push(e.stream_id);
        self.stream_version.push(e.stream_version);
        self.event_id.push(e.event_id);
        self.event_type.push(e.event_type);
        self.data.push(e.data.clone());
        self.metadata.push(e.metadata.clone());
        self.recorded_at.push(e.recorded_at);
        self.prev_hash.push(e.prev_hash.to_vec());
        self.hash.push(e.hash.to_vec());
        self.generation.push(generation);
    }

    fn bind(self, query: PgQuery) -> PgQuery {
        query
            .bind(self.tenant_id)
            .bind(self.seq)
            .bind(self.stream_id)
            .bind(self.stream_version)
            .bind(self.event_id)
            .bind(self.event_type)
            .bind(self.data)
            .bind(self.metadata)
            .bind(self.recorded_at)
            .bind(self.prev_hash)
            .bind(self.hash)
            .bind(self.generation)
    }
}

/// Column arrays for `users` rows.
#[derive(Default)]
struct UserColumns {
    tenant_id: Vec<Uuid>,
    name: Vec<String>,
    email: Vec<Option<String>>,
    created_at: Vec<OffsetDateTime>,
    version: Vec<i32>,
    last_seq: Vec<i64>,
}

impl UserColumns {
    fn push(&mut self, a: &Account) {
        self.tenant_id.push(a.tenant_id);
        self.name.push(a.name.clone());
        self.email.push(a.email.clone());
        self.created_at.push(a.created_at);
        self.version.push(a.version);
        self.last_seq.push(a.last_seq);
    }

    fn bind(self, query: PgQuery) -> PgQuery {
        query
            .bind(self.tenant_id)
            .bind(self.name)
            .bind(self.email)
            .bind(self.created_at)
            .bind(self.version)
            .bind(self.last_seq)
    }
}

/// The statement writing `appends` (each of a different tenant) at once, sending `notify`
/// payloads inside the same transaction when there are any.
pub(super) fn query(appends: &[(Uuid, AppendRows)], notify: Vec<String>) -> PgQuery {
    let mut events = EventColumns::default();
    let mut new_sessions = SessionColumns::default();
    let mut changed_sessions = SessionColumns::default();
    let mut read: (Vec<Uuid>, Vec<Uuid>, Vec<i32>) = Default::default();
    let mut received: (Vec<Uuid>, Vec<Uuid>, Vec<i32>) = Default::default();
    let mut questions = QuestionColumns::default();
    let mut unread = InboxColumns::default();
    let mut users = UserColumns::default();
    let mut keys: IdempotencyColumns = Default::default();
    for (tenant_id, rows) in appends {
        for e in &rows.events {
            events.push(*tenant_id, rows.generation, e);
        }
        for session in &rows.new_sessions {
            new_sessions.push(session, true);
        }
        for (session, diff_changed) in &rows.changed_sessions {
            changed_sessions.push(session, *diff_changed);
        }
        for cut in &rows.read {
            read.0.push(*tenant_id);
            read.1.push(cut.session_id);
            read.2.push(cut.below);
        }
        for row in &rows.received {
            received.0.push(*tenant_id);
            received.1.push(row.session_id);
            received.2.push(row.stream_version);
        }
        for message in &rows.unread {
            unread.push(message);
        }
        for question in &rows.questions {
            questions.push(question);
        }
        if let Some(account) = &rows.account {
            users.push(account);
        }
        if let Some(r) = &rows.remembered {
            keys.0.push(*tenant_id);
            keys.1.push(r.key.clone());
            keys.2.push(r.command);
            keys.3.push(r.fingerprint.clone());
            keys.4.push(r.response.clone());
        }
    }
    let used = [
        !new_sessions.id.is_empty(),
        !changed_sessions.id.is_empty(),
        !read.0.is_empty(),
        !received.0.is_empty(),
        !unread.tenant_id.is_empty(),
        !questions.is_empty(),
        !users.tenant_id.is_empty(),
        !keys.0.is_empty(),
        !events.tenant_id.is_empty(),
        !notify.is_empty(),
    ];
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement(used)));
    if used[0] {
        query = new_sessions.bind(query);
    }
    if used[1] {
        query = changed_sessions.bind(query);
    }
    if used[2] {
        query = query.bind(read.0).bind(read.1).bind(read.2);
    }
    if used[3] {
        query = query.bind(received.0).bind(received.1).bind(received.2);
    }
    if used[4] {
        query = unread.bind(query);
    }
    if used[5] {
        query = questions.bind(query);
    }
    if used[6] {
        query = users.bind(query);
    }
    if used[7] {
        query = query
            .bind(keys.0)
            .bind(keys.1)
            .bind(keys.2)
            .bind(keys.3)
            .bind(keys.4);
    }
    if used[8] {
        query = events.bind(query);
    }
    if used[9] {
        query = query.bind(notify);
    }
    query
}

/// In this order; the last one used is the main statement, the others its CTEs (a NOTIFY,
/// being a SELECT, only runs as the main statement, which it is whenever it is used).
const PARTS: [&str; 10] = [
    INSERT_SESSIONS,
    UPDATE_SESSIONS,
    DELETE_INBOX,
    DELETE_INBOX_ROWS,
    INSERT_INBOX,
    UPSERT_QUESTIONS,
    UPSERT_USERS,
    INSERT_IDEMPOTENCY,
    INSERT_EVENTS,
    NOTIFY,
];

/// The SQL for a combination of parts, each built once, on first use.
fn statement(used: [bool; PARTS.len()]) -> &'static str {
    static BUILT: [OnceLock<String>; 1 << PARTS.len()] =
        [const { OnceLock::new() }; 1 << PARTS.len()];
    let mask = used
        .iter()
        .enumerate()
        .fold(0usize, |mask, (i, used)| mask | (usize::from(*used) << i));
    BUILT[mask].get_or_init(|| compose(used))
}

fn compose(used: [bool; PARTS.len()]) -> String {
    let parts: Vec<&str> = PARTS
        .iter()
        .zip(used)
        .filter(|(_, used)| *used)
        .map(|(sql, _)| *sql)
        .collect();
    let Some((last, ctes)) = parts.split_last() else {
        return String::new();
    };
    let mut sql = String::new();
    for (i, part) in ctes.iter().enumerate() {
        sql.push_str(if i == 0 { "WITH " } else { ",\n" });
        sql.push_str(&format!("part{i} AS (\n{part}\n)"));
    }
    sql.push('\n');
    sql.push_str(last);
    // Number the placeholders in order of appearance.
    let mut pieces = sql.split("$?");
    let mut numbered = pieces.next().unwrap_or_default().to_owned();
    for (n, piece) in pieces.enumerate() {
        numbered.push_str(&format!("${}", n + 1));
        numbered.push_str(piece);
    }
    numbered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order_across_parts() {
        let sql = statement([
            false, true, false, false, false, false, false, true, true, false,
        ]);
        assert!(sql.starts_with("WITH part0 AS (\nUPDATE sessions"));
        assert!(sql.contains("part1 AS (\nINSERT INTO idempotency_keys"));
        assert!(!sql.contains("$?"));
        // 22 session columns + 5 idempotency columns + 12 event columns.
        assert!(sql.contains("$39::bigint[]"));
        assert!(!sql.contains("$40"));
        let notifying = statement([
            false, true, false, false, false, false, false, false, true, true,
        ]);
        assert!(notifying.contains("part1 AS (\nINSERT INTO events"));
        assert!(notifying.ends_with("FROM unnest($35::text[]) AS p"));
    }
}
