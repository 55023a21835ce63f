//! The coding agents Switchboard drives through their hooks, and how each one's hooks differ
//! from Claude Code's: what its events are called and carry (turned into Claude Code's terms
//! for [`super::claude_code::handle`]), and what its hooks may answer.
//!
//! Measured with the real CLIs offline (Claude Code 2.1.332, Codex 0.171.0, Gemini CLI
//! 0.61.0; `tests/claude_code.rs`, `tests/codex.rs`, `tests/gemini.rs`):
//!
//! - **Codex** names its events as Claude Code does (SessionStart, UserPromptSubmit,
//!   PostToolUse, PermissionRequest, Stop, SessionEnd), runs command hooks only (trusted ones:
//!   see `setup`), and fails a PermissionRequest closed when its decision carries
//!   `updatedInput` or `updatedPermissions`: its approvals cannot be edited, and its decisions
//!   are the bare `{"behavior": …}`.
//! - **Gemini CLI** has other names: BeforeAgent (the prompt), AfterTool (`tool_response`
//!   `{llmContent, returnDisplay}`), BeforeTool (no tool call id), AfterAgent (the final
//!   message as `prompt_response`; `{"decision": "block", "reason": …}` continues the run with
//!   the reason as the next prompt). A hook cannot allow a call the CLI would ask about
//!   (`"allow"` is ignored): BeforeTool can only deny, so the person's approval gates calls the
//!   CLI runs anyway (`--approval-mode yolo`), and a hook that decides nothing lets the call
//!   run: nobody deciding in time denies it.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::commands::Decision;

/// Names a Codex or Gemini CLI session's Switchboard session (with the tenant and the agent).
const AGENT_SESSIONS: Uuid = Uuid::from_u128(0x3c1f_9a52_e7d4_4b08_a6c3_5d2e_8f71_b940);
/// Names a Claude Code session's Switchboard session (UUID v5 of "<tenant>/<session_id>").
const CLAUDE_CODE_SESSIONS: Uuid = Uuid::from_u128(0x8e3b_51c4_7d29_4a06_b1f8_2c5d_9e40_6a17);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Agent {
    ClaudeCode,
    Codex,
    Gemini,
}

