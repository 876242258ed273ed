//! The no-JS form path of `POST /report`: `parse_form` and `build_report`
//! (through `web::report_from_form`), then what `seal_report` checks before
//! sealing. Never panics; a report built from a form is valid, has at most
//! 256 links, and its padded encoding decodes to the same report, so the
//! hotline can read every report the gateway seals for a form.
#![no_main]
#![forbid(unsafe_code)]

use hotline_gateway::web::report_from_form;
use hotline_protocol::Report;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(report) = report_from_form(data) else {
        return;
    };
    report.validate().expect("a form report is valid");
    assert!(report.urls.len() <= 256);
    assert!(report.urls.iter().all(|u| !u.is_empty() && u.trim() == u));
    for text in [
        &report.description,
        &report.lang,
        &report.platform,
        &report.contact,
    ] {
        assert!(
            text.as_deref().is_none_or(|t| !t.is_empty()),
            "empty field kept"
        );
    }
    if let Ok(padded) = report.encode_padded() {
        let back = Report::decode(&padded).expect("a sealed form report decodes");
        assert_eq!(back, *report);
    }
});
