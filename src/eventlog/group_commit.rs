//! Group commit: appends that arrive together (from different tenants) are written by one
//! statement and share one commit.
//!
//! On this kind of machine a transaction's fixed cost (round trip, executor start, commit
//! record, WAL flush) outweighs its rows: eight rows in one INSERT go three times faster than
//! eight INSERTs. A few writer tasks take turns collecting whatever appends are waiting and
//! write them at once; a lone append is written alone, as soon as it arrives, so nothing waits
//! for company.
//!
//! Each append keeps its own guard (see `append.rs`). If the database refuses a batch (one
//! append lost its race, the projections were rebuilt, a deadlock, a value it will not take),
//! the statement wrote nothing, and each append is written again on its own, so that only the
//! one at fault learns of it and the others of the batch, other tenants included, commit as if
//! they had been alone. A failure without an answer from the database (a lost connection) is
//! reported to every append of the batch as it is: the outcome may be unknown, and retrying
//! could write twice.
//!
//! Batches are written in tenant order, so two processes' batches take their row locks in the
//! same order and cannot deadlock each other, and are bounded in bytes as well as in appends
//! (PostgreSQL refuses a message over 1 GB, and a huge batch would hold everyone up).
//!
//! On Citus a statement naming one tenant runs on that tenant's node, while a statement of
//! several tenants is pulled through the coordinator: there every append is written alone,
//! by more writers at once ([`CITUS_WRITERS`]).
//!
//! Commits are announced on `switchboard_events` (ids only) in one of three ways, chosen by
//! [`NotifyMode`]; `switchboard bench push` measures them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::write::{self, AppendRows};
use crate::database;
use crate::metrics::{self, AppendOutcome};
use crate::push::notice::{self, EVENTS_CHANNEL, Notice};

/// Most appends written by one statement.
const MAX_BATCH: usize = 64;
/// Most bytes one statement carries; a larger append is written alone.
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Statements in flight at once. Measured with `switchboard bench append` (16 writers, 1000
/// tenants, 2 cores), ratio to pgbench's raw INSERT ceiling: 1 → 0.55×, 2 → 0.61×,
/// 4 → 0.40×, 8 → 0.35×. Two keep PostgreSQL busy while one batch waits for its WAL flush;
/// more make the batches small again.
const WRITERS: usize = 2;
/// Statements in flight at once on Citus, where each carries one append and waits for a
/// round trip from the coordinator to a worker.
const CITUS_WRITERS: usize = 8;
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

/// Where the NOTIFY announcing a commit is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NotifyMode {
    /// `pg_notify` inside the writing statement: delivered exactly with the commit, but every
    /// commit then queues for PostgreSQL's database-wide notify lock.
    InTransaction,
    /// One `pg_notify` statement right after each batch commits, before its appends are
    /// acknowledged.
    #[default]
    AfterCommit,
    /// Notices of all batches go to one task that sends whatever has gathered as one NOTIFY;
    /// appends are acknowledged without waiting for it.
    Coalesced,
}

#[derive(Debug)]
pub struct GroupCommit {
    requests: mpsc::UnboundedSender<Request>,
    local: Local,
}

/// The hub of this process's own waiters, once the composition root has given it.
type Local = Arc<std::sync::OnceLock<Arc<crate::push::Hub>>>;

/// What every writer task shares.
struct Writers {
    pool: PgPool,
    requests: Mutex<mpsc::UnboundedReceiver<Request>>,
    /// An append received while gathering that did not fit the batch: it leads the next.
    held: std::sync::Mutex<Option<Request>>,
    in_flight: AtomicUsize,
    /// Most appends per statement: [`MAX_BATCH`], or one on Citus.
    max_batch: usize,
    mode: NotifyMode,
    /// For [`NotifyMode::Coalesced`]: the notifier task's queue.
    notifier: Option<mpsc::UnboundedSender<Vec<Notice>>>,
    /// This process's own waiters, told of each commit as soon as it is committed, before the
    /// NOTIFY that tells every process (theirs then repeats what they know: no second read).
    local: Local,
}

impl GroupCommit {
    /// Start the writer tasks (once they know whether the database is Citus); they end when
    /// the last handle is dropped. Appends wait in the queue until then.
    pub fn start(pool: PgPool, mode: NotifyMode) -> GroupCommit {
        let (requests, receiver) = mpsc::unbounded_channel();
        let local = Local::default();
        let shared = local.clone();
        tokio::spawn(async move {
            let citus = match database::pool_is_citus(&pool).await {
                Ok(citus) => citus,
                Err(e) => {
                    tracing::warn!("cannot tell whether the database is Citus (assuming not): {e}");
                    false
                }
            };
            let notifier = (mode == NotifyMode::Coalesced).then(|| {
                let (notices, queue) = mpsc::unbounded_channel();
                tokio::spawn(notifier(pool.clone(), queue));
                notices
            });
            let writers = Arc::new(Writers {
                pool,
                requests: Mutex::new(receiver),
                held: std::sync::Mutex::new(None),
                in_flight: AtomicUsize::new(0),
                max_batch: if citus { 1 } else { MAX_BATCH },
                mode,
                notifier,
                local: shared,
            });
            for _ in 0..if citus { CITUS_WRITERS } else { WRITERS } {
                tokio::spawn(writer(writers.clone()));
            }
        });
        GroupCommit { requests, local }
    }