impl Agent {
    /// The agent type of the sessions its hooks start.
    pub fn agent_type(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "claude-code",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini-cli",
        }
    }

    /// What people call it.
    pub fn name(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "Claude Code",
            Agent::Codex => "Codex",
            Agent::Gemini => "Gemini CLI",
        }
    }

    /// The word `switchboard hook <word>` and `switchboard setup <word>` take.
    pub fn command(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "claude-code",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini",
        }
    }

    /// The Switchboard session of the agent's session `session` of `tenant`.
    pub fn session_for(self, tenant: Uuid, session: &str) -> Uuid {
        match self {
            Agent::ClaudeCode => Uuid::new_v5(
                &CLAUDE_CODE_SESSIONS,
                format!("{tenant}/{session}").as_bytes(),
            ),
            other => Uuid::new_v5(
                &AGENT_SESSIONS,
                format!("{tenant}/{}/{session}", other.command()).as_bytes(),
            ),
        }
    }

    /// One hook event's JSON in Claude Code's terms: its event name and fields. Events that
    /// mean nothing to Switchboard keep their own name (and are ignored).
    pub fn normalize(self, mut event: Map<String, Value>) -> Map<String, Value> {
        if self != Agent::Gemini {
            return event;
        }
        let name = event
            .get("hook_event_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let claude_name = match name {
            "BeforeAgent" => "UserPromptSubmit",
            "AfterTool" => "PostToolUse",
            "BeforeTool" => "PermissionRequest",
            "AfterAgent" => "Stop",
            other => other,
        }
        .to_owned();
        event.insert("hook_event_name".into(), Value::String(claude_name));
        if let Some(said) = event.remove("prompt_response") {
            event.insert("last_assistant_message".into(), said);
        }
        // What the tool said (to the model, else to the person) as its output.
        if let Some(Value::Object(response)) = event.get("tool_response") {
            let text = |key: &str| response.get(key).and_then(Value::as_str);
            let failed = response.get("error").is_some_and(|e| !e.is_null());
            let output = text("llmContent")
                .or_else(|| text("returnDisplay"))
                .map(str::to_owned)
                .unwrap_or_default();
            let error = response.get("error").cloned().unwrap_or(Value::Null);
            let normalized =
                json!({"stdout": output, "error": if failed { error } else { Value::Null }});
            event.insert("tool_response".into(), normalized);
        }
        event
    }

    /// Whether the output of `event` (Claude Code's name) can hand the person's messages to
    /// the agent (`additionalContext`), as measured; elsewhere they wait for one that can.
    pub fn hands_over_at(self, event: &str) -> bool {
        match self {
            Agent::ClaudeCode => {
                matches!(event, "SessionStart" | "UserPromptSubmit" | "PostToolUse")
            }
            Agent::Codex => matches!(event, "SessionStart" | "UserPromptSubmit" | "PostToolUse"),
            Agent::Gemini => matches!(event, "SessionStart" | "UserPromptSubmit" | "PostToolUse"),
        }
    }

    /// The output that hands `text` over at `event`.
    pub fn context(self, event: &str, text: String) -> Value {
        let own_name = match (self, event) {
            (Agent::Gemini, "UserPromptSubmit") => "BeforeAgent",
            (Agent::Gemini, "PostToolUse") => "AfterTool",
            (_, other) => other,
        };
        json!({
            "hookSpecificOutput": {
                "hookEventName": own_name,
                "additionalContext": text,
            }
        })
    }

    /// What a hook that decides nothing prints: nothing, except for Gemini CLI, which reads
    /// standard output as JSON always.
    pub fn nothing_to_say(self) -> Option<Value> {
        (self == Agent::Gemini).then(|| json!({}))
    }

    /// Whether its approvals may be answered with an edited input.
    pub fn edits_input(self) -> bool {
        self == Agent::ClaudeCode
    }

    /// Whether a permission hook that decides nothing lets the call run (so nobody deciding
    /// in time must deny it).
    pub fn runs_undecided(self) -> bool {
        self == Agent::Gemini
    }

    /// What happens when nobody decides, as the person reads it.
    pub fn undecided(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "Claude Code asks in its terminal instead",
            Agent::Codex => "Codex decides as it would without Switchboard",
            Agent::Gemini => "the hook denied the tool call",
        }
    }

    /// The hook's output for `decision` on a permission request.
    pub fn permission_output(self, decision: &Decision) -> Value {
        match (self, decision) {
            (Agent::ClaudeCode, decision) => json!({
                "hookSpecificOutput": {
                    "hookEventName": "PermissionRequest",
                    "decision": decision.to_json(),
                }
            }),
            (Agent::Codex, Decision::Allow { .. }) => json!({
                "hookSpecificOutput": {
                    "hookEventName": "PermissionRequest",
                    "decision": {"behavior": "allow"},
                }
            }),
            (Agent::Codex, Decision::Deny { message }) => json!({
                "hookSpecificOutput": {
                    "hookEventName": "PermissionRequest",
                    "decision": {"behavior": "deny", "message": message},
                }
            }),
            // Allowed: the CLI goes on as it would (the person's approval was the gate).
            (Agent::Gemini, Decision::Allow { .. }) => json!({}),
            (Agent::Gemini, Decision::Deny { message }) => {
                json!({"decision": "deny", "reason": message})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_named_by_tenant_agent_and_session() {
        let tenant = Uuid::new_v4();
        let claude = Agent::ClaudeCode.session_for(tenant, "a");
        assert_eq!(claude, Agent::ClaudeCode.session_for(tenant, "a"));
        assert_ne!(claude, Agent::ClaudeCode.session_for(tenant, "b"));
        assert_ne!(claude, Agent::ClaudeCode.session_for(Uuid::new_v4(), "a"));
        assert_ne!(claude, Agent::Codex.session_for(tenant, "a"));
        assert_ne!(
            Agent::Codex.session_for(tenant, "a"),
            Agent::Gemini.session_for(tenant, "a")
        );
    }

    #[test]
    fn gemini_events_read_as_claude_codes() {
        let event = |json: Value| Agent::Gemini.normalize(json.as_object().unwrap().clone());
        let after = event(json!({"hook_event_name": "AfterAgent", "prompt": "Fix it",
                                 "prompt_response": "Fixed."}));
        assert_eq!(after["hook_event_name"], "Stop");
        assert_eq!(after["last_assistant_message"], "Fixed.");
        let tool = event(
            json!({"hook_event_name": "AfterTool", "tool_name": "run_shell_command",
            "tool_response": {"llmContent": "ok\n", "returnDisplay": "ok"}}),
        );
        assert_eq!(tool["hook_event_name"], "PostToolUse");
        assert_eq!(
            tool["tool_response"],
            json!({"stdout": "ok\n", "error": null})
        );
        let failed = event(json!({"hook_event_name": "AfterTool",
            "tool_response": {"llmContent": "", "error": {"message": "exit 1"}}}));
        assert_eq!(failed["tool_response"]["error"]["message"], "exit 1");
        let other = event(json!({"hook_event_name": "BeforeModel"}));
        assert_eq!(other["hook_event_name"], "BeforeModel");
    }

    #[test]
    fn decisions_take_each_agents_shape() {
        let allow = Decision::Allow {
            updated_input: Map::new(),
            updated_permissions: Vec::new(),
        };
        let deny = Decision::Deny {
            message: "No".into(),
        };
        assert_eq!(
            Agent::Codex.permission_output(&allow)["hookSpecificOutput"]["decision"],
            json!({"behavior": "allow"}),
            "Codex fails closed on updatedInput"
        );
        assert_eq!(
            Agent::Codex.permission_output(&deny)["hookSpecificOutput"]["decision"],
            json!({"behavior": "deny", "message": "No"})
        );
        assert_eq!(Agent::Gemini.permission_output(&allow), json!({}));
        assert_eq!(
            Agent::Gemini.permission_output(&deny),
            json!({"decision": "deny", "reason": "No"})
        );
    }
}
