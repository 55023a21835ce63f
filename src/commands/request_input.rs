//! An earlier agent message becomes a question. Replies already queued after it are handed
//! over at once (and the cursor moves past them), and the first of them that answers no other
//! question answers it; otherwise it is open, and the session awaits input.

use futures::TryStreamExt;
use projections::{Actor, Event, InputRequested, MessagesRead};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CommandError, Context, Decide, PendingStatus, require_session, transact};
use crate::eventlog::{EventLog, ExpectedVersion, MessageRef, NewEvent, TenantTxn, messages};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputRequestedResult {
    pub message_id: Uuid,
    pub session_id: Uuid,
    /// Read from the log by whoever answers (see [`messages`]).
    pub messages: Vec<MessageRef>,
    pub status: PendingStatus,
}

pub async fn request_input(
    log: &EventLog,
    ctx: &Context,
    message_id: Uuid,
) -> Result<InputRequestedResult, CommandError> {
    transact(log, ctx, &RequestInput { message_id }).await
}

#[derive(Serialize)]
struct RequestInput {
    message_id: Uuid,
}

impl Decide for RequestInput {
    type Output = InputRequestedResult;
    const NAME: &'static str = "request_input";

    async fn decide(
        &self,
        ctx: &Context,
        txn: &mut TenantTxn,
    ) -> Result<InputRequestedResult, CommandError> {
        let message_id = self.message_id;
        let not_found = || CommandError::NotFound(format!("agent message {message_id} not found"));
        let message = txn.event(message_id).await?.ok_or_else(not_found)?;
        let Event::AgentMessage(agent_message) = &message.event else {
            return Err(not_found());
        };
        let session_id = message.stream_id;
        if agent_message.requires_user_input || txn.input_requested(session_id, message_id).await? {
            return Err(CommandError::BadRequest(format!(
                "message {message_id} already requires user input"
            )));
        }
        let state = require_session(txn.session(session_id).await?, session_id, true)?;
        let version = ExpectedVersion::Exact(state.session.version);
        let status = if state.session.read_cursor == Some(message_id) {
            PendingStatus::Ok
        } else {
            PendingStatus::Stale
        };
        let unread = match status {
            PendingStatus::Ok => state.inbox.clone(),
            PendingStatus::Stale => Vec::new(),
        };
        let messages = messages::refs(&unread);
        // The first that answers no other question, looked for a page at a time.
        let mut pages = std::pin::pin!(txn.user_message_pages(messages.clone()));
        let mut answer_id = None;
        while answer_id.is_none()
            && let Some(page) = pages.try_next().await?
        {
            answer_id = page.iter().find(|m| m.question_id.is_none()).map(|m| m.id);
        }
        let mut events = vec![NewEvent {
            event_id: ctx.event_id(0),
            event: Event::InputRequested(InputRequested {
                message_id,
                answer_id,
            }),
        }];
        if let Some(last) = messages.last() {
            events.push(NewEvent {
                event_id: ctx.event_id(1),
                event: Event::MessagesRead(MessagesRead {
                    last_read_message_id: last.id,
                }),
            });
        }
        txn.append(session_id, version, events, &ctx.metadata(Actor::Agent))
            .await?;
        Ok(InputRequestedResult {
            message_id,
            session_id,
            messages,
            status,
        })
    }

    fn committed(&self, ctx: &Context, result: &InputRequestedResult) {
        super::question_asked(ctx, result.session_id, result.message_id);
    }
}
