#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hostile input: no decoder panics on any bytes, each bound fails with its own
//! error, and every message survives an encode/decode round trip.
//! (Peak memory while decoding hostile input: tests/decode_memory.rs.)

use std::sync::OnceLock;

use hotline_protocol::cbor::{head_len, DecodeError, Limits, Reader};
use hotline_protocol::{
    seal_report, AckAnswer, AckRequest, Aead, Category, Channel, DeadItem, DeadList, Envelope,
    ErrorBody, HashAlg, HpkeSecretKey, ImageHash, KeyAnswer, KeyDocError, KeyDocument, Kid, Reason,
    ReceiptAnswer, ReceiptState, RecordId, Report, SigningKey, StaffItem, StaffList, SubmitAnswer,
    VerifyingKey, PAD_BUCKETS,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

/// A CBOR head of any major type.
fn head(major: u8, arg: u64) -> Vec<u8> {
    let m = major << 5;
    match arg {
        0..=23 => vec![m | arg as u8],
        24..=0xff => vec![m | 24, arg as u8],
        0x100..=0xffff => [&[m | 25][..], &(arg as u16).to_be_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[m | 26][..], &(arg as u32).to_be_bytes()].concat(),
        _ => [&[m | 27][..], &arg.to_be_bytes()].concat(),
    }
}

fn u(v: u64) -> Vec<u8> {
    head(0, v)
}

fn b(v: &[u8]) -> Vec<u8> {
    [head(2, v.len() as u64), v.to_vec()].concat()
}

fn t(v: &str) -> Vec<u8> {
    [head(3, v.len() as u64), v.as_bytes().to_vec()].concat()
}

fn arr(items: &[Vec<u8>]) -> Vec<u8> {
    [head(4, items.len() as u64), items.concat()].concat()
}

/// A map with text keys, in the given order, duplicates allowed.
fn map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = head(5, entries.len() as u64);
    for (k, v) in entries {
        out.extend(t(k));
        out.extend_from_slice(v);
    }
    out
}

fn suite(ids: &[u64]) -> Vec<u8> {
    arr(&ids.iter().map(|&i| u(i)).collect::<Vec<_>>())
}

fn envelope_entries(v: u64, suite_ids: &[u64]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("v", u(v)),
        ("suite", suite(suite_ids)),
        ("kid", b(&[7; 8])),
        ("enc", b(&[9; 32])),
        ("ct", b(&[1; 40])),
    ]
}

fn keydoc_entries(v: u64, suite_ids: &[u64]) -> Vec<(&'static str, Vec<u8>)> {
    let pk = [5u8; 32];
    vec![
        ("v", u(v)),
        ("kid", b(&Kid::of(&pk).0)),
        ("suite", suite(suite_ids)),
        ("pk", b(&pk)),
        ("not_after", u(4_000_000_000)),
    ]
}

fn pinned() -> (SigningKey, VerifyingKey) {
    let key = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    let vk = key.verifying_key();
    (key, vk)
}

fn keydoc_err(r: Result<KeyDocument, KeyDocError>) -> Result<(), DecodeError> {
    match r {
        Ok(_) => Ok(()),
        Err(KeyDocError::Decode(e)) => Err(e),
        Err(other) => Err(DecodeError::Malformed(format!(
            "not a decode error: {other}"
        ))),
    }
}

type Decoder = fn(&[u8]) -> Result<(), DecodeError>;

/// Every decoder of the crate, by name, with the input limit it enforces.
fn decoders() -> Vec<(&'static str, Decoder, usize)> {
    fn verify(b: &[u8]) -> Result<(), DecodeError> {
        keydoc_err(KeyDocument::verify(b, &VerifyingKey([3; 32]), 0))
    }
    vec![
        (
            "Envelope",
            |b| Envelope::decode(b).map(drop),
            Limits::ENVELOPE.max_input,
        ),
        (
            "Report",
            |b| Report::decode(b).map(drop),
            Limits::REPORT.max_input,
        ),
        (
            "KeyDocument::decode",
            |b| keydoc_err(KeyDocument::decode(b)),
            Limits::ENVELOPE.max_input,
        ),
        ("KeyDocument::verify", verify, Limits::ENVELOPE.max_input),
        (
            "SubmitAnswer",
            |b| SubmitAnswer::decode(b).map(drop),
            Limits::ENVELOPE.max_input,
        ),
        (
            "ErrorBody",
            |b| ErrorBody::decode(b).map(drop),
            Limits::ENVELOPE.max_input,
        ),
        (
            "StaffList",
            |b| StaffList::decode(b).map(drop),
            Limits::STAFF_LIST.max_input,
        ),
        (
            "DeadList",
            |b| DeadList::decode(b).map(drop),
            Limits::STAFF_LIST.max_input,
        ),
        (
            "KeyAnswer",
            |b| KeyAnswer::decode(b).map(drop),
            Limits::ENVELOPE.max_input,
        ),
        (
            "AckRequest",
            |b| AckRequest::decode(b).map(drop),
            256 * 1024,
        ),
        (
            "AckAnswer",
            |b| AckAnswer::decode(b).map(drop),
            Limits::ENVELOPE.max_input,
        ),
        (
            "ReceiptAnswer",
            |b| ReceiptAnswer::decode(b).map(drop),
            Limits::ENVELOPE.max_input,
        ),
    ]
}

