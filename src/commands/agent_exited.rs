//! A coding agent's process exited (Claude Code's `SessionEnd`): nobody waits for its questions
//! any more, so they are withdrawn, but the session goes on: what the person sends now waits
//! for the agent's next run (`claude --resume`), which receives it. Saying so twice changes
//! nothing the second time.
//!
//! An instruction the person gave when the agent finished ("what next?") that the agent never
//! acted on before it exited goes back to its queue, so its next run receives it: the agent's
//! host may drop a continuation (Claude Code ends a run after eight Stop-hook continuations in
//! a row without a tool call). It was not acted on when the read cursor still stands on the
//! question or its answer: anything the agent says afterwards that can carry messages moves the
//! cursor past them.

use projections::{
    Actor, AgentExited, Answers, Event, MessagesReturned, QuestionKind, ReturnedMessage,
};
use serde::Serialize;
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, transact};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};

/// Record that the session's agent exited, for `reason`; whether that was news.
pub async fn agent_exited(
    log: &EventLog,
    ctx: &Context,
    session_id: Uuid,
    reason: String,
) -> Result<bool, CommandError> {
    transact(log, ctx, &Exited { session_id, reason }).await
}

#[derive(Serialize)]
struct Exited {
    session_id: Uuid,
    reason: String,
}

impl Decide for Exited {
    type Output = bool;
    const NAME: &'static str = "agent_exited";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<bool, CommandError> {
        let state = require_session(txn.session(self.session_id).await?, self.session_id, true)?;
        if state.session.exited_at.is_some() {
            return Ok(false);
        }
        let version = state.session.version;
        let unread: Vec<Uuid> = state.inbox.iter().map(|m| m.message_id).collect();
        let mut events = Vec::new();
        if let Some(cursor) = state.session.read_cursor
            && let Some(returned) =
                unacted_instruction(txn, self.session_id, cursor, &unread).await?
        {
            events.push(NewEvent {
                event_id: ctx.event_id(1),
                event: Event::MessagesReturned(returned),
            });
        }
        events.push(NewEvent {
            event_id: ctx.event_id(0),
            event: Event::AgentExited(AgentExited {
                reason: self.reason.clone(),
            }),
        });
        txn.append(
            self.session_id,
            ExpectedVersion::Exact(version),
            events,
            &ctx.metadata(Actor::Agent),
        )
        .await?;
        Ok(true)
    }
}

/// The person's answer to the "what next?" the read cursor stands on (the question, or its
/// answer), once taken, returned to the queue.
async fn unacted_instruction(
    txn: &mut TenantTxn,
    session_id: Uuid,
    cursor: Uuid,
    unread: &[Uuid],
) -> Result<Option<MessagesReturned>, CommandError> {
    let Some(at) = txn.event(cursor).await? else {
        return Ok(None);
    };
    let question_id = match &at.event {
        Event::AgentMessage(m) if m.next_instruction => at.event_id,
        Event::UserMessage(m) => match m.answers {
            Answers::Question(id) => id,
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let Some(question) = txn.question(session_id, question_id).await? else {
        return Ok(None);
    };
    let Some(answer_id) = question.answer_id.filter(|id| !unread.contains(id)) else {
        return Ok(None);
    };
    if question.kind != QuestionKind::NextInstruction {
        return Ok(None);
    }
    let Some(said) = txn.event(answer_id).await? else {
        return Ok(None);
    };
    Ok(Some(MessagesReturned {
        messages: vec![ReturnedMessage {
            message_id: said.event_id,
            stream_version: said.stream_version,
            seq: said.seq,
            created_at: said.recorded_at,
        }],
        read_cursor: Some(question_id),
    }))
}
