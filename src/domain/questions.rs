//! What an agent may say about its questions and its session, checked once here: a question's
//! deadline, why it is withdrawn, the question an answer names, and the session's title and
//! context.

use std::time::Duration;

use projections::SessionDescribed;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{InvalidInput, parse_uuid, storable};

/// The longest deadline a question may have.
pub const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);
/// At most this many characters in the reason a question is withdrawn.
const MAX_REASON_CHARS: usize = 500;
/// At most this many characters in a session's title.
const MAX_TITLE_CHARS: usize = 200;
/// At most this many characters in the other context fields (paths are long).
const MAX_CONTEXT_CHARS: usize = 1000;

/// How long a question stays open before it expires: 1 second to 30 days.
pub fn expires_in(field: &str, seconds: f64) -> Result<Duration, InvalidInput> {
    if !seconds.is_finite() || seconds < 1.0 || seconds > MAX_EXPIRY.as_secs_f64() {
        return Err(InvalidInput::new(
            field,
            format!(
                "must be a number of seconds from 1 to {}",
                MAX_EXPIRY.as_secs()
            ),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Why a question is withdrawn: 1 to 500 characters, no control characters but new lines.
pub fn reason(field: &str, text: &str) -> Result<String, InvalidInput> {
    let text = text.trim();
    storable(field, text)?;
    if text.is_empty() || text.chars().count() > MAX_REASON_CHARS {
        return Err(InvalidInput::new(
            field,
            format!("must be 1 to {MAX_REASON_CHARS} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(InvalidInput::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// Which question a person's message answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum Target {
    /// The message does not say (the omnara SDK, older clients): it answers the session's
    /// newest open question, if one is open.
    #[default]
    Unnamed,
    /// `question_id: null`: a message that answers no question.
    Nothing,
    /// This question.
    Question(Uuid),
}

impl Target {
    /// `question_id` as sent: absent, `null`, or a question's id.
    pub fn parse(field: &str, value: Option<&Value>) -> Result<Target, InvalidInput> {
        match value {
            None => Ok(Target::Unnamed),
            Some(Value::Null) => Ok(Target::Nothing),
            Some(Value::String(text)) => parse_uuid(field, text).map(Target::Question),
            Some(_) => Err(InvalidInput::new(
                field,
                "must be a question's id (a UUID) or null",
            )),
        }
    }
}

/// At most this many characters in a tool activity's summary, and in its output.
pub const MAX_ACTIVITY_SUMMARY: usize = 500;
pub const MAX_ACTIVITY_OUTPUT: usize = 2000;
/// The longest a tool call may be said to have taken (the largest integer JSON numbers hold
/// exactly everywhere).
pub const MAX_DURATION_MS: u64 = (1 << 53) - 1;

/// A tool activity as a request gives it: a tool name (1 to 200 characters), a summary of at
/// most [`MAX_ACTIVITY_SUMMARY`] characters, an output of at most [`MAX_ACTIVITY_OUTPUT`];
/// storable text throughout. Longer is refused: the sender cuts (the hooks do).
pub fn activity(
    field: &str,
    a: projections::ToolActivity,
) -> Result<projections::ToolActivity, InvalidInput> {
    let check = |name: &str, text: &str, min: usize, max: usize| {
        let field = format!("{field}.{name}");
        storable(&field, text)?;
        let n = text.chars().count();
        if n < min || n > max {
            return Err(InvalidInput::new(
                field,
                format!("must be {min} to {max} characters"),
            ));
        }
        Ok(())
    };
    check("tool", &a.tool, 1, 200)?;
    if a.tool.trim().is_empty() {
        return Err(InvalidInput::new(
            format!("{field}.tool"),
            "must not be blank",
        ));
    }
    if a.tool.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            format!("{field}.tool"),
            "must not contain control characters",
        ));
    }
    check("summary", &a.summary, 0, MAX_ACTIVITY_SUMMARY)?;
    if a.duration_ms.is_some_and(|ms| ms > MAX_DURATION_MS) {
        return Err(InvalidInput::new(
            format!("{field}.duration_ms"),
            format!("must be at most {MAX_DURATION_MS}"),
        ));
    }
    if let Some(output) = &a.output {
        check("output", output, 0, MAX_ACTIVITY_OUTPUT)?;
    }
    Ok(projections::ToolActivity {
        tool: a.tool.trim().to_owned(),
        ..a
    })
}

/// "50 s", "10 min": a wait as people read it.
pub fn seconds(wait: Duration) -> String {
    let s = wait.as_secs();
    if s >= 120 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// At most `max` characters of `text`, cut on a character boundary (with "…" when cut).
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((end, _)) if text[end..].chars().nth(1).is_some() => format!("{}…", &text[..end]),
        _ => text.to_owned(),
    }
}

/// One context field: trimmed, storable, without control characters, at most `max`
/// characters; an empty text stays empty (it clears the field).
fn context_text(field: &str, text: &str, max: usize) -> Result<String, InvalidInput> {
    let text = text.trim();
    storable(field, text)?;
    if text.chars().count() > max {
        return Err(InvalidInput::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// The raw fields of a session's description, as an interface received them.
#[derive(Clone, Debug, Default)]
pub struct RawDescription<'a> {
    pub title: Option<&'a str>,
    pub project: Option<&'a str>,
    pub cwd: Option<&'a str>,
    pub branch: Option<&'a str>,
    pub host: Option<&'a str>,
    pub client: Option<&'a str>,
}

impl RawDescription<'_> {
    /// Checked: each field within its bounds (`field` names the object they came in).
    pub fn parse(&self, field: &str) -> Result<SessionDescribed, InvalidInput> {
        let one = |name: &str, text: Option<&str>, max: usize| {
            text.map(|t| context_text(&format!("{field}.{name}"), t, max))
                .transpose()
        };
        Ok(SessionDescribed {
            title: one("title", self.title, MAX_TITLE_CHARS)?,
            project: one("project", self.project, MAX_CONTEXT_CHARS)?,
            cwd: one("cwd", self.cwd, MAX_CONTEXT_CHARS)?,
            branch: one("branch", self.branch, MAX_CONTEXT_CHARS)?,
            host: one("host", self.host, MAX_CONTEXT_CHARS)?,
            client: one("client", self.client, MAX_CONTEXT_CHARS)?,
        })
    }
}

/// What an agent's `message_metadata` says about its session, by the keys agents commonly use
/// (`title`, `project`, `cwd`, `branch` or `git_branch`, `host` or `hostname`). Values that are
/// not short texts are left alone: metadata is the agent's own, never refused for this.
pub fn described_by_metadata(metadata: &Map<String, Value>) -> SessionDescribed {
    let text = |keys: &[&str], max: usize| {
        keys.iter()
            .find_map(|k| metadata.get(*k)?.as_str())
            .and_then(|t| context_text("message_metadata", t, max).ok())
            .filter(|t| !t.is_empty())
    };
    SessionDescribed {
        title: text(&["title"], MAX_TITLE_CHARS),
        project: text(&["project"], MAX_CONTEXT_CHARS),
        cwd: text(&["cwd"], MAX_CONTEXT_CHARS),
        branch: text(&["branch", "git_branch"], MAX_CONTEXT_CHARS),
        host: text(&["host", "hostname"], MAX_CONTEXT_CHARS),
        client: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deadlines_are_a_second_to_thirty_days() {
        assert_eq!(expires_in("e", 60.0).unwrap(), Duration::from_secs(60));
        assert!(expires_in("e", 0.5).is_err());
        assert!(expires_in("e", f64::NAN).is_err());
        assert!(expires_in("e", 31.0 * 24.0 * 3600.0).is_err());
    }

    #[test]
    fn answers_name_a_question_none_or_say_nothing() {
        let id = Uuid::new_v4();
        assert_eq!(Target::parse("q", None).unwrap(), Target::Unnamed);
        assert_eq!(
            Target::parse("q", Some(&Value::Null)).unwrap(),
            Target::Nothing
        );
        assert_eq!(
            Target::parse("q", Some(&json!(id.to_string()))).unwrap(),
            Target::Question(id)
        );
        assert!(Target::parse("q", Some(&json!("nope"))).is_err());
        assert!(Target::parse("q", Some(&json!(1))).is_err());
    }

    #[test]
    fn descriptions_are_bounded_and_metadata_is_read_not_refused() {
        let raw = RawDescription {
            title: Some(" Fix login "),
            cwd: Some(""),
            ..RawDescription::default()
        };
        let described = raw.parse("session").unwrap();
        assert_eq!(described.title.as_deref(), Some("Fix login"));
        assert_eq!(described.cwd.as_deref(), Some(""));
        let long = "x".repeat(201);
        let too_long = RawDescription {
            title: Some(&long),
            ..RawDescription::default()
        };
        assert!(too_long.parse("session").is_err());
        let bad = RawDescription {
            branch: Some("a\nb"),
            ..RawDescription::default()
        };
        assert!(bad.parse("session").is_err());
        let metadata = json!({"cwd": "/src/app", "git_branch": "main", "title": 7})
            .as_object()
            .unwrap()
            .clone();
        let described = described_by_metadata(&metadata);
        assert_eq!(described.cwd.as_deref(), Some("/src/app"));
        assert_eq!(described.branch.as_deref(), Some("main"));
        assert_eq!(described.title, None);
        assert!(reason("r", "the hook timed out").is_ok());
        assert!(reason("r", " ").is_err());
        assert!(reason("r", "a\u{7}").is_err());
    }
}
