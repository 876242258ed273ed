//! # hotline-store
//!
//! The gateway's durable, encrypted-at-rest queue of sealed reports. Reports arrive as
//! HPKE-sealed envelopes the gateway cannot read; this crate stores those opaque bytes, sealed
//! once more under random per-epoch keys so that delivered records can be crypto-shredded.
//!
//! One narrow API ([`Store`]) over two engines ([`EngineKind::Redb`], the default, and
//! [`EngineKind::Sled`]); a group-commit writer ([`committer`]) turns many concurrent
//! submissions into one transaction and one fsync. See `README.md` for what each engine
//! promises, and `DESIGN.md` ("Storage") for why.
//!
//! On disk, nothing is in clear but random record ids, sequence numbers, HMACs, epoch numbers
//! and coarse (hour / day) times.

#![forbid(unsafe_code)]

pub mod committer;
mod engine;
mod error;
mod keys;
mod values;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use hotline_protocol::time::{unix_now, DAY, HOUR};
use hotline_protocol::{Channel, ReceiptAnswer, RecordId};
use ring::aead::LessSafeKey;
use ring::hmac;
use ring::rand::SystemRandom;

use engine::redb::RedbEngine;
use engine::{Engine, Op, Table};
pub use error::{EngineSource, StoreError};
pub use keys::MasterKey;
use keys::{DerivedKeys, Keyring};
use values::{
    seq_key, seq_of, DeadValue, IdemPlain, IdemValue, IndexEntry, Location, QueueValue,
    ReceiptEntry, RecordPlain, Sealed, Stage,
};

/// Name of the keyring file in the data directory.
pub const KEYRING_FILE: &str = "epochs.keys";

/// Bytes charged per record on top of its sealed size, for its index, receipt and
/// idempotency entries, so the cap tracks real usage more closely.
const RECORD_OVERHEAD: u64 = 160;
/// Longest receipt code accepted.
pub const MAX_FIELD_LEN: usize = 255;
/// Longest dead-letter reason kept (longer ones are truncated).
pub const MAX_REASON_LEN: usize = 1024;

const META_NEXT_SEQ: &[u8] = b"next_seq";
/// ChaCha20-Poly1305 nonce and tag lengths.
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Which engine holds the queue. Chosen in the gateway config; both pass the same tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// redb: real fsync on every commit, stable file format. The default.
    #[default]
    Redb,
    /// sled 0.34: weaker durability (see README.md); opt-in only, and only
    /// in builds with the cargo feature `sled` (else [`Store::open`] fails
    /// with [`StoreError::EngineNotBuilt`]).
    Sled,
}

impl EngineKind {
    /// The config spelling: "redb" or "sled".
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Redb => "redb",
            EngineKind::Sled => "sled",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    /// Parses the config spelling, so the gateway config can name the engine.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redb" => Ok(EngineKind::Redb),
            "sled" => Ok(EngineKind::Sled),
            other => Err(format!(
                "unknown store engine {other:?} (expected redb or sled)"
            )),
        }
    }
}

/// Tunables, all bounded so the store fits a 512 MB machine.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Cap on stored bytes (sealed records in `queue` and `dead`, plus a fixed per-record
    /// overhead). An append that would pass it fails with [`StoreError::Full`] (HTTP 507).
    pub max_bytes: u64,
    /// Engine cache in bytes (redb page cache or sled `cache_capacity`). Keep it small: sled
    /// has been seen to use up to ten times this (sled issue 1309).
    pub cache_bytes: usize,
    /// Length of one key epoch in seconds: records received in the same epoch share a key.
    pub epoch_secs: u64,
    /// How long an idempotency key is remembered, and how long an epoch key outlives the end
    /// of its epoch before it may be shredded (24 h).
    pub retention_secs: u64,
    /// How long a "delivered" receipt status is kept after delivery.
    pub receipt_secs: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_bytes: 1 << 30,
            cache_bytes: 8 << 20,
            epoch_secs: DAY,
            retention_secs: DAY,
            receipt_secs: 30 * DAY,
        }
    }
}

/// A report to store, as handed over by the intake path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Random record id made by the caller (stored in clear: it carries no information).
    pub id: RecordId,
    /// Receipt code given to the reporter; only its HMAC is stored.
    pub receipt: String,
    /// Receive time, Unix seconds; stored rounded down to the hour, and picks the key epoch.
    pub received_at: u64,
    /// Intake channel; stored sealed.
    pub channel: Channel,
    /// The envelope's bytes exactly as received; stored sealed.
    pub envelope: Vec<u8>,
    /// Client's `Idempotency-Key` (128 bits), if it sent one; only its HMAC is stored.
    pub idempotency_key: Option<[u8; 16]>,
}

