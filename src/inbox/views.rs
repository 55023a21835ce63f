//! The inbox's HTML: pages and the fragments live updates swap in. Templates are maud, which
//! escapes every interpolated value at compile time; agent text goes through
//! [`markdown::render`]. No inline script or style anywhere (the CSP forbids them).

use crate::agents::agent::Agent;
use std::collections::{HashMap, HashSet};

use maud::{DOCTYPE, Markup, html};
use projections::{Approval, Event, Metadata, Question, QuestionKind, Session, SessionStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use super::decisions::{self, Standing};
use super::read::{ListQuery, Listed, Show};
use super::{assets, markdown, session_path};
use crate::commands::waits::Wait;
use crate::eventlog::read::StoredEvent;
use crate::wire::timestamp;

/// What every page's frame needs.
pub struct Frame<'a> {
    /// The path prefix the server is mounted under (`/`, or `/team/` behind a proxy).
    pub base: &'a str,
    /// Sessions waiting for an answer (shown in the tab title and the nav), when signed in.
    pub waiting: Option<i64>,
}

impl Frame<'_> {
    pub(super) fn href(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }
}

/// "(3) Inbox · Switchboard": the tab title, with the number of open questions.
fn title(waiting: Option<i64>, page: &str) -> String {
    match waiting {
        Some(n) if n > 0 => format!("({n}) {page} · Switchboard"),
        _ => format!("{page} · Switchboard"),
    }
}

pub(super) fn page(
    frame: &Frame,
    kind: &str,
    heading: &str,
    data_session: Option<Uuid>,
    main: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" data-base=(frame.base) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover";
                meta name="color-scheme" content="light dark";
                meta name="theme-color" content="#4338ca";
                title { (title(frame.waiting, heading)) }
                link rel="stylesheet" href=(frame.href(&assets::versioned("inbox.css")));
                link rel="manifest" href=(frame.href("manifest.webmanifest"));
                link rel="icon" type="image/svg+xml" href=(frame.href(&assets::versioned("icon.svg")));
                link rel="apple-touch-icon" href=(frame.href(&assets::versioned("icon-192.png")));
                script src=(frame.href(&assets::versioned("inbox.js"))) defer {}
            }
            body data-page=(kind) data-session=[data_session] data-heading=(heading) {
                a.skip href="#main" { "Skip to content" }
                @if frame.waiting.is_some() {
                    (top_bar(frame))
                }
                main #main tabindex="-1" { (main) }
            }
        }
    }
}

fn top_bar(frame: &Frame) -> Markup {
    let waiting = frame.waiting.unwrap_or(0);
    html! {
        header.topbar {
            a.brand href=(frame.base) {
                img src=(frame.href(&assets::versioned("icon.svg"))) alt="" width="28" height="28";
                span { "Switchboard" }
            }
            nav aria-label="Main" {
                a.nav-inbox href=(frame.base) {
                    "Inbox"
                    span #waiting-badge .badge hidden[waiting == 0]
                        aria-label=(format!("{waiting} waiting")) { (waiting) }
                }
                a.nav-inbox.nav-settings href=(frame.href("settings")) { "Settings" }
            }
            div.actions {
                button #notify-toggle .ghost type="button" hidden {
                    span.long { "Enable notifications" }
                    span.short { "Notify me" }
                }
                details.menu {
                    summary { "Account" }
                    div.menu-body {
                        a.menu-link href=(frame.href("settings")) { "Settings" }
                        form method="post" action=(frame.href("logout")) {
                            button type="submit" { "Sign out" }
                        }
                        form method="post" action=(frame.href("logout/everywhere")) {
                            button type="submit" { "Sign out everywhere" }
                        }
                    }
                }
            }
        }
    }
}

/// A point in time: machine-readable, and relative for people (the script keeps it current).
pub(super) fn when(at: OffsetDateTime, now: OffsetDateTime) -> Markup {
    html! {
        time datetime=(timestamp(at)) title=(timestamp(at)) { (relative(at, now)) }
    }
}

/// "just now", "5 min ago", "3 h ago", "2 days ago", else the date; ahead: "in 5 min".
fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let ahead = (at - now).whole_seconds();
    if ahead > 0 {
        return match ahead {
            0..45 => "in a moment".into(),
            45..3600 => format!("in {} min", (ahead + 30) / 60),
            3600..86_400 => format!("in {} h", ahead / 3600),
            _ => format!("in {} days", ahead / 86_400),
        };
    }
    let seconds = (now - at).whole_seconds().max(0);
    match seconds {
        0..45 => "just now".into(),
        45..3600 => format!("{} min ago", (seconds + 30) / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        86_400..172_800 => "yesterday".into(),
        172_800..604_800 => format!("{} days ago", seconds / 86_400),
        _ => format!("{} {} {}", at.day(), at.month(), at.year()),
    }
}

fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

// ---------------------------------------------------------------------------------------------
// The inbox

/// The inbox page; `failing` channels (whose latest delivery failed) are announced at the top.
pub fn inbox(
    frame: &Frame,
    sessions: &[Listed],
    query: &ListQuery,
    server_url: &str,
    failing: usize,
) -> Markup {
    let now = OffsetDateTime::now_utc();
    let waiting = frame.waiting.unwrap_or(0);
    page(
        frame,
        "inbox",
        "Inbox",
        None,
        html! {
            div.page-head {
                h1 { "Inbox" }
            }
            @if failing > 0 {
                p #failing-notice .notice role="status" {
                    @if failing == 1 {
                        "Notifications to one of your channels are failing."
                    } @else {
                        "Notifications to " (failing) " of your channels are failing."
                    }
                    " " a href=(frame.href("settings#deliveries")) { "See what went wrong" }
                }
            }
            p #connection .connection role="status" hidden { "Reconnecting…" }
            form #list-filter .list-filter method="get" action=(frame.base) role="search" {
                label.visually-hidden for="list-q" { "Search sessions" }
                input #list-q type="search" name="q" value=[query.search.as_deref()]
                    placeholder="Search title, project, agent, branch, host…" autocomplete="off";
                label.visually-hidden for="list-show" { "Show" }
                select #list-show name="show" {
                    @for (value, text) in SHOW_CHOICES {
                        option value=(value) selected[query.show.as_str() == *value] { (text) }
                    }
                }
                button type="submit" { "Search" }
            }
            (session_list(frame, sessions, query, waiting, now, server_url))
        },
    )
}

/// The list's filters, as the select offers them.
const SHOW_CHOICES: &[(&str, &str)] = &[
    ("open", "Open sessions"),
    ("waiting", "Waiting for you"),
    ("working", "Working"),
    ("idle", "Idle"),
    ("exited", "Not running"),
    ("ended", "Ended (archive)"),
    ("all", "All sessions"),
];

/// A page of the list of sessions: waiting for an answer first, then by last activity, with
/// "Show more" when there may be more. Also the fragment live updates and "Show more" fetch.
pub fn session_list(
    frame: &Frame,
    sessions: &[Listed],
    query: &ListQuery,
    waiting: i64,
    now: OffsetDateTime,
    server_url: &str,
) -> Markup {
    let filtered = query.search.is_some() || query.show != Show::Open;
    let more = sessions.len() as i64 >= query.limit;
    let after = sessions.last().map(Listed::after);
    html! {
        div #sessions data-waiting=(waiting) data-show=(query.show.as_str())
            data-q=(query.search.as_deref().unwrap_or("")) {
            p #summary .summary {
                @match waiting {
                    0 => "Nothing is waiting for you.",
                    1 => "1 agent is waiting for you.",
                    n => { (n) " agents are waiting for you." }
                }
            }
            @if sessions.is_empty() && query.after.is_none() {
                @if filtered {
                    p.empty-filter { "No sessions match." }
                } @else {
                    (empty_inbox(server_url))
                }
            }
            ul #rows .rows {
                @for s in sessions { (row(frame, s, now)) }
            }
            @if let (true, Some(after)) = (more, after) {
                button #more type="button" data-after-waiting=(after.waiting)
                    data-after-at=(timestamp(after.last_activity_at)) data-after-id=(after.id) {
                    "Show more"
                }
            }
        }
    }
}

/// A listed session's name for people: as [`session_name`] names a session.
fn listed_name(s: &Listed) -> String {
    match (&s.title, &s.project, &s.cwd) {
        (Some(title), _, _) => title.clone(),
        (None, Some(project), _) => format!("{} in {project}", s.agent_type),
        (None, None, Some(cwd)) => format!("{} in {cwd}", s.agent_type),
        (None, None, None) => format!("{} {}", s.agent_type, short(s.id)),
    }
}

