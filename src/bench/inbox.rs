//! `switchboard bench inbox`: how soon a question shows in an inbox that is open in a browser.
//!
//! A real Chromium (driven by `playwright-core` from npm, installed on first use) signs in with
//! a link and keeps the inbox open. Questions are committed one at a time through the same
//! command an agent's request runs; a MutationObserver in the page timestamps the moment each
//! question's row appears. The figure is that moment minus the commit (the command's return),
//! on the same machine's clock: the event stream's push, the fragment fetch and the swap.
//! Also reported: the bytes the first load of the inbox transferred, and, over however many
//! sessions the tenant has (`--sessions 10000`), how long a search of the session list takes
//! (its fragment fetched over HTTP with the person's cookie, as the page's search box does).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

use super::{BenchDb, Latencies};
use crate::app::{self, App, AppState, Config, PublicUrl};
use crate::auth::{Authenticator, SigningKeys, web_sessions};
use crate::commands::{self, AgentMessageInput, Context};
use crate::domain::{AgentType, Content};
use crate::eventlog::EventLog;
use crate::http;
use projections::SessionDescribed;

/// The npm package that drives Chromium (the browser tests pin the same).
pub const PLAYWRIGHT_CORE: &str = "playwright-core@1.65.1";

const DRIVER: &str = include_str!("inbox.js");

#[derive(Args, Debug, Clone)]
pub struct InboxArgs {
    /// Questions to ask, one after another.
    #[arg(long, default_value_t = 200)]
    pub questions: u32,
    /// Sessions the tenant has (each with a title and project); the questions go to the first
    /// twenty.
    #[arg(long, default_value_t = 20)]
    pub sessions: u32,
    /// Searches of the session list to time.
    #[arg(long, default_value_t = 200)]
    pub searches: u32,
    /// The Chromium to drive.
    #[arg(
        long,
        env = "SWITCHBOARD_CHROMIUM",
        default_value = "/usr/bin/chromium"
    )]
    pub chromium: PathBuf,
}

pub async fn run(
    db: &BenchDb,
    data_dir: &Path,
    args: &InboxArgs,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let modules = npm_package(data_dir, PLAYWRIGHT_CORE, "playwright-core").await?;
    let served = Served::start(db).await?;
    let (log, public_url) = (served.log.clone(), served.public_url.clone());
    let tenant = Uuid::new_v4();
    let ctx = Context::system(tenant);
    let all: Vec<Uuid> = (0..args.sessions.max(1)).map(|_| Uuid::new_v4()).collect();
    if all.len() > 1000 {
        eprintln!("creating {} sessions ...", all.len());
    }
    for (n, session) in all.iter().enumerate() {
        let describe = SessionDescribed {
            title: Some(format!(
                "Task {n}: tidy the {} module",
                WORDS[n % WORDS.len()]
            )),
            project: Some(format!("project-{}", n % 50)),
            branch: Some(format!("feature-{}", n % 7)),
            ..SessionDescribed::default()
        };
        say(
            &log,
            &ctx,
            *session,
            &format!("Starting task {n}"),
            false,
            describe,
        )
        .await?;
    }
    let sessions: Vec<Uuid> = all.iter().take(20).copied().collect();
    let link = web_sessions::create_link(&db.pool, tenant, 15).await?;
    let (mut browser, mut lines, first_load) =
        open_inbox(&modules, &args.chromium, &public_url, &link.token, "").await?;
    eprintln!(
        "inbox open in Chromium; asking {} questions over {} sessions ...",
        args.questions,
        sessions.len()
    );

    let mut from_commit = Vec::new();
    let mut from_send = Vec::new();
    for n in 0..args.questions {
        let session = sessions[n as usize % sessions.len()];
        let sent_at = epoch_ms();
        let message_id = say(
            &log,
            &ctx,
            session,
            &format!("Question {n}: deploy now?"),
            true,
            SessionDescribed::default(),
        )
        .await?;
        let committed_at = epoch_ms();
        let seen_at = seen(&mut lines, Some(message_id), &format!("question {n}")).await?;
        from_commit.push(Duration::from_secs_f64(
            ((seen_at - committed_at) / 1000.0).max(0.0),
        ));
        from_send.push(Duration::from_secs_f64(
            ((seen_at - sent_at) / 1000.0).max(0.0),
        ));
    }
    drop(browser.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), browser.wait()).await;
    let searched = search(&db.pool, &public_url, tenant, args.searches).await?;
    served.stop().await;

    println!(
        "Inbox benchmark: {} questions over {} sessions, one at a time, in headless Chromium \
         ({} sessions in all)",
        args.questions,
        sessions.len(),
        all.len()
    );
    println!("  first load of the inbox:   {first_load} bytes transferred (gzip)");
    if let Some(latency) = Latencies::of(searched) {
        println!(
            "  a search of {} sessions:  {latency} ({} searches)",
            all.len(),
            args.searches
        );
    }
    if let Some(latency) = Latencies::of(from_commit) {
        println!("  question commit → on page: {latency}");
    }
    if let Some(latency) = Latencies::of(from_send) {
        println!("  question sent → on page:   {latency}");
    }
    Ok(())
}

