//! An agent waits for the answer to one question it asked.
//!
//! The answer is the person's message that names the question (or, for a message that named
//! none, the one the fold took to answer it: `questions.answer_id`), and nothing else: with
//! several questions open in a session, each waiter receives the answer to its own. An answer
//! still unread is taken (`messages_received`: it leaves the inbox, and the read cursor stays
//! where it is, so other messages wait for whoever reads them); one already read is found in
//! the log, so asking "was it answered?" again never loses it. A question withdrawn or expired
//! ends the wait with a refusal that says how it closed.
//!
//! Who waits is presence the interfaces record (`waits`), once per request or tool call: a
//! call's wait is its whole block limit, which it may spend in several slices here.

use std::sync::Arc;
use std::time::Duration;

use projections::{
    Actor, Event, Message, MessagesReceived, Question, QuestionStatus, SessionState,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::questions::{not_open, question_not_found};
use super::{CommandError, Context, Decide, require_session, session_not_found, transact};
use crate::auth::AccessGuard;
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};
use crate::metrics;
use crate::push::Hub;

/// The person's answer to a question.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The answer's messages, oldest first (one).
    pub messages: Vec<Message>,
    /// Those this wait took from the inbox (rather than finding them read in the log): if
    /// they never reach the agent, they are to be returned.
    pub taken: Vec<Uuid>,
}

/// Wait up to `wait` for the answer to `question_id`. `None`: not answered yet (or `stop` was
/// cancelled); ask again later. Dropping the future frees the waiter at once. Ends with
/// [`CommandError::Unauthorized`] as soon as the caller's credential does (`access`), and with
/// [`CommandError::Conflict`] when the question closed without an answer.
#[allow(clippy::too_many_arguments)]
pub async fn wait_for_answer(
    log: &EventLog,
    hub: &Arc<Hub>,
    ctx: &Context,
    session_id: Uuid,
    question_id: Uuid,
    wait: Duration,
    stop: &CancellationToken,
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
                    _ = stop.cancelled() => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = news.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(None),
            _ = stop.cancelled() => return Ok(None),
            ended = access.ended() => return Err(ended.into()),
        }
    }
}

enum Found {
    Answer(Answer),
    /// Not answered in anything up to this tenant sequence number.
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
    if state.open_question(question_id).is_some() {
        return Ok(Found::NotYet {
            seen_seq: state.session.last_seq,
        });
    }
    let question = log
        .question(ctx.tenant_id, session_id, question_id)
        .await?
        .ok_or_else(|| question_not_found(session_id, question_id))?;
    match question.status {
        // Asked after the state above was read.
        QuestionStatus::Open => Ok(Found::NotYet {
            seen_seq: state.session.last_seq,
        }),
        QuestionStatus::Answered => answer_of(log, ctx, &state, &question)
            .await
            .map(Found::Answer),
        QuestionStatus::Withdrawn | QuestionStatus::Expired => Err(not_open(&question)),
    }
}

/// The answer of an answered question, taken from the inbox if it is still unread there.
async fn answer_of(
    log: &EventLog,
    ctx: &Context,
    state: &SessionState,
    question: &Question,
) -> Result<Answer, CommandError> {
    let answer_id = question.answer_id.ok_or_else(|| {
        CommandError::Internal(format!("answered question {} has no answer", question.id))
    })?;
    let answer = match log.event(ctx.tenant_id, answer_id).await? {
        Some(recorded) => match recorded.event {
            Event::UserMessage(m) => {
                Message::from_user(recorded.event_id, recorded.seq, recorded.recorded_at, m)
            }
            _ => {
                return Err(CommandError::Internal(format!(
                    "the answer {answer_id} of question {} is not a person's message",
                    question.id
                )));
            }
        },
        None => {
            return Err(CommandError::Internal(format!(
                "the answer {answer_id} of question {} is not in the log",
                question.id
            )));
        }
    };
    let unread = state.inbox.iter().any(|m| m.message_id == answer_id);
    let taken = if unread {
        let receive = Receive {
            session_id: state.session.id,
            message_id: answer_id,
        };
        // Not the request's own change: never replay or record it under its Idempotency-Key.
        let ctx = Context {
            idempotency_key: None,
            ..ctx.clone()
        };
        transact(log, &ctx, &receive).await?
    } else {
        false
    };
    Ok(Answer {
        messages: vec![answer],
        taken: if taken { vec![answer_id] } else { Vec::new() },
    })
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

/// The agent received the unread message `message_id` (the answer it waited for); true when
/// this took it (it was still unread).
#[derive(Serialize)]
struct Receive {
    session_id: Uuid,
    message_id: Uuid,
}

impl Decide for Receive {
    type Output = bool;
    const NAME: &'static str = "receive_answer";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<bool, CommandError> {
        let state = require_session(txn.session(self.session_id).await?, self.session_id, false)?;
        if !state.inbox.iter().any(|m| m.message_id == self.message_id) {
            return Ok(false);
        }
        let version = ExpectedVersion::Exact(state.session.version);
        let received = NewEvent {
            event_id: ctx.event_id(0),
            event: Event::MessagesReceived(MessagesReceived {
                message_ids: vec![self.message_id],
            }),
        };
        txn.append(
            self.session_id,
            version,
            vec![received],
            &ctx.metadata(Actor::Agent),
        )
        .await?;
        Ok(true)
    }
}
