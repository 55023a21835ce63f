//! The statement that writes appends: events plus the projection rows they change, for one
//! append or for a batch of appends to different tenants (see `group_commit.rs`).
//!
//! Each kind of row is one part, a data-modifying CTE over `unnest`ed column arrays; parts with
//! nothing to write are left out, so a plain step writes two (its session row and its event).
//! All of it commits or none does. Rows carry their tenant, and every join is on a full primary
//! key, so plans never depend on how many sessions or unread messages a tenant has. The texts
//! are built once per combination of parts and reused (and so stay prepared).

use std::sync::LazyLock;

use projections::{InboxMessage, Session};
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
            $?::text[], $?::timestamptz[], $?::bytea[], $?::bytea[])
     AS e(tenant_id, seq, stream_id, stream_version, event_id, event_type, data, metadata,
          recorded_at, prev_hash, hash)";

const INSERT_SESSIONS: &str = "\
INSERT INTO sessions (tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
                      git_diff, version, last_seq, step_count, read_cursor, unread_count)
SELECT u.tenant_id, u.id, u.agent_type, u.status, u.started_at, u.ended_at, u.last_activity_at,
       u.git_diff, u.version, u.last_seq, u.step_count, u.read_cursor, u.unread_count
FROM unnest($?::uuid[], $?::uuid[], $?::text[], $?::text[], $?::timestamptz[], $?::timestamptz[],
            $?::timestamptz[], $?::bool[], $?::text[], $?::int[], $?::bigint[], $?::int[],
            $?::uuid[], $?::int[])
     AS u(tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
          git_diff_changed, git_diff, version, last_seq, step_count, read_cursor, unread_count)";

/// A diff is sent only when it changed; otherwise the stored (possibly large) one stays put.
const UPDATE_SESSIONS: &str = "\
UPDATE sessions s SET
    agent_type = u.agent_type, status = u.status, started_at = u.started_at,
    ended_at = u.ended_at, last_activity_at = u.last_activity_at,
    git_diff = CASE WHEN u.git_diff_changed THEN u.git_diff ELSE s.git_diff END,
    version = u.version, last_seq = u.last_seq, step_count = u.step_count,
    read_cursor = u.read_cursor, unread_count = u.unread_count
FROM unnest($?::uuid[], $?::uuid[], $?::text[], $?::text[], $?::timestamptz[], $?::timestamptz[],
            $?::timestamptz[], $?::bool[], $?::text[], $?::int[], $?::bigint[], $?::int[],
            $?::uuid[], $?::int[])
     AS u(tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at,
          git_diff_changed, git_diff, version, last_seq, step_count, read_cursor, unread_count)
WHERE s.tenant_id = u.tenant_id AND s.id = u.id";

const DELETE_INBOX: &str = "\
DELETE FROM inbox i USING unnest($?::uuid[], $?::uuid[], $?::int[]) AS r(tenant_id, session_id, stream_version)
WHERE i.tenant_id = r.tenant_id AND i.session_id = r.session_id AND i.stream_version = r.stream_version";

const INSERT_INBOX: &str = "\
INSERT INTO inbox (tenant_id, session_id, stream_version, message_id, seq, content, created_at)
SELECT * FROM unnest($?::uuid[], $?::uuid[], $?::int[], $?::uuid[], $?::bigint[], $?::text[],
                     $?::timestamptz[])";

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

/// What one append writes.
#[derive(Clone, Debug, Default)]
pub(super) struct AppendRows {
    pub events: Vec<EventRow>,
    pub new_sessions: Vec<Session>,
    /// Changed session rows, with whether the diff changed.
    pub changed_sessions: Vec<(Session, bool)>,
    /// Inbox rows the agent has now received: (session, stream version).
    pub read: Vec<(Uuid, i32)>,
    pub unread: Vec<InboxMessage>,
    pub remembered: Option<Remembered>,
}

impl AppendRows {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.new_sessions.is_empty()
            && self.changed_sessions.is_empty()
            && self.remembered.is_none()
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
    }

    fn bind(self, query: PgQuery) -> PgQuery {
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
    pub content: Vec<String>,
    pub created_at: Vec<OffsetDateTime>,
}

impl InboxColumns {
    pub fn push(&mut self, m: &InboxMessage) {
        self.tenant_id.push(m.tenant_id);
        self.session_id.push(m.session_id);
        self.stream_version.push(m.stream_version);
        self.message_id.push(m.message_id);
        self.seq.push(m.seq);
        self.content.push(m.content.clone());
        self.created_at.push(m.created_at);
    }

