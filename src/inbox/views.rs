//! The inbox's HTML: pages and the fragments live updates swap in. Templates are maud, which
//! escapes every interpolated value at compile time; agent text goes through
//! [`markdown::render`]. No inline script or style anywhere (the CSP forbids them).

use maud::{DOCTYPE, Markup, html};
use projections::{Event, Metadata, SessionStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use super::read::Listed;
use super::{assets, decisions, markdown, session_path};
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

/// "just now", "5 min ago", "3 h ago", "2 days ago", else the date.
fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
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

fn status_label(status: SessionStatus) -> (&'static str, &'static str) {
    match status {
        SessionStatus::AwaitingInput => ("waiting", "Waiting for you"),
        SessionStatus::Active => ("active", "Working"),
        SessionStatus::Completed => ("ended", "Ended"),
    }
}

fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

// ---------------------------------------------------------------------------------------------
// The inbox

/// The inbox page; `failing` channels (whose latest delivery failed) are announced at the top.
pub fn inbox(frame: &Frame, sessions: &[Listed], public_mcp_url: &str, failing: usize) -> Markup {
    let now = OffsetDateTime::now_utc();
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
            (session_list(frame, sessions, now, public_mcp_url))
        },
    )
}

/// The list of sessions, grouped: waiting for an answer, working, ended. Also the fragment
/// live updates swap in.
pub fn session_list(
    frame: &Frame,
    sessions: &[Listed],
    now: OffsetDateTime,
    public_mcp_url: &str,
) -> Markup {
    let group = |status| sessions.iter().filter(move |s| s.status() == status);
    let waiting = group(SessionStatus::AwaitingInput).count();
    html! {
        div #sessions data-waiting=(waiting) {
            p #summary .summary {
                @match waiting {
                    0 => "Nothing is waiting for you.",
                    1 => "1 agent is waiting for you.",
                    n => { (n) " agents are waiting for you." }
                }
            }
            @if sessions.is_empty() {
                (empty_inbox(public_mcp_url))
            }
            @for (status, heading) in [
                (SessionStatus::AwaitingInput, "Waiting for you"),
                (SessionStatus::Active, "Working"),
                (SessionStatus::Completed, "Ended"),
            ] {
                @let rows: Vec<&Listed> = group(status).collect();
                @if !rows.is_empty() {
                    @let id = format!("group-{}", status_label(status).0);
                    section.group aria-labelledby=(id) {
                        h2 id=(id) { (heading) span.count { (rows.len()) } }
                        ul.rows {
                            @for s in rows { (row(frame, s, now)) }
                        }
                    }
                }
            }
        }
    }
}

