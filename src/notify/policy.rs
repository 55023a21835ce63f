//! A person's notification policy: what reaches which kind of channel, quiet hours, escalation,
//! coalescing and presence. The one place that decides whether a notification is called for
//! ([`Policy::reaches`], asked by the consumer) and when it may go out ([`Policy::hold`],
//! asked again each time a delivery comes due, so a changed policy, an answer or a person who
//! looks at the inbox meanwhile is honoured).
//!
//! The policy is a fact of the account: each change is a `notification_policy_changed` event
//! on the account stream carrying the whole new policy (no secrets are in it), and the
//! policy in force is the newest one. Before the first change it is the default, or what the
//! old question switch (`notification_settings.questions`) said.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::channels::Kind;
use super::notification::Trigger;
use crate::domain::InvalidInput;

/// What an event is about, as far as notifying goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// A question in words, possibly with options.
    Question,
    /// Leave to run a tool.
    Approval,
    /// A finished turn asks what next.
    NextInstruction,
    /// The session ended, or its agent exited.
    SessionEnded,
    /// A tool the agent ran failed.
    Failure,
}

impl Topic {
    /// The topic of a kind of request.
    pub fn of(kind: projections::QuestionKind) -> Topic {
        match kind {
            projections::QuestionKind::Question => Topic::Question,
            projections::QuestionKind::Approval => Topic::Approval,
            projections::QuestionKind::NextInstruction => Topic::NextInstruction,
        }
    }
}

/// Which kinds of channel hear about one topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    pub webhook: bool,
    pub email: bool,
    pub web_push: bool,
}

impl Channels {
    const ALL: Channels = Channels {
        webhook: true,
        email: true,
        web_push: true,
    };
    const NONE: Channels = Channels {
        webhook: false,
        email: false,
        web_push: false,
    };
    const WEBHOOKS: Channels = Channels {
        webhook: true,
        ..Channels::NONE
    };

    pub fn includes(self, kind: Kind) -> bool {
        match kind {
            Kind::Webhook => self.webhook,
            Kind::Email => self.email,
            Kind::WebPush => self.web_push,
        }
    }

    fn any(self) -> bool {
        self.webhook || self.email || self.web_push
    }
}

/// Which topics reach which kinds of channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Notify {
    pub question: Channels,
    pub approval: Channels,
    pub next_instruction: Channels,
    pub session_ended: Channels,
    pub failure: Channels,
}

impl Default for Notify {
    /// Every request of the person reaches every channel; a session's end reaches webhooks
    /// (software that decides for itself); failed tools reach nobody.
    fn default() -> Notify {
        Notify {
            question: Channels::ALL,
            approval: Channels::ALL,
            next_instruction: Channels::ALL,
            session_ended: Channels::WEBHOOKS,
            failure: Channels::NONE,
        }
    }
}

impl Notify {
    pub fn channels(&self, topic: Topic) -> Channels {
        match topic {
            Topic::Question => self.question,
            Topic::Approval => self.approval,
            Topic::NextInstruction => self.next_instruction,
            Topic::SessionEnded => self.session_ended,
            Topic::Failure => self.failure,
        }
    }

    /// Whether any kind of request reaches any channel (the old question switch).
    fn questions(&self) -> bool {
        self.question.any() || self.approval.any() || self.next_instruction.any()
    }

    fn set_questions(&mut self, on: bool) {
        let to = if on { Channels::ALL } else { Channels::NONE };
        (self.question, self.approval, self.next_instruction) = (to, to, to);
    }
}

/// Per kind of channel, how long a request stays open before that channel hears of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    #[serde(default, deserialize_with = "whole")]
    pub webhook: u32,
    #[serde(default, deserialize_with = "whole")]
    pub email: u32,
    #[serde(default, deserialize_with = "whole")]
    pub web_push: u32,
}

impl Escalation {
    pub fn seconds(self, kind: Kind) -> u32 {
        match kind {
            Kind::Webhook => self.webhook,
            Kind::Email => self.email,
            Kind::WebPush => self.web_push,
        }
    }
}

