//! `switchboard mcp-stdio`: MCP on stdin/stdout for clients that only launch local servers,
//! forwarding every tool to a remote Switchboard over REST (answers arrive by long-poll).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rmcp::ServiceExt;

use super::Outcome;
use crate::agent_api::Remote;
use crate::config::ServerArgs;
use crate::mcp::{AgentTools, PROGRESS_INTERVAL};

#[derive(Args, Debug)]
pub struct McpStdioArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// Agent type for new sessions (default: recognised from the MCP client's name).
    #[arg(long, env = "SWITCHBOARD_CLIENT_TYPE")]
    agent_type: Option<String>,

    /// Seconds `ask_question` blocks before answering "pending".
    #[arg(long, default_value_t = 50)]
    block_seconds: u64,

    /// Seconds `permission_prompt` waits for a decision before denying the call.
    #[arg(long, default_value_t = 300)]
    permission_seconds: u64,
}

pub async fn run(args: McpStdioArgs) -> Outcome {
    let remote = Remote::new(args.server.client("mcp-stdio")?);
    let tools = AgentTools::new(
        Arc::new(remote),
        Duration::from_secs(args.block_seconds.max(1)),
        PROGRESS_INTERVAL,
        args.agent_type.filter(|t| !t.trim().is_empty()),
    )
    .with_permission_limit(Duration::from_secs(args.permission_seconds.max(1)))
    .for_one_connection();
    let running = tools
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP over stdio did not start: {e}"))?;
    running.waiting().await?;
    Ok(ExitCode::SUCCESS)
}
