//! Notifications: reaching the person when an agent needs them, driven by the log.
//!
//! The log is the outbox. Nothing happens in an append's transaction; instead every process
//! runs one notifier task that
//!
//! ```text
//! commit ──► NOTIFY ──► hub (watch on every tenant) ──► notifier wakes
//!   consumer.rs    channels behind their tenant's head (FOR UPDATE SKIP LOCKED)
//!                  → events after each cursor → deliveries (ids from channel + event)
//!   deliveries.rs  due deliveries claimed with a lease (FOR UPDATE SKIP LOCKED)
//!                  → webhook.rs / email.rs / web_push.rs → every attempt recorded
//!                  → delivered, retried with backoff and jitter, or failed after a day
//! ```
//!
//! so a crash between commit and delivery loses nothing (the cursor has not moved, or the
//! delivery row is due again when its lease ends), several processes deliver each
//! notification once between them, and receivers deduplicate on the stable delivery id.
//! Besides the hub's nudges the task wakes when the next retry is due and every
//! [`SAFETY_LOOK`] (a lease that ran out on a dead process). An idle look is two small
//! statements (is any channel behind its tenant's log? when is the next delivery due?); the
//! pending-deliveries gauge is counted again only when something happened; under
//! a stream of commits, one look per [`MIN_LOOK_INTERVAL`] serves them all.
//! Outbound requests go through the guard in `outbound.rs`.

pub mod actions;
pub mod channels;
mod consumer;
pub mod deliveries;
pub mod email;
pub mod notification;
pub mod outbound;
pub mod policy;
pub mod web_push;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::{App, PublicUrl};
use crate::auth::SigningKeys;
use crate::commands::{CommandError, Context};
use crate::eventlog::EventLog;
use crate::metrics::{self, DeliveryOutcome};
use crate::push::Hub;
use channels::Kind;
use deliveries::{Attempt, Claimed, DeliveryView, Finish};
use notification::{ActionLink, Notification, Trigger};
use outbound::{Outbound, Reply, SendError};
use web_push::{Subscription, VapidKey};

/// Where a session is in the inbox, relative to the public URL (`{id}` is the session id).
/// Notifications link here; the inbox serves this path.
pub const SESSION_PATH: &str = "sessions/{id}";
/// Deliveries one process has in flight at once (default).
pub const CONCURRENCY: usize = 32;
/// The shortest time between two looks of one process.
pub const MIN_LOOK_INTERVAL: Duration = Duration::from_millis(20);
/// The longest the notifier sleeps without looking at the database.
pub const SAFETY_LOOK: Duration = Duration::from_secs(10);
/// How long a notification of requests waits for an older one of its session being sent.
const IN_FLIGHT_WAIT: time::Duration = time::Duration::seconds(2);
/// The shortest time between two counts of pending deliveries (a metric).
const PENDING_COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// How the notifier behaves, from the command line.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    /// The SMTP server email channels send through (`--smtp-url`, `--smtp-from`).
    pub smtp: Option<email::Smtp>,
    /// Allow loopback and private webhook targets (`--notify-allow-private`).
    pub allow_private: bool,
    /// Root certificates trusted for outbound https besides Mozilla's (`--outbound-ca-file`).
    pub extra_roots: Arc<Vec<rustls::pki_types::CertificateDer<'static>>>,
    pub retry: RetrySchedule,
    /// How long a claimed delivery is reserved for the process that claimed it; longer than
    /// any attempt can take.
    pub lease: Duration,
    /// The longest one outbound request may take.
    pub request_timeout: Duration,
    /// Deliveries in flight at once per process.
    pub concurrency: usize,
    pub vapid: Arc<VapidKey>,
}

impl NotifyConfig {
    /// The guarded HTTP client, as configured, with this time limit per request.
    pub fn outbound(&self, timeout: Duration) -> Outbound {
        Outbound::new(self.allow_private, timeout, &self.extra_roots)
    }
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            smtp: None,
            allow_private: false,
            extra_roots: Arc::default(),
            retry: RetrySchedule::default(),
            lease: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            concurrency: CONCURRENCY,
            vapid: Arc::new(VapidKey::generate()),
        }
    }
}

