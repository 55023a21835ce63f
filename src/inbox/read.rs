//! What the inbox reads that no other interface needs: pages of a tenant's sessions with what
//! each agent last asked or said, waiting ones first, searched and filtered. It reads the
//! `sessions` read model, per listed session one event found by key (its newest open question,
//! else its newest agent message), and how each is doing by the one rule for it
//! (`switchboard_liveness`, in the migrations).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::eventlog::LogError;
use crate::eventlog::read::{Page, StoredEvent};

/// Characters of an agent message the list shows (the session page shows all of it).
pub const PREVIEW_CHARS: i32 = 240;

/// Sessions on one page of the list; "Show more" asks for the next.
pub const PAGE_SIZE: i64 = 50;

/// How a session is doing (`switchboard_liveness`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Waiting,
    Working,
    /// Its agent's process exited; it may run again.
    Exited,
    Idle,
    Ended,
}

impl Liveness {
    pub fn parse(s: &str) -> Option<Liveness> {
        match s {
            "waiting" => Some(Liveness::Waiting),
            "working" => Some(Liveness::Working),
            "exited" => Some(Liveness::Exited),
            "idle" => Some(Liveness::Idle),
            "ended" => Some(Liveness::Ended),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Waiting => "waiting",
            Liveness::Working => "working",
            Liveness::Exited => "exited",
            Liveness::Idle => "idle",
            Liveness::Ended => "ended",
        }
    }
}

/// Which sessions a list shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Show {
    /// Those that have not ended (the inbox's default).
    #[default]
    Open,
    /// Those doing this.
    Only(Liveness),
    /// All of them.
    All,
}

impl Show {
    pub fn parse(s: &str) -> Option<Show> {
        match s {
            "" | "open" => Some(Show::Open),
            "all" => Some(Show::All),
            other => Liveness::parse(other).map(Show::Only),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Show::Open => "open",
            Show::All => "all",
            Show::Only(l) => l.as_str(),
        }
    }

    fn filter(self) -> Option<&'static str> {
        match self {
            Show::Open => Some("open"),
            Show::All => None,
            Show::Only(l) => Some(l.as_str()),
        }
    }
}

/// Where a page of the list starts: after this session (its rank, last activity and id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct After {
    pub waiting: bool,
    pub last_activity_at: OffsetDateTime,
    pub id: Uuid,
}

/// A request for one page of the list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub show: Show,
    /// Words to find in a session's title, project, directory, branch, host, agent type or
    /// client, or the beginning of its id.
    pub search: Option<String>,
    pub after: Option<After>,
    pub limit: i64,
}

/// The page: sorted (waiting first, then newest activity), filtered and searched over the
/// sessions table alone, cut to the page, and only then joined with the events it shows.
const INBOX_LIST: &str = "\
SELECT p.id, p.agent_type, p.status, p.last_activity_at, p.last_seen_at, p.liveness,
       p.unread_count, p.open_questions, p.title, p.project, p.cwd, p.branch, p.host,
       coalesce(q.event_id, m.event_id) AS message_id,
       coalesce(q.preview, m.preview) AS preview,
       q.event_id IS NOT NULL AS question
