//! Group commit: one writer task turns whatever submissions are waiting into one
//! [`Store::append_batch`] call (one transaction, one fsync), so durable throughput grows with
//! concurrency instead of collapsing to one fsync per report.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<hotline_store::Store>, rec: hotline_store::NewRecord) {
//! use hotline_store::committer::Committer;
//! let handle = Committer::spawn(store, 1024, 256);
//! match handle.submit(rec) {
//!     Ok(pending) => { let _outcome = pending.await; /* 201 or 507 ... */ }
//!     Err(_overloaded) => { /* 503 + Retry-After */ }
//! }
//! handle.close().await;
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::{Appended, NewRecord, Store, StoreError};

type Reply = oneshot::Sender<Result<Appended, StoreError>>;
type Job = (NewRecord, Reply);

/// Called after every commit with (records in the batch, time the commit took), so the
/// gateway can feed histograms. Runs on the writer task: keep it cheap and non-blocking.
pub type CommitObserver = Arc<dyn Fn(usize, Duration) + Send + Sync>;

/// Why a submission was not queued. Both mean "answer 503 with Retry-After".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overloaded {
    /// The commit queue is full: the disk cannot keep up right now.
    #[error("commit queue full")]
    QueueFull,
    /// The writer is shutting down.
    #[error("commit writer closed")]
    Closed,
}

/// Counters of the writer task, readable at any time (e.g. by a metrics scrape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Commits (batches) run so far.
    pub batches: u64,
    /// Records in all those batches.
    pub records: u64,
    /// Records in the last batch.
    pub last_batch: u64,
    /// Largest batch seen.
    pub max_batch_seen: u64,
    /// Duration of the last commit, in microseconds.
    pub last_commit_micros: u64,
    /// Sum of all commit durations, in microseconds.
    pub total_commit_micros: u64,
    /// Batches that failed (every record in them got the error).
    pub failed_batches: u64,
}

#[derive(Default)]
struct AtomicStats {
    batches: AtomicU64,
    records: AtomicU64,
    last_batch: AtomicU64,
    max_batch_seen: AtomicU64,
    last_commit_micros: AtomicU64,
    total_commit_micros: AtomicU64,
    failed_batches: AtomicU64,
}

struct Shared {
    stats: AtomicStats,
    shutdown: Notify,
    done: watch::Receiver<bool>,
}

/// Starts the writer task.
#[derive(Debug)]
pub struct Committer;

impl Committer {
    /// Spawns the writer on the current tokio runtime. `queue_capacity` bounds the records
    /// waiting (beyond it `submit` answers [`Overloaded::QueueFull`]); `max_batch` bounds one
    /// commit.
    pub fn spawn(store: Arc<Store>, queue_capacity: usize, max_batch: usize) -> CommitHandle {
        Self::spawn_observed(store, queue_capacity, max_batch, None)
    }

    /// Like [`Committer::spawn`], with a hook called after each commit (batch size, latency).
    pub fn spawn_observed(
        store: Arc<Store>,
        queue_capacity: usize,
        max_batch: usize,
        on_commit: Option<CommitObserver>,
    ) -> CommitHandle {
        let (tx, rx) = mpsc::channel(queue_capacity.max(1));
        let (done_tx, done_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            stats: AtomicStats::default(),
            shutdown: Notify::new(),
            done: done_rx,
        });
        let task_shared = Arc::clone(&shared);
        tokio::spawn(async move {
            run(store, rx, max_batch.max(1), task_shared, on_commit).await;
            let _ = done_tx.send(true);
        });
        CommitHandle { tx, shared }
    }
}

