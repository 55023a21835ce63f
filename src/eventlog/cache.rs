//! What this process knows about each tenant's log: its head (last seq and hash), the
//! projection generation, and the projected state of streams it recently touched, behind one
//! async lock per tenant.
//!
//! The lock serialises this process's appends to a tenant, so they never race each other.
//! The knowledge is only ever a guess about the database: an append built on it is a single
//! statement that fails when another process appended in between or the projections were
//! rebuilt since (see `append.rs`), and the failure clears the guess. A correct guess saves
//! every read: the common append is one round trip.
//!
//! The knowledge is bounded in bytes, per tenant and for the whole process: states hold ids and
//! versions of unread messages and open questions, never their text, but a session's git diff can be large, so each
//! state is weighed ([`weight`]) and what does not fit is simply not remembered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use projections::{Account, SessionState};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use uuid::Uuid;

use super::chain::Hash;

/// Tenants remembered at once; beyond this, idle ones are forgotten.
const MAX_TENANTS: usize = 50_000;
/// Sessions remembered per tenant; beyond this the tenant's sessions are forgotten.
const MAX_SESSIONS: usize = 256;
/// Bytes of session state remembered per tenant.
const MAX_TENANT_BYTES: usize = 4 << 20;
/// Bytes of session state remembered by the whole process.
const MAX_TOTAL_BYTES: usize = 128 << 20;

/// Roughly what a remembered session state costs in memory.
pub fn weight(state: &Option<SessionState>) -> usize {
    const FIXED: usize = 256;
    const PER_UNREAD: usize = std::mem::size_of::<projections::InboxMessage>();
    const PER_QUESTION: usize = std::mem::size_of::<projections::Question>();
    match state {
        None => FIXED,
        Some(s) => {
            let c = &s.session.context;
            let context: usize = [&c.title, &c.project, &c.cwd, &c.branch, &c.host, &c.client]
                .iter()
                .map(|f| f.as_ref().map_or(0, String::len))
                .sum();
            FIXED
                + s.session.agent_type.len()
                + s.session.git_diff.as_ref().map_or(0, String::len)
                + context
                + s.inbox.len() * PER_UNREAD
                + s.questions.len() * PER_QUESTION
        }
    }
}

/// This process's knowledge of one tenant, valid as of `head`.
#[derive(Debug)]
pub struct TenantKnowledge {
    /// Last (seq, hash) known to be committed; `None` = unknown.
    pub head: Option<(i64, Hash)>,
    /// The projection generation the remembered states were read under.
    pub generation: Option<i64>,
    /// Session states as of `head`; `None` inside = known not to exist.
    pub sessions: HashMap<Uuid, Option<SessionState>>,
    /// The account as of `head`: `None` = unknown, `Some(None)` = not created.
    pub account: Option<Option<Account>>,
    /// What `sessions` weighs.
    bytes: usize,
    /// What every tenant's sessions weigh together.
    total: Arc<AtomicUsize>,
}

impl TenantKnowledge {
    fn new(total: Arc<AtomicUsize>) -> TenantKnowledge {
        TenantKnowledge {
            head: None,
            generation: None,
            sessions: HashMap::new(),
            account: None,
            bytes: 0,
            total,
        }
    }

    pub fn forget(&mut self) {
        self.head = None;
        self.generation = None;
        self.account = None;
        self.forget_sessions();
    }

    fn forget_sessions(&mut self) {
        self.sessions.clear();
        self.total.fetch_sub(self.bytes, Ordering::AcqRel);
        self.bytes = 0;
    }

    /// Record what a successful append proved current.
    pub fn learn(
        &mut self,
        head: (i64, Hash),
        generation: i64,
        sessions: impl IntoIterator<Item = (Uuid, Option<SessionState>)>,
        account: Option<Option<Account>>,
    ) {
        if self.generation != Some(generation) {
            self.forget();
        }
        self.head = Some(head);
        self.generation = Some(generation);
        if account.is_some() {
            self.account = account;
        }
        for (id, state) in sessions {
            if let Some(old) = self.sessions.remove(&id) {
                let old = weight(&old);
                self.bytes -= old;
                self.total.fetch_sub(old, Ordering::AcqRel);
            }
            let new = weight(&state);
            if self.sessions.len() >= MAX_SESSIONS || self.bytes + new > MAX_TENANT_BYTES {
                self.forget_sessions();
            }
            if new > MAX_TENANT_BYTES || self.total.load(Ordering::Acquire) + new > MAX_TOTAL_BYTES
            {
                // Too big to remember: the next append reads it again.
                continue;
            }
            self.bytes += new;
            self.total.fetch_add(new, Ordering::AcqRel);
            self.sessions.insert(id, state);
        }
    }
}

impl Drop for TenantKnowledge {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Per-tenant knowledge, each behind its own async lock.
#[derive(Debug, Default)]
pub struct Tenants {
    map: Mutex<HashMap<Uuid, Arc<AsyncMutex<TenantKnowledge>>>>,
    total: Arc<AtomicUsize>,
}

impl Tenants {
    /// Wait for this process's turn to append to `tenant_id`.
    pub async fn lock(&self, tenant_id: Uuid) -> OwnedMutexGuard<TenantKnowledge> {
        let entry = {
            let mut map = self.map.lock().expect("not poisoned");
            if map.len() >= MAX_TENANTS && !map.contains_key(&tenant_id) {
                // Forget tenants nobody is appending to right now.
                map.retain(|_, entry| Arc::strong_count(entry) > 1);
            }
            map.entry(tenant_id)
                .or_insert_with(|| {
                    Arc::new(AsyncMutex::new(TenantKnowledge::new(self.total.clone())))
                })
                .clone()
        };
        entry.lock_owned().await
    }

    /// Forget everything (the projections were rebuilt underneath us).
    pub async fn forget_all(&self) {
        let entries: Vec<_> = self
            .map
            .lock()
            .expect("not poisoned")
            .values()
            .cloned()
            .collect();
        for entry in entries {
            entry.lock().await.forget();
        }
    }

    /// Bytes of session state remembered now (for tests and metrics).
    pub fn remembered_bytes(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}
