//! An agent waits for the answer to one question it asked.
//!
//! The answer is what the user said after the question (up to the agent's next question).
//! Normally the agent's read cursor still points at the question, so the answer is the
//! session's unread messages: they are taken, and the cursor moves past them, exactly as a
//! long-poll on `messages/pending` would. When the cursor moved on (the agent logged more
//! steps, or an earlier wait took the answer but its caller went away before receiving it),
//! the answer is found in the session's history instead, so asking "was it answered?" again
//! never loses it.

use std::sync::Arc;
use std::time::Duration;

use projections::{Actor, Event, Message, MessagesRead, SenderType, SessionStatus};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    CommandError, Context, Decide, PendingStatus, pending, require_session, session_not_found,
    transact,
};
use crate::auth::AccessGuard;
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};
use crate::metrics;
use crate::push::Hub;

/// The user's reply to a question.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The reply's messages, oldest first (usually one).
    pub messages: Vec<Message>,
    /// Those this wait took from the inbox (all of them, or, for a reply found in the
    /// history, those still unread): if they never reach the agent, they are to be returned.
    pub taken: Vec<Uuid>,
}

/// Wait up to `wait` for the answer to `question_id`. `None`: not answered yet (or the server
/// is shutting down); ask again later. Dropping the future frees the waiter at once. Ends
/// with [`CommandError::Unauthorized`] as soon as the caller's credential does (`access`).
#[allow(clippy::too_many_arguments)]
pub async fn wait_for_answer(
    log: &EventLog,
    hub: &Arc<Hub>,
    ctx: &Context,
    session_id: Uuid,
    question_id: Uuid,
    wait: Duration,
    shutdown: &CancellationToken,
    access: &mut AccessGuard,
) -> Result<Option<Answer>, CommandError> {
    ctx.require_write()?;
    let deadline = tokio::time::Instant::now() + wait;
    // Register before reading: an answer committed in between still wakes this waiter.
    let mut news = hub.watch_session(ctx.tenant_id, session_id);
    let mut woken = false;
    loop {
        if woken {
            // The credential may have ended while this call was parked.
            access.check().await?;
        }
        let parked = std::mem::replace(&mut woken, true);
        match Box::pin(find_answer(log, ctx, session_id, question_id)).await {
            Ok(Found::Answer(answer)) => {
                if parked && let Some(reply) = answer.messages.first() {
                    metrics::reply_woke(reply.created_at);
                }
                return Ok(Some(answer));
            }
            Ok(Found::NotYet { seen_seq }) => news.observe(seen_seq),
            // The database is away: keep waiting, and read again after a pause.
            Err(CommandError::Unavailable(_)) if tokio::time::Instant::now() < deadline => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
                    _ = shutdown.cancelled() => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = news.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(None),
            _ = shutdown.cancelled() => return Ok(None),
            ended = access.ended() => return Err(ended.into()),
        }
    }
}

enum Found {
    Answer(Answer),
    /// No answer in anything up to this tenant sequence number.
    NotYet {
        seen_seq: i64,
    },
}

