//! In-process fan-out: who waits for which session, and for which tenant.
//!
//! Waiters never receive content, only a nudge: "something new, look again". The pattern is
//! always register → read the log → sleep until nudged → read again, so a notice that arrives
//! between the read and the sleep is not lost (the watch remembers it was nudged), and a waiter
//! can never be nudged into a wrong answer, only into one more read.
//!
//! Each session and tenant has a `watch` channel holding the highest sequence number announced
//! for it and a resync epoch. Each waiter remembers the newest sequence number it has read
//! ([`Watch::observe`]), so repeated announcements (NOTIFY and the safety net both report a
//! commit) and announcements of what it already read cost it no extra read; a resync (the
//! LISTEN connection was lost) wakes everyone. Entries disappear with their last waiter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use uuid::Uuid;

use super::notice::Notice;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Session(Uuid, Uuid),
    Tenant(Uuid),
    /// Every tenant: the notifier, which consumes the whole log.
    Any,
}

/// Highest sequence number announced, and how many resyncs there have been.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct News {
    seq: i64,
    epoch: u64,
}

#[derive(Debug, Default)]
pub struct Hub {
    watches: Mutex<HashMap<Key, watch::Sender<News>>>,
}

/// One registered waiter. Dropping it unregisters.
#[derive(Debug)]
pub struct Watch {
    hub: Arc<Hub>,
    key: Key,
    receiver: watch::Receiver<News>,
    /// What this waiter has already read or been woken for.
    seen: News,
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

    /// Register for news of any tenant's sessions.
    pub fn watch_all(self: &Arc<Self>) -> Watch {
        self.watch(Key::Any)
    }

    fn watch(self: &Arc<Self>, key: Key) -> Watch {
        let mut watches = self.watches.lock().expect("not poisoned");
        let sender = watches
            .entry(key)
            .or_insert_with(|| watch::channel(News::default()).0);
        let receiver = sender.subscribe();
        let seen = News {
            seq: 0,
            epoch: receiver.borrow().epoch,
        };
        Watch {
            hub: self.clone(),
            key,
            receiver,
            seen,
        }
    }

    /// A commit happened: nudge the session's and the tenant's waiters, unless this sequence
    /// number (or a later one) was announced already, and the watchers of every tenant. True
    /// when it was news to a waiter of the session or tenant.
    pub fn announce(&self, notice: Notice) -> bool {
        let watches = self.watches.lock().expect("not poisoned");
        let mut news_to_someone = false;
        for key in [
            Key::Session(notice.tenant_id, notice.session_id),
            Key::Tenant(notice.tenant_id),
        ] {
            if let Some(sender) = watches.get(&key) {
                news_to_someone |= sender.send_if_modified(|news| {
                    let later = notice.seq > news.seq;
                    if later {
                        news.seq = notice.seq;
                    }
                    later
                });
            }
        }
        // Sequence numbers are per tenant, so they say nothing across tenants: every notice
        // is news (a waiter that has not waited since sees several as one).
        if let Some(sender) = watches.get(&Key::Any) {
            sender.send_modify(|news| news.seq += 1);
        }
        news_to_someone
    }

    /// Notices may have been missed (the listener reconnected): everyone reads again.
    pub fn wake_all(&self) {
        let watches = self.watches.lock().expect("not poisoned");
        for sender in watches.values() {
            sender.send_modify(|news| news.epoch += 1);
        }
    }

    /// The tenants someone here waits for (the safety net on Citus looks at these).
    pub fn watched_tenants(&self) -> Vec<Uuid> {
        let watches = self.watches.lock().expect("not poisoned");
        let mut tenants: Vec<Uuid> = watches
            .keys()
            .filter_map(|key| match key {
                Key::Session(tenant_id, _) | Key::Tenant(tenant_id) => Some(*tenant_id),
                Key::Any => None,
            })
            .collect();
        tenants.sort_unstable();
        tenants.dedup();
        tenants
    }

