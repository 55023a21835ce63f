//! The choices a question offers, and the tool call an approval asks about: checked once
//! here, so REST and MCP refuse the same bad input with the same words.

use projections::Approval;
use serde_json::{Map, Value};

use super::{InvalidInput, message_metadata, storable};

/// At most this many options on one question (buttons a person can still read).
pub const MAX_OPTIONS: usize = 20;
/// At most this many characters in one option.
pub const MAX_OPTION_CHARS: usize = 200;
/// At most this many characters in a tool's name or a tool use id.
const MAX_TOOL_NAME_CHARS: usize = 200;

/// 1 to [`MAX_OPTIONS`] distinct, non-blank options of at most [`MAX_OPTION_CHARS`]
/// characters each, without NUL, in the order given.
pub fn options(field: &str, options: Vec<String>) -> Result<Vec<String>, InvalidInput> {
    if options.is_empty() || options.len() > MAX_OPTIONS {
        return Err(InvalidInput::new(
            field,
            format!("must offer 1 to {MAX_OPTIONS} options"),
        ));
    }
    for (n, option) in options.iter().enumerate() {
        storable(field, option)?;
        if option.trim().is_empty() {
            return Err(InvalidInput::new(field, "an option must not be empty"));
        }
        if option.chars().count() > MAX_OPTION_CHARS {
            return Err(InvalidInput::new(
                field,
                format!("an option must be at most {MAX_OPTION_CHARS} characters"),
            ));
        }
        if options[..n].contains(option) {
            return Err(InvalidInput::new(
                field,
                format!("{:?} is offered twice", super::truncate(option)),
            ));
        }
    }
    Ok(options)
}

/// The option of `offered` that an answer saying `content` chose, if any (surrounding
/// whitespace aside: a button and a typed word choose alike).
pub fn chosen<'a>(offered: &'a [String], content: &str) -> Option<&'a String> {
    offered.iter().find(|o| o.trim() == content.trim())
}

/// A tool call to approve: a named tool, its input object, and the host's id for the call.
pub fn approval(
    tool_name: &str,
    input: Map<String, Value>,
    tool_use_id: Option<&str>,
    suggestions: Vec<Value>,
) -> Result<Approval, InvalidInput> {
    let name = |field: &str, text: &str| {
        storable(field, text)?;
        if text.trim().is_empty() || text.chars().count() > MAX_TOOL_NAME_CHARS {
            return Err(InvalidInput::new(
                field,
                format!("must be 1 to {MAX_TOOL_NAME_CHARS} characters"),
            ));
        }
        Ok(text.to_owned())
    };
    Ok(Approval {
        tool_name: name("tool_name", tool_name)?,
        input: tool_input("input", input)?,
        tool_use_id: tool_use_id.map(|id| name("tool_use_id", id)).transpose()?,
        suggestions: suggestions_of(suggestions)?,
        input_fixed: false,
    })
}

/// At most this many permission suggestions, each at most this many bytes of JSON.
pub const MAX_SUGGESTIONS: usize = 10;
pub const MAX_SUGGESTION_BYTES: usize = 4096;

/// Permission rules offered with an approval: JSON objects with storable strings, bounded.
fn suggestions_of(suggestions: Vec<Value>) -> Result<Vec<Value>, InvalidInput> {
    if suggestions.len() > MAX_SUGGESTIONS {
        return Err(InvalidInput::new(
            "suggestions",
            format!("at most {MAX_SUGGESTIONS}"),
        ));
    }
    suggestions
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let field = format!("suggestions[{i}]");
            let Value::Object(object) = s else {
                return Err(InvalidInput::new(field, "must be an object"));
            };
            let object = message_metadata(&field, object)?;
            if serde_json::to_string(&object).map_or(0, |t| t.len()) > MAX_SUGGESTION_BYTES {
                return Err(InvalidInput::new(
                    field,
                    format!("must be at most {MAX_SUGGESTION_BYTES} bytes of JSON"),
                ));
            }
            Ok(Value::Object(object))
        })
        .collect()
}

/// A tool's input: any JSON object whose strings are storable.
pub fn tool_input(
    field: &str,
    input: Map<String, Value>,
) -> Result<Map<String, Value>, InvalidInput> {
    message_metadata(field, input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_few_distinct_and_readable() {
        let ok = |v: &[&str]| options("options", v.iter().map(|s| s.to_string()).collect());
        assert!(ok(&["A", "B"]).is_ok());
        assert!(ok(&[]).is_err());
        assert!(ok(&["A", "A"]).is_err());
        assert!(ok(&["A", " "]).is_err());
        assert!(ok(&["A\0"]).is_err());
        assert!(ok(&[&"x".repeat(201)]).is_err());
        assert!(ok(&[&"é".repeat(200)]).is_ok());
        let many: Vec<String> = (0..21).map(|n| n.to_string()).collect();
        assert!(options("options", many).is_err());
    }

    #[test]
    fn an_answer_chooses_the_option_it_says() {
        let offered = vec!["Allow".to_owned(), "Deny".to_owned()];
        assert_eq!(chosen(&offered, " Allow\n"), Some(&offered[0]));
        assert_eq!(chosen(&offered, "allow"), None);
        assert_eq!(chosen(&offered, "Deny: no"), None);
    }
}
