//! `switchboard keys create|list|revoke`.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use uuid::Uuid;

use super::Outcome;
use crate::auth::api_keys::{self, ApiKey};
use crate::commands::Scope;
use crate::config::{DatabaseArgs, KeyArgs};
use crate::wire::timestamp;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; the token is printed alone on the last line.
    Create {
        /// The user (tenant) the key acts for.
        #[arg(long)]
        user: Uuid,
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = ScopeArg::Agent)]
        scope: ScopeArg,
        /// Expire after this many days (default: never).
        #[arg(long)]
        expires_days: Option<u32>,
        /// Create the user first if it does not exist (named after the key).
        #[arg(long)]
        create_user: bool,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// List a user's keys.
    List {
        #[arg(long)]
        user: Uuid,
    },
    /// Revoke a key; every server stops accepting it at once.
    Revoke { key_id: Uuid },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScopeArg {
    /// Everything an agent and its person do.
    Agent,
    /// Read the event log only.
    Audit,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Agent => Scope::Agent,
            ScopeArg::Audit => Scope::Audit,
        }
    }
}

pub async fn run(db_args: &DatabaseArgs, command: KeysCommand) -> Outcome {
    let db = db_args.open(2).await?;
    let result = match command {
        KeysCommand::Create {
            user,
            name,
            scope,
            expires_days,
            create_user,
            keys,
        } => {
            if !super::users::exists(&db, user).await? {
                if !create_user {
                    db.close().await;
                    return Err(format!(
                        "no user {user}: create one with `switchboard users create --name <name>` \
                         (it prints the id), or pass --create-user"
                    )
                    .into());
                }
                let log = crate::eventlog::EventLog::new(db.pool.clone());
                let user_name = crate::domain::UserName::parse("--name", &name)?;
                crate::commands::create_user(
                    &log,
                    &crate::commands::Context::system(user),
                    user_name,
                    None,
                )
                .await?;
            }
            let (signing, _) = db_args.signing_keys(&keys)?;
            let created =
                api_keys::create(&db.pool, &signing, user, &name, scope.into(), expires_days).await;
            created.map(|(key, token)| {
                println!(
                    "Created API key {} ({:?}) for user {}: scope {}, expires {}.",
                    key.id,
                    key.name,
                    key.tenant_id,
                    key.scope,
                    key.expires_at.map_or("never".into(), timestamp)
                );
                println!("{token}");
            })
        }
        KeysCommand::List { user } => api_keys::list(&db.pool, user)
            .await
            .map(|keys| print_table(&keys)),
        KeysCommand::Revoke { key_id } => {
            let log = crate::eventlog::EventLog::new(db.pool.clone());
            let revoked = crate::commands::connected_apps::disconnect(
                &log,
                &crate::commands::Context::system(uuid::Uuid::nil()),
                key_id,
                "disconnected by the operator (keys revoke)",
            )
            .await;
            match revoked {
                Ok(key) => {
                    let what = if key.is_app() {
                        "connected app"
                    } else {
                        "API key"
                    };
                    println!(
                        "Revoked {what} {} ({:?}) of user {}.",
                        key.id, key.name, key.tenant_id
                    );
                    Ok(())
                }
                Err(crate::commands::CommandError::NotFound(_)) => {
                    Err(api_keys::KeyStoreError::NotFound(key_id))
                }
                Err(e) => Err(api_keys::KeyStoreError::Invalid(e.to_string())),
            }
        }
    };
    db.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

fn print_table(keys: &[ApiKey]) {
    let when = |t: Option<time::OffsetDateTime>| t.map_or_else(|| "-".to_owned(), timestamp);
    println!(
        "{:<36}  {:<6}  {:<27}  {:<27}  {:<27}  {:<27}  NAME",
        "KEY ID", "SCOPE", "CREATED", "EXPIRES", "REVOKED", "LAST USED"
    );
    for key in keys {
        println!(
            "{:<36}  {:<6}  {:<27}  {:<27}  {:<27}  {:<27}  {}",
            key.id,
            key.scope,
            timestamp(key.created_at),
            when(key.expires_at),
            when(key.revoked_at),
            when(key.last_used_at),
            match &key.app_client_id {
                Some(client) => format!("{} (connected app: {client})", key.name),
                None => key.name.clone(),
            }
        );
    }
}
