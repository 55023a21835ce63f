//! Appending: decide on what this process knows, then write in one statement.
//!
//! A command runs inside a [`TenantTxn`]: it holds this process's lock on the tenant (so the
//! process's own appends never race), reads stream state (a session's, or the tenant's account)
//! from the tenant's cached knowledge or the database, decides its events, and
//! [`TenantTxn::commit`] writes events and the projection rows they change (`sessions`,
//! `inbox`, `users`, and an idempotency record) as one autocommit statement.
//!
//! Nothing is locked in the database. The statement inserts `seq = head + 1` and
//! `stream_version = version + 1`; if another process appended in between, one of those keys
//! exists and the statement fails as a unique violation: [`LogError::Stale`]. It also fails
//! as stale when the projections were rebuilt since the state it rests on was read (every state
//! read carries the projection generation, and the statement checks it). The caller forgets
//! what it knew, reloads and decides again. A successful write therefore proves that the head,
//! the generation and the state the decision used were current, so each tenant's sequence and
//! hash chain are gap-free and in commit order, and projections are updated from exactly the
//! state before.
//!
//! Projection rows are written as changes, never by comparing whole states: unread messages
//! leave the inbox as a prefix (one range delete) and arrive at its end (inserts of just the
//! new ones), so what an append writes and compares does not grow with the inbox.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use projections::{Account, Event, Metadata, Question, RecordedEvent, Session, SessionState};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::cache::TenantKnowledge;
use super::chain::{self, GENESIS, Hash, Link};
use super::group_commit::GroupCommit;
use super::write::{AppendRows, EventRow, InboxCut, InboxRow};
use super::{LogError, read};

/// An event about to be appended, with the id that makes appending it idempotent.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event: Event,
}

/// What the caller believes the stream's version to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(i32),
}

/// What an append wrote, enough to notify and to answer the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendedEvent {
    pub seq: i64,
    pub stream_id: Uuid,
    pub stream_version: i32,
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub recorded_at: OffsetDateTime,
}

/// A committed append.
#[derive(Clone, Debug, Default)]
pub struct Committed {
    pub tenant_id: Uuid,
    pub events: Vec<AppendedEvent>,
}

impl Committed {
    /// The highest tenant sequence number written, if anything was.
    pub fn last_seq(&self) -> Option<i64> {
        self.events.last().map(|e| e.seq)
    }
}

/// An idempotency record to write with the events.
#[derive(Clone, Debug)]
pub struct Remembered {
    pub key: String,
    pub command: &'static str,
    pub fingerprint: Vec<u8>,
    pub response: String,
}

/// A session as it was before this unit of work: its row, and where its unread messages
/// began and ended (enough to write the inbox as changes).
#[derive(Clone, Debug)]
struct Before {
    session: Option<Session>,
    first_unread: Option<i32>,
    last_unread: Option<i32>,
}

impl Before {
    fn of(state: &Option<SessionState>) -> Before {
        Before {
            session: state.as_ref().map(|s| s.session.clone()),
            first_unread: state
                .as_ref()
                .and_then(|s| s.inbox.first())
                .map(|m| m.stream_version),
            last_unread: state
                .as_ref()
                .and_then(|s| s.inbox.last())
                .map(|m| m.stream_version),
        }
    }
}

/// Events recorded now, all with `metadata`.
fn stamped(events: Vec<NewEvent>, metadata: &Metadata) -> Vec<(NewEvent, OffsetDateTime, String)> {
    let metadata = serde_json::to_string(metadata).expect("metadata serializes");
    let now = chain::now_micros();
    events
        .into_iter()
        .map(|new| (new, now, metadata.clone()))
        .collect()
}

