//! `switchboard export` and `switchboard replay`: the log out as NDJSON, and back in.

use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use uuid::Uuid;

use super::Outcome;
use crate::config::DatabaseArgs;
use crate::eventlog::{export, replay};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Export only this user's (tenant's) log, in sequence order.
    #[arg(long)]
    user: Option<Uuid>,
    /// With --user: start after this sequence number. Without: after this transaction id
    /// (a previous export prints the value that continues it), so exports can be chained.
    #[arg(long, default_value_t = 0)]
    after: i64,
}

pub async fn export(db_args: &DatabaseArgs, args: ExportArgs) -> Outcome {
    let db = db_args.open(2).await?;
    let started = Instant::now();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let exported = match args.user {
        Some(user) => export::export_tenant(&db.pool, user, args.after, &mut out)
            .await
            .map(|events| (events, None)),
        None => export::export_all(&db.pool, args.after, &mut out)
            .await
            .map(|e| (e.events, Some(e.next_after))),
    };
    db.close().await;
    let (written, next_after) = exported?;
    out.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "exported {written} events in {seconds:.2}s ({:.0} events/s)",
        written as f64 / seconds.max(1e-9)
    );
    if let Some(next) = next_after {
        eprintln!("continue with: switchboard export --after {next}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// An NDJSON export (`switchboard export`); `-` reads standard input.
    #[arg(long)]
    from: PathBuf,
}

pub async fn replay(db_args: &DatabaseArgs, args: ReplayArgs) -> Outcome {
    let db = db_args.open(2).await?;
    let started = Instant::now();
    let replayed = if args.from.as_os_str() == "-" {
        replay::replay(&db.pool, std::io::stdin().lock()).await
    } else {
        let file = std::fs::File::open(&args.from)
            .map_err(|e| format!("cannot open {}: {e}", args.from.display()))?;
        replay::replay(&db.pool, BufReader::with_capacity(1 << 16, file)).await
    };
    db.close().await;
    let replayed = replayed?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "replayed {} events of {} tenants ({} streams) in {seconds:.2}s ({:.0} events/s); \
         the chain verifies",
        replayed.events,
        replayed.chain.tenants.len(),
        replayed.streams,
        replayed.events as f64 / seconds.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
