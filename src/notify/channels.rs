//! Channels: where a tenant's people are reached. Adding one checks the target (the outbound
//! guard for URLs, an SMTP server for email), keeps its target and secret in
//! `notification_channels` only, and records the fact (`notification_channel_added`: id, kind,
//! description) on the account stream; its cursor starts at that event, so a new channel hears
//! about what happens from then on. Removing one wipes its secret, ends its pending deliveries
//! and records `notification_channel_removed`.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Notifier;
use super::email;
use super::web_push::Subscription;
use super::webhook;
use crate::commands::{self, CommandError, Context};
use crate::domain::InvalidInput;

/// Most channels one tenant may have.
pub const MAX_CHANNELS: i64 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Webhook,
    Email,
    WebPush,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Email => "email",
            Kind::WebPush => "web_push",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        [Kind::Webhook, Kind::Email, Kind::WebPush]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// A channel as someone asks for it, before its target is checked.
#[derive(Clone, Debug)]
pub enum NewChannel {
    Webhook {
        url: String,
    },
    Email {
        to: String,
    },
    WebPush {
        endpoint: String,
        p256dh: String,
        auth: String,
        /// The endpoint of the subscription this one replaces: its channel goes.
        replaces: Option<String>,
    },
}

/// A channel as listed: nothing secret.
#[derive(Clone, Debug, Serialize)]
pub struct Channel {
    pub id: Uuid,
    pub kind: Kind,
    /// The webhook's origin, the push service, or the mailbox's domain.
    pub description: String,
    /// The email address (email channels only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A channel just added, with its signing secret (webhooks) shown this once.
#[derive(Clone, Debug, Serialize)]
pub struct Added {
    #[serde(flatten)]
    pub channel: Channel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A checked target, ready to store.
struct Target {
    kind: Kind,
    description: String,
    target: String,
    secret: Value,
    /// Shown once to whoever added the channel.
    shown_secret: Option<String>,
}

impl Target {
    fn added(self, id: Uuid, created_at: OffsetDateTime) -> Added {
        Added {
            channel: Channel {
                id,
                kind: self.kind,
                description: self.description,
                to: (self.kind == Kind::Email).then_some(self.target),
                created_at,
            },
            secret: self.shown_secret,
        }
    }
}

/// Names the channel an Idempotency-Key adds (UUID v5 of "<tenant>/<key>").
const KEYED_CHANNELS: Uuid = Uuid::from_u128(0x5b0e_2c71_94d3_4f6a_8e15_c2a9_7d40_b8e3);

/// What an earlier add with the same key left: kind, target, secret, when, its added event's
/// sequence (none if it stopped before it), whether it was removed since.
type EarlierRow = (String, String, Value, OffsetDateTime, Option<i64>, bool);

/// The tenant's push channels to an endpoint (as stored: the URL parsed, then printed).
const PUSH_CHANNELS_TO: &str = "\
SELECT id FROM notification_channels
WHERE tenant_id = $1 AND kind = 'web_push' AND removed_at IS NULL AND added_seq IS NOT NULL
  AND (target = $2 OR target = $2 || '/')";

const EARLIER: &str = "\
SELECT kind, target, secret, created_at, added_seq, removed_at IS NOT NULL
FROM notification_channels WHERE tenant_id = $1 AND id = $2";

fn invalid(field: &str, reason: impl Into<String>) -> CommandError {
    CommandError::Invalid(InvalidInput::new(field, reason))
}

impl Notifier {
    async fn check(&self, new: NewChannel) -> Result<Target, CommandError> {
        match new {
            NewChannel::Webhook { url } => {
                let url = self.checked_url("url", &url).await?;
                let secret = webhook::new_secret();
                Ok(Target {
                    kind: Kind::Webhook,
                    description: url.origin().ascii_serialization(),
                    target: url.to_string(),
                    secret: json!({ "whsec": secret }),
                    shown_secret: Some(secret),
                })
            }
            NewChannel::Email { to } => {
                if self.smtp.is_none() {
                    return Err(CommandError::BadRequest(
                        "this server cannot send email: its operator has not set --smtp-url".into(),
                    ));
                }
                let to = email::parse_address(&to).map_err(|e| invalid("to", e))?;
                let domain = to.rsplit_once('@').map_or("", |(_, d)| d).to_owned();
                Ok(Target {
                    kind: Kind::Email,
                    description: format!("email to …@{domain}"),
                    target: to,
                    secret: json!({}),
                    shown_secret: None,
                })
            }
            NewChannel::WebPush {
                endpoint,
                p256dh,
                auth,
                replaces,
            } => {
                // The endpoint it replaces is only compared, but must be one a browser gives.
                if replaces
                    .as_deref()
                    .is_some_and(|r| r.len() > 2048 || r.chars().any(char::is_control))
                {
                    return Err(invalid(
                        "replaces",
                        "must be a subscription's endpoint (a URL of at most 2048 bytes)",
                    ));
                }
                let url = self.checked_url("subscription.endpoint", &endpoint).await?;
                let subscription = Subscription::parse(url.clone(), &p256dh, &auth)
                    .map_err(|e| invalid("subscription", e))?;
                Ok(Target {
                    kind: Kind::WebPush,
                    description: url.origin().ascii_serialization(),
                    target: url.to_string(),
                    secret: subscription.keys_json(),
                    shown_secret: None,
                })
            }
        }
    }

