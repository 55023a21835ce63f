//! The log consumer: turns what each tenant's log says into deliveries, channel by channel.
//!
//! Each channel has a cursor (the tenant sequence number it has consumed up to). A pass finds
//! the tenants with channels behind their head, and for each tenant locks those channels with
//! `FOR UPDATE SKIP LOCKED` (so each channel is consumed by one process at a time), reads the
//! tenant's relevant events after the cursors, inserts the deliveries they call for and moves
//! the cursors, all in one transaction of that tenant (on Citus: on that tenant's node): a crash anywhere leaves the cursor where the deliveries are, and delivery ids
//! derived from (channel, event) make a repeated pass insert nothing twice.
//!
//! What calls for a notification ([`decide`]): what the person's policy says reaches the
//! channel's kind (a question, an approval, "what next?", a session's end or its agent's exit,
//! a failed tool; see `policy.rs`), and an agent message whose `send_email` / `send_push` /
//! `send_sms` flag names the channel's kind (`send_sms` goes to webhooks, flagged): the agent
//! asked for that one explicitly.
//!
//! Coalescing: a request of a session whose notification to the channel has not gone out yet
//! joins it (it tells of every request still open when it goes out; when, the deliverer asks
//! the policy). Anything else notifies a channel of a session at most once per
//! [`COALESCE_WINDOW`], measured in event time, so a pass that runs late decides the same.
//! History brought over from another system (events with `metadata.imported`) notifies
//! nobody: it happened before.

use std::collections::HashMap;

use projections::{AgentExited, AgentMessage, Event, InputRequested, SessionEnded};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Notifier;
use super::channels::Kind;
use super::deliveries::{self, NewDelivery};
use super::notification::{MAX_TEXT_CHARS, Notification, Trigger};
use super::policy::{self, Policy, Topic};

/// Apart from requests (which the policy's coalescing window tells together), a session
/// notifies a channel at most once in this window; what comes within it is not sent.
pub const COALESCE_WINDOW: time::Duration = time::Duration::minutes(1);
/// Tenants one pass takes.
const TENANTS_PER_PASS: i64 = 50;
/// Channels of a tenant one pass takes.
const CHANNELS_PER_PASS: i64 = 200;
/// Tenant sequence numbers one pass reads per tenant.
const EVENTS_PER_PASS: i64 = 1000;

/// Tenants with a channel behind their head. Asked first, without locking anything, so that
/// an idle look is one cheap statement.
const BEHIND: &str = "\
SELECT DISTINCT c.tenant_id FROM notification_channels c
WHERE c.added_seq IS NOT NULL AND c.removed_at IS NULL
  AND EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = c.tenant_id AND e.seq > c.cursor_seq)
LIMIT $1";

/// One tenant's channels that are behind, locked for this pass (on Citus: one node's rows).
const CLAIM_CHANNELS: &str = "\
SELECT c.tenant_id, c.id, c.kind, c.cursor_seq, h.head
FROM notification_channels c
CROSS JOIN LATERAL (
    SELECT e.seq AS head FROM events e WHERE e.tenant_id = $1 ORDER BY e.seq DESC LIMIT 1
) h
WHERE c.tenant_id = $1 AND c.added_seq IS NOT NULL AND c.removed_at IS NULL
  AND h.head > c.cursor_seq
ORDER BY c.id
LIMIT $2
FOR UPDATE OF c SKIP LOCKED";

/// Only these events can call for a notification; the others are skipped in SQL. Only the
/// fields a notification uses are read, the text cut to what it carries, so a pass holds
/// little memory however large the messages are.
const RELEVANT_EVENTS: &str = "\
SELECT seq, stream_id, event_id, event_type, recorded_at,
       left(data->>'content', $4) AS content,
       (data->>'requires_user_input')::boolean AS requires_user_input,
       (data->>'send_email')::boolean AS send_email,
       (data->>'send_sms')::boolean AS send_sms,
       (data->>'send_push')::boolean AS send_push,
       (data->>'message_id')::uuid AS asked_id,
       data->'options' AS options,
       data->'approval' IS NOT NULL AS approval,
       json_array_length(coalesce(data->'approval'->'suggestions', '[]'::json)) AS suggestions,
       (data->>'next_instruction')::boolean AS next_instruction,
       (data->'activity'->>'ok')::boolean = false AS failed,
       left(data->>'reason', $4) AS reason
FROM events
WHERE tenant_id = $1 AND seq > $2 AND seq <= $3
  AND event_type IN ('agent_message', 'input_requested', 'session_ended', 'agent_exited')
  AND metadata->'imported' IS NULL
