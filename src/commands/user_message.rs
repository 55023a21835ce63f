//! The person writes to an agent. With `mark_as_read` the message was delivered by other
//! means (the agent's own terminal, say) and the read cursor moves past it; without, it waits
//! in the agent's inbox and wakes every waiter of the session.
//!
//! A message answers at most one question, and its event says which (`question_id`):
//! - one that names a question answers exactly that one, which must be open (a question that
//!   is not: 409 saying how and when it closed; one the session does not have: 404);
//! - one that names none (`question_id` absent: the omnara SDK, older clients) answers the
//!   session's newest open question, as a reply always did; but when that is a tool approval
//!   and other questions are open too, it may not allow it: which call it allows must be named;
//! - `question_id: null` answers none.
//!
//! An answer equal to one of its question's options records the option it chose, so an audit
//! reads the decision off one event. Of two answers at once to one question, the first to
//! commit wins; the other decides again on the new state and gets 409.

use projections::{Actor, AgentMessage, Answers, Approval, Event, SessionState, UserMessage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::questions::{not_open, question_not_found};
use super::{CommandError, Context, Decide, require_session, transact};
use crate::domain::choices::chosen;
use crate::domain::questions::Target;
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
    /// The question this message answers.
    pub target: Target,
    /// Typed in the agent's own terminal (a coding agent's hook reports it): already delivered
    /// there, so it is not queued and answers no question.
    pub terminal: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserMessageSent {
    pub session_id: Uuid,
    pub message_id: Uuid,
    pub marked_as_read: bool,
    /// The question this message answered.
    #[serde(default)]
    pub question_id: Option<Uuid>,
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
        let state = require_session(txn.session(id).await?, id, false)?.clone();
        let target = match (input.terminal, input.target) {
            (false, target) => target,
            (true, Target::Unnamed | Target::Nothing) => Target::Nothing,
            (true, Target::Question(_)) => {
                return Err(CommandError::Invalid(InvalidInput::new(
                    "question_id",
                    "a message typed in the agent's terminal answers no question",
                )));
            }
        };
        let answered = answered_question(txn, &state, target).await?;
        // A closed question says how it closed; otherwise an ended session refuses.
        require_session(Some(&state), id, true)?;
        let question = match answered {
            Some(question_id) => Some(asked(txn, question_id).await?),
            None => None,
        };
        let chosen_option = question
            .as_ref()
            .and_then(|q| chosen(q.options.as_deref()?, input.content.as_str()))
            .cloned();
        let approval = question.as_ref().and_then(|q| q.approval.as_ref());
        let allows = approval.is_some() && Approval::allows(chosen_option.as_deref());
        let edits = approval.is_some() && chosen_option.as_deref() == Some(Approval::ALLOW);
        if input.updated_input.is_some() && !edits {
            return Err(CommandError::Invalid(InvalidInput::new(
                "updated_input",
                "is only allowed in the answer \"Allow\" to an open approval question",
            )));
        }
        if input.updated_input.is_some() && approval.is_some_and(|a| a.input_fixed) {
            return Err(CommandError::Invalid(InvalidInput::new(
                "updated_input",
                "this agent runs the tool call as asked or not at all: allow or deny it",
            )));
        }
        if allows && target == Target::Unnamed && state.questions.len() > 1 {
            return Err(CommandError::Conflict(format!(
                "{} questions are open in session {id}; an answer that allows a tool call must \
                 name the approval it answers (question_id)",
                state.questions.len()
            )));
        }
        let answers = match answered {
            Some(question_id) => Answers::Question(question_id),
            None if state.questions.is_empty() => Answers::Unstated,
            None => Answers::Nothing,
        };
        let message_id = ctx.event_id(0);
        let event = Event::UserMessage(UserMessage {
            content: input.content.as_str().to_owned(),
            mark_as_read: input.mark_as_read || input.terminal,
            chosen_option: chosen_option.clone(),
            updated_input: input.updated_input.clone(),
            terminal: input.terminal,
            answers,
        });
        txn.append(
            id,
            ExpectedVersion::Exact(state.session.version),
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
            marked_as_read: input.mark_as_read || input.terminal,
            question_id: answered,
            chosen_option,
        })
    }

    fn committed(&self, ctx: &Context, sent: &UserMessageSent) {
        if let Some(question) = sent.question_id {
            metrics::question_answered();
            tracing::info!(
                tenant = %ctx.tenant_id,
                session = %sent.session_id,
                %question,
                reply = %sent.message_id,
                "question answered"
            );
        }
    }
}

/// The open question a message aimed at `target` answers, if any; a named question that is not
/// open is refused, saying how it closed.
async fn answered_question(
    txn: &mut TenantTxn,
    state: &SessionState,
    target: Target,
) -> Result<Option<Uuid>, CommandError> {
    let session_id = state.session.id;
    let open = match target {
        Target::Nothing => return Ok(None),
        Target::Unnamed => match state.newest_open_question() {
            Some(q) => q,
            None => return Ok(None),
        },
        Target::Question(id) => match state.open_question(id) {
            Some(q) => q,
            None => {
                return match txn.question(session_id, id).await? {
                    Some(closed) => Err(not_open(&closed)),
                    None => Err(question_not_found(session_id, id)),
                };
            }
        },
    };
    if open.past_deadline(OffsetDateTime::now_utc()) {
        let at = open
            .expires_at
            .map(crate::wire::timestamp)
            .unwrap_or_default();
        return Err(CommandError::Conflict(format!(
            "question {} expired at {at} without an answer",
            open.id
        )));
    }
    Ok(Some(open.id))
}

/// What the open question `question_id` asked (its options, its tool call).
async fn asked(txn: &mut TenantTxn, question_id: Uuid) -> Result<AgentMessage, CommandError> {
    match txn.event(question_id).await?.map(|e| e.event) {
        Some(Event::AgentMessage(m)) => Ok(m),
        _ => Err(CommandError::Internal(format!(
            "open question {question_id} is not an agent message in the log"
        ))),
    }
}
