//! A notification channel came or went: a fact about the user's account, appended to its
//! account stream, so audits and exports show who added which channel when. The channel's
//! target and secret are not part of it (the notifier keeps them, see `crate::notify`).
//!
//! Each fact has an id derived from the channel, so recording it again (a retry after a crash
//! between the notifier's write and this append) finds the first record and appends nothing.

use projections::{Actor, Event, NotificationChannelAdded, NotificationChannelRemoved};
use serde::Serialize;
use uuid::Uuid;

use super::{CommandError, Context, Decide, transact};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};

/// Record that `channel_id` (of `kind`, shown as `description`) was added; its sequence number.
pub async fn record_channel_added(
    log: &EventLog,
    ctx: &Context,
    channel_id: Uuid,
    kind: &str,
    description: &str,
) -> Result<i64, CommandError> {
    let event = Event::NotificationChannelAdded(NotificationChannelAdded {
        channel_id,
        kind: kind.to_owned(),
        description: description.to_owned(),
    });
    transact(log, ctx, &ChannelFact::new(channel_id, "added", event)).await
}

/// Record that `channel_id` was removed; its sequence number.
pub async fn record_channel_removed(
    log: &EventLog,
    ctx: &Context,
    channel_id: Uuid,
) -> Result<i64, CommandError> {
    let event = Event::NotificationChannelRemoved(NotificationChannelRemoved { channel_id });
    transact(log, ctx, &ChannelFact::new(channel_id, "removed", event)).await
}

/// Whether the removal of `channel_id` was recorded under this request's Idempotency-Key
/// (a retry of it, to be answered as the first was).
pub async fn removal_was_this_request(
    log: &EventLog,
    ctx: &Context,
    channel_id: Uuid,
) -> Result<bool, CommandError> {
    let removed = Event::NotificationChannelRemoved(NotificationChannelRemoved { channel_id });
    let fact = ChannelFact::new(channel_id, "removed", removed);
    let Some(key) = super::idempotency::Key::new(ctx, ChannelFact::NAME, &fact) else {
        return Ok(false);
    };
    Ok(key.recall::<i64>(log.pool()).await?.is_some())
}

#[derive(Serialize)]
struct ChannelFact {
    event_id: Uuid,
    #[serde(skip)]
    event: Event,
}

impl ChannelFact {
    fn new(channel_id: Uuid, what: &str, event: Event) -> ChannelFact {
        ChannelFact {
            event_id: Uuid::new_v5(&channel_id, what.as_bytes()),
            event,
        }
    }
}

impl Decide for ChannelFact {
    type Output = i64;
    const NAME: &'static str = "notification_channel";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<i64, CommandError> {
        if let Some(recorded) = txn.event(self.event_id).await? {
            return Ok(recorded.seq);
        }
        let version = txn
            .account()
            .await?
            .ok_or_else(|| {
                CommandError::Conflict(format!(
                    "user {} has no account yet: create it (switchboard users create) before \
                     adding notification channels",
                    ctx.tenant_id
                ))
            })?
            .version;
        let new = NewEvent {
            event_id: self.event_id,
            event: self.event.clone(),
        };
        let appended = txn
            .append_account(
                ExpectedVersion::Exact(version),
                vec![new],
                &ctx.metadata(Actor::User),
            )
            .await?;
        Ok(appended.last().map_or(0, |e| e.seq))
    }
}
