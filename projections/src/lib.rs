//! Switchboard's event vocabulary and the read models derived from it.
//!
//! This crate is pure: no I/O, no database. The server stores [`Event`]s in its log and calls
//! [`session::apply`] to keep the `sessions` and `inbox` tables in step, inside the append
//! transaction; `switchboard projections rebuild` calls the same function over the whole log.

pub mod event;
pub mod message;
pub mod session;

pub use event::{
    Actor, AgentMessage, Event, GitDiffUpdated, InputRequested, MessagesRead, MessagesReturned,
    Metadata, RecordedEvent, ReturnedMessage, SessionEnded, SessionStarted, UnknownEvent,
    UserMessage,
};
pub use message::{Message, SenderType, messages};
pub use session::{InboxMessage, ProjectionError, Session, SessionState, SessionStatus, apply};