/// A daily time span in a time zone when nothing is sent; what still matters at its end is
/// sent then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// `HH:MM`, local time.
    pub from: String,
    /// `HH:MM`, local time; before `from` for a span over midnight.
    pub until: String,
    /// An IANA time zone name (`Europe/Berlin`); the browser's own by default in the inbox.
    pub time_zone: String,
}

/// The longest escalation delay and coalescing window: a week, a day.
const MAX_ESCALATION: u32 = 7 * 24 * 3600;
const MAX_COALESCE: u32 = 24 * 3600;
/// How long a focused inbox counts as present without hearing from it again.
pub const PRESENCE_LEASE: time::Duration = time::Duration::seconds(45);
/// How long a page that stopped being focused still counts: moving from one inbox page to the
/// next (the old one hides, the new one reports) does not let a push through in between.
pub const PRESENCE_GRACE: time::Duration = time::Duration::seconds(3);

/// Read from the log with defaults for what it does not say (a policy recorded before a field
/// existed keeps the rest of what it said).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub notify: Notify,
    /// `null`: none.
    pub quiet_hours: Option<QuietHours>,
    pub escalate_after_seconds: Escalation,
    /// At most one notification of a session's requests per channel in this window; what
    /// comes within it is told together ("3 questions wait") when it ends.
    pub coalesce_seconds: u32,
    /// While an inbox is open and focused on any of the person's devices, push waits: they
    /// see it there.
    pub presence: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            notify: Notify::default(),
            quiet_hours: None,
            escalate_after_seconds: Escalation::default(),
            coalesce_seconds: 60,
            presence: true,
        }
    }
}

/// The policy as the API shows it: with the old question switch, derived.
#[derive(Serialize)]
pub struct PolicyView {
    #[serde(flatten)]
    pub policy: Policy,
    /// Whether requests (questions, approvals, "what next?") notify at all.
    pub questions: bool,
}

impl From<Policy> for PolicyView {
    fn from(policy: Policy) -> PolicyView {
        PolicyView {
            questions: policy.notify.questions(),
            policy,
        }
    }
}

/// A change to the policy: every field given replaces the one in force.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    #[serde(default)]
    pub notify: Option<NotifyChange>,
    /// Present and `null` ends quiet hours; absent keeps them.
    #[serde(default, deserialize_with = "present")]
    pub quiet_hours: Option<Option<QuietHours>>,
    #[serde(default)]
    pub escalate_after_seconds: Option<Escalation>,
    #[serde(default, deserialize_with = "whole_if_given")]
    pub coalesce_seconds: Option<u32>,
    #[serde(default)]
    pub presence: Option<bool>,
    /// The old switch: `false` turns every request's notifications off, `true` back on.
    #[serde(default)]
    pub questions: Option<bool>,
}

/// Topics given replace theirs.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyChange {
    pub question: Option<Channels>,
    pub approval: Option<Channels>,
    pub next_instruction: Option<Channels>,
    pub session_ended: Option<Channels>,
    pub failure: Option<Channels>,
}

/// A whole number of seconds, written as an integer or as a number with no fraction (JSON
/// does not tell `60` from `60.0`).
fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = f64::deserialize(d)?;
    if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) {
        Ok(n as u32)
    } else {
        Err(serde::de::Error::custom(format!(
            "{n} is not a whole number of seconds, 0 or more"
        )))
    }
}

fn whole_if_given<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    whole(d).map(Some)
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl PolicyChange {
    /// `policy` with this change applied, checked.
    pub fn apply(&self, mut policy: Policy) -> Result<Policy, InvalidInput> {
        if let Some(on) = self.questions {
            policy.notify.set_questions(on);
        }
        if let Some(n) = self.notify {
            let p = &mut policy.notify;
            p.question = n.question.unwrap_or(p.question);
            p.approval = n.approval.unwrap_or(p.approval);
            p.next_instruction = n.next_instruction.unwrap_or(p.next_instruction);
            p.session_ended = n.session_ended.unwrap_or(p.session_ended);
            p.failure = n.failure.unwrap_or(p.failure);
        }
        if let Some(quiet) = &self.quiet_hours {
            if let Some(q) = quiet {
                q.check()?;
            }
            policy.quiet_hours = quiet.clone();
        }
        if let Some(e) = self.escalate_after_seconds {
            if [e.webhook, e.email, e.web_push]
                .iter()
                .any(|s| *s > MAX_ESCALATION)
            {
                return Err(InvalidInput::new(
                    "escalate_after_seconds",
                    format!("at most {MAX_ESCALATION} seconds (a week)"),
                ));
            }
            policy.escalate_after_seconds = e;
        }
        if let Some(c) = self.coalesce_seconds {
            if c > MAX_COALESCE {
                return Err(InvalidInput::new(
                    "coalesce_seconds",
                    format!("at most {MAX_COALESCE} seconds (a day)"),
                ));
            }
            policy.coalesce_seconds = c;
        }
        if let Some(p) = self.presence {
            policy.presence = p;
        }
        Ok(policy)
    }
}