fn sample_report() -> Report {
    Report {
        urls: vec!["https://example.invalid/a".into(), "b".into()],
        description: Some("déjà vu".into()),
        lang: Some("fr".into()),
        seen_at: Some(1_700_000_000),
        platform: Some("p".into()),
        hashes: vec![
            ImageHash {
                alg: HashAlg::Pdq,
                value: vec![1; 32],
            },
            ImageHash {
                alg: HashAlg::Md5,
                value: vec![2; 16],
            },
        ],
        contact: Some("me".into()),
        reply_key: Some([4; 32]),
        extra: vec![("x-new".into(), map(&[("a", arr(&[u(1), b(b"z")]))]))],
        ..Report::new(Category::Livestream)
    }
}

type Sample = (&'static str, Vec<u8>, Decoder);

/// A valid encoding of each message, with the decoder that reads it.
fn samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(make_samples)
}

fn make_samples() -> Vec<Sample> {
    let rng = ring::rand::SystemRandom::new();
    let sk = HpkeSecretKey::generate(&rng).unwrap();
    let (signing, _) = pinned();
    let doc = KeyDocument {
        public_key: sk.public_key(),
        aead: Aead::Aes128Gcm,
        not_after: 4_000_000_000,
    };
    let report = sample_report();
    let envelope = seal_report(&report, &sk.public_key(), Aead::ChaCha20Poly1305, &rng).unwrap();
    let staff = StaffList {
        reports: vec![
            StaffItem {
                id: RecordId::from_bytes([1; 16]),
                received_at: 1_700_000_000,
                channel: Channel::Api,
                envelope: envelope.encode(),
            },
            StaffItem {
                id: RecordId::from_bytes([2; 16]),
                received_at: 1_700_003_600,
                channel: Channel::WebNojs,
                envelope: vec![0xa0],
            },
        ],
        next: Some("c2".into()),
    };
    let d = decoders();
    let by = |name: &str| d.iter().find(|x| x.0 == name).unwrap().1;
    vec![
        ("envelope", envelope.encode(), by("Envelope")),
        ("report", report.encode(), by("Report")),
        (
            "padded report",
            report.encode_padded().unwrap(),
            by("Report"),
        ),
        ("key document", doc.encode(), by("KeyDocument::decode")),
        ("signed key document", doc.sign(&signing), |b| {
            // The sample is signed by a key made here; accept a bad signature
            // as "decoded" for the purpose of these structural tests.
            match KeyDocument::verify(b, &VerifyingKey([3; 32]), 0) {
                Err(KeyDocError::BadSignature) | Ok(_) => Ok(()),
                other => keydoc_err(other),
            }
        }),
        (
            "submit answer",
            SubmitAnswer {
                id: RecordId::from_bytes([3; 16]),
                receipt: "1234-5678-9012-3452".into(),
            }
            .encode(),
            by("SubmitAnswer"),
        ),
        (
            "error body",
            ErrorBody::new(Reason::RateLimited, "slow down").encode(),
            by("ErrorBody"),
        ),
        ("staff list", staff.encode(), by("StaffList")),
        (
            "dead list",
            DeadList {
                reports: staff
                    .reports
                    .iter()
                    .map(|item| DeadItem {
                        item: item.clone(),
                        reason: "backend answered 422: undecryptable".into(),
                    })
                    .collect(),
            }
            .encode(),
            by("DeadList"),
        ),
        (
            "served key answer",
            KeyAnswer::sign(&doc, &signing)
                .with_signer(signing.verifying_key())
                .encode(),
            by("KeyAnswer"),
        ),
        (
            "ack request",
            AckRequest {
                ids: vec!["r1".into(), "r2".into()],
            }
            .encode(),
            by("AckRequest"),
        ),
        (
            "ack answer",
            AckAnswer { acked: 2 }.encode(),
            by("AckAnswer"),
        ),
        (
            "receipt answer",
            ReceiptAnswer::delivered(20_416).encode(),
            by("ReceiptAnswer"),
        ),
    ]
}

fn run_all(input: &[u8]) {
    for (_, decode, _) in decoders() {
        let _ = decode(input);
    }
}

// ---------------------------------------------------------------- never panic

