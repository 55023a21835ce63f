//! An agent collects the user messages it has not received.
//!
//! Without `last_read_message_id` this only looks. With it, the caller claims to have read
//! up to that message: the unread messages are returned and the cursor moves to the last of
//! them, so each message is delivered once.
//!
//! When the cursor is elsewhere, either another reader consumed the queue (`stale`), or this
//! is a retry of a read whose response was lost (the node died between committing the read
//! and answering). The two cannot be told apart when the only thing that moved the cursor
//! since `last_read_message_id` is one read of user messages: then the same messages are
//! returned again, so that a lost response never loses a reply (a reader that raced another
//! one may then see a message twice; losing a person's answer is the worse failure). Anything
//! else since — the agent spoke, a reply was marked read by other means — is `stale`.

use std::sync::Arc;
use std::time::Duration;

use projections::{Actor, Event, MessagesRead, RecordedEvent};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, session_not_found, transact};
use crate::auth::AccessGuard;
use crate::eventlog::{EventLog, ExpectedVersion, MessageRef, NewEvent, TenantTxn, messages};
use crate::metrics;
use crate::push::Hub;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingStatus {
    Ok,
    Stale,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub session_id: Uuid,
    /// Read from the log by whoever answers (see [`messages`]).
    pub messages: Vec<MessageRef>,
    pub status: PendingStatus,
}

impl Pending {
    fn stale(session_id: Uuid) -> Pending {
        Pending {
            session_id,
            messages: Vec::new(),
            status: PendingStatus::Stale,
        }
    }
}

pub async fn pending(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    last_read: Option<Uuid>,
) -> Result<Pending, CommandError> {
    look(log, ctx, session_id, last_read, false)
        .await
        .map(|l| l.pending)
}

/// What [`pending`] found, and the session's newest event at the time it looked.
struct Look {
    pending: Pending,
    seen_seq: i64,
}

/// `woken`: news arrived for a reader by cursor, so there is most likely something to take:
/// the take's own read of the session (under the tenant lock, often from what this process
/// remembers) is the only one, rather than a look first.
async fn look(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    last_read: Option<Uuid>,
    woken: bool,
) -> Result<Look, CommandError> {
    if last_read.is_some() {
        ctx.require_write()?;
    }
    if let (true, Some(last_read)) = (woken, last_read) {
        let pending = Box::pin(take_unread(log, ctx, session_id, last_read)).await?;
        return Ok(Look {
            pending,
            seen_seq: 0,
        });
    }
    // Look without locking first: most calls (and every long-poll round) find nothing to take.
    let state = log
        .session(ctx.tenant_id, session_id)
        .await?
        .ok_or_else(|| session_not_found(session_id))?;
    let seen_seq = state.session.last_seq;
    let answer = |pending| Ok(Look { pending, seen_seq });
    let Some(last_read) = last_read else {
        return answer(Pending {
            session_id,
            messages: messages::refs(&state.inbox),
            status: super::PendingStatus::Ok,
        });
    };
    if state.session.read_cursor == Some(last_read) && state.inbox.is_empty() {
        return answer(Pending {
            session_id,
            messages: Vec::new(),
            status: PendingStatus::Ok,
        });
    }
    // Something to take, or the cursor is elsewhere (stale, or a retry to answer again).
    // Boxed: the write path is large and rare; a look that finds nothing stays small.
    let pending = Box::pin(take_unread(log, ctx, session_id, last_read)).await?;
    Ok(Look {
        pending,
        seen_seq: 0,
    })
}

/// Consume the unread messages under the tenant lock, re-checking the cursor there.
async fn take_unread(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    last_read: Uuid,
) -> Result<Pending, CommandError> {
    transact(
        log,
        ctx,
        &TakeUnread {
            session_id,
            last_read,
        },
    )
    .await
}

#[derive(Serialize)]
struct TakeUnread {
    session_id: Uuid,
    last_read: Uuid,
}

impl Decide for TakeUnread {
    type Output = Pending;
    const NAME: &'static str = "pending";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<Pending, CommandError> {
        let (session_id, last_read) = (self.session_id, self.last_read);
        let state = require_session(txn.session(session_id).await?, session_id, false)?;
        let cursor = state.session.read_cursor;
        let unread = state.inbox.clone();
        let version = ExpectedVersion::Exact(state.session.version);
        let mut messages = Vec::new();
        if cursor != Some(last_read) {
            let since = txn.conversation_after(session_id, last_read).await?;
            match received_before(&since, cursor) {
                Some(again) => messages = again,
                None => return Ok(Pending::stale(session_id)),
            }
        }
        let unread = messages::refs(&unread);
        let Some(last) = unread.last() else {
            return Ok(Pending {
                session_id,
                messages,
                status: PendingStatus::Ok,
            });
        };
        let read = Event::MessagesRead(MessagesRead {
            last_read_message_id: last.id,
        });
        txn.append(
            session_id,
            version,
            vec![NewEvent {
                event_id: ctx.event_id(0),
                event: read,
            }],
            &ctx.metadata(Actor::Agent),
        )
        .await?;
        messages.extend(unread);
        Ok(Pending {
            session_id,
            messages,
            status: PendingStatus::Ok,
        })
    }
}