fn row(frame: &Frame, s: &Listed, now: OffsetDateTime) -> Markup {
    let (class, label) = status_label(s.status());
    let question = s.question.unwrap_or(false) && s.status() == SessionStatus::AwaitingInput;
    html! {
        li class={ "row " (class) } data-session-id=(s.id) data-message-id=[s.message_id] {
            a.row-link href=(frame.href(&session_path(s.id))) {
                span.dot aria-hidden="true" {}
                span.row-main {
                    span.row-top {
                        span.agent-type { (s.agent_type) }
                        span.session-id { (short(s.id)) }
                        span class={ "pill " (class) } { (label) }
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
                    (when(s.last_activity_at, now))
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

fn empty_inbox(mcp_url: &str) -> Markup {
    html! {
        div.empty {
            h2 { "No agent sessions yet" }
            p { "Connect an agent, and what it does and asks shows up here the moment it happens." }
            p { "Claude Code:" }
            pre { code {
                "claude mcp add --transport http switchboard " (mcp_url)
                " \\\n  --header \"Authorization: Bearer $SWITCHBOARD_API_KEY\""
            } }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A session

/// What the session page shows about the session itself.
pub struct SessionHead<'a> {
    pub id: Uuid,
    pub agent_type: &'a str,
    pub status: SessionStatus,
    pub started_at: OffsetDateTime,
    pub last_activity_at: OffsetDateTime,
    pub git_diff: Option<&'a str>,
}

/// The session page: its header, changes, conversation and reply box.
pub fn session(frame: &Frame, head: &SessionHead, events: &[StoredEvent], earlier: bool) -> Markup {
    let now = OffsetDateTime::now_utc();
    let heading = format!("{} {}", head.agent_type, short(head.id));
    page(
        frame,
        "session",
        &heading,
        Some(head.id),
        html! {
            (session_parts(frame, head, now))
            @if earlier {
                p.earlier { "Earlier messages are not shown." }
            }
            ol #timeline .timeline aria-label="Conversation" {
                (timeline(events, now))
            }
            (composer(head))
        },
    )
}

/// The parts of a session page that change as a whole: header and changes. Also sent, with the
/// new conversation items, as the fragment live updates apply.
fn session_parts(frame: &Frame, head: &SessionHead, now: OffsetDateTime) -> Markup {
    let (class, label) = status_label(head.status);
    html! {
        div #session-head .session-head data-status=(class) {
            div.head-bar {
                a.back href=(frame.base) { "← Inbox" }
                @if head.status != SessionStatus::Completed {
                    button #end-session .danger type="button" { "End session" }
                }
            }
            div.title-row {
                h1 { (head.agent_type) }
                span class={ "pill " (class) } { (label) }
            }
            p.meta {
                "Session " code { (short(head.id)) }
                " · started " (when(head.started_at, now))
                " · last activity " (when(head.last_activity_at, now))
            }
        }
        (changes(head.git_diff))
    }
}

/// The session's git diff, file by file.
fn changes(diff: Option<&str>) -> Markup {
    let files = diff.map(markdown::files).unwrap_or_default();
    let added: usize = files.iter().map(|f| f.added).sum();
    let removed: usize = files.iter().map(|f| f.removed).sum();
    html! {
        section #changes .changes hidden[files.is_empty()] aria-label="Changes" {
            @if !files.is_empty() {
                details {
                    summary {
                        "Changes: " (files.len()) @if files.len() == 1 { " file" } @else { " files" }
                        " " span.add { "+" (added) } " " span.del { "−" (removed) }
                    }
                    @for file in &files {
                        details.file open {
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
pub fn timeline(events: &[StoredEvent], now: OffsetDateTime) -> Markup {
    // Messages that became questions later (request-input) are shown as questions.
    let asked: Vec<Uuid> = events
        .iter()
        .filter_map(|e| match Event::from_stored(&e.event_type, &e.data) {
            Ok(Event::InputRequested(r)) => Some(r.message_id),
            _ => None,
        })
        .collect();
    // A question is open until a person says something after it.
    let last_reply = events
        .iter()
        .rev()
        .find(|e| e.event_type == "user_message")
        .map_or(0, |e| e.seq);
    html! {
        @for stored in events {
            (item(stored, &asked, stored.seq > last_reply, now))
        }
    }
}

/// The most of one message a page renders; the rest is a click away in the API.
const MAX_RENDERED_BYTES: usize = 64 * 1024;

/// A message's text as rendered: all of it, or its first [`MAX_RENDERED_BYTES`] and a note.
fn message(content: &str) -> Markup {
    if content.len() <= MAX_RENDERED_BYTES {
        return markdown::render(content);
    }
    let mut end = MAX_RENDERED_BYTES;
    while !content.is_char_boundary(end) {
        end -= 1;
    }
    html! {
        (markdown::render(&content[..end]))
        p.cut { "… (" (content.len() / 1024) " KB in all; the rest is not shown here)" }
    }
}

fn item(stored: &StoredEvent, asked: &[Uuid], unanswered: bool, now: OffsetDateTime) -> Markup {
    let Ok(event) = Event::from_stored(&stored.event_type, &stored.data) else {
        return html! {};
    };
    let from_inbox =
        serde_json::from_str::<Metadata>(&stored.metadata).is_ok_and(|m| m.web_session.is_some());
    let at = when(stored.recorded_at, now);
    let system = |text: &str| {
        html! {
            li.item.system data-seq=(stored.seq) { span { (text) " · " (at) } }
        }
    };
    match event {
        Event::AgentMessage(m) => {
            let question = m.requires_user_input || asked.contains(&stored.event_id);
            html! {
                li.item.agent.question[question] id={ "m-" (stored.event_id) }
                    data-seq=(stored.seq) data-message-id=(stored.event_id) {
                    div.bubble {
                        div.who {
                            span.name { "Agent" }
                            @if m.approval.is_some() { span.tag { "Approval" } }
                            @else if question { span.tag { "Question" } }
                            (at)
                        }
                        @if m.approval.is_none() { div.md { (message(&m.content)) } }
                        (decisions::controls(&m, question && unanswered))
                    }
                }
            }
        }
        Event::UserMessage(m) => html! {
            li.item.user id={ "m-" (stored.event_id) } data-seq=(stored.seq)
                data-message-id=(stored.event_id) {
                div.bubble {
                    div.who {
                        span.name { "You" }
                        @if !from_inbox { span.via { "via API" } }
                        @if let Some(option) = &m.chosen_option { span.tag { "Chose " (option) } }
                        (at)
                    }
                    div.md { (message(&m.content)) }
                    (decisions::answer(&m))
                }
            }
        },
        Event::SessionStarted(_) => system("Session started"),
        Event::SessionEnded(_) => system("Session ended"),
        Event::InputRequested(_) => system("The agent asked for a reply"),
        Event::MessagesRead(_) => system("The agent received your replies"),
        Event::MessagesReturned(_) => {
            system("A reply the agent gave up waiting for was kept for it")
        }
        Event::GitDiffUpdated(d) if d.git_diff.is_empty() => system("Changes cleared"),
        Event::GitDiffUpdated(_) => system("Changes updated"),
        // Account events are not about a session.
        Event::UserCreated(_)
        | Event::UserRenamed(_)
        | Event::NotificationChannelAdded(_)
        | Event::NotificationChannelRemoved(_) => html! {},
    }
}

fn composer(head: &SessionHead) -> Markup {
    html! {
        @if head.status == SessionStatus::Completed {
            p #composer .ended-note { "This session has ended." }
        } @else {
            form #composer .composer data-session=(head.id) {
                label.visually-hidden for="reply" { "Reply" }
                textarea #reply name="content" rows="1" required
                    placeholder="Reply to the agent…" autocomplete="off" {}
                button.primary type="submit" { "Send" }
                p.hint { "Enter to send · Shift+Enter for a new line" }
                p #composer-error .error role="alert" {}
            }
        }
    }
}

/// The fragment a session page applies on news: parts replaced whole, new conversation items
/// (after the sequence number the page has), and whether more are to be asked for.
pub fn session_update(
    frame: &Frame,
    head: &SessionHead,
    events: &[StoredEvent],
    waiting: i64,
    more: bool,
) -> Markup {
    let now = OffsetDateTime::now_utc();
    html! {
        div #update data-waiting=(waiting) data-status=(status_label(head.status).0)
            data-more=(more) {
            (session_parts(frame, head, now))
            ol #new-items { (timeline(events, now)) }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signing in, and errors

/// The sign-in page: paste an API key (a sign-in link leads elsewhere).
pub fn sign_in(frame: &Frame, next: &str, error: Option<&str>) -> Markup {
    page(
        frame,
        "sign-in",
        "Sign in",
        None,
        html! {
            div.card {
                img.logo src=(frame.href(&assets::versioned("icon.svg"))) alt="" width="48" height="48";
                h1 { "Sign in to Switchboard" }
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
