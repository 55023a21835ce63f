//! How questions look in the inbox: what each asks, how it stands (open and who waits for it,
//! answered, withdrawn, expired), and, while it is open, the controls that answer it: options
//! as buttons (one press answers), "Answer" for a question in words (the reply box then answers
//! it), and a tool approval as the call it asks about with Allow, Deny (with an optional reason)
//! and Edit.
//!
//! An approval shows everything it approves: for each of Claude Code's tools the fields that
//! change its effect are shown in their own way (a command as a command, an edit as a diff),
//! flags as badges ("replaces all", "sandbox off", "runs in background", "deletes the cell"),
//! and every other field of the input, known or not, under "Other input". Nothing of the input
//! is hidden.
//!
//! Everything here is markup for `inbox.js` to wire up: buttons carry the question they answer
//! (`data-question-id`) and what they send (`data-answer`), and the script posts it through the
//! REST API like the reply box does. Whether a question is open is the questions read model's
//! to say; this module only shows it. Tool input comes from the agent and is untrusted: maud
//! escapes every value.

use maud::{Markup, html};
use projections::{AgentMessage, Approval, Question, QuestionKind, QuestionStatus, UserMessage};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::markdown;
use super::views::when;
use crate::commands::waits::Wait;

/// How a question stands, as its card shows it.
pub struct Standing<'a> {
    pub question: &'a Question,
    pub wait: Option<&'a Wait>,
    /// How its answer came, when known: `Some(true)` from the inbox, `Some(false)` through
    /// the API.
    pub answered_in_inbox: Option<bool>,
    /// For an answered approval: whether the answer allowed it.
    pub allowed: Option<bool>,
    pub now: OffsetDateTime,
}

impl Standing<'_> {
    /// Can the person still answer it here?
    pub fn answerable(&self) -> bool {
        self.question.answerable_at(self.now)
    }
}

/// What a question shows under its text: the tool call of an approval, how the question
/// stands, and, while it can be answered, the controls that answer it.
pub fn question(asked: &AgentMessage, standing: Option<&Standing>) -> Markup {
    let id = standing.map(|s| s.question.id);
    let answerable = standing.is_some_and(Standing::answerable);
    html! {
        @if let Some(approval) = &asked.approval { (tool_call(approval)) }
        @if let Some(standing) = standing { (status(standing)) }
        @if answerable {
            @if let Some(approval) = &asked.approval {
                (approval_actions(approval))
            } @else if let Some(options) = &asked.options {
                div.choices role="group" aria-label="Answer with one of the options" {
                    @for option in options {
                        button.choice type="button" data-answer=(option) { (option) }
                    }
                    button.answer-this.ghost type="button" { "Answer in words…" }
                }
                p.error role="alert" {}
            } @else {
                div.choices {
                    button.answer-this type="button" { "Answer" }
                }
                p.error role="alert" {}
            }
        } @else if let Some(options) = &asked.options {
            @if asked.approval.is_none() {
                p.offered { "Options: " (options.join(" · ")) }
            }
        }
        @if let Some(id) = id { span.question-ref hidden data-question-id=(id) {} }
    }
}