    /// Tell `hub` of each commit as it commits (once per process; later calls are ignored).
    pub fn announce_locally(&self, hub: Arc<crate::push::Hub>) {
        let _ = self.local.set(hub);
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
async fn writer(writers: Arc<Writers>) {
    loop {
        let batch = {
            let mut requests = writers.requests.lock().await;
            let held = writers.held.lock().expect("not poisoned").take();
            let first = match held {
                Some(first) => first,
                None => match requests.recv().await {
                    Some(first) => first,
                    None => return,
                },
            };
            let mut bytes = first.rows.weight();
            let mut batch = vec![first];
            'gather: for _ in 0..GATHER_YIELDS {
                while batch.len() < writers.max_batch && bytes < MAX_BATCH_BYTES {
                    let Ok(next) = requests.try_recv() else { break };
                    let weight = next.rows.weight();
                    if bytes + weight > MAX_BATCH_BYTES {
                        // Too big to join this batch: it leads the next one.
                        *writers.held.lock().expect("not poisoned") = Some(next);
                        break 'gather;
                    }
                    bytes += weight;
                    batch.push(next);
                }
                if batch.len() == writers.max_batch
                    || bytes >= MAX_BATCH_BYTES
                    || writers.in_flight.load(Ordering::Acquire) == 0
                {
                    break;
                }
                tokio::task::yield_now().await;
            }
            batch
        };
        writers.in_flight.fetch_add(1, Ordering::AcqRel);
        writers.write_batch(batch).await;
        writers.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Writers {
    async fn write_batch(&self, mut batch: Vec<Request>) {
        // One lock order for every process: by tenant.
        batch.sort_by_key(|r| r.tenant_id);
        let (appends, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|r| ((r.tenant_id, r.rows), r.reply))
            .unzip();
        match self.write(&appends).await {
            Ok(()) => {
                metrics::appends(appends.len(), AppendOutcome::Committed);
                self.announce(notices(&appends)).await;
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if appends.len() > 1 && refused(&e) => {
                for (append, reply) in appends.into_iter().zip(replies) {
                    let alone = std::slice::from_ref(&append);
                    let outcome = self.write(alone).await;
                    let counted = outcome
                        .as_ref()
                        .map_or_else(failure, |()| AppendOutcome::Committed);
                    metrics::appends(1, counted);
                    if outcome.is_ok() {
                        self.announce(notices(alone)).await;
                    }
                    let _ = reply.send(outcome.map_err(Arc::new));
                }
            }
            Err(e) => {
                metrics::appends(replies.len(), failure(&e));
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    async fn write(&self, appends: &[(Uuid, AppendRows)]) -> Result<(), sqlx::Error> {
        let notify = match self.mode {
            NotifyMode::InTransaction => notice::encode(&notices(appends)),
            NotifyMode::AfterCommit | NotifyMode::Coalesced => Vec::new(),
        };
        write::query(appends, notify)
            .execute(&self.pool)
            .await
            .map(drop)
    }

    /// Announce a committed batch (unless it was announced inside its transaction).
    async fn announce(&self, notices: Vec<Notice>) {
        if let Some(hub) = self.local.get() {
            for notice in &notices {
                hub.announce(*notice);
            }
        }
        match self.mode {
            NotifyMode::InTransaction => {}
            NotifyMode::AfterCommit => send_notify(&self.pool, &notices).await,
            NotifyMode::Coalesced => {
                if let Some(notifier) = &self.notifier {
                    let _ = notifier.send(notices);
                }
            }
        }
    }
}

/// The newest event of each session an append wrote to.
fn notices(appends: &[(Uuid, AppendRows)]) -> Vec<Notice> {
    let mut notices: Vec<Notice> = Vec::new();
    for (tenant_id, rows) in appends {
        for event in &rows.events {
            match notices
                .iter_mut()
                .find(|n| n.tenant_id == *tenant_id && n.session_id == event.stream_id)
            {
                Some(notice) => notice.seq = notice.seq.max(event.seq),
                None => notices.push(Notice {
                    tenant_id: *tenant_id,
                    session_id: event.stream_id,
                    seq: event.seq,
                }),
            }
        }
    }
    notices
}

/// Send NOTIFYs for `notices`. A failure only delays waiters until the safety net looks.
async fn send_notify(pool: &PgPool, notices: &[Notice]) {
    for payload in notice::encode(notices) {
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(EVENTS_CHANNEL)
            .bind(payload)
            .execute(pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!("NOTIFY failed; waiters will be woken by the safety net: {e}");
        }
    }
}

/// [`NotifyMode::Coalesced`]: one NOTIFY for everything committed since the last one.
async fn notifier(pool: PgPool, mut queue: mpsc::UnboundedReceiver<Vec<Notice>>) {
    while let Some(first) = queue.recv().await {
        let mut notices = first;
        while let Ok(more) = queue.try_recv() {
            notices.extend(more);
        }
        send_notify(&pool, &notices).await;
    }
}

/// How a statement that failed is counted: a unique violation is an append that lost its
/// race to another writer.
fn failure(e: &sqlx::Error) -> AppendOutcome {
    if e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
    {
        AppendOutcome::LostRace
    } else {
        AppendOutcome::Failed
    }
}

/// The database answered with an error: the statement was rolled back and wrote nothing.
fn refused(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some()
}
