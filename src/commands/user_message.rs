//! The person writes to an agent. With `mark_as_read` the message was delivered by other
//! means (the agent's own terminal, say) and the read cursor moves past it; without, it waits
//! in the agent's inbox and wakes every waiter of the session.
//!
//! A message that answers an open question offering options records the option it chose
//! (its content equals one) in its own event, so an audit reads the decision off one event.
//! The open question is found without reading the session's history: a session awaits input
//! only until its question's first answer, and while it waits its read cursor points at the
//! question (asking moves the cursor there; only reading an answer moves it on). So one
//! indexed read of the event at the cursor, made only when the session awaits input, finds
//! it, however long the session is. (A message turned into a question later by
//! `request-input` never offers options, so it need not be found.)

use projections::{Actor, AgentMessage, Approval, Event, SessionStatus, UserMessage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, transact};
use crate::domain::choices::chosen;
use crate::domain::{Content, InvalidInput};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};
use crate::metrics;

#[derive(Clone, Debug, Serialize)]
pub struct UserMessageInput {
    pub session_id: Uuid,
    pub content: Content,
    pub mark_as_read: bool,
    /// Allowing a tool call with this input instead of the one asked about (only as the
    /// answer "Allow" to an approval).
    pub updated_input: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserMessageSent {
    pub session_id: Uuid,
    pub message_id: Uuid,
    pub marked_as_read: bool,
    /// The session was awaiting input: this message answers its question.
    #[serde(default)]
    pub answered_question: bool,
    /// The option of the question this message chose.
    #[serde(default)]
    pub chosen_option: Option<String>,
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
        let (version, answered_question, cursor) = (
            session.version,
            session.status == SessionStatus::AwaitingInput,
            session.read_cursor,
        );
        let question = match cursor.filter(|_| answered_question) {
            Some(cursor) => open_question(txn, cursor).await?,
            None => None,
        };
        let chosen_option = question
            .as_ref()
            .and_then(|q| chosen(q.options.as_deref()?, input.content.as_str()))
            .cloned();
        if input.updated_input.is_some() {
            let allows = question.as_ref().is_some_and(|q| q.approval.is_some())
                && chosen_option.as_deref() == Some(Approval::ALLOW);
            if !allows {
                return Err(CommandError::Invalid(InvalidInput::new(
                    "updated_input",
                    "is only allowed in the answer \"Allow\" to an open approval question",
                )));
            }
        }
        let message_id = ctx.event_id(0);
        let event = Event::UserMessage(UserMessage {
            content: input.content.as_str().to_owned(),
            mark_as_read: input.mark_as_read,
            chosen_option: chosen_option.clone(),
            updated_input: input.updated_input.clone(),
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
            chosen_option,
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

/// The question at the read cursor of a session awaiting input, when it offers options.
async fn open_question(
    txn: &mut TenantTxn,
    cursor: Uuid,
) -> Result<Option<AgentMessage>, CommandError> {
    Ok(match txn.event(cursor).await?.map(|e| e.event) {
        Some(Event::AgentMessage(m)) if m.requires_user_input && m.options.is_some() => Some(m),
        _ => None,
    })
}
