//! Switchboard: the server between AI agents and the people who supervise them.
//!
//! The tree follows the data: `eventlog` (the append-only, hash-chained log and the inline
//! projection update) → `commands` (the one domain API) → `http` (the interface). Read models
//! live in the `projections` crate; `database` finds or provisions PostgreSQL; `auth` says
//! who is calling.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod database;
pub mod domain;
pub mod eventlog;
pub mod http;
pub mod mcp;
pub mod push;
pub mod timestamp;