async fn find_answer(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    question_id: Uuid,
) -> Result<Found, CommandError> {
    let state = log
        .session(ctx.tenant_id, session_id)
        .await?
        .ok_or_else(|| session_not_found(session_id))?;
    let ended = state.session.status == SessionStatus::Completed;
    if state.session.read_cursor == Some(question_id) {
        if state.inbox.is_empty() {
            if ended {
                return Err(ended_unanswered(session_id, question_id));
            }
            return Ok(Found::NotYet {
                seen_seq: state.session.last_seq,
            });
        }
        let taken = pending(log, ctx, session_id, Some(question_id)).await?;
        if taken.status == PendingStatus::Ok && !taken.messages.is_empty() {
            return Ok(Found::Answer(Answer {
                taken: taken.messages.iter().map(|m| m.id).collect(),
                messages: taken.messages,
            }));
        }
        // Another reader took them first: they are in the history now.
    }
    let events = log
        .stream_from(ctx.tenant_id, session_id, question_id)
        .await?;
    let seen_seq = events.last().map_or(state.session.last_seq, |e| e.seq);
    let messages = projections::messages(&events);
    let Some(reply) = reply_to(&messages, question_id) else {
        return Err(question_not_found(session_id, question_id));
    };
    if !reply.is_empty() {
        // Handed over now: whatever of it is still unread is read, so that it is not handed
        // over a second time (as the next log_step's user feedback, say).
        let unread = reply
            .iter()
            .rev()
            .find(|m| state.inbox.iter().any(|u| u.message_id == m.id));
        if let Some(last) = unread {
            let mark = MarkRead {
                session_id,
                through: last.id,
            };
            transact(log, ctx, &mark).await?;
        }
        let taken = reply
            .iter()
            .map(|m| m.id)
            .filter(|id| state.inbox.iter().any(|u| u.message_id == *id))
            .collect();
        return Ok(Found::Answer(Answer {
            messages: reply,
            taken,
        }));
    }
    if ended {
        return Err(ended_unanswered(session_id, question_id));
    }
    Ok(Found::NotYet { seen_seq })
}

/// The question `question_id` an agent asked in `session_id` (to read what it offered).
pub async fn question(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    question_id: Uuid,
) -> Result<Message, CommandError> {
    match log.event(ctx.tenant_id, question_id).await? {
        Some(recorded) if recorded.stream_id == session_id => match &recorded.event {
            Event::AgentMessage(m) => Ok(Message::from_agent(&recorded, m)),
            _ => Err(question_not_found(session_id, question_id)),
        },
        _ => Err(question_not_found(session_id, question_id)),
    }
}

fn question_not_found(session_id: Uuid, question_id: Uuid) -> CommandError {
    CommandError::NotFound(format!(
        "question {question_id} not found in session {session_id}"
    ))
}

/// The agent received the session's unread messages up to `through` (if it still has them).
#[derive(Serialize)]
struct MarkRead {
    session_id: Uuid,
    through: Uuid,
}

impl Decide for MarkRead {
    type Output = ();
    const NAME: &'static str = "mark_read";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<(), CommandError> {
        let state = require_session(txn.session(self.session_id).await?, self.session_id, false)?;
        if !state.inbox.iter().any(|m| m.message_id == self.through) {
            return Ok(());
        }
        let version = ExpectedVersion::Exact(state.session.version);
        let read = NewEvent {
            event_id: ctx.event_id(0),
            event: Event::MessagesRead(MessagesRead {
                last_read_message_id: self.through,
            }),
        };
        txn.append(
            self.session_id,
            version,
            vec![read],
            &ctx.metadata(Actor::Agent),
        )
        .await?;
        Ok(())
    }
}

fn ended_unanswered(session_id: Uuid, question_id: Uuid) -> CommandError {
    CommandError::Conflict(format!(
        "session {session_id} ended before question {question_id} was answered"
    ))
}

/// A message as the reply rule sees it (the REST bridge applies it to what REST returns).
pub trait Said: Clone {
    fn id(&self) -> Uuid;
    fn sender(&self) -> SenderType;
    fn requires_user_input(&self) -> bool;
}

impl Said for Message {
    fn id(&self) -> Uuid {
        self.id
    }
    fn sender(&self) -> SenderType {
        self.sender_type
    }
    fn requires_user_input(&self) -> bool {
        self.requires_user_input
    }
}

/// The reply to `question` in a conversation (oldest first): what the user said after it, up
/// to the agent's next question. `None` when the question is not an agent message here.
pub fn reply_to<M: Said>(messages: &[M], question: Uuid) -> Option<Vec<M>> {
    let asked = messages
        .iter()
        .position(|m| m.id() == question && m.sender() == SenderType::Agent)?;
    Some(
        messages[asked + 1..]
            .iter()
            .take_while(|m| !(m.sender() == SenderType::Agent && m.requires_user_input()))
            .filter(|m| m.sender() == SenderType::User)
            .cloned()
            .collect(),
    )
}
