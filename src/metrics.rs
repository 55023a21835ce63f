//! What an operator scrapes at `GET /metrics` (Prometheus text format): one registry per
//! process, every metric family in it declared here, and one small function per thing worth
//! counting, so that instrumenting a code path is one line that names what happened.
//!
//! The registry is process-wide, like the process it describes: the log, the push hub and the
//! interfaces record into it without a handle being threaded through them. Label values come
//! from small fixed sets (route templates, never raw paths; waiter kinds; outcomes), so the
//! number of series stays bounded whatever clients send.
//!
//! Notification deliveries (the notifier, `src/notify/`) are counted by channel kind and outcome,
//! timed per attempt, and the deliveries still pending are a gauge the notifier sets whenever it
//! looks for due work.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use time::OffsetDateTime;

/// The `Content-Type` of what [`render`] returns.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Seconds, from a millisecond to the longest long-poll (300 s).
const REQUEST_SECONDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Seconds, from half a millisecond to past the safety net's 1.5 s.
const WAKE_SECONDS: [f64; 13] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
];
/// Seconds, from a millisecond to past the longest outbound request (10 s by default).
const ATTEMPT_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Appends per statement, up to the group commit's largest batch (64).
const BATCH_SIZES: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: String,
    route: String,
}

/// What became of an append handed to the group commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Written and committed.
    Committed,
    /// Another writer appended to its tenant first; nothing was written (it is decided again).
    LostRace,
    /// The database refused or could not be reached.
    Failed,
}

impl AppendOutcome {
    const ALL: [AppendOutcome; 3] = [
        AppendOutcome::Committed,
        AppendOutcome::LostRace,
        AppendOutcome::Failed,
    ];

    fn label(self) -> Outcome {
        let outcome = match self {
            AppendOutcome::Committed => "committed",
            AppendOutcome::LostRace => "lost_race",
            AppendOutcome::Failed => "failed",
        };
        Outcome { outcome }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// Requests that are parked until something is appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiter {
    /// `GET /messages/pending?wait=`.
    LongPoll,
    /// An open event stream.
    Sse,
    /// An MCP tool call waiting for an answer.
    Mcp,
}

impl Waiter {
    const ALL: [Waiter; 3] = [Waiter::LongPoll, Waiter::Sse, Waiter::Mcp];

    fn label(self) -> Kind {
        let kind = match self {
            Waiter::LongPoll => "long_poll",
            Waiter::Sse => "sse",
            Waiter::Mcp => "mcp",
        };
        Kind { kind }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

/// How one claimed notification delivery ended this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver took it.
    Delivered,
    /// The attempt failed; another follows.
    Retried,
    /// Given up: refused for good, or still failing after the retry period.
    Failed,
    /// Not sent: its question was answered first.
    Skipped,
}

impl DeliveryOutcome {
    const ALL: [DeliveryOutcome; 4] = [
        DeliveryOutcome::Delivered,
        DeliveryOutcome::Retried,
        DeliveryOutcome::Failed,
        DeliveryOutcome::Skipped,
    ];

    fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retried => "retried",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Skipped => "skipped",
        }
    }
}

/// The kinds of notification channel (`notify::channels::Kind::as_str`).
const CHANNEL_KINDS: [&str; 3] = ["webhook", "email", "web_push"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Delivery {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Channel {
    channel: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    http_requests: Family<Request, Counter>,
    http_duration: Histograms<Route>,
    appends: Family<Outcome, Counter>,
    batch_size: Histogram,
    append_retries: Counter,
    parked: Family<Kind, Gauge>,
    reply_wake: Histogram,
    listener_reconnects: Counter,
    safety_net_catches: Counter,
    questions_asked: Counter,
    questions_answered: Counter,
    notification_deliveries: Family<Delivery, Counter>,
    notification_attempt: Histograms<Channel>,
    notifications_pending: Gauge,
    db_connections: Family<State, Gauge>,
    db_connections_max: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(|| Histogram::new(REQUEST_SECONDS)),
            appends: Family::default(),
            batch_size: Histogram::new(BATCH_SIZES),
            append_retries: Counter::default(),
            parked: Family::default(),
            reply_wake: Histogram::new(WAKE_SECONDS),
            listener_reconnects: Counter::default(),
            safety_net_catches: Counter::default(),
            questions_asked: Counter::default(),
            questions_answered: Counter::default(),
            notification_deliveries: Family::default(),
            notification_attempt: Family::new_with_constructor(|| Histogram::new(ATTEMPT_SECONDS)),
            notifications_pending: Gauge::default(),
            db_connections: Family::default(),
            db_connections_max: Gauge::default(),
        };
        // Series that alerts compare against exist from the start, at zero.
        for kind in Waiter::ALL {
            metrics.parked.get_or_create_owned(&kind.label());
        }
        for outcome in AppendOutcome::ALL {
            metrics.appends.get_or_create_owned(&outcome.label());
        }
        for channel in CHANNEL_KINDS {
            for outcome in DeliveryOutcome::ALL {
                metrics
                    .notification_deliveries
                    .get_or_create_owned(&Delivery {
                        channel,
                        outcome: outcome.as_str(),
                    });
            }
        }
        metrics.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "switchboard_http_requests",
            "HTTP requests answered, by method, route template and status (499: the client \
             hung up first)",
            self.http_requests.clone(),
        );
        r.register(
            "switchboard_http_request_duration_seconds",
            "Time from a request's arrival to its response head (long-polls include their wait)",
            self.http_duration.clone(),
        );
        r.register(
            "switchboard_appends",
            "Appends handed to the group commit, by outcome",
            self.appends.clone(),
        );
        r.register(
            "switchboard_group_commit_batch_size",
            "Appends written by one statement (one commit)",
            self.batch_size.clone(),
        );
        r.register(
            "switchboard_append_retries",
            "Commands decided again because another writer appended to the tenant first",
            self.append_retries.clone(),
        );
        r.register(
            "switchboard_parked_waiters",
            "Requests parked until something is appended, by kind",
            self.parked.clone(),
        );
        r.register(
            "switchboard_reply_wake_seconds",
            "From a reply's recording (just before its commit) until a parked agent read it",
            self.reply_wake.clone(),
        );
        r.register(
            "switchboard_listener_reconnects",
            "Times the LISTEN connection was lost and made again (every waiter then re-reads)",
            self.listener_reconnects.clone(),
        );
        r.register(
            "switchboard_safety_net_catches",
            "Commits the safety net announced to waiters before any NOTIFY did",
            self.safety_net_catches.clone(),
        );
        r.register(
            "switchboard_questions_asked",
            "Agent messages that ask for input",
            self.questions_asked.clone(),
        );
        r.register(
            "switchboard_questions_answered",
            "User messages sent while their session awaited input",
            self.questions_answered.clone(),
        );
        r.register(
            "switchboard_notification_deliveries",
            "Notification delivery attempts and skips, by channel kind and how they ended",
            self.notification_deliveries.clone(),
        );
        r.register(
            "switchboard_notification_attempt_duration_seconds",
            "Time one notification delivery attempt took (the request to the receiver)",
            self.notification_attempt.clone(),
        );
        r.register(
            "switchboard_notifications_pending",
            "Notification deliveries not yet delivered, failed or skipped (all processes), as \
             this process's notifier last counted them",
            self.notifications_pending.clone(),
        );
        r.register(
            "switchboard_db_connections",
            "Database connections of this process's pool, in use or idle",
            self.db_connections.clone(),
        );
        r.register(
            "switchboard_db_connections_max",
            "Most database connections this process's pool may open",
            self.db_connections_max.clone(),
        );
        self
    }
}