ORDER BY seq";

/// The agent message an input request turned into a question, read the same way.
const ASKED: &str = "\
SELECT seq, stream_id, event_id, event_type, recorded_at,
       left(data->>'content', $3) AS content,
       (data->>'requires_user_input')::boolean AS requires_user_input,
       (data->>'send_email')::boolean AS send_email,
       (data->>'send_sms')::boolean AS send_sms,
       (data->>'send_push')::boolean AS send_push,
       NULL::uuid AS asked_id,
       data->'options' AS options,
       data->'approval' IS NOT NULL AS approval,
       json_array_length(coalesce(data->'approval'->'suggestions', '[]'::json)) AS suggestions,
       (data->>'next_instruction')::boolean AS next_instruction,
       (data->'activity'->>'ok')::boolean = false AS failed,
       NULL::text AS reason
FROM events WHERE tenant_id = $1 AND event_id = $2 AND event_type = 'agent_message'";

/// What a notification needs of an event.
#[derive(sqlx::FromRow)]
struct Relevant {
    seq: i64,
    stream_id: Uuid,
    event_id: Uuid,
    event_type: String,
    recorded_at: OffsetDateTime,
    content: Option<String>,
    requires_user_input: Option<bool>,
    send_email: Option<bool>,
    send_sms: Option<bool>,
    send_push: Option<bool>,
    asked_id: Option<Uuid>,
    /// A question's options, as JSON.
    options: Option<sqlx::types::Json<Vec<String>>>,
    /// Whether it asks leave to run a tool, and how many permission rules it suggests.
    approval: Option<bool>,
    suggestions: Option<i32>,
    next_instruction: Option<bool>,
    /// It reports a tool that failed.
    failed: Option<bool>,
    /// Why an agent exited.
    reason: Option<String>,
}

impl Relevant {
    /// The event as [`decide`] reads it (message metadata is not needed and not read).
    fn event(&self) -> Option<Event> {
        Some(match self.event_type.as_str() {
            "agent_message" => Event::AgentMessage(self.agent_message()),
            "input_requested" => Event::InputRequested(InputRequested {
                message_id: self.asked_id?,
                answer_id: None,
            }),
            "session_ended" => Event::SessionEnded(SessionEnded::default()),
            "agent_exited" => Event::AgentExited(AgentExited {
                reason: self.reason.clone().unwrap_or_default(),
            }),
            _ => return None,
        })
    }

    /// What the message is about: the kind of request it makes, or a failed tool.
    fn topic(&self) -> Option<Topic> {
        if self.requires_user_input == Some(true) || self.event_type == "input_requested" {
            let kind = projections::QuestionKind::from_flags(
                self.approval == Some(true),
                self.next_instruction == Some(true),
            );
            return Some(Topic::of(kind));
        }
        (self.failed == Some(true)).then_some(Topic::Failure)
    }

    fn agent_message(&self) -> AgentMessage {
        AgentMessage {
            content: self.content.clone().unwrap_or_default(),
            requires_user_input: self.requires_user_input.unwrap_or(false),
            send_email: self.send_email,
            send_sms: self.send_sms,
            send_push: self.send_push,
            ..AgentMessage::default()
        }
    }

    /// The answers a question offers as buttons: its options, or an approval's.
    fn choices(&self) -> Vec<String> {
        if let Some(options) = &self.options {
            return options.0.clone();
        }
        match self.approval {
            Some(true) => projections::Approval::offered(self.suggestions.unwrap_or(0) > 0),
            _ => Vec::new(),
        }
    }
}

/// Characters of text read per event: one more than notifications carry, to know it was cut.
const TEXT_READ: i32 = MAX_TEXT_CHARS as i32 + 1;

const AGENT_TYPE: &str = "SELECT agent_type FROM sessions WHERE tenant_id = $1 AND id = $2";

const LAST_NOTIFIED: &str = "\
SELECT max(event_at) FROM notification_deliveries
WHERE tenant_id = $1 AND channel_id = $2 AND session_id = $3";

const MOVE_CURSORS: &str = "\
UPDATE notification_channels c SET cursor_seq = m.cursor_seq
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS m(tenant_id, id, cursor_seq)
WHERE c.tenant_id = m.tenant_id AND c.id = m.id";

/// A channel locked for this pass.
struct Cursor {
    tenant_id: Uuid,
    id: Uuid,
    kind: Kind,
    seq: i64,
    head: i64,
}

