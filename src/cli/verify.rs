//! `switchboard verify [--user <uuid>]`.

use std::process::ExitCode;

use clap::Args;
use uuid::Uuid;

use super::Outcome;
use crate::config::DatabaseArgs;
use crate::eventlog::verify;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Verify only this user's (tenant's) log.
    #[arg(long)]
    user: Option<Uuid>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(db_args: &DatabaseArgs, args: VerifyArgs) -> Outcome {
    let db = db_args.open(2).await?;
    let started = std::time::Instant::now();
    let report = verify::verify(&db.pool, args.user).await;
    db.close().await;
    let report = report?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for tenant in &report.tenants {
            match &tenant.broken {
                None => println!(
                    "ok      tenant {}: {} events, head seq {} hash {}",
                    tenant.tenant_id, tenant.events, tenant.last_seq, tenant.head_hash
                ),
                Some(broken) => println!("BROKEN  {broken}"),
            }
        }
        println!(
            "{} events in {} tenants verified in {seconds:.2}s ({:.0} events/s): {}",
            report.events,
            report.tenants.len(),
            report.events as f64 / seconds.max(1e-9),
            if report.ok {
                "the log is intact"
            } else {
                "THE LOG IS BROKEN"
            }
        );
    }
    if let Some(first) = report.breaks().next() {
        eprintln!("verify failed: {first}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
