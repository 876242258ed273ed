#![allow(clippy::unwrap_used, clippy::expect_used)]
//! SPEC.md, the web form's script and this crate state some facts twice;
//! these tests make sure they say the same: every error reason with its
//! status, the largest envelope, the link limit, the channels and the
//! `seen_at_text` rule.

use std::collections::BTreeMap;

use hotline_protocol::{
    seal, Aead, Category, Channel, HpkeSecretKey, Reason, ReceiptState, Report, MAX_ENVELOPE_LEN,
    MAX_URLS, PAD_BUCKETS, SEEN_AT_TEXT,
};

fn spec() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/SPEC.md")).unwrap()
}

fn web_lib() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../clients/web/src/lib.js"
    ))
    .unwrap()
}

/// Every `reason -> status` in SPEC.md's tables: rows whose first cell is a
/// three-digit status, reasons being the backquoted words of the second cell.
fn spec_reasons() -> BTreeMap<String, Vec<u16>> {
    let mut out: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for line in spec().lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[0].is_empty() {
            continue;
        }
        let Ok(status) = cells[1].parse::<u16>() else {
            continue;
        };
        if cells[1].len() != 3 {
            continue;
        }
        for (i, part) in cells[2].split('`').enumerate() {
            if i % 2 == 1 {
                out.entry(part.to_owned()).or_default().push(status);
            }
        }
    }
    out
}

#[test]
fn spec_lists_exactly_the_reasons_with_their_status() {
    let listed = spec_reasons();
    let ours: BTreeMap<String, Vec<u16>> = Reason::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), vec![r.status()]))
        .collect();
    let missing: Vec<_> = ours.keys().filter(|k| !listed.contains_key(*k)).collect();
    let unknown: Vec<_> = listed.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "reasons missing from SPEC.md: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "SPEC.md lists reasons Reason does not have: {unknown:?}"
    );
    assert_eq!(
        listed, ours,
        "a reason is listed twice or under another status"
    );
}

#[test]
fn the_largest_envelope_is_computed_once_and_is_65626_bytes() {
    assert_eq!(MAX_ENVELOPE_LEN, 65_626);
    // A real envelope around the largest bucket has exactly that length.
    let rng = ring::rand::SystemRandom::new();
    let key = HpkeSecretKey::generate(&rng).unwrap();
    let plaintext = vec![0u8; *PAD_BUCKETS.last().unwrap()];
    for aead in [Aead::ChaCha20Poly1305, Aead::Aes128Gcm] {
        let e = seal(&key.public_key(), aead, &plaintext, &rng).unwrap();
        assert_eq!(e.encode().len(), MAX_ENVELOPE_LEN);
    }
    assert!(spec().contains("65,626 bytes"));
}

#[test]
fn the_web_script_uses_the_protocol_constants() {
    let js = web_lib();
    assert!(
        js.contains(&format!("export const MAX_URLS = {MAX_URLS};")),
        "lib.js MAX_URLS differs from the protocol's {MAX_URLS}"
    );
    let categories: Vec<String> = Category::ALL
        .iter()
        .map(|c| format!("\"{}\"", c.as_str()))
        .collect();
    assert!(
        js.contains(&format!(
            "export const CATEGORIES = [{}];",
            categories.join(", ")
        )),
        "lib.js CATEGORIES differ from the protocol's"
    );
    assert!(js.contains(&format!("r.{SEEN_AT_TEXT} = seen")));
    let form = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../clients/web/src/form.js"
    ))
    .unwrap();
    assert!(
        form.contains(&format!("\"Hotline-Channel\": \"{}\"", Channel::Web)),
        "form.js must send the channel name Channel::Web"
    );
}

#[test]
fn spec_names_the_channels_states_and_seen_at_text() {
    let spec = spec();
    let channels: Vec<String> = Channel::ALL
        .iter()
        .map(|c| format!("\"{}\"", c.as_str()))
        .collect();
    assert!(
        spec.contains(&format!("\"channel\": {},", channels.join(" / "))),
        "SPEC.md's staff-item channel differs from Channel::ALL"
    );
    let states: Vec<String> = ReceiptState::ALL
        .iter()
        .map(|s| format!("\"{}\"", s.as_str()))
        .collect();
    assert!(spec.contains(&format!("\"status\": {},", states.join(" / "))));
    assert!(spec.contains(&format!("`{SEEN_AT_TEXT}`")));
    assert!(spec.contains(&format!("[0*{MAX_URLS} tstr]")));
}

#[test]
fn seen_at_is_a_date_or_kept_as_text() {
    let mut r = Report::new(Category::Other);
    r.set_seen_at_text("2024-02-29");
    assert_eq!(r.seen_at, Some(1_709_164_800));
    assert!(r.extra.is_empty());
    let mut r = Report::new(Category::Other);
    r.set_seen_at_text("last tuesday");
    assert_eq!(r.seen_at, None);
    let decoded = Report::decode(&r.encode()).unwrap();
    assert_eq!(decoded.extra.len(), 1);
    assert_eq!(decoded.extra[0].0, SEEN_AT_TEXT);
    r.urls = vec!["https://x.example/".into(); MAX_URLS + 1];
    assert!(r.validate().is_err());
}