FROM (
    SELECT s.id, s.agent_type, s.status, s.last_activity_at, s.unread_count,
           s.open_questions, s.title, s.project, s.cwd, s.branch, s.host,
           greatest(s.last_activity_at, hb.last_heartbeat_at) AS last_seen_at,
           switchboard_liveness(s.status, greatest(s.last_activity_at, hb.last_heartbeat_at), $3,
                                s.exited_at)
               AS liveness
    FROM sessions s
    LEFT JOIN session_heartbeats hb ON hb.tenant_id = s.tenant_id AND hb.session_id = s.id
    WHERE s.tenant_id = $1
      AND ($4::text IS NULL
           OR ($4 = 'open' AND s.status <> 'COMPLETED')
           OR switchboard_liveness(s.status,
                  greatest(s.last_activity_at, hb.last_heartbeat_at), $3, s.exited_at) = $4)
      AND ($5::text IS NULL
           OR s.title ILIKE $5 OR s.project ILIKE $5 OR s.cwd ILIKE $5 OR s.branch ILIKE $5
           OR s.host ILIKE $5 OR s.agent_type ILIKE $5 OR s.client ILIKE $5
           OR s.id::text LIKE $6)
      AND ($7::boolean IS NULL
           OR (s.status <> 'AWAITING_INPUT') > NOT $7
           OR ((s.status <> 'AWAITING_INPUT') = NOT $7 AND (s.last_activity_at, s.id) < ($8, $9)))
    ORDER BY s.status <> 'AWAITING_INPUT', s.last_activity_at DESC, s.id DESC
    LIMIT $10
) p
LEFT JOIN LATERAL (
    SELECT e.event_id, left(e.data->>'content', $2) AS preview
    FROM questions oq
    JOIN events e ON e.tenant_id = oq.tenant_id AND e.event_id = oq.id
    WHERE oq.tenant_id = $1 AND oq.session_id = p.id AND oq.status = 'open'
    ORDER BY oq.asked_seq DESC
    LIMIT 1
) q ON true
LEFT JOIN LATERAL (
    SELECT e.event_id, left(e.data->>'content', $2) AS preview
    FROM events e
    WHERE e.tenant_id = $1 AND e.stream_id = p.id AND e.event_type = 'agent_message'
    ORDER BY e.stream_version DESC
    LIMIT 1
) m ON q.event_id IS NULL
ORDER BY p.status <> 'AWAITING_INPUT', p.last_activity_at DESC, p.id DESC";

const WAITING: &str =
    "SELECT count(*) FROM sessions WHERE tenant_id = $1 AND status = 'AWAITING_INPUT'";

/// One session's liveness and last sign of life, by the same rule as the list.
const LIVENESS: &str = "\
SELECT greatest(s.last_activity_at, hb.last_heartbeat_at),
       switchboard_liveness(s.status, greatest(s.last_activity_at, hb.last_heartbeat_at), $3,
                                s.exited_at)
FROM sessions s
LEFT JOIN session_heartbeats hb ON hb.tenant_id = s.tenant_id AND hb.session_id = s.id
WHERE s.tenant_id = $1 AND s.id = $2";

/// A session as the inbox lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct Listed {
    pub id: Uuid,
    pub agent_type: String,
    status: String,
    pub last_activity_at: OffsetDateTime,
    /// Its agent's last sign of life (a message, a heartbeat).
    pub last_seen_at: OffsetDateTime,
    liveness: String,
    /// Replies the agent has not received yet.
    pub unread_count: i32,
    pub open_questions: i32,
    pub title: Option<String>,
    pub project: Option<String>,
    pub cwd: Option<String>,
    pub branch: Option<String>,
    pub host: Option<String>,
    /// The message the row shows: the newest open question, else the agent's newest message.
    pub message_id: Option<Uuid>,
    pub preview: Option<String>,
    /// Whether that message is an open question.
    pub question: Option<bool>,
}

impl Listed {
    pub fn liveness(&self) -> Liveness {
        Liveness::parse(&self.liveness).unwrap_or(Liveness::Working)
    }

    pub fn waiting(&self) -> bool {
        self.status == "AWAITING_INPUT"
    }

    /// Where the page after one ending with this session starts.
    pub fn after(&self) -> After {
        After {
            waiting: self.waiting(),
            last_activity_at: self.last_activity_at,
            id: self.id,
        }
    }
}

