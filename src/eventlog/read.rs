//! Reading the log and the projections, one named statement per question.

use projections::{
    Account, Actor, Event, InboxMessage, Message, Question, QuestionKind, QuestionStatus,
    RecordedEvent, Session, SessionContext, SessionState, SessionStatus,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::LogError;

/// The projection generation, a session row, its unread inbox rows and its open questions, read
/// in one statement (one snapshot). Always one row: the session columns are NULL when there is
/// no such session. Every table is filtered by the tenant itself, not through the join, so that
/// on Citus the whole statement runs on the tenant's node.
const SESSION_STATE: &str = "\
SELECT g.generation,
       s.tenant_id, s.id, s.agent_type, s.status, s.started_at, s.ended_at, s.last_activity_at,
       s.git_diff, s.version, s.last_seq, s.step_count, s.read_cursor, s.unread_count,
       s.open_questions, s.title, s.project, s.cwd, s.branch, s.host, s.client, s.exited_at,
       i.stream_versions, i.message_ids, i.seqs, i.created_ats,
       q.ids, q.kinds, q.asked_ats, q.asked_seqs, q.expires_ats
FROM projection_generation g
LEFT JOIN sessions s ON s.tenant_id = $1 AND s.id = $2
LEFT JOIN LATERAL (
    SELECT array_agg(stream_version ORDER BY stream_version) AS stream_versions,
           array_agg(message_id ORDER BY stream_version) AS message_ids,
           array_agg(seq ORDER BY stream_version) AS seqs,
           array_agg(created_at ORDER BY stream_version) AS created_ats
    FROM inbox WHERE tenant_id = $1 AND session_id = $2
) i ON true
LEFT JOIN LATERAL (
    SELECT array_agg(id ORDER BY asked_seq) AS ids,
           array_agg(kind ORDER BY asked_seq) AS kinds,
           array_agg(asked_at ORDER BY asked_seq) AS asked_ats,
           array_agg(asked_seq ORDER BY asked_seq) AS asked_seqs,
           array_agg(expires_at ORDER BY asked_seq) AS expires_ats
    FROM questions WHERE tenant_id = $1 AND session_id = $2 AND status = 'open'
) q ON true";

/// The projection generation and the tenant's `users` row, in one snapshot.
const ACCOUNT: &str = "\
SELECT g.generation, u.name, u.email, u.created_at, u.version, u.last_seq
FROM projection_generation g LEFT JOIN users u ON u.tenant_id = $1";

const GENERATION: &str = "SELECT generation FROM projection_generation";

/// The text of unread user messages, from their events.
const USER_MESSAGE_TEXTS: &str = "\
SELECT seq, event_type, data::text FROM events WHERE tenant_id = $1 AND seq = ANY($2) ORDER BY seq";

const EVENT_BY_ID: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text, recorded_at
FROM events WHERE tenant_id = $1 AND event_id = $2";

const STREAM: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text, recorded_at
FROM events WHERE tenant_id = $1 AND stream_id = $2 ORDER BY stream_version";

const STREAM_FROM: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text, recorded_at
FROM events
WHERE tenant_id = $1 AND stream_id = $2
  AND stream_version >= coalesce(
      (SELECT stream_version FROM events WHERE tenant_id = $1 AND event_id = $3 AND stream_id = $2),
      2147483647)
ORDER BY stream_version";

/// The columns every event read selects, in order.
pub type EventRow = (Uuid, i64, Uuid, i32, Uuid, String, String, OffsetDateTime);

pub fn recorded(row: EventRow) -> Result<RecordedEvent, LogError> {
    let (tenant_id, seq, stream_id, stream_version, event_id, event_type, data, recorded_at) = row;
    let event = Event::from_stored(&event_type, &data)
        .map_err(|e| LogError::Corrupt(format!("tenant {tenant_id} seq {seq}: {e}")))?;
    Ok(RecordedEvent {
        tenant_id,
        seq,
        stream_id,
        stream_version,
        event_id,
        recorded_at,
        event,
    })
}

/// A `sessions` row as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionRecord {
    tenant_id: Uuid,
    id: Uuid,
    agent_type: String,
    status: String,
    started_at: OffsetDateTime,
    ended_at: Option<OffsetDateTime>,
    last_activity_at: OffsetDateTime,
    git_diff: Option<String>,
    version: i32,
    last_seq: i64,
    step_count: i32,
    read_cursor: Option<Uuid>,
    unread_count: i32,
    open_questions: i32,
    title: Option<String>,
    project: Option<String>,
    cwd: Option<String>,
    branch: Option<String>,
    host: Option<String>,
    client: Option<String>,
    exited_at: Option<OffsetDateTime>,
}

