//! Messages an agent was handed but never received go back to its inbox.
//!
//! A call that took user messages (the answer it waited for, or the feedback a step collects)
//! may fail to hand them over: its client cancelled it, or hung up, before the result went
//! out. The interface that saw this returns them, and they are unread again, in the order they
//! were said, so the agent's next read (its next step, or waiting for the answer again)
//! delivers them. Only messages that were read are returned: returning twice changes nothing,
//! and nothing can be delivered twice by being returned while still unread.

use projections::{Actor, Event, MessagesReturned, ReturnedMessage, SessionStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CommandError, Context, Decide, session_not_found, transact};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};

/// What a call took and could not hand over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Undelivered {
    pub session_id: Uuid,
    /// The user messages the call took.
    pub message_ids: Vec<Uuid>,
    /// The read cursor before the call took them (the question they answered): it goes back
    /// there unless the agent has read or said something since.
    pub read_cursor: Option<Uuid>,
}

/// Return `undelivered` to the session's inbox; answers how many messages are unread again
/// (none when the session has ended, since nobody will read them).
pub async fn return_undelivered(
    log: &EventLog,
    ctx: &Context,
    undelivered: Undelivered,
) -> Result<usize, CommandError> {
    // A return is not the request's own change: never replay or record it under the
    // request's Idempotency-Key.
    let ctx = Context {
        idempotency_key: None,
        ..ctx.clone()
    };
    transact(log, &ctx, &undelivered).await
}

impl Decide for Undelivered {
    type Output = usize;
    const NAME: &'static str = "return_undelivered";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<usize, CommandError> {
        let session_id = self.session_id;
        let state = txn
            .session(session_id)
            .await?
            .ok_or_else(|| session_not_found(session_id))?;
        if state.session.status == SessionStatus::Completed {
            return Ok(0);
        }
        let (version, cursor) = (state.session.version, state.session.read_cursor);
        let unread: Vec<Uuid> = state.inbox.iter().map(|m| m.message_id).collect();
        let mut messages: Vec<ReturnedMessage> = Vec::new();
        for &id in &self.message_ids {
            if unread.contains(&id) || messages.iter().any(|m| m.message_id == id) {
                continue;
            }
            let Some(said) = txn.event(id).await? else {
                continue;
            };
            if said.stream_id == session_id
                && let Event::UserMessage(message) = &said.event
                && !message.mark_as_read
            {
                messages.push(ReturnedMessage {
                    message_id: id,
                    stream_version: said.stream_version,
                    seq: said.seq,
                    created_at: said.recorded_at,
                });
            }
        }
        messages.sort_by_key(|m| m.seq);
        let Some(last) = messages.last() else {
            return Ok(0);
        };
        // The cursor still rests on the last message taken: nothing was read since.
        let read_cursor = self.read_cursor.filter(|_| cursor == Some(last.message_id));
        let returned = messages.len();
        txn.append(
            session_id,
            ExpectedVersion::Exact(version),
            vec![NewEvent {
                event_id: ctx.event_id(0),
                event: Event::MessagesReturned(MessagesReturned {
                    messages,
                    read_cursor,
                }),
            }],
            &ctx.metadata(Actor::System),
        )
        .await?;
        Ok(returned)
    }
}
