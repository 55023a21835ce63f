//! The `users` read model: one row per tenant whose account stream has started (the stream
//! whose id is the tenant id). [`apply`] is the only place an account event changes it; the
//! append path and `projections rebuild` both call it.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::{Event, RecordedEvent};
use crate::session::ProjectionError;

/// A row of the `users` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The tenant: the user id API keys name in their `sub`.
    pub tenant_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub created_at: OffsetDateTime,
    /// Version of the account stream: the number of events in it.
    pub version: i32,
    /// The tenant sequence number of the account's latest event.
    pub last_seq: i64,
}

/// Is `stream_id` the tenant's account stream (rather than a session)?
pub fn is_account_stream(tenant_id: Uuid, stream_id: Uuid) -> bool {
    tenant_id == stream_id
}

/// Fold one account event into the account. `state` is `None` before the first event.
pub fn apply(state: Option<Account>, recorded: &RecordedEvent) -> Result<Account, ProjectionError> {
    let fail = |reason: &str| ProjectionError {
        seq: recorded.seq,
        reason: reason.to_owned(),
    };
    if !is_account_stream(recorded.tenant_id, recorded.stream_id) {
        return Err(fail("an account event outside the account stream"));
    }
    let mut account = match (state, &recorded.event) {
        (None, Event::UserCreated(created)) => {
            return Ok(Account {
                tenant_id: recorded.tenant_id,
                name: created.name.clone(),
                email: created.email.clone(),
                created_at: recorded.recorded_at,
                version: recorded.stream_version,
                last_seq: recorded.seq,
            });
        }
        (None, _) => return Err(fail("the account has not been created")),
        (Some(_), Event::UserCreated(_)) => return Err(fail("the account was created twice")),
        (Some(account), _) => account,
    };
    if recorded.stream_version != account.version + 1 {
        return Err(fail("stream version does not follow the previous one"));
    }
    match &recorded.event {
        Event::UserRenamed(renamed) => {
            account.name = renamed.name.clone();
            if renamed.email.is_some() {
                account.email = renamed.email.clone();
            }
        }
        // Channels themselves (targets, secrets) live outside the log; the account only
        // records that they came and went.
        Event::NotificationChannelAdded(_)
        | Event::NotificationChannelRemoved(_)
        | Event::NotificationPolicyChanged(_)
        | Event::AppConnected(_)
        | Event::AppDisconnected(_) => {}
        _ => return Err(fail("a session event on the account stream")),
    }
    account.version = recorded.stream_version;
    account.last_seq = recorded.seq;
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{UserCreated, UserRenamed};

    fn recorded(tenant: Uuid, stream: Uuid, version: i32, event: Event) -> RecordedEvent {
        RecordedEvent {
            tenant_id: tenant,
            seq: i64::from(version),
            stream_id: stream,
            stream_version: version,
            event_id: Uuid::new_v4(),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
            event,
        }
    }

    #[test]
    fn accounts_are_created_then_renamed_on_their_own_stream() {
        let tenant = Uuid::new_v4();
        let created = Event::UserCreated(UserCreated {
            name: "Ada".into(),
            email: Some("ada@example.com".into()),
        });
        let account = apply(None, &recorded(tenant, tenant, 1, created.clone())).unwrap();
        assert_eq!(account.name, "Ada");
        let renamed = Event::UserRenamed(UserRenamed {
            name: "Ada L.".into(),
            email: None,
        });
        let account = apply(Some(account), &recorded(tenant, tenant, 2, renamed)).unwrap();
        assert_eq!(account.name, "Ada L.");
        assert_eq!(account.email.as_deref(), Some("ada@example.com"));
        assert_eq!(account.version, 2);
        let added = Event::NotificationChannelAdded(crate::NotificationChannelAdded {
            channel_id: Uuid::nil(),
            kind: "email".into(),
            description: "email to …@example.com".into(),
        });
        let account = apply(Some(account), &recorded(tenant, tenant, 3, added.clone())).unwrap();
        assert_eq!((account.version, account.name.as_str()), (3, "Ada L."));
        assert!(apply(None, &recorded(tenant, tenant, 1, added)).is_err());
        assert!(apply(None, &recorded(tenant, Uuid::new_v4(), 1, created.clone())).is_err());
        assert!(apply(Some(account), &recorded(tenant, tenant, 4, created)).is_err());
    }
}
