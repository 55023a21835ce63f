//! The command line: one file per subcommand. The operator's subcommands find the database
//! the same way (`--database-url`/`DATABASE_URL`, else the embedded cluster in `--data-dir`),
//! so they all work beside a running `serve`. The client subcommands (`ask`, `log`, `inbox`,
//! `reply`, `watch`, `hook`, `setup`, `mcp-stdio`) talk to a running server over REST instead
//! (`--url`/`SWITCHBOARD_URL`, `--api-key`/`SWITCHBOARD_API_KEY`).

mod ask;
mod audit;
mod bench;
mod hook;
mod import;
mod inbox;
mod keys;
mod log;
mod login_link;
mod mcp_stdio;
mod notify;
mod projections;
mod reply;
mod serve;
mod setup;
mod users;
mod verify;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::DatabaseArgs;
use crate::telemetry::LogFormat;

/// What a subcommand returns: Ok(exit code) or an error to print.
pub type Outcome = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "The server between AI agents and the people who supervise them"
)]
pub struct Cli {
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// How log lines on standard error look: text for people, json for log shippers.
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        value_enum,
        global = true,
        default_value_t
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (embedded PostgreSQL unless DATABASE_URL is set).
    Serve(serve::ServeArgs),
    /// Create, rename and list users (the people API keys act for).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Print a one-time link that signs a person in to the inbox.
    LoginLink(login_link::LoginLinkArgs),
    /// Rebuild the read models from the log, or check them against it.
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// Check the hash chains and sequences of the event log.
    Verify(verify::VerifyArgs),
    /// Write the event log as NDJSON on standard output.
    Export(audit::ExportArgs),
    /// Restore an export into an empty database (events, projections, verified chain).
    Replay(audit::ReplayArgs),
    /// Bring another system's history into the log (omnara's database).
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Ask a person a question; print the answer (exit 124 if --timeout runs out first).
    Ask(ask::AskArgs),
    /// Report a step; print the session id (reuse it as --session / SWITCHBOARD_SESSION).
    Log(log::LogArgs),
    /// List the questions waiting for an answer.
    Inbox(inbox::InboxArgs),
    /// Answer a session's question (the waiting agent receives it).
    Reply(reply::ReplyArgs),
    /// Follow the live event stream, across reconnects, printing every event once.
    Watch(watch::WatchArgs),
    /// Answer an agent host's hooks from Switchboard (permission requests, session events).
    #[command(subcommand)]
    Hook(hook::HookCommand),
    /// Attach a coding agent to a Switchboard server: its hooks and MCP server, in its settings.
    #[command(subcommand)]
    Setup(setup::SetupCommand),
    /// Speak MCP on stdin/stdout, forwarding to a remote server's REST API.
    McpStdio(mcp_stdio::McpStdioArgs),
    /// Notification channels and deliveries of a user.
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// Measure throughput and latency against a real PostgreSQL.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Every parked long-poll and open stream is a socket: allow as many as the hard limit does,
/// or, for a process allowed to raise it (root, `CAP_SYS_RESOURCE`), as many as the kernel lets
/// one process have (`fs.nr_open`, 1,048,576 by default).
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let kernel = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    if kernel > hard && setrlimit(Resource::RLIMIT_NOFILE, kernel, kernel).is_ok() {
        return;
    }
    if soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
    }
}

impl Cli {
    pub async fn run(self) -> Outcome {
        match self.command {
            Command::Serve(args) => serve::run(&self.db, args).await,
            Command::Users(command) => users::run(&self.db, command).await,
            Command::Keys(command) => keys::run(&self.db, command).await,
            Command::LoginLink(args) => login_link::run(&self.db, args).await,
            Command::Projections(command) => projections::run(&self.db, command).await,
            Command::Verify(args) => verify::run(&self.db, args).await,
            Command::Export(args) => audit::export(&self.db, args).await,
            Command::Replay(args) => audit::replay(&self.db, args).await,
            Command::Import(command) => import::run(&self.db, command).await,
            Command::Notify(command) => notify::run(&self.db, command).await,
            Command::Bench(command) => bench::run(&self.db, command).await,
            Command::Ask(args) => ask::run(args).await,
            Command::Log(args) => log::run(args).await,
            Command::Inbox(args) => inbox::run(args).await,
            Command::Reply(args) => reply::run(args).await,
            Command::Watch(args) => watch::run(args).await,
            Command::McpStdio(args) => mcp_stdio::run(args).await,
            Command::Hook(command) => hook::run(command).await,
            Command::Setup(command) => setup::run(command).await,
        }
    }
}
