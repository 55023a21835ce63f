//! The process's one LISTEN connection, and the safety net behind it.
//!
//! The listener reads with `try_recv`, which reports a lost connection (`Ok(None)`) instead of
//! hiding it: notices sent while it was away are lost, so every waiter is woken to read again
//! and the API-key cache is cleared. If reconnecting fails the listener is rebuilt until the
//! database is back.
//!
//! A connection can also die silently (a NAT or a failover leaves it half-open: no error, no
//! notifications). So the listener makes a round trip on its own connection every
//! [`SAFETY_NET_INTERVAL`]; one that does not answer within [`ROUND_TRIP_LIMIT`] counts as
//! lost. The round trip is the safety net's own look, so liveness costs nothing extra.
//!
//! The safety net covers a commit whose NOTIFY never went out (the process that made it died in
//! between): it asks for the sessions that received events since its previous look, bounded
//! below by the oldest transaction then running, so nothing that commits late is missed. It
//! first compares the database's current snapshot with the one it saw last time: when no
//! transaction has started or ended since, nothing can have committed, and it reads no rows.
//! Idle, that is one tiny statement per process per interval, however many waiters and events
//! there are. On Citus transaction ids are each worker's own, so there the net follows the
//! tenants this process's waiters wait for, each by its sequence: one statement per interval
//! for their heads, one more per tenant with news.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgNotification};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Hub;
use super::notice::{self, EVENTS_CHANNEL, Notice, REBUILD_CHANNEL};
use crate::auth::Authenticator;
use crate::auth::api_keys::KEYS_CHANNEL;
use crate::auth::web_sessions;
use crate::eventlog::EventLog;
use crate::metrics;

/// How often the safety net looks for commits nobody announced: a lost NOTIFY is made good
/// within this (plus one query), well inside the 2 s promise, at well under one database
/// transaction per second.
pub const SAFETY_NET_INTERVAL: Duration = Duration::from_millis(1500);
/// A LISTEN connection that does not answer the safety net's round trip within this is
/// taken for dead (half-open) and replaced.
pub const ROUND_TRIP_LIMIT: Duration = Duration::from_secs(10);

/// Everything the listener keeps up to date.
#[derive(Clone)]
pub struct Listeners {
    pub hub: Arc<Hub>,
    pub auth: Arc<Authenticator>,
    pub log: EventLog,
    /// Interfaces' own channels (MCP cancellations), delivered as they come.
    pub subscribers: Vec<Subscriber>,
}

/// A channel an interface listens to on the process's one connection, and what to do with
/// each payload. Notices sent while the connection was lost are not replayed.
#[derive(Clone)]
pub struct Subscriber {
    pub channel: &'static str,
    pub deliver: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Listeners {
    fn dispatch(&self, notification: &PgNotification) {
        match notification.channel() {
            EVENTS_CHANNEL => {
                for notice in notice::decode(notification.payload()) {
                    self.hub.announce(notice);
                }
            }
            KEYS_CHANNEL => self
                .auth
                .invalidate(web_sessions::changed_credential(notification.payload())),
            REBUILD_CHANNEL => {
                let log = self.log.clone();
                tokio::spawn(async move { log.forget_all().await });
            }
            channel => {
                for subscriber in self.subscribers.iter().filter(|s| s.channel == channel) {
                    (subscriber.deliver)(notification.payload());
                }
            }
        }
    }

    /// Notices may have been missed.
    fn resync(&self) {
        self.auth.set_cache_live(true);
        self.hub.wake_all();
    }
}

/// Start the listener (with its safety net); it stops when `shutdown` is cancelled.
pub fn start(pool: PgPool, listeners: Listeners, shutdown: CancellationToken) {
    tokio::spawn(listen(pool, listeners, shutdown));
}

async fn listen(pool: PgPool, listeners: Listeners, shutdown: CancellationToken) {
    let mut failures = 0u32;
    let mut connected_before = false;
    let mut net = SafetyNet::default();
    while !shutdown.is_cancelled() {
        let mut listener = match connect(&pool, &listeners.subscribers).await {
            Ok(listener) => listener,
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!("LISTEN connection failed, retrying: {e}");
                }
                let pause = Duration::from_millis(100 * u64::from(failures.min(10)));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if failures > 0 {
            tracing::info!("LISTEN connection restored");
        }
        if std::mem::replace(&mut connected_before, true) {
            metrics::listener_reconnected();
        }
        failures = 0;
        if let Ok(citus) = crate::database::pool_is_citus(&pool).await {
            net.citus = citus;
        }
        // Whatever happened before this connection listened is unknown: read again.
        listeners.resync();
        let mut ticks = tokio::time::interval(SAFETY_NET_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                _ = ticks.tick() => {
                    let look = tokio::time::timeout(
                        ROUND_TRIP_LIMIT,
                        net.look(&mut listener, &listeners.hub),
                    );
                    match look.await {
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => {
                            tracing::warn!("LISTEN connection lost: {e}");
                        }
                        Err(_) => tracing::warn!(
                            "LISTEN connection lost: no answer within {} s",
                            ROUND_TRIP_LIMIT.as_secs()
                        ),
                    }
                    listeners.auth.set_cache_live(false);
                    failures = 1;
                    break;
                }
                _ = shutdown.cancelled() => return,
            };
            match received {
                Ok(Some(notification)) => listeners.dispatch(&notification),
                // The connection dropped. Reconnect here rather than inside `try_recv`, so
                // that waiters are woken once the database is back, not while it is down.
                Ok(None) => {
                    tracing::warn!("LISTEN connection lost");
                    listeners.auth.set_cache_live(false);
                    failures = 1;
                    break;
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!("LISTEN connection lost: {e}");
                    listeners.auth.set_cache_live(false);
                    break;
                }
            }
        }
    }
}

