//! What a person's answer to a tool approval decides, in the shape Claude Code expects from a
//! permission prompt tool (`--permission-prompt-tool`) and from a `PermissionRequest` hook:
//! `{"behavior":"allow","updatedInput":{…}}` or `{"behavior":"deny","message":"…"}`.
//!
//! The answer's first message decides (later ones are conversation): it allows only when it
//! chose the option "Allow", with the input the person edited or else the input asked about;
//! any other reply denies, and its words go to the agent as the reason.

use projections::Approval;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::wire::MessageJson;

/// A decision about one tool call.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "behavior", rename_all = "snake_case")]
pub enum Decision {
    Allow {
        #[serde(rename = "updatedInput")]
        updated_input: Map<String, Value>,
        /// Permission rules to add ("Always allow"): the host's own suggestions.
        #[serde(rename = "updatedPermissions", skip_serializing_if = "Vec::is_empty")]
        updated_permissions: Vec<Value>,
    },
    Deny {
        message: String,
    },
}

impl Decision {
    /// The decision `answer` (the reply's messages, oldest first) makes about `approval`'s
    /// tool call.
    pub fn from_answer(approval: &Approval, answer: &[MessageJson]) -> Decision {
        match answer.first() {
            Some(first) if Approval::allows(first.chosen_option.as_deref()) => Decision::Allow {
                updated_input: first
                    .updated_input
                    .clone()
                    .unwrap_or_else(|| approval.input.clone()),
                updated_permissions: match first.chosen_option.as_deref() {
                    Some(Approval::ALWAYS_ALLOW) => approval.suggestions.clone(),
                    _ => Vec::new(),
                },
            },
            _ => Decision::Deny {
                message: answer
                    .iter()
                    .map(|m| m.content.as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            },
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a decision serializes")
    }
}

/// The question's text for an approval: what the person reads where approvals are not shown
/// specially (notifications, other dashboards, the log).
pub fn approval_question(approval: &Approval) -> String {
    let command = approval.input.get("command").and_then(Value::as_str);
    match command {
        Some(command) if approval.tool_name == "Bash" => {
            format!("May I run this command?\n\n```\n{command}\n```")
        }
        _ => {
            let input =
                serde_json::to_string_pretty(&approval.input).expect("a JSON object serializes");
            format!("May I use {}?\n\n```json\n{input}\n```", approval.tool_name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use projections::SenderType;
    use serde_json::json;
    use uuid::Uuid;

    fn said(content: &str, chosen: Option<&str>, edited: Option<Value>) -> MessageJson {
        MessageJson {
            id: Uuid::nil(),
            content: content.into(),
            sender_type: SenderType::User,
            created_at: String::new(),
            requires_user_input: false,
            options: None,
            approval: None,
            chosen_option: chosen.map(str::to_owned),
            updated_input: edited.map(|v| v.as_object().unwrap().clone()),
            question_id: None,
            activity: None,
            terminal: false,
        }
    }

    #[test]
    fn only_choosing_allow_or_always_allow_allows() {
        let input = Approval {
            tool_name: "Bash".into(),
            input: json!({"command": "rm -rf build"})
                .as_object()
                .unwrap()
                .clone(),
            tool_use_id: None,
            suggestions: vec![json!({"type": "setMode", "mode": "acceptEdits"})],
            input_fixed: false,
        };
        let always =
            Decision::from_answer(&input, &[said("Always allow", Some("Always allow"), None)]);
        assert_eq!(
            always.to_json(),
            json!({"behavior": "allow", "updatedInput": {"command": "rm -rf build"},
                   "updatedPermissions": [{"type": "setMode", "mode": "acceptEdits"}]})
        );
        let allow = Decision::from_answer(&input, &[said("Allow", Some("Allow"), None)]);
        assert_eq!(
            allow.to_json(),
            json!({"behavior": "allow", "updatedInput": {"command": "rm -rf build"}})
        );
        let edited = Decision::from_answer(
            &input,
            &[said(
                "Allow",
                Some("Allow"),
                Some(json!({"command": "rm -rf build/tmp"})),
            )],
        );
        assert_eq!(
            edited.to_json(),
            json!({"behavior": "allow", "updatedInput": {"command": "rm -rf build/tmp"}})
        );
        let typed = Decision::from_answer(&input, &[said("allow it", None, None)]);
        assert_eq!(
            typed.to_json(),
            json!({"behavior": "deny", "message": "allow it"})
        );
        let denied = Decision::from_answer(&input, &[said("Deny", Some("Deny"), None)]);
        assert_eq!(
            denied.to_json(),
            json!({"behavior": "deny", "message": "Deny"})
        );
    }
}
