//! Answers that carry the person's messages (an agent message's `queued_user_messages`, a
//! long-poll's or `request-input`'s `messages`, `receive`'s) are written as the messages are
//! read from the log, a page at a time (see [`crate::eventlog::messages`]): the server holds a
//! page, never the queue, whatever the person wrote. A short answer (one page) is written whole,
//! with its length, as any other.
//!
//! The first page is read before the head goes out, so a failure then is an ordinary error
//! answer. A failure later (the database went away mid-answer) cuts the connection: the
//! client sees an incomplete answer, never a complete-looking wrong one, and retries.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use projections::Message;
use serde::Serialize;
use uuid::Uuid;

use super::error::ApiError;
use crate::commands::CommandError;
use crate::eventlog::{EventLog, MessageRef, messages};
use crate::wire;

/// Which fields the answer's messages have.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// What the omnara SDK accepts ([`wire::sdk_messages`]).
    Sdk,
    /// Every field ([`wire::messages`]).
    Full,
}

impl Shape {
    /// Append `page`'s messages to `out` as array items, after `written` earlier ones.
    fn write(self, out: &mut Vec<u8>, page: &[Message], written: &mut usize) {
        let items = match self {
            Shape::Sdk => wire::sdk_messages(page),
            Shape::Full => wire::messages(page),
        };
        for item in &items {
            if *written > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, item).expect("messages serialize");
            *written += 1;
        }
    }
}

/// `head` (a JSON object) with `field` added: the messages `refs` name, oldest first.
pub async fn with_messages<T: Serialize>(
    head: &T,
    field: &'static str,
    log: &EventLog,
    tenant_id: Uuid,
    refs: Vec<MessageRef>,
    shape: Shape,
) -> Result<Response, ApiError> {
    let mut start = serde_json::to_vec(head).expect("answers serialize");
    debug_assert_eq!(start.last(), Some(&b'}'), "the head is an object");
    start.pop();
    if start.len() > 1 {
        start.push(b',');
    }
    start.extend_from_slice(format!("\"{field}\":[").as_bytes());
    let whole = refs.len() <= messages::FIRST_PAGE;
    let mut pages = Box::pin(log.user_message_pages(tenant_id, refs));
    let mut written = 0;
    if let Some(page) = pages.try_next().await.map_err(CommandError::from)? {
        shape.write(&mut start, &page, &mut written);
    }
    if whole {
        start.extend_from_slice(b"]}");
        return Ok(json(Body::from(start)));
    }
    let rest = pages.map(move |page| {
        let page = page.map_err(|e| {
            tracing::warn!("an answer's messages could not be read to its end: {e}");
            std::io::Error::other("the answer's messages could not be read")
        })?;
        let mut out = Vec::new();
        shape.write(&mut out, &page, &mut written);
        Ok::<_, std::io::Error>(Bytes::from(out))
    });
    let body = futures::stream::once(async { Ok(Bytes::from(start)) })
        .chain(rest)
        .chain(futures::stream::once(async {
            Ok(Bytes::from_static(b"]}"))
        }));
    Ok(json(Body::from_stream(body)))
}

fn json(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
