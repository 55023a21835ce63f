//! The event vocabulary: everything an agent or a person can say, as it is stored in the log.
//!
//! Events are facts in the past tense. Each is stored as its `event_type` name plus a JSON
//! `data` object; both are part of the hash chain, so renaming a type or a field is a
//! breaking change to every stored log. Add new variants, never alter old ones.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// One fact about one stream of a tenant's log: a session (the stream id is the session id)
/// or the tenant's account (the stream id is the tenant id; see [`Event::is_account_event`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    SessionStarted(SessionStarted),
    AgentMessage(AgentMessage),
    UserMessage(UserMessage),
    InputRequested(InputRequested),
    MessagesRead(MessagesRead),
    GitDiffUpdated(GitDiffUpdated),
    SessionEnded(SessionEnded),
    MessagesReturned(MessagesReturned),
    MessagesReceived(MessagesReceived),
    QuestionWithdrawn(QuestionWithdrawn),
    QuestionExpired(QuestionExpired),
    SessionDescribed(SessionDescribed),
    AgentExited(AgentExited),
    UserCreated(UserCreated),
    UserRenamed(UserRenamed),
    NotificationChannelAdded(NotificationChannelAdded),
    NotificationChannelRemoved(NotificationChannelRemoved),
    NotificationPolicyChanged(NotificationPolicyChanged),
    AppConnected(AppConnected),
    AppDisconnected(AppDisconnected),
}

/// The tenant's account came into being: the first event of its account stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserCreated {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The account's name (and, when given, e-mail address) changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRenamed {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The account gained a notification channel. Only what may be shown is recorded: the
/// target and its secret (webhook URL and signing secret, push keys, email address) are not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationChannelAdded {
    pub channel_id: Uuid,
    /// `webhook`, `email` or `web_push`.
    pub kind: String,
    /// The webhook's origin, the push service, or the mailbox's domain.
    pub description: String,
}

/// The account's notification channel was removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationChannelRemoved {
    pub channel_id: Uuid,
}

/// The account's notification policy changed: the whole policy now in force (what notifies
/// which kind of channel, quiet hours, escalation, coalescing, presence; no secrets), as the
/// server defines it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationPolicyChanged {
    pub policy: Map<String, Value>,
}

/// The person connected an application (an MCP host that signed in by OAuth) to the account:
/// it holds an API key of the account (`key_id`) for the MCP endpoint. No token, no secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppConnected {
    pub key_id: Uuid,
    /// The OAuth client: its metadata document's URL, or the id it registered under.
    pub client_id: String,
    /// The name it gave, as shown on the consent page.
    pub client_name: String,
    /// Where the authorization went back to (scheme and host of the redirect URI).
    pub redirect_host: String,
    pub scope: String,
}

/// A connected application lost its access: the person or the operator disconnected it, or
/// the server did on a sign of theft (a refresh token or an authorization code used twice).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppDisconnected {
    pub key_id: Uuid,
    pub reason: String,
}

/// A session came into being; the first event of every stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionStarted {
    pub agent_type: String,
}

/// The agent said something. Its event id is the message id. The agent's read cursor moves
/// to this message: user messages before it are considered delivered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentMessage {
    pub content: String,
    pub requires_user_input: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_sms: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_push: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_metadata: Option<Map<String, Value>>,
    /// The choices a question offers; an answer equal to one records it as chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    /// The question asks leave to run a tool (its options are "Allow" and "Deny").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The agent finished its turn and asks what to do next (a question of its own kind).
    #[serde(default, skip_serializing_if = "is_false")]
    pub next_instruction: bool,
    /// A question's deadline: unanswered by then, it expires.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<OffsetDateTime>,
    /// The agent did not receive the person's queued messages with this message (a hook event
    /// whose host cannot take them): they stay unread and the read cursor stays where it was.
    #[serde(default, skip_serializing_if = "is_false")]
    pub leaves_unread: bool,
    /// The message reports a tool the agent used (a coding agent's hook saw it run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<ToolActivity>,
}