/// When failed attempts are tried again: the `n`th retry waits `delays[n-1]` (the last delay
/// repeats), give or take a fifth (jitter, so that receivers that come back are not hit by
/// every sender at once); after `give_up_after` since the delivery was created, a failed
/// attempt ends it as failed.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
    pub give_up_after: Duration,
}

impl Default for RetrySchedule {
    /// 1 s, 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, then every 4 h, for 24 hours.
    fn default() -> RetrySchedule {
        RetrySchedule::parse("1s,5s,30s,2m,10m,30m,1h,2h,4h", "24h").expect("the default parses")
    }
}

impl RetrySchedule {
    /// `delays` as a comma-separated list of durations (`500ms`, `5s`, `2m`, `4h`), and the
    /// give-up time as one.
    pub fn parse(delays: &str, give_up_after: &str) -> Result<RetrySchedule, String> {
        let delays = delays
            .split(',')
            .map(|d| parse_duration(d.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RetrySchedule {
            delays,
            give_up_after: parse_duration(give_up_after.trim())?,
        })
    }

    /// The pause before the attempt after attempt `n` (1-based), with jitter.
    pub fn delay(&self, n: i32) -> Duration {
        let index = usize::try_from(n.max(1) - 1).unwrap_or(0);
        let base = self.delays[index.min(self.delays.len() - 1)];
        let spread = 0.8 + 0.4 * f64::from(Uuid::new_v4().as_fields().0) / f64::from(u32::MAX);
        base.mul_f64(spread)
    }
}

/// `500ms`, `5s`, `2m`, `4h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 5s, 2m or 4h"))?;
    let unit = match unit {
        "ms" => Duration::from_millis(1),
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(format!("{text:?} needs a unit: ms, s, m or h")),
    };
    Ok(unit * u32::try_from(number).map_err(|_| format!("{text:?} is too long"))?)
}

/// The notifier of one process: consumes the log into deliveries and delivers them.
#[derive(Debug)]
pub struct Notifier {
    pool: PgPool,
    /// Channel facts are appended to the account stream through the commands.
    log: EventLog,
    public_url: PublicUrl,
    config: NotifyConfig,
    outbound: Outbound,
    smtp: Option<email::Smtp>,
    /// Signs the capabilities that answer from a notification.
    keys: Option<Arc<SigningKeys>>,
}

/// Start `app`'s notifier task; it stops when the app shuts down.
pub fn start(app: &App) {
    let notifier = app.notifier.clone();
    let hub = app.hub.clone();
    let shutdown = app.shutdown.clone();
    tokio::spawn(async move { notifier.run(hub, shutdown).await });
}

impl Notifier {
    pub fn new(log: EventLog, public_url: PublicUrl, config: NotifyConfig) -> Notifier {
        Notifier {
            keys: None,
            outbound: config.outbound(config.request_timeout),
            smtp: config.smtp.clone(),
            pool: log.pool().clone(),
            log,
            public_url,
            config,
        }
    }

    /// The same notifier, minting answer capabilities with `keys` (without them, a
    /// notification offers no actions).
    pub fn with_keys(self, keys: Arc<SigningKeys>) -> Notifier {
        Notifier {
            keys: Some(keys),
            ..self
        }
    }