/// One command's unit of work on a tenant's log. Dropping it without
/// [`TenantTxn::commit`] writes nothing.
pub struct TenantTxn {
    pool: PgPool,
    tenant_id: Uuid,
    knowledge: OwnedMutexGuard<TenantKnowledge>,
    /// The head the appended events continue from.
    head: Option<(i64, Hash)>,
    /// The projection generation every state read here belongs to.
    generation: Option<i64>,
    /// Session states read or produced here; `None` = no such session.
    sessions: HashMap<Uuid, Option<SessionState>>,
    /// Sessions as they were before this unit of work, to write only what changed.
    before: HashMap<Uuid, Before>,
    /// The account, when read or produced here (`Some(None)`: not created).
    account: Option<Option<Account>>,
    account_before: Option<Option<Account>>,
    /// Streams whose state came from cached knowledge rather than the database.
    from_cache: HashSet<Uuid>,
    /// Messages made unread again here (`messages_returned`): they re-enter the inbox
    /// wherever they were said, not only at its end.
    returned: HashSet<Uuid>,
    /// Unread messages received here out of order (`messages_received`): single rows leave.
    received: Vec<InboxRow>,
    /// Question rows opened or closed here, in order (a question may appear twice).
    questions: Vec<Question>,
    rows: Vec<EventRow>,
    remembered: Option<Remembered>,
    group: Arc<GroupCommit>,
}

const HEAD: &str = "SELECT seq, hash FROM events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1";

impl TenantTxn {
    pub(super) fn new(
        pool: PgPool,
        group: Arc<GroupCommit>,
        tenant_id: Uuid,
        knowledge: OwnedMutexGuard<TenantKnowledge>,
    ) -> TenantTxn {
        TenantTxn {
            pool,
            tenant_id,
            head: knowledge.head,
            generation: None,
            knowledge,
            sessions: HashMap::new(),
            before: HashMap::new(),
            account: None,
            account_before: None,
            from_cache: HashSet::new(),
            returned: HashSet::new(),
            received: Vec::new(),
            questions: Vec::new(),
            rows: Vec::new(),
            remembered: None,
            group,
        }
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// Everything read here must belong to one projection generation.
    fn note_generation(&mut self, generation: i64) -> Result<(), LogError> {
        match self.generation {
            Some(known) if known != generation => {
                self.knowledge.forget();
                Err(LogError::Stale)
            }
            _ => {
                self.generation = Some(generation);
                Ok(())
            }
        }
    }

    /// The session's projected state, including anything appended in this transaction.
    pub async fn session(&mut self, session_id: Uuid) -> Result<Option<&SessionState>, LogError> {
        if !self.sessions.contains_key(&session_id) {
            let cached = match self.knowledge.generation {
                Some(generation) => self
                    .knowledge
                    .sessions
                    .get(&session_id)
                    .map(|known| (generation, known.clone())),
                None => None,
            };
            let (generation, state) = match cached {
                Some(hit) => {
                    self.from_cache.insert(session_id);
                    hit
                }
                None => {
                    let mut conn = self.pool.acquire().await?;
                    read::session_state_with_generation(&mut conn, self.tenant_id, session_id)
                        .await?
                }
            };
            self.note_generation(generation)?;
            self.before.insert(session_id, Before::of(&state));
            self.sessions.insert(session_id, state);
        }
        Ok(self.sessions[&session_id].as_ref())
    }

    /// The tenant's account (its `users` row), including anything appended here.
    pub async fn account(&mut self) -> Result<Option<&Account>, LogError> {
        if self.account.is_none() {
            let cached = match (self.knowledge.generation, &self.knowledge.account) {
                (Some(generation), Some(known)) => Some((generation, known.clone())),
                _ => None,
            };
            let (generation, account) = match cached {
                Some(hit) => {
                    self.from_cache.insert(self.tenant_id);
                    hit
                }
                None => {
                    let mut conn = self.pool.acquire().await?;
                    read::account_with_generation(&mut conn, self.tenant_id).await?
                }
            };
            self.note_generation(generation)?;
            self.account_before = Some(account.clone());
            self.account = Some(account);
        }
        Ok(self.account.as_ref().and_then(Option::as_ref))
    }

    /// The stored event with this id, if the tenant has one.
    pub async fn event(&mut self, event_id: Uuid) -> Result<Option<RecordedEvent>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::event_by_id(&mut conn, self.tenant_id, event_id).await
    }