/// A tool call an agent made, as its host reported it afterwards: compact and bounded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolActivity {
    pub tool: String,
    /// What it was used on: the command, the file, the pattern, the URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// Whether it succeeded (false: it failed or was interrupted).
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The beginning of what it printed or returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A tool call an agent asks the person to allow, as the agent's host described it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub tool_name: String,
    pub input: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// Permission rules the agent's host offers to add with the decision (Claude Code's
    /// `permission_suggestions`): answering "Always allow" allows this call and adds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Value>,
    /// The host runs the call as asked or not at all (Codex, Gemini CLI): no edited input.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub input_fixed: bool,
}

impl Approval {
    /// The options every approval offers.
    pub const ALLOW: &'static str = "Allow";
    pub const DENY: &'static str = "Deny";
    /// Offered besides when the host suggests permission rules.
    pub const ALWAYS_ALLOW: &'static str = "Always allow";

    /// The options this approval offers.
    pub fn options(&self) -> Vec<String> {
        Approval::offered(!self.suggestions.is_empty())
    }

    /// The options an approval offers, as its host suggests permission rules or not.
    pub fn offered(suggests: bool) -> Vec<String> {
        let mut options = vec![Approval::ALLOW.to_owned()];
        if suggests {
            options.push(Approval::ALWAYS_ALLOW.to_owned());
        }
        options.push(Approval::DENY.to_owned());
        options
    }

    /// Whether choosing `option` allows the call.
    pub fn allows(option: Option<&str>) -> bool {
        matches!(option, Some(Approval::ALLOW | Approval::ALWAYS_ALLOW))
    }
}

/// The person said something. Its event id is the message id. With `mark_as_read` the
/// message was delivered by other means and the read cursor moves past it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserMessage {
    pub content: String,
    pub mark_as_read: bool,
    /// The option of the open question this answer chose (its content equals it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_option: Option<String>,
    /// For an answer that allows a tool call: the input the person edited it to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_input: Option<Map<String, Value>>,
    /// The person typed it in the agent's own terminal (its host reported it): it was
    /// delivered there, so it is neither queued nor moves the read cursor, and answers nothing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub terminal: bool,
    /// The question this message answers (`question_id`: a question's id, or `null` for a
    /// message that answers none although questions were open).
    #[serde(
        default,
        rename = "question_id",
        skip_serializing_if = "Answers::is_unstated",
        with = "answers_serde"
    )]
    pub answers: Answers,
}

/// Which question a person's message answers, as its event records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Answers {
    /// Not recorded: the message was said while no question was open, or before answers named
    /// their questions. It answers the session's newest open question, if there is one.
    #[default]
    Unstated,
    /// It answers no question (stored as `"question_id": null`).
    Nothing,
    /// It answers this question.
    Question(Uuid),
}

impl Answers {
    fn is_unstated(&self) -> bool {
        *self == Answers::Unstated
    }

    /// The question named, when one is.
    pub fn question(&self) -> Option<Uuid> {
        match self {
            Answers::Question(id) => Some(*id),
            Answers::Unstated | Answers::Nothing => None,
        }
    }
}

/// `question_id` absent, `null`, or a question's id.
mod answers_serde {
    use super::Answers;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use uuid::Uuid;

    pub fn serialize<S: Serializer>(answers: &Answers, s: S) -> Result<S::Ok, S::Error> {
        answers.question().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Answers, D::Error> {
        Ok(match Option::<Uuid>::deserialize(d)? {
            Some(id) => Answers::Question(id),
            None => Answers::Nothing,
        })
    }
}

/// An earlier agent message became a question. When the person had already replied, the
/// first reply waiting answers it at once (`answer_id`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputRequested {
    pub message_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_id: Option<Uuid>,
}