/// `HH:MM` as minutes after midnight.
fn minutes(text: &str) -> Option<i16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i16, i16) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

impl QuietHours {
    fn check(&self) -> Result<(), InvalidInput> {
        let (Some(from), Some(until)) = (minutes(&self.from), minutes(&self.until)) else {
            return Err(InvalidInput::new(
                "quiet_hours",
                "from and until are times of day as HH:MM (22:00, 07:30)",
            ));
        };
        if from == until {
            return Err(InvalidInput::new(
                "quiet_hours",
                "from and until are the same time: say when quiet hours end",
            ));
        }
        jiff::tz::TimeZone::get(&self.time_zone).map_err(|_| {
            InvalidInput::new(
                "quiet_hours",
                format!(
                    "{:?} is not a time zone: name one as Europe/Berlin or UTC",
                    self.time_zone
                ),
            )
        })?;
        Ok(())
    }

    /// When quiet hours that include `at` end; `None` when `at` is not in them.
    pub fn end_if_quiet(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let (from, until) = (minutes(&self.from)?, minutes(&self.until)?);
        let tz = jiff::tz::TimeZone::get(&self.time_zone).ok()?;
        let local = jiff::Timestamp::from_second(at.unix_timestamp())
            .ok()?
            .to_zoned_datetime(tz.clone());
        let now = i16::from(local.hour()) * 60 + i16::from(local.minute());
        let today = local.date();
        let end_day = if from < until {
            (from..until).contains(&now).then_some(today)?
        } else if now >= from {
            today.tomorrow().ok()?
        } else if now < until {
            today
        } else {
            return None;
        };
        let end = end_day
            .at((until / 60) as i8, (until % 60) as i8, 0, 0)
            .to_zoned_datetime(tz)
            .ok()?;
        OffsetDateTime::from_unix_timestamp(end.timestamp().as_second()).ok()
    }
}

/// What decides when one delivery may go out.
#[derive(Clone, Copy, Debug)]
pub struct Moment {
    pub now: OffsetDateTime,
    pub kind: Kind,
    pub trigger: Trigger,
    /// When the event that calls for it was recorded.
    pub event_at: OffsetDateTime,
    /// When this channel last heard of a request of this session.
    pub last_sent: Option<OffsetDateTime>,
    /// Until when an inbox of the person's is open and focused.
    pub focused_until: Option<OffsetDateTime>,
}

impl Policy {
    /// Whether `topic` reaches a channel of `kind`.
    pub fn reaches(&self, topic: Topic, kind: Kind) -> bool {
        self.notify.channels(topic).includes(kind)
    }

    /// Not before when the delivery may go out; `None`: now.
    pub fn hold(&self, m: &Moment) -> Option<OffsetDateTime> {
        let mut until = m.now;
        if m.trigger == Trigger::Question {
            let escalate =
                time::Duration::seconds(self.escalate_after_seconds.seconds(m.kind).into());
            until = until.max(m.event_at + escalate);
            if let Some(sent) = m.last_sent {
                until = until.max(sent + time::Duration::seconds(self.coalesce_seconds.into()));
            }
        }
        if self.presence
            && m.kind == Kind::WebPush
            && let Some(focused) = m.focused_until
        {
            until = until.max(focused);
        }
        if let Some(end) = self
            .quiet_hours
            .as_ref()
            .and_then(|q| q.end_if_quiet(until))
        {
            until = end;
        }
        (until > m.now).then_some(until)
    }
}

