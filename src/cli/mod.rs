//! The command line: one file per subcommand. Every subcommand finds the database the same
//! way (`--database-url`/`DATABASE_URL`, else the embedded cluster in `--data-dir`), so they
//! all work beside a running `serve`.

mod audit;
mod bench;
mod keys;
mod mcp_stdio;
mod notify;
mod projections;
mod serve;
mod users;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::DatabaseArgs;

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
    /// Rebuild the read models from the log, or check them against it.
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// Check the hash chains and sequences of the event log.
    Verify(verify::VerifyArgs),
    /// Write the event log as NDJSON on standard output.
    Export(audit::ExportArgs),
    /// Restore an export into an empty database (events, projections, verified chain).
    Replay(audit::ReplayArgs),
    /// Speak MCP on stdin/stdout, forwarding to a remote server's REST API.
    McpStdio(mcp_stdio::McpStdioArgs),
    /// Notification channels and deliveries of a user.
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// Measure throughput and latency against a real PostgreSQL.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Every parked long-poll and open stream is a socket: allow as many as the hard limit does.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
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
            Command::Projections(command) => projections::run(&self.db, command).await,
            Command::Verify(args) => verify::run(&self.db, args).await,
            Command::Export(args) => audit::export(&self.db, args).await,
            Command::Replay(args) => audit::replay(&self.db, args).await,
            Command::Notify(command) => notify::run(&self.db, command).await,
            Command::Bench(command) => bench::run(&self.db, command).await,
            Command::McpStdio(args) => mcp_stdio::run(args).await,
        }
    }
}
