//! The person changes their notification policy: the change is applied to the policy in force
//! (see `crate::notify::policy`) and the whole result appended to the account stream as
//! `notification_policy_changed`, which is where the policy in force is read from. So the log
//! records every change (who, when, what) and an export carries it.

use projections::{Actor, Event, NotificationPolicyChanged};
use serde::Serialize;

use super::account_fact::account_version;
use super::{CommandError, Context, Decide, transact};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};
use crate::notify::policy::{self, Policy, PolicyChange};

/// Apply `change` to the caller's policy; the policy now in force.
pub async fn change_notification_policy(
    log: &EventLog,
    ctx: &Context,
    change: &PolicyChange,
) -> Result<Policy, CommandError> {
    transact(log, ctx, &ChangePolicy { change }).await
}

#[derive(Serialize)]
struct ChangePolicy<'a> {
    change: &'a PolicyChange,
}

impl Decide for ChangePolicy<'_> {
    type Output = Policy;
    const NAME: &'static str = "notification_policy";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<Policy, CommandError> {
        let version = account_version(ctx, txn, "setting how to notify them").await?;
        // Read at the account version just read: a change committed since fails the append
        // below as stale, and the change is decided again on the newer policy.
        let mut conn = txn
            .pool()
            .acquire()
            .await
            .map_err(crate::notify::channels::database)?;
        let current = policy::get(&mut conn, ctx.tenant_id)
            .await
            .map_err(crate::notify::channels::database)?;
        drop(conn);
        let changed = self.change.apply(current.clone())?;
        if changed == current {
            return Ok(current);
        }
        let serde_json::Value::Object(policy) =
            serde_json::to_value(&changed).map_err(|e| CommandError::Internal(e.to_string()))?
        else {
            return Err(CommandError::Internal("a policy is an object".into()));
        };
        let new = NewEvent {
            event_id: ctx.event_id(0),
            event: Event::NotificationPolicyChanged(NotificationPolicyChanged { policy }),
        };
        txn.append_account(
            ExpectedVersion::Exact(version),
            vec![new],
            &ctx.metadata(Actor::User),
        )
        .await?;
        Ok(changed)
    }
}