fn row(frame: &Frame, s: &Listed, now: OffsetDateTime) -> Markup {
    let (class, label) = liveness_label(s.liveness());
    let question = s.question.unwrap_or(false);
    html! {
        li class={ "row " (class) } data-session-id=(s.id) data-message-id=[s.message_id] {
            a.row-link href=(frame.href(&session_path(s.id))) {
                span.dot aria-hidden="true" {}
                span.row-main {
                    span.row-top {
                        span.title { (listed_name(s)) }
                        span class={ "pill " (class) } { (label) }
                        @if s.open_questions > 1 {
                            span.count-pill { (s.open_questions) " questions" }
                        }
                    }
                    span.row-context {
                        span.agent-type { (s.agent_type) }
                        @if let Some(project) = &s.project { " · " (project) }
                        @if let Some(branch) = &s.branch { " · " span.branch { (branch) } }
                        @if let Some(host) = &s.host { " · " (host) }
                        " · " span.session-id { (short(s.id)) }
                    }
                    span.preview {
                        @if question { strong.q { "Question: " } }
                        @match &s.preview {
                            Some(text) => (markdown::plain(text)),
                            None => em { "No messages yet" },
                        }
                    }
                }
                span.row-side {
                    (when(s.last_seen_at, now))
                    @if s.unread_count > 0 {
                        span.queued title="Replies the agent has not received yet" {
                            (s.unread_count) " unread"
                        }
                    }
                }
            }
        }
    }
}

fn empty_inbox(server_url: &str) -> Markup {
    html! {
        div.empty {
            h2 { "No agent sessions yet" }
            p { "Connect an agent, and what it does and asks shows up here the moment it happens." }
            (connect_agents(server_url))
        }
    }
}

