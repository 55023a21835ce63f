//! People's accounts: a user (tenant) is created with a name, and may be renamed. Both are
//! events on the tenant's account stream (stream id = tenant id), so export and replay keep
//! them like everything else.

use projections::{Account, Actor, Event, UserCreated, UserRenamed};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CommandError, Context, Decide, transact};
use crate::domain::{Email, UserName};
use crate::eventlog::{EventLog, ExpectedVersion, NewEvent, TenantTxn};

/// A user as the operator sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
}

impl From<&Account> for User {
    fn from(a: &Account) -> User {
        User {
            id: a.tenant_id,
            name: a.name.clone(),
            email: a.email.clone(),
        }
    }
}

/// Create the user `ctx.tenant_id` names. A user that exists already is refused.
pub async fn create_user(
    log: &EventLog,
    ctx: &Context,
    name: UserName,
    email: Option<Email>,
) -> Result<User, CommandError> {
    transact(log, ctx, &CreateUser { name, email }).await
}

/// Rename the user `ctx.tenant_id` names (and change the e-mail address when given).
pub async fn rename_user(
    log: &EventLog,
    ctx: &Context,
    name: UserName,
    email: Option<Email>,
) -> Result<User, CommandError> {
    transact(log, ctx, &RenameUser { name, email }).await
}

#[derive(Serialize)]
struct CreateUser {
    name: UserName,
    email: Option<Email>,
}

impl Decide for CreateUser {
    type Output = User;
    const NAME: &'static str = "create_user";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<User, CommandError> {
        if txn.account().await?.is_some() {
            return Err(CommandError::Conflict(format!(
                "user {} already exists",
                ctx.tenant_id
            )));
        }
        let event = Event::UserCreated(UserCreated {
            name: self.name.as_str().to_owned(),
            email: self.email.as_ref().map(|e| e.as_str().to_owned()),
        });
        appended(ctx, txn, ExpectedVersion::NoStream, event).await
    }
}

#[derive(Serialize)]
struct RenameUser {
    name: UserName,
    email: Option<Email>,
}

impl Decide for RenameUser {
    type Output = User;
    const NAME: &'static str = "rename_user";

    async fn decide(&self, ctx: &Context, txn: &mut TenantTxn) -> Result<User, CommandError> {
        let version = txn
            .account()
            .await?
            .ok_or_else(|| CommandError::NotFound(format!("user {} not found", ctx.tenant_id)))?
            .version;
        let event = Event::UserRenamed(UserRenamed {
            name: self.name.as_str().to_owned(),
            email: self.email.as_ref().map(|e| e.as_str().to_owned()),
        });
        appended(ctx, txn, ExpectedVersion::Exact(version), event).await
    }
}

async fn appended(
    ctx: &Context,
    txn: &mut TenantTxn,
    expected: ExpectedVersion,
    event: Event,
) -> Result<User, CommandError> {
    let new = NewEvent {
        event_id: ctx.event_id(0),
        event,
    };
    txn.append_account(expected, vec![new], &ctx.metadata(Actor::System))
        .await?;
    let account = txn.account().await?.expect("just appended");
    Ok(User::from(account))
}