/// A stream of CBOR heads and bytes: reaches deeper into the decoders than
/// uniformly random bytes.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        (0u8..8, 0u64..30).prop_map(|(m, a)| head(m, a)),
        (0u8..8, any::<u64>()).prop_map(|(m, a)| head(m, a)),
        (0u8..8, 24u8..32).prop_map(|(m, info)| vec![(m << 5) | info]),
        "[a-z_]{0,12}".prop_map(|s| t(&s)),
        Just(t("v")),
        Just(t("suite")),
        Just(t("ct")),
        Just(t("urls")),
        Just(t("hashes")),
        Just(t("reports")),
        Just(t("ids")),
        Just(vec![0xff]),
        vec(any::<u8>(), 0..4),
    ];
    vec(token, 0..64).prop_map(|v| v.concat())
}

/// A valid message with a few bytes changed, inserted or cut.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let n = samples().len();
    (
        0..n,
        vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    )
        .prop_map(|(i, edits)| {
            let mut bytes = samples()[i].1.clone();
            for (at, byte, kind) in edits {
                if bytes.is_empty() {
                    break;
                }
                let at = at.index(bytes.len());
                match kind {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    2 => bytes.truncate(at),
                    _ => bytes[at] ^= 1 << (byte % 8),
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in vec(any::<u8>(), 0..4096)) {
        run_all(&input);
    }

    #[test]
    fn token_soup_never_panics(input in token_soup()) {
        run_all(&input);
    }

    #[test]
    fn mutated_messages_never_panic(input in mutated()) {
        run_all(&input);
    }
}

// ---------------------------------------------------------------- each limit

fn expect_all(input: &[u8], pred: impl Fn(&DecodeError) -> bool, what: &str) {
    for (name, decode, max_input) in decoders() {
        if input.len() > max_input {
            continue;
        }
        match decode(input) {
            Err(e) if pred(&e) => {}
            other => panic!("{name}: expected {what}, got {other:?}"),
        }
    }
}

#[test]
fn one_mebibyte_is_input_too_large() {
    let mut input = vec![0u8; 1 << 20];
    let rng = ring::rand::SystemRandom::new();
    ring::rand::SecureRandom::fill(&rng, &mut input).unwrap();
    for (name, decode, max_input) in decoders() {
        let input = if max_input < input.len() {
            input.clone()
        } else {
            vec![0xa0; max_input + 1]
        };
        assert_eq!(
            decode(&input),
            Err(DecodeError::InputTooLarge {
                len: input.len(),
                limit: max_input
            }),
            "{name}"
        );
    }
}

/// `levels` copies of `unit`, then a zero to end the innermost item.
fn nested(unit: &[u8], levels: usize) -> Vec<u8> {
    let mut v = unit.repeat(levels);
    v.push(0);
    v
}

#[test]
fn deep_nesting_is_too_deep_without_overflowing_the_stack() {
    for (name, decode, max_input) in decoders() {
        // As deep as the decoder's input limit allows, 100,000 where it can.
        let levels = 100_000.min((max_input - 16) / 2);
        for unit in [&[0x81u8][..], &[0xa1, 0x60], &[0xc6]] {
            // Inside a field no decoder knows, which is skipped generically ...
            let input = [&[0xa1, 0x61, b'x'][..], &nested(unit, levels)].concat();
            assert!(
                matches!(decode(&input), Err(DecodeError::TooDeep { .. })),
                "{name} {unit:02x?}: {:?}",
                decode(&input)
            );
        }
        // ... and at top level, where a message must be a map.
        let top = nested(&[0x81], levels);
        assert!(
            matches!(
                decode(&top),
                Err(DecodeError::WrongType {
                    expected: "map",
                    ..
                })
            ),
            "{name}"
        );
        let top = nested(&[0xa1, 0x60], levels);
        assert!(
            matches!(decode(&top), Err(DecodeError::TooDeep { .. })),
            "{name}"
        );
    }
    // The generic reader, with any limit, on 100,000 levels at top level.
    let generous = Limits {
        max_input: 1 << 20,
        max_depth: 64,
        ..Limits::REPORT
    };
    for unit in [&[0x81u8][..], &[0xa1, 0x60], &[0xc6], &[0xa1, 0x81]] {
        let input = nested(unit, 100_000);
        let mut r = Reader::new(&input, generous).unwrap();
        assert_eq!(r.raw_value(), Err(DecodeError::TooDeep { limit: 64 }));
    }
    // Known nested fields count too: the hash map is depth 3 of at most 8.
    let deep_value = nested(&[0x81], 6);
    let report = map(&[
        ("v", u(1)),
        ("category", t("csam")),
        (
            "hashes",
            arr(&[map(&[("alg", t("md5")), ("x", deep_value)])]),
        ),
    ]);
    assert_eq!(
        Report::decode(&report),
        Err(DecodeError::TooDeep { limit: 8 })
    );
}

#[test]
fn four_gib_string_header_is_string_too_long() {
    const FOUR_GIB: u64 = 1 << 32;
    let bstr = head(2, FOUR_GIB);
    let tstr = head(3, FOUR_GIB);
    let cases: Vec<(&str, Vec<u8>, Decoder, usize)> = vec![
        (
            "envelope ct",
            map(&[("v", u(1)), ("ct", bstr.clone())]),
            |b| Envelope::decode(b).map(drop),
            Limits::ENVELOPE.max_string,
        ),
        (
            "report description",
            map(&[("description", tstr.clone())]),
            |b| Report::decode(b).map(drop),
            Limits::REPORT.max_string,
        ),
        (
            "report unknown field",
            map(&[("zz", bstr.clone())]),
            |b| Report::decode(b).map(drop),
            Limits::REPORT.max_string,
        ),
        (
            "staff envelope",
            map(&[(
                "reports",
                [vec![0x81, 0xa1], t("envelope"), bstr.clone()].concat(),
            )]),
            |b| StaffList::decode(b).map(drop),
            Limits::STAFF_LIST.max_string,
        ),
        (
            "ack id",
            map(&[("ids", [vec![0x81], tstr.clone()].concat())]),
            |b| AckRequest::decode(b).map(drop),
            Limits::STAFF_LIST.max_string,
        ),
        (
            "key document",
            map(&[("key", bstr.clone())]),
            |b| keydoc_err(KeyDocument::verify(b, &VerifyingKey([3; 32]), 0)),
            Limits::ENVELOPE.max_string,
        ),
    ];
    for (name, input, decode, limit) in cases {
        assert_eq!(
            decode(&input),
            Err(DecodeError::StringTooLong {
                declared: FOUR_GIB,
                limit
            }),
            "{name}"
        );
    }
    // As a map key, at top level, in every decoder.
    let input = [head(5, 1), tstr].concat();
    expect_all(
        &input,
        |e| matches!(e, DecodeError::StringTooLong { declared, .. } if *declared == FOUR_GIB),
        "StringTooLong",
    );
}

#[test]
fn oversize_counts_are_array_and_map_too_long() {
    let huge = u64::from(u32::MAX);
    // Top-level map with a huge count: MapTooLong in every decoder.
    expect_all(
        &head(5, huge),
        |e| matches!(e, DecodeError::MapTooLong { declared, .. } if *declared == huge),
        "MapTooLong",
    );
    expect_all(
        &head(5, u64::MAX),
        |e| matches!(e, DecodeError::MapTooLong { .. }),
        "MapTooLong",
    );
    // Arrays in fields.
    let urls = map(&[("urls", head(4, huge))]);
    assert_eq!(
        Report::decode(&urls),
        Err(DecodeError::ArrayTooLong {
            declared: huge,
            limit: 256
        })
    );
    let suite = map(&[("suite", head(4, 9))]);
    assert_eq!(
        Envelope::decode(&suite),
        Err(DecodeError::ArrayTooLong {
            declared: 9,
            limit: 8
        })
    );
    let ids = map(&[("ids", head(4, 1001))]);
    assert_eq!(
        AckRequest::decode(&ids),
        Err(DecodeError::ArrayTooLong {
            declared: 1001,
            limit: 1000
        })
    );
    let reports = map(&[("reports", head(4, huge))]);
    assert!(matches!(
        StaffList::decode(&reports),
        Err(DecodeError::ArrayTooLong { limit: 1000, .. })
    ));
    // A map in an unknown field, beyond the limit.
    let inner = map(&[("x", head(5, 65))]);
    assert_eq!(
        Report::decode(&inner),
        Err(DecodeError::MapTooLong {
            declared: 65,
            limit: 64
        })
    );
    // Within the limit but more than the input holds: Truncated, before any allocation.
    let lie = map(&[("urls", head(4, 200))]);
    assert_eq!(Report::decode(&lie), Err(DecodeError::Truncated));
    let lie = head(5, 30);
    assert_eq!(Envelope::decode(&lie), Err(DecodeError::Truncated));
}

#[test]
fn indefinite_lengths_are_refused() {
    // Top level: an indefinite map.
    expect_all(
        &[0xbf, 0x61, b'v', 0x01, 0xff],
        |e| *e == DecodeError::IndefiniteLength,
        "IndefiniteLength",
    );
    // Indefinite map key (text).
    expect_all(
        &[0xa1, 0x7f, 0x61, b'v', 0xff, 0x01],
        |e| *e == DecodeError::IndefiniteLength,
        "IndefiniteLength",
    );
    let cases: Vec<(Vec<u8>, Decoder)> = vec![
        (map(&[("urls", vec![0x9f, 0x60, 0xff])]), |b| {
            Report::decode(b).map(drop)
        }),
        (map(&[("ct", vec![0x5f, 0x41, 0x00, 0xff])]), |b| {
            Envelope::decode(b).map(drop)
        }),
        (map(&[("description", vec![0x7f, 0x60, 0xff])]), |b| {
            Report::decode(b).map(drop)
        }),
        (map(&[("x", vec![0xbf, 0xff])]), |b| {
            Envelope::decode(b).map(drop)
        }),
        (map(&[("x", vec![0x81, 0x9f, 0xff])]), |b| {
            Report::decode(b).map(drop)
        }),
        (map(&[("ids", vec![0x9f, 0xff])]), |b| {
            AckRequest::decode(b).map(drop)
        }),
        (map(&[("reports", vec![0x9f, 0xff])]), |b| {
            StaffList::decode(b).map(drop)
        }),
        (
            map(&[("suite", vec![0x9f, 0x18, 0x20, 0x01, 0x03, 0xff])]),
            |b| Envelope::decode(b).map(drop),
        ),
    ];
    for (input, decode) in cases {
        assert_eq!(
            decode(&input),
            Err(DecodeError::IndefiniteLength),
            "{input:02x?}"
        );
    }
}

#[test]
fn every_truncation_is_truncated() {
    for (name, bytes, decode) in samples() {
        assert_eq!(decode(bytes), Ok(()), "{name}");
        for len in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..len]),
                Err(DecodeError::Truncated),
                "{name} cut at {len} of {}",
                bytes.len()
            );
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    for (name, bytes, decode) in samples() {
        for extra in [&[0x00][..], &[0xa0, 0xa0], &[0xff]] {
            let input = [bytes, extra].concat();
            assert_eq!(
                decode(&input),
                Err(DecodeError::TrailingBytes(extra.len())),
                "{name}"
            );
        }
    }
}

