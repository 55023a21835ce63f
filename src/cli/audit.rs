//! `switchboard export` and `switchboard replay`: the log out as NDJSON, and back in.
//!
//! Exports chain, and each kind of export has its own way to continue, so that a number
//! meant for one is never taken for the other: one user's export continues after a sequence
//! number of that user's log (`--user U --after-seq N`), an export of all users continues from
//! the opaque cursor the previous one printed (`--cursor C`; inside, a transaction horizon).

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
    /// With --user: start after this sequence number of the user's log.
    #[arg(long, value_name = "SEQ", value_parser = clap::value_parser!(i64).range(0..))]
    after_seq: Option<i64>,
    /// Without --user: continue an export of all users where it stopped (the cursor it
    /// printed on standard error).
    #[arg(long)]
    cursor: Option<String>,
    /// Replaced by --after-seq and --cursor (it meant one or the other depending on --user).
    #[arg(long, hide = true, allow_hyphen_values = true)]
    after: Option<String>,
}

/// Which export, from where: the flags checked against each other.
enum Export {
    Tenant { user: Uuid, after_seq: i64 },
    All { after: Cursor },
}

impl ExportArgs {
    fn export(&self) -> Result<Export, String> {
        if self.after.is_some() {
            return Err(
                "--after is gone: continue one user's export with --user <uuid> \
                        --after-seq <seq>, and an export of all users with the --cursor it \
                        printed"
                    .into(),
            );
        }
        match (self.user, self.after_seq, &self.cursor) {
            (Some(_), _, Some(_)) => Err("--cursor continues an export of all users; with \
                                          --user, continue after a sequence number: \
                                          --after-seq <seq>"
                .into()),
            (None, Some(_), _) => Err("--after-seq is a sequence number of one user's log: \
                                       add --user <uuid>, or continue an export of all users \
                                       with the --cursor it printed"
                .into()),
            (Some(user), after_seq, None) => Ok(Export::Tenant {
                user,
                after_seq: after_seq.unwrap_or(0),
            }),
            (None, None, cursor) => Ok(Export::All {
                after: cursor.as_deref().map_or(Ok(Cursor(0)), Cursor::parse)?,
            }),
        }
    }
}

/// Where an export of all users stopped, as printed for the next one: opaque to the people
/// who pass it on (a versioned encoding of the transaction horizon), so it cannot be mistaken
/// for a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor(i64);

impl Cursor {
    const PREFIX: &str = "c1-";

    fn parse(text: &str) -> Result<Cursor, String> {
        text.trim()
            .strip_prefix(Self::PREFIX)
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .filter(|txid| *txid >= 0)
            .map(Cursor)
            .ok_or_else(|| {
                format!(
                    "--cursor {text:?} is not a cursor printed by `switchboard export` \
                     (they look like {})",
                    Cursor(73112)
                )
            })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:x}", Self::PREFIX, self.0)
    }
}

pub async fn export(db_args: &DatabaseArgs, args: ExportArgs) -> Outcome {
    let export = args.export()?;
    let db = db_args.open(2).await?;
    let started = Instant::now();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let exported = match export {
        Export::Tenant { user, after_seq } => {
            export::export_tenant(&db.pool, user, after_seq, &mut out)
                .await
                .map(|events| {
                    // The sequence is gap-free: the export ends `events` after where it began.
                    let next = after_seq + events as i64;
                    (events, format!("--user {user} --after-seq {next}"))
                })
        }
        Export::All { after } => export::export_all(&db.pool, after.0, &mut out)
            .await
            .map(|e| (e.events, format!("--cursor {}", Cursor(e.next_after)))),
    };
    db.close().await;
    let (written, next) = exported?;
    out.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "exported {written} events in {seconds:.2}s ({:.0} events/s)",
        written as f64 / seconds.max(1e-9)
    );
    eprintln!("continue with: switchboard export {next}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursors_round_trip_and_numbers_are_not_cursors() {
        for txid in [0, 1, 73112, i64::MAX] {
            let cursor = Cursor(txid);
            assert_eq!(Cursor::parse(&cursor.to_string()), Ok(cursor));
        }
        for bad in [
            "73112",
            "",
            "c1-",
            "c1-xyz",
            "c2-10",
            "c1--5",
            "c1-8000000000000000",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }
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
