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
//!
//! Layout: this file holds [`Store`], opening, and the sealing primitives; `append` (group
//! commit and idempotency), `read`, `dead` (dead letters), `receipts` (delivery and receipt
//! status) and `retention` (purging and crypto-shredding) each add their part of `impl Store`.

#![forbid(unsafe_code)]

mod append;
pub mod committer;
mod dead;
mod engine;
mod error;
mod keys;
mod options;
mod read;
mod receipts;
mod record;
mod retention;
mod values;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use hotline_protocol::RecordId;
use ring::aead::LessSafeKey;
use ring::hmac;
use ring::rand::SystemRandom;

pub use dead::{DeadRecord, MAX_REASON_LEN};
use engine::redb::RedbEngine;
use engine::{Engine, Table};
pub use error::{EngineSource, StoreError};
pub use keys::MasterKey;
use keys::{DerivedKeys, Keyring};
pub use options::{EngineKind, StoreOptions};
pub use record::{Appended, NewRecord, StoredRecord, MAX_FIELD_LEN};
use values::{seq_of, DeadValue, IndexEntry, QueueValue, RecordPlain, Sealed};

/// Name of the keyring file in the data directory.
pub const KEYRING_FILE: &str = "epochs.keys";

/// Bytes charged per record on top of its sealed size, for its index, receipt and
/// idempotency entries, so the cap tracks real usage more closely.
const RECORD_OVERHEAD: u64 = 160;

const META_NEXT_SEQ: &[u8] = b"next_seq";

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
    // Sealing and opening under epoch keys, and reading the index: the primitives every
    // other module (append, read, dead letters, receipts) builds on.

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

    /// The index entry of `id`: where the record is and its receipt's HMAC.
    fn index_entry(&self, id: &RecordId) -> Result<Option<IndexEntry>, StoreError> {
        self.engine
            .get(Table::Index, id.as_bytes())?
            .map(|v| IndexEntry::decode(&v).map_err(corrupt(Table::Index, id)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    //! Opening and sealing; the helpers here are shared by the other modules' tests.
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use engine::Op;
    use hotline_protocol::Channel;

    pub(crate) fn store(dir: &Path, kind: EngineKind) -> Store {
        Store::open(
            dir,
            kind,
            &MasterKey::from_bytes([3; 32]),
            StoreOptions::default(),
        )
        .unwrap()
    }

    pub(crate) fn id(n: u8) -> RecordId {
        RecordId::from_bytes([n; 16])
    }

    pub(crate) fn rec(n: u8) -> NewRecord {
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
    pub(crate) fn kinds() -> Vec<EngineKind> {
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
}
