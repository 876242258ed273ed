//! Dead letters: records the backend refused for good leave the queue for the `dead` table,
//! their reason sealed beside them under the record's epoch key, so staff can list and inspect
//! them without them blocking the queue.

use std::sync::atomic::Ordering;

use hotline_protocol::RecordId;

use crate::engine::{Op, Table};
use crate::values::{seq_key, DeadValue, Location, QueueValue, Sealed};
use crate::{corrupt, lock, Store, StoreError, StoredRecord};

/// Longest dead-letter reason kept (longer ones are truncated).
pub const MAX_REASON_LEN: usize = 1024;

/// A dead-lettered record (permanently refused by the backend) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRecord {
    /// The record as it was queued.
    pub record: StoredRecord,
    /// The reason given to [`Store::mark_dead`].
    pub reason: String,
}

impl Store {
    /// Moves a queued record to the `dead` table (the backend refused it for good), keeping
    /// the reason sealed with it. Returns false if the id is unknown or already dead.
    pub fn mark_dead(&self, id: &RecordId, reason: &str) -> Result<bool, StoreError> {
        let _writer = lock(&self.writer);
        let Some(mut idx) = self.index_entry(id)? else {
            return Ok(false);
        };
        if idx.loc != Location::Queue {
            return Ok(false);
        }
        let key = seq_key(idx.seq);
        let Some(v) = self.engine.get(Table::Queue, &key)? else {
            return Ok(false);
        };
        let record = QueueValue::decode(&v)
            .map_err(corrupt(Table::Queue, idx.seq))?
            .sealed;
        let epoch = Sealed::decode(record)
            .map_err(corrupt(Table::Queue, id))?
            .epoch;
        let mut end = reason.len().min(MAX_REASON_LEN);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let sealed_reason = self.seal_with_epoch(
            epoch,
            Table::Dead,
            id,
            &dead_reason_aad(id),
            reason.as_bytes()[..end].to_vec(),
        )?;
        let value = DeadValue::encode(idx.seq, record, &sealed_reason);
        let (old_len, new_len) = (v.len() as u64, value.len() as u64);
        idx.loc = Location::Dead;
        self.engine.write(vec![
            Op::Del(Table::Queue, key.to_vec()),
            Op::Put(Table::Dead, id.as_bytes().to_vec(), value),
            Op::Put(Table::Index, id.as_bytes().to_vec(), idx.encode()),
        ])?;
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_add(new_len, Ordering::AcqRel);
        self.bytes.fetch_sub(old_len, Ordering::AcqRel);
        Ok(true)
    }

    pub(crate) fn open_dead(&self, id: RecordId, v: &[u8]) -> Result<DeadRecord, StoreError> {
        let dead = DeadValue::decode(v).map_err(corrupt(Table::Dead, &id))?;
        let reason = self.open_with_epoch(Table::Dead, &id, &dead_reason_aad(&id), dead.reason)?;
        let record = self.open_record(dead.seq, id, dead.record)?;
        Ok(DeadRecord {
            record,
            reason: String::from_utf8_lossy(&reason).into_owned(),
        })
    }

    /// Up to `limit` dead-lettered records, by id.
    pub fn list_dead(&self, limit: usize) -> Result<Vec<DeadRecord>, StoreError> {
        let mut raw = Vec::new();
        if limit > 0 {
            self.engine.scan(Table::Dead, None, &mut |k, v| {
                raw.push((k.to_vec(), v.to_vec()));
                Ok(raw.len() < limit)
            })?;
        }
        raw.into_iter()
            .map(|(k, v)| {
                let id = std::str::from_utf8(&k)
                    .ok()
                    .and_then(|k| k.parse::<RecordId>().ok())
                    .ok_or_else(|| {
                        corrupt(Table::Dead, hex::encode(&k))("key is not a record id")
                    })?;
                self.open_dead(id, &v)
            })
            .collect()
    }
}

fn dead_reason_aad(id: &str) -> Vec<u8> {
    let mut aad = b"hotline-store/dead-reason".to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}