impl SessionRecord {
    /// (tenant, session): the order the rebuild reads rows in.
    pub fn key(&self) -> (Uuid, Uuid) {
        (self.tenant_id, self.id)
    }

    pub fn git_diff_len(&self) -> usize {
        self.git_diff.as_ref().map_or(0, String::len)
    }

    pub fn into_session(self) -> Result<Session, LogError> {
        let status = SessionStatus::parse(&self.status).ok_or_else(|| {
            LogError::Corrupt(format!("session {} has status {:?}", self.id, self.status))
        })?;
        Ok(Session {
            tenant_id: self.tenant_id,
            id: self.id,
            agent_type: self.agent_type,
            status,
            started_at: self.started_at,
            ended_at: self.ended_at,
            last_activity_at: self.last_activity_at,
            git_diff: self.git_diff,
            version: self.version,
            last_seq: self.last_seq,
            step_count: self.step_count,
            read_cursor: self.read_cursor,
            unread_count: self.unread_count,
            open_questions: self.open_questions,
            context: SessionContext {
                title: self.title,
                project: self.project,
                cwd: self.cwd,
                branch: self.branch,
                host: self.host,
                client: self.client,
            },
            exited_at: self.exited_at,
        })
    }
}

/// A `questions` row as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct QuestionRecord {
    tenant_id: Uuid,
    session_id: Uuid,
    id: Uuid,
    kind: String,
    status: String,
    asked_at: OffsetDateTime,
    asked_seq: i64,
    expires_at: Option<OffsetDateTime>,
    closed_at: Option<OffsetDateTime>,
    closed_seq: Option<i64>,
    closed_by: Option<String>,
    answer_id: Option<Uuid>,
    reason: Option<String>,
}

const QUESTION_BY_ID: &str = "\
SELECT tenant_id, session_id, id, kind, status, asked_at, asked_seq, expires_at, closed_at,
       closed_seq, closed_by, answer_id, reason
FROM questions WHERE tenant_id = $1 AND session_id = $2 AND id = $3";

const SESSION_QUESTIONS: &str = "\
SELECT tenant_id, session_id, id, kind, status, asked_at, asked_seq, expires_at, closed_at,
       closed_seq, closed_by, answer_id, reason
FROM questions
WHERE tenant_id = $1 AND session_id = $2 AND ($3::uuid[] IS NULL OR id = ANY($3))
  AND ($4::text IS NULL OR status = $4)
ORDER BY asked_seq, id";

impl QuestionRecord {
    /// (tenant, session): the order the rebuild reads rows in.
    pub fn key(&self) -> (Uuid, Uuid) {
        (self.tenant_id, self.session_id)
    }

    pub fn into_question(self) -> Result<Question, LogError> {
        let corrupt = |what: &str, value: &str| {
            LogError::Corrupt(format!("question {} has {what} {value:?}", self.id))
        };
        let kind = QuestionKind::parse(&self.kind).ok_or_else(|| corrupt("kind", &self.kind))?;
        let status =
            QuestionStatus::parse(&self.status).ok_or_else(|| corrupt("status", &self.status))?;
        let closed_by = match self.closed_by.as_deref() {
            None => None,
            Some(text) => Some(actor(text).ok_or_else(|| corrupt("closed_by", text))?),
        };
        Ok(Question {
            tenant_id: self.tenant_id,
            session_id: self.session_id,
            id: self.id,
            kind,
            status,
            asked_at: self.asked_at,
            asked_seq: self.asked_seq,
            expires_at: self.expires_at,
            closed_at: self.closed_at,
            closed_seq: self.closed_seq,
            closed_by,
            answer_id: self.answer_id,
            reason: self.reason,
        })
    }
}

/// The stored name of who closed a question.
pub fn actor_name(actor: Actor) -> &'static str {
    match actor {
        Actor::Agent => "agent",
        Actor::User => "user",
        Actor::System => "system",
    }
}

fn actor(name: &str) -> Option<Actor> {
    match name {
        "agent" => Some(Actor::Agent),
        "user" => Some(Actor::User),
        "system" => Some(Actor::System),
        _ => None,
    }
}

