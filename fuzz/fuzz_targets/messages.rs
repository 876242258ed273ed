//! Every other protocol decoder, each run on the same input: the submit,
//! ack and receipt answers, error bodies, the staff list and the ack
//! request (CBOR), receipt codes as people type them, and the PEM key
//! parsers. Never panics; every CBOR message that decodes encodes to bytes
//! that decode to the same value.
#![no_main]
#![forbid(unsafe_code)]

use hotline_protocol::{
    AckAnswer, AckRequest, ErrorBody, HpkePublicKey, HpkeSecretKey, ReceiptAnswer, ReceiptCode,
    SigningKey, StaffList, SubmitAnswer, VerifyingKey,
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

fuzz_target!(|data: &[u8]| {
    roundtrip!(
        data,
        SubmitAnswer,
        ErrorBody,
        StaffList,
        AckRequest,
        AckAnswer,
        ReceiptAnswer
    );
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
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