/// One line saying how the question stands.
fn status(s: &Standing) -> Markup {
    let q = s.question;
    let closed = q.closed_at.map(|at| when(at, s.now));
    let verdict = match (q.kind, s.allowed) {
        (QuestionKind::Approval, Some(true)) => Some(("allowed", "Allowed")),
        (QuestionKind::Approval, Some(false)) => Some(("denied", "Denied")),
        _ => None,
    };
    html! {
        p class={ "q-status " (q.status.as_str()) } data-question-status=(q.status.as_str()) {
            @match q.status {
                QuestionStatus::Open if q.past_deadline(s.now) => {
                    span.state { "Expired" } " · unanswered at its deadline"
                }
                QuestionStatus::Open => {
                    @match s.wait {
                        Some(w) if w.waiting_at(s.now) => {
                            span.state.live { "Waiting for your answer" }
                        }
                        Some(Wait { abandoned_at: Some(at), .. }) => {
                            span.state { "The agent stopped waiting" } " " (when(*at, s.now))
                            "; it is withdrawn unless the agent asks for it again"
                        }
                        Some(w) => {
                            span.state { "Nobody is waiting right now" }
                            " (since " (when(w.waiting_until, s.now)) "); the agent can still collect your answer"
                        }
                        None => span.state { "Open" },
                    }
                    @if let Some(at) = q.expires_at {
                        " · expires " (when(at, s.now))
                    }
                }
                QuestionStatus::Answered => {
                    @if let Some((class, text)) = verdict {
                        span class={ "badge " (class) } { (text) }
                    } @else {
                        span.state { "Answered" }
                    }
                    @match s.answered_in_inbox {
                        Some(true) => " by you in the inbox",
                        Some(false) => " through the API",
                        None => "",
                    }
                    @if let Some(at) = closed { " · " (at) }
                }
                QuestionStatus::Withdrawn => {
                    span.state { "Withdrawn" }
                    @if let Some(at) = closed { " · " (at) }
                    @if let Some(reason) = &q.reason { " · " (reason) }
                }
                QuestionStatus::Expired => {
                    span.state { "Expired unanswered" }
                    @if let Some(at) = closed { " · " (at) }
                }
            }
        }
    }
}

/// What an answer decided, under its text: the input it allowed instead of the one asked.
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

/// A flag an input field sets: a badge, `danger` when it widens what the call may do.
struct Badge {
    text: String,
    danger: bool,
}

/// The tool call, as a person reads it: the fields that matter shown in their own way, flags
/// as badges, and every other field under "Other input".
fn tool_call(approval: &Approval) -> Markup {
    let mut rest = approval.input.clone();
    let mut badges: Vec<Badge> = Vec::new();
    let body = match approval.tool_name.as_str() {
        "Bash" => bash(&mut rest, &mut badges),
        "Edit" => edit(&mut rest, &mut badges),
        "MultiEdit" => multi_edit(&mut rest, &mut badges),
        "Write" => write(&mut rest),
        "NotebookEdit" => notebook_edit(&mut rest, &mut badges),
        "WebFetch" => web_fetch(&mut rest),
        "Task" => task(&mut rest, &mut badges),
        _ => html! {},
    };
    html! {
        div.approval {
            p.tool {
                "Tool: " strong { (approval.tool_name) }
                @for badge in &badges {
                    " " span class={ "badge flag" @if badge.danger { " danger" } } { (badge.text) }
                }
            }
            (body)
            @if !rest.is_empty() {
                div.other-input {
                    p.label { "Other input" }
                    dl.fields {
                        @for (key, value) in &rest {
                            dt { code { (key) } }
                            dd { pre.json { code { (shown(value)) } } }
                        }
                    }
                }
            }
        }
    }
}

/// Take the text field `key` out of `input` (it is shown in its own way).
fn take_text(input: &mut Map<String, Value>, key: &str) -> Option<String> {
    match input.get(key) {
        Some(Value::String(_)) => input.remove(key).and_then(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        }),
        _ => None,
    }
}

/// Take the boolean field `key` out of `input` when it is true or false.
fn take_flag(input: &mut Map<String, Value>, key: &str) -> Option<bool> {
    match input.get(key) {
        Some(Value::Bool(b)) => {
            let b = *b;
            input.remove(key);
            Some(b)
        }
        _ => None,
    }
}

fn bash(input: &mut Map<String, Value>, badges: &mut Vec<Badge>) -> Markup {
    let command = take_text(input, "command");
    let description = take_text(input, "description");
    if take_flag(input, "dangerouslyDisableSandbox") == Some(true) {
        badges.push(Badge {
            text: "sandbox off".into(),
            danger: true,
        });
    }
    if take_flag(input, "run_in_background") == Some(true) {
        badges.push(Badge {
            text: "runs in background".into(),
            danger: false,
        });
    }
    if let Some(ms) = input.get("timeout").and_then(Value::as_u64) {
        input.remove("timeout");
        badges.push(Badge {
            text: format!("timeout {} s", ms.div_ceil(1000)),
            danger: false,
        });
    }
    html! {
        @if let Some(description) = description { p.description { (description) } }
        @if let Some(command) = command { pre.command aria-label="Command" { code { (command) } } }
    }
}

