//! Where the process's log lines go, and how they look: standard error, one line per event,
//! as text for people (colour only on a terminal) or as JSON objects for log shippers.
//!
//! The default filter keeps Switchboard's own lines at INFO and libraries at WARN: sqlx logs
//! every slow statement and rmcp every tool call at INFO, which drowns the one line per
//! request that matters. rmcp's service loop is silenced altogether: at `/mcp` every request
//! is its own short-lived service, and when its client hangs up mid-call (an agent
//! interrupted) rmcp reports the undeliverable answer as an ERROR, while it is as ordinary as
//! any other client going away. `RUST_LOG` replaces the filter entirely.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,sqlx=warn,rmcp=warn,rmcp::service=off";

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `time LEVEL target: message key=value ...`
    #[default]
    Text,
    /// One JSON object per line, its fields at the top level.
    Json,
}

/// Install the process's logger. Call once, before anything logs.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
