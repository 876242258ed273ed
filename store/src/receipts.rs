//! Delivery and what a reporter may learn of it: deleting delivered records turns their
//! receipts to "delivered" (kept `receipt_secs`), and a receipt code answers queued, delivered
//! or unknown.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use hotline_protocol::time::{unix_now, DAY};
use hotline_protocol::{ReceiptAnswer, RecordId};

use crate::engine::{Op, Table};
use crate::values::{seq_key, Location, ReceiptEntry, Stage};
use crate::{corrupt, lock, mac32, Store, StoreError, RECORD_OVERHEAD};

impl Store {
    /// Deletes records (queued or dead) by id in one durable commit and marks their receipts
    /// delivered today. Unknown ids are ignored and not counted; returns how many were deleted.
    pub fn delete(&self, ids: &[RecordId]) -> Result<u64, StoreError> {
        let now = unix_now();
        let delivered = ReceiptEntry {
            stage: Stage::Delivered,
            day: u32::try_from(now / DAY).unwrap_or(u32::MAX),
            expiry: (now / DAY + 1) * DAY + self.opts.receipt_secs,
        };
        let _writer = lock(&self.writer);
        let mut seen = HashSet::new();
        let mut ops = Vec::new();
        let (mut deleted, mut from_queue, mut freed) = (0u64, 0u64, 0u64);
        for id in ids {
            if !seen.insert(id) {
                continue;
            }
            let Some(idx) = self.index_entry(id)? else {
                continue;
            };
            let (table, key) = match idx.loc {
                Location::Dead => (Table::Dead, id.as_bytes().to_vec()),
                Location::Queue => (Table::Queue, seq_key(idx.seq).to_vec()),
            };
            if let Some(v) = self.engine.get(table, &key)? {
                freed += v.len() as u64 + RECORD_OVERHEAD;
                if table == Table::Queue {
                    from_queue += 1;
                }
            }
            ops.push(Op::Del(table, key));
            ops.push(Op::Del(Table::Index, id.as_bytes().to_vec()));
            ops.push(Op::Put(
                Table::Receipts,
                idx.receipt_mac.to_vec(),
                delivered.encode(),
            ));
            deleted += 1;
        }
        if !ops.is_empty() {
            self.engine.write(ops)?;
            self.count.fetch_sub(from_queue, Ordering::AcqRel);
            self.bytes.fetch_sub(freed, Ordering::AcqRel);
        }
        Ok(deleted)
    }

    /// What a reporter may learn from a receipt code: queued, delivered (with the day), or
    /// unknown (no such code, or delivered longer ago than `receipt_secs`).
    pub fn receipt_status(&self, code: &str) -> Result<ReceiptAnswer, StoreError> {
        let mac = mac32(&self.keys.receipt, code.as_bytes());
        let Some(v) = self.engine.get(Table::Receipts, &mac)? else {
            return Ok(ReceiptAnswer::UNKNOWN);
        };
        let entry = ReceiptEntry::decode(&v).map_err(corrupt(Table::Receipts, hex::encode(mac)))?;
        Ok(match entry.stage {
            Stage::Delivered if entry.expiry <= unix_now() => ReceiptAnswer::UNKNOWN,
            stage => ReceiptAnswer {
                status: stage.state(),
                day: (stage == Stage::Delivered).then_some(u64::from(entry.day)),
            },
        })
    }
}