    /// A question of a session as the `questions` table holds it (open or closed).
    pub async fn question(
        &mut self,
        session_id: Uuid,
        question_id: Uuid,
    ) -> Result<Option<Question>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::question(&mut conn, self.tenant_id, session_id, question_id).await
    }

    /// Has this agent message been turned into a question after it was sent?
    pub async fn input_requested(
        &mut self,
        stream_id: Uuid,
        message_id: Uuid,
    ) -> Result<bool, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::input_requested(&mut conn, self.tenant_id, stream_id, message_id).await
    }

    /// What was said and read in a session after its message `message_id` (user and agent
    /// messages, reads), oldest first; `None` when that is more than a long conversation's
    /// worth (or the session has no such message).
    pub async fn conversation_after(
        &mut self,
        session_id: Uuid,
        message_id: Uuid,
    ) -> Result<Option<Vec<RecordedEvent>>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::conversation_after(&mut conn, self.tenant_id, session_id, message_id).await
    }

    /// The person's messages `refs` name, a page at a time, inside this unit of work's view.
    pub fn user_message_pages(
        &self,
        refs: Vec<super::MessageRef>,
    ) -> impl futures::Stream<Item = Result<Vec<projections::Message>, LogError>> + Send + 'static
    {
        super::messages::pages(self.pool.clone(), self.tenant_id, refs)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// True when nothing was appended but the decision rested on remembered state. Such a
    /// decision is never checked by a write, so it must be made again on fresh state.
    pub fn unverified(&self) -> bool {
        self.rows.is_empty() && !self.from_cache.is_empty()
    }

    /// Forget what this process remembers about the tenant.
    pub fn forget(&mut self) {
        self.knowledge.forget();
    }

    /// Write this idempotency record with the events, atomically.
    pub fn remember(&mut self, record: Remembered) {
        self.remembered = Some(record);
    }

    async fn head(&mut self) -> Result<(i64, Hash), LogError> {
        if let Some(head) = self.head {
            return Ok(head);
        }
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as(HEAD)
            .bind(self.tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        let head = match row {
            None => (0, GENESIS),
            Some((seq, hash)) => {
                let hash = chain::from_bytes(&hash).ok_or_else(|| {
                    LogError::Corrupt(format!(
                        "tenant {} seq {seq} has a malformed hash",
                        self.tenant_id
                    ))
                })?;
                (seq, hash)
            }
        };
        self.head = Some(head);
        Ok(head)
    }

    /// Check `expected` against the stream's version (`current`).
    fn expect(
        &mut self,
        stream_id: Uuid,
        expected: ExpectedVersion,
        current: Option<i32>,
    ) -> Result<(), LogError> {
        match (expected, current) {
            (ExpectedVersion::Any, _) | (ExpectedVersion::NoStream, None) => Ok(()),
            (ExpectedVersion::Exact(v), Some(actual)) if v == actual => Ok(()),
            // What this process remembered may be behind: look again before refusing.
            _ if self.from_cache.contains(&stream_id) => {
                self.knowledge.forget();
                Err(LogError::Stale)
            }
            (expected, actual) => Err(LogError::VersionConflict {
                stream_id,
                expected,
                actual: actual.unwrap_or(0),
            }),
        }
    }

    /// Position, hash and project `events` on session `stream_id`. Nothing is written until
    /// commit.
    pub async fn append(
        &mut self,
        stream_id: Uuid,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: &Metadata,
    ) -> Result<Vec<AppendedEvent>, LogError> {
        self.append_positioned(stream_id, expected, stamped(events, metadata))
            .await
    }

    /// Append one event brought over from another system, on a session or (when `stream_id`
    /// is the tenant) the account stream, with its original time and its own metadata (its
    /// provenance). Folded and hashed like any other.
    pub async fn append_imported(
        &mut self,
        stream_id: Uuid,
        new: NewEvent,
        recorded_at: OffsetDateTime,
        metadata: &Metadata,
    ) -> Result<AppendedEvent, LogError> {
        let metadata = serde_json::to_string(metadata).expect("metadata serializes");
        let micros = recorded_at.replace_nanosecond(recorded_at.microsecond() * 1000);
        let recorded_at = micros.unwrap_or(recorded_at);
        let events = vec![(new, recorded_at, metadata)];
        let appended = if stream_id == self.tenant_id {
            self.append_account_positioned(ExpectedVersion::Any, events)
                .await?
        } else {
            self.append_positioned(stream_id, ExpectedVersion::Any, events)
                .await?
        };
        Ok(appended.into_iter().next().expect("one event appended"))
    }

    async fn append_positioned(
        &mut self,
        stream_id: Uuid,
        expected: ExpectedVersion,
        events: Vec<(NewEvent, OffsetDateTime, String)>,
    ) -> Result<Vec<AppendedEvent>, LogError> {
        let current = self.session(stream_id).await?.map(|s| s.session.version);
        self.expect(stream_id, expected, current)?;
        let mut state = self.sessions.remove(&stream_id).flatten();
        let (mut returned, mut received, mut questions) = (Vec::new(), Vec::new(), Vec::new());
        let appended = self
            .position(stream_id, current, events, |recorded| {
                match &recorded.event {
                    Event::MessagesReturned(r) => {
                        returned.extend(r.messages.iter().map(|m| m.message_id));
                    }
                    Event::MessagesReceived(r) => {
                        let inbox = state.as_ref().map_or(&[][..], |s| &s.inbox[..]);
                        received.extend(
                            inbox
                                .iter()
                                .filter(|m| r.message_ids.contains(&m.message_id))
                                .map(|m| InboxRow {
                                    session_id: stream_id,
                                    stream_version: m.stream_version,
                                }),
                        );
                    }
                    _ => {}
                }
                state = Some(projections::session::apply(
                    state.take(),
                    recorded,
                    &mut questions,
                )?);
                Ok(())
            })
            .await;
        self.sessions.insert(stream_id, state);
        self.returned.extend(returned);
        self.received.extend(received);
        self.questions.extend(questions);
        appended
    }

    /// Position, hash and project `events` on the tenant's account stream.
    pub async fn append_account(
        &mut self,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: &Metadata,
    ) -> Result<Vec<AppendedEvent>, LogError> {
        self.append_account_positioned(expected, stamped(events, metadata))
            .await
    }

    async fn append_account_positioned(
        &mut self,
        expected: ExpectedVersion,
        events: Vec<(NewEvent, OffsetDateTime, String)>,
    ) -> Result<Vec<AppendedEvent>, LogError> {
        let current = self.account().await?.map(|a| a.version);
        let tenant_id = self.tenant_id;
        self.expect(tenant_id, expected, current)?;
        let mut account = self.account.take().flatten();
        let appended = self
            .position(tenant_id, current, events, |recorded| {
                account = Some(projections::account::apply(account.take(), recorded)?);
                Ok(())
            })
            .await;
        self.account = Some(account);
        appended
    }

    /// Give `events` their places after the head and in the stream (at `version`), fold each
    /// with `project`, hash them into the chain, and keep their rows for commit.
    async fn position(
        &mut self,
        stream_id: Uuid,
        version: Option<i32>,
        events: Vec<(NewEvent, OffsetDateTime, String)>,
        mut project: impl FnMut(&RecordedEvent) -> Result<(), projections::ProjectionError>,
    ) -> Result<Vec<AppendedEvent>, LogError> {
        let (mut head_seq, mut head_hash) = self.head().await?;
        let mut appended = Vec::with_capacity(events.len());
        for (stream_version, (new, recorded_at, metadata)) in
            (version.unwrap_or(0) + 1..).zip(events)
        {
            let seq = head_seq + 1;
            let recorded = RecordedEvent {
                tenant_id: self.tenant_id,
                seq,
                stream_id,
                stream_version,
                event_id: new.event_id,
                recorded_at,
                event: new.event,
            };
            project(&recorded)
                .map_err(|e| LogError::Corrupt(format!("appending to stream {stream_id}: {e}")))?;
            let data = recorded.event.data_json();
            let event_type = recorded.event.event_type();
            let hash = Link {
                tenant_id: self.tenant_id,
                seq,
                stream_id,
                stream_version,
                event_id: recorded.event_id,
                recorded_at,
                event_type,
                data: &data,
                metadata: &metadata,
            }
            .hash(&head_hash);
            self.rows.push(EventRow {
                seq,
                stream_id,
                stream_version,
                event_id: recorded.event_id,
                event_type,
                data,
                metadata,
                recorded_at,
                prev_hash: head_hash,
                hash,
            });
            appended.push(AppendedEvent {
                seq,
                stream_id,
                stream_version,
                event_id: recorded.event_id,
                event_type,
                recorded_at,
            });
            head_seq = seq;
            head_hash = hash;
        }
        self.head = Some((head_seq, head_hash));
        Ok(appended)
    }

    /// Write everything appended, and the idempotency record, as one statement (possibly
    /// shared with other tenants' appends, see `group_commit.rs`).
    ///
    /// [`LogError::Stale`]: another process appended first, or the projections were rebuilt
    /// since the decision's state was read; nothing was written, and this process's knowledge
    /// of the tenant is forgotten so that a retry reloads it.
    /// [`LogError::DuplicateEvent`]: an appended event id is already in the log.
    pub async fn commit(mut self) -> Result<Committed, LogError> {
        let events: Vec<AppendedEvent> = self
            .rows
            .iter()
            .map(|r| AppendedEvent {
                seq: r.seq,
                stream_id: r.stream_id,
                stream_version: r.stream_version,
                event_id: r.event_id,
                event_type: r.event_type,
                recorded_at: r.recorded_at,
            })
            .collect();
        let generation = match self.generation {
            Some(generation) => generation,
            None => {
                let mut conn = self.pool.acquire().await?;
                read::generation(&mut conn).await?
            }
        };
        let rows = self.changes(generation);
        let attempted = Attempted::of(&rows);
        if !rows.is_empty()
            && let Err(e) = self.group.write(self.tenant_id, rows).await
        {
            self.knowledge.forget();
            return Err(attempted.classify(&self.pool, self.tenant_id, e).await);
        }
        if let Some(head) = self.head {
            let sessions = std::mem::take(&mut self.sessions);
            let account = self.account.take();
            self.knowledge.learn(head, generation, sessions, account);
        }
        Ok(Committed {
            tenant_id: self.tenant_id,
            events,
        })
    }

    /// The rows and projection changes this unit of work writes.
    fn changes(&mut self, generation: i64) -> AppendRows {
        let mut append = AppendRows {
            events: std::mem::take(&mut self.rows),
            remembered: self.remembered.take(),
            generation,
            questions: last_of_each(std::mem::take(&mut self.questions)),
            ..AppendRows::default()
        };
        for (id, state) in &self.sessions {
            let Some(state) = state else { continue };
            let before = self.before.get(id);
            match before.and_then(|b| b.session.as_ref()) {
                Some(old) if *old == state.session => {}
                Some(old) => {
                    let diff_changed = old.git_diff != state.session.git_diff;
                    append
                        .changed_sessions
                        .push((state.session.clone(), diff_changed));
                }
                None => append.new_sessions.push(state.session.clone()),
            }
            let (first_before, last_before) =
                before.map_or((None, None), |b| (b.first_unread, b.last_unread));
            // Unread messages leave as a prefix: everything before the first one still unread.
            let first_now = state.inbox.first().map(|m| m.stream_version);
            if let Some(first_before) = first_before
                && first_now.is_none_or(|first| first > first_before)
            {
                append.read.push(InboxCut {
                    session_id: *id,
                    below: first_now.unwrap_or(i32::MAX),
                });
            }
            // ... or, when received out of order, one by one (those the cut missed).
            append.received.extend(self.received.iter().filter(|r| {
                r.session_id == *id && first_now.is_some_and(|first| r.stream_version > first)
            }));
            // ... and arrive at the end: everything after the last one before (and, rarely,
            // messages returned to where they were said).
            append.unread.extend(
                state
                    .inbox
                    .iter()
                    .filter(|m| {
                        last_before.is_none_or(|last| m.stream_version > last)
                            || self.returned.contains(&m.message_id)
                    })
                    .cloned(),
            );
        }
        if let Some(Some(account)) = &self.account
            && self.account_before.as_ref().and_then(Option::as_ref) != Some(account)
        {
            append.account = Some(account.clone());
        }
        append
    }
}

/// Each question's last row, in the order the questions were first touched: the statement
/// writes a row once.
fn last_of_each(rows: Vec<Question>) -> Vec<Question> {
    let mut out: Vec<Question> = Vec::with_capacity(rows.len());
    for row in rows {
        match out
            .iter_mut()
            .find(|q| q.id == row.id && q.session_id == row.session_id)
        {
            Some(known) => *known = row,
            None => out.push(row),
        }
    }
    out
}

/// What a failed append tried to write, enough to tell afterwards why it failed.
struct Attempted {
    first_seq: Option<i64>,
    /// Each stream written, with the first version written to it.
    streams: Vec<(Uuid, i32)>,
    event_ids: Vec<Uuid>,
    idempotency_key: Option<String>,
    generation: i64,
}

/// What is in the tenant's log now, read after an append failed (one tenant: one node).
const AFTER_FAILURE: &str = "\
SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = $1 AND event_id = ANY($2)),
       coalesce((SELECT max(seq) FROM events WHERE tenant_id = $1), 0),
       EXISTS (SELECT 1 FROM idempotency_keys WHERE tenant_id = $1 AND key = $3),
       (SELECT generation FROM projection_generation)";

/// The versions the streams of a failed append have now.
const STREAM_VERSIONS: &str = "\
SELECT stream_id, max(stream_version) FROM events
WHERE tenant_id = $1 AND stream_id = ANY($2) GROUP BY stream_id";

impl Attempted {
    fn of(rows: &AppendRows) -> Attempted {
        let mut streams: Vec<(Uuid, i32)> = Vec::new();
        for event in &rows.events {
            if !streams.iter().any(|(id, _)| *id == event.stream_id) {
                streams.push((event.stream_id, event.stream_version));
            }
        }
        Attempted {
            first_seq: rows.events.first().map(|e| e.seq),
            streams,
            event_ids: rows.events.iter().map(|e| e.event_id).collect(),
            idempotency_key: rows.remembered.as_ref().map(|r| r.key.clone()),
            generation: rows.generation,
        }
    }

    /// Why the append statement failed, as the log reports it. Told by reading what is there
    /// now, not by the error's SQLSTATE or constraint name: Citus reports a key a worker
    /// refused as an internal error without one. Any refusal by the database means the
    /// statement wrote nothing; if one of the keys it decided on (a sequence number, a
    /// stream's next version, the idempotency key) is now taken, or the projections were
    /// rebuilt, another writer came first and the decision was made on old state.
    async fn classify(self, pool: &PgPool, tenant_id: Uuid, e: Arc<sqlx::Error>) -> LogError {
        if e.as_database_error().is_none() {
            return LogError::Database(e);
        }
        match self.read_after_failure(pool, tenant_id).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) | Err(_) => LogError::Database(e),
        }
    }

    async fn read_after_failure(
        &self,
        pool: &PgPool,
        tenant_id: Uuid,
    ) -> Result<Option<LogError>, sqlx::Error> {
        let (duplicate, head, key_taken, generation): (bool, i64, bool, i64) =
            sqlx::query_as(AFTER_FAILURE)
                .bind(tenant_id)
                .bind(&self.event_ids)
                .bind(&self.idempotency_key)
                .fetch_one(pool)
                .await?;
        if duplicate {
            return Ok(Some(LogError::DuplicateEvent));
        }
        if self.first_seq.is_some_and(|first| head >= first)
            || key_taken
            || generation != self.generation
        {
            return Ok(Some(LogError::Stale));
        }
        let ids: Vec<Uuid> = self.streams.iter().map(|(id, _)| *id).collect();
        let versions: Vec<(Uuid, i32)> = sqlx::query_as(STREAM_VERSIONS)
            .bind(tenant_id)
            .bind(ids)
            .fetch_all(pool)
            .await?;
        let taken = versions.iter().any(|(id, now)| {
            self.streams
                .iter()
                .any(|(stream, first)| stream == id && now >= first)
        });
        Ok(taken.then_some(LogError::Stale))
    }
}