#[test]
fn duplicate_keys_are_refused() {
    let dup = |entries: &[(&str, Vec<u8>)], key: &str| {
        let mut e = entries.to_vec();
        let again = e.iter().find(|(k, _)| *k == key).unwrap().clone();
        e.push(again);
        map(&e)
    };
    let env = envelope_entries(1, &[32, 1, 3]);
    assert_eq!(Envelope::decode(&map(&env)).map(drop), Ok(()));
    for key in ["v", "suite", "kid", "enc", "ct"] {
        assert_eq!(
            Envelope::decode(&dup(&env, key)),
            Err(DecodeError::DuplicateField(key.into()))
        );
    }
    // Unknown fields count too.
    let with_x = [env.clone(), vec![("x", u(1)), ("x", u(2))]].concat();
    assert_eq!(
        Envelope::decode(&map(&with_x)),
        Err(DecodeError::DuplicateField("x".into()))
    );
    let report = vec![
        ("v", u(1)),
        ("category", t("other")),
        ("urls", arr(&[t("a")])),
        ("zz", u(0)),
    ];
    assert!(Report::decode(&map(&report)).is_ok());
    for key in ["v", "category", "urls", "zz"] {
        assert_eq!(
            Report::decode(&dup(&report, key)),
            Err(DecodeError::DuplicateField(key.into()))
        );
    }
    let hash = map(&[
        ("v", u(1)),
        ("category", t("other")),
        (
            "hashes",
            arr(&[map(&[
                ("alg", t("md5")),
                ("alg", t("md5")),
                ("value", b(&[0; 16])),
            ])]),
        ),
    ]);
    assert_eq!(
        Report::decode(&hash),
        Err(DecodeError::DuplicateField("alg".into()))
    );
    let kd = keydoc_entries(1, &[32, 1, 3]);
    assert!(KeyDocument::decode(&map(&kd)).is_ok());
    assert_eq!(
        KeyDocument::decode(&dup(&kd, "pk")),
        Err(KeyDocError::Decode(DecodeError::DuplicateField(
            "pk".into()
        )))
    );
    let ack = map(&[("ids", arr(&[])), ("ids", arr(&[]))]);
    assert_eq!(
        AckRequest::decode(&ack),
        Err(DecodeError::DuplicateField("ids".into()))
    );
    let answer = map(&[("acked", u(1)), ("acked", u(1))]);
    assert_eq!(
        AckAnswer::decode(&answer),
        Err(DecodeError::DuplicateField("acked".into()))
    );
    let err = map(&[
        ("error", t("internal")),
        ("message", t("b")),
        ("error", t("internal")),
    ]);
    assert_eq!(
        ErrorBody::decode(&err),
        Err(DecodeError::DuplicateField("error".into()))
    );
}

