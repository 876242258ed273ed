//! Every other protocol decoder, each run on the same input: the submit,
//! ack and receipt answers, error bodies, the staff and dead-letter lists,
//! the served key answer and the ack request (CBOR); and the typed values
//! read from text: receipt codes as people type them, record ids, channels,
//! receipt states, error reasons, the push headers, civil dates, and the PEM
//! key parsers. Never panics; every CBOR message that decodes encodes to
//! bytes that decode to the same value, and every value read from text
//! writes back as text that reads as the same value.
#![no_main]
#![forbid(unsafe_code)]

use hotline_protocol::time::{civil_date, parse_civil_date};
use hotline_protocol::{
    headers, AckAnswer, AckRequest, Channel, DeadList, ErrorBody, HpkePublicKey, HpkeSecretKey,
    KeyAnswer, Reason, ReceiptAnswer, ReceiptCode, ReceiptState, RecordId, SigningKey, StaffList,
    SubmitAnswer, VerifyingKey,
};
use libfuzzer_sys::fuzz_target;

macro_rules! roundtrip {
    ($data:expr, $($ty:ty),+) => {$(
        if let Ok(v) = <$ty>::decode($data) {
            let encoded = v.encode();
            let again = <$ty>::decode(&encoded).unwrap_or_else(|e| {
                panic!("{}: an encoded value does not decode: {e}", stringify!($ty))
            });
            assert_eq!(again, v, "{}", stringify!($ty));
        }
    )+};
}

/// A value read from text writes back (`as_str`) as text that reads as it.
macro_rules! text_roundtrip {
    ($text:expr, $($ty:ty),+) => {$(
        if let Ok(v) = $text.parse::<$ty>() {
            assert_eq!(v.as_str().parse::<$ty>().ok(), Some(v.clone()), "{}", stringify!($ty));
        }
    )+};
}

fuzz_target!(|data: &[u8]| {
    roundtrip!(
        data,
        SubmitAnswer,
        ErrorBody,
        StaffList,
        DeadList,
        KeyAnswer,
        AckRequest,
        AckAnswer,
        ReceiptAnswer
    );
    if let Some(c) = headers::parse_channel(data) {
        assert_eq!(headers::parse_channel(c.as_str().as_bytes()), Some(c));
    }
    if let Some(id) = headers::parse_record_id(data) {
        assert!(RecordId::is_valid(id.as_str()));
        assert_eq!(headers::parse_record_id(id.as_bytes()), Some(id));
    }
    if let Some(t) = headers::parse_received_at(data) {
        assert_eq!(
            headers::parse_received_at(t.to_string().as_bytes()),
            Some(t)
        );
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    text_roundtrip!(text, RecordId, Channel, ReceiptState, Reason);
    if let Some(days) = parse_civil_date(text) {
        // Exactly `YYYY-MM-DD` is accepted, so it is the date written back.
        assert_eq!(civil_date(days), text);
    }
    if let Ok(code) = text.parse::<ReceiptCode>() {
        // Both written forms parse back to the same code.
        assert_eq!(code.to_string().parse::<ReceiptCode>(), Ok(code));
        assert_eq!(code.digits().parse::<ReceiptCode>(), Ok(code));
        assert_eq!(code.digits().len(), 16);
    }
    if let Ok(k) = HpkePublicKey::from_pem(text) {
        let pem = k.to_pem().expect("a parsed public key re-encodes");
        assert_eq!(HpkePublicKey::from_pem(&pem).ok(), Some(k));
    }
    if let Ok(k) = VerifyingKey::from_pem(text) {
        let pem = k.to_pem().expect("a parsed verifying key re-encodes");
        assert_eq!(VerifyingKey::from_pem(&pem).ok(), Some(k));
    }
    if let Ok(k) = HpkeSecretKey::from_pem(text) {
        let _ = k.public_key();
    }
    if let Ok(k) = SigningKey::from_pem(text) {
        let _ = k.verifying_key();
    }
});