/// The user messages a reader at `last_read` already received, when `since` (the
/// conversation after `last_read`, oldest first; `None`: too long to look through) shows that
/// the only thing that moved the cursor from there to `cursor` was reading them.
fn received_before(
    since: &Option<Vec<RecordedEvent>>,
    cursor: Option<Uuid>,
) -> Option<Vec<MessageRef>> {
    let mut said = Vec::new();
    let mut read_to = None;
    for recorded in since.as_ref()? {
        match &recorded.event {
            Event::UserMessage(m) if !m.mark_as_read => said.push(MessageRef {
                id: recorded.event_id,
                seq: recorded.seq,
                created_at: recorded.recorded_at,
            }),
            // A hook event that left the messages where they were moved nothing.
            Event::AgentMessage(m) if m.leaves_unread => {}
            // The agent spoke, or a reply was delivered by other means: truly behind.
            Event::UserMessage(_) | Event::AgentMessage(_) => return None,
            Event::MessagesRead(read) => read_to = Some(read.last_read_message_id),
            // An answer its question's waiter received is not this reader's to have again.
            Event::MessagesReceived(received) => {
                said.retain(|m| !received.message_ids.contains(&m.id));
            }
            _ => {}
        }
    }
    let read_to = read_to.filter(|id| Some(*id) == cursor)?;
    let through = said.iter().position(|m| m.id == read_to)?;
    said.truncate(through + 1);
    Some(said)
}

/// Like [`pending`], but when there is nothing to return yet, wait up to `wait` for a message
/// (returning it at once) before answering `ok` with nothing. Returns early, with what it has,
/// when `shutdown` is cancelled, and with [`CommandError::Unauthorized`] as soon as the
/// caller's credential ends (`access`): nothing is handed over after a revocation.
#[allow(clippy::too_many_arguments)]
pub async fn wait_for_pending(
    log: &EventLog,
    hub: &Arc<Hub>,
    ctx: &Context,
    session_id: Uuid,
    last_read: Option<Uuid>,
    wait: Duration,
    shutdown: &CancellationToken,
    access: &mut AccessGuard,
) -> Result<Pending, CommandError> {
    let deadline = tokio::time::Instant::now() + wait;
    // Register before reading: a message committed in between still wakes this waiter.
    let mut news = hub.watch_session(ctx.tenant_id, session_id);
    let mut found: Option<Look> = None;
    loop {
        if found.is_some() {
            // Woken: the credential may have ended while this request was parked.
            access.check().await?;
        }
        let read = Box::pin(look(log, ctx, session_id, last_read, found.is_some())).await;
        let timed_out = tokio::time::Instant::now() >= deadline;
        match read {
            Ok(look) => {
                let done = !look.pending.messages.is_empty()
                    || look.pending.status == PendingStatus::Stale
                    || timed_out;
                if done {
                    if found.is_some()
                        && let Some(reply) = look.pending.messages.first()
                    {
                        metrics::reply_woke(reply.created_at);
                    }
                    return Ok(look.pending);
                }
                // News up to what was just read is no news.
                news.observe(look.seen_seq);
                found = Some(look);
                tokio::select! {
                    _ = news.changed() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = shutdown.cancelled() => break,
                    ended = access.ended() => return Err(ended.into()),
                }
            }
            // The database is away: the agent keeps waiting, reading again after a pause,
            // rather than failing a question that may yet be answered before its deadline.
            Err(CommandError::Unavailable(_)) if !timed_out => tokio::select! {
                _ = tokio::time::sleep(UNAVAILABLE_PAUSE) => {}
                _ = shutdown.cancelled() => break,
            },
            // Out of time while the database is away: what was read before still stands.
            Err(CommandError::Unavailable(_)) if found.is_some() => break,
            Err(e) => return Err(e),
        }
    }
    // Shutting down, or out of time: answer with what is known.
    match found {
        Some(look) => Ok(look.pending),
        None => Err(CommandError::Unavailable(
            "the server is shutting down; retry shortly".into(),
        )),
    }
}

/// How long a waiter pauses before reading again when the database was unavailable.
const UNAVAILABLE_PAUSE: Duration = Duration::from_millis(250);

/// The agent receives every message the person queued for it, now (a coding agent's hook
/// hands them to its host): they are returned, oldest first, and read.
pub async fn receive_all(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
) -> Result<Vec<MessageRef>, CommandError> {
    transact(log, ctx, &ReceiveAll { session_id }).await
}

#[derive(Serialize)]
struct ReceiveAll {
    session_id: Uuid,
}

impl Decide for ReceiveAll {
    type Output = Vec<MessageRef>;
    const NAME: &'static str = "receive_all";

    async fn decide(
        &self,
        ctx: &Context,
        txn: &mut TenantTxn,
    ) -> Result<Vec<MessageRef>, CommandError> {
        let state = require_session(txn.session(self.session_id).await?, self.session_id, false)?;
        let version = ExpectedVersion::Exact(state.session.version);
        let unread = state.inbox.clone();
        let messages = messages::refs(&unread);
        let Some(last) = messages.last() else {
            return Ok(messages);
        };
        let read = Event::MessagesRead(MessagesRead {
            last_read_message_id: last.id,
        });
        txn.append(
            self.session_id,
            version,
            vec![NewEvent {
                event_id: ctx.event_id(0),
                event: read,
            }],
            &ctx.metadata(Actor::Agent),
        )
        .await?;
        Ok(messages)
    }
}
