//! What a store is opened with: the engine choice and the bounded tunables. Kept apart from
//! [`crate::Store`] so the gateway config can name and check them without reading the queue code.

use hotline_protocol::time::DAY;

/// Which engine holds the queue. Chosen in the gateway config; both pass the same tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// redb: real fsync on every commit, stable file format. The default.
    #[default]
    Redb,
    /// sled 0.34: weaker durability (see README.md); opt-in only, and only
    /// in builds with the cargo feature `sled` (else [`Store::open`](crate::Store::open)
    /// fails with [`StoreError::EngineNotBuilt`](crate::StoreError::EngineNotBuilt)).
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
    /// overhead). An append that would pass it fails with
    /// [`StoreError::Full`](crate::StoreError::Full) (HTTP 507).
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
