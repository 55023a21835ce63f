//! The person's messages an agent receives, by reference. A command that hands messages over
//! decides which (and moves the read cursor) without reading what they say; their text is read
//! from the log afterwards, a page at a time, by whoever writes the answer. So neither a command
//! nor its Idempotency-Key record nor an answer's writer holds a queue whole: an agent that
//! receives 155 replies of 1.5 MB each costs a page of them, not 225 MB.
//!
//! Reading after the commit is safe: the log is append-only, and a message that was handed over
//! stays what it was.

use futures::Stream;
use projections::{InboxMessage, Message};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{LogError, read};

/// A person's message, by the event that carried it. Serialized as the first three fields of a
/// [`Message`], so that an Idempotency-Key record holding whole messages (as records did before
/// references) still reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub id: Uuid,
    /// Tenant sequence number of the event.
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&InboxMessage> for MessageRef {
    fn from(m: &InboxMessage) -> MessageRef {
        MessageRef {
            id: m.message_id,
            seq: m.seq,
            created_at: m.created_at,
        }
    }
}

impl From<&Message> for MessageRef {
    fn from(m: &Message) -> MessageRef {
        MessageRef {
            id: m.id,
            seq: m.seq,
            created_at: m.created_at,
        }
    }
}

/// References to a session's unread messages, oldest first.
pub fn refs(unread: &[InboxMessage]) -> Vec<MessageRef> {
    unread.iter().map(MessageRef::from).collect()
}

/// A page holds about this much text (at least one message, whatever its size).
const PAGE_BYTES: usize = 1 << 20;
/// Messages in the first page, before their sizes are known (a message is at most the body
/// limit, 2 MiB by default).
pub const FIRST_PAGE: usize = 4;
/// Messages in any page.
const MAX_PAGE: usize = 64;

/// The messages `refs` name, oldest first, a page at a time: each page is one query on a
/// connection given back before the page is yielded (a slow reader of the answer holds no
/// database connection), sized from the largest message seen so far.
pub fn pages(
    pool: PgPool,
    tenant_id: Uuid,
    refs: Vec<MessageRef>,
) -> impl Stream<Item = Result<Vec<Message>, LogError>> + Send + 'static {
    futures::stream::try_unfold((refs, 0, FIRST_PAGE), move |(refs, at, size)| {
        let pool = pool.clone();
        async move {
            if at >= refs.len() {
                return Ok(None);
            }
            let page = &refs[at..(at + size).min(refs.len())];
            let messages = {
                let mut conn = pool.acquire().await?;
                read::user_messages(&mut conn, tenant_id, page).await?
            };
            let largest = messages.iter().map(|m| m.content.len()).max().unwrap_or(0);
            let next = (PAGE_BYTES / largest.max(1)).clamp(1, MAX_PAGE);
            let at = at + page.len();
            Ok(Some((messages, (refs, at, next))))
        }
    })
}

/// The messages `refs` name, oldest first, whole: for answers that cannot be written a part at
/// a time (an MCP tool's result).
pub async fn load(
    pool: &PgPool,
    tenant_id: Uuid,
    refs: &[MessageRef],
) -> Result<Vec<Message>, LogError> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = pool.acquire().await?;
    read::user_messages(&mut conn, tenant_id, refs).await
}

#[cfg(test)]
mod tests {
    use projections::SenderType;

    use super::*;

    /// Idempotency-Key records written before references held whole messages: they still read.
    #[test]
    fn a_whole_message_reads_as_its_reference() {
        let message = Message {
            id: Uuid::new_v4(),
            content: "PostgreSQL".into(),
            sender_type: SenderType::User,
            created_at: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            requires_user_input: false,
            seq: 42,
            options: None,
            approval: None,
            chosen_option: Some("PostgreSQL".into()),
            updated_input: None,
            question_id: Some(Uuid::new_v4()),
            activity: None,
            terminal: false,
        };
        let stored = serde_json::to_string(&[&message]).unwrap();
        let read: Vec<MessageRef> = serde_json::from_str(&stored).unwrap();
        assert_eq!(read, [MessageRef::from(&message)]);
    }
}