/// The listener's `application_name`, so operators (and tests) can tell it apart.
pub const APPLICATION_NAME: &str = "switchboard listener";

async fn connect(pool: &PgPool, subscribers: &[Subscriber]) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET application_name = '{APPLICATION_NAME}'"
    )))
    .execute(&mut listener)
    .await?;
    let theirs = subscribers.iter().map(|s| s.channel);
    listener
        .listen_all(
            [EVENTS_CHANNEL, KEYS_CHANNEL, REBUILD_CHANNEL]
                .into_iter()
                .chain(theirs),
        )
        .await?;
    Ok(listener)
}

/// The database's current snapshot (`xmin:xmax:running,...`): equal texts mean no
/// transaction that writes started or ended in between.
const SNAPSHOT: &str = "SELECT pg_current_snapshot()::text";

/// Sessions with events from transactions at or after `$1`, and the oldest transaction still
/// running now (the next look starts there). One statement, so one snapshot.
const RECENT: &str = "\
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)
SELECT horizon.xmin, e.tenant_id, e.stream_id, max(e.seq)
FROM horizon LEFT JOIN events e ON e.txid >= $1
GROUP BY horizon.xmin, e.tenant_id, e.stream_id";

type Recent = (i64, Option<Uuid>, Option<Uuid>, Option<i64>);

/// On Citus transaction ids are each worker's own, so there is no horizon across tenants: the
/// net follows each tenant someone here waits for by its sequence (gap-free, in commit order).
const TENANT_HEADS: &str = "\
SELECT tenant_id, max(seq) FROM events WHERE tenant_id = ANY($1) GROUP BY tenant_id";

/// The tenant's sessions with events after `$2`, and the newest of each.
const TENANT_RECENT: &str = "\
SELECT stream_id, max(seq) FROM events WHERE tenant_id = $1 AND seq > $2 GROUP BY stream_id";

/// A tenant first followed is looked at this far back (a waiter registered within the last
/// look's interval read the log itself before it; this covers the commits since).
const FIRST_LOOK_BACK: i64 = 64;

/// What the safety net saw last time.
#[derive(Default)]
struct SafetyNet {
    /// Transactions at or after this one may have events not yet looked at.
    horizon: Option<i64>,
    snapshot: Option<String>,
    /// The database is Citus: follow tenants ([`SafetyNet::look_per_tenant`]).
    citus: bool,
    /// On Citus, each followed tenant's head at the last look.
    heads: HashMap<Uuid, i64>,
}

impl SafetyNet {
    async fn look(&mut self, conn: &mut PgListener, hub: &Hub) -> Result<(), sqlx::Error> {
        if self.citus {
            return self.look_per_tenant(conn, hub).await;
        }
        let snapshot: String = sqlx::query_scalar(SNAPSHOT).fetch_one(&mut *conn).await?;
        if self.snapshot.as_ref() == Some(&snapshot) {
            return Ok(());
        }
        // The first look only fixes the horizon: earlier commits were announced or read already.
        let since = self.horizon.unwrap_or(i64::MAX);
        let rows: Vec<Recent> = sqlx::query_as(RECENT)
            .bind(since)
            .fetch_all(&mut *conn)
            .await?;
        for (xmin, tenant_id, session_id, seq) in rows {
            self.horizon = Some(self.horizon.map_or(xmin, |h| h.max(xmin)));
            if let (Some(tenant_id), Some(session_id), Some(seq)) = (tenant_id, session_id, seq)
                && hub.announce(Notice {
                    tenant_id,
                    session_id,
                    seq,
                })
            {
                metrics::safety_net_caught();
            }
        }
        // Taken before the look: whatever changed after it is seen by the next one.
        self.snapshot = Some(snapshot);
        Ok(())
    }

    /// One statement for the heads of the tenants waited for (its cost grows with them, not
    /// with their waiters), one more per tenant that has news.
    async fn look_per_tenant(
        &mut self,
        conn: &mut PgListener,
        hub: &Hub,
    ) -> Result<(), sqlx::Error> {
        let tenants = hub.watched_tenants();
        self.heads.retain(|t, _| tenants.binary_search(t).is_ok());
        if tenants.is_empty() {
            return Ok(());
        }
        let heads: Vec<(Uuid, i64)> = sqlx::query_as(TENANT_HEADS)
            .bind(&tenants)
            .fetch_all(&mut *conn)
            .await?;
        for (tenant_id, head) in heads {
            let known = self
                .heads
                .insert(tenant_id, head)
                .unwrap_or(head - FIRST_LOOK_BACK);
            if head <= known {
                continue;
            }
            let recent: Vec<(Uuid, i64)> = sqlx::query_as(TENANT_RECENT)
                .bind(tenant_id)
                .bind(known)
                .fetch_all(&mut *conn)
                .await?;
            for (session_id, seq) in recent {
                if hub.announce(Notice {
                    tenant_id,
                    session_id,
                    seq,
                }) {
                    metrics::safety_net_caught();
                }
            }
        }
        Ok(())
    }
}
