//! Hotline report protocol v1, as specified in `SPEC.md`.
//!
//! Everything a reporter's device, the gateway and the hotline must agree on,
//! with no I/O, so the same code can go into a phone app unchanged: the
//! messages and their bounded CBOR codec, the HPKE envelope, the signed key
//! document, the hotline's keys as PEM, receipt codes and padding, the small
//! values every party names (channels, record ids, receipt states, error
//! reasons, headers) and the one calendar they share.
#![forbid(unsafe_code)]

/// The protocol version this crate speaks.
pub const VERSION: u64 = 1;

pub mod cbor;
pub mod envelope;
pub mod keydoc;
pub mod keys;
pub mod messages;
pub mod reason;
pub mod receipt;
pub mod report;
pub mod time;
pub mod values;

pub use cbor::{DecodeError, Limits};
pub use envelope::{open, seal, Aead, Envelope, SealError, MAX_ENVELOPE_LEN};
pub use keydoc::{KeyAnswer, KeyDocError, KeyDocument};
pub use keys::{
    fingerprint, HpkePublicKey, HpkeSecretKey, KeyError, Kid, SigningKey, VerifyingKey,
};
pub use messages::{
    AckAnswer, AckRequest, DeadItem, DeadList, ErrorBody, ReceiptAnswer, StaffItem, StaffList,
    SubmitAnswer, RECEIPT_ANSWER_LEN,
};
pub use reason::Reason;
pub use receipt::{ReceiptCode, ReceiptError};
pub use report::{
    Category, HashAlg, ImageHash, PadError, Report, MAX_URLS, PAD_BUCKETS, SEEN_AT_TEXT,
};
pub use values::{headers, Channel, ReceiptState, RecordId};

/// The media type of every protocol message.
pub const MEDIA_TYPE: &str = "application/cbor";

/// Pads, encodes and seals a report to the hotline key: what a client sends.
pub fn seal_report(
    report: &Report,
    recipient: &HpkePublicKey,
    aead: Aead,
    rng: &dyn ring::rand::SecureRandom,
) -> Result<Envelope, SealError> {
    report.validate()?;
    // The padded plaintext, and the report decoded back from it, are wiped
    // when this returns.
    let plaintext = zeroize::Zeroizing::new(
        report
            .encode_padded()
            .map_err(|e| SealError::TooLarge(e.0))?,
    );
    // What the hotline could not decode (too many urls, an unknown field
    // nested too deep or not one CBOR item, a key twice) must not leave the
    // device: the gateway cannot see inside and would accept it.
    drop(zeroize::Zeroizing::new(Report::decode(&plaintext)?));
    seal(recipient, aead, &plaintext, rng)
}

/// Decodes and opens an envelope's bytes with the hotline key: what the
/// hotline does with each record it receives.
pub fn open_report(secret: &HpkeSecretKey, envelope_bytes: &[u8]) -> Result<Report, SealError> {
    let envelope = Envelope::decode(envelope_bytes)?;
    let plaintext = open(secret, &envelope)?;
    Ok(Report::decode(&plaintext)?)
}
