//! The records that cross the store's API: what intake hands in ([`NewRecord`]), what an
//! append answers ([`Appended`]) and what a read gives back ([`StoredRecord`]). Plain data,
//! apart from the queue code, so callers can read what they get without the storage details.

use hotline_protocol::{Channel, RecordId};

use crate::StoreError;

/// Longest receipt code accepted.
pub const MAX_FIELD_LEN: usize = 255;

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
