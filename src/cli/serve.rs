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
use crate::auth::{Authenticator, api_keys};
use crate::commands::{self, Scope};
use crate::config::{DatabaseArgs, KeyArgs, NotifyArgs};
use crate::domain::UserName;
use crate::eventlog::{EventLog, NotifyMode};
use crate::http;
use crate::mcp::McpConfig;

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

    /// Comma-separated origins allowed by CORS (default: any origin).
    #[arg(long, env = "SWITCHBOARD_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,

    /// Database connections this process may hold.
    #[arg(long, env = "SWITCHBOARD_DB_CONNECTIONS", default_value_t = 32)]
    db_connections: u32,

    /// Seconds an MCP `ask_question` blocks before answering "pending" (the agent then calls
    /// `wait_for_answer`). Keep it below your MCP client's tool-call timeout.
    #[arg(long, env = "SWITCHBOARD_MCP_BLOCK_SECONDS", default_value_t = 50)]
    mcp_block_seconds: u64,

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

    /// The URL people reach this server at (`https://switchboard.example.com`), used in
    /// sign-in and notification links; default `http://localhost:<port>`.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    public_url: Option<String>,

    /// Where commits are announced to waiting agents (see `switchboard bench push`).
    #[arg(long, env = "SWITCHBOARD_NOTIFY", value_enum, default_value_t = NotifyMode::default())]
    notify: NotifyMode,
}

const DEFAULT_PORT: u16 = 8080;

pub async fn run(db_args: &DatabaseArgs, args: ServeArgs) -> Outcome {
    super::raise_open_file_limit();
    let port = match args.port {
        Some(port) => port,
        None => match std::env::var("MCP_SERVER_PORT") {
            Ok(text) => text
                .parse()
                .map_err(|_| format!("MCP_SERVER_PORT={text:?} is not a port"))?,
            Err(_) => DEFAULT_PORT,
        },
    };
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
        println!(
            "\nFirst start: created API key {} for a default user {user}.\n\
             Use it as `Authorization: Bearer <key>`:\n\n{token}\n",
            key.id
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
    let config = Config {
        body_limit: args.body_limit,
        cors_origins,
        public_url,
        notify,
        mcp: McpConfig {
            block_limit: Duration::from_secs(args.mcp_block_seconds.max(1)),
            allowed_hosts: allowed_hosts(&args.mcp_allowed_hosts),
            ..McpConfig::default()
        },
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
    let app = app::router(state);
    let address = listener.local_addr()?;
    println!("Switchboard listening on http://{address}");
    let server = tokio::spawn(http::server::serve(listener, app, shutdown.clone()));
    shutdown_signal().await;
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

/// The configured hosts; any `*` means every host is accepted (an empty list).
fn allowed_hosts(hosts: &[String]) -> Vec<String> {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.iter().any(|h| h == "*") {
        return Vec::new();
    }
    hosts
}

/// How long in-flight requests get to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