const NEWEST: &str = "\
SELECT data FROM events
WHERE tenant_id = $1 AND stream_id = $1 AND event_type = 'notification_policy_changed'
ORDER BY stream_version DESC LIMIT 1";

const OLD_SWITCH: &str = "SELECT questions FROM notification_settings WHERE tenant_id = $1";

/// The policy in force for `tenant_id`.
pub async fn get(conn: &mut PgConnection, tenant_id: Uuid) -> Result<Policy, sqlx::Error> {
    let newest: Option<sqlx::types::Json<Map<String, Value>>> = sqlx::query_scalar(NEWEST)
        .bind(tenant_id)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(data) = newest {
        match data.0.get("policy").cloned().map(serde_json::from_value) {
            Some(Ok(policy)) => return Ok(policy),
            _ => tracing::error!(%tenant_id, "an unreadable notification policy in the log"),
        }
    }
    let switch: Option<bool> = sqlx::query_scalar(OLD_SWITCH)
        .bind(tenant_id)
        .fetch_optional(&mut *conn)
        .await?;
    let mut policy = Policy::default();
    if switch == Some(false) {
        policy.notify.set_questions(false);
    }
    Ok(policy)
}

/// Renew (focused) or end a device's presence, saying whether it was focused; a device not
/// heard of for a day is forgotten.
const PRESENCE: &str = "\
WITH forgotten AS (
    DELETE FROM inbox_presence
    WHERE tenant_id = $1 AND device_id <> $2 AND focused_until < now() - interval '1 day'
), before AS (
    SELECT focused_until > now() AS focused FROM inbox_presence
    WHERE tenant_id = $1 AND device_id = $2
), renewed AS (
    INSERT INTO inbox_presence (tenant_id, device_id, focused_until)
    VALUES ($1, $2, now() + make_interval(secs => CASE WHEN $3 THEN $4 ELSE $5 END))
    ON CONFLICT (tenant_id, device_id) DO UPDATE SET focused_until = excluded.focused_until
)
SELECT coalesce((SELECT focused FROM before), false)";

