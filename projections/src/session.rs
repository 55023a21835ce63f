//! The `sessions`, `inbox` and `questions` read models and the one fold that derives them.
//!
//! [`apply`] is the only place where an event changes a session's state. The append path calls
//! it inside the append transaction; `projections rebuild` calls it over the whole log. Both
//! therefore produce the same rows by construction, and the rebuild check proves it.
//!
//! A session awaits input exactly while it has open questions (see [`crate::question`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::{Actor, Answers, Event, RecordedEvent, SessionDescribed};
use crate::question::{self, Question, QuestionKind, QuestionStatus};

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
    /// Number of its questions that are open.
    pub open_questions: i32,
    /// What the session is about and where its agent runs.
    pub context: SessionContext,
    /// When its agent's process exited, if it has not spoken since.
    pub exited_at: Option<OffsetDateTime>,
}

/// A session's title and where its agent runs, as last described (`session_described`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionContext {
    pub title: Option<String>,
    pub project: Option<String>,
    pub cwd: Option<String>,
    pub branch: Option<String>,
    pub host: Option<String>,
    pub client: Option<String>,
}

impl SessionContext {
    /// Take what `described` says: each field given replaces this one, an empty one clears it.
    fn describe(&mut self, described: &SessionDescribed) {
        let take = |field: &mut Option<String>, given: &Option<String>| {
            if let Some(given) = given {
                *field = (!given.is_empty()).then(|| given.clone());
            }
        };
        take(&mut self.title, &described.title);
        take(&mut self.project, &described.project);
        take(&mut self.cwd, &described.cwd);
        take(&mut self.branch, &described.branch);
        take(&mut self.host, &described.host);
        take(&mut self.client, &described.client);
    }
}

/// At most this many characters of a prompt name a session.
pub const TITLE_FROM_PROMPT_CHARS: usize = 80;

/// A title made of a prompt's first line (at most [`TITLE_FROM_PROMPT_CHARS`] characters).
fn title_from(prompt: &str) -> Option<String> {
    let line = prompt.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(match line.char_indices().nth(TITLE_FROM_PROMPT_CHARS - 1) {
        Some((end, _)) if line[end..].chars().nth(1).is_some() => format!("{}…", &line[..end]),
        _ => line.to_owned(),
    })
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

/// Everything the projections hold about one session that its commands decide on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    pub session: Session,
    /// Unread user messages, oldest first.
    pub inbox: Vec<InboxMessage>,
    /// Its open questions, oldest first (closed ones are only in the `questions` table).
    pub questions: Vec<Question>,
}

