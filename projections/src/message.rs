//! Messages of a session, derived on demand from its stream: the conversation as both sides
//! see it. Not stored; a session's stream is read and folded when asked for.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::{Event, RecordedEvent};

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
}

/// Fold a session's events (in stream order) into its messages, oldest first.
pub fn messages<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    for recorded in events {
        match &recorded.event {
            Event::AgentMessage(m) => out.push(Message {
                id: recorded.event_id,
                content: m.content.clone(),
                sender_type: SenderType::Agent,
                created_at: recorded.recorded_at,
                requires_user_input: m.requires_user_input,
                seq: recorded.seq,
            }),
            Event::UserMessage(m) => out.push(Message {
                id: recorded.event_id,
                content: m.content.clone(),
                sender_type: SenderType::User,
                created_at: recorded.recorded_at,
                requires_user_input: false,
                seq: recorded.seq,
            }),
            Event::InputRequested(r) => {
                if let Some(m) = out.iter_mut().find(|m| m.id == r.message_id) {
                    m.requires_user_input = true;
                }
            }
            Event::SessionStarted(_)
            | Event::MessagesRead(_)
            | Event::MessagesReturned(_)
            | Event::GitDiffUpdated(_)
            | Event::SessionEnded(_)
            | Event::UserCreated(_)
            | Event::UserRenamed(_)
            | Event::NotificationChannelAdded(_)
            | Event::NotificationChannelRemoved(_) => {}
        }
    }
    out
}