fn edit(input: &mut Map<String, Value>, badges: &mut Vec<Badge>) -> Markup {
    let path = take_text(input, "file_path");
    if take_flag(input, "replace_all") == Some(true) {
        badges.push(Badge {
            text: "replaces all".into(),
            danger: false,
        });
    }
    let diff = match (input.get("old_string"), input.get("new_string")) {
        (Some(Value::String(_)), Some(Value::String(_))) => {
            let old = take_text(input, "old_string").unwrap_or_default();
            let new = take_text(input, "new_string").unwrap_or_default();
            Some(as_diff(&old, &new))
        }
        _ => None,
    };
    html! {
        (file(path.as_deref()))
        @if let Some(diff) = diff { (markdown::diff_lines(&diff)) }
    }
}

fn multi_edit(input: &mut Map<String, Value>, badges: &mut Vec<Badge>) -> Markup {
    let path = take_text(input, "file_path");
    // Each edit is shown whole: its diff, its own flags, and any other field it has.
    let edits: Vec<Map<String, Value>> = match input.get("edits") {
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => {
            let items = items
                .iter()
                .filter_map(|v| v.as_object().cloned())
                .collect();
            input.remove("edits");
            items
        }
        _ => Vec::new(),
    };
    let mut any_replace_all = false;
    let shown: Vec<(String, bool, Map<String, Value>)> = edits
        .into_iter()
        .map(|mut edit| {
            let old = take_text(&mut edit, "old_string").unwrap_or_default();
            let new = take_text(&mut edit, "new_string").unwrap_or_default();
            let all = take_flag(&mut edit, "replace_all") == Some(true);
            any_replace_all |= all;
            (as_diff(&old, &new), all, edit)
        })
        .collect();
    if any_replace_all {
        badges.push(Badge {
            text: "replaces all".into(),
            danger: false,
        });
    }
    html! {
        (file(path.as_deref()))
        @for (n, (diff, all, rest)) in shown.iter().enumerate() {
            div.edit-part {
                p.label {
                    "Edit " (n + 1) " of " (shown.len())
                    @if *all { " " span.badge.flag { "replaces all" } }
                }
                (markdown::diff_lines(diff))
                @if !rest.is_empty() { pre.json { code { (pretty(rest)) } } }
            }
        }
    }
}

fn write(input: &mut Map<String, Value>) -> Markup {
    let path = take_text(input, "file_path");
    let content = take_text(input, "content");
    html! {
        (file(path.as_deref()))
        @if let Some(content) = content { (markdown::diff_lines(&as_diff("", &content))) }
    }
}

fn notebook_edit(input: &mut Map<String, Value>, badges: &mut Vec<Badge>) -> Markup {
    let path = take_text(input, "notebook_path");
    let mode = take_text(input, "edit_mode");
    let cell = take_text(input, "cell_id");
    let cell_type = take_text(input, "cell_type");
    let source = take_text(input, "new_source");
    let deletes = mode.as_deref() == Some("delete");
    match mode.as_deref() {
        Some("delete") => badges.push(Badge {
            text: "deletes the cell".into(),
            danger: true,
        }),
        Some("insert") => badges.push(Badge {
            text: "inserts a cell".into(),
            danger: false,
        }),
        Some("replace") | None => {}
        Some(other) => badges.push(Badge {
            text: format!("edit mode {other}"),
            danger: false,
        }),
    }
    html! {
        (file(path.as_deref()))
        @if cell.is_some() || cell_type.is_some() {
            p.file {
                @if let Some(cell) = &cell { "Cell " code { (cell) } }
                @if let Some(kind) = &cell_type { " (" (kind) ")" }
            }
        }
        @if let Some(source) = source {
            @if deletes {
                p.label { "Source given with the deletion" }
                pre.json { code { (source) } }
            } @else {
                (markdown::diff_lines(&as_diff("", &source)))
            }
        }
    }
}