/// Whether a channel of `kind` hears about `event` under `policy`, and whether the agent asked
/// for a text message. `asked` is the agent message an input request turned into a request,
/// `topic` what the request (or message) is about.
pub fn decide(
    kind: Kind,
    event: &Event,
    asked: Option<&AgentMessage>,
    topic: Option<Topic>,
    policy: &Policy,
) -> Option<(Trigger, bool)> {
    let flagged = |m: &AgentMessage| {
        let flag = match kind {
            Kind::Email => m.send_email,
            Kind::WebPush => m.send_push,
            Kind::Webhook => m.send_sms,
        };
        flag == Some(true)
    };
    let sms = |m: &AgentMessage| kind == Kind::Webhook && m.send_sms == Some(true);
    let reaches = |topic: Option<Topic>| topic.is_some_and(|t| policy.reaches(t, kind));
    let request = |m: &AgentMessage| {
        (reaches(topic.or(Some(Topic::Question))) || flagged(m))
            .then(|| (Trigger::Question, sms(m)))
    };
    match event {
        Event::AgentMessage(m) if m.requires_user_input => request(m),
        Event::AgentMessage(m) if flagged(m) => Some((Trigger::Message, sms(m))),
        Event::AgentMessage(_) if topic == Some(Topic::Failure) => {
            reaches(topic).then_some((Trigger::Failure, false))
        }
        Event::InputRequested(_) => request(asked?),
        Event::SessionEnded(_) | Event::AgentExited(_) => {
            reaches(Some(Topic::SessionEnded)).then_some((Trigger::SessionEnded, false))
        }
        _ => None,
    }
}

/// The delivery id: the same for the same channel and event, on every process and every pass.
pub fn delivery_id(channel_id: Uuid, event_id: Uuid) -> Uuid {
    Uuid::new_v5(&channel_id, event_id.as_bytes())
}

impl Notifier {
    /// One pass over the channels that are behind, tenant by tenant (each tenant's in one
    /// transaction). True when there may be more to consume.
    pub(super) async fn consume(&self) -> Result<bool, sqlx::Error> {
        let behind: Vec<Uuid> = sqlx::query_scalar(BEHIND)
            .bind(TENANTS_PER_PASS)
            .fetch_all(&self.pool)
            .await?;
        let mut more = behind.len() as i64 == TENANTS_PER_PASS;
        for tenant_id in behind {
            more |= self.consume_tenant(tenant_id).await?;
        }
        Ok(more)
    }

