//! `switchboard bench inbox`: how soon a question shows in an inbox that is open in a browser.
//!
//! A real Chromium (driven by `playwright-core` from npm, installed on first use) signs in with
//! a link and keeps the inbox open. Questions are committed one at a time through the same
//! command an agent's request runs; a MutationObserver in the page timestamps the moment each
//! question's row appears. The figure is that moment minus the commit (the command's return),
//! on the same machine's clock: the event stream's push, the fragment fetch and the swap.
//! Also reported: the bytes the first load of the inbox transferred.

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

/// The npm package that drives Chromium (the browser tests pin the same).
pub const PLAYWRIGHT_CORE: &str = "playwright-core@1.65.1";

const DRIVER: &str = include_str!("inbox.js");

#[derive(Args, Debug, Clone)]
pub struct InboxArgs {
    /// Questions to ask, one after another.
    #[arg(long, default_value_t = 200)]
    pub questions: u32,
    /// Sessions the questions go to (all of them are listed in the inbox).
    #[arg(long, default_value_t = 20)]
    pub sessions: u32,
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
    let modules = node_modules(data_dir).await?;
    let key_dir = std::env::temp_dir().join(format!("switchboard-bench-keys-{}", Uuid::new_v4()));
    let (keys, _) = SigningKeys::load(None, None, &key_dir)?;
    let _ = std::fs::remove_dir_all(&key_dir);
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
        Arc::new(Authenticator::new(Arc::new(keys), db.pool.clone())),
    )));
    let shutdown = state.shutdown.clone();
    let server = tokio::spawn(http::server::serve(
        listener,
        app::router(state),
        shutdown.clone(),
    ));

    let tenant = Uuid::new_v4();
    let ctx = Context::system(tenant);
    let sessions: Vec<Uuid> = (0..args.sessions.max(1)).map(|_| Uuid::new_v4()).collect();
    for (n, session) in sessions.iter().enumerate() {
        ask(&log, &ctx, *session, &format!("Starting task {n}"), false).await?;
    }
    let link = web_sessions::create_link(&db.pool, tenant, 15).await?;
    let script =
        std::env::temp_dir().join(format!("switchboard-bench-inbox-{}.js", Uuid::new_v4()));
    std::fs::write(&script, DRIVER)?;
    let mut browser = Command::new("node")
        .arg(&script)
        .arg(&args.chromium)
        .arg(public_url.join(&format!("login/{}", link.token)))
        .arg(public_url.to_string())
        .env("NODE_PATH", &modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run node (install Node.js): {e}"))?;
    let mut lines = BufReader::new(browser.stdout.take().expect("piped")).lines();
    let first_load = match lines.next_line().await? {
        Some(line) => line
            .strip_prefix("READY ")
            .and_then(|b| b.parse::<u64>().ok())
            .ok_or_else(|| format!("unexpected from the browser: {line}"))?,
        None => return Err("the browser did not open the inbox (see above)".into()),
    };
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
        let message_id = ask(
            &log,
            &ctx,
            session,
            &format!("Question {n}: deploy now?"),
            true,
        )
        .await?;
        let committed_at = epoch_ms();
        let seen_at = loop {
            let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                .await
                .map_err(|_| format!("question {n} did not appear within 10 s"))??
                .ok_or("the browser stopped")?;
            let mut parts = line.split(' ');
            if parts.next() == Some("SEEN")
                && parts.next() == Some(message_id.to_string().as_str())
                && let Some(at) = parts.next().and_then(|t| t.parse::<f64>().ok())
            {
                break at;
            }
        };
        from_commit.push(Duration::from_secs_f64(
            ((seen_at - committed_at) / 1000.0).max(0.0),
        ));
        from_send.push(Duration::from_secs_f64(
            ((seen_at - sent_at) / 1000.0).max(0.0),
        ));
    }
    drop(browser.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), browser.wait()).await;
    let _ = std::fs::remove_file(&script);
    shutdown.cancel();
    let _ = server.await;

    println!(
        "Inbox benchmark: {} questions over {} sessions, one at a time, in headless Chromium",
        args.questions,
        sessions.len()
    );
    println!("  first load of the inbox:   {first_load} bytes transferred (gzip)");
    if let Some(latency) = Latencies::of(from_commit) {
        println!("  question commit → on page: {latency}");
    }
    if let Some(latency) = Latencies::of(from_send) {
        println!("  question sent → on page:   {latency}");
    }
    Ok(())
}

/// Milliseconds since the epoch, as the browser's `performance.timeOrigin + now()` counts.
fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

/// An agent message through the command an agent's request runs; its id.
async fn ask(
    log: &EventLog,
    ctx: &Context,
    session: Uuid,
    text: &str,
    question: bool,
) -> Result<Uuid, Box<dyn std::error::Error + Send + Sync>> {
    let input = AgentMessageInput {
        session_id: session,
        agent_type: Some(AgentType::parse("agent_type", "bench")?),
        content: Content::parse("content", text.to_owned())?,
        requires_user_input: question,
        send_email: None,
        send_sms: None,
        send_push: None,
        git_diff: None,
        message_metadata: None,
        options: None,
        approval: None,
        next_instruction: false,
        expires_in: None,
        leaves_unread: false,
        describe: Default::default(),
    };
    Ok(commands::send_agent_message(log, ctx, input)
        .await?
        .message_id)
}

/// `node_modules` with playwright-core, installed with npm under the data directory once.
async fn node_modules(
    data_dir: &Path,
) -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    let dir = data_dir.join("bench-node");
    let modules = dir.join("node_modules");
    if modules.join("playwright-core").is_dir() {
        return Ok(modules);
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("package.json"), "{\"private\": true}\n")?;
    eprintln!(
        "installing {PLAYWRIGHT_CORE} with npm in {} ...",
        dir.display()
    );
    let status = Command::new("npm")
        .current_dir(&dir)
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            PLAYWRIGHT_CORE,
        ])
        .status()
        .await
        .map_err(|e| format!("cannot run npm (install Node.js with npm): {e}"))?;
    if !status.success() {
        return Err(format!("npm install {PLAYWRIGHT_CORE} failed").into());
    }
    Ok(modules)
}
