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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use ring::aead::LessSafeKey;

use ring::hmac;
use ring::rand::SystemRandom;

use engine::redb::RedbEngine;
use engine::sled::SledEngine;
use engine::{Engine, Op, Table};
pub use error::{EngineSource, StoreError};
pub use keys::MasterKey;
use keys::{DerivedKeys, Keyring};

/// Name of the keyring file in the data directory.
pub const KEYRING_FILE: &str = "epochs.keys";

/// Bytes charged per record on top of its sealed size, for its index, receipt and
/// idempotency entries, so the cap tracks real usage more closely.
const RECORD_OVERHEAD: u64 = 160;
/// Longest id, receipt code and channel accepted (each is length-prefixed with one byte).
pub const MAX_FIELD_LEN: usize = 255;
/// Longest dead-letter reason kept (longer ones are truncated).
pub const MAX_REASON_LEN: usize = 1024;

const PLAINTEXT_VERSION: u8 = 1;
const LOC_QUEUE: u8 = 0;
const LOC_DEAD: u8 = 1;
const RECEIPT_QUEUED: u8 = 0;
const RECEIPT_DELIVERED: u8 = 1;
const META_NEXT_SEQ: &[u8] = b"next_seq";
const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;
/// ChaCha20-Poly1305 nonce and tag lengths.
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Which engine holds the queue. Chosen in the gateway config; both pass the same tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// redb: real fsync on every commit, stable file format. The default.
    #[default]
    Redb,
    /// sled 0.34: weaker durability (see README.md); opt-in only.
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
    /// Random record id made by the caller (stored in clear: it must carry no information).
    pub id: String,
    /// Receipt code given to the reporter; only its HMAC is stored.
    pub receipt: String,
    /// Receive time, Unix seconds; stored rounded down to the hour, and picks the key epoch.
    pub received_at: u64,
    /// Intake channel (e.g. "api", "web-sealed-by-gateway"); stored sealed.
    pub channel: String,
    /// The envelope's bytes exactly as received; stored sealed.
    pub envelope: Vec<u8>,
    /// Client's `Idempotency-Key` (128 bits), if it sent one; only its HMAC is stored.
    pub idempotency_key: Option<[u8; 16]>,
}

impl NewRecord {
    /// Checks field lengths, so a bad record can be refused before it joins a batch.
    pub fn check(&self) -> Result<(), StoreError> {
        let bad = |reason| {
            Err(StoreError::InvalidRecord {
                id: self.id.chars().take(64).collect(),
                reason,
            })
        };
        if self.id.is_empty() || self.id.len() > MAX_FIELD_LEN {
            return bad("id must be 1 to 255 bytes");
        }
        if self.receipt.len() > MAX_FIELD_LEN {
            return bad("receipt code longer than 255 bytes");
        }
        if self.channel.len() > MAX_FIELD_LEN {
            return bad("channel longer than 255 bytes");
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
        id: String,
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
    pub id: String,
    /// Receive time rounded down to the hour (Unix seconds).
    pub received_at: u64,
    /// Intake channel.
    pub channel: String,
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

/// What a reporter may learn from a receipt code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Stored, not yet delivered (or dead-lettered, awaiting staff).
    Queued,
    /// Delivered (pulled and acked, or pushed) on this day (days since 1970-01-01 UTC).
    Delivered {
        /// Days since the Unix epoch.
        day: u32,
    },
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

/// Current Unix time in seconds (0 before 1970).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn mac32(key: &hmac::Key, data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(key, data).as_ref());
    out
}

/// Sealed length of a queue value: id_len || id || epoch || nonce || ct(plaintext) || tag.
fn queue_value_len(r: &NewRecord) -> u64 {
    let plaintext = 1 + 8 + 1 + r.channel.len() + r.envelope.len();
    (1 + r.id.len() + 4 + NONCE_LEN + plaintext + TAG_LEN) as u64
}

/// Splits a queue value into (id, sealed record bytes).
fn split_queue_value(seq: u64, v: &[u8]) -> Result<(String, &[u8]), StoreError> {
    let corrupt = |reason| StoreError::Corrupt {
        table: Table::Queue.name(),
        key: seq.to_string(),
        reason,
    };
    let id_len = *v.first().ok_or_else(|| corrupt("empty value"))? as usize;
    let id = v
        .get(1..1 + id_len)
        .ok_or_else(|| corrupt("truncated id"))?;
    let id = String::from_utf8(id.to_vec()).map_err(|_| corrupt("id is not UTF-8"))?;
    let rest = v
        .get(1 + id_len..)
        .ok_or_else(|| corrupt("truncated record"))?;
    Ok((id, rest))
}

/// Parsed `index` value.
struct IndexEntry {
    loc: u8,
    seq: u64,
    receipt_mac: [u8; 32],
}

impl IndexEntry {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(41);
        v.push(self.loc);
        v.extend_from_slice(&self.seq.to_be_bytes());
        v.extend_from_slice(&self.receipt_mac);
        v
    }

    fn decode(id: &str, v: &[u8]) -> Result<IndexEntry, StoreError> {
        let corrupt = || StoreError::Corrupt {
            table: Table::Index.name(),
            key: id.to_owned(),
            reason: "bad index entry",
        };
        if v.len() != 41 {
            return Err(corrupt());
        }
        let seq = be_u64(&v[1..]).ok_or_else(corrupt)?;
        let mut receipt_mac = [0u8; 32];
        receipt_mac.copy_from_slice(&v[9..41]);
        Ok(IndexEntry {
            loc: v[0],
            seq,
            receipt_mac,
        })
    }
}

fn receipt_value(status: u8, day: u32, expiry: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(13);
    v.push(status);
    v.extend_from_slice(&day.to_be_bytes());
    v.extend_from_slice(&expiry.to_be_bytes());
    v
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
            EngineKind::Redb => (dir.join(SledEngine::DIR), "sled"),
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
            EngineKind::Sled => Box::new(SledEngine::open(dir, opts.cache_bytes)?),
        };

