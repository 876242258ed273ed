//! Retention: expired idempotency entries and "delivered" receipts are purged, and epoch keys
//! that seal nothing any more are destroyed (crypto-shredding), so delivered reports become
//! unreadable for good.

use std::collections::BTreeSet;

use crate::engine::{Op, Table};
use crate::values::{DeadValue, IdemValue, QueueValue, ReceiptEntry, Sealed, Stage};
use crate::{lock, Store, StoreError};

impl Store {
    /// Removes expired idempotency entries and expired "delivered" receipt statuses. Returns
    /// how many entries were removed. Called by [`Store::shred_epochs`].
    pub fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        const CHUNK: usize = 10_000;
        let mut total = 0u64;
        for table in [Table::Idem, Table::Receipts] {
            loop {
                let _writer = lock(&self.writer);
                let mut doomed = Vec::new();
                self.engine.scan(table, None, &mut |k, v| {
                    // An entry that does not decode is purged too: it can answer nothing.
                    let expired = match table {
                        Table::Idem => IdemValue::decode(v).map_or(true, |e| e.expiry <= now),
                        _ => ReceiptEntry::decode(v)
                            .map_or(true, |e| e.stage == Stage::Delivered && e.expiry <= now),
                    };
                    if expired {
                        doomed.push(k.to_vec());
                    }
                    Ok(doomed.len() < CHUNK)
                })?;
                let n = doomed.len();
                if n > 0 {
                    self.engine
                        .write(doomed.into_iter().map(|k| Op::Del(table, k)).collect())?;
                }
                total += n as u64;
                if n < CHUNK {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Crypto-shredding: first purges expired entries, then destroys the keys of epochs that
    /// ended more than `retention_secs` before `now` and no longer seal anything in `queue`,
    /// `dead` or `idem`. Leftover bytes of those epochs in the engine's files become
    /// unreadable for good. Returns the shredded epochs. Call it periodically (e.g. hourly).
    pub fn shred_epochs(&self, now: u64) -> Result<Vec<u32>, StoreError> {
        self.purge_expired(now)?;
        let _writer = lock(&self.writer);
        let mut in_use = BTreeSet::new();
        let mut mark = |sealed: &[u8]| {
            if let Ok(s) = Sealed::decode(sealed) {
                in_use.insert(s.epoch);
            }
        };
        self.engine.scan(Table::Queue, None, &mut |_, v| {
            if let Ok(q) = QueueValue::decode(v) {
                mark(q.sealed);
            }
            Ok(true)
        })?;
        self.engine.scan(Table::Dead, None, &mut |_, v| {
            if let Ok(d) = DeadValue::decode(v) {
                mark(d.record);
                mark(d.reason);
            }
            Ok(true)
        })?;
        self.engine.scan(Table::Idem, None, &mut |_, v| {
            if let Ok(e) = IdemValue::decode(v) {
                mark(e.sealed);
            }
            Ok(true)
        })?;
        let mut ring = self.keyring.write().unwrap_or_else(|p| p.into_inner());
        let doomed: Vec<u32> = ring
            .epochs()
            .into_iter()
            .filter(|e| {
                let end = (u64::from(*e) + 1).saturating_mul(self.opts.epoch_secs);
                !in_use.contains(e) && end.saturating_add(self.opts.retention_secs) <= now
            })
            .collect();
        ring.remove(&doomed, &self.keys)?;
        if !doomed.is_empty() {
            tracing::info!(epochs = ?doomed, "epoch keys shredded");
        }
        Ok(doomed)
    }
}
