//! In-process fan-out: who waits for which session, and for which tenant.
//!
//! Waiters never receive content, only a nudge: "something new, look again". The pattern is
//! always register → read the log → sleep until nudged → read again, so a notice that arrives
//! between the read and the sleep is not lost (the watch remembers it was nudged), and a waiter
//! can never be nudged into a wrong answer, only into one more read.
//!
//! Each session and tenant has a `watch` channel holding the highest sequence number announced
//! for it; a repeated announcement (NOTIFY and the safety net both report a commit) wakes no
//! one twice. Entries disappear with their last waiter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use uuid::Uuid;

use super::notice::Notice;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Session(Uuid, Uuid),
    Tenant(Uuid),
}

#[derive(Debug, Default)]
pub struct Hub {
    watches: Mutex<HashMap<Key, watch::Sender<i64>>>,
}

/// One registered waiter. Dropping it unregisters.
#[derive(Debug)]
pub struct Watch {
    hub: Arc<Hub>,
    key: Key,
    receiver: watch::Receiver<i64>,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Register for news of one session. Register before reading, then wait.
    pub fn watch_session(self: &Arc<Self>, tenant_id: Uuid, session_id: Uuid) -> Watch {
        self.watch(Key::Session(tenant_id, session_id))
    }

    /// Register for news of any of the tenant's sessions.
    pub fn watch_tenant(self: &Arc<Self>, tenant_id: Uuid) -> Watch {
        self.watch(Key::Tenant(tenant_id))
    }

    fn watch(self: &Arc<Self>, key: Key) -> Watch {
        let mut watches = self.watches.lock().expect("not poisoned");
        let sender = watches.entry(key).or_insert_with(|| watch::channel(0).0);
        Watch {
            hub: self.clone(),
            key,
            receiver: sender.subscribe(),
        }
    }

    /// A commit happened: nudge the session's and the tenant's waiters, unless they have
    /// already been nudged for this sequence number or a later one.
    pub fn announce(&self, notice: Notice) {
        let watches = self.watches.lock().expect("not poisoned");
        for key in [
            Key::Session(notice.tenant_id, notice.session_id),
            Key::Tenant(notice.tenant_id),
        ] {
            if let Some(sender) = watches.get(&key) {
                sender.send_if_modified(|seen| {
                    let news = notice.seq > *seen;
                    if news {
                        *seen = notice.seq;
                    }
                    news
                });
            }
        }
    }

    /// Notices may have been missed (the listener reconnected): everyone reads again.
    pub fn wake_all(&self) {
        let watches = self.watches.lock().expect("not poisoned");
        for sender in watches.values() {
            sender.send_modify(|_| {});
        }
    }

    /// Registered waiters, for tests and metrics.
    pub fn waiters(&self) -> usize {
        let watches = self.watches.lock().expect("not poisoned");
        watches.values().map(watch::Sender::receiver_count).sum()
    }
}

impl Watch {
    /// Wait until nudged (at once if nudged since registering or since the last wait).
    pub async fn changed(&mut self) {
        // The sender lives in the hub's map for as long as this receiver does.
        let _ = self.receiver.changed().await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watches = self.hub.watches.lock().expect("not poisoned");
        // This receiver still counts; it is the last one when the count is 1.
        if watches
            .get(&self.key)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            watches.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(tenant: Uuid, session: Uuid, seq: i64) -> Notice {
        Notice {
            tenant_id: tenant,
            session_id: session,
            seq,
        }
    }

    #[tokio::test]
    async fn a_nudge_between_read_and_wait_is_not_lost() {
        let hub = Hub::new();
        let (tenant, session) = (Uuid::new_v4(), Uuid::new_v4());
        let mut waiter = hub.watch_session(tenant, session);
        hub.announce(notice(tenant, session, 1));
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter.changed())
            .await
            .expect("woken");
    }

    #[tokio::test]
    async fn repeated_announcements_wake_once_and_others_not_at_all() {
        let hub = Hub::new();
        let (tenant, session) = (Uuid::new_v4(), Uuid::new_v4());
        let mut mine = hub.watch_session(tenant, session);
        let mut other = hub.watch_session(tenant, Uuid::new_v4());
        let mut all = hub.watch_tenant(tenant);
        hub.announce(notice(tenant, session, 5));
        mine.changed().await;
        all.changed().await;
        hub.announce(notice(tenant, session, 5));
        hub.announce(notice(tenant, session, 4));
        let quick = std::time::Duration::from_millis(50);
        assert!(tokio::time::timeout(quick, mine.changed()).await.is_err());
        assert!(tokio::time::timeout(quick, other.changed()).await.is_err());
        hub.wake_all();
        other.changed().await;
    }

    #[test]
    fn waiters_unregister_when_dropped() {
        let hub = Hub::new();
        let (tenant, session) = (Uuid::new_v4(), Uuid::new_v4());
        let a = hub.watch_session(tenant, session);
        let b = hub.watch_session(tenant, session);
        let c = hub.watch_tenant(tenant);
        assert_eq!(hub.waiters(), 3);
        drop(a);
        assert_eq!(hub.waiters(), 2);
        drop((b, c));
        assert_eq!(hub.waiters(), 0);
        assert!(hub.watches.lock().unwrap().is_empty());
    }
}
