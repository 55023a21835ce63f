//! `switchboard serve`: open (or provision) the database, load the signing keys, print a first
//! API key on a fresh install, and serve HTTP until SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use clap::Args;
use uuid::Uuid;

use super::Outcome;
use crate::app::{self, App, AppState, Config, PublicUrl};
use crate::auth::web_sessions::{self, DEFAULT_LINK_MINUTES};
use crate::auth::{Authenticator, api_keys};
use crate::commands::{self, Scope};
use crate::config::{DatabaseArgs, KeyArgs, NotifyArgs};
use crate::domain::UserName;
use crate::eventlog::{EventLog, NotifyMode};
use crate::http;
use crate::mcp::{self, HostRule, McpConfig, OriginRule};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port to listen on (also MCP_SERVER_PORT); 0 picks a free one.
    #[arg(long, env = "PORT")]
    port: Option<u16>,

    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_HOST", default_value = "0.0.0.0")]
    host: IpAddr,

    #[command(flatten)]
    keys: KeyArgs,

    #[command(flatten)]
    notifications: NotifyArgs,

    /// Largest request body in bytes.
    #[arg(long, env = "SWITCHBOARD_BODY_LIMIT", default_value_t = 2 * 1024 * 1024)]
    body_limit: usize,

    /// Comma-separated origins allowed by CORS (default: the public URL's origin only).
    #[arg(long, env = "SWITCHBOARD_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,

    /// Database connections this process may hold.
    #[arg(long, env = "SWITCHBOARD_DB_CONNECTIONS", default_value_t = 32)]
    db_connections: u32,

    /// Seconds an MCP `ask_question` blocks before answering "pending" (the agent then calls
    /// `wait_for_answer`). Keep it below your MCP client's tool-call timeout: at most 55 for
    /// hosts that do not reset their timeout on progress (Claude Desktop allows about 60).
    #[arg(long, env = "SWITCHBOARD_MCP_BLOCK_SECONDS", default_value_t = 50)]
    mcp_block_seconds: u64,

    /// Seconds the MCP `permission_prompt` (Claude Code's `--permission-prompt-tool`) waits
    /// for a decision before withdrawing the question and denying the call. Claude Code holds
    /// the call until its `MCP_TOOL_TIMEOUT`; keep this below that when you set it.
    #[arg(
        long,
        env = "SWITCHBOARD_MCP_PERMISSION_SECONDS",
        default_value_t = 300
    )]
    mcp_permission_seconds: u64,

    /// Comma-separated `Host` values the MCP endpoint accepts (DNS-rebinding guard; `host` or
    /// `host:port`). Set this to the public name when clients reach the server through a
    /// proxy or another machine; `*` accepts any host.
    #[arg(
        long,
        env = "SWITCHBOARD_MCP_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,::1"
    )]
    mcp_allowed_hosts: Vec<String>,

    /// Comma-separated `Origin`s the MCP endpoint accepts from browsers (`scheme://host[:port]`,
    /// `scheme://host:*` for any port, `*` for any origin); a web page from any other origin
    /// gets 403. Default: loopback origins and the public URL's. Clients that are not
    /// browsers send no `Origin` and are not affected.
    #[arg(long, env = "SWITCHBOARD_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    mcp_allowed_origins: Vec<String>,

    /// The URL people reach this server at (`https://switchboard.example.com`), used in
    /// sign-in and notification links; default `http://localhost:<port>`.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    public_url: Option<String>,

    /// A token `GET /metrics` then requires as `Authorization: Bearer <token>` (default:
    /// metrics are open to anyone who reaches the port).
    #[arg(long, env = "SWITCHBOARD_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,

    /// Where commits are announced to waiting agents (see `switchboard bench push`).
    #[arg(long, env = "SWITCHBOARD_NOTIFY", value_enum, default_value_t = NotifyMode::default())]
    notify: NotifyMode,

    /// A session whose agent gave no sign of life (a message, a heartbeat) for this long shows
    /// as idle rather than working: 500ms, 30s, 15m, 2h.
    #[arg(long, env = "SWITCHBOARD_IDLE_AFTER", value_parser = crate::notify::parse_duration, default_value = "15m")]
    idle_after: Duration,

    /// A question whose waiting MCP call (or long-poll) was abandoned by its client is withdrawn
    /// when nobody waits for it again within this long.
    #[arg(long, env = "SWITCHBOARD_WITHDRAW_ABANDONED_AFTER", value_parser = crate::notify::parse_duration, default_value = "60s")]
    withdraw_abandoned_after: Duration,

    /// Fetch OAuth client metadata documents from loopback and private addresses too (for
    /// developing an MCP host on the same network; anyone may make the server fetch one).
    #[arg(long, env = "SWITCHBOARD_OAUTH_ALLOW_PRIVATE")]
    oauth_allow_private: bool,
}

