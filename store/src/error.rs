//! Typed errors of the store. Every variant says where it happened (file, table, record) so
//! an operator can act on a log line alone. Errors are `Clone` (sources are shared) because the
//! group-commit writer answers every record of a failed batch with the same error.

use std::path::PathBuf;
use std::sync::Arc;

/// Shared, cloneable error source from an engine (redb or sled).
pub type EngineSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the store.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The configured byte cap would be exceeded, or the disk is full (ENOSPC / quota).
    /// Nothing of the batch was stored; the gateway answers 507.
    #[error("store full: the byte cap would be exceeded or the disk is full; nothing was stored")]
    Full,

    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (e.g. "read key file").
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },

    /// The engine (redb or sled) reported an error.
    #[error("{engine} engine: {op} on table `{table}`: {source}")]
    Engine {
        /// "redb" or "sled".
        engine: &'static str,
        /// The table concerned ("*" for the whole database).
        table: &'static str,
        /// What was being done.
        op: &'static str,
        /// The engine's own error.
        #[source]
        source: EngineSource,
    },

    /// The master key file may be read by group or others; refused so the key is not exposed.
    #[error(
        "master key file {} has mode {mode:o}: it must not be readable by group or others (chmod 600)",
        path.display()
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The master key file is not 64 hex digits (optionally followed by a newline).
    #[error("master key file {}: {reason}", path.display())]
    KeyFileFormat {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The keyring in the data directory was written under another master key.
    #[error(
        "keyring {} was not written with this master key: wrong master key file for this data directory",
        path.display()
    )]
    WrongMasterKey {
        /// The keyring file.
        path: PathBuf,
    },

    /// The keyring file is damaged (truncated, bad magic, an entry that does not unwrap).
    #[error("keyring {} is corrupt: {reason}", path.display())]
    KeyringCorrupt {
        /// The keyring file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The record's epoch key is gone (crypto-shredded, or the keyring was lost): it can never
    /// be opened again.
    #[error("record {id} (table `{table}`) is sealed under epoch {epoch}, whose key is gone (shredded or lost)")]
    EpochKeyMissing {
        /// The table holding the record.
        table: &'static str,
        /// The record id (or "-" for entries without one).
        id: String,
        /// The epoch number.
        epoch: u32,
    },

    /// A record failed authentication: tampered bytes, or sealed under another key.
    #[error(
        "record {id} (table `{table}`) failed authentication: tampered or sealed under another key"
    )]
    OpenFailed {
        /// The table holding the record.
        table: &'static str,
        /// The record id.
        id: String,
    },

    /// Bytes read back from the engine do not have the expected layout.
    #[error("corrupt entry in table `{table}` (key {key}): {reason}")]
    Corrupt {
        /// The table concerned.
        table: &'static str,
        /// A printable form of the key (sequence number, id, or hex of an HMAC).
        key: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// The caller handed a record the store cannot take (field too long, id reused...).
    #[error("invalid record {id}: {reason}")]
    InvalidRecord {
        /// The record id as given.
        id: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// The data directory holds the other engine's files; switching engines would hide the queue.
    #[error(
        "data directory {} already holds a {found} store; refusing to open it as {requested} (migrate or point to another directory)",
        path.display()
    )]
    EngineMismatch {
        /// The data directory.
        path: PathBuf,
        /// The engine whose files were found.
        found: &'static str,
        /// The engine asked for.
        requested: &'static str,
    },

    /// The config asks for an engine this build does not include (sled is behind the cargo
    /// feature `sled`, off by default).
    #[error(
        "store engine {engine} is not built into this binary: rebuild with the cargo feature \"{engine}\" or use engine = \"redb\""
    )]
    EngineNotBuilt {
        /// The engine asked for.
        engine: &'static str,
    },

    /// The operating system's random number generator failed.
    #[error("system random number generator failed ({what})")]
    Random {
        /// What the randomness was for.
        what: &'static str,
    },

    /// The group-commit writer stopped before answering (closed, or its task failed).
    #[error("the commit writer stopped before answering")]
    CommitterClosed,
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        if is_disk_full(&source) {
            return StoreError::Full;
        }
        StoreError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

/// True for "no space left on device" and "disk quota exceeded".
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
