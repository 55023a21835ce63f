//! Switchboard: the server between AI agents and the people who supervise them.
//!
//! The tree follows the data: `eventlog` (the append-only, hash-chained log and the inline
//! projection update) → `commands` (the one domain API) → the interfaces (`http` for REST,
//! `mcp`, `agents` for coding agents' hooks, `inbox` for people), which share what `app`
//! composes (`agent_api` is what MCP tools and hooks need) and never reach into each other.
//! Read models live in the `projections` crate; `push` wakes waiters; `notify` consumes the log
//! into notifications for people (webhooks, email, web push); `sweeper` expires questions and
//! withdraws those nobody waits for any more; `database` finds or provisions
//! PostgreSQL; `auth` says who is calling; `wire` holds the JSON shapes clients see.

pub mod agent_api;
pub mod agents;
pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod database;
pub mod domain;
pub mod eventlog;
pub mod http;
pub mod import;
pub mod inbox;
pub mod mcp;
pub mod metrics;
pub mod notify;
pub mod oauth;
pub mod push;
pub mod sweeper;
pub mod telemetry;
pub mod timestamp;
pub mod wire;