impl SessionState {
    /// The open question with this id.
    pub fn open_question(&self, id: Uuid) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    /// The newest open question: what a message that names none answers.
    pub fn newest_open_question(&self) -> Option<&Question> {
        self.questions.last()
    }
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
/// Every `questions` row the event opens or closes is pushed onto `questions` (as it now is).
pub fn apply(
    state: Option<SessionState>,
    recorded: &RecordedEvent,
    questions: &mut Vec<Question>,
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
                    open_questions: 0,
                    context: SessionContext::default(),
                    exited_at: None,
                },
                inbox: Vec::new(),
                questions: Vec::new(),
            });
        }
        (None, _) => return Err(fail("the session has not started")),
        (Some(_), Event::SessionStarted(_)) => return Err(fail("the session started twice")),
        (Some(state), _) => state,
    };
    if recorded.stream_version != state.session.version + 1 {
        return Err(fail("stream version does not follow the previous one"));
    }

    let ended = state.session.status == SessionStatus::Completed;
    let opened = |kind, expires_at| Question {
        tenant_id: recorded.tenant_id,
        session_id: recorded.stream_id,
        id: recorded.event_id,
        kind,
        status: QuestionStatus::Open,
        asked_at: recorded.recorded_at,
        asked_seq: recorded.seq,
        expires_at,
        closed_at: None,
        closed_seq: None,
        closed_by: None,
        answer_id: None,
        reason: None,
    };
    match &recorded.event {
        Event::SessionStarted(_)
        | Event::UserCreated(_)
        | Event::UserRenamed(_)
        | Event::NotificationChannelAdded(_)
        | Event::NotificationChannelRemoved(_)
        | Event::NotificationPolicyChanged(_)
        | Event::AppConnected(_)
        | Event::AppDisconnected(_) => unreachable!("handled above"),
        Event::AgentMessage(message) => {
            // The agent speaks: it runs.
            state.session.exited_at = None;
            if !message.requires_user_input {
                state.session.step_count += 1;
            }
            if !message.leaves_unread {
                state.session.read_cursor = Some(recorded.event_id);
                state.inbox.clear();
            }
            if message.requires_user_input {
                if ended {
                    return Err(fail("a question in an ended session"));
                }
                let asked = opened(QuestionKind::of(message), message.expires_at);
                questions.push(asked.clone());
                state.questions.push(asked);
            }
        }
        Event::UserMessage(message) if message.terminal => {
            // Typed in the agent's own terminal: delivered there; not queued, answers nothing.
            if !matches!(message.answers, Answers::Unstated | Answers::Nothing) {
                return Err(fail("a terminal message answers a question"));
            }
            // A session nobody named is named after what its person first asked there.
            if state.session.context.title.is_none() {
                state.session.context.title = title_from(&message.content);
            }
        }
        Event::UserMessage(message) => {
            let answered = match message.answers {
                Answers::Unstated => state.questions.last().map(|q| q.id),
                Answers::Nothing => None,
                Answers::Question(id) if state.open_question(id).is_some() => Some(id),
                Answers::Question(_) => {
                    return Err(fail("user_message answers a question that is not open"));
                }
            };
            if let Some(id) = answered {
                let closed = close(&mut state, id, recorded, QuestionStatus::Answered, |q| {
                    q.closed_by = Some(Actor::User);
                    q.answer_id = Some(recorded.event_id);
                });
                questions.extend(closed);
            }
            if message.mark_as_read {
                state.session.read_cursor = Some(recorded.event_id);
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
        Event::InputRequested(request) => {
            if ended {
                return Err(fail("a question in an ended session"));
            }
            if state.open_question(request.message_id).is_some() {
                return Err(fail("input_requested for a question that is open"));
            }
            let mut asked = opened(QuestionKind::Question, None);
            asked.id = request.message_id;
            if let Some(answer) = request.answer_id {
                // The person had already replied: that reply answers it at once.
                asked.status = QuestionStatus::Answered;
                asked.closed_at = Some(recorded.recorded_at);
                asked.closed_seq = Some(recorded.seq);
                asked.closed_by = Some(Actor::User);
                asked.answer_id = Some(answer);
                questions.push(asked);
            } else {
                questions.push(asked.clone());
                state.questions.push(asked);
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
            state.session.read_cursor = Some(read.last_read_message_id);
        }
        Event::MessagesReceived(received) => {
            for id in &received.message_ids {
                let Some(at) = state.inbox.iter().position(|m| m.message_id == *id) else {
                    return Err(fail("messages_received names a message that is not unread"));
                };
                state.inbox.remove(at);
            }
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
                state.session.read_cursor = Some(cursor);
            }
        }
        Event::QuestionWithdrawn(withdrawn) => {
            let closed = close(
                &mut state,
                withdrawn.question_id,
                recorded,
                QuestionStatus::Withdrawn,
                |q| {
                    q.closed_by = Some(withdrawn.by);
                    q.reason = Some(withdrawn.reason.clone());
                },
            )
            .ok_or_else(|| fail("question_withdrawn names a question that is not open"))?;
            questions.push(closed);
        }
        Event::QuestionExpired(expired) => {
            let closed = close(
                &mut state,
                expired.question_id,
                recorded,
                QuestionStatus::Expired,
                |q| q.closed_by = Some(Actor::System),
            )
            .ok_or_else(|| fail("question_expired names a question that is not open"))?;
            questions.push(closed);
        }
        Event::SessionDescribed(described) => state.session.context.describe(described),
        Event::AgentExited(exited) => {
            state.session.exited_at = Some(recorded.recorded_at);
            let reason = format!("the agent exited ({})", exited.reason);
            for mut q in std::mem::take(&mut state.questions) {
                q.status = QuestionStatus::Withdrawn;
                q.closed_at = Some(recorded.recorded_at);
                q.closed_seq = Some(recorded.seq);
                q.closed_by = Some(Actor::Agent);
                q.reason = Some(reason.clone());
                questions.push(q);
            }
        }
        Event::GitDiffUpdated(diff) => {
            state.session.git_diff = (!diff.git_diff.is_empty()).then(|| diff.git_diff.clone());
        }
        Event::SessionEnded(end) => {
            state.session.status = SessionStatus::Completed;
            state.session.ended_at = Some(recorded.recorded_at);
            for mut q in std::mem::take(&mut state.questions) {
                q.status = QuestionStatus::Withdrawn;
                q.closed_at = Some(recorded.recorded_at);
                q.closed_seq = Some(recorded.seq);
                q.closed_by = end.by;
                q.reason = Some(question::SESSION_ENDED.to_owned());
                questions.push(q);
            }
        }
    }
    let session = &mut state.session;
    if session.status != SessionStatus::Completed {
        session.status = if state.questions.is_empty() {
            SessionStatus::Active
        } else {
            SessionStatus::AwaitingInput
        };
    }
    session.open_questions = state.questions.len() as i32;
    session.version = recorded.stream_version;
    session.last_seq = recorded.seq;
    session.last_activity_at = recorded.recorded_at;
    session.unread_count = state.inbox.len() as i32;
    Ok(state)
}

/// Close the open question `id` of `state` with `status` at `recorded`, finished by `finish`;
/// the closed row, or `None` when no such question is open.
fn close(
    state: &mut SessionState,
    id: Uuid,
    recorded: &RecordedEvent,
    status: QuestionStatus,
    finish: impl FnOnce(&mut Question),
) -> Option<Question> {
    let at = state.questions.iter().position(|q| q.id == id)?;
    let mut q = state.questions.remove(at);
    q.status = status;
    q.closed_at = Some(recorded.recorded_at);
    q.closed_seq = Some(recorded.seq);
    finish(&mut q);
    Some(q)
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
        /// Every `questions` row as last written, by id.
        rows: std::collections::HashMap<Uuid, Question>,
    }

    impl Stream {
        fn new() -> Stream {
            Stream {
                tenant: Uuid::new_v4(),
                session: Uuid::new_v4(),
                seq: 0,
                state: None,
                said: Default::default(),
                rows: Default::default(),
            }
        }

        fn push(&mut self, event: Event) -> Uuid {
            self.try_push(event).unwrap()
        }

        fn try_push(&mut self, event: Event) -> Result<Uuid, ProjectionError> {
            let seq = self.seq + 1;
            let id = Uuid::new_v4();
            let said = match &event {
                Event::UserMessage(m) => Some(m.content.clone()),
                _ => None,
            };
            let recorded = RecordedEvent {
                tenant_id: self.tenant,
                seq,
                stream_id: self.session,
                stream_version: seq as i32,
                event_id: id,
                recorded_at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seq),
                event,
            };
            let mut changed = Vec::new();
            self.state = Some(apply(self.state.clone(), &recorded, &mut changed)?);
            self.seq = seq;
            if let Some(said) = said {
                self.said.insert(id, said);
            }
            for q in changed {
                self.rows.insert(q.id, q);
            }
            Ok(id)
        }

        fn row(&self, id: Uuid) -> &Question {
            &self.rows[&id]
        }

        fn open(&self) -> Vec<Uuid> {
            let state = self.state.as_ref().unwrap();
            state.questions.iter().map(|q| q.id).collect()
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
            ..AgentMessage::default()
        })
    }

    fn approval(command: &str) -> Event {
        Event::AgentMessage(AgentMessage {
            content: format!("May I run {command}?"),
            requires_user_input: true,
            options: Some(vec!["Allow".into(), "Deny".into()]),
            approval: Some(Approval {
                tool_name: "Bash".into(),
                input: serde_json::Map::from_iter([("command".into(), command.into())]),
                tool_use_id: None,
                suggestions: Vec::new(),
                input_fixed: false,
            }),
            ..AgentMessage::default()
        })
    }

    fn user(content: &str, mark_as_read: bool) -> Event {
        Event::UserMessage(UserMessage {
            content: content.into(),
            mark_as_read,
            ..UserMessage::default()
        })
    }

    fn answer(content: &str, question: Uuid) -> Event {
        Event::UserMessage(UserMessage {
            content: content.into(),
            answers: Answers::Question(question),
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
        s.push(Event::SessionEnded(SessionEnded::default()));
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
        assert!(apply(again.take(), &recorded, &mut Vec::new()).is_err());
    }

    #[test]
    fn input_requested_waits_only_without_replies() {
        let mut s = Stream::new();
        s.push(started());
        let step = s.push(agent("a", false));
        s.push(Event::InputRequested(InputRequested {
            message_id: step,
            answer_id: None,
        }));
        assert_eq!(s.session().status, SessionStatus::AwaitingInput);
        assert_eq!(s.open(), [step]);

        let mut s = Stream::new();
        s.push(started());
        let step = s.push(agent("a", false));
        let reply = s.push(user("already answered", false));
        s.push(Event::InputRequested(InputRequested {
            message_id: step,
            answer_id: Some(reply),
        }));
        assert_eq!(s.session().status, SessionStatus::Active);
        assert_eq!(s.row(step).status, QuestionStatus::Answered);
        assert_eq!(s.row(step).answer_id, Some(reply));
    }

    #[test]
    fn several_questions_are_open_at_once_and_each_answer_closes_its_own() {
        let mut s = Stream::new();
        s.push(started());
        let a = s.push(approval("ls build"));
        let b = s.push(approval("git push --force origin main"));
        s.push(agent("still working", false));
        assert_eq!(s.open(), [a, b]);
        assert_eq!(s.session().status, SessionStatus::AwaitingInput);
        assert_eq!(s.session().open_questions, 2);
        assert_eq!(s.row(a).kind, QuestionKind::Approval);

        let allow_a = s.push(answer("Allow", a));
        assert_eq!(s.open(), [b]);
        assert_eq!(s.row(a).status, QuestionStatus::Answered);
        assert_eq!(s.row(a).answer_id, Some(allow_a));
        assert_eq!(s.row(a).closed_by, Some(Actor::User));
        assert!(s.row(b).is_open());
        assert_eq!(s.session().status, SessionStatus::AwaitingInput);

        // A second answer to a closed question is a log that contradicts itself.
        assert!(s.try_push(answer("Deny", a)).is_err());
        s.push(answer("Deny", b));
        assert_eq!(s.session().status, SessionStatus::Active);
        assert_eq!(s.session().open_questions, 0);
    }

    #[test]
    fn an_unstated_answer_takes_the_newest_open_question_and_null_takes_none() {
        let mut s = Stream::new();
        s.push(started());
        let older = s.push(agent("which database?", true));
        let newer = s.push(agent("which port?", true));
        s.push(Event::UserMessage(UserMessage {
            content: "just saying".into(),
            answers: Answers::Nothing,
            ..UserMessage::default()
        }));
        assert_eq!(s.open(), [older, newer]);
        s.push(user("5432", false));
        assert_eq!(s.open(), [older]);
        assert_eq!(s.row(newer).status, QuestionStatus::Answered);
        assert_eq!(s.unread(), ["just saying", "5432"]);
    }

    #[test]
    fn questions_are_withdrawn_expire_and_close_when_the_session_ends() {
        let mut s = Stream::new();
        s.push(started());
        let gave_up = s.push(approval("touch x"));
        let timed = s.push(agent("deploy?", true));
        let left = s.push(agent("anything else?", true));
        s.push(Event::QuestionWithdrawn(QuestionWithdrawn {
            question_id: gave_up,
            by: Actor::Agent,
            reason: "the hook timed out".into(),
        }));
        assert_eq!(s.row(gave_up).status, QuestionStatus::Withdrawn);
        assert_eq!(s.row(gave_up).reason.as_deref(), Some("the hook timed out"));
        assert_eq!(s.row(gave_up).closed_by, Some(Actor::Agent));
        s.push(Event::QuestionExpired(QuestionExpired {
            question_id: timed,
        }));
        assert_eq!(s.row(timed).status, QuestionStatus::Expired);
        assert!(
            s.try_push(Event::QuestionExpired(QuestionExpired {
                question_id: timed
            }))
            .is_err()
        );
        s.push(Event::SessionEnded(SessionEnded {
            by: Some(Actor::User),
        }));
        assert_eq!(s.row(left).status, QuestionStatus::Withdrawn);
        assert_eq!(s.row(left).closed_by, Some(Actor::User));
        assert_eq!(s.row(left).reason.as_deref(), Some(question::SESSION_ENDED));
        assert_eq!(s.session().status, SessionStatus::Completed);
        assert!(s.try_push(agent("one more?", true)).is_err());
    }

    #[test]
    fn messages_received_leave_the_inbox_wherever_they_are_and_keep_the_cursor() {
        let mut s = Stream::new();
        s.push(started());
        let q = s.push(agent("ok?", true));
        s.push(Event::UserMessage(UserMessage {
            content: "first a note".into(),
            answers: Answers::Nothing,
            ..UserMessage::default()
        }));
        let yes = s.push(answer("yes", q));
        s.push(user("and another", false));
        s.push(Event::MessagesReceived(MessagesReceived {
            message_ids: vec![yes],
        }));
        assert_eq!(s.unread(), ["first a note", "and another"]);
        assert_eq!(s.session().read_cursor, Some(q));
        assert!(
            s.try_push(Event::MessagesReceived(MessagesReceived {
                message_ids: vec![yes],
            }))
            .is_err()
        );
    }

    #[test]
    fn messages_that_leave_the_inbox_unread_do_not_consume_it() {
        let mut s = Stream::new();
        s.push(started());
        let step = s.push(agent("a", false));
        s.push(user("STOP: do not touch prod", false));
        s.push(Event::AgentMessage(AgentMessage {
            content: "Claude Code: waiting".into(),
            leaves_unread: true,
            ..AgentMessage::default()
        }));
        assert_eq!(s.unread(), ["STOP: do not touch prod"]);
        assert_eq!(s.session().read_cursor, Some(step));
    }

    #[test]
    fn an_agent_that_exits_withdraws_its_questions_until_it_speaks_again() {
        let mut s = Stream::new();
        s.push(started());
        let q = s.push(approval("touch x"));
        s.push(Event::UserMessage(UserMessage {
            content: "queued while it ran".into(),
            answers: Answers::Nothing,
            ..UserMessage::default()
        }));
        s.push(Event::AgentExited(AgentExited {
            reason: "prompt_input_exit".into(),
        }));
        assert_eq!(s.row(q).status, QuestionStatus::Withdrawn);
        assert_eq!(
            s.row(q).reason.as_deref(),
            Some("the agent exited (prompt_input_exit)")
        );
        assert!(s.session().exited_at.is_some());
        assert_eq!(s.session().status, SessionStatus::Active);
        // The message waits for the agent's next run, and the terminal's words are not queued.
        s.push(Event::UserMessage(UserMessage {
            content: "typed in the terminal".into(),
            mark_as_read: true,
            terminal: true,
            ..UserMessage::default()
        }));
        assert_eq!(s.unread(), ["queued while it ran"]);
        s.push(agent("started again", false));
        assert_eq!(s.session().exited_at, None);
    }

    #[test]
    fn a_session_nobody_named_is_named_after_its_first_prompt() {
        let mut s = Stream::new();
        s.push(started());
        let typed = |content: &str| {
            Event::UserMessage(UserMessage {
                content: content.into(),
                mark_as_read: true,
                terminal: true,
                ..UserMessage::default()
            })
        };
        s.push(typed(&format!(
            "\n  Fix the login bug {}\nthen the tests",
            "x".repeat(100)
        )));
        let title = s.session().context.title.clone().unwrap();
        assert!(title.starts_with("Fix the login bug x"), "{title}");
        assert_eq!(title.chars().count(), TITLE_FROM_PROMPT_CHARS);
        s.push(typed("something else"));
        assert_eq!(s.session().context.title, Some(title));
        // A name given is kept.
        s.push(Event::SessionDescribed(SessionDescribed {
            title: Some("Login".into()),
            ..SessionDescribed::default()
        }));
        s.push(typed("and more"));
        assert_eq!(s.session().context.title.as_deref(), Some("Login"));
    }

    #[test]
    fn descriptions_replace_and_clear_the_sessions_context() {
        let mut s = Stream::new();
        s.push(started());
        s.push(Event::SessionDescribed(SessionDescribed {
            title: Some("Fix login".into()),
            cwd: Some("/src/app".into()),
            ..SessionDescribed::default()
        }));
        s.push(Event::SessionDescribed(SessionDescribed {
            cwd: Some(String::new()),
            branch: Some("main".into()),
            ..SessionDescribed::default()
        }));
        let context = &s.session().context;
        assert_eq!(context.title.as_deref(), Some("Fix login"));
        assert_eq!(context.cwd, None);
        assert_eq!(context.branch.as_deref(), Some("main"));
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
        assert!(apply(None, &start, &mut Vec::new()).is_err());
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
        assert!(apply(s.state.clone(), &rename, &mut Vec::new()).is_err());
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
        assert!(apply(None, &recorded, &mut Vec::new()).is_err());
        let mut s = Stream::new();
        s.push(started());
        let mut again = recorded.clone();
        again.stream_version = 5;
        assert!(apply(s.state.clone(), &again, &mut Vec::new()).is_err());
    }
}