impl NewRecord {
    /// Checks field lengths, so a bad record can be refused before it joins a batch.
    /// (Id and channel are valid by their types.)
    pub fn check(&self) -> Result<(), StoreError> {
        if self.receipt.len() > MAX_FIELD_LEN {
            return Err(StoreError::InvalidRecord {
                id: self.id.to_string(),
                reason: "receipt code longer than 255 bytes",
            });
        }
        Ok(())
    }
}

/// Outcome of appending one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored durably under this sequence number.
    Stored {
        /// Position in the queue (cursor value for staff pulls).
        seq: u64,
    },
    /// The idempotency key was already used within the retention window: nothing new was
    /// stored; answer with the first record's id and receipt.
    Duplicate {
        /// Id of the first record.
        id: RecordId,
        /// Receipt of the first record.
        receipt: String,
    },
}

/// A record read back from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Queue position; pass the last one seen as the next cursor.
    pub seq: u64,
    /// Record id.
    pub id: RecordId,
    /// Receive time rounded down to the hour (Unix seconds).
    pub received_at: u64,
    /// Intake channel.
    pub channel: Channel,
    /// Envelope bytes as received.
    pub envelope: Vec<u8>,
}

/// A dead-lettered record (permanently refused by the backend) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRecord {
    /// The record as it was queued.
    pub record: StoredRecord,
    /// The reason given to [`Store::mark_dead`].
    pub reason: String,
}

struct WriterState {
    next_seq: u64,
}

/// The queue. All methods are blocking (call them from `spawn_blocking` or use the
/// [`committer`]); reads may run concurrently with the single writer.
pub struct Store {
    dir: PathBuf,
    kind: EngineKind,
    engine: Box<dyn Engine>,
    keys: DerivedKeys,
    keyring: RwLock<Keyring>,
    writer: Mutex<WriterState>,
    count: AtomicU64,
    bytes: AtomicU64,
    opts: StoreOptions,
    rng: SystemRandom,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("kind", &self.kind)
            .field("count", &self.count.load(Ordering::Relaxed))
            .field("bytes", &self.bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn mac32(key: &hmac::Key, data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(key, data).as_ref());
    out
}

/// Sealed length of a queue value: id, epoch, nonce, the sealed plaintext and its tag.
fn queue_value_len(r: &NewRecord) -> u64 {
    let plaintext = RecordPlain::overhead(r.channel) + r.envelope.len();
    QueueValue::len(&r.id, Sealed::PREFIX + NONCE_LEN + plaintext + TAG_LEN) as u64
}

/// A decoder's complaint about the entry under `key` in `table`.
fn corrupt(table: Table, key: impl std::fmt::Display) -> impl Fn(values::Bad) -> StoreError {
    let key = key.to_string();
    move |reason| StoreError::Corrupt {
        table: table.name(),
        key: key.clone(),
        reason,
    }
}

impl Store {
    /// Opens (creating if needed, mode 0700) the store in `dir` with the given engine. Fails
    /// with [`StoreError::WrongMasterKey`] if the keyring there was written under another
    /// master key, and with [`StoreError::EngineMismatch`] if `dir` holds the other engine's
    /// files (switching engines in the config would otherwise hide the queue).
    pub fn open(
        dir: &Path,
        kind: EngineKind,
        master_key: &MasterKey,
        opts: StoreOptions,
    ) -> Result<Store, StoreError> {
        if opts.epoch_secs == 0 {
            return Err(StoreError::InvalidRecord {
                id: "-".into(),
                reason: "StoreOptions.epoch_secs must be > 0",
            });
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::io("create data directory", dir, e))?;
        let (other, other_name) = match kind {
            EngineKind::Redb => (dir.join(engine::SLED_DIR), "sled"),
            EngineKind::Sled => (dir.join(RedbEngine::FILE), "redb"),
        };
        if other.exists() {
            return Err(StoreError::EngineMismatch {
                path: dir.to_owned(),
                found: other_name,
                requested: kind.as_str(),
            });
        }
        let keys = DerivedKeys::derive(master_key)?;
        let keyring = Keyring::load_or_create(dir.join(KEYRING_FILE), &keys)?;
        let engine: Box<dyn Engine> = match kind {
            EngineKind::Redb => Box::new(RedbEngine::open(dir, opts.cache_bytes)?),
            #[cfg(feature = "sled")]
            EngineKind::Sled => Box::new(engine::sled::SledEngine::open(dir, opts.cache_bytes)?),
            #[cfg(not(feature = "sled"))]
            EngineKind::Sled => return Err(StoreError::EngineNotBuilt { engine: "sled" }),
        };

        let mut count = 0u64;
        let mut bytes = 0u64;
        let mut last_seq = 0u64;
        engine.scan(Table::Queue, None, &mut |k, v| {
            count += 1;
            bytes += v.len() as u64 + RECORD_OVERHEAD;
            last_seq = seq_of(k).unwrap_or(last_seq).max(last_seq);
            Ok(true)
        })?;
        engine.scan(Table::Dead, None, &mut |_, v| {
            bytes += v.len() as u64 + RECORD_OVERHEAD;
            last_seq = DeadValue::decode(v).map_or(0, |d| d.seq).max(last_seq);
            Ok(true)
        })?;
        let stored_next = engine
            .get(Table::Meta, META_NEXT_SEQ)?
            .and_then(|v| seq_of(&v).ok())
            .unwrap_or(1);
        let next_seq = stored_next.max(last_seq + 1).max(1);

        tracing::info!(
            engine = kind.as_str(),
            records = count,
            bytes,
            "store opened"
        );
        Ok(Store {
            dir: dir.to_owned(),
            kind,
            engine,
            keys,
            keyring: RwLock::new(keyring),
            writer: Mutex::new(WriterState { next_seq }),
            count: AtomicU64::new(count),
            bytes: AtomicU64::new(bytes),
            opts,
            rng: SystemRandom::new(),
        })
    }

