//! Input that has been checked. Each type parses raw input once; a value that exists is valid,
//! so command functions never re-check it. REST and MCP share these parsers, and so give the
//! same answer to the same bad input.

pub mod choices;
pub mod client_type;
mod git_diff;
pub mod questions;

pub use git_diff::GitDiffUpdate;

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Why a field was refused; shown to the client as `<field>: <reason>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidInput {
    pub field: String,
    pub reason: String,
}

impl InvalidInput {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> InvalidInput {
        InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for InvalidInput {}

/// Text PostgreSQL can store: no NUL characters.
fn storable(field: &str, text: &str) -> Result<(), InvalidInput> {
    if text.contains('\0') {
        return Err(InvalidInput::new(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Message text: not empty or blank, storable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Content(String);

impl Content {
    pub fn parse(field: &str, text: String) -> Result<Content, InvalidInput> {
        storable(field, &text)?;
        if text.trim().is_empty() {
            return Err(InvalidInput::new(field, "must not be empty"));
        }
        Ok(Content(text))
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The kind of agent behind a session (`claude-code`, `cursor`, ...): a short name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AgentType(String);

impl AgentType {
    const MAX_CHARS: usize = 100;

    pub fn parse(field: &str, text: &str) -> Result<AgentType, InvalidInput> {
        let name = text.trim();
        if name.is_empty() {
            return Err(InvalidInput::new(field, "must not be empty"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(AgentType(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's name for their account: 1 to 200 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    const MAX_CHARS: usize = 200;

    pub fn parse(field: &str, text: &str) -> Result<UserName, InvalidInput> {
        let name = text.trim();
        if name.is_empty() || name.chars().count() > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                field,
                format!("must be 1 to {} characters", Self::MAX_CHARS),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(UserName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address: `local@domain`, at most 254 characters, no spaces or control
/// characters. (Deliverability is the mail server's to judge.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, text: &str) -> Result<Email, InvalidInput> {
        let address = text.trim();
        let valid = address.len() <= 254
            && !address.chars().any(|c| c.is_whitespace() || c.is_control())
            && address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.contains('@')
            });
        if !valid {
            return Err(InvalidInput::new(
                field,
                "must be an e-mail address such as ada@example.com",
            ));
        }
        Ok(Email(address.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A session, message or key id given as text.
pub fn parse_uuid(field: &str, text: &str) -> Result<Uuid, InvalidInput> {
    Uuid::try_parse(text.trim())
        .map_err(|_| InvalidInput::new(field, format!("{:?} is not a valid UUID", truncate(text))))
}

/// A page size given as text: `default` when absent, else a whole number from 1 to `max`.
pub fn parse_limit(text: Option<&str>, default: i64, max: i64) -> Result<i64, InvalidInput> {
    text.map_or(Ok(default), |text| {
        text.parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                InvalidInput::new("limit", format!("must be a whole number from 1 to {max}"))
            })
    })
}

/// Free-form JSON attached to a message: any object whose strings are storable.
pub fn message_metadata(
    field: &str,
    metadata: Map<String, Value>,
) -> Result<Map<String, Value>, InvalidInput> {
    fn check(field: &str, value: &Value) -> Result<(), InvalidInput> {
        match value {
            Value::String(s) => storable(field, s),
            Value::Array(items) => items.iter().try_for_each(|v| check(field, v)),
            Value::Object(map) => map.iter().try_for_each(|(k, v)| {
                storable(field, k)?;
                check(field, v)
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    metadata
        .iter()
        .try_for_each(|(k, v)| storable(field, k).and_then(|()| check(field, v)))?;
    Ok(metadata)
}

/// An idempotency key: 1 to 255 visible ASCII characters.
/// Raw header bytes: anything else (UTF-8 included) is refused, never ignored.
pub fn idempotency_key(bytes: &[u8]) -> Result<String, InvalidInput> {
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(InvalidInput::new(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// At most 40 characters of `text`, for echoing bad input back without echoing a novel.
pub fn truncate(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_must_say_something_storable() {
        assert!(Content::parse("content", "hello".into()).is_ok());
        assert!(Content::parse("content", "".into()).is_err());
        assert!(Content::parse("content", " \n\t".into()).is_err());
        assert!(Content::parse("content", "a\0b".into()).is_err());
    }

    #[test]
    fn agent_types_are_short_names() {
        assert_eq!(
            AgentType::parse("agent_type", " cursor ").unwrap().as_str(),
            "cursor"
        );
        assert!(AgentType::parse("agent_type", "").is_err());
        assert!(AgentType::parse("agent_type", &"x".repeat(101)).is_err());
        assert!(AgentType::parse("agent_type", "a\nb").is_err());
    }

    #[test]
    fn metadata_refuses_nul_anywhere() {
        let ok: Map<String, Value> = serde_json::from_str(r#"{"a":[{"b":"c"}]}"#).unwrap();
        assert!(message_metadata("m", ok).is_ok());
        let bad: Map<String, Value> = serde_json::from_str(r#"{"a":[{"b":"c\u0000"}]}"#).unwrap();
        assert!(message_metadata("m", bad).is_err());
        let bad_key: Map<String, Value> = serde_json::from_str(r#"{"a\u0000":1}"#).unwrap();
        assert!(message_metadata("m", bad_key).is_err());
    }

    #[test]
    fn user_names_and_emails() {
        assert_eq!(UserName::parse("n", " Ada ").unwrap().as_str(), "Ada");
        assert!(UserName::parse("n", "").is_err());
        assert!(UserName::parse("n", "a\u{0}b").is_err());
        assert!(Email::parse("e", "ada@example.com").is_ok());
        assert!(Email::parse("e", "ada@localhost").is_err());
        assert!(Email::parse("e", "a b@example.com").is_err());
        assert!(Email::parse("e", "@example.com").is_err());
    }

    #[test]
    fn ids_and_keys() {
        assert!(parse_uuid("id", "not-a-uuid").is_err());
        assert!(parse_uuid("id", "67e55044-10b1-426f-9247-bb680e5fe0c8").is_ok());
        assert!(idempotency_key(b"abc-123").is_ok());
        assert!(idempotency_key(b"").is_err());
        assert!(idempotency_key(b"a b").is_err());
        assert!(idempotency_key("retry-\u{e9}-1".as_bytes()).is_err());
        assert_eq!(truncate(&"é".repeat(50)).chars().count(), 41);
    }
}