async fn run(
    store: Arc<Store>,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    shared: Arc<Shared>,
    on_commit: Option<CommitObserver>,
) {
    let mut closing = false;
    loop {
        let first = if closing {
            rx.recv().await
        } else {
            tokio::select! {
                job = rx.recv() => job,
                () = shared.shutdown.notified() => {
                    // Refuse new work, but commit everything already queued.
                    rx.close();
                    closing = true;
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        let mut records = Vec::with_capacity(max_batch.min(1024));
        let mut replies = Vec::with_capacity(max_batch.min(1024));
        records.push(first.0);
        replies.push(first.1);
        while records.len() < max_batch {
            match rx.try_recv() {
                Ok((rec, reply)) => {
                    records.push(rec);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let n = records.len();
        let started = Instant::now();
        let worker = Arc::clone(&store);
        let result = tokio::task::spawn_blocking(move || worker.append_batch(records))
            .await
            .unwrap_or(Err(StoreError::CommitterClosed));
        let elapsed = started.elapsed();
        record_stats(&shared.stats, n, elapsed, result.is_err());
        if let Some(hook) = &on_commit {
            hook(n, elapsed);
        }
        match result {
            Ok(outcomes) if outcomes.len() == n => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Ok(_) => {
                for reply in replies {
                    let _ = reply.send(Err(StoreError::CommitterClosed));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, batch = n, "group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn record_stats(s: &AtomicStats, n: usize, elapsed: Duration, failed: bool) {
    let n = n as u64;
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    s.batches.fetch_add(1, Ordering::Relaxed);
    s.records.fetch_add(n, Ordering::Relaxed);
    s.last_batch.store(n, Ordering::Relaxed);
    s.max_batch_seen.fetch_max(n, Ordering::Relaxed);
    s.last_commit_micros.store(micros, Ordering::Relaxed);
    s.total_commit_micros.fetch_add(micros, Ordering::Relaxed);
    if failed {
        s.failed_batches.fetch_add(1, Ordering::Relaxed);
    }
}

/// Cheap, cloneable handle to the writer. When every handle is dropped the writer commits
/// what is queued and exits.
#[derive(Clone)]
pub struct CommitHandle {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CommitHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitHandle")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl CommitHandle {
    /// Queues a record without waiting: a full queue is reported at once as
    /// [`Overloaded::QueueFull`] (answer 503 + Retry-After). The returned future resolves once
    /// the record's batch is durable (or failed). An invalid record resolves at once to its
    /// error without joining a batch.
    pub fn submit(&self, record: NewRecord) -> Result<PendingCommit, Overloaded> {
        if let Err(e) = record.check() {
            return Ok(PendingCommit(Inner::Ready(Some(Err(e)))));
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send((record, reply)) {
            Ok(()) => Ok(PendingCommit(Inner::Waiting(rx))),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Overloaded::QueueFull),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Overloaded::Closed),
        }
    }

    /// A snapshot of the writer's counters.
    pub fn stats(&self) -> CommitStats {
        let s = &self.shared.stats;
        CommitStats {
            batches: s.batches.load(Ordering::Relaxed),
            records: s.records.load(Ordering::Relaxed),
            last_batch: s.last_batch.load(Ordering::Relaxed),
            max_batch_seen: s.max_batch_seen.load(Ordering::Relaxed),
            last_commit_micros: s.last_commit_micros.load(Ordering::Relaxed),
            total_commit_micros: s.total_commit_micros.load(Ordering::Relaxed),
            failed_batches: s.failed_batches.load(Ordering::Relaxed),
        }
    }

    /// Records waiting for the writer (for a queue-depth gauge).
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Graceful shutdown: stops accepting (other handles' `submit` gets
    /// [`Overloaded::Closed`]), commits and answers everything already queued, and waits for
    /// the writer task to exit.
    pub async fn close(self) {
        self.shared.shutdown.notify_one();
        let mut done = self.shared.done.clone();
        drop(self.tx);
        // An error means the task is gone, which is what we wait for.
        let _ = done.wait_for(|finished| *finished).await;
    }
}

enum Inner {
    Ready(Option<Result<Appended, StoreError>>),
    Waiting(oneshot::Receiver<Result<Appended, StoreError>>),
}

/// Resolves to the outcome of one submitted record once its batch is committed.
pub struct PendingCommit(Inner);

impl std::fmt::Debug for PendingCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingCommit")
    }
}

impl Future for PendingCommit {
    type Output = Result<Appended, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Inner::Ready(slot) => {
                Poll::Ready(slot.take().unwrap_or(Err(StoreError::CommitterClosed)))
            }
            Inner::Waiting(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
                Poll::Ready(Err(_)) => Poll::Ready(Err(StoreError::CommitterClosed)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