const DEFAULT_PORT: u16 = 8080;

/// The port to serve on: `--port`/`PORT`, else `MCP_SERVER_PORT`, else 8080.
pub(super) fn port(given: Option<u16>) -> Result<u16, String> {
    match given {
        Some(port) => Ok(port),
        None => match std::env::var("MCP_SERVER_PORT") {
            Ok(text) => text
                .parse()
                .map_err(|_| format!("MCP_SERVER_PORT={text:?} is not a port")),
            Err(_) => Ok(DEFAULT_PORT),
        },
    }
}

pub async fn run(db_args: &DatabaseArgs, args: ServeArgs) -> Outcome {
    super::raise_open_file_limit();
    let port = port(args.port)?;
    let cors_origins = args
        .cors_origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| HeaderValue::from_str(o.trim()).map_err(|_| format!("bad CORS origin {o:?}")))
        .collect::<Result<Vec<_>, _>>()?;

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, port))
        .await
        .map_err(|e| format!("cannot listen on {}:{port}: {e}", args.host))?;
    let public_url = match &args.public_url {
        Some(url) => PublicUrl::parse(url)?,
        None => PublicUrl::local(listener.local_addr()?.port()),
    };
    let db = db_args.open(args.db_connections).await?;
    if let Some(streams) = crate::eventlog::rebuild::upgrade(&db.pool).await? {
        tracing::info!(
            streams,
            "projections rebuilt for this version of Switchboard"
        );
    }
    match db.cluster() {
        Some(cluster) => tracing::info!(
            "embedded PostgreSQL in {} (psql \"{}\")",
            cluster.pgdata().display(),
            cluster.url(crate::database::EMBEDDED_DATABASE)
        ),
        None => tracing::info!("using DATABASE_URL"),
    }
    let served = serve(&db, db_args, &args, cors_origins, public_url, listener).await;
    db.close().await;
    served?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    db: &crate::database::Database,
    db_args: &DatabaseArgs,
    args: &ServeArgs,
    cors_origins: Vec<HeaderValue>,
    public_url: PublicUrl,
    listener: tokio::net::TcpListener,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (keys, generated) = db_args.signing_keys(&args.keys)?;
    if generated {
        tracing::info!(
            "generated an Ed25519 signing key pair in {}",
            db_args.data_dir.display()
        );
    }
    tracing::info!(
        "tokens are verified with {:?} (keys from {})",
        keys.algorithm(),
        keys.source
    );
    if keys.can_sign() && !api_keys::any(&db.pool).await? {
        let user = Uuid::new_v4();
        let log = EventLog::new(db.pool.clone());
        let name = UserName::parse("name", "default").expect("a valid name");
        commands::create_user(&log, &commands::Context::system(user), name, None).await?;
        let (key, token) =
            api_keys::create(&db.pool, &keys, user, "default", Scope::Agent, None).await?;
        let link = web_sessions::create_link(&db.pool, user, DEFAULT_LINK_MINUTES).await?;
        println!(
            "\nFirst start: created API key {} for a default user {user}.\n\
             Use it as `Authorization: Bearer <key>`:\n\n{token}\n\n\
             Open the inbox with this sign-in link (it works once, for {DEFAULT_LINK_MINUTES} \
             minutes; `switchboard login-link --user {user}` makes another):\n\n{}\n",
            key.id,
            super::login_link::login_url(&public_url, &link.token),
        );
    }
    let (notify, generated) = args.notifications.config(&db_args.data_dir, &public_url)?;
    if generated {
        tracing::info!(
            "generated a VAPID key pair for web push in {}",
            db_args.data_dir.display()
        );
    }
    let auth = Arc::new(Authenticator::new(Arc::new(keys), db.pool.clone()));
    let mcp = mcp_config(args, &public_url)?;
    let config = Config {
        body_limit: args.body_limit,
        cors_origins,
        public_url,
        metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
        notify,
        mcp,
        idle_after: args.idle_after,
        abandoned_grace: args.withdraw_abandoned_after,
        oauth_allow_private: args.oauth_allow_private,
        ..Config::default()
    };
    let state = AppState(Arc::new(App::start(
        config,
        EventLog::with_notify(db.pool.clone(), args.notify),
        auth.clone(),
    )));
    let flusher = tokio::spawn({
        let auth = auth.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(15));
            loop {
                every.tick().await;
                auth.flush_last_used().await;
            }
        }
    });
    let shutdown = state.shutdown.clone();
    if let Some(cluster) = db.cluster() {
        tokio::spawn(supervise(cluster.watcher(), shutdown.clone()));
    }
    let app = app::router(state);
    let address = listener.local_addr()?;
    // Handlers first: a SIGTERM right after the address is printed must still shut down cleanly.
    let signalled = shutdown_signal()?;
    println!("Switchboard listening on http://{address}");
    let server = tokio::spawn(http::server::serve(listener, app, shutdown.clone()));
    signalled.await;
    // Parked long-polls and streams answer now, so that draining is quick.
    shutdown.cancel();
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        tracing::warn!(
            "requests still running after {} s; stopping anyway",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    flusher.abort();
    auth.flush_last_used().await;
    tracing::info!("stopped");
    Ok(())
}

