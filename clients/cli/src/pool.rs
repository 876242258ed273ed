//! The paced worker pool `flush` and `batch` share: `concurrency` workers
//! take items from one source until it runs dry, and the starts of their
//! sends are spread at least `pace` apart, so a large batch stays under the
//! gateway's rate limit instead of being refused by it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Spaces the starts of sends across all workers of a pool.
#[derive(Debug, Clone)]
pub struct Pacer {
    pace: Duration,
    next: Arc<Mutex<Instant>>,
}

impl Pacer {
    /// Starts at least `pace` apart; zero means no pacing.
    pub fn new(pace: Duration) -> Pacer {
        Pacer {
            pace,
            next: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Waits for this send's turn.
    pub async fn wait_turn(&self) {
        if self.pace.is_zero() {
            return;
        }
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + self.pace;
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }
}

/// Runs `work` on every item `next` yields, with `concurrency` workers (at
/// least one) sharing one [`Pacer`] of `pace`; `work` calls
/// [`Pacer::wait_turn`] right before it sends. Returns when every worker
/// found `next` empty, with the first error a worker met (the others finish
/// their items first).
pub async fn run<T, E, Next, NextFut, Work, WorkFut>(
    concurrency: usize,
    pace: Duration,
    next: Next,
    work: Work,
) -> Result<(), E>
where
    T: Send + 'static,
    E: From<tokio::task::JoinError> + Send + 'static,
    Next: Fn() -> NextFut + Clone + Send + 'static,
    NextFut: Future<Output = Option<T>> + Send,
    Work: Fn(T, Pacer) -> WorkFut + Clone + Send + 'static,
    WorkFut: Future<Output = Result<(), E>> + Send,
{
    let pacer = Pacer::new(pace);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (next, work, pacer) = (next.clone(), work.clone(), pacer.clone());
        workers.spawn(async move {
            while let Some(item) = next().await {
                work(item, pacer.clone()).await?;
            }
            Ok::<(), E>(())
        });
    }
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        let result = joined.map_err(E::from).and_then(|r| r);
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn every_item_is_worked_once_and_errors_come_back() {
        let items = Arc::new(Mutex::new((0..10).collect::<Vec<u32>>()));
        let done = Arc::new(Mutex::new(Vec::new()));
        let (i, d) = (items.clone(), done.clone());
        run::<_, std::io::Error, _, _, _, _>(
            3,
            Duration::from_millis(1),
            move || {
                let i = i.clone();
                async move { i.lock().unwrap().pop() }
            },
            move |n, pacer| {
                let d = d.clone();
                async move {
                    pacer.wait_turn().await;
                    d.lock().unwrap().push(n);
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
        let mut done = done.lock().unwrap().clone();
        done.sort_unstable();
        assert_eq!(done, (0..10).collect::<Vec<_>>());

        let items = Arc::new(Mutex::new(vec![1u32, 2, 3]));
        let err = run::<_, std::io::Error, _, _, _, _>(
            2,
            Duration::ZERO,
            move || {
                let i = items.clone();
                async move { i.lock().unwrap().pop() }
            },
            |n, _| async move {
                if n == 2 {
                    Err(std::io::Error::other("two"))
                } else {
                    Ok(())
                }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "two");
    }
}
