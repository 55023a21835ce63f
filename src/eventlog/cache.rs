//! What this process knows about each tenant's log: its head (last seq and hash) and the
//! projected state of sessions it recently touched, behind one async lock per tenant.
//!
//! The lock serialises this process's appends to a tenant, so they never race each other.
//! The knowledge is only ever a guess about the database: an append built on it is a single
//! statement that fails with a unique violation when another process appended in between
//! (see `append.rs`), and the failure clears the guess. A correct guess saves every read: the
//! common append is one round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use projections::SessionState;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use uuid::Uuid;

use super::chain::Hash;

/// Tenants remembered at once; beyond this, idle ones are forgotten.
const MAX_TENANTS: usize = 50_000;
/// Sessions remembered per tenant; beyond this the tenant's sessions are forgotten.
const MAX_SESSIONS: usize = 256;

/// This process's knowledge of one tenant, valid as of `head`.
#[derive(Debug, Default)]
pub struct TenantKnowledge {
    /// Last (seq, hash) known to be committed; `None` = unknown.
    pub head: Option<(i64, Hash)>,
    /// Session states as of `head`; `None` inside = known not to exist.
    pub sessions: HashMap<Uuid, Option<SessionState>>,
}

impl TenantKnowledge {
    pub fn forget(&mut self) {
        self.head = None;
        self.sessions.clear();
    }

    /// Record what a successful append proved current.
    pub fn learn(
        &mut self,
        head: (i64, Hash),
        sessions: impl IntoIterator<Item = (Uuid, Option<SessionState>)>,
    ) {
        self.head = Some(head);
        for (id, state) in sessions {
            if self.sessions.len() >= MAX_SESSIONS && !self.sessions.contains_key(&id) {
                self.sessions.clear();
            }
            self.sessions.insert(id, state);
        }
    }
}

/// Per-tenant knowledge, each behind its own async lock.
#[derive(Debug, Default)]
pub struct Tenants {
    map: Mutex<HashMap<Uuid, Arc<AsyncMutex<TenantKnowledge>>>>,
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
            map.entry(tenant_id).or_default().clone()
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
}