    /// A URL the guard allows now (its name resolves to allowed addresses only).
    async fn checked_url(&self, field: &str, text: &str) -> Result<url::Url, CommandError> {
        if text.len() > 2048 || text.contains('\0') {
            return Err(invalid(field, "must be a URL of at most 2048 characters"));
        }
        let url = self
            .outbound
            .check(text)
            .map_err(|e| CommandError::BadRequest(format!("{field}: {e}")))?;
        self.outbound
            .resolve(&url)
            .await
            .map_err(|e| CommandError::BadRequest(format!("{field}: {e}")))?;
        Ok(url)
    }

    /// Add a channel for the caller's tenant: the row (with its secret) first, then the
    /// `notification_channel_added` event; the channel is used from that event on.
    pub async fn add_channel(&self, ctx: &Context, new: NewChannel) -> Result<Added, CommandError> {
        ctx.require_write()?;
        let replaces = match &new {
            NewChannel::WebPush { replaces, .. } => replaces.clone(),
            _ => None,
        };
        let mut target = self.check(new).await?;
        // With an Idempotency-Key the channel's id is the key's: a retry finds what the first
        // request made and answers as it did (its secret too: the client never saw it).
        let id = match ctx.idempotency_key.as_deref() {
            Some(key) => Uuid::new_v5(
                &KEYED_CHANNELS,
                format!("{}/{key}", ctx.tenant_id).as_bytes(),
            ),
            None => Uuid::now_v7(),
        };
        let earlier: Option<EarlierRow> = sqlx::query_as(EARLIER)
            .bind(ctx.tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(database)?;
        let created_at = match earlier {
            Some((kind, destination, secret, created_at, added, removed)) => {
                if kind != target.kind.as_str() || destination != target.target {
                    return Err(invalid(
                        "Idempotency-Key",
                        "was already used for a different request; use a new key for a new request",
                    ));
                }
                if removed {
                    return Err(CommandError::Conflict(format!(
                        "the channel this Idempotency-Key added ({id}) was removed since"
                    )));
                }
                target.secret = secret;
                target.shown_secret = target
                    .shown_secret
                    .and_then(|_| target.secret["whsec"].as_str().map(str::to_owned));
                if let Some(seq) = added {
                    tracing::debug!(channel = %id, seq, "a retried add answered as the first");
                    return Ok(target.added(id, created_at));
                }
                created_at
            }
            None => {
                // One add at a time per tenant, so that the cap holds under a burst of them.
                let mut tx = self.pool.begin().await.map_err(database)?;
                sqlx::query(LOCK_TENANT_CHANNELS)
                    .bind(ctx.tenant_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(database)?;
                let row: Option<(OffsetDateTime,)> = sqlx::query_as(INSERT_CHANNEL)
                    .bind(ctx.tenant_id)
                    .bind(id)
                    .bind(target.kind.as_str())
                    .bind(&target.description)
                    .bind(&target.target)
                    .bind(&target.secret)
                    .bind(MAX_CHANNELS)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(database)?;
                tx.commit().await.map_err(database)?;
                let Some((created_at,)) = row else {
                    return Err(CommandError::Conflict(format!(
                        "a tenant may have at most {MAX_CHANNELS} notification channels; remove \
                         one first"
                    )));
                };
                created_at
            }
        };
        let kind = target.kind.as_str();
        let recorded =
            commands::record_channel_added(&self.log, ctx, id, kind, &target.description).await;
        let seq = match recorded {
            Ok(seq) => seq,
            Err(e) => {
                // Never used without its event: take the row back.
                let _ = sqlx::query(FORGET_CHANNEL)
                    .bind(ctx.tenant_id)
                    .bind(id)
                    .execute(&self.pool)
                    .await;
                return Err(e);
            }
        };
        sqlx::query(ACTIVATE_CHANNEL)
            .bind(ctx.tenant_id)
            .bind(id)
            .bind(seq)
            .execute(&self.pool)
            .await
            .map_err(database)?;
        tracing::info!(tenant = %ctx.tenant_id, channel = %id, kind = target.kind.as_str(),
            "notification channel added");
        // A renewed subscription: the channel of the one it replaces would only fail.
        if let Some(old) = replaces.filter(|old| *old != target.target) {
            let stale: Vec<Uuid> = sqlx::query_scalar(PUSH_CHANNELS_TO)
                .bind(ctx.tenant_id)
                .bind(old.trim())
                .fetch_all(&self.pool)
                .await
                .map_err(database)?;
            // Removals of their own: this request's Idempotency-Key is the add's.
            let removing = Context {
                idempotency_key: None,
                ..ctx.clone()
            };
            for stale in stale {
                self.remove_channel(&removing, stale).await?;
            }
        }
        Ok(target.added(id, created_at))
    }

    /// Remove one of the caller's channels: it stops at once (its secret is wiped, its
    /// pending deliveries end as skipped), then the `notification_channel_removed` event is
    /// appended. A removal whose event could not be appended is completed by the next try.
    pub async fn remove_channel(&self, ctx: &Context, id: Uuid) -> Result<(), CommandError> {
        ctx.require_write()?;
        let removed: Option<Uuid> = sqlx::query_scalar(REMOVE_CHANNEL)
            .bind(ctx.tenant_id)
            .bind(id)
            // The time is ours: Citus refuses now() inside coalesce.
            .bind(OffsetDateTime::now_utc())
            .fetch_optional(&self.pool)
            .await
            .map_err(database)?;
        if removed.is_none() {
            // A retry of the request that removed it is answered as that one was.
            if commands::removal_was_this_request(&self.log, ctx, id).await? {
                return Ok(());
            }
            return Err(channel_not_found(id));
        }
        let seq = commands::record_channel_removed(&self.log, ctx, id).await?;
        sqlx::query(REMOVED_SEQ)
            .bind(ctx.tenant_id)
            .bind(id)
            .bind(seq)
            .execute(&self.pool)
            .await
            .map_err(database)?;
        tracing::info!(tenant = %ctx.tenant_id, channel = %id, "notification channel removed");
        Ok(())
    }
}

pub fn channel_not_found(id: Uuid) -> CommandError {
    CommandError::NotFound(format!("notification channel {id} not found"))
}

/// The cursor starts at the tenant's head; the count check keeps a tenant's channels bounded
/// (those being added count too).
const INSERT_CHANNEL: &str = "\
INSERT INTO notification_channels (tenant_id, id, kind, description, target, secret, cursor_seq)
SELECT $1, $2, $3, $4, $5, $6,
       coalesce((SELECT seq FROM events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1), 0)
WHERE (SELECT count(*) FROM notification_channels WHERE tenant_id = $1 AND removed_at IS NULL) < $7
RETURNING created_at";

/// Held by an add until it commits (adds of one tenant queue; other tenants' do not).
const LOCK_TENANT_CHANNELS: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('notification_channels/' || $1::text, 0))";

/// In use from its added event on; the cursor starts there.
const ACTIVATE_CHANNEL: &str = "\
UPDATE notification_channels SET added_seq = $3, cursor_seq = greatest(cursor_seq, $3)
WHERE tenant_id = $1 AND id = $2";

const FORGET_CHANNEL: &str =
    "DELETE FROM notification_channels WHERE tenant_id = $1 AND id = $2 AND added_seq IS NULL";

const REMOVED_SEQ: &str =
    "UPDATE notification_channels SET removed_seq = $3 WHERE tenant_id = $1 AND id = $2";

const REMOVE_CHANNEL: &str = "\
WITH removed AS (
    UPDATE notification_channels SET removed_at = coalesce(removed_at, $3), secret = '{}'
    WHERE tenant_id = $1 AND id = $2 AND added_seq IS NOT NULL AND removed_seq IS NULL
    RETURNING id
), ended AS (
    UPDATE notification_deliveries d
    SET status = 'skipped', last_error = 'the channel was removed', finished_at = now()
    FROM removed
    WHERE d.tenant_id = $1 AND d.channel_id = removed.id AND d.status = 'pending'
)
SELECT id FROM removed";

const LIST_CHANNELS: &str = "\
SELECT id, kind, description, target, created_at FROM notification_channels
WHERE tenant_id = $1 AND added_seq IS NOT NULL AND removed_at IS NULL
ORDER BY created_at, id";

/// The tenant's channels, oldest first.
pub async fn list(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<Channel>, CommandError> {
    let rows: Vec<(Uuid, String, String, String, OffsetDateTime)> = sqlx::query_as(LIST_CHANNELS)
        .bind(tenant_id)
        .fetch_all(pool)
        .await
        .map_err(database)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, kind, description, target, created_at)| {
            let kind = Kind::parse(&kind)?;
            Some(Channel {
                id,
                kind,
                description,
                to: (kind == Kind::Email).then_some(target),
                created_at,
            })
        })
        .collect())
}

/// A database failure as a command error (unavailable, or internal).
pub(crate) fn database(e: sqlx::Error) -> CommandError {
    crate::eventlog::LogError::from(e).into()
}
