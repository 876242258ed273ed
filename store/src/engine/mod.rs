//! The two storage engines behind one small private trait. Every table maps bytes to bytes;
//! the store above does all encoding and sealing, so the engines never see plaintext.

use crate::error::StoreError;

pub(crate) mod redb;
#[cfg(feature = "sled")]
pub(crate) mod sled;

/// The sled engine's folder in the data directory. Known even in builds
/// without sled, so such a build still refuses a directory holding a sled store.
pub(crate) const SLED_DIR: &str = "sled";

/// The logical tables. Their names appear in errors and, for redb, as table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// seq (u64 BE) -> id_len || id || sealed record
    Queue,
    /// id -> location || seq || receipt HMAC
    Index,
    /// HMAC(idempotency key) -> expiry || epoch || sealed (id, receipt)
    Idem,
    /// HMAC(receipt code) -> status || day || expiry
    Receipts,
    /// id -> seq || record length || record || sealed reason
    Dead,
    /// small counters, e.g. the next sequence number
    Meta,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Queue,
        Table::Index,
        Table::Idem,
        Table::Receipts,
        Table::Dead,
        Table::Meta,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Queue => "queue",
            Table::Index => "index",
            Table::Idem => "idem",
            Table::Receipts => "receipts",
            Table::Dead => "dead",
            Table::Meta => "meta",
        }
    }

    /// One-byte prefix used where tables share one keyspace (sled).
    #[cfg(feature = "sled")]
    pub fn prefix(self) -> u8 {
        match self {
            Table::Queue => 1,
            Table::Index => 2,
            Table::Idem => 3,
            Table::Receipts => 4,
            Table::Dead => 5,
            Table::Meta => 6,
        }
    }
}

/// One change inside an atomic write.
#[derive(Debug)]
pub(crate) enum Op {
    Put(Table, Vec<u8>, Vec<u8>),
    Del(Table, Vec<u8>),
}

/// Visitor over (key, value) pairs; return `Ok(false)` to stop early.
pub(crate) type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<bool, StoreError>;

/// What the store needs from an engine, and nothing more.
pub(crate) trait Engine: Send + Sync {
    /// Applies all ops in ONE transaction and returns only once it is durable (as far as the
    /// engine can promise, see README.md).
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError>;
    /// Reads one value.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Visits entries in key order with key > `after` (all when `None`).
    fn scan(&self, table: Table, after: Option<&[u8]>, visit: Visit<'_>) -> Result<(), StoreError>;
    /// Bytes the engine's files take on disk.
    fn size_on_disk(&self) -> Result<u64, StoreError>;
}