fn web_fetch(input: &mut Map<String, Value>) -> Markup {
    let url = take_text(input, "url");
    let prompt = take_text(input, "prompt");
    html! {
        @if let Some(url) = url { p.file { "URL: " code { (url) } } }
        @if let Some(prompt) = prompt { p.description { (prompt) } }
    }
}

fn task(input: &mut Map<String, Value>, badges: &mut Vec<Badge>) -> Markup {
    let description = take_text(input, "description");
    let prompt = take_text(input, "prompt");
    if let Some(agent) = take_text(input, "subagent_type") {
        badges.push(Badge {
            text: format!("agent {agent}"),
            danger: false,
        });
    }
    html! {
        @if let Some(description) = description { p.description { (description) } }
        @if let Some(prompt) = prompt { pre.json aria-label="Prompt" { code { (prompt) } } }
    }
}

fn file(path: Option<&str>) -> Markup {
    html! { @if let Some(path) = path { p.file { "File: " code { (path) } } } }
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

/// What "Always allow" adds, in words: Claude Code's suggestions are rules (`Bash(npm test:*)`)
/// for a settings file, or a permission mode; anything else is shown as its JSON.
fn always_means(suggestions: &[Value]) -> String {
    let place = |s: &Value| match s["destination"].as_str() {
        Some("localSettings") => " (this project, on this machine)",
        Some("projectSettings") => " (this project)",
        Some("userSettings") => " (all your projects)",
        Some("session") => " (this session)",
        _ => "",
    };
    suggestions
        .iter()
        .map(|s| match s["type"].as_str() {
            Some("addRules") => {
                let rules: Vec<String> = s["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(
                        |r| match (r["toolName"].as_str(), r["ruleContent"].as_str()) {
                            (Some(tool), Some(content)) => format!("{tool}({content})"),
                            (Some(tool), None) => tool.to_owned(),
                            _ => r.to_string(),
                        },
                    )
                    .collect();
                format!("{}{}", rules.join(", "), place(s))
            }
            Some("addDirectories") => format!(
                "work in {}{}",
                s["directories"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                place(s)
            ),
            Some("setMode") => format!(
                "{}{}",
                match s["mode"].as_str() {
                    Some("acceptEdits") => "accept edits without asking".to_owned(),
                    Some(mode) => format!("switch to the {mode} mode"),
                    None => "switch modes".to_owned(),
                },
                place(s)
            ),
            _ => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A field's value: a text as itself, anything else as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).expect("JSON serializes"),
    }
}

/// Allow, Deny with an optional reason, and Edit (the input as JSON, then allow) where the
/// host can run an edited input.
fn approval_actions(approval: &Approval) -> Markup {
    html! {
        div.decide {
            div.decide-row role="group" aria-label="Decide" {
                button.primary.allow type="button" data-answer=(Approval::ALLOW) { "Allow" }
                @if !approval.suggestions.is_empty() {
                    button.always type="button" data-answer=(Approval::ALWAYS_ALLOW)
                        title=(always_means(&approval.suggestions)) { "Always allow" }
                }
                button.deny-open type="button" aria-expanded="false" { "Deny…" }
                @if !approval.input_fixed {
                    button.edit-open type="button" aria-expanded="false" { "Edit…" }
                }
            }
            @if !approval.suggestions.is_empty() {
                p.fine.always-means { "Always allow: " (always_means(&approval.suggestions)) }
            }
            form.deny-form hidden {
                label { "Reason (optional)"
                    input type="text" name="reason" maxlength="2000" autocomplete="off"
                        placeholder="Tell the agent why";
                }
                button.danger-solid type="submit" { "Deny" }
            }
            @if !approval.input_fixed {
                form.edit-form hidden {
                    label { "Tool input (JSON)"
                        textarea name="input" rows="8" spellcheck="false" { (pretty(&approval.input)) }
                    }
                    button.primary type="submit" { "Allow edited" }
                }
            }
            p.error role="alert" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn card(tool: &str, input: Value) -> String {
        let approval = Approval {
            tool_name: tool.into(),
            input: input.as_object().unwrap().clone(),
            tool_use_id: None,
            suggestions: Vec::new(),
            input_fixed: false,
        };
        tool_call(&approval).into_string()
    }

    #[test]
    fn always_allow_says_what_it_adds() {
        let suggested = [
            json!({"type": "addRules", "behavior": "allow", "destination": "localSettings",
                   "rules": [{"toolName": "Bash", "ruleContent": "npm test:*"}]}),
            json!({"type": "setMode", "mode": "acceptEdits", "destination": "session"}),
            json!({"type": "addDirectories", "directories": ["/src/app"], "destination": "session"}),
        ];
        assert_eq!(
            always_means(&suggested),
            "Bash(npm test:*) (this project, on this machine); accept edits without asking \
             (this session); work in /src/app (this session)"
        );
    }

    /// Every value of `input` (strings, and the text of numbers) appears on the card.
    fn shows_every_value(html: &str, input: &Value) {
        match input {
            Value::String(s) => {
                let escaped = maud::html! { (s) }.into_string();
                for line in escaped.lines() {
                    assert!(html.contains(line), "{line:?} is not on the card:\n{html}");
                }
            }
            Value::Number(n) => assert!(html.contains(&n.to_string()), "{n} missing:\n{html}"),
            Value::Array(items) => items.iter().for_each(|v| shows_every_value(html, v)),
            Value::Object(map) => map.values().for_each(|v| shows_every_value(html, v)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    #[test]
    fn every_field_of_every_tool_is_on_the_card_and_flags_are_badges() {
        let cases = [
            (
                "Bash",
                json!({"command": "git push --force origin main", "description": "Publish",
                       "timeout": 120000, "run_in_background": true,
                       "dangerouslyDisableSandbox": true}),
                vec!["sandbox off", "runs in background", "timeout 120 s"],
            ),
            (
                "Edit",
                json!({"file_path": "/src/a.rs", "old_string": "let a = 1;",
                       "new_string": "let a = 2;", "replace_all": true}),
                vec!["replaces all"],
            ),
            (
                "MultiEdit",
                json!({"file_path": "/src/b.rs", "edits": [
                    {"old_string": "x", "new_string": "y", "replace_all": true},
                    {"old_string": "p", "new_string": "q"}]}),
                vec!["replaces all", "Edit 2 of 2"],
            ),
            (
                "Write",
                json!({"file_path": "/src/new.rs", "content": "fn main() {}\n"}),
                vec![],
            ),
            (
                "NotebookEdit",
                json!({"notebook_path": "/n.ipynb", "cell_id": "c7", "new_source": "print(1)",
                       "cell_type": "code", "edit_mode": "delete"}),
                vec!["deletes the cell"],
            ),
            (
                "WebFetch",
                json!({"url": "https://example.com/a?b=c", "prompt": "Summarize it"}),
                vec![],
            ),
            (
                "Task",
                json!({"description": "Audit deps", "prompt": "List the crates",
                       "subagent_type": "general-purpose"}),
                vec!["agent general-purpose"],
            ),
            (
                "mcp__db__query",
                json!({"sql": "DROP TABLE users", "database": "prod", "limit": 5}),
                vec![],
            ),
        ];
        for (tool, input, badges) in cases {
            let html = card(tool, input.clone());
            // A timeout is shown in seconds, as its badge (checked below).
            let mut values = input.clone();
            values.as_object_mut().unwrap().remove("timeout");
            shows_every_value(&html, &values);
            for badge in badges {
                assert!(html.contains(badge), "{tool}: no badge {badge:?}:\n{html}");
            }
        }
        // A field this page does not know about is always shown.
        let html = card(
            "Bash",
            json!({"command": "ls", "newFlagFromTheFuture": "yes"}),
        );
        assert!(html.contains("newFlagFromTheFuture") && html.contains("Other input"));
        // A deletion is never shown as an added cell.
        let html = card(
            "NotebookEdit",
            json!({"notebook_path": "/n.ipynb", "new_source": "x = 1", "edit_mode": "delete"}),
        );
        assert!(!html.contains("class=\"add\""), "{html}");
    }
}