/// `text` as an ILIKE pattern matching it anywhere (its wildcards escaped).
fn contains(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of the tenant's sessions: waiting for an answer first, then by last activity.
pub async fn sessions(
    pool: &PgPool,
    tenant_id: Uuid,
    query: &ListQuery,
    idle_before: OffsetDateTime,
) -> Result<Vec<Listed>, LogError> {
    let search = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    Ok(sqlx::query_as(INBOX_LIST)
        .bind(tenant_id)
        .bind(PREVIEW_CHARS)
        .bind(idle_before)
        .bind(query.show.filter())
        .bind(search.map(contains))
        .bind(search.map(|s| format!("{}%", s.to_ascii_lowercase().replace(['%', '_'], ""))))
        .bind(query.after.map(|a| a.waiting))
        .bind(query.after.map(|a| a.last_activity_at))
        .bind(query.after.map(|a| a.id))
        .bind(query.limit)
        .fetch_all(pool)
        .await?)
}

/// How many of the tenant's sessions wait for an answer.
pub async fn waiting(pool: &PgPool, tenant_id: Uuid) -> Result<i64, LogError> {
    Ok(sqlx::query_scalar(WAITING)
        .bind(tenant_id)
        .fetch_one(pool)
        .await?)
}

/// The most unread messages of one session whose delivery a page follows.
pub const MAX_PENDING: i64 = 500;

/// The person's messages to a session that its agent has not received yet (the newest
/// [`MAX_PENDING`]).
pub async fn unread(
    pool: &PgPool,
    tenant_id: Uuid,
    session_id: Uuid,
) -> Result<std::collections::HashSet<Uuid>, LogError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT message_id FROM inbox WHERE tenant_id = $1 AND session_id = $2 \
         ORDER BY seq DESC LIMIT $3",
    )
    .bind(tenant_id)
    .bind(session_id)
    .bind(MAX_PENDING)
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().collect())
}

/// A session's last sign of life and how it is doing.
pub async fn liveness(
    pool: &PgPool,
    tenant_id: Uuid,
    session_id: Uuid,
    idle_before: OffsetDateTime,
) -> Result<Option<(OffsetDateTime, Liveness)>, LogError> {
    let row: Option<(OffsetDateTime, String)> = sqlx::query_as(LIVENESS)
        .bind(tenant_id)
        .bind(session_id)
        .bind(idle_before)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(seen, l)| (seen, Liveness::parse(&l).unwrap_or(Liveness::Working))))
}

/// A session's newest events, newest first: at most `$3`, fewer when they would carry more than
/// `$4` bytes (always at least one), as [`crate::eventlog::read::events_after`] bounds its pages.
const LATEST_EVENTS: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text AS data,
       metadata::text AS metadata, recorded_at, txid, prev_hash, hash
FROM (SELECT *, sum(octet_length(data::text) + octet_length(metadata::text))
                    OVER (ORDER BY stream_version DESC) AS upto
      FROM events WHERE tenant_id = $1 AND stream_id = $2
      ORDER BY stream_version DESC LIMIT $3) e
WHERE upto - octet_length(data::text) - octet_length(metadata::text) < $4
ORDER BY stream_version DESC";

/// A session's newest events within `page`, oldest first, and whether there are earlier ones.
pub async fn latest_events(
    pool: &PgPool,
    tenant_id: Uuid,
    session_id: Uuid,
    page: Page,
) -> Result<(Vec<StoredEvent>, bool), LogError> {
    let mut events: Vec<StoredEvent> = sqlx::query_as(LATEST_EVENTS)
        .bind(tenant_id)
        .bind(session_id)
        .bind(page.rows)
        .bind(page.bytes)
        .fetch_all(pool)
        .await?;
    let earlier = events
        .last()
        .is_some_and(|oldest| oldest.stream_version > 1);
    events.reverse();
    Ok((events, earlier))
}

/// Events of a session by id, in stream order (the question cards a fragment re-renders).
const EVENTS_BY_ID: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text AS data,
       metadata::text AS metadata, recorded_at, txid, prev_hash, hash
FROM events WHERE tenant_id = $1 AND stream_id = $2 AND event_id = ANY($3)
ORDER BY stream_version";

pub async fn events_by_id(
    pool: &PgPool,
    tenant_id: Uuid,
    session_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<StoredEvent>, LogError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(EVENTS_BY_ID)
        .bind(tenant_id)
        .bind(session_id)
        .bind(ids)
        .fetch_all(pool)
        .await?)
}

/// Whether a page of events read with `page` may have stopped short of the end.
pub fn filled(events: &[StoredEvent], page: Page) -> bool {
    let bytes: usize = events.iter().map(|e| e.data.len() + e.metadata.len()).sum();
    events.len() as i64 >= page.rows || bytes as i64 >= page.bytes
}
