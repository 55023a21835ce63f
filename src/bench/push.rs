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
    /// Parked waiters for each idle run (0 skips it).
    #[arg(long, value_delimiter = ',', default_value = "200,10000")]
    pub idle_parked: Vec<u32>,
    /// What waits in the idle runs: long-polls, event streams, blocked MCP calls.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "long-poll")]
    pub idle_kind: Vec<WaiterKind>,
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

/// A kind of parked request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WaiterKind {
    /// `GET /messages/pending?wait=300` by cursor.
    LongPoll,
    /// `GET /sessions/{id}/stream`, its events unread.
    Stream,
    /// A 2026-07-28 `tools/call` of `wait_for_answer` on `/mcp`.
    Mcp,
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
    /// One client per local address (127.0.0.1, .2, ...): one address has fewer ephemeral
    /// ports than 100,000 waiters need.
    http: Vec<reqwest::Client>,
    base: String,
    /// One API key per tenant.
    tokens: Vec<Arc<str>>,
}

/// Waiters per local address (of the 28,232 ephemeral ports Linux gives one by default).
const WAITERS_PER_ADDRESS: u32 = 20_000;

impl Client {
    /// The HTTP client of waiter `i`.
    fn http(&self, i: usize) -> &reqwest::Client {
        &self.http[i % self.http.len()]
    }

    async fn post(&self, token: &str, path: &str, body: &Value) -> Result<Value, BoxError> {
        let response = self.http[0]
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
        Parked::start_kind(client, agents, WaiterKind::LongPoll)
    }

    fn start_kind(client: &Arc<Client>, agents: &[Agent], kind: WaiterKind) -> Parked {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(AtomicU64::new(0));
        let (tx, answered) = mpsc::unbounded_channel();
        let tasks = agents
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, agent)| {
                let (client, stop, tx, answers) =
                    (client.clone(), stop.clone(), tx.clone(), answers.clone());
                tokio::spawn(async move {
                    match kind {
                        WaiterKind::LongPoll => {
                            long_poll(&client, i, agent, &stop, &tx, &answers).await
                        }
                        WaiterKind::Stream => stream(&client, i, &agent, &stop).await,
                        WaiterKind::Mcp => mcp_wait(&client, i, &agent, &stop).await,
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

/// An agent's long-poll: it waits, and on an answer records it and waits again.
async fn long_poll(
    client: &Client,
    i: usize,
    mut agent: Agent,
    stop: &AtomicBool,
    answered: &mpsc::UnboundedSender<(Uuid, Instant)>,
    answers: &AtomicU64,
) {
    while !stop.load(Ordering::Relaxed) {
        let url = format!(
            "{}/api/v1/messages/pending?agent_instance_id={}&last_read_message_id={}&wait=300",
            client.base, agent.session, agent.last_read
        );
        let response = client
            .http(i)
            .get(url)
            .bearer_auth(&*agent.token)
            .send()
            .await;
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
            let _ = answered.send((agent.session, Instant::now()));
            answers.fetch_add(1, Ordering::Relaxed);
            agent.last_read = last["id"].as_str().unwrap_or_default().to_owned();
        }
    }
}

/// A dashboard's event stream of one session, opened and never read.
async fn stream(client: &Client, i: usize, agent: &Agent, stop: &AtomicBool) {
    let url = format!("{}/api/v1/sessions/{}/stream", client.base, agent.session);
    hold_open(stop, || client.http(i).get(&url).bearer_auth(&*agent.token)).await;
}

/// An MCP client blocked in `wait_for_answer` (2026-07-28, no session).
async fn mcp_wait(client: &Client, i: usize, agent: &Agent, stop: &AtomicBool) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "wait_for_answer",
        "arguments": {"agent_instance_id": agent.session, "question_id": agent.last_read},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}
        }
    }});
    let url = format!("{}/mcp", client.base);
    hold_open(stop, || {
        client
            .http(i)
            .post(&url)
            .bearer_auth(&*agent.token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", "wait_for_answer")
            .json(&body)
    })
    .await;
}