    /// Consume the tenant's channels that are behind (those no other process holds).
    async fn consume_tenant(&self, tenant_id: Uuid) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, Uuid, String, i64, i64)> = sqlx::query_as(CLAIM_CHANNELS)
            .bind(tenant_id)
            .bind(CHANNELS_PER_PASS)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut more = rows.len() as i64 == CHANNELS_PER_PASS;
        let cursors: Vec<Cursor> = rows
            .into_iter()
            .filter_map(|(tenant_id, id, kind, seq, head)| {
                Some(Cursor {
                    tenant_id,
                    id,
                    kind: Kind::parse(&kind)?,
                    seq,
                    head,
                })
            })
            .collect();
        let mut new = Vec::new();
        let from = cursors.iter().map(|c| c.seq).min().unwrap_or(0);
        let head = cursors.iter().map(|c| c.head).max().unwrap_or(0);
        let until = head.min(from + EVENTS_PER_PASS);
        more |= until < head;
        self.tenant_pass(&mut tx, tenant_id, &cursors, from, until, &mut new)
            .await?;
        let moved: Vec<(Uuid, Uuid, i64)> = cursors
            .iter()
            .filter(|c| c.seq < until)
            .map(|c| (c.tenant_id, c.id, until))
            .collect();
        deliveries::insert(&mut tx, &new).await?;
        sqlx::query(MOVE_CURSORS)
            .bind(moved.iter().map(|m| m.0).collect::<Vec<_>>())
            .bind(moved.iter().map(|m| m.1).collect::<Vec<_>>())
            .bind(moved.iter().map(|m| m.2).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if !new.is_empty() {
            tracing::debug!(deliveries = new.len(), "notifications queued");
        }
        Ok(more)
    }

    /// Decide the deliveries for one tenant's events in `(from, until]`.
    async fn tenant_pass(
        &self,
        conn: &mut PgConnection,
        tenant_id: Uuid,
        cursors: &[Cursor],
        from: i64,
        until: i64,
        new: &mut Vec<NewDelivery>,
    ) -> Result<(), sqlx::Error> {
        let rows: Vec<Relevant> = sqlx::query_as(RELEVANT_EVENTS)
            .bind(tenant_id)
            .bind(from)
            .bind(until)
            .bind(TEXT_READ)
            .fetch_all(&mut *conn)
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let policy = policy::get(&mut *conn, tenant_id).await?;
        let mut agent_types: HashMap<Uuid, Option<String>> = HashMap::new();
        // The newest notification per (channel, session), as far as this pass knows.
        let mut last: HashMap<(Uuid, Uuid), Option<OffsetDateTime>> = HashMap::new();
        // (channel, session) with a request's notification not sent yet, as far as this pass
        // knows (true), or known to have none (false).
        let mut unsent: HashMap<(Uuid, Uuid), bool> = HashMap::new();
        let mut joined = 0usize;
        for recorded in rows {
            let Some(event) = recorded.event() else {
                continue;
            };
            let (asked, question_id, choices, topic) = match &event {
                Event::InputRequested(r) => {
                    let original: Option<Relevant> = sqlx::query_as(ASKED)
                        .bind(tenant_id)
                        .bind(r.message_id)
                        .bind(TEXT_READ)
                        .fetch_optional(&mut *conn)
                        .await?;
                    let choices = original.as_ref().map(Relevant::choices).unwrap_or_default();
                    let topic = original.as_ref().map_or(Some(Topic::Question), |o| {
                        o.topic()
                            .filter(|t| *t != Topic::Failure)
                            .or(Some(Topic::Question))
                    });
                    (
                        original.map(|m| m.agent_message()),
                        Some(r.message_id),
                        choices,
                        topic,
                    )
                }
                Event::AgentMessage(m) if m.requires_user_input => (
                    None,
                    Some(recorded.event_id),
                    recorded.choices(),
                    recorded.topic(),
                ),
                _ => (None, None, Vec::new(), recorded.topic()),
            };
            let session_id = recorded.stream_id;
            for cursor in cursors.iter().filter(|c| c.seq < recorded.seq) {
                let Some((trigger, sms)) =
                    decide(cursor.kind, &event, asked.as_ref(), topic, &policy)
                else {
                    continue;
                };
                if trigger == Trigger::Question {
                    let key = (cursor.id, session_id);
                    let waits = match unsent.get(&key) {
                        Some(known) => *known,
                        None => {
                            deliveries::unsent_request(&mut *conn, tenant_id, cursor.id, session_id)
                                .await?
                        }
                    };
                    unsent.insert(key, true);
                    if waits {
                        joined += 1;
                        continue;
                    }
                }
                // Requests are told together by the deliverer; anything else is coalesced here.
                if trigger != Trigger::Question {
                    let newest = match last.get(&(cursor.id, session_id)) {
                        Some(known) => *known,
                        None => {
                            sqlx::query_scalar(LAST_NOTIFIED)
                                .bind(tenant_id)
                                .bind(cursor.id)
                                .bind(session_id)
                                .fetch_one(&mut *conn)
                                .await?
                        }
                    };
                    if newest.is_some_and(|at| recorded.recorded_at - at < COALESCE_WINDOW) {
                        continue;
                    }
                }
                last.insert((cursor.id, session_id), Some(recorded.recorded_at));
                if let std::collections::hash_map::Entry::Vacant(entry) =
                    agent_types.entry(session_id)
                {
                    entry.insert(
                        sqlx::query_scalar(AGENT_TYPE)
                            .bind(tenant_id)
                            .bind(session_id)
                            .fetch_optional(&mut *conn)
                            .await?,
                    );
                }
                let exited;
                let text = match (&event, &asked) {
                    (Event::AgentMessage(m), _) | (_, Some(m)) => m.content.as_str(),
                    (Event::AgentExited(e), _) => {
                        exited = format!("The agent exited ({}).", e.reason);
                        exited.as_str()
                    }
                    _ => "",
                };
                // What can be answered from the notification: the options, or an approval's.
                let options = match trigger {
                    Trigger::Question => choices.clone(),
                    _ => Vec::new(),
                };
                let (text, truncated) = Notification::cut(text);
                let message_id = match &event {
                    Event::InputRequested(r) => Some(r.message_id),
                    Event::AgentMessage(_) => Some(recorded.event_id),
                    _ => None,
                };
                new.push(NewDelivery {
                    tenant_id,
                    id: delivery_id(cursor.id, recorded.event_id),
                    channel_id: cursor.id,
                    session_id: Some(session_id),
                    event_id: Some(recorded.event_id),
                    event_seq: Some(recorded.seq),
                    event_at: recorded.recorded_at,
                    question_id: (trigger == Trigger::Question)
                        .then_some(question_id)
                        .flatten(),
                    notification: Notification {
                        trigger,
                        session_id: Some(session_id),
                        message_id,
                        agent_type: agent_types.get(&session_id).cloned().flatten(),
                        text,
                        truncated,
                        url: self.session_url(session_id),
                        sms,
                        occurred_at: crate::wire::timestamp(recorded.recorded_at),
                        options,
                        waiting: 0,
                    },
                });
            }
        }
        if joined > 0 {
            tracing::debug!(requests = joined, "requests joined unsent notifications");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::policy::PolicyChange;

    fn message(question: bool, email: bool, push: bool, sms: bool) -> AgentMessage {
        AgentMessage {
            content: "x".into(),
            requires_user_input: question,
            send_email: Some(email),
            send_sms: Some(sms),
            send_push: Some(push),
            ..AgentMessage::default()
        }
    }

    fn questions_off() -> Policy {
        PolicyChange {
            questions: Some(false),
            ..PolicyChange::default()
        }
        .apply(Policy::default())
        .unwrap()
    }

    #[test]
    fn requests_reach_what_the_policy_says_and_flags_name_their_kind() {
        let all = [Kind::Webhook, Kind::Email, Kind::WebPush];
        let on = Policy::default();
        let question = Event::AgentMessage(message(true, false, false, false));
        for kind in all {
            for topic in [Topic::Question, Topic::Approval, Topic::NextInstruction] {
                assert_eq!(
                    decide(kind, &question, None, Some(topic), &on),
                    Some((Trigger::Question, false))
                );
                assert_eq!(
                    decide(kind, &question, None, Some(topic), &questions_off()),
                    None
                );
            }
        }
        let step = Event::AgentMessage(message(false, true, false, true));
        assert_eq!(
            decide(Kind::Email, &step, None, None, &on),
            Some((Trigger::Message, false))
        );
        assert_eq!(
            decide(Kind::Webhook, &step, None, None, &on),
            Some((Trigger::Message, true))
        );
        assert_eq!(decide(Kind::WebPush, &step, None, None, &on), None);
        let flagged_question = Event::AgentMessage(message(true, false, true, false));
        assert_eq!(
            decide(
                Kind::WebPush,
                &flagged_question,
                None,
                None,
                &questions_off()
            ),
            Some((Trigger::Question, false))
        );
        // Approvals by push only: an approval reaches push, not email; a question still both.
        let push_only: PolicyChange = serde_json::from_value(serde_json::json!({"notify": {
            "approval": {"webhook": false, "email": false, "web_push": true}}}))
        .unwrap();
        let push_only = push_only.apply(Policy::default()).unwrap();
        let approval = Some(Topic::Approval);
        assert!(decide(Kind::WebPush, &question, None, approval, &push_only).is_some());
        assert!(decide(Kind::Email, &question, None, approval, &push_only).is_none());
        let asked = Some(Topic::Question);
        assert!(decide(Kind::Email, &question, None, asked, &push_only).is_some());
    }

    #[test]
    fn input_requests_are_requests_and_ends_and_failures_follow_the_policy() {
        let on = Policy::default();
        let request = Event::InputRequested(InputRequested {
            message_id: Uuid::nil(),
            answer_id: None,
        });
        let asked = message(false, false, false, true);
        assert_eq!(
            decide(Kind::Webhook, &request, Some(&asked), None, &on),
            Some((Trigger::Question, true))
        );
        assert_eq!(decide(Kind::Email, &request, None, None, &on), None);
        for ended in [
            Event::SessionEnded(SessionEnded::default()),
            Event::AgentExited(AgentExited {
                reason: "logout".into(),
            }),
        ] {
            assert_eq!(
                decide(Kind::Webhook, &ended, None, None, &on),
                Some((Trigger::SessionEnded, false))
            );
            assert_eq!(decide(Kind::Email, &ended, None, None, &on), None);
        }
        let failed = Event::AgentMessage(message(false, false, false, false));
        let failure = Some(Topic::Failure);
        assert_eq!(decide(Kind::Email, &failed, None, failure, &on), None);
        let told: PolicyChange = serde_json::from_value(serde_json::json!({"notify": {
            "failure": {"webhook": false, "email": true, "web_push": false}}}))
        .unwrap();
        let told = told.apply(on).unwrap();
        assert_eq!(
            decide(Kind::Email, &failed, None, failure, &told),
            Some((Trigger::Failure, false))
        );
    }

    #[test]
    fn delivery_ids_are_stable_per_channel_and_event() {
        let (channel, event) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(delivery_id(channel, event), delivery_id(channel, event));
        assert_ne!(
            delivery_id(channel, event),
            delivery_id(Uuid::new_v4(), event)
        );
    }
}