#[test]
fn unknown_suites_are_unsupported_suite() {
    for ids in [
        [32, 1, 2],
        [32, 1, 0],
        [32, 2, 3],
        [16, 1, 3],
        [0x4d, 1, 3],
        [32, 1, u64::MAX],
    ] {
        assert_eq!(
            Envelope::decode(&map(&envelope_entries(1, &ids))),
            Err(DecodeError::UnsupportedSuite(ids)),
            "{ids:?}"
        );
        assert_eq!(
            KeyDocument::decode(&map(&keydoc_entries(1, &ids))),
            Err(KeyDocError::Decode(DecodeError::UnsupportedSuite(ids)))
        );
    }
    for ids in [&[32, 1][..], &[32, 1, 3, 0]] {
        assert!(matches!(
            Envelope::decode(&map(&envelope_entries(1, ids))),
            Err(DecodeError::InvalidValue { field: "suite", .. })
        ));
    }
    for ids in [[32, 1, 1], [32, 1, 3]] {
        let e = Envelope::decode(&map(&envelope_entries(1, &ids))).unwrap();
        assert_eq!(e.aead.suite(), ids);
    }
    assert_eq!(
        DecodeError::UnsupportedSuite([32, 1, 2]).code(),
        "unsupported_suite"
    );
}

