//! The bytes of every stored value, as types with one `encode` and one
//! `decode` each, so no offset is computed anywhere else. Decoders return
//! a short reason; callers wrap it in [`crate::StoreError::Corrupt`] with
//! the table and key.
//!
//! The layouts (all integers big-endian) are those of `README.md`:
//!
//! | table | key | value |
//! |---|---|---|
//! | queue | seq (u64) | [`QueueValue`]: id_len (u8) · id · [`Sealed`] of [`RecordPlain`] |
//! | index | id | [`IndexEntry`]: location (u8) · seq (u64) · receipt HMAC (32) |
//! | idem | HMAC(key) | [`IdemValue`]: expiry (u64) · [`Sealed`] of [`IdemPlain`] |
//! | receipts | HMAC(code) | [`ReceiptEntry`]: stage (u8) · day (u32) · expiry (u64) |
//! | dead | id | [`DeadValue`]: seq (u64) · record_len (u32) · [`Sealed`] record · [`Sealed`] reason |

use hotline_protocol::{Channel, ReceiptState, RecordId};

/// A decoder's complaint, for [`crate::StoreError::Corrupt`].
pub(crate) type Bad = &'static str;

fn take<const N: usize>(v: &[u8], at: usize) -> Result<[u8; N], Bad> {
    v.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or("truncated")
}

fn u64_at(v: &[u8], at: usize) -> Result<u64, Bad> {
    take::<8>(v, at).map(u64::from_be_bytes)
}

fn u32_at(v: &[u8], at: usize) -> Result<u32, Bad> {
    take::<4>(v, at).map(u32::from_be_bytes)
}

/// Writes a length-prefixed (one byte) string; callers keep it under 256 bytes.
fn put_short(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Reads a length-prefixed string at `at`; returns it and the offset after it.
fn short_at(v: &[u8], at: usize) -> Result<(&str, usize), Bad> {
    let len = usize::from(*v.get(at).ok_or("truncated")?);
    let s = v.get(at + 1..at + 1 + len).ok_or("truncated string")?;
    let s = std::str::from_utf8(s).map_err(|_| "string is not UTF-8")?;
    Ok((s, at + 1 + len))
}

/// A sequence number as a table key.
pub(crate) fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// A table key read back as a sequence number.
pub(crate) fn seq_of(key: &[u8]) -> Result<u64, Bad> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| "key is not a sequence number")
}

/// Bytes sealed under an epoch key: epoch (u32) · nonce · ciphertext · tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sealed<'v> {
    /// The epoch whose key seals `body`.
    pub epoch: u32,
    /// Nonce, ciphertext and tag.
    pub body: &'v [u8],
}

impl<'v> Sealed<'v> {
    /// Length of the epoch prefix.
    pub const PREFIX: usize = 4;

    pub fn encode(epoch: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::PREFIX + body.len());
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    pub fn decode(v: &'v [u8]) -> Result<Sealed<'v>, Bad> {
        Ok(Sealed {
            epoch: u32_at(v, 0).map_err(|_| "sealed value too short")?,
            body: &v[Self::PREFIX..],
        })
    }
}

/// A `queue` value: the record id in clear (it is random) and the sealed record.
/// The id is left as text here (see [`QueueValue::record_id`]) so that a scan
/// for epochs in use never skips a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueValue<'v> {
    pub id: &'v str,
    pub sealed: &'v [u8],
}

impl<'v> QueueValue<'v> {
    pub fn encode(id: &RecordId, sealed: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + id.len() + sealed.len());
        put_short(&mut out, id);
        out.extend_from_slice(sealed);
        out
    }

    pub fn decode(v: &'v [u8]) -> Result<QueueValue<'v>, Bad> {
        let (id, at) = short_at(v, 0)?;
        Ok(QueueValue {
            id,
            sealed: &v[at..],
        })
    }

    /// The id as a record id.
    pub fn record_id(&self) -> Result<RecordId, Bad> {
        self.id.parse().map_err(|_| "id is not a record id")
    }

    /// The length of an encoded value holding `sealed_len` sealed bytes.
    pub fn len(id: &RecordId, sealed_len: usize) -> usize {
        1 + id.len() + sealed_len
    }
}

/// Version byte of [`RecordPlain`].
const RECORD_VERSION: u8 = 1;

