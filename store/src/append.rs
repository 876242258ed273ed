//! Appending: the group-commit write path. Decides per record whether it is new or a repeat of
//! an idempotency key, seals the new ones under their epoch key and writes the whole batch in
//! one transaction. The idempotency entries are made and looked up here, and nowhere else.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;

use hotline_protocol::time::{DAY, HOUR};
use hotline_protocol::RecordId;

use crate::engine::{Op, Table};
use crate::values::{
    seq_key, IdemPlain, IdemValue, IndexEntry, Location, QueueValue, ReceiptEntry, RecordPlain,
    Sealed, Stage,
};
use crate::{
    corrupt, lock, mac32, Appended, NewRecord, Store, StoreError, META_NEXT_SEQ, RECORD_OVERHEAD,
};

/// ChaCha20-Poly1305 nonce and tag lengths.
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Sealed length of a queue value: id, epoch, nonce, the sealed plaintext and its tag.
fn queue_value_len(r: &NewRecord) -> u64 {
    let plaintext = RecordPlain::overhead(r.channel) + r.envelope.len();
    QueueValue::len(&r.id, Sealed::PREFIX + NONCE_LEN + plaintext + TAG_LEN) as u64
}

impl Store {
    /// Appends a batch in ONE engine transaction with ONE durable flush (group commit).
    /// Returns one outcome per record, in order. A repeated idempotency key (within the
    /// retention window, across batches or within this one) yields [`Appended::Duplicate`]
    /// and stores nothing. If the batch would pass the byte cap, or the disk is full, fails
    /// with [`StoreError::Full`] and stores nothing of the batch.
    pub fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Appended>, StoreError> {
        for r in &records {
            r.check()?;
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut writer = lock(&self.writer);

        // Pass 1: decide what each record becomes, without writing anything.
        enum Plan {
            Dup(RecordId, String),
            Store { seq: u64, idem: Option<[u8; 32]> },
        }
        let mut plans = Vec::with_capacity(records.len());
        let mut in_batch: HashMap<[u8; 32], usize> = HashMap::new();
        let mut ids: HashSet<&str> = HashSet::new();
        let mut next_seq = writer.next_seq;
        let mut added_bytes = 0u64;
        let mut epochs = BTreeSet::new();
        for (i, r) in records.iter().enumerate() {
            let idem = r.idempotency_key.map(|k| mac32(&self.keys.idem, &k));
            if let Some(mac) = idem {
                if let Some(&first) = in_batch.get(&mac) {
                    let f = &records[first];
                    plans.push(Plan::Dup(f.id.clone(), f.receipt.clone()));
                    continue;
                }
                if let Some(first) = self.idem_lookup(&mac, r.received_at)? {
                    plans.push(Plan::Dup(first.id, first.receipt));
                    continue;
                }
                in_batch.insert(mac, i);
            }
            if !ids.insert(r.id.as_str())
                || self.engine.get(Table::Index, r.id.as_bytes())?.is_some()
            {
                return Err(StoreError::InvalidRecord {
                    id: r.id.to_string(),
                    reason: "record id already in use",
                });
            }
            epochs.insert(self.epoch_of(r)?);
            added_bytes += queue_value_len(r) + RECORD_OVERHEAD;
            plans.push(Plan::Store {
                seq: next_seq,
                idem,
            });
            next_seq += 1;
        }
        if added_bytes > 0
            && self
                .bytes
                .load(Ordering::Acquire)
                .saturating_add(added_bytes)
                > self.opts.max_bytes
        {
            return Err(StoreError::Full);
        }

        // Pass 2: make sure every epoch key is on disk, then seal and commit.
        let epochs: Vec<u32> = epochs.into_iter().collect();
        {
            let ring = self.keyring.read().unwrap_or_else(|p| p.into_inner());
            let missing = epochs.iter().any(|e| ring.get(*e).is_none());
            drop(ring);
            if missing {
                self.keyring
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .add(&epochs, &self.keys, &self.rng)?;
            }
        }
        let mut ops = Vec::with_capacity(records.len() * 4 + 1);
        let mut out = Vec::with_capacity(records.len());
        let mut stored = 0u64;
        for (r, plan) in records.into_iter().zip(plans) {
            match plan {
                Plan::Dup(id, receipt) => out.push(Appended::Duplicate { id, receipt }),
                Plan::Store { seq, idem } => {
                    self.plan_store(&r, seq, idem, &mut ops)?;
                    out.push(Appended::Stored { seq });
                    stored += 1;
                }
            }
        }
        if stored > 0 {
            ops.push(Op::Put(
                Table::Meta,
                META_NEXT_SEQ.to_vec(),
                seq_key(next_seq).to_vec(),
            ));
            self.engine.write(ops)?;
            writer.next_seq = next_seq;
            self.count.fetch_add(stored, Ordering::AcqRel);
            self.bytes.fetch_add(added_bytes, Ordering::AcqRel);
        }
        Ok(out)
    }

    fn epoch_of(&self, r: &NewRecord) -> Result<u32, StoreError> {
        u32::try_from(r.received_at / self.opts.epoch_secs).map_err(|_| StoreError::InvalidRecord {
            id: r.id.to_string(),
            reason: "received_at is too far in the future",
        })
    }

    fn plan_store(
        &self,
        r: &NewRecord,
        seq: u64,
        idem: Option<[u8; 32]>,
        ops: &mut Vec<Op>,
    ) -> Result<(), StoreError> {
        let epoch = self.epoch_of(r)?;
        let hour = r.received_at - r.received_at % HOUR;
        let plain = RecordPlain::encode(hour, r.channel, &r.envelope);
        let sealed = self.seal_with_epoch(epoch, Table::Queue, &r.id, r.id.as_bytes(), plain)?;
        ops.push(Op::Put(
            Table::Queue,
            seq_key(seq).to_vec(),
            QueueValue::encode(&r.id, &sealed),
        ));

        let receipt_mac = mac32(&self.keys.receipt, r.receipt.as_bytes());
        let index = IndexEntry {
            loc: Location::Queue,
            seq,
            receipt_mac,
        };
        ops.push(Op::Put(
            Table::Index,
            r.id.as_bytes().to_vec(),
            index.encode(),
        ));
        let receipt = ReceiptEntry {
            stage: Stage::Queued,
            day: u32::try_from(r.received_at / DAY).unwrap_or(u32::MAX),
            expiry: 0,
        };
        ops.push(Op::Put(
            Table::Receipts,
            receipt_mac.to_vec(),
            receipt.encode(),
        ));

        if let Some(mac) = idem {
            let plain = IdemPlain::encode(&r.id, &r.receipt);
            let sealed = self.seal_with_epoch(epoch, Table::Idem, &r.id, &idem_aad(&mac), plain)?;
            // Expiry rounded up to the hour: a coarse time, and never shorter than promised.
            let expiry = r.received_at.div_ceil(HOUR) * HOUR + self.opts.retention_secs;
            ops.push(Op::Put(
                Table::Idem,
                mac.to_vec(),
                IdemValue::encode(expiry, &sealed),
            ));
        }
        Ok(())
    }

    /// Looks up a live idempotency entry: the first record's id and receipt if the key was
    /// used and has not expired at `now`. An entry that cannot be read is logged and treated
    /// as absent, so a damaged entry never blocks intake.
    fn idem_lookup(&self, mac: &[u8; 32], now: u64) -> Result<Option<IdemPlain>, StoreError> {
        let Some(v) = self.engine.get(Table::Idem, mac)? else {
            return Ok(None);
        };
        let Ok(entry) = IdemValue::decode(&v) else {
            return Ok(None);
        };
        if entry.expiry <= now {
            return Ok(None);
        }
        let plain = self
            .open_with_epoch(Table::Idem, "-", &idem_aad(mac), entry.sealed)
            .and_then(|p| IdemPlain::decode(&p).map_err(corrupt(Table::Idem, hex::encode(mac))));
        match plain {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                tracing::warn!(error = %e, "idempotency entry cannot be read; ignoring it");
                Ok(None)
            }
        }
    }
}