#[test]
fn other_versions_are_unsupported_version() {
    for v in [0, 2, 3, u64::MAX] {
        assert_eq!(
            Envelope::decode(&map(&envelope_entries(v, &[32, 1, 3]))),
            Err(DecodeError::UnsupportedVersion(v))
        );
        assert_eq!(
            KeyDocument::decode(&map(&keydoc_entries(v, &[32, 1, 3]))),
            Err(KeyDocError::Decode(DecodeError::UnsupportedVersion(v)))
        );
        assert_eq!(
            Report::decode(&map(&[("v", u(v)), ("category", t("csam"))])),
            Err(DecodeError::UnsupportedVersion(v))
        );
    }
    // A later version's new fields do not hide its version number.
    let mut v2 = envelope_entries(2, &[32, 1, 3]);
    v2.push(("aad", b(b"new in v2")));
    assert_eq!(
        Envelope::decode(&map(&v2)),
        Err(DecodeError::UnsupportedVersion(2))
    );
    assert_eq!(
        DecodeError::UnsupportedVersion(2).code(),
        "unsupported_version"
    );
    // No version at all.
    let mut none = envelope_entries(1, &[32, 1, 3]);
    none.remove(0);
    assert_eq!(
        Envelope::decode(&map(&none)),
        Err(DecodeError::MissingField("v"))
    );
}

#[test]
fn each_limit_has_its_own_code() {
    let errors = [
        DecodeError::InputTooLarge { len: 0, limit: 0 },
        DecodeError::TooDeep { limit: 0 },
        DecodeError::StringTooLong {
            declared: 0,
            limit: 0,
        },
        DecodeError::ArrayTooLong {
            declared: 0,
            limit: 0,
        },
        DecodeError::MapTooLong {
            declared: 0,
            limit: 0,
        },
        DecodeError::IndefiniteLength,
        DecodeError::Truncated,
        DecodeError::TrailingBytes(1),
        DecodeError::Malformed(String::new()),
        DecodeError::WrongType {
            field: "",
            expected: "",
        },
        DecodeError::MissingField(""),
        DecodeError::DuplicateField(String::new()),
        DecodeError::InvalidValue {
            field: "",
            reason: "",
        },
        DecodeError::UnsupportedVersion(2),
        DecodeError::UnsupportedSuite([0; 3]),
    ];
    let codes: std::collections::HashSet<_> = errors.iter().map(DecodeError::code).collect();
    assert_eq!(codes.len(), errors.len());
}

// ---------------------------------------------------------------- round trips

/// Any small, well-formed CBOR value, encoded (definite lengths).
fn cbor_value() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(u),
        any::<u64>().prop_map(|n| head(1, n)),
        vec(any::<u8>(), 0..40).prop_map(|v| b(&v)),
        any::<String>().prop_map(|s| t(&s)),
        Just(vec![0xf4]),
        Just(vec![0xf5]),
        Just(vec![0xf6]),
        Just(vec![0xf7]),
        any::<f64>().prop_map(|f| [&[0xfb][..], &f.to_bits().to_be_bytes()].concat()),
        any::<f32>().prop_map(|f| [&[0xfa][..], &f.to_bits().to_be_bytes()].concat()),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(|items| arr(&items)),
            btree_map("\\PC{0,6}", inner.clone(), 0..5).prop_map(|m| {
                let mut out = head(5, m.len() as u64);
                for (k, v) in m {
                    out.extend(t(&k));
                    out.extend(v);
                }
                out
            }),
            (0u64..100_000, inner).prop_map(|(tag, v)| [head(6, tag), v].concat()),
        ]
    })
}

