//! Switchboard's event vocabulary and the read models derived from it.
//!
//! This crate is pure: no I/O, no database. The server stores [`Event`]s in its log and calls
//! [`session::apply`] (for a session's stream) or [`account::apply`] (for the tenant's account
//! stream) to keep the `sessions`, `inbox`, `questions` and `users` tables in step, inside the append
//! transaction; `switchboard projections rebuild` calls the same functions over the whole log.

pub mod account;
pub mod event;
pub mod message;
pub mod question;
pub mod session;

pub use account::{Account, is_account_stream};
pub use event::{
    Actor, AgentExited, AgentMessage, Answers, AppConnected, AppDisconnected, Approval, Event,
    GitDiffUpdated, Imported, InputRequested, MessagesRead, MessagesReceived, MessagesReturned,
    Metadata, NotificationChannelAdded, NotificationChannelRemoved, NotificationPolicyChanged,
    QuestionExpired, QuestionWithdrawn, RecordedEvent, ReturnedMessage, SessionDescribed,
    SessionEnded, SessionStarted, ToolActivity, UnknownEvent, UserCreated, UserMessage,
    UserRenamed,
};
pub use message::{Message, SenderType, messages};
pub use question::{Question, QuestionKind, QuestionStatus};
pub use session::{
    InboxMessage, ProjectionError, Session, SessionContext, SessionState, SessionStatus, apply,
};