    /// The answers a claimed question notification offers through `via`: one capability URL
    /// per option (none when the server cannot sign).
    fn actions(&self, claimed: &Claimed, via: &str) -> Vec<ActionLink> {
        let n = &claimed.notification;
        let (Some(keys), Some(session), Some(question)) = (&self.keys, n.session_id, n.message_id)
        else {
            return Vec::new();
        };
        if n.trigger != Trigger::Question || n.waiting > 0 {
            return Vec::new();
        }
        n.options
            .iter()
            .filter_map(|option| {
                let action =
                    actions::Action::new(claimed.tenant_id, session, question, option, via);
                let token = action
                    .mint(keys)
                    .inspect_err(|e| tracing::warn!("no answer capability: {e}"))
                    .ok()?;
                // A receiver or the service worker POSTs the API; a person's link opens a
                // page that asks first (a mail scanner or link preview that fetches it answers
                // nothing).
                let path = match via {
                    "webhook" | "push" => "api/v1/actions",
                    _ => "answer",
                };
                Some(ActionLink {
                    option: option.clone(),
                    url: self.public_url.join(&format!("{path}/{token}")),
                })
            })
            .collect()
    }

    /// The server's VAPID public key (what browsers subscribe with).
    pub fn vapid_public_key(&self) -> &str {
        self.config.vapid.public_key()
    }

    /// The link to a session in the inbox.
    pub fn session_url(&self, session_id: Uuid) -> String {
        self.public_url
            .join(&SESSION_PATH.replace("{id}", &session_id.to_string()))
    }

