//! Appending: decide on what this process knows, then write in one statement.
//!
//! A command runs inside a [`TenantTxn`]: it holds this process's lock on the tenant (so the
//! process's own appends never race), reads session state from the tenant's cached knowledge
//! or the database, decides its events, and [`TenantTxn::commit`] writes events, `sessions` and
//! `inbox` rows (and an idempotency record) as one autocommit statement.
//!
//! Nothing is locked in the database. The statement inserts `seq = head + 1` and
//! `stream_version = version + 1`; if another process appended in between, one of those keys
//! exists and the statement fails as a unique violation: [`LogError::Stale`]. The caller forgets
//! what it knew, reloads and decides again. A successful write therefore proves that the head
//! and session state the decision used were current, so each tenant's sequence and hash chain
//! are gap-free and in commit order, and projections are updated from exactly the state before.

use std::collections::HashMap;

use std::collections::HashSet;
use std::sync::Arc;

use projections::{Event, Metadata, RecordedEvent, SessionState};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::cache::TenantKnowledge;
use super::chain::{self, GENESIS, Hash, Link};
use super::group_commit::GroupCommit;
use super::write::{AppendRows, EventRow};
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

/// One command's unit of work on a tenant's log. Dropping it without
/// [`TenantTxn::commit`] writes nothing.
pub struct TenantTxn {
    pool: PgPool,
    tenant_id: Uuid,
    knowledge: OwnedMutexGuard<TenantKnowledge>,
    /// The head the appended events continue from.
    head: Option<(i64, Hash)>,
    /// Session states read or produced here; `None` = no such session.
    sessions: HashMap<Uuid, Option<SessionState>>,
    /// Sessions as they were before this unit of work, to write only what changed.
    loaded: HashMap<Uuid, Option<SessionState>>,
    /// Sessions whose state came from cached knowledge rather than the database.
    from_cache: HashSet<Uuid>,
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
            knowledge,
            sessions: HashMap::new(),
            loaded: HashMap::new(),
            from_cache: HashSet::new(),
            rows: Vec::new(),
            remembered: None,
            group,
        }
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// The session's projected state, including anything appended in this transaction.
    pub async fn session(&mut self, session_id: Uuid) -> Result<Option<&SessionState>, LogError> {
        if !self.sessions.contains_key(&session_id) {
            let state = match self.knowledge.sessions.get(&session_id) {
                Some(known) => {
                    self.from_cache.insert(session_id);
                    known.clone()
                }
                None => {
                    let mut conn = self.pool.acquire().await?;
                    read::session_state(&mut conn, self.tenant_id, session_id).await?
                }
            };
            self.loaded.insert(session_id, state.clone());
            self.sessions.insert(session_id, state);
        }
        Ok(self.sessions[&session_id].as_ref())
    }

    /// The stored event with this id, if the tenant has one.
    pub async fn event(&mut self, event_id: Uuid) -> Result<Option<RecordedEvent>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::event_by_id(&mut conn, self.tenant_id, event_id).await
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

    /// The events of one stream, in order.
    pub async fn stream(&mut self, stream_id: Uuid) -> Result<Vec<RecordedEvent>, LogError> {
        let mut conn = self.pool.acquire().await?;
        read::stream(&mut conn, self.tenant_id, stream_id).await
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

    /// Position, hash and project `events` on `stream_id`. Nothing is written until commit.
    pub async fn append(
        &mut self,
        stream_id: Uuid,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: &Metadata,
    ) -> Result<Vec<AppendedEvent>, LogError> {
        let current = self.session(stream_id).await?.map(|s| s.session.version);
        match (expected, current) {
            (ExpectedVersion::Any, _) | (ExpectedVersion::NoStream, None) => {}
            (ExpectedVersion::Exact(v), Some(actual)) if v == actual => {}
            // What this process remembered may be behind: look again before refusing.
            _ if self.from_cache.contains(&stream_id) => {
                self.knowledge.forget();
                return Err(LogError::Stale);
            }
            (expected, actual) => {
                return Err(LogError::VersionConflict {
                    stream_id,
                    expected,
                    actual: actual.unwrap_or(0),
                });
            }
        }
        let (mut head_seq, mut head_hash) = self.head().await?;
        let metadata = serde_json::to_string(metadata).expect("metadata serializes");
        let recorded_at = chain::now_micros();
        let mut state = self.sessions.remove(&stream_id).flatten();
        let mut appended = Vec::with_capacity(events.len());
        for new in events {
            let seq = head_seq + 1;
            let stream_version = state.as_ref().map_or(0, |s| s.session.version) + 1;
            let recorded = RecordedEvent {
                tenant_id: self.tenant_id,
                seq,
                stream_id,
                stream_version,
                event_id: new.event_id,
                recorded_at,
                event: new.event,
            };
            state = Some(projections::apply(state, &recorded).map_err(|e| {
                LogError::Corrupt(format!("appending to session {stream_id}: {e}"))
            })?);
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
                metadata: metadata.clone(),
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
        self.sessions.insert(stream_id, state);
        Ok(appended)
    }

    /// Write everything appended, and the idempotency record, as one statement (possibly
    /// shared with other tenants' appends, see `group_commit.rs`).
    ///
    /// [`LogError::Stale`]: another process appended first; nothing was written, and this
    /// process's knowledge of the tenant is forgotten so that a retry reloads it.
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
        let rows = append_rows(
            std::mem::take(&mut self.rows),
            &self.loaded,
            &self.sessions,
            self.remembered.take(),
        );
        if !rows.is_empty()
            && let Err(e) = self.group.write(self.tenant_id, rows).await
        {
            self.knowledge.forget();
            return Err(match violated_constraint(&e).as_deref() {
                Some("events_tenant_event_id_key") => LogError::DuplicateEvent,
                // Any other key taken (seq, stream version, session, inbox row, idempotency
                // key): another process wrote first and the decision was made on old state.
                Some(_) => LogError::Stale,
                None => LogError::Database(e),
            });
        }
        if let Some(head) = self.head {
            let sessions = std::mem::take(&mut self.sessions);
            self.knowledge.learn(head, sessions);
        }
        Ok(Committed {
            tenant_id: self.tenant_id,
            events,
        })
    }
}

/// The unique constraint a statement violated, if that is why it failed.
fn violated_constraint(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    db.is_unique_violation()
        .then(|| db.constraint().unwrap_or_default().to_owned())
}

/// The rows and session changes one append writes.
fn append_rows(
    events: Vec<EventRow>,
    loaded: &HashMap<Uuid, Option<SessionState>>,
    current: &HashMap<Uuid, Option<SessionState>>,
    remembered: Option<Remembered>,
) -> AppendRows {
    let mut append = AppendRows {
        events,
        remembered,
        ..AppendRows::default()
    };
    for (id, state) in current {
        let Some(state) = state else { continue };
        let before = loaded.get(id).and_then(Option::as_ref);
        match before {
            Some(before) if before == state => continue,
            Some(before) => {
                let diff_changed = before.session.git_diff != state.session.git_diff;
                append
                    .changed_sessions
                    .push((state.session.clone(), diff_changed));
            }
            None => append.new_sessions.push(state.session.clone()),
        }
        let old_inbox = before.map_or(&[][..], |b| &b.inbox[..]);
        for gone in old_inbox.iter().filter(|m| !state.inbox.contains(m)) {
            append.read.push((*id, gone.stream_version));
        }
        for new in state.inbox.iter().filter(|m| !old_inbox.contains(m)) {
            append.unread.push(new.clone());
        }
    }
    append
}
