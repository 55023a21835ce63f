//! A fact about an account that something outside the log already made true (a notification
//! channel added, an app connected): appended to the account stream under an id derived from
//! the thing it is about, so recording it again (a retry after a crash between the outside
//! write and this append) finds the first record and appends nothing.

use projections::{Actor, Event};
use serde::Serialize;
use uuid::Uuid;

use super::{CommandError, Context, Decide};
use crate::eventlog::{ExpectedVersion, NewEvent, TenantTxn};

#[derive(Serialize)]
pub(super) struct AccountFact {
    event_id: Uuid,
    #[serde(skip)]
    event: Event,
    /// What the account must exist for, in the refusal ("adding notification channels").
    #[serde(skip)]
    needs_account_for: &'static str,
}

impl AccountFact {
    /// The fact `what` (e.g. "added") about `subject`.
    pub(super) fn new(
        subject: Uuid,
        what: &str,
        event: Event,
        needs_account_for: &'static str,
    ) -> AccountFact {
        AccountFact {
            event_id: Uuid::new_v5(&subject, what.as_bytes()),
            event,
            needs_account_for,
        }
    }
}

/// The version of the caller's account stream, or why there is none yet (`needed_for`: what
/// the account must exist for, "adding notification channels").
pub(super) async fn account_version(
    ctx: &Context,
    txn: &mut TenantTxn,
    needed_for: &str,
) -> Result<i32, CommandError> {
    Ok(txn
        .account()
        .await?
        .ok_or_else(|| {
            CommandError::Conflict(format!(
                "user {} has no account yet: create it (switchboard users create) before \
                 {needed_for}",
                ctx.tenant_id
            ))
        })?
        .version)
}

impl Decide for AccountFact {
    /// The fact's sequence number.
    type Output = i64;
    /// The name retried requests were first recorded under (channel facts came first).
    const NAME: &'static str = "notification_channel";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<i64, CommandError> {
        if let Some(recorded) = txn.event(self.event_id).await? {
            return Ok(recorded.seq);
        }
        let version = account_version(ctx, txn, self.needs_account_for).await?;
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