/// How to connect the coding agents to this server (the inbox's empty state, Settings):
/// `switchboard setup`, with copy buttons.
pub fn connect_agents(server_url: &str) -> Markup {
    let server = server_url.trim_end_matches('/');
    let setup = |agent: Agent| {
        format!(
            "export {}=<an API key of this server>\nswitchboard setup {} --url {server}",
            crate::agents::setup::KEY_VAR,
            agent.command()
        )
    };
    let mcp = format!("{server}/mcp");
    let agents = [
        (
            Agent::ClaudeCode,
            "Then run claude as usual: what you type, each tool call and Claude's answers show \
             here; approve tool calls from any device; when Claude finishes, tell it what to do \
             next.",
        ),
        (
            Agent::Codex,
            "Then run codex as usual: its prompts, commands and answers show here, its approval \
             requests wait for you, and when it finishes you say what next.",
        ),
        (
            Agent::Gemini,
            "Then run gemini with --approval-mode yolo: each shell command and file write waits \
             for your Allow here (Gemini's hooks can refuse a call, not allow one).",
        ),
    ];
    html! {
        div.connect {
            @for (agent, then) in agents {
                h3 { (agent.name()) }
                p { "On the machine where " (agent.name()) " runs:" }
                div.copyable {
                    pre { code id={ "setup-" (agent.command()) } { (setup(agent)) } }
                    button.copy.small type="button" data-copy={ "setup-" (agent.command()) }
                        aria-label={ "Copy the " (agent.name()) " setup commands" } { "Copy" }
                }
                p.fine {
                    (then) " "
                    code { "switchboard setup " (agent.command()) " --uninstall" }
                    " takes it all out again."
                }
            }
            h3 { "Any MCP client" }
            div.copyable {
                pre { code #setup-mcp { (mcp) } }
                button.copy.small type="button" data-copy="setup-mcp"
                    aria-label="Copy the MCP address" { "Copy" }
            }
            p.fine { "Streamable HTTP, with the header " code { "Authorization: Bearer <key>" } "." }
            p.copied.fine role="status" {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A session

/// How a session is doing, as the sessions read model says (`read::Liveness`).
pub use super::read::Liveness;

fn liveness_label(liveness: Liveness) -> (&'static str, &'static str) {
    match liveness {
        Liveness::Waiting => ("waiting", "Waiting for you"),
        Liveness::Working => ("active", "Working"),
        Liveness::Exited => ("idle", "Not running"),
        Liveness::Idle => ("idle", "Idle"),
        Liveness::Ended => ("ended", "Ended"),
    }
}

/// What the session page shows about the session itself.
pub struct SessionHead<'a> {
    pub session: &'a Session,
    pub liveness: Liveness,
    /// Its agent's last sign of life (a message, a heartbeat).
    pub last_seen_at: OffsetDateTime,
}

/// A session's name for people: its title, else where it runs, else its agent and id.
pub fn session_name(session: &Session) -> String {
    let c = &session.context;
    match (&c.title, &c.project, &c.cwd) {
        (Some(title), _, _) => title.clone(),
        (None, Some(project), _) => format!("{} in {project}", session.agent_type),
        (None, None, Some(cwd)) => format!("{} in {cwd}", session.agent_type),
        (None, None, None) => format!("{} {}", session.agent_type, short(session.id)),
    }
}

/// What the session page knows of the questions among the events it shows: each one's row,
/// who waits for the open ones, and the time it was read at.
pub struct Questions {
    pub rows: HashMap<Uuid, Question>,
    pub waits: HashMap<Uuid, Wait>,
    /// The person's messages the agent has not received yet (their delivery is shown).
    pub unread: HashSet<Uuid>,
    pub now: OffsetDateTime,
}

impl Questions {
    /// The question a person's message (event `id`) answered, by its row.
    fn answered_by(&self, id: Uuid) -> Option<&Question> {
        self.rows.values().find(|q| q.answer_id == Some(id))
    }

    /// The question the reply box answers unless the person picks another: the newest that
    /// can be answered in words (approvals have their own buttons).
    fn default_target(&self) -> Option<&Question> {
        self.rows
            .values()
            .filter(|q| q.answerable_at(self.now) && q.kind != QuestionKind::Approval)
            .max_by_key(|q| (q.asked_seq, q.id))
    }
}

/// The session page: its header, changes, conversation and reply box.
pub fn session(
    frame: &Frame,
    head: &SessionHead,
    events: &[StoredEvent],
    questions: &Questions,
    earlier: bool,
) -> Markup {
    let heading = session_name(head.session);
    page(
        frame,
        "session",
        &heading,
        Some(head.session.id),
        html! {
            p #connection .connection role="status" hidden { "Reconnecting…" }
            (session_parts(frame, head, questions.now))
            @if earlier {
                p.earlier { "Earlier messages are not shown." }
            }
            ol #timeline .timeline aria-label="Conversation" {
                (timeline(events, questions))
            }
            (composer(head, events, questions))
        },
    )
}

/// The parts of a session page that change as a whole: header and changes. Also sent, with the
/// new conversation items, as the fragment live updates apply.
fn session_parts(frame: &Frame, head: &SessionHead, now: OffsetDateTime) -> Markup {
    let session = head.session;
    let (class, label) = liveness_label(head.liveness);
    let c = &session.context;
    html! {
        div #session-head .session-head data-status=(class) {
            div.head-bar {
                a.back href=(frame.base) { "← Inbox" }
                @if session.status != SessionStatus::Completed {
                    div.end-session {
                        button #end-session .danger type="button" aria-expanded="false" { "End session" }
                        div #end-confirm .end-confirm hidden role="group" aria-label="Confirm" {
                            span { "End this session? The agent can send it no more messages." }
                            button #end-confirm-yes .danger-solid type="button" { "Yes, end it" }
                            button #end-confirm-no type="button" { "Cancel" }
                        }
                    }
                }
            }
            div.title-row {
                h1 #session-title { (session_name(session)) }
                button #rename .ghost.small type="button" aria-expanded="false"
                    aria-controls="rename-form" { "Rename" }
                span class={ "pill " (class) } { (label) }
                @if session.open_questions > 1 {
                    span.count-pill { (session.open_questions) " questions open" }
                }
            }
            p.meta {
                span.agent-type { (session.agent_type) }
                @if let Some(project) = &c.project { " · " span.chip { (project) } }
                @if let Some(branch) = &c.branch { " · " span.chip.branch { (branch) } }
                @if let Some(host) = &c.host { " · " span.chip { (host) } }
                @if let Some(client) = &c.client { " · " span.chip { (client) } }
            }
            form #rename-form .rename-form hidden {
                label.visually-hidden for="rename-input" { "Title" }
                input #rename-input type="text" name="title" maxlength="200" autocomplete="off"
                    value=(c.title.as_deref().unwrap_or("")) placeholder="What is this session about?";
                button.primary type="submit" { "Save" }
                button #rename-cancel type="button" { "Cancel" }
                p.error role="alert" {}
            }
            @if let Some(cwd) = &c.cwd { p.meta.cwd { code { (cwd) } } }
            p.meta {
                "Session " code { (short(session.id)) }
                " · started " (when(session.started_at, now))
                " · last sign of life " (when(head.last_seen_at, now))
            }
        }
        (changes(session.git_diff.as_deref()))
    }
}

/// Changed lines above which a diff's files start folded.
const DIFF_FOLD_LINES: usize = 200;

