//! The composition root: what every interface (REST, MCP, the inbox, the notifier) shares —
//! the log, the push hub, the authenticator, configuration and the shutdown signal — and the
//! one router that mounts the interfaces side by side. Interfaces depend on this module, never
//! on each other.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::eventlog::EventLog;
use crate::push::Hub;
use crate::push::listener::{self, Listeners};

/// Everything a request handler can reach.
pub struct App {
    pub config: Config,
    pub log: EventLog,
    pub auth: Arc<Authenticator>,
    pub hub: Arc<Hub>,
    /// Cancelled when the server begins to shut down: parked requests answer at once.
    pub shutdown: CancellationToken,
}

impl App {
    /// The app, with this process's LISTEN connection and safety net started (they stop on
    /// shutdown). Call inside the runtime.
    pub fn start(config: Config, log: EventLog, auth: Arc<Authenticator>) -> App {
        let app = App {
            config,
            log,
            auth,
            hub: Hub::new(),
            shutdown: CancellationToken::new(),
        };
        let listeners = Listeners {
            hub: app.hub.clone(),
            auth: app.auth.clone(),
            log: app.log.clone(),
        };
        listener::start(app.log.pool().clone(), listeners, app.shutdown.clone());
        app
    }
}

/// Shared handle to the [`App`].
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// How the server behaves, from the command line / environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest request body accepted.
    pub body_limit: usize,
    /// Origins allowed by CORS; empty means any origin.
    pub cors_origins: Vec<HeaderValue>,
    /// Longest silence on an event stream before a keep-alive comment.
    pub keep_alive: Duration,
    /// The MCP endpoint.
    pub mcp: crate::mcp::McpConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            body_limit: 2 * 1024 * 1024,
            cors_origins: Vec::new(),
            keep_alive: Duration::from_secs(10),
            mcp: crate::mcp::McpConfig::default(),
        }
    }
}

/// Every interface, mounted side by side (serve it with [`crate::http::server::serve`]).
pub fn router(state: AppState) -> Router {
    let mcp = crate::mcp::routes::<AppState>(state.clone());
    crate::http::router(state, mcp)
}
