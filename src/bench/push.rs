//! `switchboard bench push`: what waiting agents experience, against a real `switchboard serve`
//! process (so its memory can be read on its own) and real HTTP long-polls.
//!
//! - reply → waiting agent latency with N parked long-polls: one reply at a time, measured
//!   from sending `POST /messages/user` to the agent's long-poll answer arriving, and from the
//!   POST's acknowledgement to that answer;
//! - reply throughput while N long-polls are parked;
//! - idle parked long-polls (a few hundred, and many) over a log that already holds a million
//!   events: the server's resident memory, and the statements, transactions and rows per
//!   second it makes the database run while nothing happens (this must not grow with the log);
//!
//! each for every NOTIFY placement asked for (`--notify`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{BenchDb, Latencies, Server};
use crate::auth::api_keys;
use crate::commands::Scope;
use crate::eventlog::NotifyMode;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Args, Debug, Clone)]
pub struct PushArgs {
    /// Parked long-polls for the latency runs.
    #[arg(long, value_delimiter = ',', default_value = "200,1000")]
    pub parked: Vec<u32>,
    /// Replies timed per latency run.
    #[arg(long, default_value_t = 300)]
    pub samples: u32,
    /// Parked long-polls during the throughput run.
    #[arg(long, default_value_t = 1000)]
    pub throughput_parked: u32,
    /// Concurrent repliers during the throughput run.
    #[arg(long, default_value_t = 32)]
    pub repliers: u32,
    /// Seconds of the throughput run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Parked long-polls for each idle run (0 skips it).
    #[arg(long, value_delimiter = ',', default_value = "200,10000")]
    pub idle_parked: Vec<u32>,
    /// Events generated into the log (other tenants') before anything else runs, so that
    /// idle costs are measured against a table of realistic size.
    #[arg(long, default_value_t = 1_000_000)]
    pub log_events: u64,
    /// Seconds the idle run counts database transactions.
    #[arg(long, default_value_t = 20)]
    pub idle_seconds: u64,
    /// Tenants (users) the agents belong to; a tenant's appends are serialized, so this
    /// bounds the throughput run (see the README).
    #[arg(long, default_value_t = 100)]
    pub tenants: u32,
    /// NOTIFY placements to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "after-commit"
    )]
    pub notify: Vec<NotifyMode>,
}

/// Put `events` generated events (of tenants the benchmark does not use) into the empty log.
async fn fill_log(db: &BenchDb, events: u64) -> Result<(), BoxError> {
    let started = Instant::now();
    let path =
        std::env::temp_dir().join(format!("switchboard-bench-log-{}.ndjson", Uuid::new_v4()));
    let log = super::audit::AuditArgs {
        events,
        tenants: 100,
        session_length: 20,
    };
    {
        let file = std::fs::File::create(&path)?;
        super::audit::generate(&log, &mut std::io::BufWriter::with_capacity(1 << 20, file))?;
    }
    let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&path)?);
    let replayed = crate::eventlog::replay::replay(&db.pool, file).await;
    std::fs::remove_file(&path)?;
    replayed?;
    sqlx::query("VACUUM ANALYZE events")
        .execute(&db.pool)
        .await?;
    println!(
        "  the log holds {events} other events ({:.0} s to generate and replay them)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// An agent with a question out: its session, its tenant's key, the message it has read up to.
#[derive(Clone)]
struct Agent {
    session: Uuid,
    token: Arc<str>,
    last_read: String,
}

struct Client {
    http: reqwest::Client,
    base: String,
    /// One API key per tenant.
    tokens: Vec<Arc<str>>,
}

impl Client {
    async fn post(&self, token: &str, path: &str, body: &Value) -> Result<Value, BoxError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("POST {path}: {}", response.status()).into());
        }
        Ok(response.json().await?)
    }

    /// Start `n` sessions, each with a question, a few at a time.
    async fn agents(self: &Arc<Self>, n: u32) -> Result<Vec<Agent>, BoxError> {
        let mut agents = Vec::new();
        let mut pending = Vec::new();
        for i in 0..n as usize {
            let client = self.clone();
            let token = self.tokens[i % self.tokens.len()].clone();
            pending.push(tokio::spawn(async move {
                let session = Uuid::new_v4();
                let body = json!({"agent_instance_id": session, "agent_type": "bench",
                                  "content": "Which database?", "requires_user_input": true});
                let sent = client.post(&token, "/api/v1/messages/agent", &body).await?;
                let last_read = sent["message_id"]
                    .as_str()
                    .ok_or("no message id")?
                    .to_owned();
                Ok::<_, BoxError>(Agent {
                    session,
                    token,
                    last_read,
                })
            }));
            if pending.len() == 64 {
                for task in pending.drain(..) {
                    agents.push(task.await??);
                }
            }
        }
        for task in pending {
            agents.push(task.await??);
        }
        Ok(agents)
    }

    async fn reply(&self, agent: &Agent, content: &str) -> Result<(), BoxError> {
        let body =
            json!({"agent_instance_id": agent.session, "content": content, "mark_as_read": false});
        self.post(&agent.token, "/api/v1/messages/user", &body)
            .await
            .map(drop)
    }
}