/// The session's git diff, file by file.
fn changes(diff: Option<&str>) -> Markup {
    let files = diff.map(markdown::files).unwrap_or_default();
    let added: usize = files.iter().map(|f| f.added).sum();
    let removed: usize = files.iter().map(|f| f.removed).sum();
    let open = added + removed <= DIFF_FOLD_LINES;
    html! {
        section #changes .changes hidden[files.is_empty()] aria-label="Changes" {
            @if !files.is_empty() {
                details {
                    summary {
                        "Changes: " (files.len()) @if files.len() == 1 { " file" } @else { " files" }
                        " " span.add { "+" (added) } " " span.del { "−" (removed) }
                    }
                    @if !open {
                        p.fine { "A large change: open a file to see its lines." }
                    }
                    @for file in &files {
                        details.file open[open] {
                            summary {
                                code { (file.path) }
                                " " span.add { "+" (file.added) } " " span.del { "−" (file.removed) }
                            }
                            (markdown::diff_lines(file.text))
                        }
                    }
                }
            }
        }
    }
}

/// Conversation items, one per event that a person would want to see.
pub fn timeline(events: &[StoredEvent], questions: &Questions) -> Markup {
    timeline_knowing(events, questions, &answers(events))
}

/// [`timeline`], knowing the answers given in `answers` (which may be outside `events`).
fn timeline_knowing(
    events: &[StoredEvent],
    questions: &Questions,
    answers: &HashMap<Uuid, (bool, bool)>,
) -> Markup {
    html! {
        @for stored in events {
            (item(stored, questions, answers))
        }
    }
}

/// What the page knows of each answer among `events`: whether it came from the inbox, and
/// whether it chose "Allow".
fn answers(events: &[StoredEvent]) -> HashMap<Uuid, (bool, bool)> {
    events
        .iter()
        .filter(|e| e.event_type == "user_message")
        .filter_map(|e| match Event::from_stored(&e.event_type, &e.data) {
            Ok(Event::UserMessage(m)) => Some((
                e.event_id,
                (from_inbox(e), Approval::allows(m.chosen_option.as_deref())),
            )),
            _ => None,
        })
        .collect()
}

fn from_inbox(stored: &StoredEvent) -> bool {
    serde_json::from_str::<Metadata>(&stored.metadata).is_ok_and(|m| m.web_session.is_some())
}

/// The most of one message a page renders; the rest is a click away in the API.
const MAX_RENDERED_BYTES: usize = 64 * 1024;
/// Messages longer than this (characters, or lines) start folded, with "Show all".
const FOLD_CHARS: usize = 1500;
const FOLD_LINES: usize = 25;

/// A message's text as rendered: all of it, or its first [`MAX_RENDERED_BYTES`] and a note;
/// long ones folded.
fn message(content: &str) -> Markup {
    let long = content.len() > FOLD_CHARS || content.lines().count() > FOLD_LINES;
    let body = if content.len() <= MAX_RENDERED_BYTES {
        markdown::render(content)
    } else {
        let mut end = MAX_RENDERED_BYTES;
        while !content.is_char_boundary(end) {
            end -= 1;
        }
        html! {
            (markdown::render(&content[..end]))
            p.cut { "… (" (content.len() / 1024) " KB in all; the rest is not shown here)" }
        }
    };
    html! {
        @if long {
            div.md.fold { (body) }
            button.unfold.ghost type="button" aria-expanded="false" { "Show all" }
        } @else {
            div.md { (body) }
        }
    }
}

/// The state of a question card, as the page compares it when it refreshes (an item whose
/// state is the same is left alone, so a half-typed reason survives).
fn card_state(q: &Question, wait: Option<&Wait>, now: OffsetDateTime) -> String {
    let waiting = wait.map_or("unknown", |w| {
        if w.waiting_at(now) {
            "waiting"
        } else if w.abandoned_at.is_some() {
            "abandoned"
        } else {
            "not-waiting"
        }
    });
    let answerable = if q.answerable_at(now) { "a" } else { "x" };
    format!("{}:{waiting}:{answerable}", q.status.as_str())
}