    async fn run(self: Arc<Notifier>, hub: Arc<Hub>, shutdown: CancellationToken) {
        // Registered before the first look, so no commit falls between a look and the wait.
        let mut news = hub.watch_all();
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let finished = Arc::new(Notify::new());
        let mut failing = false;
        let mut counted: Option<tokio::time::Instant> = None;
        // Nothing was pending at the last count and nothing happened since but the timer: the
        // count cannot have changed, and an idle server saves the statement.
        let mut idle = false;
        while !shutdown.is_cancelled() {
            let started = tokio::time::Instant::now();
            if !idle && counted.is_none_or(|at| started - at >= PENDING_COUNT_INTERVAL) {
                counted = Some(started);
                match deliveries::pending(&self.pool).await {
                    Ok(pending) => {
                        metrics::notifications_pending(pending);
                        idle = pending == 0;
                    }
                    Err(e) => tracing::debug!("notifications: cannot count pending: {e}"),
                }
            }
            let pause = match self.look(&slots, &finished).await {
                Ok(pause) => {
                    if failing {
                        tracing::info!("notifications: the database is back");
                    }
                    failing = false;
                    pause
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!("notifications: cannot reach the database: {e}");
                    }
                    failing = true;
                    Duration::from_secs(1)
                }
            };
            let timer_only = !pause.is_zero()
                && tokio::select! {
                    _ = news.changed() => false,
                    _ = finished.notified() => false,
                    _ = tokio::time::sleep(pause) => true,
                    _ = shutdown.cancelled() => false,
                };
            idle &= timer_only;
            // Under a stream of commits one look serves every commit of its interval, so the
            // notifier's statements stay bounded however fast appends come.
            tokio::time::sleep_until(started + MIN_LOOK_INTERVAL).await;
        }
    }

    /// Consume what is new, start what is due; how long to wait before looking again.
    async fn look(
        self: &Arc<Notifier>,
        slots: &Arc<Semaphore>,
        finished: &Arc<Notify>,
    ) -> Result<Duration, sqlx::Error> {
        let more = self.consume().await?;
        let free = slots.available_permits();
        let due = deliveries::next_due(&self.pool).await?;
        let now = OffsetDateTime::now_utc();
        if free > 0 && due.is_some_and(|at| at <= now) {
            let claimed =
                deliveries::claim(&self.pool, free as i64, self.config.lease.as_secs_f64()).await?;
            let full = claimed.len() == free;
            for delivery in claimed {
                let permit = slots.clone().try_acquire_owned().expect("a slot was free");
                let notifier = self.clone();
                let finished = finished.clone();
                tokio::spawn(async move {
                    notifier.deliver(delivery).await;
                    drop(permit);
                    finished.notify_one();
                });
            }
            // With every slot busy, look again when one frees up; else see what is due next.
            return Ok(if full && !more {
                SAFETY_LOOK
            } else {
                Duration::ZERO
            });
        }
        if more {
            return Ok(Duration::ZERO);
        }
        Ok(match due {
            // Due, but every slot is busy: a finishing delivery wakes the loop.
            Some(at) if at <= now => SAFETY_LOOK,
            Some(at) => Duration::try_from(at - now)
                .unwrap_or(SAFETY_LOOK)
                .min(SAFETY_LOOK),
            None => SAFETY_LOOK,
        })
    }

    /// Make one attempt at a claimed delivery and record how it ended: unless it is no longer
    /// needed (skipped) or the policy holds it (given back, due again when the hold ends).
    async fn deliver(&self, claimed: Claimed) {
        let plan = match self.plan(&claimed).await {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!(delivery = %claimed.id, "notifications: {e}");
                // The lease ends and the delivery is due again.
                return;
            }
        };
        let claimed = match plan {
            Plan::Send {
                waiting,
                own_open,
                told_seq,
            } => Claimed {
                notification: if waiting > 0 {
                    claimed.notification.told_together(waiting, own_open)
                } else {
                    claimed.notification
                },
                told_seq,
                ..claimed
            },
            Plan::Hold(until) => {
                if let Err(e) = deliveries::postpone(&self.pool, &claimed, until).await {
                    tracing::warn!(delivery = %claimed.id, "notifications: {e}");
                }
                return;
            }
            Plan::Skip(note) => {
                metrics::notification_delivery(
                    claimed.kind.as_str(),
                    DeliveryOutcome::Skipped,
                    None,
                );
                if let Err(e) =
                    deliveries::finish(&self.pool, &claimed, &Finish::Skipped, None, Some(note))
                        .await
                {
                    tracing::warn!(delivery = %claimed.id, "notifications: {e}");
                }
                return;
            }
        };
        let (finish, attempt) = self.attempt(&claimed).await;
        let outcome = match &finish {
            Finish::Delivered => DeliveryOutcome::Delivered,
            Finish::Retry(_) => DeliveryOutcome::Retried,
            Finish::Failed => DeliveryOutcome::Failed,
            Finish::Skipped => DeliveryOutcome::Skipped,
        };
        let took = (OffsetDateTime::now_utc() - attempt.started_at)
            .try_into()
            .ok();
        metrics::notification_delivery(claimed.kind.as_str(), outcome, took);
        if finish == Finish::Failed {
            tracing::warn!(
                tenant = %claimed.tenant_id,
                delivery = %claimed.id,
                channel = %claimed.channel_id,
                error = attempt.error.as_deref().unwrap_or_default(),
                "notification failed"
            );
        }
        if let Err(e) =
            deliveries::finish(&self.pool, &claimed, &finish, Some(&attempt), None).await
        {
            tracing::warn!(delivery = %claimed.id, "notifications: cannot record an attempt: {e}");
        }
    }

    /// Whether and when a claimed delivery goes out. A request's goes out while any request
    /// of its session can still be answered (as the questions read model says), telling of
    /// them together when it is not about exactly its own; then the policy says when.
    async fn plan(&self, claimed: &Claimed) -> Result<Plan, crate::eventlog::LogError> {
        let now = OffsetDateTime::now_utc();
        let trigger = claimed.notification.trigger;
        if trigger == Trigger::Test {
            return Ok(Plan::Send {
                waiting: 0,
                own_open: true,
                told_seq: None,
            });
        }
        let mut conn = self.pool.acquire().await?;
        let policy = policy::get(&mut conn, claimed.tenant_id).await?;
        drop(conn);
        let (mut waiting, mut own_open, mut told_seq) = (0, true, None);
        if let (Some(session_id), Some(question_id)) = (claimed.session_id, claimed.question_id) {
            // The session's requests that can be answered and that this channel hears of.
            let open: Vec<projections::Question> = self
                .log
                .answerable_questions(claimed.tenant_id, session_id, now)
                .await?
                .into_iter()
                .filter(|q| {
                    // Its own request was decided on already (an agent's send_* flag may have
                    // asked for it whatever the topics say).
                    q.id == question_id || policy.reaches(policy::Topic::of(q.kind), claimed.kind)
                })
                .collect();
            if open.is_empty() {
                return Ok(Plan::Skip("the question closed before delivery"));
            }
            own_open = open.iter().any(|q| q.id == question_id);
            if !(own_open && open.len() == 1) {
                waiting = open.len();
            }
            told_seq = open.iter().map(|q| q.asked_seq).max();
        }
        let around = deliveries::circumstances(&self.pool, claimed).await?;
        if trigger == Trigger::Question {
            // An older notification of this session's requests is going out right now: see
            // what it told before deciding (it may have told this one's already).
            if around.older_in_flight {
                return Ok(Plan::Hold(now + IN_FLIGHT_WAIT));
            }
            if let (Some(told), Some(newest)) = (around.told_seq, told_seq)
                && told >= newest
            {
                return Ok(Plan::Skip("an earlier notification told of these requests"));
            }
        }
        let moment = policy::Moment {
            now,
            kind: claimed.kind,
            trigger,
            event_at: claimed.event_at,
            last_sent: around.last_sent,
            focused_until: around.focused_until,
        };
        Ok(match policy.hold(&moment) {
            Some(until) => Plan::Hold(until),
            None => Plan::Send {
                waiting,
                own_open,
                told_seq,
            },
        })
    }

    /// Send once; how the delivery ends, and the attempt.
    async fn attempt(&self, claimed: &Claimed) -> (Finish, Attempt) {
        let started_at = OffsetDateTime::now_utc();
        let outcome = self.send(claimed).await;
        let (verdict, status_code, error) = match outcome {
            Sent::Delivered(code) => (Verdict::Delivered, Some(code), None),
            Sent::Retry(code, error) => (Verdict::Retry, code, Some(error)),
            Sent::Failed(code, error) => (Verdict::Failed, code, Some(error)),
        };
        let finish = match verdict {
            Verdict::Delivered => Finish::Delivered,
            Verdict::Failed => Finish::Failed,
            Verdict::Retry => {
                let now = OffsetDateTime::now_utc();
                let first = claimed.first_attempt_at.unwrap_or(started_at);
                if now - first >= self.config.retry.give_up_after {
                    Finish::Failed
                } else {
                    Finish::Retry(now + self.config.retry.delay(claimed.attempt))
                }
            }
        };
        let error = match (&finish, error) {
            (Finish::Failed, Some(e)) if verdict == Verdict::Retry => {
                Some(format!("{e} (gave up after {} attempts)", claimed.attempt))
            }
            (_, error) => error,
        };
        (
            finish,
            Attempt {
                started_at,
                status_code,
                error,
            },
        )
    }

    async fn send(&self, claimed: &Claimed) -> Sent {
        let secret = |name: &str| {
            claimed
                .secret
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let url = || {
            self.outbound
                .check(&claimed.target)
                .map_err(|r| Sent::Failed(None, format!("refused: {r}")))
        };
        match claimed.kind {
            Kind::Webhook => {
                let url = match url() {
                    Ok(url) => url,
                    Err(sent) => return sent,
                };
                let actions = self.actions(claimed, "webhook");
                let body = claimed.notification.webhook_body(claimed.id, &actions);
                let reply = webhook::send(
                    &self.outbound,
                    &url,
                    &secret("whsec"),
                    &claimed.id.to_string(),
                    body,
                )
                .await;
                judge_http(reply, |status| match status {
                    200..=299 => Verdict::Delivered,
                    // Gone: the receiver says it will never take this.
                    410 => Verdict::Failed,
                    _ => Verdict::Retry,
                })
            }
            Kind::WebPush => {
                let url = match url() {
                    Ok(url) => url,
                    Err(sent) => return sent,
                };
                let subscription =
                    match Subscription::parse(url, &secret("p256dh"), &secret("auth")) {
                        Ok(s) => s,
                        Err(e) => return Sent::Failed(None, e),
                    };
                let actions = self.actions(claimed, "push");
                let reply = web_push::send(
                    &self.outbound,
                    &self.config.vapid,
                    &self.public_url.origin(),
                    &subscription,
                    &claimed.notification.push_body(&actions),
                )
                .await;
                judge_http(reply, |status| match status {
                    200..=299 => Verdict::Delivered,
                    // The subscription expired or was withdrawn; the payload can never fit.
                    404 | 410 | 413 => Verdict::Failed,
                    408 | 425 | 429 | 500..=599 => Verdict::Retry,
                    _ => Verdict::Failed,
                })
            }
            Kind::Email => {
                let Some(smtp) = &self.smtp else {
                    return Sent::Retry(
                        None,
                        "this server has no SMTP server configured (--smtp-url)".into(),
                    );
                };
                let actions = self.actions(claimed, "email");
                let (subject, text, html) = claimed.notification.email(&actions);
                match smtp.send(&claimed.target, &subject, &text, &html).await {
                    Ok(code) => Sent::Delivered(code),
                    Err(e) if e.permanent => Sent::Failed(e.code, e.message),
                    Err(e) => Sent::Retry(e.code, e.message),
                }
            }
        }
    }

    /// Send a test notification to one of the caller's channels now; the delivery as it
    /// stands after the first attempt (retries follow like any other delivery's).
    pub async fn test_channel(
        &self,
        ctx: &Context,
        channel_id: Uuid,
    ) -> Result<DeliveryView, CommandError> {
        ctx.require_write()?;
        let notification = Notification {
            trigger: Trigger::Test,
            session_id: None,
            message_id: None,
            agent_type: None,
            text: "This is a test notification from Switchboard. Questions from your agents \
                   will arrive here."
                .into(),
            truncated: false,
            url: self.public_url.to_string(),
            sms: false,
            occurred_at: crate::wire::timestamp(OffsetDateTime::now_utc()),
            options: Vec::new(),
            waiting: 0,
        };
        let claimed = deliveries::insert_claimed(
            &self.pool,
            ctx.tenant_id,
            channel_id,
            notification,
            self.config.lease.as_secs_f64(),
        )
        .await
        .map_err(channels::database)?
        .ok_or_else(|| channels::channel_not_found(channel_id))?;
        let id = claimed.id;
        self.deliver(claimed).await;
        let filter = deliveries::DeliveryFilter {
            channel_id: Some(channel_id),
            limit: 20,
            ..Default::default()
        };
        deliveries::list(&self.pool, ctx.tenant_id, &filter)
            .await?
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| CommandError::Internal(format!("test delivery {id} vanished")))
    }

    /// The tenant's deliveries (see [`deliveries::list`]).
    pub async fn deliveries(
        &self,
        tenant_id: Uuid,
        filter: &deliveries::DeliveryFilter,
    ) -> Result<Vec<DeliveryView>, CommandError> {
        deliveries::list(&self.pool, tenant_id, filter).await
    }

    /// The tenant's channels.
    pub async fn channels(&self, tenant_id: Uuid) -> Result<Vec<channels::Channel>, CommandError> {
        channels::list(&self.pool, tenant_id).await
    }

    /// How each of the tenant's channels' latest finished delivery ended.
    pub async fn channel_health(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<deliveries::Health>, CommandError> {
        deliveries::health(&self.pool, tenant_id)
            .await
            .map_err(channels::database)
    }

    /// The tenant's notification policy.
    pub async fn policy(&self, tenant_id: Uuid) -> Result<policy::Policy, CommandError> {
        let mut conn = self.pool.acquire().await.map_err(channels::database)?;
        policy::get(&mut conn, tenant_id)
            .await
            .map_err(channels::database)
    }

    /// Change the caller's policy (recorded in the log); what it held is decided again.
    pub async fn change_policy(
        &self,
        ctx: &Context,
        change: &policy::PolicyChange,
    ) -> Result<policy::Policy, CommandError> {
        let policy = crate::commands::change_notification_policy(&self.log, ctx, change).await?;
        deliveries::release_held(&self.pool, ctx.tenant_id, None)
            .await
            .map_err(channels::database)?;
        Ok(policy)
    }

    /// The caller's inbox is focused, or no longer is, on the device it signed in on (its web
    /// session, or its key for a dashboard). Push waits while one is; when it stops, what push
    /// held is decided again.
    pub async fn presence(&self, ctx: &Context, focused: bool) -> Result<(), CommandError> {
        let Some(device) = ctx.grant.web_session().or(ctx.key_id) else {
            return Err(CommandError::Invalid(crate::domain::InvalidInput::new(
                "focused",
                "presence is reported by a signed-in inbox or a key's dashboard",
            )));
        };
        let was_focused = policy::report_presence(&self.pool, ctx.tenant_id, device, focused)
            .await
            .map_err(channels::database)?;
        if !focused && was_focused {
            deliveries::release_held(&self.pool, ctx.tenant_id, Some(Kind::WebPush))
                .await
                .map_err(channels::database)?;
        }
        Ok(())
    }

    /// Whether email channels can be added (an SMTP server is configured).
    pub fn sends_email(&self) -> bool {
        self.smtp.is_some()
    }
}

