//! `switchboard bench <what>`: measure the real code paths against the embedded cluster (in a
//! scratch `switchboard_bench` database) or the database `DATABASE_URL` names.

use std::process::ExitCode;

use clap::Subcommand;

use super::Outcome;
use crate::bench::{self, BenchDb};
use crate::config::DatabaseArgs;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Append throughput and latency, beside pgbench's raw INSERT ceiling.
    Append(bench::append::AppendArgs),
    /// Agent messages per second through the HTTP server, beside pgbench's raw INSERT ceiling.
    Rest(bench::rest::RestArgs),
    /// Reply → waiting agent latency, throughput and idle cost of parked long-polls.
    Push(bench::push::PushArgs),
    /// Question → webhook latency, deliveries per second with 100 channels, and an approval
    /// answered from its push → the agent woken.
    Notify(bench::notify::NotifyArgs),
    /// An omnara database of 1M messages imported: messages per second and peak memory.
    Import(bench::import::ImportArgs),
    /// Replay, verify, export and projection rebuild over a generated log (1M events).
    Audit(bench::audit::AuditArgs),
    /// A question's commit → its row in an inbox open in Chromium; the inbox's first load.
    Inbox(bench::inbox::InboxArgs),
    /// Claude Code hook event → on an open session page; the person's instruction → the
    /// model's next request, through the real Claude Code CLI.
    Hooks(bench::hooks::HooksArgs),
}

pub async fn run(db_args: &DatabaseArgs, command: BenchCommand) -> Outcome {
    match command {
        BenchCommand::Append(args) => {
            let db = BenchDb::open(
                db_args.database_url.as_deref(),
                &db_args.data_dir,
                args.writers + 4,
            )
            .await?;
            let report = bench::append::run(&db, &args).await;
            db.close().await;
            bench::append::print(&args, &report);
        }
        BenchCommand::Rest(args) => {
            let db = BenchDb::open(db_args.database_url.as_deref(), &db_args.data_dir, 48).await?;
            let report = bench::rest::run(&db, &args).await;
            db.close().await;
            bench::rest::print(&args, &report?);
        }
        BenchCommand::Push(args) => {
            let db = BenchDb::open(db_args.database_url.as_deref(), &db_args.data_dir, 8).await?;
            let outcome = bench::push::run(&db, &args).await;
            db.close().await;
            outcome?;
        }
        BenchCommand::Inbox(args) => {
            let db = BenchDb::open(db_args.database_url.as_deref(), &db_args.data_dir, 8).await?;
            let outcome = bench::inbox::run(&db, &db_args.data_dir, &args).await;
            db.close().await;
            outcome?;
        }
        BenchCommand::Hooks(args) => {
            let db = BenchDb::open(db_args.database_url.as_deref(), &db_args.data_dir, 8).await?;
            let outcome = bench::hooks::run(&db, &db_args.data_dir, &args).await;
            db.close().await;
            outcome?;
        }
        BenchCommand::Notify(args) => {
            let db = BenchDb::open(db_args.database_url.as_deref(), &db_args.data_dir, 4).await?;
            let outcome = bench::notify::run(&db, &args).await;
            db.close().await;
            outcome?;
        }
        BenchCommand::Import(args) => {
            let db = BenchDb::open(db_args.database_url.as_deref(), &db_args.data_dir, 4).await?;
            let source = match (&args.source_url, db.database.cluster()) {
                (Some(url), _) => Ok(url.clone()),
                (None, Some(cluster)) => {
                    let admin = crate::database::embedded_options(cluster, "postgres");
                    let pool = crate::database::pool(admin.clone(), 1).await?;
                    sqlx::query("DROP DATABASE IF EXISTS switchboard_bench_omnara WITH (FORCE)")
                        .execute(&pool)
                        .await?;
                    sqlx::query("CREATE DATABASE switchboard_bench_omnara TEMPLATE template0")
                        .execute(&pool)
                        .await?;
                    pool.close().await;
                    Ok(cluster.url("switchboard_bench_omnara"))
                }
                (None, None) => Err("with DATABASE_URL, give --source-url: an empty database \
                                     the benchmark fills as the omnara source"),
            };
            let outcome = match source {
                Ok(url) => bench::import::run(&db, &url, &args).await,
                Err(e) => Err(e.into()),
            };
            db.close().await;
            outcome?;
        }
        BenchCommand::Audit(args) => {
            let db = BenchDb::open(db_args.database_url.as_deref(), &db_args.data_dir, 4).await?;
            let outcome = bench::audit::run(&db, &db_args.data_dir, &args).await;
            db.close().await;
            outcome?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
