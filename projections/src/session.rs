//! The `sessions` and `inbox` read models and the one fold that derives them.
//!
//! [`apply`] is the only place where an event changes a session's state. The append path calls
//! it inside the append transaction; `projections rebuild` calls it over the whole log. Both
//! therefore produce the same rows by construction, and the rebuild check proves it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::{Event, RecordedEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    Active,
    AwaitingInput,
    Completed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "ACTIVE",
            SessionStatus::AwaitingInput => "AWAITING_INPUT",
            SessionStatus::Completed => "COMPLETED",
        }
    }

    pub fn parse(s: &str) -> Option<SessionStatus> {
        match s {
            "ACTIVE" => Some(SessionStatus::Active),
            "AWAITING_INPUT" => Some(SessionStatus::AwaitingInput),
            "COMPLETED" => Some(SessionStatus::Completed),
            _ => None,
        }
    }
}

/// A row of the `sessions` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub agent_type: String,
    pub status: SessionStatus,
    pub started_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    pub last_activity_at: OffsetDateTime,
    pub git_diff: Option<String>,
    /// Version of the session's stream: the number of events in it.
    pub version: i32,
    /// The tenant sequence number of the session's latest event.
    pub last_seq: i64,
    /// Agent messages that were plain steps (not questions) when they were sent.
    pub step_count: i32,
    /// The message the agent has read up to; user messages after it are unread.
    pub read_cursor: Option<Uuid>,
    /// Number of rows this session has in the inbox.
    pub unread_count: i32,
}

/// A row of the `inbox` table: a user message the agent has not received yet. Ids and
/// positions only: the text stays in the log (the event at `seq`), so what a process keeps of a
/// session does not grow with the size of the messages waiting in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxMessage {
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub message_id: Uuid,
    pub stream_version: i32,
    pub seq: i64,
    pub created_at: OffsetDateTime,
}

/// Everything the projections hold about one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    pub session: Session,
    /// Unread user messages, oldest first.
    pub inbox: Vec<InboxMessage>,
}

/// The log contradicts itself: an event cannot follow the state before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionError {
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for ProjectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event at seq {}: {}", self.seq, self.reason)
    }
}

impl std::error::Error for ProjectionError {}