fn idem_aad(mac: &[u8; 32]) -> Vec<u8> {
    let mut aad = b"hotline-store/idem".to_vec();
    aad.extend_from_slice(mac);
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::tests::{id, rec, store};
    use crate::{EngineKind, StoredRecord};
    use hotline_protocol::Channel;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn roundtrip_any_record(
            channel in proptest::sample::select(Channel::ALL.to_vec()),
            envelope in proptest::collection::vec(any::<u8>(), 0..4096),
            received_at in 0u64..4_000_000_000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let s = store(dir.path(), EngineKind::Redb);
            let r = NewRecord { channel, envelope: envelope.clone(), received_at, ..rec(1) };
            s.append_batch(vec![r]).unwrap();
            let got = s.get(&id(1)).unwrap().unwrap();
            let expected_bytes = queue_value_len(&rec_like(&got)) + RECORD_OVERHEAD;
            prop_assert_eq!(got.channel, channel);
            prop_assert_eq!(got.envelope, envelope);
            prop_assert_eq!(got.received_at, received_at - received_at % 3600);
            prop_assert_eq!(s.used_bytes(), expected_bytes);
        }
    }

    fn rec_like(r: &StoredRecord) -> NewRecord {
        NewRecord {
            id: r.id.clone(),
            receipt: String::new(),
            received_at: r.received_at,
            channel: r.channel,
            envelope: r.envelope.clone(),
            idempotency_key: None,
        }
    }
}