/// The MCP endpoint's configuration, checked: a malformed host or origin stops the start
/// rather than being ignored, and a block limit hosts may not survive is warned about.
fn mcp_config(args: &ServeArgs, public_url: &PublicUrl) -> Result<McpConfig, String> {
    let block_limit = Duration::from_secs(args.mcp_block_seconds.max(1));
    if block_limit > mcp::SAFE_BLOCK_LIMIT {
        tracing::warn!(
            "--mcp-block-seconds {} is above {}: MCP hosts that do not reset their tool-call \
             timeout on progress notifications (Claude Desktop allows about 60 s) will fail \
             ask_question before it can answer \"pending\"",
            block_limit.as_secs(),
            mcp::SAFE_BLOCK_LIMIT.as_secs()
        );
    }
    let mut allowed_hosts = entries(&args.mcp_allowed_hosts);
    if allowed_hosts.iter().any(|h| h == "*") {
        allowed_hosts.clear();
    } else if args.public_url.is_some()
        && let Some(host) = public_url.host()
    {
        // The name the server is published under is a host it answers to.
        allowed_hosts.push(host);
    }
    for host in &allowed_hosts {
        HostRule::parse(host).map_err(|e| format!("--mcp-allowed-hosts: {e}"))?;
    }
    let origins = entries(&args.mcp_allowed_origins);
    for origin in origins.iter().filter(|o| *o != "*") {
        OriginRule::parse(origin).map_err(|e| format!("--mcp-allowed-origins: {e}"))?;
    }
    Ok(McpConfig {
        block_limit,
        permission_limit: Duration::from_secs(args.mcp_permission_seconds.max(1)),
        allowed_hosts,
        allowed_origins: (!origins.is_empty()).then_some(origins),
        ..McpConfig::default()
    })
}

/// The non-empty entries of a comma-separated list.
fn entries(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|entry| entry.trim().to_owned())
        .filter(|entry| !entry.is_empty())
        .collect()
}

/// How often the embedded cluster's postmaster is checked on.
const SUPERVISION_INTERVAL: Duration = Duration::from_secs(1);
/// Longest pause between attempts to restart it.
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(30);

/// Keep the embedded cluster running: a postmaster that died (killed, out of memory; a zombie
/// counts as dead) is started again, with growing pauses between failed attempts, and the
/// server, whose connections and LISTEN recover by themselves, carries on.
async fn supervise(
    cluster: crate::database::Cluster,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let cluster = Arc::new(cluster);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SUPERVISION_INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
        let watched = cluster.clone();
        if tokio::task::spawn_blocking(move || watched.is_running())
            .await
            .unwrap_or(true)
        {
            continue;
        }
        tracing::warn!(
            "the embedded PostgreSQL in {} is not running; starting it again",
            cluster.pgdata().display()
        );
        let mut pause = SUPERVISION_INTERVAL;
        loop {
            let restarting = cluster.clone();
            match tokio::task::spawn_blocking(move || restarting.start_again()).await {
                Ok(Ok(())) => {
                    tracing::info!("the embedded PostgreSQL is running again");
                    break;
                }
                Ok(Err(e)) => tracing::warn!(
                    "restarting the embedded PostgreSQL failed (next try in {} s): {e}",
                    pause.as_secs()
                ),
                Err(e) => tracing::warn!("restarting the embedded PostgreSQL failed: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => return,
            }
            pause = (pause * 2).min(MAX_RESTART_PAUSE);
        }
    }
}

/// How long in-flight requests get to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Install the SIGINT (Ctrl-C) and SIGTERM handlers; the future resolves at either.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
    })
}