const KNOWN: [&str; 11] = hotline_protocol::report::KNOWN_FIELDS;

fn image_hash() -> impl Strategy<Value = ImageHash> {
    prop_oneof![
        Just(HashAlg::Sha256),
        Just(HashAlg::Pdq),
        Just(HashAlg::Md5)
    ]
    .prop_flat_map(|alg| {
        vec(any::<u8>(), alg.value_len()).prop_map(move |value| ImageHash { alg, value })
    })
}

fn report() -> impl Strategy<Value = Report> {
    let text = || proptest::option::of(any::<String>());
    (
        (
            prop::sample::select(Category::ALL.to_vec()),
            vec(
                prop_oneof!["https?://[a-z0-9.-]{1,30}(/[\\PC]{0,40})?", any::<String>()],
                0..6,
            ),
            text(),
            text(),
            proptest::option::of(any::<u64>()),
        ),
        (
            text(),
            vec(image_hash(), 0..5),
            text(),
            proptest::option::of(any::<[u8; 32]>()),
            btree_map(
                "\\PC{1,12}".prop_filter("unknown key", |k| !KNOWN.contains(&k.as_str())),
                cbor_value(),
                0..6,
            ),
        ),
    )
        .prop_map(
            |(
                (category, urls, description, lang, seen_at),
                (platform, hashes, contact, reply_key, extra),
            )| Report {
                category,
                urls,
                description,
                lang,
                seen_at,
                platform,
                hashes,
                contact,
                reply_key,
                extra: extra.into_iter().collect(),
            },
        )
}

/// The bucket a report of `unpadded` bytes with `entries` map entries must
/// be padded to, computed from SPEC.md's rule independently of the crate.
fn expected_bucket(unpadded: usize, entries: usize) -> Option<usize> {
    // Adding "pad" may lengthen the map head; then the key (4 bytes), then
    // the bstr head, then the padding.
    let fixed = unpadded - head_len(entries as u64) + head_len(entries as u64 + 1) + 4;
    PAD_BUCKETS.into_iter().find(|&bucket| {
        (1..=9).any(|h| {
            bucket
                .checked_sub(fixed + h)
                .is_some_and(|pad| head_len(pad as u64) == h)
        })
    })
}

fn entries_of(r: &Report) -> usize {
    let bytes = r.encode();
    Reader::new(&bytes, Limits::REPORT)
        .unwrap()
        .map("report")
        .unwrap()
}

fn staff_item() -> impl Strategy<Value = StaffItem> {
    (
        any::<[u8; 16]>(),
        any::<u64>(),
        prop::sample::select(Channel::ALL.to_vec()),
        vec(any::<u8>(), 0..600),
    )
        .prop_map(|(id, received_at, channel, envelope)| StaffItem {
            id: RecordId::from_bytes(id),
            received_at,
            channel,
            envelope,
        })
}

