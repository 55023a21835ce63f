//! `switchboard import omnara --from <postgres url> [--dry-run] [--user <uuid>]... [--create-keys]`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use uuid::Uuid;

use super::Outcome;
use crate::auth::api_keys;
use crate::commands::Scope;
use crate::config::{DatabaseArgs, KeyArgs};
use crate::eventlog::EventLog;
use crate::import::omnara;

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// An omnara database (either schema: 2025-08 or the 2025-12 legacy release): users,
    /// sessions, messages and read cursors, appended per user in their original order.
    Omnara(OmnaraArgs),
}

#[derive(Args, Debug)]
pub struct OmnaraArgs {
    /// The omnara PostgreSQL database, e.g. postgres://user@host/omnara (read only).
    #[arg(long)]
    from: String,
    /// Read and check every row and count what would be appended; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import only this user (repeatable); all users by default.
    #[arg(long = "user")]
    users: Vec<Uuid>,
    /// Create a Switchboard API key per omnara key still active (printed once), instead of
    /// printing the commands that would.
    #[arg(long)]
    create_keys: bool,
    #[command(flatten)]
    keys: KeyArgs,
}

pub async fn run(db_args: &DatabaseArgs, command: ImportCommand) -> Outcome {
    let ImportCommand::Omnara(args) = command;
    let from = omnara::connect(&args.from).await?;
    let db = db_args.open(4).await?;
    let log = EventLog::new(db.pool.clone());
    let options = omnara::Options {
        dry_run: args.dry_run,
        users: args.users,
        progress: true,
    };
    let imported = omnara::import(&log, &from, &options).await;
    from.close().await;
    let report = match imported {
        Ok(report) => report,
        Err(e) => {
            db.close().await;
            return Err(e.into());
        }
    };
    print!("{}", omnara::summary(&report, args.dry_run));
    if args.create_keys && !args.dry_run {
        let (signing, _) = db_args.signing_keys(&args.keys)?;
        println!("\nNew API keys (shown once; give each to the agent that used the omnara key):");
        for user in &report.users {
            // A key made by an earlier run (same user, same name, not revoked) is not made again.
            let existing = api_keys::list(&db.pool, user.user_id).await?;
            for name in &user.api_keys {
                if existing
                    .iter()
                    .any(|k| &k.name == name && k.revoked_at.is_none())
                {
                    println!(
                        "  {} {name:?}: made by an earlier import (keys list)",
                        user.email
                    );
                    continue;
                }
                let (key, token) =
                    api_keys::create(&db.pool, &signing, user.user_id, name, Scope::Agent, None)
                        .await?;
                println!("  {} {:?} ({}): {token}", user.email, key.name, key.id);
            }
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}
