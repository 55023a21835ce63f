//! The person writes to an agent. With `mark_as_read` the message was delivered by other
//! means (the agent's own terminal, say) and the read cursor moves past it; without, it waits
//! in the agent's inbox and wakes every waiter of the session.

use projections::{Actor, Event, SessionStatus, UserMessage};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, transact};
use crate::domain::Content;
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};
use crate::metrics;

#[derive(Clone, Debug, Serialize)]
pub struct UserMessageInput {
    pub session_id: Uuid,
    pub content: Content,
    pub mark_as_read: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserMessageSent {
    pub session_id: Uuid,
    pub message_id: Uuid,
    pub marked_as_read: bool,
    /// The session was awaiting input: this message answers its question.
    #[serde(default)]
    pub answered_question: bool,
}

pub async fn send_user_message(
    log: &EventLog,
    ctx: &Context,
    input: UserMessageInput,
) -> Result<UserMessageSent, CommandError> {
    transact(log, ctx, &input).await
}

impl Decide for UserMessageInput {
    type Output = UserMessageSent;
    const NAME: &'static str = "user_message";

    async fn decide(
        &self,
        ctx: &Context,
        txn: &mut TenantTxn,
    ) -> Result<UserMessageSent, CommandError> {
        let input = self;
        let id = input.session_id;
        let session = &require_session(txn.session(id).await?, id, true)?.session;
        let (version, answered_question) = (
            session.version,
            session.status == SessionStatus::AwaitingInput,
        );
        let message_id = ctx.event_id(0);
        let event = Event::UserMessage(UserMessage {
            content: input.content.as_str().to_owned(),
            mark_as_read: input.mark_as_read,
        });
        txn.append(
            id,
            ExpectedVersion::Exact(version),
            vec![NewEvent {
                event_id: message_id,
                event,
            }],
            &ctx.metadata(Actor::User),
        )
        .await?;
        Ok(UserMessageSent {
            session_id: id,
            message_id,
            marked_as_read: input.mark_as_read,
            answered_question,
        })
    }

    fn committed(&self, ctx: &Context, sent: &UserMessageSent) {
        if sent.answered_question {
            metrics::question_answered();
            tracing::info!(
                tenant = %ctx.tenant_id,
                session = %sent.session_id,
                reply = %sent.message_id,
                "question answered"
            );
        }
    }
}