/// An `inbox` row as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct InboxRecord {
    tenant_id: Uuid,
    session_id: Uuid,
    stream_version: i32,
    message_id: Uuid,
    seq: i64,
    created_at: OffsetDateTime,
}

impl InboxRecord {
    /// (tenant, session): the order the rebuild reads rows in.
    pub fn key(&self) -> (Uuid, Uuid) {
        (self.tenant_id, self.session_id)
    }
}

impl From<InboxRecord> for InboxMessage {
    fn from(r: InboxRecord) -> InboxMessage {
        InboxMessage {
            tenant_id: r.tenant_id,
            session_id: r.session_id,
            message_id: r.message_id,
            stream_version: r.stream_version,
            seq: r.seq,
            created_at: r.created_at,
        }
    }
}

/// A session's projected state: its `sessions` row and its unread `inbox` rows.
pub async fn session_state(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
) -> Result<Option<SessionState>, LogError> {
    Ok(session_state_with_generation(conn, tenant_id, session_id)
        .await?
        .1)
}

/// [`session_state`], with the projection generation it belongs to.
pub async fn session_state_with_generation(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
) -> Result<(i64, Option<SessionState>), LogError> {
    use sqlx::Row;
    let row = sqlx::query(SESSION_STATE)
        .bind(tenant_id)
        .bind(session_id)
        .fetch_one(&mut *conn)
        .await?;
    let generation: i64 = row.try_get(0)?;
    if row.try_get::<Option<Uuid>, _>(2)?.is_none() {
        return Ok((generation, None));
    }
    let session = SessionRecord {
        tenant_id: row.try_get(1)?,
        id: row.try_get(2)?,
        agent_type: row.try_get(3)?,
        status: row.try_get(4)?,
        started_at: row.try_get(5)?,
        ended_at: row.try_get(6)?,
        last_activity_at: row.try_get(7)?,
        git_diff: row.try_get(8)?,
        version: row.try_get(9)?,
        last_seq: row.try_get(10)?,
        step_count: row.try_get(11)?,
        read_cursor: row.try_get(12)?,
        unread_count: row.try_get(13)?,
        open_questions: row.try_get(14)?,
        title: row.try_get(15)?,
        project: row.try_get(16)?,
        cwd: row.try_get(17)?,
        branch: row.try_get(18)?,
        host: row.try_get(19)?,
        client: row.try_get(20)?,
        exited_at: row.try_get(21)?,
    }
    .into_session()?;
    let versions: Option<Vec<i32>> = row.try_get(22)?;
    let ids: Option<Vec<Uuid>> = row.try_get(23)?;
    let seqs: Option<Vec<i64>> = row.try_get(24)?;
    let created: Option<Vec<OffsetDateTime>> = row.try_get(25)?;
    let inbox = (versions.unwrap_or_default().into_iter())
        .zip(ids.unwrap_or_default())
        .zip(seqs.unwrap_or_default())
        .zip(created.unwrap_or_default())
        .map(
            |(((stream_version, message_id), seq), created_at)| InboxMessage {
                tenant_id,
                session_id,
                message_id,
                stream_version,
                seq,
                created_at,
            },
        )
        .collect();
    let ids: Option<Vec<Uuid>> = row.try_get(26)?;
    let kinds: Option<Vec<String>> = row.try_get(27)?;
    let asked_ats: Option<Vec<OffsetDateTime>> = row.try_get(28)?;
    let asked_seqs: Option<Vec<i64>> = row.try_get(29)?;
    let expires_ats: Option<Vec<Option<OffsetDateTime>>> = row.try_get(30)?;
    let questions = (ids.unwrap_or_default().into_iter())
        .zip(kinds.unwrap_or_default())
        .zip(asked_ats.unwrap_or_default())
        .zip(asked_seqs.unwrap_or_default())
        .zip(expires_ats.unwrap_or_default())
        .map(|((((id, kind), asked_at), asked_seq), expires_at)| {
            let kind = QuestionKind::parse(&kind)
                .ok_or_else(|| LogError::Corrupt(format!("question {id} has kind {kind:?}")))?;
            Ok(Question {
                tenant_id,
                session_id,
                id,
                kind,
                status: QuestionStatus::Open,
                asked_at,
                asked_seq,
                expires_at,
                closed_at: None,
                closed_seq: None,
                closed_by: None,
                answer_id: None,
                reason: None,
            })
        })
        .collect::<Result<_, LogError>>()?;
    Ok((
        generation,
        Some(SessionState {
            session,
            inbox,
            questions,
        }),
    ))
}

