//! `switchboard bench append`: events/s through the real append path (the agent-message
//! command: tenant lock, projection fold, hash chain, one write, commit) with N concurrent
//! writers over M tenants, single-writer latency, and pgbench's raw INSERT ceiling beside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use uuid::Uuid;

use super::{BenchDb, Latencies, Pgbench};
use crate::commands::{self, AgentMessageInput, Context};
use crate::domain::{AgentType, Content};
use crate::eventlog::EventLog;

#[derive(Args, Debug, Clone)]
pub struct AppendArgs {
    /// Concurrent writers.
    #[arg(long, default_value_t = 16)]
    pub writers: u32,
    /// Tenants the writers spread over.
    #[arg(long, default_value_t = 1000)]
    pub tenants: u32,
    /// Seconds of the throughput run (and of the pgbench run).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Seconds of the single-writer latency run.
    #[arg(long, default_value_t = 5)]
    pub latency_seconds: u64,
    /// Alternate pgbench and Switchboard runs this many times and compare medians (this
    /// kind of machine's throughput drifts by tens of percent from minute to minute).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Skip the pgbench reference.
    #[arg(long)]
    pub no_pgbench: bool,
}

pub struct AppendReport {
    /// Events/s of each round, and their median.
    pub rounds: Vec<f64>,
    pub events_per_second: f64,
    pub latency: Option<Latencies>,
    /// pgbench raw INSERT tps of each round, and their median.
    pub raw_rounds: Vec<f64>,
    pub raw_insert_tps: Option<f64>,
}

pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// One agent message: the command REST and MCP run for a step.
async fn step(log: &EventLog, ctx: &Context, session: Uuid, n: u64) -> Duration {
    let started = Instant::now();
    let input = AgentMessageInput {
        agent_type: Some(AgentType::parse("agent_type", "bench").expect("valid")),
        ..AgentMessageInput::new(
            session,
            Content::parse(
                "content",
                format!("Refactoring the storage layer: step {n}"),
            )
            .expect("valid"),
        )
    };
    commands::send_agent_message(log, ctx, input)
        .await
        .expect("appends succeed");
    started.elapsed()
}

/// A small, fast, dependency-free generator to spread writers over tenants.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

pub async fn run(db: &BenchDb, args: &AppendArgs) -> AppendReport {
    let pgbench = if args.no_pgbench {
        None
    } else {
        Pgbench::locate(db.pgbench_target.clone())
    };
    let log = EventLog::new(db.pool.clone());
    let tenants: Vec<(Context, Uuid)> = (0..args.tenants.max(1))
        .map(|_| (Context::system(Uuid::new_v4()), Uuid::new_v4()))
        .collect();
    eprintln!("starting {} sessions ...", tenants.len());
    for (n, (ctx, session)) in tenants.iter().enumerate() {
        step(&log, ctx, *session, n as u64).await;
    }
    let tenants = Arc::new(tenants);

    let mut rounds = Vec::new();
    let mut raw_rounds = Vec::new();
    for round in 1..=args.rounds.max(1) {
        if let Some(pgbench) = &pgbench {
            eprintln!(
                "round {round}: pgbench raw INSERT, {} clients, {} s ...",
                args.writers, args.seconds
            );
            match super::raw_insert_ceiling(&db.pool, pgbench, args.writers, args.seconds).await {
                Ok(tps) => raw_rounds.push(tps),
                Err(e) => eprintln!("pgbench reference unavailable: {e}"),
            }
        }
        eprintln!(
            "round {round}: {} writers over {} tenants, {} s ...",
            args.writers,
            tenants.len(),
            args.seconds
        );
        rounds.push(throughput(&log, &tenants, args).await);
    }

    eprintln!("single writer, {} s ...", args.latency_seconds);
    let (ctx, session) = &tenants[0];
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(args.latency_seconds);
    while Instant::now() < deadline {
        samples.push(step(&log, ctx, *session, samples.len() as u64).await);
    }
    AppendReport {
        events_per_second: median(&rounds).unwrap_or_default(),
        rounds,
        latency: Latencies::of(samples),
        raw_insert_tps: median(&raw_rounds),
        raw_rounds,
    }
}

/// Events/s with `args.writers` concurrent writers on random tenants for `args.seconds`.
async fn throughput(log: &EventLog, tenants: &Arc<Vec<(Context, Uuid)>>, args: &AppendArgs) -> f64 {
    let appended = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..args.writers {
        let (log, tenants, appended) = (log.clone(), tenants.clone(), appended.clone());
        writers.push(tokio::spawn(async move {
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (u64::from(writer) + 1);
            while Instant::now() < deadline {
                let (ctx, session) =
                    &tenants[(xorshift(&mut state) % tenants.len() as u64) as usize];
                step(&log, ctx, *session, 0).await;
                appended.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer does not panic");
    }
    appended.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

pub fn print(args: &AppendArgs, report: &AppendReport) {
    let rounds = |r: &[f64]| {
        r.iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "append benchmark: {} writers over {} tenants, {} rounds of {} s",
        args.writers, args.tenants, args.rounds, args.seconds
    );
    println!(
        "  appends (agent messages):  {:.0} events/s median (rounds: {})",
        report.events_per_second,
        rounds(&report.rounds)
    );
    if let Some(raw) = report.raw_insert_tps {
        println!(
            "  pgbench raw INSERT:        {raw:.0} tps median, {} clients (rounds: {})",
            args.writers,
            rounds(&report.raw_rounds)
        );
        // Each round pairs a pgbench run with the Switchboard run right after it, so the
        // median of per-round ratios is the figure least moved by the machine's drift.
        let ratios: Vec<f64> = report
            .rounds
            .iter()
            .zip(&report.raw_rounds)
            .map(|(ours, raw)| ours / raw)
            .collect();
        println!(
            "  ratio:                     {:.2} x the raw INSERT ceiling (median of per-round ratios: {})",
            median(&ratios).unwrap_or(report.events_per_second / raw),
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(latency) = &report.latency {
        println!("  single-writer latency:     {latency}");
    }
}