/// The plaintext of a sealed record: version · hour (u64) · channel (short
/// string) · envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordPlain {
    /// Receive time rounded down to the hour.
    pub received_at: u64,
    pub channel: Channel,
    pub envelope: Vec<u8>,
}

impl RecordPlain {
    /// Bytes before the envelope for `channel`.
    pub fn overhead(channel: Channel) -> usize {
        1 + 8 + 1 + channel.as_str().len()
    }

    pub fn encode(received_at: u64, channel: Channel, envelope: &[u8]) -> Vec<u8> {
        // Room for the AEAD tag, so sealing in place does not reallocate.
        let mut out = Vec::with_capacity(Self::overhead(channel) + envelope.len() + 16);
        out.push(RECORD_VERSION);
        out.extend_from_slice(&received_at.to_be_bytes());
        put_short(&mut out, channel.as_str());
        out.extend_from_slice(envelope);
        out
    }

    pub fn decode(v: &[u8]) -> Result<RecordPlain, Bad> {
        if v.first() != Some(&RECORD_VERSION) {
            return Err("unknown record version");
        }
        let received_at = u64_at(v, 1)?;
        let (channel, at) = short_at(v, 9)?;
        Ok(RecordPlain {
            received_at,
            channel: channel.parse().map_err(|_| "unknown channel")?,
            envelope: v[at..].to_vec(),
        })
    }
}

/// Where an indexed record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    /// In `queue`, under its seq.
    Queue,
    /// In `dead`, under its id.
    Dead,
}

impl Location {
    fn byte(self) -> u8 {
        match self {
            Location::Queue => 0,
            Location::Dead => 1,
        }
    }

    fn from_byte(b: u8) -> Result<Location, Bad> {
        match b {
            0 => Ok(Location::Queue),
            1 => Ok(Location::Dead),
            _ => Err("unknown location"),
        }
    }
}

/// An `index` value: where the record is and its receipt's HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub loc: Location,
    pub seq: u64,
    pub receipt_mac: [u8; 32],
}

impl IndexEntry {
    const LEN: usize = 1 + 8 + 32;

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.push(self.loc.byte());
        v.extend_from_slice(&self.seq.to_be_bytes());
        v.extend_from_slice(&self.receipt_mac);
        v
    }

    pub fn decode(v: &[u8]) -> Result<IndexEntry, Bad> {
        if v.len() != Self::LEN {
            return Err("bad index entry");
        }
        Ok(IndexEntry {
            loc: Location::from_byte(v[0])?,
            seq: u64_at(v, 1)?,
            receipt_mac: take::<32>(v, 9)?,
        })
    }
}

/// What a stored receipt says: only these two are ever stored; a code with
/// no entry is [`ReceiptState::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Queued,
    Delivered,
}

impl Stage {
    fn byte(self) -> u8 {
        match self {
            Stage::Queued => 0,
            Stage::Delivered => 1,
        }
    }

    fn from_byte(b: u8) -> Result<Stage, Bad> {
        match b {
            0 => Ok(Stage::Queued),
            1 => Ok(Stage::Delivered),
            _ => Err("unknown receipt state"),
        }
    }

    /// The protocol's name for it.
    pub fn state(self) -> ReceiptState {
        match self {
            Stage::Queued => ReceiptState::Queued,
            Stage::Delivered => ReceiptState::Delivered,
        }
    }
}

/// A `receipts` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReceiptEntry {
    pub stage: Stage,
    /// Day of receipt (queued) or of delivery (delivered), days since 1970.
    pub day: u32,
    /// When a delivered entry may be purged (0 while queued).
    pub expiry: u64,
}

impl ReceiptEntry {
    const LEN: usize = 1 + 4 + 8;

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.push(self.stage.byte());
        v.extend_from_slice(&self.day.to_be_bytes());
        v.extend_from_slice(&self.expiry.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Result<ReceiptEntry, Bad> {
        Ok(ReceiptEntry {
            stage: Stage::from_byte(*v.first().ok_or("bad receipt entry")?)?,
            day: u32_at(v, 1).map_err(|_| "bad receipt entry")?,
            expiry: u64_at(v, 5).map_err(|_| "bad receipt entry")?,
        })
    }
}

/// An `idem` value: when it expires, and the sealed first answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdemValue<'v> {
    pub expiry: u64,
    pub sealed: &'v [u8],
}