/// A page of a session's questions with what each asked (the agent message's data), oldest
/// first, after the question asked at `$3`, of status `$5` when given: at most `$4`, fewer when
/// they would carry more than `$6` bytes (always at least one).
const QUESTION_PAGE: &str = "\
SELECT tenant_id, session_id, id, kind, status, asked_at, asked_seq, expires_at, closed_at,
       closed_seq, closed_by, answer_id, reason, data
FROM (SELECT q.*, e.data::text AS data,
             sum(octet_length(e.data::text)) OVER (ORDER BY q.asked_seq, q.id) AS upto
      FROM questions q
      JOIN events e ON e.tenant_id = q.tenant_id AND e.event_id = q.id
      WHERE q.tenant_id = $1 AND q.session_id = $2 AND q.asked_seq > $3
        AND ($5::text IS NULL OR q.status = $5)
      ORDER BY q.asked_seq, q.id LIMIT $4) p
WHERE upto - octet_length(data) < $6
ORDER BY asked_seq, id";

#[derive(sqlx::FromRow)]
struct AskedRecord {
    #[sqlx(flatten)]
    question: QuestionRecord,
    data: String,
}

/// A page of a session's questions (of `status`, when given) asked after tenant sequence
/// `after_seq`, each with the agent message that asks it, within `page`.
pub async fn question_page(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
    status: Option<QuestionStatus>,
    after_seq: i64,
    page: Page,
) -> Result<Vec<(Question, projections::AgentMessage)>, LogError> {
    let records: Vec<AskedRecord> = sqlx::query_as(QUESTION_PAGE)
        .bind(tenant_id)
        .bind(session_id)
        .bind(after_seq)
        .bind(page.rows)
        .bind(status.map(QuestionStatus::as_str))
        .bind(page.bytes)
        .fetch_all(&mut *conn)
        .await?;
    records
        .into_iter()
        .map(|r| {
            let question = r.question.into_question()?;
            match Event::from_stored("agent_message", &r.data) {
                Ok(Event::AgentMessage(asked)) => Ok((question, asked)),
                _ => Err(LogError::Corrupt(format!(
                    "question {} is not an agent message in the log",
                    question.id
                ))),
            }
        })
        .collect()
}

/// One question of a session, whatever its status.
pub async fn question(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
    question_id: Uuid,
) -> Result<Option<Question>, LogError> {
    let record: Option<QuestionRecord> = sqlx::query_as(QUESTION_BY_ID)
        .bind(tenant_id)
        .bind(session_id)
        .bind(question_id)
        .fetch_optional(&mut *conn)
        .await?;
    record.map(QuestionRecord::into_question).transpose()
}

/// A session's questions, oldest first: all of them, or those with these ids.
pub async fn questions(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
    only: Option<&[Uuid]>,
) -> Result<Vec<Question>, LogError> {
    questions_of(conn, tenant_id, session_id, only, None).await
}

async fn questions_of(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
    only: Option<&[Uuid]>,
    status: Option<QuestionStatus>,
) -> Result<Vec<Question>, LogError> {
    let records: Vec<QuestionRecord> = sqlx::query_as(SESSION_QUESTIONS)
        .bind(tenant_id)
        .bind(session_id)
        .bind(only)
        .bind(status.map(QuestionStatus::as_str))
        .fetch_all(&mut *conn)
        .await?;
    records
        .into_iter()
        .map(QuestionRecord::into_question)
        .collect()
}

/// A session's questions whose status is open, oldest first (one past its deadline is still
/// among them until the sweeper expires it: ask [`Question::answerable_at`]).
pub async fn open_questions(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
) -> Result<Vec<Question>, LogError> {
    questions_of(
        conn,
        tenant_id,
        session_id,
        None,
        Some(QuestionStatus::Open),
    )
    .await
}

/// The tenant's account (its `users` row), with the projection generation.
pub async fn account_with_generation(
    conn: &mut PgConnection,
    tenant_id: Uuid,
) -> Result<(i64, Option<Account>), LogError> {
    type Row = (
        i64,
        Option<String>,
        Option<String>,
        Option<OffsetDateTime>,
        Option<i32>,
        Option<i64>,
    );
    let (generation, name, email, created_at, version, last_seq): Row = sqlx::query_as(ACCOUNT)
        .bind(tenant_id)
        .fetch_one(&mut *conn)
        .await?;
    let account = match (name, created_at, version, last_seq) {
        (Some(name), Some(created_at), Some(version), Some(last_seq)) => Some(Account {
            tenant_id,
            name,
            email,
            created_at,
            version,
            last_seq,
        }),
        _ => None,
    };
    Ok((generation, account))
}

