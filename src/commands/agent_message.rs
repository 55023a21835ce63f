//! An agent says something: a step, or a question when it requires input (which opens a
//! question, see `projections::question`). Sending to an unknown session id starts that
//! session. The reply carries the user messages the agent had not received yet, and the agent's
//! read cursor then moves to its new message, unless the message `leaves_unread` (a hook event
//! whose host cannot be handed messages): then they stay where they are.

use std::time::Duration;

use projections::{
    Actor, AgentMessage, Approval, Event, GitDiffUpdated, SessionContext, SessionDescribed,
    SessionStarted, ToolActivity,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{CommandError, Context, Decide, require_session, transact};
use crate::domain::{AgentType, Content, GitDiffUpdate, InvalidInput};
use crate::eventlog::{EventLog, ExpectedVersion, MessageRef, NewEvent, TenantTxn, messages};

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
    /// The question asks what to do next, after a finished turn.
    pub next_instruction: bool,
    /// A question unanswered this long expires.
    pub expires_in: Option<Duration>,
    /// The agent cannot be handed the person's queued messages with this message.
    pub leaves_unread: bool,
    /// What the session is about and where it runs (only what changes is recorded).
    pub describe: SessionDescribed,
    /// The message reports a tool the agent used (checked: `domain::questions::activity`).
    pub activity: Option<ToolActivity>,
}

impl AgentMessageInput {
    /// A plain step saying `content` in `session_id` (its other fields at their defaults).
    pub fn new(session_id: Uuid, content: Content) -> AgentMessageInput {
        AgentMessageInput {
            session_id,
            agent_type: None,
            content,
            requires_user_input: false,
            send_email: None,
            send_sms: None,
            send_push: None,
            git_diff: None,
            message_metadata: None,
            options: None,
            approval: None,
            next_instruction: false,
            expires_in: None,
            leaves_unread: false,
            describe: SessionDescribed::default(),
            activity: None,
        }
    }

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
            _ if self.expires_in.is_some() && !self.requires_user_input => {
                Err(only_on_questions("expires_in_seconds"))
            }
            _ if self.next_instruction && !self.requires_user_input => {
                Err(only_on_questions("next_instruction"))
            }
            (_, Some(_)) if self.next_instruction => Err(CommandError::Invalid(InvalidInput::new(
                "next_instruction",
                "an approval is not a next instruction",
            ))),
            (options, None) => Ok(options.clone()),
            (None, Some(approval)) => Ok(Some(approval.options())),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentMessageSent {
    pub session_id: Uuid,
    pub message_id: Uuid,
    /// User messages the agent had not yet received, oldest first (read from the log by
    /// whoever answers: see [`messages`]).
    pub queued_user_messages: Vec<MessageRef>,
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
        let (expected, queued, current_diff, context) = match txn.session(id).await? {
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
                (
                    ExpectedVersion::NoStream,
                    Vec::new(),
                    None,
                    SessionContext::default(),
                )
            }
            Some(state) => {
                let state = require_session(Some(state), id, true)?;
                let unread = match input.leaves_unread {
                    true => Vec::new(),
                    false => state.inbox.clone(),
                };
                let version = ExpectedVersion::Exact(state.session.version);
                let diff = state.session.git_diff.clone();
                let context = state.session.context.clone();
                (version, messages::refs(&unread), diff, context)
            }
        };
        // Only what changes is news: a description repeated with every message is not.
        let described = super::describe::changes(&context, &input.describe);
        if !described.is_empty() {
            events.push(NewEvent {
                event_id: ctx.event_id(3),
                event: Event::SessionDescribed(described),
            });
        }
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
                next_instruction: input.next_instruction,
                expires_at: input.expires_in.map(deadline),
                leaves_unread: input.leaves_unread,
                activity: input.activity.clone(),
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

/// `wait` from now, to the microsecond the log keeps.
fn deadline(wait: Duration) -> time::OffsetDateTime {
    let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
    crate::eventlog::chain::now_micros() + Duration::from_micros(micros)
}
