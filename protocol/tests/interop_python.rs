#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Interop with an independent implementation of the envelope:
//! tests/python/interop.py (pyhpke + cbor2 + pyca/cryptography).
//!
//! The interpreter is `$HOTLINE_PYTHON`, else `<workspace>/target/venv/bin/python3`
//! (made by `ops/test-all`). If it is missing or cannot import the packages, the
//! tests skip with a notice naming `bash ops/test-all`; they fail instead when
//! `HOTLINE_REQUIRE_INTEROP=1` (set by `ops/test-all`) or when `HOTLINE_PYTHON`
//! was set explicitly.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use hotline_protocol::cbor::Writer;
use hotline_protocol::envelope::{open, Envelope};
use hotline_protocol::{
    open_report, seal_report, Aead, Category, HashAlg, HpkeSecretKey, ImageHash, Report,
    PAD_BUCKETS,
};
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).unwrap()
}

/// The Python interpreter, or `None` when it is missing and nobody asked for
/// interop (then the test skips, saying how to enable it).
fn python() -> Option<PathBuf> {
    let explicit = std::env::var_os("HOTLINE_PYTHON");
    let asked = explicit.is_some();
    let python = explicit
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/venv/bin/python3"));
    let problem = if !python.exists() {
        format!("no Python interpreter at {}", python.display())
    } else if !Command::new(&python)
        .args(["-c", "import pyhpke, cbor2, cryptography"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        format!(
            "{} cannot import pyhpke, cbor2 and cryptography (tests/python/requirements.txt)",
            python.display()
        )
    } else {
        return Some(python);
    };
    assert!(
        !asked,
        "Python interop: HOTLINE_PYTHON is set but {problem}"
    );
    common::skip_or_fail("Python interop", &problem);
    None
}

fn interop(python: &PathBuf, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(python)
        .arg(workspace().join("tests/python/interop.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "interop.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

const SHA256: [u8; 32] = [0xab; 32];
const REPLY_KEY: [u8; 32] = [0x42; 32];

/// The report both sides use, as JSON (byte strings as `{"$hex": ..}`).
fn report_json() -> Value {
    json!({
        "v": 1,
        "category": "grooming",
        "urls": ["https://example.invalid/u/1", "http://exämple.invalid/ü?q=1&r=2"],
        "description": "Il m'a demandé des photos… 😟\nline two",
        "lang": "fr-SN",
        "seen_at": 1_700_000_000u64,
        "platform": "chat app",
        "hashes": [{"alg": "sha256", "value": {"$hex": hex::encode(SHA256)}}],
        "contact": "+221 77 000 00 00",
        "reply_key": {"$hex": hex::encode(REPLY_KEY)},
        "x-future": {"nested": [1, 2, {"$hex": "00ff"}]},
    })
}

/// The same report as our type; the unknown field holds cbor2's encoding of
/// `{"nested": [1, 2, h'00ff']}`.
fn report() -> Report {
    let mut extra = Writer::new();
    extra
        .map(1)
        .text("nested")
        .array(3)
        .uint(1)
        .uint(2)
        .bytes(&[0x00, 0xff]);
    Report {
        urls: vec![
            "https://example.invalid/u/1".into(),
            "http://exämple.invalid/ü?q=1&r=2".into(),
        ],
        description: Some("Il m'a demandé des photos… 😟\nline two".into()),
        lang: Some("fr-SN".into()),
        seen_at: Some(1_700_000_000),
        platform: Some("chat app".into()),
        hashes: vec![ImageHash {
            alg: HashAlg::Sha256,
            value: SHA256.to_vec(),
        }],
        contact: Some("+221 77 000 00 00".into()),
        reply_key: Some(REPLY_KEY),
        extra: vec![("x-future".into(), extra.into_bytes())],
        ..Report::new(Category::Grooming)
    }
}

const AEADS: [Aead; 2] = [Aead::Aes128Gcm, Aead::ChaCha20Poly1305];

#[test]
fn python_seals_rust_opens() {
    let Some(python) = python() else { return };
    let rng = ring::rand::SystemRandom::new();
    let sk = HpkeSecretKey::generate(&rng).unwrap();
    let pk_hex = hex::encode(sk.public_key().0);
    let report_json = report_json().to_string();
    for aead in AEADS {
        for pad in [false, true] {
            let aead_id = aead.id().to_string();
            let mut args = vec![
                "seal",
                "--pk-hex",
                &pk_hex,
                "--aead",
                &aead_id,
                "--report-json",
                &report_json,
            ];
            if pad {
                args.push("--pad");
            }
            let bytes = hex::decode(interop(&python, &args, "")).unwrap();

            let envelope = Envelope::decode(&bytes).unwrap();
            assert_eq!(envelope.aead, aead);
            assert_eq!(envelope.kid, sk.public_key().kid());
            let plaintext = open(&sk, &envelope).unwrap();
            assert_eq!(
                PAD_BUCKETS.contains(&plaintext.len()),
                pad,
                "{aead:?} pad={pad}: plaintext of {} bytes",
                plaintext.len()
            );
            assert_eq!(open_report(&sk, &bytes).unwrap(), report(), "{aead:?}");
        }
    }
}

#[test]
fn rust_seals_python_opens() {
    let Some(python) = python() else { return };
    let rng = ring::rand::SystemRandom::new();
    let sk = HpkeSecretKey::generate(&rng).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("hpke.pem");
    std::fs::write(&pem, sk.to_pem().unwrap()).unwrap();
    for aead in AEADS {
        let envelope = seal_report(&report(), &sk.public_key(), aead, &rng).unwrap();
        let bytes = envelope.encode();
        // interop.py refuses a padded plaintext that is not exactly a bucket.
        let out = interop(
            &python,
            &["open", "--sk-pem", pem.to_str().unwrap()],
            &hex::encode(&bytes),
        );
        let opened: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(opened, report_json(), "{aead:?}");
        assert!(opened.get("pad").is_none());
    }
}
