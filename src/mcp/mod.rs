//! MCP: the agent tools over Streamable HTTP at `/mcp` (rmcp), and over stdio through
//! `switchboard mcp-stdio`, which forwards to a remote server's REST API.
//!
//! Every HTTP request carries its Bearer token and runs on a fresh handler, so any node can
//! serve any request. `initialize` opens an MCP session bound to the caller's tenant and
//! recorded in the database: a client that keeps its `Mcp-Session-Id` can cancel a call from
//! any node, and a client that never sends it is served just the same. A call the client
//! abandons (cancelled, or hung up) stops waiting at once, and an answer it took but could
//! not hand over goes back to the inbox for the agent's next call (`calls.rs`). Progress
//! notifications travel on the POST's own event stream.

mod calls;
mod endpoint;
mod guard;
mod sessions;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::app::AppState;
pub use calls::{CANCEL_CHANNEL, Calls};
pub use guard::{HostRule, OriginRule};
pub use tools::{ANSWER_META, AgentTools, PERMISSION_LIMIT, PROGRESS_INTERVAL};

/// Longest block limit that hosts which do not reset their timeout on progress (Claude
/// Desktop gives a tool call about 60 s) still survive.
pub const SAFE_BLOCK_LIMIT: Duration = Duration::from_secs(55);

/// How the MCP endpoint behaves.
#[derive(Clone, Debug)]
pub struct McpConfig {
    /// How long `ask_question` blocks before answering `pending`.
    pub block_limit: Duration,
    /// How long `permission_prompt` waits for a decision before denying.
    pub permission_limit: Duration,
    /// Longest silence towards a waiting client that asked for progress.
    pub progress_interval: Duration,
    /// `Host` headers accepted (DNS-rebinding guard; `host` or `host:port`); empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// `Origin` headers accepted (`scheme://host[:port]`, `:*` for any port; `*` for any
    /// origin). `None`: loopback origins and the public URL's. Requests without an `Origin`
    /// (anything but a browser) are not affected.
    pub allowed_origins: Option<Vec<String>>,
}

impl Default for McpConfig {
    fn default() -> McpConfig {
        McpConfig {
            block_limit: Duration::from_secs(50),
            permission_limit: PERMISSION_LIMIT,
            progress_interval: PROGRESS_INTERVAL,
            allowed_hosts: ["localhost", "127.0.0.1", "::1"]
                .map(str::to_owned)
                .to_vec(),
            allowed_origins: None,
        }
    }
}

/// `/mcp` and `/mcp/`, each request authenticated by its Bearer token.
pub fn routes<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    let mcp = &state.config.mcp;
    let backend: Arc<dyn crate::agent_api::AgentApi> =
        Arc::new(crate::agent_api::Local::of(&state));
    let tools = AgentTools::new(backend, mcp.block_limit, mcp.progress_interval, None)
        .with_permission_limit(mcp.permission_limit);
    endpoint::routes(state, tools)
}
