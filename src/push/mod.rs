//! Push: waking whoever waits for a session the moment its news is committed, on any node.
//!
//! ```text
//! commit ──► NOTIFY switchboard_events 'tenant:session:seq;…'   (ids only)
//!               │
//!   one LISTEN connection per process (listener.rs, with a safety net)
//!               │
//!   Hub: session → waiters, tenant → stream subscribers (hub.rs)
//!               │
//!   long-poll / SSE / MCP ask_question read the log again and answer
//! ```

pub mod hub;
pub mod listener;
pub mod notice;

pub use hub::{Hub, Watch};
pub use notice::Notice;
