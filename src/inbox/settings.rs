//! The settings page: where a person decides how Switchboard reaches them. It lists the
//! tenant's notification channels with whether their notifications arrive, the recent
//! deliveries with every attempt (failed ones stand out), the question switch, and this
//! device's web push. Like every inbox page it only reads and renders; adding, testing and
//! removing channels, the switch and the push subscription go through the REST API
//! (`/api/v1/notifications/*`) from the page's script, with the cookie, so they run the
//! notifier's rules like every other client. `/inbox/settings` is the fragment the script swaps
//! in after a change and while deliveries are pending.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use time::OffsetDateTime;
use uuid::Uuid;

use super::pages::{self, frame, html};
use super::views::{Frame, page, when};
use super::{read, session_path};
use crate::app::AppState;
use crate::auth::api_keys::ApiKey;
use crate::commands::{CommandError, connected_apps};
use crate::notify::channels::{Channel, Kind};
use crate::notify::deliveries::{DeliveryFilter, DeliveryView, Health};
use crate::notify::policy::{Channels, Policy};

/// Deliveries the page lists (newest first); the API pages through the rest.
const RECENT_DELIVERIES: i64 = 20;

/// What the page shows, read at once.
struct Shown {
    channels: Vec<Channel>,
    health: HashMap<Uuid, Health>,
    deliveries: Vec<DeliveryView>,
}

async fn read_shown(app: &AppState, tenant: Uuid) -> Result<Shown, CommandError> {
    let notifier = &app.notifier;
    let filter = DeliveryFilter {
        limit: RECENT_DELIVERIES,
        ..DeliveryFilter::default()
    };
    Ok(Shown {
        channels: notifier.channels(tenant).await?,
        health: notifier
            .channel_health(tenant)
            .await?
            .into_iter()
            .map(|h| (h.channel_id, h))
            .collect(),
        deliveries: notifier.deliveries(tenant, &filter).await?,
    })
}

fn failed(app: &AppState, e: &CommandError) -> Response {
    tracing::warn!("settings page failed: {e}");
    pages::problem(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Switchboard is unavailable",
        "The settings cannot be shown right now. Try again in a moment.",
    )
}

/// `GET /settings`.
pub async fn show(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let tenant = match pages::person(&app, &headers, "settings").await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let read = async {
        let shown = read_shown(&app, tenant).await?;
        let settings = app.notifier.policy(tenant).await?;
        let waiting = read::waiting(app.log.pool(), tenant).await?;
        let apps = connected_apps::apps(app.log.pool(), tenant, false).await?;
        Ok::<_, CommandError>((shown, settings, waiting, apps))
    };
    match read.await {
        Ok((shown, settings, waiting, apps)) => html(
            StatusCode::OK,
            settings_page(
                &frame(&app, Some(waiting)),
                &shown,
                &apps,
                settings,
                app.notifier.sends_email(),
                &app.config.public_url.join(""),
            ),
        ),
        Err(e) => failed(&app, &e),
    }
}

/// `GET /inbox/settings`: the channels and the deliveries, for the settings page to swap in.
pub async fn fragment(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let tenant = match pages::fragment_person(&app, &headers).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match read_shown(&app, tenant).await {
        Ok(shown) => {
            let frame = frame(&app, None);
            let now = OffsetDateTime::now_utc();
            html(
                StatusCode::OK,
                html! {
                    (channel_list(&shown, now))
                    (deliveries(&frame, &shown, now))
                },
            )
        }
        Err(e) => {
            tracing::warn!("settings fragment failed: {e}");
            pages::fragment_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable; retry shortly",
            )
        }
    }
}

fn settings_page(
    frame: &Frame,
    shown: &Shown,
    apps: &[ApiKey],
    settings: Policy,
    sends_email: bool,
    server_url: &str,
) -> Markup {
    let now = OffsetDateTime::now_utc();
    page(
        frame,
        "settings",
        "Settings",
        None,
        html! {
            div.page-head { h1 { "Settings" } }
            (this_device())
            (what_notifies(&settings))
            (channels(shown, now))
            (add_channel(sends_email))
            (deliveries(frame, shown, now))
            (connected(apps, server_url, now))
            section #agents .panel aria-labelledby="agents-heading" {
                h2 #agents-heading { "Connect an agent" }
                (super::views::connect_agents(server_url))
            }
        },
    )
}