/// Milliseconds since the epoch, as the browser's `performance.timeOrigin + now()` counts.
pub(super) fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

/// Words the sessions' titles are made of (and searched for).
const WORDS: [&str; 8] = [
    "storage", "billing", "login", "search", "export", "import", "metrics", "mailer",
];

/// An agent message through the command an agent's request runs; its id.
async fn say(
    log: &EventLog,
    ctx: &Context,
    session: Uuid,
    text: &str,
    question: bool,
    describe: SessionDescribed,
) -> Result<Uuid, Box<dyn std::error::Error + Send + Sync>> {
    let input = AgentMessageInput {
        agent_type: Some(AgentType::parse("agent_type", "bench")?),
        requires_user_input: question,
        describe,
        ..AgentMessageInput::new(session, Content::parse("content", text.to_owned())?)
    };
    Ok(commands::send_agent_message(log, ctx, input)
        .await?
        .message_id)
}

/// Search the session list `count` times as a signed-in person's page does (a title word, a
/// project, a branch, an id's beginning, nothing that matches), each answer read whole; how
/// long each took.
async fn search(
    pool: &sqlx::PgPool,
    public_url: &PublicUrl,
    tenant: Uuid,
    count: u32,
) -> Result<Vec<Duration>, Box<dyn std::error::Error + Send + Sync>> {
    let link = web_sessions::create_link(pool, tenant, 15).await?;
    let session = web_sessions::sign_in_with_link(pool, &link.token)
        .await?
        .map_err(|why| format!("the bench's sign-in link was refused: {why:?}"))?;
    let cookie = format!("switchboard_session={}", session.cookie);
    let client = reqwest::Client::new();
    let terms = [
        "storage",
        "project-7",
        "feature-3",
        "0",
        "nothing-matches-this",
    ];
    let mut took = Vec::new();
    for n in 0..count as usize {
        let term = terms[n % terms.len()];
        let url = public_url.join(&format!("inbox/list?q={term}"));
        let started = std::time::Instant::now();
        let response = client
            .get(&url)
            .header(reqwest::header::COOKIE, &cookie)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        took.push(started.elapsed());
        if !status.is_success() || body.is_empty() {
            return Err(format!("a search answered {status}").into());
        }
    }
    Ok(took)
}

/// `node_modules` with `package` (pinned: `name@version`), installed with npm under the data
/// directory once (`installed` names its folder in `node_modules`).
pub(super) async fn npm_package(
    data_dir: &Path,
    package: &str,
    installed: &str,
) -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    let dir = data_dir.join("bench-node");
    let modules = dir.join("node_modules");
    let stamp = modules.join(format!(".{}", package.replace('/', "+")));
    if modules.join(installed).is_dir() && stamp.exists() {
        return Ok(modules);
    }
    std::fs::create_dir_all(&dir)?;
    if !dir.join("package.json").exists() {
        std::fs::write(dir.join("package.json"), "{\"private\": true}\n")?;
    }
    eprintln!("installing {package} with npm in {} ...", dir.display());
    let status = Command::new("npm")
        .current_dir(&dir)
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            package,
        ])
        .status()
        .await
        .map_err(|e| format!("cannot run npm (install Node.js with npm): {e}"))?;
    if !status.success() {
        return Err(format!("npm install {package} failed").into());
    }
    std::fs::write(&stamp, "")?;
    Ok(modules)
}

