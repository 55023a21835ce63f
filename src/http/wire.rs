//! Shapes on the wire that several routes share. Field names are the contract existing SDKs
//! parse; the Python SDK builds `Message(**m)`, so a message has exactly these five keys.

use projections::{Message, SenderType, Session, SessionStatus};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use uuid::Uuid;

const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// RFC 3339 in UTC with microseconds, e.g. `2026-01-02T03:04:05.123456Z`.
pub fn timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP)
        .expect("UTC timestamps always format")
}

#[derive(Clone, Debug, Serialize)]
pub struct MessageJson {
    pub id: Uuid,
    pub content: String,
    pub sender_type: SenderType,
    pub created_at: String,
    pub requires_user_input: bool,
}

impl From<&Message> for MessageJson {
    fn from(m: &Message) -> MessageJson {
        MessageJson {
            id: m.id,
            content: m.content.clone(),
            sender_type: m.sender_type,
            created_at: timestamp(m.created_at),
            requires_user_input: m.requires_user_input,
        }
    }
}

pub fn messages(messages: &[Message]) -> Vec<MessageJson> {
    messages.iter().map(MessageJson::from).collect()
}

/// A session in listings.
#[derive(Clone, Debug, Serialize)]
pub struct SessionJson {
    pub id: Uuid,
    pub agent_type: String,
    pub status: SessionStatus,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub last_activity_at: String,
    pub unread_count: i32,
}

impl From<&Session> for SessionJson {
    fn from(s: &Session) -> SessionJson {
        SessionJson {
            id: s.id,
            agent_type: s.agent_type.clone(),
            status: s.status,
            started_at: timestamp(s.started_at),
            ended_at: s.ended_at.map(timestamp),
            last_activity_at: timestamp(s.last_activity_at),
            unread_count: s.unread_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(timestamp(at), "2023-11-14T22:13:20.123456Z");
        let offset = at.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(timestamp(offset), "2023-11-14T22:13:20.123456Z");
    }
}