        let mut count = 0u64;
        let mut bytes = 0u64;
        let mut last_seq = 0u64;
        engine.scan(Table::Queue, None, &mut |k, v| {
            count += 1;
            bytes += v.len() as u64 + RECORD_OVERHEAD;
            last_seq = be_u64(k).unwrap_or(last_seq).max(last_seq);
            Ok(true)
        })?;
        engine.scan(Table::Dead, None, &mut |_, v| {
            bytes += v.len() as u64 + RECORD_OVERHEAD;
            last_seq = be_u64(v).unwrap_or(0).max(last_seq);
            Ok(true)
        })?;
        let stored_next = engine
            .get(Table::Meta, META_NEXT_SEQ)?
            .and_then(|v| be_u64(&v))
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
            Dup(String, String),
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
                if let Some((id, receipt)) = self.idem_lookup(&mac, r.received_at)? {
                    plans.push(Plan::Dup(id, receipt));
                    continue;
                }
                in_batch.insert(mac, i);
            }
            if !ids.insert(r.id.as_str())
                || self.engine.get(Table::Index, r.id.as_bytes())?.is_some()
            {
                return Err(StoreError::InvalidRecord {
                    id: r.id.clone(),
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
                next_seq.to_be_bytes().to_vec(),
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
            id: r.id.clone(),
            reason: "received_at is too far in the future",
        })
    }

    /// Seals under the epoch key: epoch (u32 BE) || nonce || ciphertext+tag.
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
        let mut out = Vec::with_capacity(4 + sealed.len());
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
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
        let epoch = be_u32(bytes).ok_or_else(|| StoreError::Corrupt {
            table: table.name(),
            key: id.to_owned(),
            reason: "sealed value too short",
        })?;
        let key = self.epoch_key(table, id, epoch)?;
        keys::open(&key, aad, &bytes[4..]).ok_or_else(|| StoreError::OpenFailed {
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
        let mut plain = Vec::with_capacity(10 + r.channel.len() + r.envelope.len() + TAG_LEN);
        plain.push(PLAINTEXT_VERSION);
        plain.extend_from_slice(&hour.to_be_bytes());
        plain.push(r.channel.len() as u8);
        plain.extend_from_slice(r.channel.as_bytes());
        plain.extend_from_slice(&r.envelope);
        let sealed = self.seal_with_epoch(epoch, Table::Queue, &r.id, r.id.as_bytes(), plain)?;
        let mut value = Vec::with_capacity(1 + r.id.len() + sealed.len());
        value.push(r.id.len() as u8);
        value.extend_from_slice(r.id.as_bytes());
        value.extend_from_slice(&sealed);
        ops.push(Op::Put(Table::Queue, seq.to_be_bytes().to_vec(), value));

        let receipt_mac = mac32(&self.keys.receipt, r.receipt.as_bytes());
        let index = IndexEntry {
            loc: LOC_QUEUE,
            seq,
            receipt_mac,
        };
        ops.push(Op::Put(
            Table::Index,
            r.id.as_bytes().to_vec(),
            index.encode(),
        ));
        let day = u32::try_from(r.received_at / DAY).unwrap_or(u32::MAX);
        ops.push(Op::Put(
            Table::Receipts,
            receipt_mac.to_vec(),
            receipt_value(RECEIPT_QUEUED, day, 0),
        ));

        if let Some(mac) = idem {
            let mut plain = Vec::with_capacity(2 + r.id.len() + r.receipt.len());
            plain.push(r.id.len() as u8);
            plain.extend_from_slice(r.id.as_bytes());
            plain.extend_from_slice(r.receipt.as_bytes());
            let aad = idem_aad(&mac);
            let sealed = self.seal_with_epoch(epoch, Table::Idem, &r.id, &aad, plain)?;
            // Expiry rounded up to the hour: a coarse time, and never shorter than promised.
            let expiry = r.received_at.div_ceil(HOUR) * HOUR + self.opts.retention_secs;
            let mut value = Vec::with_capacity(8 + sealed.len());
            value.extend_from_slice(&expiry.to_be_bytes());
            value.extend_from_slice(&sealed);
            ops.push(Op::Put(Table::Idem, mac.to_vec(), value));
        }
        Ok(())
    }

    /// Looks up a live idempotency entry: Some((id, receipt)) if the key was used and has not
    /// expired at `now`. An entry that cannot be opened is logged and treated as absent, so a
    /// damaged entry never blocks intake.
    fn idem_lookup(
        &self,
        mac: &[u8; 32],
        now: u64,
    ) -> Result<Option<(String, String)>, StoreError> {
        let Some(v) = self.engine.get(Table::Idem, mac)? else {
            return Ok(None);
        };
        let Some(expiry) = be_u64(&v) else {
            return Ok(None);
        };
        if expiry <= now {
            return Ok(None);
        }
        let plain = match self.open_with_epoch(Table::Idem, "-", &idem_aad(mac), &v[8..]) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "idempotency entry cannot be opened; ignoring it");
                return Ok(None);
            }
        };
        let id_len = plain.first().copied().unwrap_or(0) as usize;
        let (Some(id), Some(receipt)) = (plain.get(1..1 + id_len), plain.get(1 + id_len..)) else {
            return Ok(None);
        };
        match (
            String::from_utf8(id.to_vec()),
            String::from_utf8(receipt.to_vec()),
        ) {
            (Ok(id), Ok(receipt)) => Ok(Some((id, receipt))),
            _ => Ok(None),
        }
    }

    /// Opens a queue value into a record.
    fn open_record(&self, seq: u64, id: String, sealed: &[u8]) -> Result<StoredRecord, StoreError> {
        let plain = self.open_with_epoch(Table::Queue, &id, id.as_bytes(), sealed)?;
        let corrupt = |reason| StoreError::Corrupt {
            table: Table::Queue.name(),
            key: id.clone(),
            reason,
        };
        if plain.first() != Some(&PLAINTEXT_VERSION) {
            return Err(corrupt("unknown record version"));
        }
        let received_at = be_u64(&plain[1..]).ok_or_else(|| corrupt("truncated record"))?;
        let ch_len = *plain.get(9).ok_or_else(|| corrupt("truncated record"))? as usize;
        let channel = plain
            .get(10..10 + ch_len)
            .ok_or_else(|| corrupt("truncated channel"))?;
        let channel =
            String::from_utf8(channel.to_vec()).map_err(|_| corrupt("channel is not UTF-8"))?;
        let envelope = plain.get(10 + ch_len..).unwrap_or_default().to_vec();
        Ok(StoredRecord {
            seq,
            id,
            received_at,
            channel,
            envelope,
        })
    }

    /// Up to `limit` queued records with seq > `cursor`, oldest first (cursor 0 = from the
    /// start). A record that cannot be opened fails the call with an error naming it.
    pub fn read_after(&self, cursor: u64, limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        let mut raw = Vec::new();
        if limit > 0 {
            self.engine
                .scan(Table::Queue, Some(&cursor.to_be_bytes()), &mut |k, v| {
                    raw.push((k.to_vec(), v.to_vec()));
                    Ok(raw.len() < limit)
                })?;
        }
        raw.into_iter()
            .map(|(k, v)| {
                let seq = be_u64(&k).ok_or_else(|| StoreError::Corrupt {
                    table: Table::Queue.name(),
                    key: hex::encode(&k),
                    reason: "key is not a sequence number",
                })?;
                let (id, sealed) = split_queue_value(seq, &v)?;
                self.open_record(seq, id, sealed)
            })
            .collect()
    }

    /// One record by id, whether queued or dead-lettered.
    pub fn get(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        let Some(idx) = self.engine.get(Table::Index, id.as_bytes())? else {
            return Ok(None);
        };
        let idx = IndexEntry::decode(id, &idx)?;
        if idx.loc == LOC_DEAD {
            let Some(v) = self.engine.get(Table::Dead, id.as_bytes())? else {
                return Ok(None);
            };
            return self.open_dead(id, &v).map(|d| Some(d.record));
        }
        let Some(v) = self.engine.get(Table::Queue, &idx.seq.to_be_bytes())? else {
            return Ok(None);
        };
        let (stored_id, sealed) = split_queue_value(idx.seq, &v)?;
        self.open_record(idx.seq, stored_id, sealed).map(Some)
    }

    /// Deletes records (queued or dead) by id in one durable commit and marks their receipts
    /// delivered today. Unknown ids are ignored and not counted; returns how many were deleted.
    pub fn delete(&self, ids: &[String]) -> Result<u64, StoreError> {
        let now = unix_now();
        let day = u32::try_from(now / DAY).unwrap_or(u32::MAX);
        let expiry = (now / DAY + 1) * DAY + self.opts.receipt_secs;
        let _writer = lock(&self.writer);
        let mut seen = HashSet::new();
        let mut ops = Vec::new();
        let (mut deleted, mut from_queue, mut freed) = (0u64, 0u64, 0u64);
        for id in ids {
            if !seen.insert(id.as_str()) {
                continue;
            }
            let Some(idx) = self.engine.get(Table::Index, id.as_bytes())? else {
                continue;
            };
            let idx = IndexEntry::decode(id, &idx)?;
            let (table, key) = if idx.loc == LOC_DEAD {
                (Table::Dead, id.as_bytes().to_vec())
            } else {
                (Table::Queue, idx.seq.to_be_bytes().to_vec())
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
                receipt_value(RECEIPT_DELIVERED, day, expiry),
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
    pub fn mark_dead(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let _writer = lock(&self.writer);
        let Some(idx) = self.engine.get(Table::Index, id.as_bytes())? else {
            return Ok(false);
        };
        let mut idx = IndexEntry::decode(id, &idx)?;
        if idx.loc != LOC_QUEUE {
            return Ok(false);
        }
        let seq_key = idx.seq.to_be_bytes();
        let Some(v) = self.engine.get(Table::Queue, &seq_key)? else {
            return Ok(false);
        };
        let (_, record) = split_queue_value(idx.seq, &v)?;
        let epoch = be_u32(record).ok_or_else(|| StoreError::Corrupt {
            table: Table::Queue.name(),
            key: id.to_owned(),
            reason: "sealed value too short",
        })?;
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
        let mut value = Vec::with_capacity(12 + record.len() + sealed_reason.len());
        value.extend_from_slice(&idx.seq.to_be_bytes());
        value.extend_from_slice(&(record.len() as u32).to_be_bytes());
        value.extend_from_slice(record);
        value.extend_from_slice(&sealed_reason);
        let (old_len, new_len) = (v.len() as u64, value.len() as u64);
        idx.loc = LOC_DEAD;
        self.engine.write(vec![
            Op::Del(Table::Queue, seq_key.to_vec()),
            Op::Put(Table::Dead, id.as_bytes().to_vec(), value),
            Op::Put(Table::Index, id.as_bytes().to_vec(), idx.encode()),
        ])?;
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_add(new_len, Ordering::AcqRel);
        self.bytes.fetch_sub(old_len, Ordering::AcqRel);
        Ok(true)
    }

    fn open_dead(&self, id: &str, v: &[u8]) -> Result<DeadRecord, StoreError> {
        let corrupt = |reason| StoreError::Corrupt {
            table: Table::Dead.name(),
            key: id.to_owned(),
            reason,
        };
        let seq = be_u64(v).ok_or_else(|| corrupt("truncated"))?;
        let rec_len = be_u32(&v[8..]).ok_or_else(|| corrupt("truncated"))? as usize;
        let record = v
            .get(12..12 + rec_len)
            .ok_or_else(|| corrupt("truncated record"))?;
        let sealed_reason = v
            .get(12 + rec_len..)
            .ok_or_else(|| corrupt("truncated reason"))?;
        let record = self.open_record(seq, id.to_owned(), record)?;
        let reason = self.open_with_epoch(Table::Dead, id, &dead_reason_aad(id), sealed_reason)?;
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
            .map(|(k, v)| self.open_dead(&String::from_utf8_lossy(&k), &v))
            .collect()
    }

    /// What a reporter may learn from a receipt code: queued, delivered (day), or nothing
    /// (unknown, or delivered longer ago than `receipt_secs`).
    pub fn receipt_status(&self, code: &str) -> Result<Option<ReceiptStatus>, StoreError> {
        let mac = mac32(&self.keys.receipt, code.as_bytes());
        let Some(v) = self.engine.get(Table::Receipts, &mac)? else {
            return Ok(None);
        };
        let (Some(&status), Some(day), Some(expiry)) = (
            v.first(),
            be_u32(&v[1.min(v.len())..]),
            be_u64(&v[5.min(v.len())..]),
        ) else {
            return Err(StoreError::Corrupt {
                table: Table::Receipts.name(),
                key: hex::encode(mac),
                reason: "bad receipt entry",
            });
        };
        Ok(match status {
            RECEIPT_QUEUED => Some(ReceiptStatus::Queued),
            _ if expiry <= unix_now() => None,
            _ => Some(ReceiptStatus::Delivered { day }),
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
                    let expired = match table {
                        Table::Idem => be_u64(v).is_none_or(|exp| exp <= now),
                        _ => {
                            v.first() == Some(&RECEIPT_DELIVERED)
                                && be_u64(v.get(5..).unwrap_or_default())
                                    .is_none_or(|exp| exp <= now)
                        }
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
        self.engine.scan(Table::Queue, None, &mut |_, v| {
            let id_len = v.first().copied().unwrap_or(0) as usize;
            if let Some(e) = v.get(1 + id_len..).and_then(be_u32) {
                in_use.insert(e);
            }
            Ok(true)
        })?;
        self.engine.scan(Table::Dead, None, &mut |_, v| {
            if let Some(e) = v.get(12..).and_then(be_u32) {
                in_use.insert(e);
            }
            if let Some(rec_len) = v.get(8..).and_then(be_u32) {
                if let Some(e) = v.get(12 + rec_len as usize..).and_then(be_u32) {
                    in_use.insert(e);
                }
            }
            Ok(true)
        })?;
        self.engine.scan(Table::Idem, None, &mut |_, v| {
            if let Some(e) = v.get(8..).and_then(be_u32) {
                in_use.insert(e);
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

    fn rec(id: &str) -> NewRecord {
        NewRecord {
            id: id.to_owned(),
            receipt: format!("receipt-{id}"),
            received_at: 1_700_000_000,
            channel: "api".to_owned(),
            envelope: id.as_bytes().repeat(10),
            idempotency_key: None,
        }
    }

    /// A sealed record moved under another id (or altered) fails authentication.
    #[test]
    fn swapped_or_tampered_record_fails_to_open() {
        for kind in [EngineKind::Redb, EngineKind::Sled] {
            let dir = tempfile::tempdir().unwrap();
            let s = store(dir.path(), kind);
            s.append_batch(vec![rec("aaaa"), rec("bbbb")]).unwrap();
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
            // Put b's sealed bytes under a's id.
            let mut swapped = a[..5].to_vec();
            swapped.extend_from_slice(&b[5..]);
            let mut tampered = b.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            s.engine
                .write(vec![
                    Op::Put(Table::Queue, 1u64.to_be_bytes().to_vec(), swapped),
                    Op::Put(Table::Queue, 2u64.to_be_bytes().to_vec(), tampered),
                ])
                .unwrap();
            for id in ["aaaa", "bbbb"] {
                let err = s.get(id).unwrap_err();
                assert!(matches!(err, StoreError::OpenFailed { .. }), "{err:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn roundtrip_any_record(
            channel in "[a-z\\-]{0,40}",
            envelope in proptest::collection::vec(any::<u8>(), 0..4096),
            received_at in 0u64..4_000_000_000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let s = store(dir.path(), EngineKind::Redb);
            let r = NewRecord { channel: channel.clone(), envelope: envelope.clone(), received_at, ..rec("x1") };
            s.append_batch(vec![r]).unwrap();
            let got = s.get("x1").unwrap().unwrap();
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
            channel: r.channel.clone(),
            envelope: r.envelope.clone(),
            idempotency_key: None,
        }
    }
}