    /// The engine in use (for logs and metrics labels).
    pub fn engine_kind(&self) -> EngineKind {
        self.kind
    }

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

    /// Seals under the epoch key: a [`Sealed`] value.
    fn seal_with_epoch(
        &self,
        epoch: u32,
        table: Table,
        id: &str,
        aad: &[u8],
        plaintext: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let key = self.epoch_key(table, id, epoch)?;
        let sealed = keys::seal(&key, &self.rng, aad, plaintext)?;
        Ok(Sealed::encode(epoch, &sealed))
    }

    /// The key of `epoch`, or why there is none (shredded, or never made).
    fn epoch_key(
        &self,
        table: Table,
        id: &str,
        epoch: u32,
    ) -> Result<Arc<LessSafeKey>, StoreError> {
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(epoch)
            .ok_or_else(|| StoreError::EpochKeyMissing {
                table: table.name(),
                id: id.to_owned(),
                epoch,
            })
    }

    /// Opens bytes made by `seal_with_epoch`.
    fn open_with_epoch(
        &self,
        table: Table,
        id: &str,
        aad: &[u8],
        bytes: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let sealed = Sealed::decode(bytes).map_err(corrupt(table, id))?;
        let key = self.epoch_key(table, id, sealed.epoch)?;
        keys::open(&key, aad, sealed.body).ok_or_else(|| StoreError::OpenFailed {
            table: table.name(),
            id: id.to_owned(),
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

    /// Opens a sealed queue record.
    fn open_record(
        &self,
        seq: u64,
        id: RecordId,
        sealed: &[u8],
    ) -> Result<StoredRecord, StoreError> {
        let plain = self.open_with_epoch(Table::Queue, &id, id.as_bytes(), sealed)?;
        let plain = RecordPlain::decode(&plain).map_err(corrupt(Table::Queue, &id))?;
        Ok(StoredRecord {
            seq,
            id,
            received_at: plain.received_at,
            channel: plain.channel,
            envelope: plain.envelope,
        })
    }

    /// Opens a `queue` entry.
    fn open_queue_entry(&self, seq: u64, v: &[u8]) -> Result<StoredRecord, StoreError> {
        let value = QueueValue::decode(v).map_err(corrupt(Table::Queue, seq))?;
        let id = value.record_id().map_err(corrupt(Table::Queue, seq))?;
        self.open_record(seq, id, value.sealed)
    }

    /// Up to `limit` queued records with seq > `cursor`, oldest first (cursor 0 = from the
    /// start). A record that cannot be opened fails the call with an error naming it.
    pub fn read_after(&self, cursor: u64, limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        let mut raw = Vec::new();
        if limit > 0 {
            self.engine
                .scan(Table::Queue, Some(&seq_key(cursor)), &mut |k, v| {
                    raw.push((k.to_vec(), v.to_vec()));
                    Ok(raw.len() < limit)
                })?;
        }
        raw.into_iter()
            .map(|(k, v)| {
                let seq = seq_of(&k).map_err(corrupt(Table::Queue, hex::encode(&k)))?;
                self.open_queue_entry(seq, &v)
            })
            .collect()
    }

    fn index_entry(&self, id: &RecordId) -> Result<Option<IndexEntry>, StoreError> {
        self.engine
            .get(Table::Index, id.as_bytes())?
            .map(|v| IndexEntry::decode(&v).map_err(corrupt(Table::Index, id)))
            .transpose()
    }

    /// One record by id, whether queued or dead-lettered.
    pub fn get(&self, id: &RecordId) -> Result<Option<StoredRecord>, StoreError> {
        let Some(idx) = self.index_entry(id)? else {
            return Ok(None);
        };
        match idx.loc {
            Location::Dead => {
                let Some(v) = self.engine.get(Table::Dead, id.as_bytes())? else {
                    return Ok(None);
                };
                self.open_dead(id.clone(), &v).map(|d| Some(d.record))
            }
            Location::Queue => {
                let Some(v) = self.engine.get(Table::Queue, &seq_key(idx.seq))? else {
                    return Ok(None);
                };
                self.open_queue_entry(idx.seq, &v).map(Some)
            }
        }
    }

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

    fn open_dead(&self, id: RecordId, v: &[u8]) -> Result<DeadRecord, StoreError> {
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

    /// Number of records in the queue (dead-lettered ones not included).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Bytes charged against `max_bytes` (sealed records plus per-record overhead).
    pub fn used_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Size of the engine's files on disk (may exceed `used_bytes`: engines keep free pages).
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        self.engine.size_on_disk()
    }

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

fn idem_aad(mac: &[u8; 32]) -> Vec<u8> {
    let mut aad = b"hotline-store/idem".to_vec();
    aad.extend_from_slice(mac);
    aad
}

fn dead_reason_aad(id: &str) -> Vec<u8> {
    let mut aad = b"hotline-store/dead-reason".to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn store(dir: &Path, kind: EngineKind) -> Store {
        Store::open(
            dir,
            kind,
            &MasterKey::from_bytes([3; 32]),
            StoreOptions::default(),
        )
        .unwrap()
    }

    fn id(n: u8) -> RecordId {
        RecordId::from_bytes([n; 16])
    }

    fn rec(n: u8) -> NewRecord {
        NewRecord {
            id: id(n),
            receipt: format!("receipt-{n}"),
            received_at: 1_700_000_000,
            channel: Channel::Api,
            envelope: [n; 4].repeat(10),
            idempotency_key: None,
        }
    }

    /// The engines this build has.
    fn kinds() -> Vec<EngineKind> {
        let mut kinds = vec![EngineKind::Redb];
        if cfg!(feature = "sled") {
            kinds.push(EngineKind::Sled);
        }
        kinds
    }

    #[test]
    fn sled_is_refused_clearly_when_not_built() {
        let dir = tempfile::tempdir().unwrap();
        let opened = Store::open(
            dir.path(),
            EngineKind::Sled,
            &MasterKey::from_bytes([3; 32]),
            StoreOptions::default(),
        );
        if cfg!(feature = "sled") {
            assert!(opened.is_ok());
        } else {
            let err = opened.unwrap_err();
            assert!(
                matches!(err, StoreError::EngineNotBuilt { engine: "sled" }),
                "{err:?}"
            );
            assert!(err.to_string().contains("feature"), "{err}");
        }
    }

    /// A sealed record moved under another id (or altered) fails authentication.
    #[test]
    fn swapped_or_tampered_record_fails_to_open() {
        for kind in kinds() {
            let dir = tempfile::tempdir().unwrap();
            let s = store(dir.path(), kind);
            s.append_batch(vec![rec(0xaa), rec(0xbb)]).unwrap();
            let a = s
                .engine
                .get(Table::Queue, &1u64.to_be_bytes())
                .unwrap()
                .unwrap();
            let b = s
                .engine
                .get(Table::Queue, &2u64.to_be_bytes())
                .unwrap()
                .unwrap();
            // Put b's sealed bytes under a's id (1 length byte and 32 id bytes).
            let mut swapped = a[..33].to_vec();
            swapped.extend_from_slice(&b[33..]);
            let mut tampered = b.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            s.engine
                .write(vec![
                    Op::Put(Table::Queue, 1u64.to_be_bytes().to_vec(), swapped),
                    Op::Put(Table::Queue, 2u64.to_be_bytes().to_vec(), tampered),
                ])
                .unwrap();
            for n in [0xaa, 0xbb] {
                let err = s.get(&id(n)).unwrap_err();
                assert!(matches!(err, StoreError::OpenFailed { .. }), "{err:?}");
            }
        }
    }

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