fn item(
    stored: &StoredEvent,
    questions: &Questions,
    answers: &HashMap<Uuid, (bool, bool)>,
) -> Markup {
    let Ok(event) = Event::from_stored(&stored.event_type, &stored.data) else {
        return html! {};
    };
    let now = questions.now;
    let at = when(stored.recorded_at, now);
    let system = |text: &str| {
        html! {
            li.item.system data-seq=(stored.seq) { span { (text) " · " (at) } }
        }
    };
    match event {
        Event::AgentMessage(m) => {
            let row = questions.rows.get(&stored.event_id);
            let question = m.requires_user_input || row.is_some();
            let standing = row.map(|q| {
                let answer = q.answer_id.and_then(|id| answers.get(&id));
                Standing {
                    question: q,
                    wait: questions.waits.get(&q.id),
                    answered_in_inbox: answer.map(|a| a.0),
                    allowed: answer.map(|a| a.1),
                    now,
                }
            });
            let state = row.map(|q| card_state(q, questions.waits.get(&q.id), now));
            if let (Some(activity), false) = (&m.activity, question) {
                return tool_call(stored, activity, &at);
            }
            let tag = match row.map(|q| q.kind) {
                Some(QuestionKind::Approval) => Some("Approval"),
                Some(QuestionKind::NextInstruction) => Some("What next?"),
                _ if m.approval.is_some() => Some("Approval"),
                _ if question => Some("Question"),
                _ => None,
            };
            html! {
                li.item.agent.question[question] id={ "m-" (stored.event_id) }
                    data-seq=(stored.seq) data-message-id=(stored.event_id)
                    data-question-id=[row.map(|q| q.id)]
                    data-question-status=[row.map(|q| q.status.as_str())]
                    data-question-kind=[row.map(|q| q.kind.as_str())]
                    data-state=[state] {
                    div.bubble {
                        div.who {
                            span.name { "Agent" }
                            @if let Some(tag) = tag { span.tag { (tag) } }
                            (at)
                        }
                        @if m.approval.is_none() { (message(&m.content)) }
                        @if question { (decisions::question(&m, standing.as_ref())) }
                    }
                }
            }
        }
        Event::UserMessage(m) => {
            let answered = m
                .answers
                .question()
                .and_then(|id| questions.rows.get(&id))
                .or_else(|| questions.answered_by(stored.event_id));
            let named = m.answers.question().or(answered.map(|q| q.id));
            let verdict = match answered.map(|q| q.kind) {
                Some(QuestionKind::Approval)
                    if m.chosen_option.as_deref() == Some(Approval::ALWAYS_ALLOW) =>
                {
                    Some(("allowed", "Always allowed".to_owned()))
                }
                Some(QuestionKind::Approval) if Approval::allows(m.chosen_option.as_deref()) => {
                    Some(("allowed", "Allowed".to_owned()))
                }
                Some(QuestionKind::Approval) => Some(("denied", "Denied".to_owned())),
                _ => m
                    .chosen_option
                    .as_ref()
                    .map(|o| ("chose", format!("Chose {o}"))),
            };
            let pending = questions.unread.contains(&stored.event_id);
            html! {
                li.item.user id={ "m-" (stored.event_id) } data-seq=(stored.seq)
                    data-message-id=(stored.event_id) data-answers=[named]
                    data-pending[pending] {
                    div.bubble {
                        div.who {
                            span.name { "You" }
                            @if m.terminal {
                                span.via.terminal title="Typed in the agent's own terminal" { "in the terminal" }
                            } @else if !from_inbox(stored) { span.via { "via API" } }
                            @if let Some((class, text)) = &verdict {
                                span class={ "tag " (class) } { (text) }
                            }
                            @if let Some(q) = named {
                                a.answers href={ "#m-" (q) } { "↩ answer" }
                            }
                            (at)
                        }
                        (message(&m.content))
                        (decisions::answer(&m))
                        // Answers say so where they are answered; other messages say whether
                        // the agent has them yet.
                        @if !m.terminal && named.is_none() {
                            p.handover {
                                @if pending { "Not delivered yet: the agent gets it at its next step" }
                                @else { "Delivered" }
                            }
                        }
                    }
                }
            }
        }
        Event::SessionStarted(_) => system("Session started"),
        Event::SessionEnded(_) => system("Session ended"),
        Event::InputRequested(_) => system("The agent asked for a reply"),
        Event::MessagesRead(_) => system("The agent received your replies"),
        Event::MessagesReceived(_) => system("The agent received your answer"),
        Event::MessagesReturned(_) => {
            system("A reply the agent gave up waiting for was kept for it")
        }
        Event::QuestionWithdrawn(w) => {
            let who = match w.by {
                projections::Actor::User => "You withdrew a question",
                projections::Actor::Agent => "The agent withdrew a question",
                projections::Actor::System => "Switchboard withdrew a question",
            };
            html! {
                li.item.system data-seq=(stored.seq) {
                    span { (who) ": " (w.reason) " · " (at) }
                }
            }
        }
        Event::QuestionExpired(_) => system("A question expired unanswered"),
        Event::AgentExited(e) => html! {
            li.item.system data-seq=(stored.seq) {
                span { "The agent exited (" (e.reason) "); it gets what you send when it runs again · " (at) }
            }
        },
        // Shown in the session's head; the item only keeps the page's place in the stream.
        Event::SessionDescribed(_) => html! { li.item hidden data-seq=(stored.seq) {} },
        Event::GitDiffUpdated(d) if d.git_diff.is_empty() => system("Changes cleared"),
        Event::GitDiffUpdated(_) => system("Changes updated"),
        // Account events are not about a session.
        Event::UserCreated(_)
        | Event::UserRenamed(_)
        | Event::NotificationChannelAdded(_)
        | Event::NotificationChannelRemoved(_)
        | Event::NotificationPolicyChanged(_)
        | Event::AppConnected(_)
        | Event::AppDisconnected(_) => html! {},
    }
}

