//! `switchboard export` and `switchboard replay`: the log out as NDJSON, and back in.
//!
//! Exports chain, and each kind of export has its own way to continue, so that a number
//! meant for one is never taken for the other: one user's export continues after a sequence
//! number of that user's log (`--user U --after-seq N`), an export of all users continues from
//! the opaque cursor the previous one printed (`--cursor C`; inside, a transaction horizon).

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use uuid::Uuid;

use super::Outcome;
use crate::config::DatabaseArgs;
use crate::eventlog::export::{self, Position};
use crate::eventlog::replay;

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
                after: cursor
                    .as_deref()
                    .map_or(Ok(Cursor(Position::START)), Cursor::parse)?,
            }),
        }
    }
}

/// Where an export of all users stopped, as printed for the next one: opaque to the people
/// who pass it on (a versioned encoding), so it cannot be mistaken for a sequence number.
/// `c1-<hex>`: a transaction horizon (plain PostgreSQL); `c2-<tenant><hex seq>.…`: each
/// tenant's head (Citus, see `eventlog::export`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cursor(Position);

impl Cursor {
    const HORIZON: &str = "c1-";
    const HEADS: &str = "c2-";

    fn parse(text: &str) -> Result<Cursor, String> {
        let text = text.trim();
        let position = if let Some(hex) = text.strip_prefix(Self::HORIZON) {
            i64::from_str_radix(hex, 16)
                .ok()
                .filter(|txid| *txid >= 0)
                .map(Position::Horizon)
        } else if let Some(heads) = text.strip_prefix(Self::HEADS) {
            parse_heads(heads).map(Position::Heads)
        } else {
            None
        };
        position.map(Cursor).ok_or_else(|| {
            format!(
                "--cursor {text:?} is not a cursor printed by `switchboard export` \
                 (they look like {})",
                Cursor(Position::Horizon(73112))
            )
        })
    }
}

/// `<tenant as 32 hex digits><seq in hex>` entries joined by dots (none: nothing yet).
fn parse_heads(text: &str) -> Option<BTreeMap<Uuid, i64>> {
    if text.is_empty() {
        return Some(BTreeMap::new());
    }
    text.split('.')
        .map(|entry| {
            let tenant = Uuid::try_parse(entry.get(..32)?).ok()?;
            let seq = i64::from_str_radix(entry.get(32..)?, 16)
                .ok()
                .filter(|seq| *seq >= 0)?;
            Some((tenant, seq))
        })
        .collect()
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Position::Horizon(txid) => write!(f, "{}{txid:x}", Self::HORIZON),
            Position::Heads(heads) => {
                f.write_str(Self::HEADS)?;
                for (i, (tenant, seq)) in heads.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write!(f, "{}{seq:x}", tenant.simple())?;
                }
                Ok(())
            }
        }
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
        Export::All { after } => export::export_all(&db.pool, &after.0, &mut out)
            .await
            .map(|e| (e.events, format!("--cursor {}", Cursor(e.next)))),
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
    use super::{Cursor, Position};

    #[test]
    fn cursors_round_trip_and_numbers_are_not_cursors() {
        for txid in [0, 1, 73112, i64::MAX] {
            let cursor = Cursor(Position::Horizon(txid));
            assert_eq!(Cursor::parse(&cursor.to_string()), Ok(cursor));
        }
        let heads = [(uuid::Uuid::new_v4(), 0), (uuid::Uuid::new_v4(), i64::MAX)];
        for heads in [&heads[..0], &heads[..1], &heads[..]] {
            let cursor = Cursor(Position::Heads(heads.iter().copied().collect()));
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
            "c2-0123456789abcdef0123456789abcdef",
            "c2-0123456789abcdef0123456789abcdef-1",
            "c2-0123456789abcdef0123456789abcdef1.",
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