/// The agent received the user messages up to and including `last_read_message_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesRead {
    pub last_read_message_id: Uuid,
}

/// User messages the agent was handed but never received are unread again: the call that
/// took them was cancelled, or its client hung up, before the result went out. Each message
/// is named with the position its inbox row holds (a fold sees no other event), and the read
/// cursor, when `read_cursor` is set, goes back there (to the question the messages
/// answered), so the agent's next read delivers them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesReturned {
    pub messages: Vec<ReturnedMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_cursor: Option<Uuid>,
}

/// A user message returned to the inbox, where it was said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReturnedMessage {
    pub message_id: Uuid,
    pub stream_version: i32,
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The working tree's diff as the agent last reported it; empty clears it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GitDiffUpdated {
    pub git_diff: String,
}

/// The session is over; no more messages are accepted, and its open questions are withdrawn.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionEnded {
    /// Who ended it (absent in events from before this was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
}

/// The agent received these unread user messages (the answers it waited for), wherever they
/// are in its inbox; the read cursor stays where it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesReceived {
    pub message_ids: Vec<Uuid>,
}

/// Nobody waits for the question any more: its asker gave up on it for good (a hook that timed
/// out or denied on timeout, an MCP call abandoned and not resumed), or the operator did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionWithdrawn {
    pub question_id: Uuid,
    pub by: Actor,
    /// Why, for the person who finds it closed.
    pub reason: String,
}

/// The agent's process exited (a coding agent's session ended): it waits for nothing any more,
/// so its open questions are withdrawn; what the person sends now waits for it to run again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentExited {
    pub reason: String,
}

/// The question's deadline passed without an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionExpired {
    pub question_id: Uuid,
}

/// What the session is about and where it runs, as its agent or its person described it. Each
/// field given replaces the one before; an empty text clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescribed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The project (repository) the agent works on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The agent's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The machine the agent runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The agent's client program and version (MCP `clientInfo`, a hook's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl SessionDescribed {
    pub fn is_empty(&self) -> bool {
        *self == SessionDescribed::default()
    }
}

/// Who caused an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Agent,
    User,
    System,
}

/// Facts about the request that appended an event; stored beside `data`, hashed with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: Actor,
    /// The API key (`jti`) that authorised the append, when there was one.
    #[serde(default)]
    pub key_id: Option<Uuid>,
    /// The kind of client: `claude-code`, `cursor`, `python-sdk`, ...
    #[serde(default)]
    pub client_type: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    /// The inbox sign-in (web session) of the person who appended it, when it was one.
    /// Absent otherwise, so events from before it existed still parse and hash the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_session: Option<Uuid>,
    /// Where an imported event came from. Absent on everything Switchboard recorded itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<Imported>,
}

/// The provenance of an event brought over from another system: which, when, and the row it
/// was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// `omnara`.
    pub from: String,
    /// The source's schema version (for omnara, its alembic revision).
    pub schema: String,
    /// The source table and row id.
    pub table: String,
    pub id: String,
    /// When the import ran (RFC 3339).
    pub at: String,
}

/// An event as the log holds it: positioned in its tenant's sequence and its session's stream.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub tenant_id: Uuid,
    /// Position in the tenant's log: 1, 2, 3, ... without gaps, in commit order.
    pub seq: i64,
    pub stream_id: Uuid,
    /// Position in the session's stream: 1, 2, 3, ...
    pub stream_version: i32,
    pub event_id: Uuid,
    pub recorded_at: OffsetDateTime,
    pub event: Event,
}

/// An event's stored type name or data did not parse: the log holds something this
/// version does not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEvent {
    pub event_type: String,
    pub reason: String,
}

impl std::fmt::Display for UnknownEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event type {:?} does not parse: {}",
            self.event_type, self.reason
        )
    }
}

impl std::error::Error for UnknownEvent {}

