//! The key document: `KeyDocument::decode` (the inner, signed bytes),
//! `KeyAnswer::decode` (the served `{key, sig, ? signer}` map) and
//! `KeyDocument::verify` against a pinned fuzz-only signing key, so the
//! seeds signed with it reach the inner decoder through `verify`. Never
//! panics; a decoded document or answer encodes to bytes that decode to it
//! again.
#![no_main]
#![forbid(unsafe_code)]

use hotline_protocol::{KeyAnswer, KeyDocument, VerifyingKey};
use libfuzzer_sys::fuzz_target;

/// The public half of `fuzz/seedgen/signing-key.pem`, written by seedgen.
const PINNED: &[u8; 32] = include_bytes!("pinned-signing.key");
/// A fixed "now", so the expiry check is the same on every run.
const NOW: u64 = 1_750_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = KeyDocument::decode(data) {
        roundtrip(&doc);
    }
    let pinned = VerifyingKey(*PINNED);
    if let Ok(doc) = KeyDocument::verify(data, &pinned, NOW) {
        assert!(doc.not_after > NOW);
        roundtrip(&doc);
    }
    if let Ok(answer) = KeyAnswer::decode(data) {
        assert_eq!(
            KeyAnswer::decode(&answer.encode()).as_ref(),
            Ok(&answer),
            "an encoded key answer decodes"
        );
    }
});

fn roundtrip(doc: &KeyDocument) {
    let encoded = doc.encode();
    assert_eq!(
        &KeyDocument::decode(&encoded).expect("an encoded key document decodes"),
        doc
    );
}