/// Report a device's presence; whether it was focused until now.
pub async fn report_presence(
    pool: &sqlx::PgPool,
    tenant_id: Uuid,
    device_id: Uuid,
    focused: bool,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(PRESENCE)
        .bind(tenant_id)
        .bind(device_id)
        .bind(focused)
        .bind(PRESENCE_LEASE.as_seconds_f64())
        .bind(PRESENCE_GRACE.as_seconds_f64())
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn quiet(from: &str, until: &str, tz: &str) -> QuietHours {
        QuietHours {
            from: from.into(),
            until: until.into(),
            time_zone: tz.into(),
        }
    }

    #[test]
    fn quiet_hours_end_in_their_time_zone_over_midnight_and_across_daylight_saving() {
        let night = quiet("22:00", "07:00", "Europe/Berlin");
        // 23:30 in Berlin (UTC+1 in January): quiet until 07:00 the next morning.
        assert_eq!(
            night.end_if_quiet(datetime!(2026-01-10 22:30 UTC)),
            Some(datetime!(2026-01-11 06:00 UTC))
        );
        // 05:00 local: until 07:00 the same day; 12:00 local: not quiet.
        assert_eq!(
            night.end_if_quiet(datetime!(2026-01-11 04:00 UTC)),
            Some(datetime!(2026-01-11 06:00 UTC))
        );
        assert_eq!(night.end_if_quiet(datetime!(2026-01-11 11:00 UTC)), None);
        // The night clocks go forward (29 March 2026): 07:00 is UTC+2 then.
        assert_eq!(
            night.end_if_quiet(datetime!(2026-03-28 22:00 UTC)),
            Some(datetime!(2026-03-29 05:00 UTC))
        );
        let lunch = quiet("12:00", "13:30", "UTC");
        assert_eq!(
            lunch.end_if_quiet(datetime!(2026-01-11 12:59 UTC)),
            Some(datetime!(2026-01-11 13:30 UTC))
        );
        assert_eq!(lunch.end_if_quiet(datetime!(2026-01-11 13:30 UTC)), None);
    }

    #[test]
    fn quiet_hours_are_checked() {
        let change = |q: QuietHours| PolicyChange {
            quiet_hours: Some(Some(q)),
            ..PolicyChange::default()
        };
        for bad in [
            quiet("25:00", "07:00", "UTC"),
            quiet("7:00", "08:00", "UTC"),
            quiet("07:00", "07:00", "UTC"),
            quiet("22:00", "07:00", "Mars/Olympus"),
        ] {
            assert!(change(bad).apply(Policy::default()).is_err());
        }
        assert!(
            change(quiet("22:00", "07:00", "America/New_York"))
                .apply(Policy::default())
                .is_ok()
        );
    }

    fn moment(kind: Kind, now: OffsetDateTime) -> Moment {
        Moment {
            now,
            kind,
            trigger: Trigger::Question,
            event_at: now,
            last_sent: None,
            focused_until: None,
        }
    }

    #[test]
    fn a_request_escalates_coalesces_waits_for_presence_and_for_quiet_hours_to_end() {
        let now = datetime!(2026-06-01 10:00 UTC);
        let mut policy = Policy::default();
        assert_eq!(policy.hold(&moment(Kind::Email, now)), None);
        policy.escalate_after_seconds.email = 600;
        assert_eq!(
            policy.hold(&moment(Kind::Email, now)),
            Some(now + time::Duration::minutes(10))
        );
        assert_eq!(policy.hold(&moment(Kind::WebPush, now)), None);
        // Asked 10 minutes ago: the email is due.
        let asked_before = Moment {
            event_at: now - time::Duration::minutes(10),
            ..moment(Kind::Email, now)
        };
        assert_eq!(policy.hold(&asked_before), None);
        // The channel heard of this session 20 s ago: the rest of the window.
        let burst = Moment {
            last_sent: Some(now - time::Duration::seconds(20)),
            ..moment(Kind::WebPush, now)
        };
        assert_eq!(policy.hold(&burst), Some(now + time::Duration::seconds(40)));
        // Someone looks at the inbox: push waits, email does not.
        let looking = Moment {
            focused_until: Some(now + time::Duration::seconds(30)),
            ..moment(Kind::WebPush, now)
        };
        assert_eq!(
            policy.hold(&looking),
            Some(now + time::Duration::seconds(30))
        );
        policy.presence = false;
        assert_eq!(policy.hold(&looking), None);
        // Quiet hours hold everything to their end, including what escalation holds into them.
        policy.quiet_hours = Some(quiet("10:05", "11:00", "UTC"));
        assert_eq!(
            policy.hold(&moment(Kind::Email, now)),
            Some(datetime!(2026-06-01 11:00 UTC))
        );
        assert_eq!(policy.hold(&moment(Kind::WebPush, now)), None);
        let ended = Moment {
            trigger: Trigger::SessionEnded,
            now: datetime!(2026-06-01 10:30 UTC),
            ..moment(Kind::Webhook, now)
        };
        assert_eq!(policy.hold(&ended), Some(datetime!(2026-06-01 11:00 UTC)));
    }

    #[test]
    fn changes_replace_what_they_name_and_the_old_switch_still_works() {
        let off = PolicyChange {
            questions: Some(false),
            ..PolicyChange::default()
        }
        .apply(Policy::default())
        .unwrap();
        assert!(!PolicyView::from(off.clone()).questions);
        assert!(!off.reaches(Topic::Approval, Kind::WebPush));
        assert!(off.reaches(Topic::SessionEnded, Kind::Webhook));
        let change: PolicyChange = serde_json::from_value(serde_json::json!({
            "notify": {"failure": {"webhook": false, "email": true, "web_push": false}},
            "quiet_hours": null
        }))
        .unwrap();
        let changed = change.apply(off).unwrap();
        assert!(changed.reaches(Topic::Failure, Kind::Email));
        assert!(!changed.reaches(Topic::Question, Kind::Email));
        assert!(
            serde_json::from_value::<PolicyChange>(serde_json::json!({"notfy": {}})).is_err(),
            "unknown fields are refused"
        );
    }
}
