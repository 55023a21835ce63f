//! Shapes on the wire that several routes share. Field names are the contract existing SDKs
//! parse; the Python SDK builds `Message(**m)`, so a message has exactly these five keys,
//! plus the decision fields (`options`, `approval`, `chosen_option`, `updated_input`) only
//! when it carries them: a client that never offers options never sees them.

use projections::{Approval, Message, SenderType, Session, SessionStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub use crate::timestamp::format as timestamp;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessageJson {
    pub id: Uuid,
    pub content: String,
    #[schemars(schema_with = "sender_type_schema")]
    pub sender_type: SenderType,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    pub requires_user_input: bool,
    /// A question's choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    /// A question asking leave to run a tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalJson>,
    /// The option an answer chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_option: Option<String>,
    /// The tool input an answer allowed instead of the one asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_input: Option<Map<String, Value>>,
    /// The question a person's message answers (not on the routes the omnara SDK reads: see
    /// [`sdk_messages`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_id: Option<Uuid>,
    /// The tool call an agent's step reports (its host reported it; bounded in size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<ActivityJson>,
    /// The person typed it in the agent's own terminal (it reached the agent there).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminal: bool,
}

/// A tool call an agent made, as its host reported it afterwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActivityJson {
    pub tool: String,
    /// What it was used on: the command, the file, the pattern (at most 500 characters).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// Whether it succeeded.
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "milliseconds_schema")]
    pub duration_ms: Option<u64>,
    /// The beginning of its output (at most 2,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl From<&projections::ToolActivity> for ActivityJson {
    fn from(a: &projections::ToolActivity) -> ActivityJson {
        ActivityJson {
            tool: a.tool.clone(),
            summary: a.summary.clone(),
            ok: a.ok,
            duration_ms: a.duration_ms,
            output: a.output.clone(),
        }
    }
}

/// A tool call an approval question asks about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApprovalJson {
    pub tool_name: String,
    pub input: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// Permission rules "Always allow" adds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Value>,
    /// The agent runs the call as asked or not at all: an answer cannot edit its input.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub input_fixed: bool,
}

impl From<&Approval> for ApprovalJson {
    fn from(a: &Approval) -> ApprovalJson {
        ApprovalJson {
            tool_name: a.tool_name.clone(),
            input: a.input.clone(),
            tool_use_id: a.tool_use_id.clone(),
            suggestions: a.suggestions.clone(),
            input_fixed: a.input_fixed,
        }
    }
}

impl From<&ApprovalJson> for Approval {
    fn from(a: &ApprovalJson) -> Approval {
        Approval {
            tool_name: a.tool_name.clone(),
            input: a.input.clone(),
            tool_use_id: a.tool_use_id.clone(),
            suggestions: a.suggestions.clone(),
            input_fixed: a.input_fixed,
        }
    }
}

/// A count of milliseconds (without `format: uint64`, which JSON Schema validators do not know).
fn milliseconds_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "integer", "minimum": 0})
}

fn sender_type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["AGENT", "USER"]})
}

impl From<&Message> for MessageJson {
    fn from(m: &Message) -> MessageJson {
        MessageJson {
            id: m.id,
            content: m.content.clone(),
            sender_type: m.sender_type,
            created_at: timestamp(m.created_at),
            requires_user_input: m.requires_user_input,
            options: m.options.clone(),
            approval: m.approval.as_ref().map(ApprovalJson::from),
            chosen_option: m.chosen_option.clone(),
            updated_input: m.updated_input.clone(),
            question_id: m.question_id,
            activity: m.activity.as_ref().map(ActivityJson::from),
            terminal: m.terminal,
        }
    }
}

pub fn messages(messages: &[Message]) -> Vec<MessageJson> {
    messages.iter().map(MessageJson::from).collect()
}