/// Web push to this browser: the page's script knows whether it is on (the subscription is
/// the browser's; the channel it made is remembered in the browser).
fn this_device() -> Markup {
    html! {
        section #device .panel aria-labelledby="device-heading" {
            h2 #device-heading { "Notifications on this device" }
            p {
                "Get a notification on this browser when an agent asks you something, even "
                "with the inbox closed. On a phone, add the inbox to the home screen first."
            }
            p #device-state role="status" { "Checking this browser…" }
            div.buttons {
                button #device-on .primary type="button" hidden {
                    "Turn on notifications on this device"
                }
                button #device-off type="button" hidden { "Turn off on this device" }
            }
            p #device-error .error role="alert" {}
        }
    }
}

/// The notification policy as a form the page's script saves through the API: which topics
/// reach which kind of channel, how long a request waits before each kind hears of it, the
/// coalescing window, quiet hours and presence.
fn what_notifies(policy: &Policy) -> Markup {
    let n = &policy.notify;
    let topics: [(&str, &str, Channels); 5] = [
        ("question", "Questions", n.question),
        ("approval", "Approvals (leave to run a tool)", n.approval),
        (
            "next_instruction",
            "Finished: what next?",
            n.next_instruction,
        ),
        (
            "session_ended",
            "Session ended, agent exited",
            n.session_ended,
        ),
        ("failure", "A tool failed", n.failure),
    ];
    let kinds = [
        (Kind::WebPush, "web_push"),
        (Kind::Email, "email"),
        (Kind::Webhook, "webhook"),
    ];
    let quiet = policy.quiet_hours.as_ref();
    let minutes = |kind: Kind| policy.escalate_after_seconds.seconds(kind).div_ceil(60);
    html! {
        section.panel aria-labelledby="policy-heading" {
            h2 #policy-heading { "What notifies you" }
            form #policy novalidate {
                table.policy {
                    caption.visually-hidden { "Which notifications reach which kind of channel" }
                    thead {
                        tr {
                            th scope="col" { "When" }
                            @for (kind, _) in kinds { th scope="col" { (kind_label(kind)) } }
                        }
                    }
                    tbody {
                        @for (topic, label, on) in topics {
                            tr {
                                th scope="row" { (label) }
                                @for (kind, name) in kinds {
                                    td {
                                        input type="checkbox" name=(format!("{topic}.{name}"))
                                            aria-label=(format!("{label}: {}", kind_label(kind)))
                                            checked[on.includes(kind)];
                                    }
                                }
                            }
                        }
                    }
                }
                fieldset.policy-row {
                    legend { "Escalation: a request waits this many minutes before each kind hears of it" }
                    @for (kind, name) in kinds {
                        label.inline {
                            (kind_label(kind))
                            input type="number" name=(format!("escalate.{name}")) min="0" max="10080"
                                value=(minutes(kind)) inputmode="numeric";
                        }
                    }
                }
                label.inline {
                    "Tell a burst of requests of one session together, at most one notification every"
                    input type="number" name="coalesce" min="0" max="86400"
                        value=(policy.coalesce_seconds) inputmode="numeric";
                    "seconds"
                }
                fieldset.policy-row {
                    legend {
                        label.switch {
                            input type="checkbox" name="quiet" checked[quiet.is_some()];
                            span { "Quiet hours" }
                        }
                    }
                    label.inline {
                        "From"
                        input type="time" name="quiet.from" value=(quiet.map_or("22:00", |q| q.from.as_str()));
                    }
                    label.inline {
                        "until"
                        input type="time" name="quiet.until" value=(quiet.map_or("07:00", |q| q.until.as_str()));
                    }
                    label.inline {
                        "Time zone"
                        input type="text" name="quiet.time_zone" autocomplete="off" spellcheck="false"
                            value=(quiet.map_or("", |q| q.time_zone.as_str())) placeholder="Europe/Berlin";
                    }
                    p.fine { "Nothing is sent during quiet hours; what still waits when they end is sent then." }
                }
                label.switch {
                    input type="checkbox" name="presence" checked[policy.presence];
                    span { "No browser push while the inbox is open and in front of me on any device" }
                }
                p.fine {
                    "Messages whose " code { "send_email" } ", " code { "send_push" } " or "
                    code { "send_sms" } " flag asks for a notification are sent whatever this says "
                    "(quiet hours still apply). Every change is recorded in your log."
                }
                div.buttons {
                    button.primary type="submit" { "Save notification settings" }
                }
                p #policy-status role="status" {}
                p #policy-error .error role="alert" {}
            }
        }
    }
}