/// A tool call the agent's host reported, compactly: the tool, what it was used on, how it
/// went and how long it took; its output folded. Runs of them fold further in the page.
fn tool_call(stored: &StoredEvent, a: &projections::ToolActivity, at: &Markup) -> Markup {
    let took = a.duration_ms.map(|ms| {
        if ms < 1000 {
            format!("{ms} ms")
        } else {
            format!("{:.1} s", ms as f64 / 1000.0)
        }
    });
    html! {
        li.item.activity id={ "m-" (stored.event_id) } data-seq=(stored.seq)
            data-message-id=(stored.event_id) data-ok=(a.ok) {
            div.tool-line {
                span.outcome aria-label=(if a.ok { "succeeded" } else { "failed" }) {
                    (if a.ok { "✓" } else { "✗" })
                }
                span.tool { (a.tool) }
                @if !a.summary.is_empty() { code.used-on { (a.summary) } }
                @if let Some(took) = &took { span.took { (took) } }
                span.at { (at) }
            }
            @if let Some(output) = &a.output {
                details.output {
                    summary { "Output" }
                    pre { code { (output) } }
                }
            }
        }
    }
}

/// Characters of a question the reply box's "Answering:" shows.
const TARGET_CHARS: usize = 120;

fn composer(head: &SessionHead, events: &[StoredEvent], questions: &Questions) -> Markup {
    let target = questions.default_target();
    let target_text = target
        .and_then(|q| events.iter().find(|e| e.event_id == q.id))
        .and_then(|e| match Event::from_stored(&e.event_type, &e.data) {
            Ok(Event::AgentMessage(m)) => Some(markdown::plain(&m.content)),
            _ => None,
        })
        .map(|t| cut_chars(&t, TARGET_CHARS))
        .unwrap_or_default();
    html! {
        @if head.session.status == SessionStatus::Completed {
            p #composer .ended-note { "This session has ended." }
        } @else {
            form #composer .composer data-session=(head.session.id) {
                div #reply-target .reply-target hidden[target.is_none()] {
                    span.label { "Answering:" }
                    span #reply-target-text { (target_text) }
                    button #reply-target-clear .ghost type="button"
                        title="Send a message that answers no question" { "Not an answer" }
                }
                input #reply-question type="hidden" name="question_id"
                    value=(target.map(|q| q.id.to_string()).unwrap_or_default());
                label.visually-hidden for="reply" { "Reply" }
                textarea #reply name="content" rows="1" required
                    placeholder="Reply to the agent…" autocomplete="off" {}
                button.primary type="submit" { "Send" }
                p #not-running .hint.not-running hidden[head.liveness != Liveness::Exited] {
                    "The agent is not running: what you send waits, and reaches it when it next runs."
                }
                p.hint { "Enter to send · Shift+Enter for a new line" }
                p #composer-error .error role="alert" {}
            }
        }
    }
}

