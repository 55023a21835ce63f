//! Tool calls in flight, and the moment each one hands its result over.
//!
//! A call that took user messages (an answer, feedback) must either hand them to its client
//! or give them back; it must never do both. [`Call`] decides which, once: the tool asks
//! [`Call::hand_over`] just before it returns its result, and the HTTP layer
//! [`abandons`](Call::abandon) the call when the client cancels it or hangs up. Whichever
//! comes first wins. A cancellation that arrives after the hand-over changes nothing (the
//! result is on its way, and hosts also send cancellations for calls that already finished);
//! one that arrives before it stops the wait, or makes the tool give back what it took.
//!
//! A client cancels with `notifications/cancelled` in another POST, which may reach another
//! node. Calls made in an MCP session are therefore registered here by (session, request id):
//! a cancellation for a call this node does not hold is broadcast on
//! [`CANCEL_CHANNEL`] to every node, and the one that holds it abandons it. A cancellation
//! that overtakes its call is remembered for a short while, so the call, when it arrives, is
//! abandoned at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use uuid::Uuid;

use crate::push::listener::Subscriber;

/// Where cancellations for calls held by other nodes are announced.
pub const CANCEL_CHANNEL: &str = "switchboard_mcp_cancel";

/// How long a cancellation that arrived before its call is remembered.
const EARLY_CANCEL_TTL: Duration = Duration::from_secs(60);
/// At most this many early cancellations are remembered.
const MAX_EARLY_CANCELS: usize = 1024;
/// Request ids longer than this (as JSON) are not routed: no client uses such ids, and a
/// NOTIFY payload is limited to 8000 bytes.
const MAX_REQUEST_ID_LEN: usize = 512;

/// A request of an MCP session: the session and the request's JSON-RPC id, as JSON text
/// (`7` and `"7"` are different ids).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallId {
    pub session: Uuid,
    pub request: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    HandedOver,
    Abandoned,
}

/// One tool call: running, handed over, or abandoned by its client.
#[derive(Debug)]
pub struct Call {
    state: Mutex<State>,
    abandoned: CancellationToken,
}

impl Call {
    pub fn new() -> Arc<Call> {
        Arc::new(Call {
            state: Mutex::new(State::Running),
            abandoned: CancellationToken::new(),
        })
    }

    /// The result goes out now, unless the client abandoned the call first: `false` then,
    /// and whatever the call took is to be given back.
    pub fn hand_over(&self) -> bool {
        let mut state = self.state.lock().expect("call state");
        match *state {
            State::Running => {
                *state = State::HandedOver;
                true
            }
            State::HandedOver => true,
            State::Abandoned => false,
        }
    }

    /// The client gave up on the call (cancelled it, or hung up). No effect once the result
    /// was handed over.
    pub fn abandon(&self) {
        let mut state = self.state.lock().expect("call state");
        if *state == State::Running {
            *state = State::Abandoned;
            self.abandoned.cancel();
        }
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.is_cancelled()
    }

    /// Resolves when the client abandons the call.
    pub fn abandoned(&self) -> WaitForCancellationFutureOwned {
        self.abandoned.clone().cancelled_owned()
    }
}

/// This node's calls in MCP sessions, by id, and the cancellations that came early.
pub struct Calls {
    pool: PgPool,
    open: Mutex<HashMap<CallId, Weak<Call>>>,
    early: Mutex<VecDeque<(CallId, Instant)>>,
}

/// A registered call; dropping it (when its response is over) unregisters it.
pub struct Registration {
    calls: Arc<Calls>,
    id: CallId,
    pub call: Arc<Call>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut open = self.calls.open.lock().expect("calls");
        if open
            .get(&self.id)
            .is_some_and(|c| std::ptr::eq(c.as_ptr(), Arc::as_ptr(&self.call)))
        {
            open.remove(&self.id);
        }
    }
}

/// A cancellation on the wire: one request of a session, or (`request: None`) all of them,
/// when the session ends.
#[derive(Serialize, Deserialize)]
struct Cancellation {
    session: Uuid,
    request: Option<String>,
}