/// A Switchboard server for a benchmark: in process, on a random port of loopback, with signing
/// keys of its own.
pub(super) struct Served {
    pub public_url: PublicUrl,
    pub log: EventLog,
    pub keys: Arc<SigningKeys>,
    shutdown: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl Served {
    pub async fn start(db: &BenchDb) -> Result<Served, Box<dyn std::error::Error + Send + Sync>> {
        let key_dir =
            std::env::temp_dir().join(format!("switchboard-bench-keys-{}", Uuid::new_v4()));
        let (keys, _) = SigningKeys::load(None, None, &key_dir)?;
        let _ = std::fs::remove_dir_all(&key_dir);
        let keys = Arc::new(keys);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let public_url = PublicUrl::parse(&format!("http://{address}/"))?;
        let log = EventLog::new(db.pool.clone());
        let state = AppState(Arc::new(App::start(
            Config {
                public_url: public_url.clone(),
                ..Config::default()
            },
            log.clone(),
            Arc::new(Authenticator::new(keys.clone(), db.pool.clone())),
        )));
        let shutdown = state.shutdown.clone();
        let server = tokio::spawn(http::server::serve(
            listener,
            app::router(state),
            shutdown.clone(),
        ));
        Ok(Served {
            public_url,
            log,
            keys,
            shutdown,
            server,
        })
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}

pub(super) type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Chromium signed in with the link `token`, showing `open` (a path under the server; "" is
/// the inbox); the browser, its report lines and the bytes the first load transferred.
pub(super) async fn open_inbox(
    modules: &Path,
    chromium: &Path,
    public_url: &PublicUrl,
    token: &str,
    open: &str,
) -> Result<(tokio::process::Child, Lines, u64), Box<dyn std::error::Error + Send + Sync>> {
    let script =
        std::env::temp_dir().join(format!("switchboard-bench-inbox-{}.js", Uuid::new_v4()));
    std::fs::write(&script, DRIVER)?;
    let mut browser = Command::new("node")
        .arg(&script)
        .arg(chromium)
        .arg(public_url.join(&format!("login/{token}")))
        .arg(public_url.to_string())
        .arg(open)
        .env("NODE_PATH", modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run node (install Node.js): {e}"))?;
    let mut lines = BufReader::new(browser.stdout.take().expect("piped")).lines();
    let first = lines.next_line().await;
    let _ = std::fs::remove_file(&script);
    let first_load = match first? {
        Some(line) => line
            .strip_prefix("READY ")
            .and_then(|b| b.parse::<u64>().ok())
            .ok_or_else(|| format!("unexpected from the browser: {line}"))?,
        None => return Err("the browser did not open the inbox (see above)".into()),
    };
    Ok((browser, lines, first_load))
}

/// When (epoch ms, the browser's clock) the page first showed message `id` (`None`: the next
/// message to appear), within 10 s.
pub(super) async fn seen(
    lines: &mut Lines,
    id: Option<Uuid>,
    what: &str,
) -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .map_err(|_| format!("{what} did not appear within 10 s"))??
            .ok_or("the browser stopped")?;
        let mut parts = line.split(' ');
        if parts.next() != Some("SEEN") {
            continue;
        }
        let shown = parts.next().and_then(|i| Uuid::try_parse(i).ok());
        if (id.is_none() || shown == id)
            && let Some(at) = parts.next().and_then(|t| t.parse::<f64>().ok())
        {
            return Ok(at);
        }
    }
}