/// "Webhook", "Email", "Browser push".
fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Webhook => "Webhook",
        Kind::Email => "Email",
        Kind::WebPush => "Browser push",
    }
}

/// Where a channel reaches: the email address, else its description (a webhook's origin, a
/// push service).
fn target(channel: &Channel) -> &str {
    channel.to.as_deref().unwrap_or(&channel.description)
}

/// The channels panel; its list is what the fragment replaces (the status line stays).
fn channels(shown: &Shown, now: OffsetDateTime) -> Markup {
    html! {
        section.panel aria-labelledby="channels-heading" {
            h2 #channels-heading tabindex="-1" { "Channels" }
            p #channels-status .status role="status" {}
            (channel_list(shown, now))
        }
    }
}

fn channel_list(shown: &Shown, now: OffsetDateTime) -> Markup {
    html! {
        div #channel-list {
            @if shown.channels.is_empty() {
                p.muted {
                    "No channels yet: nothing reaches you while the inbox is closed. Turn on "
                    "notifications on this device, or add a webhook or an email address below."
                }
            } @else {
                ul.channels {
                    @for channel in &shown.channels {
                        (channel_row(channel, shown.health.get(&channel.id), now))
                    }
                }
            }
        }
    }
}

fn channel_row(channel: &Channel, health: Option<&Health>, now: OffsetDateTime) -> Markup {
    let failing = health.is_some_and(|h| h.failing);
    let name = format!("{} {}", kind_label(channel.kind), target(channel));
    html! {
        li.channel.failing[failing] data-channel-id=(channel.id) data-kind=(channel.kind.as_str()) {
            div.channel-main {
                div.channel-top {
                    span.kind { (kind_label(channel.kind)) }
                    span.target { (target(channel)) }
                    span.this-device hidden { "This device" }
                }
                p.channel-meta {
                    "Added " (when(channel.created_at, now))
                    @match health {
                        Some(h) if h.failing => {
                            " · " strong.failed-text { "Last delivery failed" } " " (when(h.at, now))
                            @if let Some(error) = &h.error { ": " (error) }
                        }
                        Some(h) => { " · last delivery arrived " (when(h.at, now)) }
                        None => { " · nothing delivered yet" }
                    }
                }
            }
            div.channel-actions {
                button id={ "test-" (channel.id) } type="button" data-action="test"
                    data-channel-id=(channel.id) data-name=(name)
                    aria-label=(format!("Send a test to {name}")) { "Send test" }
                button.danger id={ "remove-" (channel.id) } type="button" data-action="remove"
                    data-channel-id=(channel.id) data-name=(name)
                    aria-label=(format!("Remove {name}")) { "Remove" }
            }
        }
    }
}

/// The apps connected by OAuth (claude.ai, Claude Desktop, ChatGPT…), each with a button that
/// disconnects it through the API.
fn connected(apps: &[ApiKey], server_url: &str, now: OffsetDateTime) -> Markup {
    html! {
        section #apps .panel aria-labelledby="apps-heading" {
            h2 #apps-heading tabindex="-1" { "Connected apps" }
            p #apps-status .status role="status" {}
            p #apps-none .muted hidden[!apps.is_empty()] {
                "No apps connected. To add Switchboard to claude.ai, Claude Desktop or ChatGPT, "
                "add a custom connector with the URL " code { (server_url) "mcp" }
                " and sign in here when it asks."
            }
            ul #app-list .channels hidden[apps.is_empty()] {
                @for app in apps {
                    li.channel data-app-id=(app.id) {
                        div.channel-main {
                            div.channel-top {
                                span.kind { "App" }
                                span.target { (app.name) }
                            }
                            p.channel-meta {
                                "Connected " (when(app.created_at, now))
                                @match app.last_used_at {
                                    Some(at) => { " · last used " (when(at, now)) }
                                    None => { " · not used yet" }
                                }
                                @if let Some(client) = &app.app_client_id {
                                    br;
                                    span.client-id { (client) }
                                }
                            }
                        }
                        div.channel-actions {
                            button.danger type="button" data-action="disconnect-app"
                                data-app-id=(app.id) data-name=(app.name)
                                aria-label=(format!("Disconnect {}", app.name)) { "Disconnect" }
                        }
                    }
                }
            }
        }
    }
}