impl Event {
    /// The name stored in the `event_type` column.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::SessionStarted(_) => "session_started",
            Event::AgentMessage(_) => "agent_message",
            Event::UserMessage(_) => "user_message",
            Event::InputRequested(_) => "input_requested",
            Event::MessagesRead(_) => "messages_read",
            Event::GitDiffUpdated(_) => "git_diff_updated",
            Event::SessionEnded(_) => "session_ended",
            Event::MessagesReturned(_) => "messages_returned",
            Event::MessagesReceived(_) => "messages_received",
            Event::QuestionWithdrawn(_) => "question_withdrawn",
            Event::QuestionExpired(_) => "question_expired",
            Event::SessionDescribed(_) => "session_described",
            Event::AgentExited(_) => "agent_exited",
            Event::UserCreated(_) => "user_created",
            Event::UserRenamed(_) => "user_renamed",
            Event::NotificationChannelAdded(_) => "notification_channel_added",
            Event::NotificationChannelRemoved(_) => "notification_channel_removed",
            Event::NotificationPolicyChanged(_) => "notification_policy_changed",
            Event::AppConnected(_) => "app_connected",
            Event::AppDisconnected(_) => "app_disconnected",
        }
    }

    /// True for events about the tenant's account rather than one session. They live on the
    /// account stream, whose id is the tenant id.
    pub fn is_account_event(&self) -> bool {
        matches!(
            self,
            Event::UserCreated(_)
                | Event::UserRenamed(_)
                | Event::NotificationChannelAdded(_)
                | Event::NotificationChannelRemoved(_)
                | Event::NotificationPolicyChanged(_)
                | Event::AppConnected(_)
                | Event::AppDisconnected(_)
        )
    }

    /// The JSON stored in the `data` column.
    pub fn data_json(&self) -> String {
        let data = match self {
            Event::SessionStarted(d) => serde_json::to_string(d),
            Event::AgentMessage(d) => serde_json::to_string(d),
            Event::UserMessage(d) => serde_json::to_string(d),
            Event::InputRequested(d) => serde_json::to_string(d),
            Event::MessagesRead(d) => serde_json::to_string(d),
            Event::GitDiffUpdated(d) => serde_json::to_string(d),
            Event::SessionEnded(d) => serde_json::to_string(d),
            Event::MessagesReturned(d) => serde_json::to_string(d),
            Event::MessagesReceived(d) => serde_json::to_string(d),
            Event::QuestionWithdrawn(d) => serde_json::to_string(d),
            Event::QuestionExpired(d) => serde_json::to_string(d),
            Event::SessionDescribed(d) => serde_json::to_string(d),
            Event::AgentExited(d) => serde_json::to_string(d),
            Event::UserCreated(d) => serde_json::to_string(d),
            Event::UserRenamed(d) => serde_json::to_string(d),
            Event::NotificationChannelAdded(d) => serde_json::to_string(d),
            Event::NotificationChannelRemoved(d) => serde_json::to_string(d),
            Event::NotificationPolicyChanged(d) => serde_json::to_string(d),
            Event::AppConnected(d) => serde_json::to_string(d),
            Event::AppDisconnected(d) => serde_json::to_string(d),
        };
        data.expect("event data always serializes")
    }

    /// Parse a stored `(event_type, data)` pair.
    pub fn from_stored(event_type: &str, data: &str) -> Result<Event, UnknownEvent> {
        fn parse<T: serde::de::DeserializeOwned>(
            event_type: &str,
            data: &str,
            wrap: fn(T) -> Event,
        ) -> Result<Event, UnknownEvent> {
            serde_json::from_str(data)
                .map(wrap)
                .map_err(|e| UnknownEvent {
                    event_type: event_type.to_owned(),
                    reason: e.to_string(),
                })
        }
        match event_type {
            "session_started" => parse(event_type, data, Event::SessionStarted),
            "agent_message" => parse(event_type, data, Event::AgentMessage),
            "user_message" => parse(event_type, data, Event::UserMessage),
            "input_requested" => parse(event_type, data, Event::InputRequested),
            "messages_read" => parse(event_type, data, Event::MessagesRead),
            "git_diff_updated" => parse(event_type, data, Event::GitDiffUpdated),
            "session_ended" => parse(event_type, data, Event::SessionEnded),
            "messages_returned" => parse(event_type, data, Event::MessagesReturned),
            "messages_received" => parse(event_type, data, Event::MessagesReceived),
            "question_withdrawn" => parse(event_type, data, Event::QuestionWithdrawn),
            "question_expired" => parse(event_type, data, Event::QuestionExpired),
            "session_described" => parse(event_type, data, Event::SessionDescribed),
            "agent_exited" => parse(event_type, data, Event::AgentExited),
            "user_created" => parse(event_type, data, Event::UserCreated),
            "user_renamed" => parse(event_type, data, Event::UserRenamed),
            "notification_channel_added" => {
                parse(event_type, data, Event::NotificationChannelAdded)
            }
            "notification_channel_removed" => {
                parse(event_type, data, Event::NotificationChannelRemoved)
            }
            "notification_policy_changed" => {
                parse(event_type, data, Event::NotificationPolicyChanged)
            }
            "app_connected" => parse(event_type, data, Event::AppConnected),
            "app_disconnected" => parse(event_type, data, Event::AppDisconnected),
            other => Err(UnknownEvent {
                event_type: other.to_owned(),
                reason: "unknown event type".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_stored_form() {
        let events = [
            Event::SessionStarted(SessionStarted {
                agent_type: "claude-code".into(),
            }),
            Event::AgentMessage(AgentMessage {
                content: "step".into(),
                requires_user_input: true,
                send_email: Some(false),
                send_sms: None,
                send_push: Some(true),
                message_metadata: Some(Map::from_iter([("k".into(), Value::from(1))])),
                options: Some(vec!["Allow".into(), "Deny".into()]),
                approval: Some(Approval {
                    tool_name: "Bash".into(),
                    input: Map::from_iter([("command".into(), Value::from("ls"))]),
                    tool_use_id: Some("toolu_1".into()),
                    suggestions: Vec::new(),
                    input_fixed: false,
                }),
                next_instruction: true,
                expires_at: Some(
                    OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(1_234_567),
                ),
                leaves_unread: true,
                activity: Some(ToolActivity {
                    tool: "Bash".into(),
                    summary: "cargo test".into(),
                    ok: false,
                    duration_ms: Some(1200),
                    output: Some("1 failed".into()),
                }),
            }),
            Event::UserMessage(UserMessage {
                content: "Allow".into(),
                mark_as_read: false,
                chosen_option: Some("Allow".into()),
                updated_input: Some(Map::from_iter([("command".into(), Value::from("ls -a"))])),
                terminal: false,
                answers: Answers::Question(Uuid::nil()),
            }),
            Event::UserMessage(UserMessage {
                content: "not an answer".into(),
                answers: Answers::Nothing,
                ..UserMessage::default()
            }),
            Event::UserMessage(UserMessage {
                content: "fix the login bug".into(),
                mark_as_read: true,
                terminal: true,
                ..UserMessage::default()
            }),
            Event::AgentExited(AgentExited {
                reason: "prompt_input_exit".into(),
            }),
            Event::InputRequested(InputRequested {
                message_id: Uuid::nil(),
                answer_id: Some(Uuid::max()),
            }),
            Event::MessagesRead(MessagesRead {
                last_read_message_id: Uuid::max(),
            }),
            Event::GitDiffUpdated(GitDiffUpdated {
                git_diff: String::new(),
            }),
            Event::SessionEnded(SessionEnded::default()),
            Event::SessionEnded(SessionEnded {
                by: Some(Actor::User),
            }),
            Event::MessagesReceived(MessagesReceived {
                message_ids: vec![Uuid::nil()],
            }),
            Event::QuestionWithdrawn(QuestionWithdrawn {
                question_id: Uuid::nil(),
                by: Actor::Agent,
                reason: "the hook timed out".into(),
            }),
            Event::QuestionExpired(QuestionExpired {
                question_id: Uuid::nil(),
            }),
            Event::SessionDescribed(SessionDescribed {
                title: Some("Fix the login page".into()),
                cwd: Some("/src/app".into()),
                ..SessionDescribed::default()
            }),
            Event::MessagesReturned(MessagesReturned {
                messages: vec![ReturnedMessage {
                    message_id: Uuid::nil(),
                    stream_version: 4,
                    seq: 9,
                    created_at: OffsetDateTime::UNIX_EPOCH
                        + time::Duration::microseconds(1_234_567),
                }],
                read_cursor: Some(Uuid::max()),
            }),
            Event::AppConnected(AppConnected {
                key_id: Uuid::nil(),
                client_id: "https://claude.ai/oauth/mcp-oauth-client-metadata".into(),
                client_name: "Claude".into(),
                redirect_host: "https://claude.ai".into(),
                scope: "agent".into(),
            }),
            Event::AppDisconnected(AppDisconnected {
                key_id: Uuid::nil(),
                reason: "disconnected in the inbox".into(),
            }),
            Event::UserCreated(UserCreated {
                name: "Ada".into(),
                email: Some("ada@example.com".into()),
            }),
            Event::UserRenamed(UserRenamed {
                name: "Ada L.".into(),
                email: None,
            }),
            Event::NotificationChannelAdded(NotificationChannelAdded {
                channel_id: Uuid::nil(),
                kind: "webhook".into(),
                description: "https://hooks.example.com".into(),
            }),
            Event::NotificationChannelRemoved(NotificationChannelRemoved {
                channel_id: Uuid::nil(),
            }),
            Event::NotificationPolicyChanged(NotificationPolicyChanged {
                policy: serde_json::json!({"presence": false})
                    .as_object()
                    .unwrap()
                    .clone(),
            }),
        ];
        for event in events {
            let back = Event::from_stored(event.event_type(), &event.data_json()).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn messages_without_choices_store_exactly_what_they_stored_before() {
        let question = AgentMessage {
            content: "ok?".into(),
            requires_user_input: true,
            ..AgentMessage::default()
        };
        assert_eq!(
            Event::AgentMessage(question).data_json(),
            r#"{"content":"ok?","requires_user_input":true}"#
        );
        let reply = UserMessage {
            content: "yes".into(),
            mark_as_read: false,
            ..UserMessage::default()
        };
        assert_eq!(
            Event::UserMessage(reply).data_json(),
            r#"{"content":"yes","mark_as_read":false}"#
        );
        assert_eq!(
            Event::SessionEnded(SessionEnded::default()).data_json(),
            "{}"
        );
    }

    #[test]
    fn an_answer_names_its_question_or_none_or_is_unstated() {
        let parse = |data: &str| match Event::from_stored("user_message", data).unwrap() {
            Event::UserMessage(m) => m.answers,
            _ => unreachable!(),
        };
        let id = Uuid::new_v4();
        assert_eq!(
            parse(r#"{"content":"a","mark_as_read":false}"#),
            Answers::Unstated
        );
        assert_eq!(
            parse(r#"{"content":"a","mark_as_read":false,"question_id":null}"#),
            Answers::Nothing
        );
        assert_eq!(
            parse(&format!(
                r#"{{"content":"a","mark_as_read":false,"question_id":"{id}"}}"#
            )),
            Answers::Question(id)
        );
    }

    #[test]
    fn unknown_types_and_bad_data_are_reported() {
        assert!(Event::from_stored("session_paused", "{}").is_err());
        assert!(Event::from_stored("user_message", "{\"content\":1}").is_err());
    }
}