/// The current projection generation.
pub async fn generation(conn: &mut PgConnection) -> Result<i64, LogError> {
    Ok(sqlx::query_scalar(GENERATION).fetch_one(&mut *conn).await?)
}

/// The unread messages `unread` points at, with their text from the log, oldest first.
pub async fn user_messages(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    refs: &[super::messages::MessageRef],
) -> Result<Vec<Message>, LogError> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = refs.iter().map(|m| m.seq).collect();
    let texts: Vec<(i64, String, String)> = sqlx::query_as(USER_MESSAGE_TEXTS)
        .bind(tenant_id)
        .bind(&seqs)
        .fetch_all(&mut *conn)
        .await?;
    let mut texts = texts.into_iter();
    refs.iter()
        .map(|m| {
            match texts
                .next()
                .map(|(seq, t, data)| (seq, Event::from_stored(&t, &data)))
            {
                Some((seq, Ok(Event::UserMessage(said)))) if seq == m.seq => {
                    Ok(Message::from_user(m.id, m.seq, m.created_at, said))
                }
                _ => Err(LogError::Corrupt(format!(
                    "tenant {tenant_id}: message {} (seq {}) is not a user message in the log",
                    m.id, m.seq
                ))),
            }
        })
        .collect()
}

pub async fn event_by_id(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    event_id: Uuid,
) -> Result<Option<RecordedEvent>, LogError> {
    let row: Option<EventRow> = sqlx::query_as(EVENT_BY_ID)
        .bind(tenant_id)
        .bind(event_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(recorded).transpose()
}

pub async fn stream(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    stream_id: Uuid,
) -> Result<Vec<RecordedEvent>, LogError> {
    let rows: Vec<EventRow> = sqlx::query_as(STREAM)
        .bind(tenant_id)
        .bind(stream_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(recorded).collect()
}

/// A stream's events from `from_event` on (none when it has no such event).
pub async fn stream_from(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    stream_id: Uuid,
    from_event: Uuid,
) -> Result<Vec<RecordedEvent>, LogError> {
    let rows: Vec<EventRow> = sqlx::query_as(STREAM_FROM)
        .bind(tenant_id)
        .bind(stream_id)
        .bind(from_event)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(recorded).collect()
}

/// How many events after a reader's last read message are looked through at most.
const CONVERSATION_LIMIT: i64 = 1_000;

const CONVERSATION_AFTER: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text, recorded_at
FROM events
WHERE tenant_id = $1 AND stream_id = $2
  AND stream_version > (SELECT stream_version FROM events
                        WHERE tenant_id = $1 AND event_id = $3 AND stream_id = $2)
  AND event_type IN ('agent_message', 'user_message', 'messages_read', 'messages_received')
ORDER BY stream_version
LIMIT $4";

/// Messages and reads of a session after its message `message_id`, oldest first; `None` when
/// there are more than [`CONVERSATION_LIMIT`] or no such message.
pub async fn conversation_after(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    stream_id: Uuid,
    message_id: Uuid,
) -> Result<Option<Vec<RecordedEvent>>, LogError> {
    let rows: Vec<EventRow> = sqlx::query_as(CONVERSATION_AFTER)
        .bind(tenant_id)
        .bind(stream_id)
        .bind(message_id)
        .bind(CONVERSATION_LIMIT + 1)
        .fetch_all(&mut *conn)
        .await?;
    if rows.is_empty() || rows.len() as i64 > CONVERSATION_LIMIT {
        return Ok(None);
    }
    rows.into_iter()
        .map(recorded)
        .collect::<Result<_, _>>()
        .map(Some)
}

const INPUT_REQUESTED: &str = "\
SELECT EXISTS (SELECT 1 FROM events
               WHERE tenant_id = $1 AND stream_id = $2 AND event_type = 'input_requested'
                 AND data->>'message_id' = $3::text)";

/// Has an earlier agent message of this stream already been turned into a question?
pub async fn input_requested(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    stream_id: Uuid,
    message_id: Uuid,
) -> Result<bool, LogError> {
    Ok(sqlx::query_scalar(INPUT_REQUESTED)
        .bind(tenant_id)
        .bind(stream_id)
        .bind(message_id)
        .fetch_one(&mut *conn)
        .await?)
}

/// A page of sessions, newest activity first, keyset-paged on (last activity, id): sessions
/// that tie on their last activity are neither skipped nor repeated across pages.
const LIST_SESSIONS: &str = "\
SELECT tenant_id, id, agent_type, status, started_at, ended_at, last_activity_at, git_diff,
       version, last_seq, step_count, read_cursor, unread_count, open_questions, title, project,
       cwd, branch, host, client, exited_at
FROM sessions
WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::timestamptz IS NULL
       OR ($5::uuid IS NULL AND last_activity_at < $3)
       OR (last_activity_at, id) < ($3, $5))