/// Messages for the routes the omnara SDK reads (`messages/agent`, `messages/pending`,
/// `request-input`), whose `Message(**m)` refuses keys it does not know: no `question_id`,
/// `activity` or `terminal` there. (The SDK asks one question at a time and reads by cursor; the answer
/// is the message after its question.)
pub fn sdk_messages(messages: &[Message]) -> Vec<MessageJson> {
    messages
        .iter()
        .map(|m| MessageJson {
            question_id: None,
            activity: None,
            terminal: false,
            ..MessageJson::from(m)
        })
        .collect()
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
    /// How many of its questions are open.
    pub open_questions: i32,
    pub title: Option<String>,
    pub project: Option<String>,
    pub cwd: Option<String>,
    pub branch: Option<String>,
    pub host: Option<String>,
    pub client: Option<String>,
    /// When its agent's process exited (it receives what is sent when it runs again); `null`
    /// while it runs or after it spoke again.
    pub exited_at: Option<String>,
}

impl From<&Session> for SessionJson {
    fn from(s: &Session) -> SessionJson {
        let c = &s.context;
        SessionJson {
            id: s.id,
            agent_type: s.agent_type.clone(),
            status: s.status,
            started_at: timestamp(s.started_at),
            ended_at: s.ended_at.map(timestamp),
            last_activity_at: timestamp(s.last_activity_at),
            unread_count: s.unread_count,
            open_questions: s.open_questions,
            title: c.title.clone(),
            project: c.project.clone(),
            cwd: c.cwd.clone(),
            branch: c.branch.clone(),
            host: c.host.clone(),
            client: c.client.clone(),
            exited_at: s.exited_at.map(timestamp),
        }
    }
}

/// A question as `GET /sessions/{id}/questions` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct QuestionJson {
    pub id: Uuid,
    pub kind: projections::QuestionKind,
    pub status: projections::QuestionStatus,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalJson>,
    pub asked_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// `user` (answered), `agent` or `system` (withdrawn, expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<projections::Actor>,
    /// The person's message that answered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_id: Option<Uuid>,
    /// Why it was withdrawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Someone waits for its answer right now (an MCP call, a hook, a long-poll).
    pub waiting: bool,
    /// The last wait for its answer runs (or ran) until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_until: Option<String>,
}

impl QuestionJson {
    pub fn new(
        q: &projections::Question,
        asked: &projections::AgentMessage,
        wait: Option<&crate::commands::waits::Wait>,
        now: time::OffsetDateTime,
    ) -> QuestionJson {
        QuestionJson {
            id: q.id,
            kind: q.kind,
            status: q.status,
            content: asked.content.clone(),
            options: asked.options.clone(),
            approval: asked.approval.as_ref().map(ApprovalJson::from),
            asked_at: timestamp(q.asked_at),
            expires_at: q.expires_at.map(timestamp),
            closed_at: q.closed_at.map(timestamp),
            closed_by: q.closed_by,
            answer_id: q.answer_id,
            reason: q.reason.clone(),
            waiting: q.is_open() && wait.is_some_and(|w| w.waiting_at(now)),
            waiting_until: wait.map(|w| timestamp(w.waiting_until)),
        }
    }
}

/// An optional non-negative whole number, as JSON Schema's `integer` admits it: `105385` and
/// `105385.0` alike (serde's `u64` refuses the second). Fractions and negatives are refused.
pub fn optional_whole_number<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => Ok(Some(f as u64)),
        _ => Err(D::Error::custom(format!(
            "invalid value: {number}, expected a non-negative whole number"
        ))),
    }
}

#[cfg(test)]
mod whole_number_tests {
    #[derive(serde::Deserialize)]
    struct Took {
        #[serde(default, deserialize_with = "super::optional_whole_number")]
        ms: Option<u64>,
    }

    fn ms(json: &str) -> Result<Option<u64>, serde_json::Error> {
        serde_json::from_str::<Took>(json).map(|t| t.ms)
    }

    #[test]
    fn whole_numbers_are_read_as_json_schema_integers() {
        assert_eq!(ms(r#"{"ms": 105385}"#).unwrap(), Some(105385));
        assert_eq!(ms(r#"{"ms": 105385.0}"#).unwrap(), Some(105385));
        assert_eq!(ms(r#"{"ms": null}"#).unwrap(), None);
        assert_eq!(ms("{}").unwrap(), None);
        assert!(ms(r#"{"ms": 1.5}"#).is_err());
        assert!(ms(r#"{"ms": -1}"#).is_err());
        assert!(ms(r#"{"ms": "1"}"#).is_err());
    }
}
