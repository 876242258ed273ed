//! `Envelope::decode`, what the gateway runs on every `POST /v1/reports`
//! body: never panics, and whatever it accepts encodes to bytes it decodes
//! to the same envelope (decode -> encode -> decode).
#![no_main]
#![forbid(unsafe_code)]

use hotline_protocol::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::decode(data) else {
        return;
    };
    let encoded = envelope.encode();
    // Unknown fields are skipped, so the encoding is never longer.
    assert!(encoded.len() <= data.len(), "encoding grew");
    let again = Envelope::decode(&encoded).expect("an encoded envelope decodes");
    assert_eq!(again, envelope);
    assert_eq!(again.encode(), encoded, "encoding is not canonical");
});
