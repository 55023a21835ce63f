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
use crate::notify::{Notifier, NotifyConfig};
use crate::push::Hub;
use crate::push::listener::{self, Listeners};

/// Everything a request handler can reach.
pub struct App {
    pub config: Config,
    pub log: EventLog,
    pub auth: Arc<Authenticator>,
    pub hub: Arc<Hub>,
    /// MCP tool calls in flight on this process, reachable by a cancellation from any node.
    pub mcp_calls: Arc<crate::mcp::Calls>,
    /// Notification channels and deliveries; its task delivers while the app runs.
    pub notifier: Arc<Notifier>,
    /// The OAuth clients connected apps sign in with (metadata documents are cached here).
    pub oauth_clients: Arc<crate::oauth::Clients>,
    /// Cancelled when the server begins to shut down: parked requests answer at once.
    pub shutdown: CancellationToken,
}

impl App {
    /// The app, with this process's LISTEN connection, safety net, notifier and question
    /// sweeper started (they stop on shutdown). Call inside the runtime.
    pub fn start(config: Config, log: EventLog, auth: Arc<Authenticator>) -> App {
        let notifier = Arc::new(
            Notifier::new(
                log.clone(),
                config.public_url.clone(),
                config.notify.clone(),
            )
            .with_keys(auth.shared_keys()),
        );
        let oauth_clients = Arc::new(crate::oauth::Clients::new(
            log.pool().clone(),
            crate::notify::outbound::Outbound::new(
                config.oauth_allow_private,
                crate::oauth::clients::FETCH_TIMEOUT,
                &config.notify.extra_roots,
            ),
        ));
        let hub = Hub::new();
        log.announce_locally(hub.clone());
        let app = App {
            oauth_clients,
            config,
            mcp_calls: crate::mcp::Calls::new(log.pool().clone()),
            log,
            auth,
            hub,
            notifier,
            shutdown: CancellationToken::new(),
        };
        let listeners = Listeners {
            hub: app.hub.clone(),
            auth: app.auth.clone(),
            log: app.log.clone(),
            subscribers: vec![app.mcp_calls.subscriber()],
        };
        listener::start(app.log.pool().clone(), listeners, app.shutdown.clone());
        crate::notify::start(&app);
        crate::sweeper::start(&app);
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
    /// Longest a client may take to send a request body (headers have their own limit).
    pub body_timeout: Duration,
    /// Origins allowed by CORS; empty means the public URL's origin only (same-origin).
    pub cors_origins: Vec<HeaderValue>,
    /// Longest silence on an event stream before a keep-alive comment.
    pub keep_alive: Duration,
    /// The MCP endpoint.
    pub mcp: crate::mcp::McpConfig,
    /// Where people reach this server (links in sign-in messages and notifications).
    pub public_url: PublicUrl,
    /// The Bearer token `GET /metrics` requires; `None` serves metrics to anyone.
    pub metrics_token: Option<String>,
    /// Notification delivery.
    pub notify: NotifyConfig,
    /// A session silent this long shows as idle.
    pub idle_after: Duration,
    /// A question whose wait was abandoned is withdrawn when nobody waits again this long.
    pub abandoned_grace: Duration,
    /// OAuth client metadata documents may be fetched from loopback and private addresses
    /// (`--oauth-allow-private`; the webhooks' `--notify-allow-private` does not extend to them:
    /// anyone, signed in or not, can make the server fetch one).
    pub oauth_allow_private: bool,
}

impl Config {
    /// Sessions whose last sign of life is before this are idle.
    pub fn idle_before(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() - self.idle_after
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            body_limit: 2 * 1024 * 1024,
            body_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            keep_alive: Duration::from_secs(10),
            mcp: crate::mcp::McpConfig::default(),
            public_url: PublicUrl::local(8080),
            metrics_token: None,
            notify: NotifyConfig::default(),
            idle_after: Duration::from_secs(15 * 60),
            abandoned_grace: Duration::from_secs(60),
            oauth_allow_private: false,
        }
    }
}

/// The URL people and their browsers use to reach this server (`--public-url`), for links and
/// for telling same-origin requests apart. An http(s) URL without query or fragment; a path
/// prefix is kept (a reverse proxy may mount the server under one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

impl PublicUrl {
    pub fn parse(text: &str) -> Result<PublicUrl, String> {
        let mut url = url::Url::parse(text.trim())
            .map_err(|e| format!("--public-url {text:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "--public-url {text:?} must be an http:// or https:// URL with a host"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(format!(
                "--public-url {text:?} must not have a query, a fragment or credentials"
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(PublicUrl(url))
    }

    /// `http://localhost:<port>/`, for a server nobody configured a public name for.
    pub fn local(port: u16) -> PublicUrl {
        PublicUrl::parse(&format!("http://localhost:{port}/")).expect("a local URL parses")
    }

    /// True when browsers reach the server over TLS (cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// `scheme://host[:port]`, as browsers send it in `Origin`.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    /// The absolute URL of `path` (relative to the public URL, e.g. `login/abc`).
    pub fn join(&self, path: &str) -> String {
        self.0
            .join(path.trim_start_matches('/'))
            .map(String::from)
            .unwrap_or_else(|_| format!("{}{}", self.0, path.trim_start_matches('/')))
    }

    /// `host[:port]`, as clients send it in `Host`.
    pub fn host(&self) -> Option<String> {
        let host = self.0.host_str()?;
        Some(match self.0.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        })
    }

    /// The host name (or address) people reach the server at.
    pub fn host_name(&self) -> &str {
        self.0.host_str().unwrap_or("localhost")
    }

    /// The path prefix the server is mounted under (`/` unless a proxy adds one).
    pub fn path(&self) -> &str {
        self.0.path()
    }

    /// What requests authenticated by the inbox cookie are checked against.
    pub fn site(&self) -> crate::auth::request::Site {
        crate::auth::request::Site {
            secure: self.is_https(),
            origin: self.origin(),
        }
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Every interface, mounted side by side (serve it with [`crate::http::server::serve`]).
/// `/` belongs to the inbox for browsers and to the REST service description otherwise.
pub fn router(state: AppState) -> Router {
    let mcp = crate::mcp::routes::<AppState>(state.clone());
    let inbox = crate::inbox::routes(crate::http::routes::service::service_info);
    crate::http::router(state, mcp.merge(inbox).merge(crate::oauth::routes()))
}

#[cfg(test)]
mod tests {
    use super::PublicUrl;

    #[test]
    fn public_urls_are_http_origins_with_a_path_prefix() {
        let url = PublicUrl::parse("https://sb.example.com/team").unwrap();
        assert!(url.is_https());
        assert_eq!(url.origin(), "https://sb.example.com");
        assert_eq!(url.join("login/x"), "https://sb.example.com/team/login/x");
        assert_eq!(PublicUrl::local(8080).join("/"), "http://localhost:8080/");
        assert!(PublicUrl::parse("ftp://x").is_err());
        assert!(PublicUrl::parse("http://x/?a=1").is_err());
        assert!(PublicUrl::parse("not a url").is_err());
    }
}
