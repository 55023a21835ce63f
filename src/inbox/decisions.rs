//! How decisions look in the inbox: a question's options as buttons (one press answers), and
//! a tool approval as the call it asks about (a command as a command, a file edit as a diff,
//! anything else as formatted JSON) with Allow, Deny (with an optional reason) and Edit.
//!
//! Everything here is markup for `inbox.js` to wire up: buttons name what they send in
//! `data-` attributes, and the script posts it through the REST API like the reply box does.
//! Tool input comes from the agent and is untrusted: maud escapes every value.

use maud::{Markup, html};
use projections::{AgentMessage, Approval, UserMessage};
use serde_json::{Map, Value};

use super::markdown;

/// The controls under an open question: its options, or an approval's decision.
pub fn controls(question: &AgentMessage, open: bool) -> Markup {
    if let Some(approval) = &question.approval {
        return html! {
            (tool_call(approval))
            @if open { (approval_actions(approval)) }
        };
    }
    match (&question.options, open) {
        (Some(options), true) => html! {
            div.choices role="group" aria-label="Answer with one of the options" {
                @for option in options {
                    button.choice type="button" data-answer=(option) { (option) }
                }
            }
        },
        (Some(options), false) => html! {
            p.offered { "Options: " (options.join(" · ")) }
        },
        (None, _) => html! {},
    }
}

/// What an answer decided, under its text: the option it chose, the input it allowed.
pub fn answer(said: &UserMessage) -> Markup {
    html! {
        @if let Some(input) = &said.updated_input {
            div.edited {
                p.label { "Allowed with this input" }
                pre.json { code { (pretty(input)) } }
            }
        }
    }
}

/// The tool call, as a person reads it.
fn tool_call(approval: &Approval) -> Markup {
    let input = &approval.input;
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let body = match (approval.tool_name.as_str(), text("command")) {
        ("Bash", Some(command)) => html! {
            @if let Some(description) = text("description") { p.description { (description) } }
            pre.command aria-label="Command" { code { (command) } }
        },
        ("Edit" | "Write" | "MultiEdit" | "NotebookEdit", _) => file_change(approval),
        _ => html! { pre.json aria-label="Tool input" { code { (pretty(input)) } } },
    };
    html! {
        div.approval {
            p.tool { "Tool: " strong { (approval.tool_name) } }
            (body)
        }
    }
}

/// A file edit as a diff of its old and new text; a written file as its content.
fn file_change(approval: &Approval) -> Markup {
    let input = &approval.input;
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let path = text("file_path").or_else(|| text("notebook_path"));
    let mut edits: Vec<(&str, &str)> = Vec::new();
    if let (Some(old), Some(new)) = (text("old_string"), text("new_string")) {
        edits.push((old, new));
    }
    for edit in input
        .get("edits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |key: &str| edit.get(key).and_then(Value::as_str);
        if let (Some(old), Some(new)) = (field("old_string"), field("new_string")) {
            edits.push((old, new));
        }
    }
    html! {
        @if let Some(path) = path { p.file { "File: " code { (path) } } }
        @if !edits.is_empty() {
            @for (old, new) in &edits { (markdown::diff_lines(&as_diff(old, new))) }
        } @else if let Some(content) = text("content").or_else(|| text("new_source")) {
            (markdown::diff_lines(&as_diff("", content)))
        } @else {
            pre.json aria-label="Tool input" { code { (pretty(input)) } }
        }
    }
}

/// Old lines removed, new lines added: a diff a person reads at a glance.
fn as_diff(old: &str, new: &str) -> String {
    let mut out = String::with_capacity(old.len() + new.len() + 16);
    for line in old.lines() {
        out.push('-');
        out.push_str(line);
        out.push('\n');
    }
    for line in new.lines() {
        out.push('+');
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn pretty(input: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(input).expect("a JSON object serializes")
}

/// Allow, Deny with an optional reason, and Edit (the input as JSON, then allow).
fn approval_actions(approval: &Approval) -> Markup {
    html! {
        div.decide {
            div.decide-row role="group" aria-label="Decide" {
                button.primary.allow type="button" data-answer=(Approval::ALLOW) { "Allow" }
                button.deny-open type="button" aria-expanded="false" { "Deny…" }
                button.edit-open type="button" aria-expanded="false" { "Edit…" }
            }
            form.deny-form hidden {
                label { "Reason (optional)"
                    input type="text" name="reason" maxlength="2000" autocomplete="off"
                        placeholder="Tell the agent why";
                }
                button.danger-solid type="submit" { "Deny" }
            }
            form.edit-form hidden {
                label { "Tool input (JSON)"
                    textarea name="input" rows="8" spellcheck="false" { (pretty(&approval.input)) }
                }
                button.primary type="submit" { "Allow edited" }
            }
            p.error role="alert" {}
        }
    }
}