impl Calls {
    pub fn new(pool: PgPool) -> Arc<Calls> {
        Arc::new(Calls {
            pool,
            open: Mutex::default(),
            early: Mutex::default(),
        })
    }

    /// Where the process's LISTEN connection delivers cancellations from other nodes.
    pub fn subscriber(self: &Arc<Calls>) -> Subscriber {
        let calls = Arc::downgrade(self);
        Subscriber {
            channel: CANCEL_CHANNEL,
            deliver: Arc::new(move |payload| {
                let Some(calls) = calls.upgrade() else { return };
                match serde_json::from_str::<Cancellation>(payload) {
                    Ok(c) => {
                        calls.abandon_here(c.session, c.request.as_deref(), true);
                    }
                    Err(e) => tracing::warn!("malformed MCP cancellation notice: {e}"),
                }
            }),
        }
    }

    /// Register a call of a session on this node. A cancellation that came first abandons
    /// it at once.
    pub fn register(self: &Arc<Calls>, id: CallId) -> Registration {
        let call = Call::new();
        let cancelled_early = {
            let mut early = self.early.lock().expect("early cancellations");
            let found = early.iter().position(|(e, _)| *e == id);
            found.and_then(|at| early.remove(at)).is_some()
        };
        if cancelled_early {
            call.abandon();
        }
        self.open
            .lock()
            .expect("calls")
            .insert(id.clone(), Arc::downgrade(&call));
        Registration {
            calls: self.clone(),
            id,
            call,
        }
    }

    /// The client cancelled `request` of `session` (or, with `None`, ended the session):
    /// abandon the call here, or tell the node that holds it.
    pub async fn cancel(&self, session: Uuid, request: Option<&str>) {
        if request.is_some_and(|r| r.len() > MAX_REQUEST_ID_LEN) {
            return;
        }
        let found = self.abandon_here(session, request, false);
        if found && request.is_some() {
            return;
        }
        let notice = Cancellation {
            session,
            request: request.map(str::to_owned),
        };
        let payload = serde_json::to_string(&notice).expect("a cancellation serializes");
        if let Err(e) = sqlx::query(NOTIFY)
            .bind(CANCEL_CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await
        {
            tracing::warn!("could not announce an MCP cancellation to other nodes: {e}");
        }
    }

    /// Abandon the matching calls held here; `true` if there were any. A request cancelled
    /// by another node that is not here yet is remembered (`remember_early`).
    fn abandon_here(&self, session: Uuid, request: Option<&str>, remember_early: bool) -> bool {
        let matching: Vec<Arc<Call>> = {
            let open = self.open.lock().expect("calls");
            open.iter()
                .filter(|(id, _)| id.session == session && request.is_none_or(|r| id.request == r))
                .filter_map(|(_, call)| call.upgrade())
                .collect()
        };
        for call in &matching {
            call.abandon();
        }
        if let (true, true, Some(request)) = (matching.is_empty(), remember_early, request) {
            let mut early = self.early.lock().expect("early cancellations");
            let now = Instant::now();
            while early
                .front()
                .is_some_and(|(_, at)| now.duration_since(*at) > EARLY_CANCEL_TTL)
                || early.len() >= MAX_EARLY_CANCELS
            {
                early.pop_front();
            }
            early.push_back((
                CallId {
                    session,
                    request: request.to_owned(),
                },
                now,
            ));
        }
        !matching.is_empty()
    }
}

const NOTIFY: &str = "SELECT pg_notify($1, $2)";

#[cfg(test)]
mod tests {
    use super::Call;

    #[test]
    fn a_call_is_handed_over_or_abandoned_never_both() {
        let handed = Call::new();
        assert!(handed.hand_over());
        handed.abandon();
        assert!(
            !handed.is_abandoned(),
            "a late cancellation changes nothing"
        );
        assert!(handed.hand_over());

        let abandoned = Call::new();
        abandoned.abandon();
        assert!(abandoned.is_abandoned());
        assert!(!abandoned.hand_over());
    }
}