impl<'v> IdemValue<'v> {
    pub fn encode(expiry: u64, sealed: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + sealed.len());
        v.extend_from_slice(&expiry.to_be_bytes());
        v.extend_from_slice(sealed);
        v
    }

    pub fn decode(v: &'v [u8]) -> Result<IdemValue<'v>, Bad> {
        Ok(IdemValue {
            expiry: u64_at(v, 0)?,
            sealed: &v[8..],
        })
    }
}

/// The plaintext of an idempotency entry: the first record's id and receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdemPlain {
    pub id: RecordId,
    pub receipt: String,
}

impl IdemPlain {
    pub fn encode(id: &RecordId, receipt: &str) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + id.len() + receipt.len() + 16);
        put_short(&mut v, id);
        v.extend_from_slice(receipt.as_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Result<IdemPlain, Bad> {
        let (id, at) = short_at(v, 0)?;
        Ok(IdemPlain {
            id: id.parse().map_err(|_| "id is not a record id")?,
            receipt: std::str::from_utf8(&v[at..])
                .map_err(|_| "receipt is not UTF-8")?
                .to_owned(),
        })
    }
}

/// A `dead` value: the record's old seq, its sealed record (as it was in
/// `queue`) and the sealed reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeadValue<'v> {
    pub seq: u64,
    pub record: &'v [u8],
    pub reason: &'v [u8],
}

impl<'v> DeadValue<'v> {
    pub fn encode(seq: u64, record: &[u8], reason: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(12 + record.len() + reason.len());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&(record.len() as u32).to_be_bytes());
        v.extend_from_slice(record);
        v.extend_from_slice(reason);
        v
    }

    pub fn decode(v: &'v [u8]) -> Result<DeadValue<'v>, Bad> {
        let seq = u64_at(v, 0)?;
        let len = u32_at(v, 8)? as usize;
        Ok(DeadValue {
            seq,
            record: v.get(12..12 + len).ok_or("truncated record")?,
            reason: &v[12 + len..],
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_value_round_trips_and_truncation_is_caught() {
        let id = RecordId::from_bytes([0xab; 16]);
        let q = QueueValue::encode(&id, b"sealed");
        assert_eq!(q.len(), QueueValue::len(&id, 6));
        let d = QueueValue::decode(&q).unwrap();
        assert_eq!(
            (d.record_id().unwrap(), d.sealed),
            (id.clone(), &b"sealed"[..])
        );
        assert!(QueueValue::decode(&q[..10]).is_err());

        for channel in Channel::ALL {
            let p = RecordPlain::encode(7200, channel, b"env");
            assert_eq!(p.len(), RecordPlain::overhead(channel) + 3);
            let r = RecordPlain::decode(&p).unwrap();
            assert_eq!(
                (r.received_at, r.channel, &r.envelope[..]),
                (7200, channel, &b"env"[..])
            );
            assert!(RecordPlain::decode(&p[..5]).is_err());
        }

        let i = IndexEntry {
            loc: Location::Dead,
            seq: 9,
            receipt_mac: [5; 32],
        };
        assert_eq!(IndexEntry::decode(&i.encode()).unwrap(), i);
        assert!(IndexEntry::decode(&i.encode()[1..]).is_err());

        let r = ReceiptEntry {
            stage: Stage::Delivered,
            day: 20_000,
            expiry: 99,
        };
        assert_eq!(ReceiptEntry::decode(&r.encode()).unwrap(), r);
        assert!(ReceiptEntry::decode(&[7; 13]).is_err());

        let v = IdemValue::encode(42, b"xyz");
        assert_eq!(
            IdemValue::decode(&v).unwrap(),
            IdemValue {
                expiry: 42,
                sealed: b"xyz"
            }
        );
        let p = IdemPlain::encode(&id, "1234-5678-9012-3452");
        assert_eq!(
            IdemPlain::decode(&p).unwrap().receipt,
            "1234-5678-9012-3452"
        );

        let dv = DeadValue::encode(3, b"rec", b"why");
        assert_eq!(
            DeadValue::decode(&dv).unwrap(),
            DeadValue {
                seq: 3,
                record: b"rec",
                reason: b"why"
            }
        );
        assert!(DeadValue::decode(&dv[..13]).is_err());

        let s = Sealed::encode(17, b"body");
        assert_eq!(
            Sealed::decode(&s).unwrap(),
            Sealed {
                epoch: 17,
                body: b"body"
            }
        );
        assert_eq!(seq_of(&seq_key(77)).unwrap(), 77);
        assert!(seq_of(b"abc").is_err());
    }
}