/// Fold one event into the state of its session. `state` is `None` before the first event.
pub fn apply(
    state: Option<SessionState>,
    recorded: &RecordedEvent,
) -> Result<SessionState, ProjectionError> {
    let fail = |reason: &str| ProjectionError {
        seq: recorded.seq,
        reason: reason.to_owned(),
    };
    if recorded.event.is_account_event() {
        return Err(fail("an account event on a session stream"));
    }
    let mut state = match (state, &recorded.event) {
        (None, Event::SessionStarted(_))
            if crate::account::is_account_stream(recorded.tenant_id, recorded.stream_id) =>
        {
            return Err(fail("a session cannot use the tenant's account stream"));
        }
        (None, Event::SessionStarted(started)) => {
            return Ok(SessionState {
                session: Session {
                    tenant_id: recorded.tenant_id,
                    id: recorded.stream_id,
                    agent_type: started.agent_type.clone(),
                    status: SessionStatus::Active,
                    started_at: recorded.recorded_at,
                    ended_at: None,
                    last_activity_at: recorded.recorded_at,
                    git_diff: None,
                    version: recorded.stream_version,
                    last_seq: recorded.seq,
                    step_count: 0,
                    read_cursor: None,
                    unread_count: 0,
                },
                inbox: Vec::new(),
            });
        }
        (None, _) => return Err(fail("the session has not started")),
        (Some(_), Event::SessionStarted(_)) => return Err(fail("the session started twice")),
        (Some(state), _) => state,
    };
    if recorded.stream_version != state.session.version + 1 {
        return Err(fail("stream version does not follow the previous one"));
    }

    let session = &mut state.session;
    let open = session.status != SessionStatus::Completed;
    match &recorded.event {
        Event::SessionStarted(_)
        | Event::UserCreated(_)
        | Event::UserRenamed(_)
        | Event::NotificationChannelAdded(_)
        | Event::NotificationChannelRemoved(_) => unreachable!("handled above"),
        Event::AgentMessage(message) => {
            if open {
                session.status = if message.requires_user_input {
                    SessionStatus::AwaitingInput
                } else {
                    SessionStatus::Active
                };
            }
            if !message.requires_user_input {
                session.step_count += 1;
            }
            session.read_cursor = Some(recorded.event_id);
            state.inbox.clear();
        }
        Event::UserMessage(message) => {
            if open {
                session.status = SessionStatus::Active;
            }
            if message.mark_as_read {
                session.read_cursor = Some(recorded.event_id);
                state.inbox.clear();
            } else {
                state.inbox.push(InboxMessage {
                    tenant_id: recorded.tenant_id,
                    session_id: recorded.stream_id,
                    message_id: recorded.event_id,
                    stream_version: recorded.stream_version,
                    seq: recorded.seq,
                    created_at: recorded.recorded_at,
                });
            }
        }
        Event::InputRequested(_) => {
            // A question with replies already waiting is answered; one without waits.
            if open && state.inbox.is_empty() {
                session.status = SessionStatus::AwaitingInput;
            }
        }
        Event::MessagesRead(read) => {
            let Some(last) = state
                .inbox
                .iter()
                .position(|m| m.message_id == read.last_read_message_id)
            else {
                return Err(fail("messages_read names a message that is not unread"));
            };
            state.inbox.drain(..=last);
            session.read_cursor = Some(read.last_read_message_id);
        }
        Event::MessagesReturned(returned) => {
            for m in &returned.messages {
                if state.inbox.iter().any(|i| i.message_id == m.message_id) {
                    return Err(fail("messages_returned names a message that is unread"));
                }
                // The inbox stays in the order the messages were said.
                let at = state.inbox.partition_point(|i| i.seq < m.seq);
                state.inbox.insert(
                    at,
                    InboxMessage {
                        tenant_id: recorded.tenant_id,
                        session_id: recorded.stream_id,
                        message_id: m.message_id,
                        stream_version: m.stream_version,
                        seq: m.seq,
                        created_at: m.created_at,
                    },
                );
            }
            if let Some(cursor) = returned.read_cursor {
                session.read_cursor = Some(cursor);
            }
        }
        Event::GitDiffUpdated(diff) => {
            session.git_diff = (!diff.git_diff.is_empty()).then(|| diff.git_diff.clone());
        }
        Event::SessionEnded(_) => {
            session.status = SessionStatus::Completed;
            session.ended_at = Some(recorded.recorded_at);
        }
    }
    session.version = recorded.stream_version;
    session.last_seq = recorded.seq;
    session.last_activity_at = recorded.recorded_at;
    session.unread_count = state.inbox.len() as i32;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;

    struct Stream {
        tenant: Uuid,
        session: Uuid,
        seq: i64,
        state: Option<SessionState>,
        /// What each user message said (the projection keeps ids only).
        said: std::collections::HashMap<Uuid, String>,
    }

    impl Stream {
        fn new() -> Stream {
            Stream {
                tenant: Uuid::new_v4(),
                session: Uuid::new_v4(),
                seq: 0,
                state: None,
                said: Default::default(),
            }
        }

        fn push(&mut self, event: Event) -> Uuid {
            self.seq += 1;
            let id = Uuid::new_v4();
            if let Event::UserMessage(m) = &event {
                self.said.insert(id, m.content.clone());
            }
            let recorded = RecordedEvent {
                tenant_id: self.tenant,
                seq: self.seq,
                stream_id: self.session,
                stream_version: self.seq as i32,
                event_id: id,
                recorded_at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(self.seq),
                event,
            };
            self.state = Some(apply(self.state.take(), &recorded).unwrap());
            id
        }

        fn session(&self) -> &Session {
            &self.state.as_ref().unwrap().session
        }

        fn unread(&self) -> Vec<&str> {
            let inbox = &self.state.as_ref().unwrap().inbox;
            inbox
                .iter()
                .map(|m| self.said[&m.message_id].as_str())
                .collect()
        }
    }

    fn started() -> Event {
        Event::SessionStarted(SessionStarted {
            agent_type: "claude-code".into(),
        })
    }

    fn agent(content: &str, question: bool) -> Event {
        Event::AgentMessage(AgentMessage {
            content: content.into(),
            requires_user_input: question,
            send_email: None,
            send_sms: None,
            send_push: None,
            message_metadata: None,
            options: None,
            approval: None,
        })
    }

    fn user(content: &str, mark_as_read: bool) -> Event {
        Event::UserMessage(UserMessage {
            content: content.into(),
            mark_as_read,
            ..UserMessage::default()
        })
    }

    #[test]
    fn status_follows_questions_and_replies() {
        let mut s = Stream::new();
        s.push(started());
        s.push(agent("working", false));
        assert_eq!(s.session().status, SessionStatus::Active);
        s.push(agent("may I?", true));
        assert_eq!(s.session().status, SessionStatus::AwaitingInput);
        s.push(user("yes", false));
        assert_eq!(s.session().status, SessionStatus::Active);
        s.push(Event::SessionEnded(SessionEnded {}));
        assert_eq!(s.session().status, SessionStatus::Completed);
        assert!(s.session().ended_at.is_some());
        assert_eq!(s.session().step_count, 1);
    }

    #[test]
    fn agent_messages_consume_the_inbox() {
        let mut s = Stream::new();
        s.push(started());
        let first = s.push(agent("a", false));
        assert_eq!(s.session().read_cursor, Some(first));
        s.push(user("one", false));
        s.push(user("two", false));
        assert_eq!(s.unread(), ["one", "two"]);
        assert_eq!(s.session().unread_count, 2);
        let second = s.push(agent("b", false));
        assert!(s.unread().is_empty());
        assert_eq!(s.session().read_cursor, Some(second));
    }

    #[test]
    fn mark_as_read_moves_the_cursor_past_everything_before() {
        let mut s = Stream::new();
        s.push(started());
        s.push(agent("a", false));
        s.push(user("queued", false));
        let read = s.push(user("delivered elsewhere", true));
        assert!(s.unread().is_empty());
        assert_eq!(s.session().read_cursor, Some(read));
    }

    #[test]
    fn messages_read_drains_up_to_the_named_message() {
        let mut s = Stream::new();
        s.push(started());
        s.push(agent("a", false));
        let one = s.push(user("one", false));
        s.push(user("two", false));
        s.push(Event::MessagesRead(MessagesRead {
            last_read_message_id: one,
        }));
        assert_eq!(s.unread(), ["two"]);
        assert_eq!(s.session().read_cursor, Some(one));
    }

    #[test]
    fn returned_messages_are_unread_again_in_the_order_they_were_said() {
        let mut s = Stream::new();
        s.push(started());
        let question = s.push(agent("deploy?", true));
        s.push(user("yes", false));
        let taken = s.state.as_ref().unwrap().inbox[0].clone();
        s.push(Event::MessagesRead(MessagesRead {
            last_read_message_id: taken.message_id,
        }));
        s.push(user("and tag it", false));
        assert_eq!(s.unread(), ["and tag it"]);
        s.push(Event::MessagesReturned(MessagesReturned {
            messages: vec![ReturnedMessage {
                message_id: taken.message_id,
                stream_version: taken.stream_version,
                seq: taken.seq,
                created_at: taken.created_at,
            }],
            read_cursor: Some(question),
        }));
        assert_eq!(s.unread(), ["yes", "and tag it"]);
        assert_eq!(s.session().read_cursor, Some(question));
        assert_eq!(s.session().unread_count, 2);
        assert_eq!(s.state.as_ref().unwrap().inbox[0], taken);

        // A message that is unread cannot be returned again.
        let mut again = s.state.clone();
        let recorded = RecordedEvent {
            tenant_id: s.tenant,
            seq: s.seq + 1,
            stream_id: s.session,
            stream_version: s.seq as i32 + 1,
            event_id: Uuid::new_v4(),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
            event: Event::MessagesReturned(MessagesReturned {
                messages: vec![ReturnedMessage {
                    message_id: taken.message_id,
                    stream_version: taken.stream_version,
                    seq: taken.seq,
                    created_at: taken.created_at,
                }],
                read_cursor: None,
            }),
        };
        assert!(apply(again.take(), &recorded).is_err());
    }

    #[test]
    fn input_requested_waits_only_without_replies() {
        let mut s = Stream::new();
        s.push(started());
        let step = s.push(agent("a", false));
        s.push(Event::InputRequested(InputRequested { message_id: step }));
        assert_eq!(s.session().status, SessionStatus::AwaitingInput);

        let mut s = Stream::new();
        s.push(started());
        let step = s.push(agent("a", false));
        s.push(user("already answered", false));
        s.push(Event::InputRequested(InputRequested { message_id: step }));
        assert_eq!(s.session().status, SessionStatus::Active);
    }

    #[test]
    fn git_diff_is_set_and_cleared() {
        let mut s = Stream::new();
        s.push(started());
        s.push(Event::GitDiffUpdated(GitDiffUpdated {
            git_diff: "diff --git a b".into(),
        }));
        assert_eq!(s.session().git_diff.as_deref(), Some("diff --git a b"));
        s.push(Event::GitDiffUpdated(GitDiffUpdated {
            git_diff: String::new(),
        }));
        assert_eq!(s.session().git_diff, None);
    }

    #[test]
    fn the_account_stream_is_not_a_session() {
        let tenant = Uuid::new_v4();
        let start = RecordedEvent {
            tenant_id: tenant,
            seq: 1,
            stream_id: tenant,
            stream_version: 1,
            event_id: Uuid::new_v4(),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
            event: started(),
        };
        assert!(apply(None, &start).is_err());
        let mut s = Stream::new();
        s.push(started());
        let rename = RecordedEvent {
            tenant_id: s.tenant,
            seq: 2,
            stream_id: s.session,
            stream_version: 2,
            event_id: Uuid::new_v4(),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
            event: Event::UserRenamed(UserRenamed {
                name: "x".into(),
                email: None,
            }),
        };
        assert!(apply(s.state.clone(), &rename).is_err());
    }

    #[test]
    fn an_inconsistent_log_is_refused() {
        let recorded = RecordedEvent {
            tenant_id: Uuid::new_v4(),
            seq: 1,
            stream_id: Uuid::new_v4(),
            stream_version: 1,
            event_id: Uuid::new_v4(),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
            event: agent("orphan", false),
        };
        assert!(apply(None, &recorded).is_err());
        let mut s = Stream::new();
        s.push(started());
        let mut again = recorded.clone();
        again.stream_version = 5;
        assert!(apply(s.state.clone(), &again).is_err());
    }
}