/// The unread messages' ids, space separated (the page marks the others delivered).
fn unread_list(unread: &HashSet<Uuid>) -> String {
    unread
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cut_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The fragment a session page applies on news: parts replaced whole, new conversation items
/// (after the sequence number the page has), question cards whose state may have changed (open
/// ones, and those closed since), the question the reply box answers by default, and whether
/// more is to be asked for.
#[allow(clippy::too_many_arguments)]
pub fn session_update(
    frame: &Frame,
    head: &SessionHead,
    events: &[StoredEvent],
    cards: &[StoredEvent],
    answered_by: &[StoredEvent],
    questions: &Questions,
    waiting: i64,
    more: bool,
) -> Markup {
    let now = questions.now;
    let default_target = questions.default_target().map(|q| q.id);
    let mut known = answers(events);
    known.extend(answers(answered_by));
    html! {
        div #update data-waiting=(waiting) data-status=(liveness_label(head.liveness).0)
            data-more=(more) data-default-target=[default_target]
            data-unread=(unread_list(&questions.unread)) data-liveness=(head.liveness.as_str()) {
            (session_parts(frame, head, now))
            ol #new-items { (timeline_knowing(events, questions, &known)) }
            ol #cards { (timeline_knowing(cards, questions, &known)) }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signing in, and errors

/// The sign-in page: paste an API key (a sign-in link leads elsewhere).
pub fn sign_in(frame: &Frame, next: &str, error: Option<&str>) -> Markup {
    sign_in_for(frame, next, error, None)
}

/// The sign-in page, saying what for (`connecting`: the app that waits for the person).
pub fn sign_in_for(
    frame: &Frame,
    next: &str,
    error: Option<&str>,
    connecting: Option<&str>,
) -> Markup {
    page(
        frame,
        "sign-in",
        "Sign in",
        None,
        html! {
            div.card {
                img.logo src=(frame.href(&assets::versioned("icon.svg"))) alt="" width="48" height="48";
                h1 { "Sign in to Switchboard" }
                @if let Some(app) = connecting {
                    p.lead { "to connect " strong { (app) } " to your account." }
                }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                p {
                    "Open a sign-in link (run "
                    code { "switchboard login-link --user <your user id>" }
                    "), or paste an API key."
                }
                form.stack method="post" action=(frame.href("login")) {
                    label for="api-key" { "API key" }
                    input #api-key type="password" name="api_key" autocomplete="off"
                        spellcheck="false" required;
                    input type="hidden" name="next" value=(next);
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// What a sign-in link shows: a form that its script submits at once. Link previews fetch
/// the page without submitting it, so they cannot use the link up.
pub fn link_sign_in(frame: &Frame) -> Markup {
    page(
        frame,
        "sign-in-link",
        "Sign in",
        None,
        html! {
            div.card {
                img.logo src=(frame.href(&assets::versioned("icon.svg"))) alt="" width="48" height="48";
                h1 { "Signing you in…" }
                form #link-sign-in .stack method="post" {
                    button.primary type="submit" { "Continue to the inbox" }
                }
                p.fine { "Each sign-in link works once." }
            }
        },
    )
}

/// An answer from a notification's link, before it is given: what was asked, the answer, a
/// button that gives it (opening the link answers nothing), and the way to the session.
pub fn answer_confirm(frame: &Frame, asked: &str, option: &str, session: &str) -> Markup {
    page(
        frame,
        "answer",
        "Answer",
        None,
        html! {
            div.card {
                h1 { "Answer “" (option) "”?" }
                blockquote.asked { (asked) }
                form #answer .stack method="post" {
                    button.primary type="submit" { "Answer “" (option) "”" }
                }
                p.fine { a href=(session) { "Reply in the inbox instead" } }
            }
        },
    )
}

/// The answer was given.
pub fn answer_given(frame: &Frame, option: &str, session: &str) -> Markup {
    page(
        frame,
        "answered",
        "Answered",
        None,
        html! {
            div.card {
                h1 { "Answered “" (option) "”" }
                p { "The agent has your answer." }
                p { a.button href=(session) { "Open the session" } }
            }
        },
    )
}

/// A page that says what went wrong and where to go from here.
pub fn problem(frame: &Frame, heading: &str, text: &str, sign_in: bool) -> Markup {
    page(
        frame,
        "problem",
        heading,
        None,
        html! {
            div.card {
                h1 { (heading) }
                p { (text) }
                p {
                    @if sign_in {
                        a.button.primary href=(frame.href("login")) { "Sign in" }
                    } @else {
                        a.button href=(frame.base) { "Back to the inbox" }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn times_read_as_people_say_them_past_and_ahead() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(relative(now - Duration::seconds(10), now), "just now");
        assert_eq!(relative(now - Duration::minutes(5), now), "5 min ago");
        assert_eq!(relative(now + Duration::seconds(10), now), "in a moment");
        assert_eq!(relative(now + Duration::seconds(70), now), "in 1 min");
        assert_eq!(relative(now + Duration::minutes(5), now), "in 5 min");
        assert_eq!(relative(now + Duration::hours(3), now), "in 3 h");
    }
}