fn add_channel(sends_email: bool) -> Markup {
    html! {
        section.panel aria-labelledby="add-heading" {
            h2 #add-heading { "Add a channel" }
            form #add-webhook .stack novalidate {
                label for="webhook-url" { "Webhook URL" }
                div.inline {
                    input #webhook-url type="url" name="url" required autocomplete="off"
                        spellcheck="false" placeholder="https://hooks.example.com/switchboard";
                    button.primary type="submit" { "Add webhook" }
                }
                p.fine {
                    "Each notification is a signed JSON POST (Standard Webhooks); the signing "
                    "secret is shown once, when the webhook is added."
                }
                p.error role="alert" {}
            }
            div #secret .secret hidden {
                p {
                    "Signing secret for " strong #secret-for {} ". It is shown only this once: "
                    "copy it into your receiver now."
                }
                div.inline {
                    code #secret-value {}
                    button #secret-copy type="button" { "Copy" }
                }
                p #secret-copied .fine role="status" {}
            }
            form #add-email .stack novalidate {
                label for="email-to" { "Email address" }
                div.inline {
                    input #email-to type="email" name="to" required autocomplete="email"
                        disabled[!sends_email] placeholder="you@example.com";
                    button.primary type="submit" disabled[!sends_email] { "Add email" }
                }
                @if !sends_email {
                    p.fine {
                        "This server cannot send email: its operator has not set "
                        code { "--smtp-url" } "."
                    }
                }
                p.error role="alert" {}
            }
        }
    }
}

fn trigger_label(trigger: &str) -> &str {
    match trigger {
        "question" => "Question",
        "message" => "Message",
        "session_ended" => "Session ended",
        "test" => "Test",
        other => other,
    }
}

fn status_label(status: &str) -> &str {
    match status {
        "delivered" => "Delivered",
        "pending" => "Sending",
        "failed" => "Failed",
        "skipped" => "Not sent",
        other => other,
    }
}

fn deliveries(frame: &Frame, shown: &Shown, now: OffsetDateTime) -> Markup {
    let by_id: HashMap<Uuid, &Channel> = shown.channels.iter().map(|c| (c.id, c)).collect();
    let pending = shown
        .deliveries
        .iter()
        .filter(|d| d.status == "pending")
        .count();
    let failed = shown
        .deliveries
        .iter()
        .filter(|d| d.status == "failed")
        .count();
    html! {
        section #deliveries .panel aria-labelledby="deliveries-heading" data-pending=(pending) {
            h2 #deliveries-heading {
                "Recent deliveries"
                @if failed > 0 { span.count.failed-count { (failed) " failed" } }
            }
            @if shown.deliveries.is_empty() {
                p.muted { "Nothing sent yet. Send a test to a channel to see it here." }
            } @else {
                ol.deliveries {
                    @for d in &shown.deliveries {
                        (delivery(frame, d, by_id.get(&d.channel_id).copied(), now))
                    }
                }
            }
        }
    }
}

fn delivery(
    frame: &Frame,
    d: &DeliveryView,
    channel: Option<&Channel>,
    now: OffsetDateTime,
) -> Markup {
    let to = match channel {
        Some(c) => format!("{} {}", kind_label(c.kind), target(c)),
        None => "a removed channel".to_owned(),
    };
    let retrying = d.status == "pending" && !d.attempts.is_empty();
    html! {
        li class={ "delivery " (d.status) } data-delivery-id=(d.id) data-status=(d.status) {
            div.delivery-top {
                span class={ "pill " (d.status) } {
                    @if retrying { "Retrying" } @else { (status_label(&d.status)) }
                }
                span.what { strong { (trigger_label(&d.trigger)) } " to " (to) }
                (when(d.created_at, now))
            }
            @if let Some(error) = &d.last_error {
                @if d.status != "delivered" {
                    p.delivery-error { (error) }
                }
            }
            @if let Some(session) = d.session_id {
                a.session-link href=(frame.href(&session_path(session))) { "Open the session" }
            }
            @if !d.attempts.is_empty() {
                details.attempts {
                    summary {
                        (d.attempts.len())
                        @if d.attempts.len() == 1 { " attempt" } @else { " attempts" }
                    }
                    ol {
                        @for a in &d.attempts {
                            li {
                                "#" (a.attempt) " · " (when(a.started_at, now)) " · "
                                @match a.status_code {
                                    Some(code) => { "answered " (code) }
                                    None => "no answer",
                                }
                                @if let Some(error) = &a.error { " · " (error) }
                            }
                        }
                    }
                }
            }
        }
    }
}
