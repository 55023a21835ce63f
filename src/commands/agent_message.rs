//! An agent says something: a step, or a question when it requires input. Sending to an
//! unknown session id starts that session. The reply carries the user messages the agent had
//! not received yet; the agent's read cursor then moves to its new message.

use projections::{Actor, AgentMessage, Approval, Event, GitDiffUpdated, Message, SessionStarted};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, transact};
use crate::domain::{AgentType, Content, GitDiffUpdate, InvalidInput};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};

#[derive(Clone, Debug, Serialize)]
pub struct AgentMessageInput {
    pub session_id: Uuid,
    /// Required when the session does not exist yet.
    pub agent_type: Option<AgentType>,
    pub content: Content,
    pub requires_user_input: bool,
    pub send_email: Option<bool>,
    pub send_sms: Option<bool>,
    pub send_push: Option<bool>,
    pub git_diff: Option<GitDiffUpdate>,
    pub message_metadata: Option<Map<String, Value>>,
    /// The choices a question offers (checked by `domain::choices::options`).
    pub options: Option<Vec<String>>,
    /// The tool call a question asks leave for; it offers "Allow" and "Deny".
    pub approval: Option<Approval>,
}

impl AgentMessageInput {
    /// The options the question offers: its own, or an approval's two.
    fn offered(&self) -> Result<Option<Vec<String>>, CommandError> {
        let only_on_questions = |field: &str| {
            CommandError::Invalid(InvalidInput::new(
                field,
                "is only allowed on a question (requires_user_input: true)",
            ))
        };
        match (&self.options, &self.approval) {
            (Some(_), Some(_)) => Err(CommandError::Invalid(InvalidInput::new(
                "options",
                "an approval offers \"Allow\" and \"Deny\"; do not give options with it",
            ))),
            (Some(_), None) if !self.requires_user_input => Err(only_on_questions("options")),
            (None, Some(_)) if !self.requires_user_input => Err(only_on_questions("approval")),
            (options, None) => Ok(options.clone()),
            (None, Some(_)) => Ok(Some(vec![
                Approval::ALLOW.to_owned(),
                Approval::DENY.to_owned(),
            ])),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentMessageSent {
    pub session_id: Uuid,
    pub message_id: Uuid,
    /// User messages the agent had not yet received, oldest first.
    pub queued_user_messages: Vec<Message>,
    /// How many plain steps the session has logged, this one included.
    pub step_number: i32,
}

pub async fn send_agent_message(
    log: &EventLog,
    ctx: &Context,
    input: AgentMessageInput,
) -> Result<AgentMessageSent, CommandError> {
    transact(log, ctx, &input).await
}

impl Decide for AgentMessageInput {
    type Output = AgentMessageSent;
    const NAME: &'static str = "agent_message";

    async fn decide(
        &self,
        ctx: &Context,
        txn: &mut TenantTxn,
    ) -> Result<AgentMessageSent, CommandError> {
        let input = self;
        let id = input.session_id;
        let options = input.offered()?;
        if id == ctx.tenant_id {
            return Err(CommandError::BadRequest(
                "agent_instance_id must not be your own user id; use a new UUID for a session"
                    .into(),
            ));
        }
        let mut events = Vec::new();
        let (expected, queued, current_diff) = match txn.session(id).await? {
            None => {
                let agent_type = input.agent_type.as_ref().ok_or_else(|| {
                    CommandError::BadRequest(
                        "agent_type is required when creating a new session".into(),
                    )
                })?;
                events.push(NewEvent {
                    event_id: ctx.event_id(0),
                    event: Event::SessionStarted(SessionStarted {
                        agent_type: agent_type.as_str().to_owned(),
                    }),
                });
                (ExpectedVersion::NoStream, Vec::new(), None)
            }
            Some(state) => {
                let state = require_session(Some(state), id, true)?;
                let unread = state.inbox.clone();
                let version = ExpectedVersion::Exact(state.session.version);
                let diff = state.session.git_diff.clone();
                (version, txn.unread_messages(&unread).await?, diff)
            }
        };
        let new_diff = match &input.git_diff {
            Some(GitDiffUpdate::Set(diff)) => Some(diff.clone()),
            Some(GitDiffUpdate::Clear) => Some(String::new()),
            Some(GitDiffUpdate::Ignored) => {
                tracing::warn!(session = %id, "git_diff is not a git diff; ignored");
                None
            }
            None => None,
        };
        // An unchanged diff is not news; the log keeps only changes.
        if let Some(diff) = new_diff
            && current_diff.as_deref().unwrap_or("") != diff
        {
            events.push(NewEvent {
                event_id: ctx.event_id(1),
                event: Event::GitDiffUpdated(GitDiffUpdated { git_diff: diff }),
            });
        }
        let message_id = ctx.event_id(2);
        events.push(NewEvent {
            event_id: message_id,
            event: Event::AgentMessage(AgentMessage {
                content: input.content.as_str().to_owned(),
                requires_user_input: input.requires_user_input,
                send_email: input.send_email,
                send_sms: input.send_sms,
                send_push: input.send_push,
                message_metadata: input.message_metadata.clone(),
                options,
                approval: input.approval.clone(),
            }),
        });
        txn.append(id, expected, events, &ctx.metadata(Actor::Agent))
            .await?;
        let step_number = txn.session(id).await?.map_or(0, |s| s.session.step_count);
        Ok(AgentMessageSent {
            session_id: id,
            message_id,
            queued_user_messages: queued,
            step_number,
        })
    }

    fn committed(&self, ctx: &Context, sent: &AgentMessageSent) {
        if self.requires_user_input {
            super::question_asked(ctx, sent.session_id, sent.message_id);
        }
    }
}
