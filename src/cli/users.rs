//! `switchboard users create|rename|list`: the people (tenants) API keys act for.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Outcome;
use crate::commands::{self, Context};
use crate::config::DatabaseArgs;
use crate::domain::{Email, UserName};
use crate::eventlog::EventLog;
use crate::wire::timestamp;

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Create a user; prints its id (pass it to `keys create --user`).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Use this id instead of a new one.
        #[arg(long)]
        id: Option<Uuid>,
    },
    /// Change a user's name (and e-mail address).
    Rename {
        id: Uuid,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// List users with their key counts and last activity.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Users and tenants that have keys but no user record (made before users existed). Each part
/// is its own step (on Citus a step runs on every node for its tenants, and only the joined
/// results meet on the coordinator); the last event is one index probe per tenant.
const LIST: &str = "\
WITH tenants AS MATERIALIZED (
    SELECT t.tenant_id,
           (SELECT recorded_at FROM events e WHERE e.tenant_id = t.tenant_id
            ORDER BY seq DESC LIMIT 1) AS last_event_at
    FROM (SELECT tenant_id FROM users UNION SELECT tenant_id FROM api_keys) t
), keys AS MATERIALIZED (
    SELECT tenant_id,
           count(*) FILTER (WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))
               AS active,
           count(*) AS total, max(last_used_at) AS last_used
    FROM api_keys GROUP BY tenant_id
), named AS MATERIALIZED (
    SELECT tenant_id, name, email, created_at FROM users
)
SELECT t.tenant_id, u.name, u.email, u.created_at,
       coalesce(k.active, 0), coalesce(k.total, 0), greatest(k.last_used, t.last_event_at)
FROM tenants t
LEFT JOIN named u ON u.tenant_id = t.tenant_id
LEFT JOIN keys k ON k.tenant_id = t.tenant_id
ORDER BY u.created_at NULLS LAST, t.tenant_id";

type Row = (
    Uuid,
    Option<String>,
    Option<String>,
    Option<OffsetDateTime>,
    i64,
    i64,
    Option<OffsetDateTime>,
);

#[derive(Serialize)]
struct Listed {
    id: Uuid,
    name: Option<String>,
    email: Option<String>,
    created_at: Option<String>,
    active_keys: i64,
    keys: i64,
    last_activity_at: Option<String>,
}

pub async fn run(db_args: &DatabaseArgs, command: UsersCommand) -> Outcome {
    let db = db_args.open(2).await?;
    let result = execute(&db, command).await;
    db.close().await;
    result
}

async fn execute(db: &crate::database::Database, command: UsersCommand) -> Outcome {
    let log = EventLog::new(db.pool.clone());
    match command {
        UsersCommand::Create { name, email, id } => {
            let ctx = Context::system(id.unwrap_or_else(Uuid::new_v4));
            let name = UserName::parse("--name", &name)?;
            let email = email.map(|e| Email::parse("--email", &e)).transpose()?;
            let user = commands::create_user(&log, &ctx, name, email).await?;
            eprintln!("Created user {:?}.", user.name);
            println!("{}", user.id);
        }
        UsersCommand::Rename { id, name, email } => {
            let name = UserName::parse("--name", &name)?;
            let email = email.map(|e| Email::parse("--email", &e)).transpose()?;
            let user = commands::rename_user(&log, &Context::system(id), name, email).await?;
            println!("User {} is now {:?}.", user.id, user.name);
        }
        UsersCommand::List { json } => {
            let rows: Vec<Row> = sqlx::query_as(LIST).fetch_all(&db.pool).await?;
            let users: Vec<Listed> = rows
                .into_iter()
                .map(|(id, name, email, created, active, total, last)| Listed {
                    id,
                    name,
                    email,
                    created_at: created.map(timestamp),
                    active_keys: active,
                    keys: total,
                    last_activity_at: last.map(timestamp),
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                println!(
                    "{:<36}  {:<24}  {:>4}  {:<20}",
                    "ID", "NAME", "KEYS", "LAST ACTIVITY"
                );
                for u in &users {
                    println!(
                        "{:<36}  {:<24}  {:>4}  {:<20}",
                        u.id,
                        u.name.as_deref().unwrap_or("(no user record)"),
                        format!("{}/{}", u.active_keys, u.keys),
                        u.last_activity_at.as_deref().unwrap_or("never")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Does `id` name a user (or a tenant that has keys from before users were recorded)?
pub async fn exists(db: &crate::database::Database, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1)
             OR EXISTS (SELECT 1 FROM api_keys WHERE tenant_id = $1)",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
}