/// What becomes of a claimed delivery.
enum Plan {
    /// Send it, telling of `waiting` requests together when above zero; the newest request
    /// it tells of.
    Send {
        waiting: usize,
        own_open: bool,
        told_seq: Option<i64>,
    },
    /// Give it back until then.
    Hold(OffsetDateTime),
    /// Never send it, for this reason.
    Skip(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Delivered,
    Retry,
    Failed,
}

/// What one send came to: the receiver's status code when it answered, and what went wrong.
enum Sent {
    Delivered(u16),
    Retry(Option<u16>, String),
    Failed(Option<u16>, String),
}

/// An HTTP exchange judged by its status; no answer is worth a retry, a refusal is not.
fn judge_http(reply: Result<Reply, SendError>, judge: impl Fn(u16) -> Verdict) -> Sent {
    match reply {
        Ok(reply) => {
            let status = reply.status;
            match judge(status) {
                Verdict::Delivered => Sent::Delivered(status),
                verdict => {
                    // The status alone: what the receiver answered or where it redirects may
                    // be an internal service's (with --notify-allow-private), so the tenant
                    // is told neither; the operator's log has the beginning of the body.
                    let mut error = format!("HTTP {status}");
                    if reply.location.is_some() {
                        error.push_str(" (a redirect, not followed)");
                    }
                    let body = reply.body.trim();
                    let end = body.char_indices().nth(300).map_or(body.len(), |(i, _)| i);
                    tracing::debug!(status, body = &body[..end], "a notification was refused");
                    if verdict == Verdict::Retry {
                        Sent::Retry(Some(status), error)
                    } else {
                        Sent::Failed(Some(status), error)
                    }
                }
            }
        }
        Err(SendError::Refused(r)) => Sent::Failed(None, format!("refused: {r}")),
        Err(SendError::Failed(e)) => Sent::Retry(None, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_retries_within_seconds_and_for_a_day() {
        let schedule = RetrySchedule::default();
        let first = schedule.delay(1);
        assert!(first >= Duration::from_millis(800) && first <= Duration::from_millis(1200));
        assert!(schedule.delay(2) >= Duration::from_secs(4));
        assert!(schedule.delay(50) <= Duration::from_secs(5 * 3600));
        assert_eq!(schedule.give_up_after, Duration::from_secs(24 * 3600));
        let total: Duration = (1..=16).map(|n| schedule.delay(n)).sum();
        assert!(
            total >= schedule.give_up_after,
            "retries span the whole day"
        );
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(RetrySchedule::parse("1s,,2s", "1h").is_err());
    }
}
