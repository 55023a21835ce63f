//! Messages of a session, derived on demand from its stream: the conversation as both sides
//! see it. Not stored; a session's stream is read and folded when asked for.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::{AgentMessage, Approval, Event, RecordedEvent, ToolActivity, UserMessage};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SenderType {
    Agent,
    User,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: Uuid,
    pub content: String,
    pub sender_type: SenderType,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub requires_user_input: bool,
    /// Tenant sequence number of the event that carried the message.
    pub seq: i64,
    /// A question's choices.
    pub options: Option<Vec<String>>,
    /// A question asking leave to run a tool.
    pub approval: Option<Approval>,
    /// The option an answer chose.
    pub chosen_option: Option<String>,
    /// The tool input an answer allowed instead of the one asked about.
    pub updated_input: Option<Map<String, Value>>,
    /// The question a person's message answers, when it names one.
    pub question_id: Option<Uuid>,
    /// The tool call an agent's step reports.
    #[serde(default)]
    pub activity: Option<ToolActivity>,
    /// The person typed it in the agent's own terminal.
    #[serde(default)]
    pub terminal: bool,
}

impl Message {
    /// What the agent said in the event `recorded` (whose id is the message id).
    pub fn from_agent(recorded: &RecordedEvent, m: &AgentMessage) -> Message {
        Message {
            id: recorded.event_id,
            content: m.content.clone(),
            sender_type: SenderType::Agent,
            created_at: recorded.recorded_at,
            requires_user_input: m.requires_user_input,
            seq: recorded.seq,
            options: m.options.clone(),
            approval: m.approval.clone(),
            chosen_option: None,
            updated_input: None,
            question_id: None,
            activity: m.activity.clone(),
            terminal: false,
        }
    }

    /// What the person said in the event with this id, position and time.
    pub fn from_user(id: Uuid, seq: i64, created_at: OffsetDateTime, m: UserMessage) -> Message {
        Message {
            id,
            content: m.content,
            sender_type: SenderType::User,
            created_at,
            requires_user_input: false,
            seq,
            options: None,
            approval: None,
            chosen_option: m.chosen_option,
            updated_input: m.updated_input,
            question_id: m.answers.question(),
            activity: None,
            terminal: m.terminal,
        }
    }
}

/// Fold a session's events (in stream order) into its messages, oldest first.
pub fn messages<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    for recorded in events {
        match &recorded.event {
            Event::AgentMessage(m) => out.push(Message::from_agent(recorded, m)),
            Event::UserMessage(m) => out.push(Message::from_user(
                recorded.event_id,
                recorded.seq,
                recorded.recorded_at,
                m.clone(),
            )),
            Event::InputRequested(r) => {
                if let Some(m) = out.iter_mut().find(|m| m.id == r.message_id) {
                    m.requires_user_input = true;
                }
            }
            Event::SessionStarted(_)
            | Event::MessagesRead(_)
            | Event::MessagesReceived(_)
            | Event::MessagesReturned(_)
            | Event::QuestionWithdrawn(_)
            | Event::QuestionExpired(_)
            | Event::SessionDescribed(_)
            | Event::AgentExited(_)
            | Event::GitDiffUpdated(_)
            | Event::SessionEnded(_)
            | Event::UserCreated(_)
            | Event::UserRenamed(_)
            | Event::NotificationChannelAdded(_)
            | Event::NotificationChannelRemoved(_)
            | Event::NotificationPolicyChanged(_)
            | Event::AppConnected(_)
            | Event::AppDisconnected(_) => {}
        }
    }
    out
}