/// Send `request` until it is answered with a success, then hold the answer's body open,
/// unread, until the run stops (its task is aborted). A refusal is retried after a pause.
async fn hold_open(stop: &AtomicBool, request: impl Fn() -> reqwest::RequestBuilder) {
    while !stop.load(Ordering::Relaxed) {
        match request().send().await {
            Ok(response) if response.status().is_success() => {
                let _open = response;
                std::future::pending::<()>().await;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
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
    bare: BareRun,
}

/// A waiter on a bare socket (no HTTP client library between it and the server), beside the
/// parked ones: its wake-up from sending the reply, the reply's own round trip, and the wake-up
/// from the reply's acknowledgement.
struct BareRun {
    wake: Option<Latencies>,
    reply: Option<Latencies>,
    from_ack: Option<Latencies>,
}

impl BareRun {
    /// Wake-up p50 over the reply's round trip p50.
    fn ratio(&self) -> Option<f64> {
        Some(self.wake?.p50.as_secs_f64() / self.reply?.p50.as_secs_f64())
    }
}

/// `samples` replies to one agent that waits on a bare socket, one request per connection.
async fn bare(client: &Arc<Client>, samples: u32) -> Result<BareRun, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut agent = client.agents(1).await?.remove(0);
    let address = client.base.trim_start_matches("http://").to_owned();
    let (mut wake, mut reply, mut from_ack) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        let mut socket = tokio::net::TcpStream::connect(&address).await?;
        socket.set_nodelay(true)?;
        let request = format!(
            "GET /api/v1/messages/pending?agent_instance_id={}&last_read_message_id={}&wait=30 \
             HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            agent.session, agent.last_read, agent.token
        );
        socket.write_all(request.as_bytes()).await?;
        // Long enough for the request to be read, authenticated and parked.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = Instant::now();
        let replied = {
            let client = client.clone();
            let agent = agent.clone();
            tokio::spawn(async move {
                client.reply(&agent, "PostgreSQL").await?;
                Ok::<_, BoxError>(Instant::now())
            })
        };
        let mut answer = Vec::with_capacity(4096);
        let mut first = [0u8; 1];
        socket.read_exact(&mut first).await?;
        let woken = Instant::now();
        answer.push(first[0]);
        socket.read_to_end(&mut answer).await?;
        let acked = replied.await??;
        wake.push(woken - sent);
        reply.push(acked - sent);
        from_ack.push(woken.saturating_duration_since(acked));
        let text = String::from_utf8_lossy(&answer);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let body: Value = serde_json::from_str(body)?;
        agent.last_read = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["id"].as_str())
            .ok_or("the bare waiter was not answered")?
            .to_owned();
    }
    Ok(BareRun {
        wake: Latencies::of(wake),
        reply: Latencies::of(reply),
        from_ack: Latencies::of(from_ack),
    })
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
    let bare = bare(client, samples).await?;
    waiting.stop();
    Ok(LatencyRun {
        parked,
        from_send: Latencies::of(from_send),
        from_ack: Latencies::of(from_ack),
        bare,
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
    kind: WaiterKind,
    /// The statements run while idle, most frequent first: (per second, text).
    statements: Vec<(f64, String)>,
    /// Autovacuum's vacuums and analyzes of this database's tables in the window (their
    /// transactions are the database's, not the server's).
    autovacuum: i64,
    rss_before: Option<f64>,
    rss_parked: Option<f64>,
    transactions_per_second: f64,
    counted: &'static str,
    /// All transactions of the database (pg_stat_database), whoever ran them.
    database_transactions_per_second: f64,
    /// Rows the database read (returned + fetched) for anyone.
    rows_per_second: f64,
}

/// Autovacuum's runs on this database's tables so far.
const AUTOVACUUM: &str = "SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0)::bigint FROM pg_stat_user_tables";

/// Calls of each statement of this database so far (pg_stat_statements), by its text.
async fn statement_calls(pool: &sqlx::PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 100), sum(calls)::bigint
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND query NOT LIKE '%pg_stat%'
         GROUP BY 1",
    )
    .fetch_all(pool)
    .await
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
    kind: WaiterKind,
) -> Result<IdleRun, BoxError> {
    let rss_before = server.rss_mib();
    let agents = client.agents(parked).await?;
    let waiting = Parked::start_kind(client, &agents, kind);
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
    // the database has been quiet for 12 s. Its transaction counts are flushed late: a
    // connection that goes idle while others hold the statistics lock reports its transactions
    // up to 10 s after them (PostgreSQL's PGSTAT_IDLE_INTERVAL), so parking's own transactions
    // would be counted as idle work unless the transaction count has been quiet that long.
    let mut quiet = 0;
    let mut last: i64 = sqlx::query_scalar(count).fetch_one(&db.pool).await?;
    let mut last_database: (i64, i64) = sqlx::query_as(DATABASE_ACTIVITY)
        .fetch_one(&db.pool)
        .await?;
    while quiet < 12 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now: i64 = sqlx::query_scalar(count).fetch_one(&db.pool).await?;
        let database: (i64, i64) = sqlx::query_as(DATABASE_ACTIVITY)
            .fetch_one(&db.pool)
            .await?;
        // Our own queries: two to four transactions a second.
        let still = now - last <= 3 && database.0 - last_database.0 <= 6;
        quiet = if still { quiet + 1 } else { 0 };
        (last, last_database) = (now, database);
    }
    let statements_before = if statements {
        statement_calls(&db.pool).await?
    } else {
        Vec::new()
    };
    let rss_parked = server.rss_mib();
    let before: i64 = sqlx::query_scalar(count).fetch_one(&db.pool).await?;
    let database_before: (i64, i64) = sqlx::query_as(DATABASE_ACTIVITY)
        .fetch_one(&db.pool)
        .await?;
    let autovacuum_before: i64 = sqlx::query_scalar(AUTOVACUUM).fetch_one(&db.pool).await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after: i64 = sqlx::query_scalar(count).fetch_one(&db.pool).await?;
    let database_after: (i64, i64) = sqlx::query_as(DATABASE_ACTIVITY)
        .fetch_one(&db.pool)
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let autovacuum_after: i64 = sqlx::query_scalar(AUTOVACUUM).fetch_one(&db.pool).await?;
    let mut ran = Vec::new();
    if statements {
        for (query, calls) in statement_calls(&db.pool).await? {
            let before = statements_before
                .iter()
                .find(|(q, _)| *q == query)
                .map_or(0, |(_, c)| *c);
            if calls > before {
                ran.push(((calls - before) as f64 / seconds, query));
            }
        }
        ran.sort_by(|a, b| b.0.total_cmp(&a.0));
    }
    waiting.stop();
    // The measuring queries themselves: one transaction each when counting transactions.
    let own = if statements { 0 } else { 1 };
    let transactions = (after - before - own).max(0) as f64;
    Ok(IdleRun {
        parked,
        kind,
        statements: ran,
        autovacuum: autovacuum_after - autovacuum_before,
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
    let most = args
        .idle_parked
        .iter()
        .chain(&args.parked)
        .max()
        .copied()
        .unwrap_or(0)
        .max(args.throughput_parked);
    // Each waiter is a socket here and one in the server (which inherits this limit).
    let needed = u64::from(most) + 1_000;
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(0, |(soft, _)| soft);
    if limit < needed {
        return Err(format!(
            "{most} waiters need {needed} open files in this process and in the server; the \
             limit is {limit} (raise the hard limit: `ulimit -Hn`, systemd's LimitNOFILE=, or \
             run as root with CAP_SYS_RESOURCE)"
        )
        .into());
    }
    let http = (0..most.div_ceil(WAITERS_PER_ADDRESS).max(1))
        .map(|i| {
            let [a, b] = ((i + 1) as u16).to_be_bytes();
            reqwest::Client::builder()
                .pool_max_idle_per_host(usize::MAX)
                .local_address(std::net::IpAddr::from([127, 0, a, b]))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;

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
            println!(
                "  reply → bare-socket agent, {} parked: woken {}; the reply's round trip {}; \
                 woken after the reply's acknowledgement {}; wake p50 / round trip p50 = {}",
                run.parked,
                show(&run.bare.wake),
                show(&run.bare.reply),
                show(&run.bare.from_ack),
                run.bare.ratio().map_or("-".into(), |r| format!("{r:.2}")),
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
        drop(server);
        for (kind, parked) in args
            .idle_kind
            .iter()
            .flat_map(|kind| args.idle_parked.iter().map(move |n| (*kind, *n)))
            .filter(|(_, n)| *n > 0)
        {
            // Each in a fresh server process: its memory before parking is a server's at rest,
            // and nothing earlier runs parked left behind counts.
            let server = Server::start(db, (&public, &private), &["--notify", mode])?;
            let client = Arc::new(Client {
                http: http.clone(),
                base: server.address.clone(),
                tokens: tokens.clone(),
            });
            // Idle means after start-up's own work (projection check, first safety-net look).
            tokio::time::sleep(Duration::from_secs(3)).await;
            let run = idle(db, &server, &client, args, parked, kind).await?;
            let mib = |m: Option<f64>| m.map_or("-".into(), |m| format!("{m:.1} MiB"));
            let per_waiter = match (run.rss_before, run.rss_parked) {
                (Some(before), Some(after)) => {
                    format!("{:.1} KiB", (after - before) * 1024.0 / f64::from(parked))
                }
                _ => "-".into(),
            };
            println!(
                "  idle with {} {:?} parked: server RSS {} (before parking {}; {} per waiter), \
                 database {:.2} {}/s, {:.2} transactions/s and {:.1} rows read/s in all \
                 ({} autovacuum runs in the window)",
                run.parked,
                run.kind,
                mib(run.rss_parked),
                mib(run.rss_before),
                per_waiter,
                run.transactions_per_second,
                run.counted,
                run.database_transactions_per_second,
                run.rows_per_second,
                run.autovacuum,
            );
            for (rate, query) in run.statements.iter().take(5) {
                println!("      {rate:.2}/s  {query}");
            }
        }
    }
    Ok(())
}
