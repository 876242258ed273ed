#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The memory a decode uses is bounded by its input: the peak heap growth
//! while decoding hostile inputs stays below 4 x input + 64 KiB.
//!
//! The counting global allocator is `peak_alloc` (a thin wrapper around
//! `System`): the workspace forbids `unsafe_code`, which `forbid` makes
//! impossible to allow here for our own `unsafe impl GlobalAlloc`. The
//! counters are process-wide, so this file holds a single test and nothing
//! else runs while it measures.

use hotline_protocol::cbor::Writer;
use hotline_protocol::{
    AckAnswer, AckRequest, DeadList, Envelope, ErrorBody, KeyAnswer, KeyDocument, ReceiptAnswer,
    Report, StaffList, SubmitAnswer, VerifyingKey,
};
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

const SLACK: usize = 64 * 1024;

type Decoder = fn(&[u8]);

fn decoders() -> [(&'static str, Decoder); 12] {
    [
        ("Envelope", |b| drop(Envelope::decode(b))),
        ("Report", |b| drop(Report::decode(b))),
        ("KeyDocument::decode", |b| drop(KeyDocument::decode(b))),
        ("KeyDocument::verify", |b| {
            drop(KeyDocument::verify(b, &VerifyingKey([3; 32]), 0))
        }),
        ("SubmitAnswer", |b| drop(SubmitAnswer::decode(b))),
        ("ErrorBody", |b| drop(ErrorBody::decode(b))),
        ("StaffList", |b| drop(StaffList::decode(b))),
        ("DeadList", |b| drop(DeadList::decode(b))),
        ("KeyAnswer", |b| drop(KeyAnswer::decode(b))),
        ("AckRequest", |b| drop(AckRequest::decode(b))),
        ("AckAnswer", |b| drop(AckAnswer::decode(b))),
        ("ReceiptAnswer", |b| drop(ReceiptAnswer::decode(b))),
    ]
}

/// Inputs chosen to make a decoder allocate as much as it can per input byte.
fn hostile_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut random = vec![0u8; 1 << 20];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).unwrap();
    out.push(("1 MiB random", random.clone()));
    out.push(("4 KiB random", random[..4096].to_vec()));

    // 100,000 nested arrays inside a field.
    let mut deep = vec![0xa1, 0x63];
    deep.extend_from_slice(b"ids");
    deep.extend(std::iter::repeat_n(0x81, 100_000));
    deep.push(0);
    out.push(("100,000 nested arrays", deep.clone()));
    out.push(("60,000 nested arrays", deep[..60_000].to_vec()));

    // A 4 GiB string declared in 9 bytes.
    out.push((
        "4 GiB string header",
        vec![0xa1, 0x62, b'c', b't', 0x5b, 0, 0, 0, 1, 0, 0, 0, 0],
    ));

    // Many tiny items: what costs the most memory per input byte.
    let mut w = Writer::new();
    w.map(1).text("ids").array(1000);
    for _ in 0..1000 {
        w.text("");
    }
    out.push(("1000 empty ids", w.into_bytes()));

    let mut w = Writer::new();
    w.map(1).text("ids").array(1000);
    for _ in 0..1000 {
        w.text("x");
    }
    out.push(("1000 one-byte ids", w.into_bytes()));

    let mut w = Writer::new();
    w.map(2).text("reports").array(1000);
    for _ in 0..1000 {
        w.map(4)
            .text("id")
            .text("i")
            .text("received_at")
            .uint(0)
            .text("channel")
            .text("")
            .text("envelope")
            .bytes(&[]);
    }
    w.text("next").null();
    out.push(("1000 minimal staff items", w.into_bytes()));

    let mut w = Writer::new();
    w.map(3).text("v").uint(1).text("category").text("csam");
    w.text("urls").array(256);
    for _ in 0..256 {
        w.text("u");
    }
    out.push(("256 one-byte urls", w.into_bytes()));

    let mut w = Writer::new();
    w.map(64).text("v").uint(1).text("category").text("csam");
    for i in 0..62 {
        w.text(&format!("{i:02}")).uint(0);
    }
    out.push(("62 unknown report fields", w.into_bytes()));

    let mut w = Writer::new();
    w.map(3).text("v").uint(1).text("category").text("csam");
    w.text("hashes").array(256);
    for _ in 0..256 {
        w.map(2)
            .text("alg")
            .text("md5")
            .text("value")
            .bytes(&[0; 16]);
    }
    out.push(("256 md5 hashes", w.into_bytes()));

    // The largest valid envelope.
    let mut w = Writer::new();
    w.map(5)
        .text("v")
        .uint(1)
        .text("suite")
        .array(3)
        .uint(32)
        .uint(1)
        .uint(3)
        .text("kid")
        .bytes(&[0; 8])
        .text("enc")
        .bytes(&[0; 32])
        .text("ct")
        .bytes(&vec![0; 65 * 1024]);
    out.push(("65 KiB envelope", w.into_bytes()));
    out
}

#[test]
fn peak_allocation_is_bounded_by_input_size() {
    let inputs = hostile_inputs();
    let mut worst = (0.0f64, "", "", 0usize, 0usize);
    for (what, input) in &inputs {
        for (name, decode) in decoders() {
            let before = ALLOC.current_usage();
            ALLOC.reset_peak_usage();
            decode(input);
            let peak = ALLOC.peak_usage().saturating_sub(before);
            let bound = 4 * input.len() + SLACK;
            assert!(
                peak <= bound,
                "{name} on {what}: peak {peak} bytes for {} input bytes (bound {bound})",
                input.len()
            );
            let ratio = peak as f64 / input.len() as f64;
            if std::env::var_os("HOTLINE_MEMORY_TABLE").is_some() {
                println!(
                    "{name:>20} {what:>26} {:>8} -> {peak:>8} ({ratio:.2})",
                    input.len()
                );
            }
            if ratio > worst.0 {
                worst = (ratio, name, what, peak, input.len());
            }
        }
    }
    println!(
        "worst peak/input ratio {:.2}: {} on {} ({} bytes for {} input bytes)",
        worst.0, worst.1, worst.2, worst.3, worst.4
    );
}
