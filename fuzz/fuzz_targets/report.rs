//! `Report::decode`, what the hotline runs on every opened envelope (the
//! HPKE open is not fuzzed: a fuzzer cannot forge a tag). Never panics;
//! an accepted report passes `validate`, and both encodings (plain and
//! padded to a size bucket) decode to the same report.
#![no_main]
#![forbid(unsafe_code)]

use hotline_protocol::{Report, PAD_BUCKETS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = Report::decode(data) else {
        return;
    };
    report
        .validate()
        .expect("a decoded report is one a client may seal");
    let plain = report.encode();
    assert_eq!(
        Report::decode(&plain).expect("an encoded report decodes"),
        report
    );
    match report.encode_padded() {
        Ok(padded) => {
            assert!(
                PAD_BUCKETS.contains(&padded.len()),
                "{} bytes",
                padded.len()
            );
            assert_eq!(
                Report::decode(&padded).expect("a padded report decodes"),
                report
            );
        }
        // Only a report that needs nearly all of the largest bucket fails.
        Err(e) => assert!(
            plain.len() + 5 > PAD_BUCKETS[3],
            "{e}: {} bytes",
            plain.len()
        ),
    }
});
