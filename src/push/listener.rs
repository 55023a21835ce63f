//! The process's one LISTEN connection, and the safety net behind it.
//!
//! The listener reads with `try_recv`, which reports a lost connection (`Ok(None)`) instead of
//! hiding it: notices sent while it was away are lost, so every waiter is woken to read again
//! and the API-key cache is cleared. If reconnecting fails the listener is rebuilt until the
//! database is back.
//!
//! The safety net covers a commit whose NOTIFY never went out (the process that made it died in
//! between): once a second it asks for the sessions that received events since its previous
//! look, bounded below by the oldest transaction then running, so nothing that commits late is
//! missed. One small query per process per second, however many waiters there are.

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
use crate::eventlog::EventLog;

/// How often the safety net looks for commits nobody announced: a lost NOTIFY is made good
/// within this (plus one query), well inside the 2 s promise, at well under one database
/// transaction per second.
pub const SAFETY_NET_INTERVAL: Duration = Duration::from_millis(1500);

/// Everything the listener keeps up to date.
#[derive(Clone)]
pub struct Listeners {
    pub hub: Arc<Hub>,
    pub auth: Arc<Authenticator>,
    pub log: EventLog,
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
                .invalidate(Uuid::try_parse(notification.payload()).ok()),
            REBUILD_CHANNEL => {
                let log = self.log.clone();
                tokio::spawn(async move { log.forget_all().await });
            }
            _ => {}
        }
    }

    /// Notices may have been missed.
    fn resync(&self) {
        self.auth.set_cache_live(true);
        self.hub.wake_all();
    }
}

/// Start the listener and the safety net; both stop when `shutdown` is cancelled.
pub fn start(pool: PgPool, listeners: Listeners, shutdown: CancellationToken) {
    tokio::spawn(listen(pool.clone(), listeners.clone(), shutdown.clone()));
    tokio::spawn(safety_net(pool, listeners.hub, shutdown));
}

async fn listen(pool: PgPool, listeners: Listeners, shutdown: CancellationToken) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let mut listener = match connect(&pool).await {
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
        failures = 0;
        // Whatever happened before this connection listened is unknown: read again.
        listeners.resync();
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
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

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([EVENTS_CHANNEL, KEYS_CHANNEL, REBUILD_CHANNEL])
        .await?;
    Ok(listener)
}

/// Sessions with events from transactions at or after `$1`, and the oldest transaction still
/// running now (the next look starts there). One statement, so one snapshot.
const RECENT: &str = "\
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)
SELECT horizon.xmin, e.tenant_id, e.stream_id, max(e.seq)
FROM horizon LEFT JOIN events e ON e.txid >= $1
GROUP BY horizon.xmin, e.tenant_id, e.stream_id";

type Recent = (i64, Option<Uuid>, Option<Uuid>, Option<i64>);

async fn safety_net(pool: PgPool, hub: Arc<Hub>, shutdown: CancellationToken) {
    let mut horizon: Option<i64> = None;
    let mut ticks = tokio::time::interval(SAFETY_NET_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        // The first look only fixes the horizon: earlier commits were announced or read already.
        let since = horizon.unwrap_or(i64::MAX);
        let rows: Vec<Recent> = match sqlx::query_as(RECENT).bind(since).fetch_all(&pool).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!("safety net query failed: {e}");
                continue;
            }
        };
        for (xmin, tenant_id, session_id, seq) in rows {
            horizon = Some(horizon.map_or(xmin, |h| h.max(xmin)));
            if let (Some(tenant_id), Some(session_id), Some(seq)) = (tenant_id, session_id, seq) {
                hub.announce(Notice {
                    tenant_id,
                    session_id,
                    seq,
                });
            }
        }
    }
}
