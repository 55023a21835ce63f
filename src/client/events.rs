//! Following a server's event stream (Server-Sent Events) across disconnects.
//!
//! Every event's id is its tenant sequence number, so resuming is exact: after a broken
//! connection, a server restart or a failover the stream is opened again with
//! `Last-Event-ID` = the last id handed out, and the server sends what came after it, no gap
//! and no repeat. Ids at or below the last one are dropped all the same, so a caller never
//! sees an event twice whatever a server sends.
//!
//! Memory is bounded: one event is held at a time, and an event larger than [`MAX_EVENT`]
//! ends the stream with an error instead of growing the buffer.

use std::time::Duration;

use reqwest::Response;

use super::{Client, ClientError, accepted};

/// The largest event accepted, in bytes of its `data:` lines.
const MAX_EVENT: usize = 32 * 1024 * 1024;
/// The server sends a keep-alive at least every 15 s; silence for this long is a dead
/// connection, opened again.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);
/// Pauses between attempts to reconnect: from the first to the longest, doubling.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// One event of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    /// The tenant sequence number.
    pub id: i64,
    /// The event type (`agent_message`, `user_message`, ...).
    pub event_type: String,
    /// The event as JSON.
    pub data: String,
}

/// What [`EventStream::next`] has to say.
#[derive(Debug)]
pub enum Streamed {
    Event(StreamEvent),
    /// The connection was lost (or could not be made); the stream tries again after `pause`.
    Reconnecting {
        pause: Duration,
        reason: String,
    },
}

pub struct EventStream {
    client: Client,
    path: String,
    /// The last id handed out; `None` until the first event when the stream began "now".
    last_id: Option<i64>,
    response: Option<Response>,
    parser: Parser,
    /// The pause before the next reconnect, doubling while attempts fail.
    retry: Duration,
    /// Waited out before connecting again (after `Reconnecting` was reported).
    pause: Option<Duration>,
}

impl EventStream {
    pub(super) fn new(client: Client, path: String, after: Option<i64>) -> EventStream {
        EventStream {
            client,
            path,
            last_id: after,
            response: None,
            parser: Parser::default(),
            retry: FIRST_RETRY,
            pause: None,
        }
    }

    /// The next event, or news of a reconnect. An error is final: the server refused the
    /// stream (a revoked key, a session that does not exist) or sent something unreadable.
    pub async fn next(&mut self) -> Result<Streamed, ClientError> {
        loop {
            if let Some(event) = self.parser.ready.pop_front() {
                if self.last_id.is_some_and(|last| event.id <= last) {
                    continue;
                }
                self.last_id = Some(event.id);
                return Ok(Streamed::Event(event));
            }
            let Some(response) = self.response.as_mut() else {
                match self.connect().await {
                    Ok(response) => {
                        self.response = Some(response);
                        self.parser = Parser::default();
                        continue;
                    }
                    Err(e) if e.is_transient() => return Ok(self.reconnecting(e.to_string())),
                    Err(e) => return Err(e),
                }
            };
            match tokio::time::timeout(SILENCE_LIMIT, response.chunk()).await {
                Ok(Ok(Some(bytes))) => {
                    self.retry = FIRST_RETRY;
                    self.parser.feed(&bytes)?;
                }
                Ok(Ok(None)) => {
                    return Ok(self.reconnecting("the server closed the stream".into()));
                }
                Ok(Err(e)) => return Ok(self.reconnecting(e.to_string())),
                Err(_) => {
                    let reason = format!("nothing heard for {} s", SILENCE_LIMIT.as_secs());
                    return Ok(self.reconnecting(reason));
                }
            }
        }
    }

    /// Drop the connection and pause before the next attempt (which `next` makes).
    fn reconnecting(&mut self, reason: String) -> Streamed {
        self.response = None;
        let pause = self.retry;
        self.retry = (self.retry * 2).min(LONGEST_RETRY);
        self.pause = Some(pause);
        Streamed::Reconnecting { pause, reason }
    }

    async fn connect(&mut self) -> Result<Response, ClientError> {
        if let Some(pause) = self.pause.take() {
            tokio::time::sleep(pause).await;
        }
        let mut request = self
            .client
            .request(reqwest::Method::GET, &self.path)
            .header("accept", "text/event-stream");
        if let Some(last) = self.last_id {
            request = request.header("last-event-id", last.to_string());
        }
        let response = request.send().await.map_err(ClientError::Unreachable)?;
        accepted(response).await
    }
}

/// The `text/event-stream` format, fed bytes as they arrive.
#[derive(Default)]
struct Parser {
    /// Bytes of a line not yet complete.
    line: Vec<u8>,
    id: Option<String>,
    event_type: Option<String>,
    data: String,
    /// Complete events not yet taken (at most what one chunk held).
    ready: std::collections::VecDeque<StreamEvent>,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        for &byte in bytes {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let line = String::from_utf8(line)
                    .map_err(|_| ClientError::Unexpected("the event stream is not UTF-8".into()))?;
                self.line_complete(&line)?;
            } else {
                self.line.push(byte);
                if self.line.len() + self.data.len() > MAX_EVENT {
                    return Err(too_large());
                }
            }
        }
        Ok(())
    }

    fn line_complete(&mut self, line: &str) -> Result<(), ClientError> {
        if line.is_empty() {
            return self.dispatch();
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            "id" => self.id = Some(value.to_owned()),
            "event" => self.event_type = Some(value.to_owned()),
            // Comments (keep-alives, field "") and fields this client does not use.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Result<(), ClientError> {
        let data = std::mem::take(&mut self.data);
        let event_type = self.event_type.take();
        let Some(id) = self.id.take() else {
            // A keep-alive or an event without an id: nothing to resume from, nothing to show.
            return Ok(());
        };
        let id = id
            .parse()
            .map_err(|_| ClientError::Unexpected(format!("event id {id:?} is not a number")))?;
        self.ready.push_back(StreamEvent {
            id,
            event_type: event_type.unwrap_or_else(|| "message".into()),
            data,
        });
        Ok(())
    }
}

fn too_large() -> ClientError {
    ClientError::Unexpected(format!(
        "an event is larger than {} MiB",
        MAX_EVENT / (1024 * 1024)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&str]) -> Vec<StreamEvent> {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk.as_bytes()).unwrap();
            while let Some(event) = parser.ready.pop_front() {
                out.push(event);
            }
        }
        out
    }

    #[test]
    fn events_split_anywhere_across_chunks_come_out_whole() {
        let stream = ": keep-alive\n\nid: 7\nevent: agent_message\ndata: {\"a\":\ndata: 1}\n\n\
                      id:8\r\nevent:user_message\r\ndata:x\r\n\r\n";
        let whole = events(&[stream]);
        assert_eq!(
            whole,
            vec![
                StreamEvent {
                    id: 7,
                    event_type: "agent_message".into(),
                    data: "{\"a\":\n1}".into()
                },
                StreamEvent {
                    id: 8,
                    event_type: "user_message".into(),
                    data: "x".into()
                },
            ]
        );
        for cut in 1..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(events(&[a, b]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn bad_ids_and_oversized_events_are_errors() {
        let mut parser = Parser::default();
        assert!(parser.feed(b"id: seven\ndata: x\n\n").is_err());
        let mut parser = Parser::default();
        let huge = vec![b'x'; MAX_EVENT + 1];
        assert!(parser.feed(b"data: ").is_ok());
        assert!(parser.feed(&huge).is_err());
    }
}