/// Parked long-polls: each agent waits, and on an answer records it and waits again.
struct Parked {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    answered: mpsc::UnboundedReceiver<(Uuid, Instant)>,
    answers: Arc<AtomicU64>,
}

impl Parked {
    fn start(client: &Arc<Client>, agents: &[Agent]) -> Parked {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(AtomicU64::new(0));
        let (tx, answered) = mpsc::unbounded_channel();
        let tasks = agents
            .iter()
            .cloned()
            .map(|mut agent| {
                let (client, stop, tx, answers) = (client.clone(), stop.clone(), tx.clone(), answers.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let url = format!(
                            "{}/api/v1/messages/pending?agent_instance_id={}&last_read_message_id={}&wait=300",
                            client.base, agent.session, agent.last_read
                        );
                        let response = client.http.get(url).bearer_auth(&*agent.token).send().await;
                        let body = match response {
                            Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
                            _ => None,
                        };
                        let Some(body) = body else {
                            // Refused (overloaded) or cut: back off a little before parking again.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        };
                        if let Some(last) = body["messages"].as_array().and_then(|m| m.last()) {
                            let _ = tx.send((agent.session, Instant::now()));
                            answers.fetch_add(1, Ordering::Relaxed);
                            agent.last_read = last["id"].as_str().unwrap_or_default().to_owned();
                        }
                    }
                })
            })
            .collect();
        Parked {
            stop,
            tasks,
            answered,
            answers,
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Time for `n` long-polls to reach the server and park.
async fn settle(n: u32) {
    tokio::time::sleep(Duration::from_millis(1500 + u64::from(n) / 4)).await;
}

struct LatencyRun {
    parked: u32,
    from_send: Option<Latencies>,
    from_ack: Option<Latencies>,
}

async fn latency(client: &Arc<Client>, parked: u32, samples: u32) -> Result<LatencyRun, BoxError> {
    let agents = client.agents(parked).await?;
    let mut waiting = Parked::start(client, &agents);
    settle(parked).await;
    let (mut from_send, mut from_ack) = (Vec::new(), Vec::new());
    for n in 0..samples as usize {
        let agent = &agents[(n * 7919) % agents.len()];
        let sent = Instant::now();
        client.reply(agent, "PostgreSQL").await?;
        let acked = Instant::now();
        let (session, at) = tokio::time::timeout(Duration::from_secs(10), waiting.answered.recv())
            .await?
            .ok_or("agents stopped")?;
        if session != agent.session {
            return Err("the wrong agent was woken".into());
        }
        from_send.push(at.saturating_duration_since(sent));
        from_ack.push(at.saturating_duration_since(acked));
    }
    waiting.stop();
    Ok(LatencyRun {
        parked,
        from_send: Latencies::of(from_send),
        from_ack: Latencies::of(from_ack),
    })
}

struct ThroughputRun {
    replies_per_second: f64,
    answers_per_second: f64,
}

async fn throughput(client: &Arc<Client>, args: &PushArgs) -> Result<ThroughputRun, BoxError> {
    let agents = Arc::new(client.agents(args.throughput_parked).await?);
    let waiting = Parked::start(client, &agents);
    settle(args.throughput_parked).await;
    let answers_before = waiting.answers.load(Ordering::Relaxed);
    let replies = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut repliers = Vec::new();
    for r in 0..args.repliers {
        let (client, agents, replies) = (client.clone(), agents.clone(), replies.clone());
        repliers.push(tokio::spawn(async move {
            let mut n = r as usize;
            while Instant::now() < deadline {
                let agent = &agents[n % agents.len()];
                n += args_stride(agents.len());
                if client.reply(agent, "go on").await.is_ok() {
                    replies.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for replier in repliers {
        replier.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Give the last wake-ups a moment to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answers = waiting.answers.load(Ordering::Relaxed) - answers_before;
    waiting.stop();
    Ok(ThroughputRun {
        replies_per_second: replies.load(Ordering::Relaxed) as f64 / elapsed,
        answers_per_second: answers as f64 / elapsed,
    })
}

fn args_stride(agents: usize) -> usize {
    // A prime step visits every agent before repeating one.
    if agents.is_multiple_of(7919) { 1 } else { 7919 }
}

struct IdleRun {
    parked: u32,
    rss_before: Option<f64>,
    rss_parked: Option<f64>,
    transactions_per_second: f64,
    counted: &'static str,
    /// All transactions of the database (pg_stat_database), whoever ran them.
    database_transactions_per_second: f64,
    /// Rows the database read (returned + fetched) for anyone.
    rows_per_second: f64,
}

/// The database's transactions and the rows it read, so far (statistics lag about a second).
const DATABASE_ACTIVITY: &str = "\
SELECT (xact_commit + xact_rollback)::bigint, (tup_returned + tup_fetched)::bigint
FROM pg_stat_database WHERE datname = current_database()";

async fn idle(
    db: &BenchDb,
    server: &Server,
    client: &Arc<Client>,
    args: &PushArgs,
    parked: u32,
) -> Result<IdleRun, BoxError> {
    let rss_before = server.rss_mib();
    let agents = client.agents(parked).await?;
    let waiting = Parked::start(client, &agents);
    settle(parked).await;
    // What the server makes the database do: statements from pg_stat_statements when the
    // cluster has it (autovacuum, busy after the sessions were created, is not counted there),
    // else all transactions of the database.
    let statements = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&db.pool)
        .await
        .is_ok()
        && sqlx::query("SELECT 1 FROM pg_stat_statements LIMIT 1")
            .execute(&db.pool)
            .await
            .is_ok();
    let count = if statements {
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND query NOT LIKE '%pg_stat%'"
    } else {
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()"
    };
    // Parking ten thousand requests takes a while (each reads its session once); wait until
    // the database has been quiet for 3 s (statistics are flushed about once a second).
    let mut quiet = 0;
    let mut last: i64 = sqlx::query_scalar(count).fetch_one(&db.pool).await?;
    while quiet < 3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now: i64 = sqlx::query_scalar(count).fetch_one(&db.pool).await?;
        quiet = if now - last <= 3 { quiet + 1 } else { 0 };
        last = now;
    }
    let rss_parked = server.rss_mib();
    let before: i64 = sqlx::query_scalar(count).fetch_one(&db.pool).await?;
    let database_before: (i64, i64) = sqlx::query_as(DATABASE_ACTIVITY)
        .fetch_one(&db.pool)
        .await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after: i64 = sqlx::query_scalar(count).fetch_one(&db.pool).await?;
    let database_after: (i64, i64) = sqlx::query_as(DATABASE_ACTIVITY)
        .fetch_one(&db.pool)
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    waiting.stop();
    // The measuring queries themselves: one transaction each when counting transactions.
    let own = if statements { 0 } else { 1 };
    let transactions = (after - before - own).max(0) as f64;
    Ok(IdleRun {
        parked,
        rss_before,
        rss_parked,
        transactions_per_second: transactions / seconds,
        database_transactions_per_second: (database_after.0 - database_before.0 - 2).max(0) as f64
            / seconds,
        rows_per_second: (database_after.1 - database_before.1).max(0) as f64 / seconds,
        counted: if statements {
            "statements (pg_stat_statements)"
        } else {
            "transactions (pg_stat_database)"
        },
    })
}

pub async fn run(db: &BenchDb, args: &PushArgs) -> Result<(), BoxError> {
    super::super::cli::raise_open_file_limit();
    if args.log_events > 0 {
        fill_log(db, args.log_events).await?;
    }
    let (keys, public, private) = super::scratch_keys()?;
    let mut tokens = Vec::new();
    for _ in 0..args.tenants.max(1) {
        let (_, token) =
            api_keys::create(&db.pool, &keys, Uuid::new_v4(), "bench", Scope::Agent, None).await?;
        tokens.push(Arc::<str>::from(token));
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()?;

    for notify in &args.notify {
        println!("push benchmark, NOTIFY {notify:?}:");
        let mode = match notify {
            NotifyMode::InTransaction => "in-transaction",
            NotifyMode::AfterCommit => "after-commit",
            NotifyMode::Coalesced => "coalesced",
        };
        let server = Server::start(db, (&public, &private), &["--notify", mode])?;
        let client = Arc::new(Client {
            http: http.clone(),
            base: server.address.clone(),
            tokens: tokens.clone(),
        });
        for parked in &args.parked {
            let run = latency(&client, *parked, args.samples).await?;
            let show = |l: &Option<Latencies>| l.map_or("-".into(), |l| l.to_string());
            println!(
                "  reply → agent, {} parked, from sending the reply:   {}",
                run.parked,
                show(&run.from_send)
            );
            println!(
                "  reply → agent, {} parked, from the reply's commit:  {}",
                run.parked,
                show(&run.from_ack)
            );
        }
        let run = throughput(&client, args).await?;
        println!(
            "  throughput with {} parked over {} tenants, {} repliers: {:.0} replies/s, {:.0} agents woken/s",
            args.throughput_parked,
            args.tenants,
            args.repliers,
            run.replies_per_second,
            run.answers_per_second
        );
        for parked in args.idle_parked.iter().copied().filter(|n| *n > 0) {
            let run = idle(db, &server, &client, args, parked).await?;
            let mib = |m: Option<f64>| m.map_or("-".into(), |m| format!("{m:.1} MiB"));
            println!(
                "  idle with {} parked: server RSS {} (before parking {}), database {:.2} {}/s, \
                 {:.2} transactions/s and {:.1} rows read/s in all",
                run.parked,
                mib(run.rss_parked),
                mib(run.rss_before),
                run.transactions_per_second,
                run.counted,
                run.database_transactions_per_second,
                run.rows_per_second,
            );
        }
        drop(server);
    }
    Ok(())
}