ORDER BY last_activity_at DESC, id DESC
LIMIT $4";

/// Which sessions a listing shows: newest activity first, after the position `before`
/// (a last-activity time, and the id of the last session seen at that time when known).
#[derive(Clone, Copy, Debug)]
pub struct SessionFilter {
    pub status: Option<SessionStatus>,
    pub before: Option<OffsetDateTime>,
    pub before_id: Option<Uuid>,
    pub limit: i64,
}

pub async fn list_sessions(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    filter: SessionFilter,
) -> Result<Vec<Session>, LogError> {
    let rows: Vec<SessionRecord> = sqlx::query_as(LIST_SESSIONS)
        .bind(tenant_id)
        .bind(filter.status.map(SessionStatus::as_str))
        .bind(filter.before)
        .bind(filter.limit)
        .bind(filter.before_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(SessionRecord::into_session).collect()
}

const HEARTBEAT: &str =
    "SELECT last_heartbeat_at FROM session_heartbeats WHERE tenant_id = $1 AND session_id = $2";

pub async fn last_heartbeat(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
) -> Result<Option<OffsetDateTime>, LogError> {
    Ok(sqlx::query_scalar(HEARTBEAT)
        .bind(tenant_id)
        .bind(session_id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// An event exactly as stored: what streams, audits and exports show.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub stream_id: Uuid,
    pub stream_version: i32,
    pub event_id: Uuid,
    pub event_type: String,
    pub data: String,
    pub metadata: String,
    pub recorded_at: OffsetDateTime,
    pub txid: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Decoded by position: every query that reads stored events selects `tenant_id, seq,
/// stream_id, stream_version, event_id, event_type, data, metadata, recorded_at, txid,
/// prev_hash, hash` in this order (looking columns up by name costs exports a fifth of their
/// speed).
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for StoredEvent {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<StoredEvent, sqlx::Error> {
        use sqlx::Row;
        Ok(StoredEvent {
            tenant_id: row.try_get(0)?,
            seq: row.try_get(1)?,
            stream_id: row.try_get(2)?,
            stream_version: row.try_get(3)?,
            event_id: row.try_get(4)?,
            event_type: row.try_get(5)?,
            data: row.try_get(6)?,
            metadata: row.try_get(7)?,
            recorded_at: row.try_get(8)?,
            txid: row.try_get(9)?,
            prev_hash: row.try_get(10)?,
            hash: row.try_get(11)?,
        })
    }
}

impl StoredEvent {
    /// One JSON object; `data` and `metadata` are the stored JSON text, byte for byte, so the
    /// hash chain can be recomputed from it.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(400 + self.data.len() + self.metadata.len());
        self.write_json(&mut out);
        out
    }

    /// [`StoredEvent::to_json`], appended to `out`. Written by hand because exports run at
    /// hundreds of thousands of events a second: the stored JSON (valid, the `json` column
    /// checked it on insert) is embedded without being parsed again.
    pub fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        let event_type =
            serde_json::to_string(&self.event_type).expect("strings serialize to JSON");
        write!(
            out,
            "{{\"tenant_id\":\"{}\",\"seq\":{},\"session_id\":\"{}\",\"stream_version\":{},\
             \"event_id\":\"{}\",\"type\":{event_type},\"data\":{},\"metadata\":{},\
             \"recorded_at\":\"",
            self.tenant_id,
            self.seq,
            self.stream_id,
            self.stream_version,
            self.event_id,
            self.data,
            self.metadata,
        )
        .expect("writing to a String cannot fail");
        crate::timestamp::write(out, self.recorded_at);
        write!(out, "\",\"txid\":{},\"prev_hash\":\"", self.txid)
            .expect("writing to a String cannot fail");
        push_hex(out, &self.prev_hash);
        out.push_str("\",\"hash\":\"");
        push_hex(out, &self.hash);
        out.push_str("\"}");
    }
}

/// Lower-case hex of `bytes`, appended to `out`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Up to `$3` of the tenant's events after seq `$2`, fewer when they would carry more than
/// `$4` bytes (always at least one). Sizes come from the values' headers, so events left out
/// are never read in full.
const STORED_COLUMNS_AFTER: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text AS data,
       metadata::text AS metadata, recorded_at, txid, prev_hash, hash
FROM (SELECT *, sum(octet_length(data::text) + octet_length(metadata::text))
                    OVER (ORDER BY seq) AS upto
      FROM events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3) e
WHERE upto - octet_length(data::text) - octet_length(metadata::text) < $4
ORDER BY seq";

/// [`STORED_COLUMNS_AFTER`] for one session (`$5`).
const STORED_SESSION_AFTER: &str = "\
SELECT tenant_id, seq, stream_id, stream_version, event_id, event_type, data::text AS data,
       metadata::text AS metadata, recorded_at, txid, prev_hash, hash
FROM (SELECT *, sum(octet_length(data::text) + octet_length(metadata::text))
                    OVER (ORDER BY stream_version) AS upto
      FROM events WHERE tenant_id = $1 AND stream_id = $5 AND seq > $2
      ORDER BY stream_version LIMIT $3) e
WHERE upto - octet_length(data::text) - octet_length(metadata::text) < $4
ORDER BY stream_version";

/// How much of the log one read may return: at most `rows` events, and no more events once
/// `bytes` (of data and metadata) are reached, except that the first is always returned.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub rows: i64,
    pub bytes: i64,
}

impl Page {
    /// The page to ask for after one that returned `returned` events, for a reader that reads
    /// on: the byte bound is found by measuring every row the query considers, so when large
    /// events cut pages short, the next page considers only about twice as many rows as the
    /// last one returned (a log of 2 MB events would otherwise have each page measure up to
    /// `rows` events to return a handful). Full pages grow back to `self.rows`.
    pub fn after(&self, asked: Page, returned: usize) -> Page {
        let returned = i64::try_from(returned).unwrap_or(i64::MAX);
        let rows = if returned >= asked.rows {
            asked.rows.saturating_mul(2)
        } else {
            returned.saturating_mul(2)
        };
        Page {
            rows: rows.clamp(1, self.rows),
            bytes: self.bytes,
        }
    }
}

/// The tenant's events after `after_seq` (of one session, when given), in order, within `page`.
pub async fn events_after(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Option<Uuid>,
    after_seq: i64,
    page: Page,
) -> Result<Vec<StoredEvent>, LogError> {
    let query = match session_id {
        None => sqlx::query_as(STORED_COLUMNS_AFTER),
        Some(_) => sqlx::query_as(STORED_SESSION_AFTER),
    };
    let mut query = query
        .bind(tenant_id)
        .bind(after_seq)
        .bind(page.rows)
        .bind(page.bytes);
    if let Some(session_id) = session_id {
        query = query.bind(session_id);
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

const TENANT_HEAD: &str = "SELECT coalesce(max(seq), 0) FROM events WHERE tenant_id = $1";

/// The tenant's latest sequence number (0 before its first event).
pub async fn tenant_head(conn: &mut PgConnection, tenant_id: Uuid) -> Result<i64, LogError> {
    Ok(sqlx::query_scalar(TENANT_HEAD)
        .bind(tenant_id)
        .fetch_one(&mut *conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::Page;

    #[test]
    fn pages_cut_short_by_bytes_shrink_the_next_and_full_pages_grow_back() {
        let limit = Page {
            rows: 5_000,
            bytes: 16 << 20,
        };
        let short = limit.after(limit, 8);
        assert_eq!(short.rows, 16);
        assert_eq!(short.bytes, limit.bytes);
        assert_eq!(limit.after(short, 1).rows, 2);
        assert_eq!(limit.after(short, 0).rows, 1, "never less than one row");
        let full = limit.after(short, 16);
        assert_eq!(full.rows, 32);
        assert_eq!(
            limit.after(limit, 5_000).rows,
            5_000,
            "never more than the limit"
        );
    }
}
