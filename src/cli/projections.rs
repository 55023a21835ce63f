//! `switchboard projections rebuild [--check]`.

use std::process::ExitCode;

use clap::Subcommand;

use super::Outcome;
use crate::config::DatabaseArgs;
use crate::eventlog::rebuild;

#[derive(Subcommand, Debug)]
pub enum ProjectionsCommand {
    /// Rebuild `sessions` and `inbox` from the event log (appends wait meanwhile).
    Rebuild {
        /// Only compare the live tables with a rebuild; exit 1 on any difference.
        #[arg(long)]
        check: bool,
    },
}

pub async fn run(db_args: &DatabaseArgs, command: ProjectionsCommand) -> Outcome {
    let ProjectionsCommand::Rebuild { check } = command;
    let db = db_args.open(2).await?;
    let started = std::time::Instant::now();
    let report = if check {
        rebuild::check(&db.pool).await
    } else {
        rebuild::rebuild(&db.pool).await
    };
    db.close().await;
    let report = report?;
    let seconds = started.elapsed().as_secs_f64();
    for difference in report.differences.iter().take(20) {
        println!("{difference}");
    }
    if report.different > 20 {
        println!("... and {} more differences", report.different - 20);
    }
    let rate = report.events as f64 / seconds.max(1e-9);
    if check {
        println!(
            "{} events, {} streams folded in {seconds:.2}s ({rate:.0} events/s): {}",
            report.events,
            report.streams,
            if report.different == 0 {
                "the projections match the log".to_owned()
            } else {
                format!("{} differences", report.different)
            }
        );
        return Ok(if report.different == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    println!(
        "Rebuilt {} streams from {} events in {seconds:.2}s ({rate:.0} events/s); {} differences were corrected.",
        report.streams, report.events, report.different
    );
    Ok(ExitCode::SUCCESS)
}