    fn bind(self, query: PgQuery) -> PgQuery {
        query
            .bind(self.tenant_id)
            .bind(self.session_id)
            .bind(self.stream_version)
            .bind(self.message_id)
            .bind(self.seq)
            .bind(self.content)
            .bind(self.created_at)
    }
}

type PgQuery = Query<'static, Postgres, PgArguments>;

/// Idempotency records as columns: tenant, key, command, fingerprint, response.
type IdempotencyColumns = (
    Vec<Uuid>,
    Vec<String>,
    Vec<&'static str>,
    Vec<Vec<u8>>,
    Vec<String>,
);

/// The statement writing `appends` (each of a different tenant) at once, sending `notify`
/// payloads inside the same transaction when there are any.
pub(super) fn query(appends: &[(Uuid, AppendRows)], notify: Vec<String>) -> PgQuery {
    let mut events = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut new_sessions = SessionColumns::default();
    let mut changed_sessions = SessionColumns::default();
    let mut read: (Vec<Uuid>, Vec<Uuid>, Vec<i32>) = Default::default();
    let mut unread = InboxColumns::default();
    let mut keys: IdempotencyColumns = Default::default();
    for (tenant_id, rows) in appends {
        for e in &rows.events {
            events.0.push(*tenant_id);
            events.1.push(e.seq);
            events.2.push(e.stream_id);
            events.3.push(e.stream_version);
            events.4.push(e.event_id);
            events.5.push(e.event_type);
            events.6.push(e.data.clone());
            events.7.push(e.metadata.clone());
            events.8.push(e.recorded_at);
            events.9.push(e.prev_hash.to_vec());
            events.10.push(e.hash.to_vec());
        }
        for session in &rows.new_sessions {
            new_sessions.push(session, true);
        }
        for (session, diff_changed) in &rows.changed_sessions {
            changed_sessions.push(session, *diff_changed);
        }
        for (session_id, version) in &rows.read {
            read.0.push(*tenant_id);
            read.1.push(*session_id);
            read.2.push(*version);
        }
        for message in &rows.unread {
            unread.push(message);
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
        !unread.tenant_id.is_empty(),
        !keys.0.is_empty(),
        !events.0.is_empty(),
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
        query = unread.bind(query);
    }
    if used[4] {
        query = query
            .bind(keys.0)
            .bind(keys.1)
            .bind(keys.2)
            .bind(keys.3)
            .bind(keys.4);
    }
    if used[5] {
        query = query
            .bind(events.0)
            .bind(events.1)
            .bind(events.2)
            .bind(events.3)
            .bind(events.4)
            .bind(events.5)
            .bind(events.6)
            .bind(events.7)
            .bind(events.8)
            .bind(events.9)
            .bind(events.10);
    }
    if used[6] {
        query = query.bind(notify);
    }
    query
}

/// In this order; the last one used is the main statement, the others its CTEs (a NOTIFY,
/// being a SELECT, only runs as the main statement, which it is whenever it is used).
const PARTS: [&str; 7] = [
    INSERT_SESSIONS,
    UPDATE_SESSIONS,
    DELETE_INBOX,
    INSERT_INBOX,
    INSERT_IDEMPOTENCY,
    INSERT_EVENTS,
    NOTIFY,
];

/// The SQL for a combination of parts, built once for all 128 combinations.
fn statement(used: [bool; 7]) -> &'static str {
    static BUILT: LazyLock<Vec<String>> = LazyLock::new(|| {
        (0..128u8)
            .map(|mask| compose(std::array::from_fn(|i| mask & (1 << i) != 0)))
            .collect()
    });
    let mask = used
        .iter()
        .enumerate()
        .fold(0usize, |mask, (i, used)| mask | (usize::from(*used) << i));
    &BUILT[mask]
}

fn compose(used: [bool; 7]) -> String {
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
        let sql = statement([false, true, false, false, true, true, false]);
        assert!(sql.starts_with("WITH part0 AS (\nUPDATE sessions"));
        assert!(sql.contains("part1 AS (\nINSERT INTO idempotency_keys"));
        assert!(!sql.contains("$?"));
        // 14 session columns + 5 idempotency columns + 11 event columns.
        assert!(sql.contains("$30::bytea[]"));
        assert!(!sql.contains("$31"));
        let notifying = statement([false, true, false, false, false, true, true]);
        assert!(notifying.contains("part1 AS (\nINSERT INTO events"));
        assert!(notifying.ends_with("FROM unnest($26::text[]) AS p"));
    }
}
