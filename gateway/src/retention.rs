//! The retention sweep: purges expired idempotency entries and receipt
//! statuses, then destroys the keys of epochs whose records are all gone and
//! whose retention window has passed (crypto-shredding). Whatever bytes of
//! those epochs remain in the engine's files (free pages, old log segments)
//! can then never be opened again, even with the master key.

use std::sync::Arc;
use std::time::Duration;

use hotline_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs one sweep now; returns (entries purged, epochs shredded).
pub async fn sweep(store: Arc<Store>) -> Result<(u64, usize), hotline_store::StoreError> {
    let now = hotline_protocol::time::unix_now();
    let joined = tokio::task::spawn_blocking(move || {
        let purged = store.purge_expired(now)?;
        let shredded = store.shred_epochs(now)?;
        Ok((purged, shredded.len()))
    })
    .await;
    match joined {
        Ok(result) => result,
        Err(_) => Ok((0, 0)),
    }
}

/// Sweeps every `interval` until `stop` turns true. Logs counts only.
pub fn spawn(
    store: Arc<Store>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            match sweep(store.clone()).await {
                Ok((0, 0)) => tracing::debug!("retention sweep: nothing to do"),
                Ok((purged, shredded)) => {
                    tracing::info!(purged, shredded, "retention sweep")
                }
                Err(e) => tracing::error!(error = %e, "retention sweep failed"),
            }
        }
    })
}