    /// Registered waiters of sessions and tenants (parked requests and streams; the
    /// notifier's watch on every tenant is not one), for tests and metrics.
    pub fn waiters(&self) -> usize {
        let watches = self.watches.lock().expect("not poisoned");
        watches
            .iter()
            .filter(|(key, _)| **key != Key::Any)
            .map(|(_, sender)| sender.receiver_count())
            .sum()
    }
}

impl Watch {
    /// This waiter has read everything up to `seq`: announcements up to it are not news.
    pub fn observe(&mut self, seq: i64) {
        self.seen.seq = self.seen.seq.max(seq);
    }

    /// Wait until there is news for this waiter: a later sequence number than it has seen,
    /// or a resync. Returns at once if that happened since registering or the last wait.
    pub async fn changed(&mut self) {
        loop {
            let news = *self.receiver.borrow_and_update();
            if news.seq > self.seen.seq || news.epoch != self.seen.epoch {
                self.seen = News {
                    seq: self.seen.seq.max(news.seq),
                    epoch: news.epoch,
                };
                return;
            }
            // The sender lives in the hub's map for as long as this receiver does.
            if self.receiver.changed().await.is_err() {
                return;
            }
        }
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
    use std::time::Duration;

    use super::*;

    fn notice(tenant: Uuid, session: Uuid, seq: i64) -> Notice {
        Notice {
            tenant_id: tenant,
            session_id: session,
            seq,
        }
    }

    async fn woken(watch: &mut Watch) -> bool {
        tokio::time::timeout(Duration::from_millis(50), watch.changed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_nudge_between_read_and_wait_is_not_lost() {
        let hub = Hub::new();
        let (tenant, session) = (Uuid::new_v4(), Uuid::new_v4());
        let mut waiter = hub.watch_session(tenant, session);
        hub.announce(notice(tenant, session, 1));
        assert!(woken(&mut waiter).await);
    }

    #[tokio::test]
    async fn repeated_announcements_wake_once_and_others_not_at_all() {
        let hub = Hub::new();
        let (tenant, session) = (Uuid::new_v4(), Uuid::new_v4());
        let mut mine = hub.watch_session(tenant, session);
        let mut other = hub.watch_session(tenant, Uuid::new_v4());
        let mut all = hub.watch_tenant(tenant);
        hub.announce(notice(tenant, session, 5));
        assert!(woken(&mut mine).await);
        assert!(woken(&mut all).await);
        hub.announce(notice(tenant, session, 5));
        hub.announce(notice(tenant, session, 4));
        assert!(!woken(&mut mine).await);
        assert!(!woken(&mut other).await);
        hub.wake_all();
        assert!(woken(&mut other).await);
    }

    #[tokio::test]
    async fn what_a_waiter_has_read_is_not_news_to_it_but_still_is_to_slower_readers() {
        let hub = Hub::new();
        let (tenant, session) = (Uuid::new_v4(), Uuid::new_v4());
        let mut quick = hub.watch_session(tenant, session);
        let mut slow = hub.watch_session(tenant, session);
        quick.observe(10);
        slow.observe(9);
        hub.announce(notice(tenant, session, 10));
        assert!(!woken(&mut quick).await);
        assert!(woken(&mut slow).await);
        hub.announce(notice(tenant, session, 11));
        assert!(woken(&mut quick).await);
    }

    #[tokio::test]
    async fn a_watch_on_every_tenant_hears_each_of_them() {
        let hub = Hub::new();
        let mut all = hub.watch_all();
        assert_eq!(hub.waiters(), 0, "the notifier is no parked request");
        hub.announce(notice(Uuid::new_v4(), Uuid::new_v4(), 7));
        assert!(woken(&mut all).await);
        assert!(!woken(&mut all).await);
        hub.announce(notice(Uuid::new_v4(), Uuid::new_v4(), 1));
        hub.announce(notice(Uuid::new_v4(), Uuid::new_v4(), 1));
        assert!(woken(&mut all).await);
        assert!(!woken(&mut all).await);
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