/// An HTTP request was answered (or its client hung up: status 499).
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let m = &*METRICS;
    let (method, route) = (method.to_owned(), route.to_owned());
    m.http_duration
        .get_or_create(&Route {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(elapsed.as_secs_f64());
    m.http_requests
        .get_or_create(&Request {
            method,
            route,
            status,
        })
        .inc();
}

/// One group-commit statement finished with `outcome` for its `batch` appends.
pub fn appends(batch: usize, outcome: AppendOutcome) {
    let m = &*METRICS;
    m.appends
        .get_or_create(&outcome.label())
        .inc_by(batch as u64);
    if outcome == AppendOutcome::Committed {
        m.batch_size.observe(batch as f64);
    }
}

/// A command lost a race for its tenant's log and is decided again.
pub fn append_retried() {
    METRICS.append_retries.inc();
}

/// A request parked until something is appended; counted until the guard is dropped.
#[must_use = "the waiter is counted while the guard lives"]
pub struct Parked(Waiter);

impl Parked {
    pub fn new(kind: Waiter) -> Parked {
        METRICS.parked.get_or_create(&kind.label()).inc();
        Parked(kind)
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        METRICS.parked.get_or_create(&self.0.label()).dec();
    }
}

/// A parked agent read a reply recorded at `recorded_at`.
pub fn reply_woke(recorded_at: OffsetDateTime) {
    let waited = (OffsetDateTime::now_utc() - recorded_at).as_seconds_f64();
    METRICS.reply_wake.observe(waited.max(0.0));
}

/// The LISTEN connection was made again after being lost.
pub fn listener_reconnected() {
    METRICS.listener_reconnects.inc();
}

/// The safety net woke waiters for a commit no NOTIFY had announced (yet).
pub fn safety_net_caught() {
    METRICS.safety_net_catches.inc();
}

pub fn question_asked() {
    METRICS.questions_asked.inc();
}

pub fn question_answered() {
    METRICS.questions_answered.inc();
}

/// A notification delivery to a channel of kind `channel` ended `outcome` (for now: a retried
/// one is claimed again later); `attempt` is how long its send took, when one was made.
pub fn notification_delivery(
    channel: &'static str,
    outcome: DeliveryOutcome,
    attempt: Option<Duration>,
) {
    let m = &*METRICS;
    m.notification_deliveries
        .get_or_create(&Delivery {
            channel,
            outcome: outcome.as_str(),
        })
        .inc();
    if let Some(took) = attempt {
        m.notification_attempt
            .get_or_create(&Channel { channel })
            .observe(took.as_secs_f64());
    }
}

/// The notifier counted the deliveries still pending.
pub fn notifications_pending(count: i64) {
    METRICS.notifications_pending.set(count);
}

/// Every metric in the Prometheus text format, with the pool's connections as of now.
pub fn render(pool: &PgPool) -> String {
    let m = &*METRICS;
    let (size, idle) = (i64::from(pool.size()), pool.num_idle() as i64);
    let state = |state| State { state };
    m.db_connections
        .get_or_create(&state("in_use"))
        .set(size - idle);
    m.db_connections.get_or_create(&state("idle")).set(idle);
    m.db_connections_max
        .set(i64::from(pool.options().get_max_connections()));
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut text, &m.registry)
        .expect("writing to a String cannot fail");
    text
}
