//! A notification channel came or went: a fact about the user's account, appended to its
//! account stream, so audits and exports show who added which channel when. The channel's
//! target and secret are not part of it (the notifier keeps them, see `crate::notify`).
//!
//! Each fact has an id derived from the channel, so recording it again (a retry after a crash
//! between the notifier's write and this append) finds the first record and appends nothing.

use projections::{Event, NotificationChannelAdded, NotificationChannelRemoved};
use uuid::Uuid;

use super::account_fact::AccountFact;
use super::{CommandError, Context, Decide, transact};
use crate::eventlog::EventLog;

/// What a person must have before a channel is recorded (for the refusal).
const NOUN: &str = "adding notification channels";

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
    transact(
        log,
        ctx,
        &AccountFact::new(channel_id, "added", event, NOUN),
    )
    .await
}

/// Record that `channel_id` was removed; its sequence number.
pub async fn record_channel_removed(
    log: &EventLog,
    ctx: &Context,
    channel_id: Uuid,
) -> Result<i64, CommandError> {
    let event = Event::NotificationChannelRemoved(NotificationChannelRemoved { channel_id });
    transact(
        log,
        ctx,
        &AccountFact::new(channel_id, "removed", event, NOUN),
    )
    .await
}

/// Whether the removal of `channel_id` was recorded under this request's Idempotency-Key
/// (a retry of it, to be answered as the first was).
pub async fn removal_was_this_request(
    log: &EventLog,
    ctx: &Context,
    channel_id: Uuid,
) -> Result<bool, CommandError> {
    let removed = Event::NotificationChannelRemoved(NotificationChannelRemoved { channel_id });
    let fact = AccountFact::new(channel_id, "removed", removed, NOUN);
    let Some(key) = super::idempotency::Key::new(ctx, AccountFact::NAME, &fact) else {
        return Ok(false);
    };
    Ok(key.recall::<i64>(log.pool()).await?.is_some())
}
