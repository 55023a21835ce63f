//! `switchboard bench rest`: agent messages per second through the real HTTP server (auth,
//! parsing, command, group commit) with many concurrent HTTP clients over many tenants, with
//! request latency percentiles, beside pgbench's raw INSERT ceiling at the same concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::append::median;
use super::{BenchDb, Latencies, Pgbench};
use crate::app::{self, App, AppState, Config};
use crate::auth::{Authenticator, SigningKeys, api_keys};
use crate::commands::Scope;
use crate::eventlog::EventLog;
use crate::http;

#[derive(Args, Debug, Clone)]
pub struct RestArgs {
    /// Concurrent HTTP clients (and pgbench clients).
    #[arg(long, default_value_t = 64)]
    pub clients: u32,
    /// Tenants (each with its own API key) the clients spread over.
    #[arg(long, default_value_t = 1000)]
    pub tenants: u32,
    /// Seconds of each run.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Alternate pgbench and Switchboard runs this many times.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// Skip the pgbench reference.
    #[arg(long)]
    pub no_pgbench: bool,
}

pub struct RestReport {
    pub rounds: Vec<f64>,
    pub raw_rounds: Vec<f64>,
    pub latency: Option<Latencies>,
}

/// A tenant's key and its session.
struct Agent {
    token: String,
    session: Uuid,
}

pub async fn run(
    db: &BenchDb,
    args: &RestArgs,
) -> Result<RestReport, Box<dyn std::error::Error + Send + Sync>> {
    let key_dir = std::env::temp_dir().join(format!("switchboard-bench-keys-{}", Uuid::new_v4()));
    let (keys, _) = SigningKeys::load(None, None, &key_dir)?;
    let _ = std::fs::remove_dir_all(&key_dir);
    let keys = Arc::new(keys);
    let state = AppState(Arc::new(App::start(
        Config::default(),
        EventLog::new(db.pool.clone()),
        Arc::new(Authenticator::new(keys.clone(), db.pool.clone())),
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let state_shutdown = state.shutdown.clone();
    let router = app::router(state);
    let server = tokio::spawn(http::server::serve(
        listener,
        router,
        state_shutdown.clone(),
    ));

    eprintln!(
        "creating {} tenants with keys and sessions ...",
        args.tenants
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients as usize)
        .build()?;
    let mut agents = Vec::new();
    for _ in 0..args.tenants.max(1) {
        let (_, token) =
            api_keys::create(&db.pool, &keys, Uuid::new_v4(), "bench", Scope::Agent, None).await?;
        let agent = Agent {
            token,
            session: Uuid::new_v4(),
        };
        post(&client, &address, &agent, true).await?;
        agents.push(agent);
    }
    let agents = Arc::new(agents);
    let pgbench = if args.no_pgbench {
        None
    } else {
        Pgbench::locate(db.pgbench_target.clone())
    };

    let mut rounds = Vec::new();
    let mut raw_rounds = Vec::new();
    let samples = Arc::new(Mutex::new(Vec::new()));
    for round in 1..=args.rounds.max(1) {
        if let Some(pgbench) = &pgbench {
            eprintln!(
                "round {round}: pgbench raw INSERT, {} clients, {} s ...",
                args.clients, args.seconds
            );
            match super::raw_insert_ceiling(&db.pool, pgbench, args.clients, args.seconds).await {
                Ok(tps) => raw_rounds.push(tps),
                Err(e) => eprintln!("pgbench reference unavailable: {e}"),
            }
        }
        eprintln!(
            "round {round}: {} HTTP clients, {} s ...",
            args.clients, args.seconds
        );
        let sent = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for n in 0..args.clients {
            let (client, address, agents, sent, samples) = (
                client.clone(),
                address.clone(),
                agents.clone(),
                sent.clone(),
                samples.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut i = n as usize;
                while Instant::now() < deadline {
                    let agent = &agents[i % agents.len()];
                    i += 7919;
                    let t = Instant::now();
                    if post(&client, &address, agent, false).await.is_ok() {
                        mine.push(t.elapsed());
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                samples.lock().await.extend(mine);
            }));
        }
        for task in tasks {
            task.await?;
        }
        rounds.push(sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64());
    }
    state_shutdown.cancel();
    server.abort();
    let samples = std::mem::take(&mut *samples.lock().await);
    Ok(RestReport {
        rounds,
        raw_rounds,
        latency: Latencies::of(samples),
    })
}

async fn post(
    client: &reqwest::Client,
    address: &str,
    agent: &Agent,
    first: bool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut body = json!({
        "agent_instance_id": agent.session,
        "content": "Refactoring the storage layer: next step",
    });
    if first {
        body["agent_type"] = json!("bench");
    }
    let response = client
        .post(format!("{address}/api/v1/messages/agent"))
        .bearer_auth(&agent.token)
        .json(&body)
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("POST /messages/agent: {}", response.status()).into());
    }
    response.bytes().await?;
    Ok(())
}

pub fn print(args: &RestArgs, report: &RestReport) {
    let list = |r: &[f64]| {
        r.iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "REST benchmark: POST /api/v1/messages/agent, {} clients over {} tenants, {} rounds of {} s",
        args.clients, args.tenants, args.rounds, args.seconds
    );
    println!(
        "  agent messages:            {:.0} /s median (rounds: {})",
        median(&report.rounds).unwrap_or_default(),
        list(&report.rounds)
    );
    if let Some(latency) = &report.latency {
        println!("  request latency:           {latency}");
    }
    if let Some(raw) = median(&report.raw_rounds) {
        let ratios: Vec<f64> = report
            .rounds
            .iter()
            .zip(&report.raw_rounds)
            .map(|(a, b)| a / b)
            .collect();
        println!(
            "  pgbench raw INSERT:        {raw:.0} tps median, {} clients (rounds: {})",
            args.clients,
            list(&report.raw_rounds)
        );
        println!(
            "  ratio:                     {:.2} x the raw INSERT ceiling (median of per-round ratios: {})",
            median(&ratios).unwrap_or_default(),
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
