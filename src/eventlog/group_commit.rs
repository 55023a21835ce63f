//! Group commit: appends that arrive together (from different tenants) are written by one
//! statement and share one commit.
//!
//! On this kind of machine a transaction's fixed cost (round trip, executor start, commit
//! record, WAL flush) outweighs its rows: eight rows in one INSERT go three times faster than
//! eight INSERTs. A few writer tasks take turns collecting whatever appends are waiting and
//! write them at once; a lone append is written alone, as soon as it arrives, so nothing waits
//! for company.
//!
//! Each append keeps its own guard (see `append.rs`). If any append of a batch loses its race
//! (a unique violation), the statement wrote nothing, and each append is written again on its
//! own so that only the loser learns it lost. Any other failure is reported to every append
//! of the batch as it is: the outcome may be unknown, and retrying could write twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::write::{self, AppendRows};

/// Most appends written by one statement.
const MAX_BATCH: usize = 64;
/// Statements in flight at once. Measured with `switchboard bench append` (16 writers, 1000
/// tenants, 2 cores), ratio to pgbench's raw INSERT ceiling: 1 → 0.55×, 2 → 0.61×,
/// 4 → 0.40×, 8 → 0.35×. Two keep PostgreSQL busy while one batch waits for its WAL flush;
/// more make the batches small again.
const WRITERS: usize = 2;
/// How long a collector lets others run before it writes anyway, in scheduler turns.
/// Measured the same way: 0 → 0.57×, 32 → 0.74×, 128 → 0.75×; single-writer latency is
/// unaffected (with nothing else in flight the collector writes at once).
const GATHER_YIELDS: usize = 32;

pub type WriteResult = Result<(), Arc<sqlx::Error>>;

struct Request {
    tenant_id: Uuid,
    rows: AppendRows,
    reply: oneshot::Sender<WriteResult>,
}

#[derive(Debug)]
pub struct GroupCommit {
    requests: mpsc::UnboundedSender<Request>,
}

impl GroupCommit {
    /// Start the writer tasks; they end when the last handle is dropped.
    pub fn start(pool: PgPool) -> GroupCommit {
        let (requests, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let in_flight = Arc::new(AtomicUsize::new(0));
        for _ in 0..WRITERS {
            tokio::spawn(writer(pool.clone(), receiver.clone(), in_flight.clone()));
        }
        GroupCommit { requests }
    }

    /// Write one append (with whatever others are waiting) and report how it went.
    pub async fn write(&self, tenant_id: Uuid, rows: AppendRows) -> WriteResult {
        let (reply, outcome) = oneshot::channel();
        let request = Request {
            tenant_id,
            rows,
            reply,
        };
        if self.requests.send(request).is_err() {
            return Err(Arc::new(sqlx::Error::PoolClosed));
        }
        outcome
            .await
            .unwrap_or(Err(Arc::new(sqlx::Error::WorkerCrashed)))
    }
}

/// Writers take turns collecting; the collector starts its statement as soon as no other is
/// in flight, and otherwise first lets other tasks run (up to this many times) so that more
/// appends can join. A lone append therefore never waits, and under load batches grow.
async fn writer(
    pool: PgPool,
    requests: Arc<Mutex<mpsc::UnboundedReceiver<Request>>>,
    in_flight: Arc<AtomicUsize>,
) {
    loop {
        let batch = {
            let mut requests = requests.lock().await;
            let Some(first) = requests.recv().await else {
                return;
            };
            let mut batch = vec![first];
            for _ in 0..GATHER_YIELDS {
                while batch.len() < MAX_BATCH
                    && let Ok(next) = requests.try_recv()
                {
                    batch.push(next);
                }
                if batch.len() == MAX_BATCH || in_flight.load(Ordering::Acquire) == 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            batch
        };
        in_flight.fetch_add(1, Ordering::AcqRel);
        write_batch(&pool, batch).await;
        in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn write_batch(pool: &PgPool, batch: Vec<Request>) {
    let (appends, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|r| ((r.tenant_id, r.rows), r.reply))
        .unzip();
    let outcome = write::query(&appends).execute(pool).await;
    match outcome {
        Ok(_) => {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) if appends.len() > 1 && lost_a_race(&e) => {
            for (append, reply) in appends.into_iter().zip(replies) {
                let alone = write::query(std::slice::from_ref(&append))
                    .execute(pool)
                    .await;
                let _ = reply.send(alone.map(drop).map_err(Arc::new));
            }
        }
        Err(e) => {
            let e = Arc::new(e);
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// A unique violation: the statement was rolled back before it could commit.
fn lost_a_race(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}