proptest! {
    #[test]
    fn report_round_trips(report in report()) {
        report.validate().unwrap();
        let plain = report.encode();
        prop_assert_eq!(&Report::decode(&plain).unwrap(), &report);

        let padded = report.encode_padded().unwrap();
        prop_assert!(PAD_BUCKETS.contains(&padded.len()), "{} bytes", padded.len());
        prop_assert_eq!(
            Some(padded.len()),
            expected_bucket(plain.len(), entries_of(&report))
        );
        prop_assert_eq!(&Report::decode(&padded).unwrap(), &report);
    }

    #[test]
    fn envelope_round_trips(
        aead in prop::sample::select(vec![Aead::Aes128Gcm, Aead::ChaCha20Poly1305]),
        kid in any::<[u8; 8]>(),
        enc in any::<[u8; 32]>(),
        ct in vec(any::<u8>(), 16..3000),
    ) {
        let e = Envelope { aead, kid: Kid(kid), enc, ct };
        prop_assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn staff_messages_round_trip(
        reports in vec(staff_item(), 0..20),
        next in proptest::option::of(any::<String>()),
        ids in vec(any::<String>(), 0..100),
        acked in any::<u64>(),
    ) {
        let dead = DeadList {
            reports: reports
                .iter()
                .zip(ids.iter().cycle())
                .map(|(item, reason)| DeadItem { item: item.clone(), reason: reason.clone() })
                .collect(),
        };
        if !ids.is_empty() || reports.is_empty() {
            prop_assert_eq!(DeadList::decode(&dead.encode()).unwrap(), dead);
        }
        let list = StaffList { reports, next };
        prop_assert_eq!(StaffList::decode(&list.encode()).unwrap(), list);
        let ack = AckRequest { ids };
        prop_assert_eq!(AckRequest::decode(&ack.encode()).unwrap(), ack);
        let answer = AckAnswer { acked };
        prop_assert_eq!(AckAnswer::decode(&answer.encode()).unwrap(), answer);
    }

    #[test]
    fn small_answers_round_trip(
        id in any::<[u8; 16]>(),
        b in any::<String>(),
        day in any::<bool>(),
        reason in prop::sample::select(Reason::ALL.to_vec()),
        status in prop::sample::select(ReceiptState::ALL.to_vec()),
    ) {
        let s = SubmitAnswer { id: RecordId::from_bytes(id), receipt: b.clone() };
        prop_assert_eq!(SubmitAnswer::decode(&s.encode()).unwrap(), s);
        let e = ErrorBody::new(reason, b);
        prop_assert_eq!(ErrorBody::decode(&e.encode()).unwrap(), e);
        let r = ReceiptAnswer { status, day: day.then_some(20_416) };
        prop_assert_eq!(ReceiptAnswer::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn key_document_sign_verify(
        pk in any::<[u8; 32]>(),
        aead in prop::sample::select(vec![Aead::Aes128Gcm, Aead::ChaCha20Poly1305]),
        not_after in 1u64..,
        flip in any::<prop::sample::Index>(),
    ) {
        let (signing, pinned) = pinned();
        let doc = KeyDocument { public_key: hotline_protocol::HpkePublicKey(pk), aead, not_after };
        prop_assert_eq!(&KeyDocument::decode(&doc.encode()).unwrap(), &doc);
        let signed = doc.sign(&signing);
        prop_assert_eq!(&KeyDocument::verify(&signed, &pinned, not_after - 1).unwrap(), &doc);
        prop_assert_eq!(
            KeyDocument::verify(&signed, &pinned, not_after),
            Err(KeyDocError::Expired { not_after, now: not_after })
        );
        let other = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        prop_assert_eq!(
            KeyDocument::verify(&signed, &other.verifying_key(), 0),
            Err(KeyDocError::BadSignature)
        );
        // Any flipped bit is refused (as a bad signature or a decode error).
        let mut bad = signed.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 1;
        prop_assert!(KeyDocument::verify(&bad, &pinned, 0).is_err());
    }
}

#[test]
fn unknown_report_fields_are_kept_byte_for_byte() {
    let value = map(&[(
        "deep",
        arr(&[[head(6, 1), u(1_700_000_000)].concat(), t("ü")]),
    )]);
    let input = map(&[
        ("zz-future", value.clone()),
        ("v", u(1)),
        ("category", t("sextortion")),
        ("pad", b(&[0; 10])),
    ]);
    let report = Report::decode(&input).unwrap();
    assert_eq!(report.extra, vec![("zz-future".to_owned(), value)]);
    assert_eq!(Report::decode(&report.encode()).unwrap(), report);
}

#[test]
fn unknown_fields_are_ignored_in_other_messages() {
    let mut env = envelope_entries(1, &[32, 1, 3]);
    env.insert(0, ("future", map(&[("a", arr(&[u(1)]))])));
    assert!(Envelope::decode(&map(&env)).is_ok());
    let ack = map(&[("ids", arr(&[t("a")])), ("note", t("x"))]);
    assert_eq!(
        AckRequest::decode(&ack).unwrap(),
        AckRequest {
            ids: vec!["a".into()]
        }
    );
}

#[test]
fn sealing_refuses_reports_the_hotline_could_not_read() {
    let rng = ring::rand::SystemRandom::new();
    let sk = HpkeSecretKey::generate(&rng).unwrap();
    let pk = sk.public_key();
    // Too many urls for Limits::REPORT.
    let mut r = Report::new(Category::Other);
    r.urls = vec![String::new(); 257];
    assert!(seal_report(&r, &pk, Aead::ChaCha20Poly1305, &rng).is_err());
    // An unknown field nested deeper than Limits::REPORT allows.
    let mut r = Report::new(Category::Other);
    r.extra.push(("x".into(), nested(&[0x81], 8)));
    assert!(seal_report(&r, &pk, Aead::ChaCha20Poly1305, &rng).is_err());
    // Two unknown fields with the same key.
    let mut r = Report::new(Category::Other);
    r.extra.push(("x".into(), u(1)));
    r.extra.push(("x".into(), u(2)));
    assert!(seal_report(&r, &pk, Aead::ChaCha20Poly1305, &rng).is_err());
    // An unknown field that is not one CBOR item.
    let mut r = Report::new(Category::Other);
    r.extra.push(("x".into(), vec![0x01, 0x02]));
    assert!(seal_report(&r, &pk, Aead::ChaCha20Poly1305, &rng).is_err());
    // Too large for the largest bucket.
    let mut r = Report::new(Category::Other);
    r.description = Some("x".repeat(65_530));
    assert!(seal_report(&r, &pk, Aead::ChaCha20Poly1305, &rng).is_err());
}
