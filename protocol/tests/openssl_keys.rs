#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The key ceremony's files interoperate with OpenSSL: keys made by
//! `openssl genpkey` load and work, `openssl pkey -pubout` agrees on the public
//! keys, OpenSSL accepts the PEM files we write, and OpenSSL verifies a key
//! document's Ed25519 signature over `hotline-key/v1` || key.
//!
//! Needs the `openssl` command; without it the tests skip with a notice, or
//! fail when `HOTLINE_REQUIRE_INTEROP=1` (set by `ops/test-all`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use hotline_protocol::cbor::{Limits, Reader};
use hotline_protocol::keys::KEY_DOC_CONTEXT;
use hotline_protocol::{
    open_report, seal_report, Aead, Category, HpkePublicKey, HpkeSecretKey, KeyDocument, Report,
    SigningKey, VerifyingKey,
};

/// Whether the `openssl` command runs; if not, the test skips (or fails, see
/// the module doc).
fn have_openssl() -> bool {
    let runs = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        common::skip_or_fail("OpenSSL interop", "the `openssl` command does not run");
    }
    runs
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the `openssl` command is needed for this test")
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn genpkey(dir: &Path, alg: &str) -> (String, String) {
    let sk = dir.join(format!("{alg}.pem"));
    openssl_ok(&["genpkey", "-algorithm", alg, "-out", path(&sk)]);
    let public = openssl_ok(&["pkey", "-in", path(&sk), "-pubout"]);
    (std::fs::read_to_string(&sk).unwrap(), public)
}

#[test]
fn openssl_keys_load_and_work() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rng = ring::rand::SystemRandom::new();

    let (x_pem, x_pub_pem) = genpkey(dir.path(), "X25519");
    let hpke = HpkeSecretKey::from_pem(&x_pem).unwrap();
    assert_eq!(
        HpkePublicKey::from_pem(&x_pub_pem).unwrap(),
        hpke.public_key()
    );
    assert_eq!(hpke.public_key().to_pem().unwrap(), x_pub_pem);

    let (ed_pem, ed_pub_pem) = genpkey(dir.path(), "ED25519");
    let signing = SigningKey::from_pem(&ed_pem).unwrap();
    assert_eq!(
        VerifyingKey::from_pem(&ed_pub_pem).unwrap(),
        signing.verifying_key()
    );
    assert_eq!(signing.verifying_key().to_pem().unwrap(), ed_pub_pem);

    let mut report = Report::new(Category::Csam);
    report.urls.push("https://example.invalid/x".into());
    for aead in [Aead::ChaCha20Poly1305, Aead::Aes128Gcm] {
        let envelope = seal_report(&report, &hpke.public_key(), aead, &rng).unwrap();
        assert_eq!(open_report(&hpke, &envelope.encode()).unwrap(), report);
    }

    // The wrong key kinds are refused.
    assert!(HpkeSecretKey::from_pem(&ed_pem).is_err());
    assert!(SigningKey::from_pem(&x_pem).is_err());
    assert!(HpkePublicKey::from_pem(&ed_pub_pem).is_err());
    assert!(VerifyingKey::from_pem(&x_pub_pem).is_err());
    assert!(HpkeSecretKey::from_pem(&x_pub_pem).is_err());
}

#[test]
fn openssl_accepts_our_pem_files() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rng = ring::rand::SystemRandom::new();
    let hpke = HpkeSecretKey::generate(&rng).unwrap();
    let signing = SigningKey::generate(&rng).unwrap();

    let files = [
        (
            "x.pem",
            hpke.to_pem().unwrap(),
            hpke.public_key().to_pem().unwrap(),
        ),
        (
            "ed.pem",
            signing.to_pem(),
            signing.verifying_key().to_pem().unwrap(),
        ),
    ];
    for (name, secret_pem, public_pem) in files {
        let sk = dir.path().join(name);
        let pk = dir.path().join(format!("pub-{name}"));
        std::fs::write(&sk, &secret_pem).unwrap();
        std::fs::write(&pk, &public_pem).unwrap();
        openssl_ok(&["pkey", "-in", path(&sk), "-noout"]);
        openssl_ok(&["pkey", "-pubin", "-in", path(&pk), "-noout"]);
        // OpenSSL derives the same public key from our private key file.
        assert_eq!(
            openssl_ok(&["pkey", "-in", path(&sk), "-pubout"]),
            public_pem,
            "{name}"
        );
    }
    // Our files read back to the same keys.
    assert_eq!(
        HpkeSecretKey::from_pem(&hpke.to_pem().unwrap())
            .unwrap()
            .public_key(),
        hpke.public_key()
    );
    assert_eq!(
        SigningKey::from_pem(&signing.to_pem())
            .unwrap()
            .verifying_key(),
        signing.verifying_key()
    );
}

#[test]
fn openssl_verifies_key_document_signature() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rng = ring::rand::SystemRandom::new();
    let (ed_pem, ed_pub_pem) = genpkey(dir.path(), "ED25519");
    let signing = SigningKey::from_pem(&ed_pem).unwrap();
    let hpke = HpkeSecretKey::generate(&rng).unwrap();
    let doc = KeyDocument {
        public_key: hpke.public_key(),
        aead: Aead::ChaCha20Poly1305,
        not_after: 4_000_000_000,
    };
    let signed = doc.sign(&signing);

    // Take the document apart as an independent client would.
    let mut r = Reader::new(&signed, Limits::ENVELOPE).unwrap();
    let (mut key, mut sig) = (None, None);
    r.for_each_entry("doc", |r, k| {
        match k {
            "key" => key = Some(r.bytes("key")?),
            "sig" => sig = Some(r.bytes("sig")?),
            _ => unreachable!(),
        }
        Ok(())
    })
    .unwrap();
    let (key, sig) = (key.unwrap(), sig.unwrap());
    assert_eq!(key, doc.encode().as_slice());
    assert_eq!(sig.len(), 64);

    let pub_file = dir.path().join("ed-pub.pem");
    let msg_file = dir.path().join("msg");
    let sig_file = dir.path().join("sig");
    std::fs::write(&pub_file, &ed_pub_pem).unwrap();
    std::fs::write(&msg_file, [KEY_DOC_CONTEXT, key].concat()).unwrap();
    std::fs::write(&sig_file, sig).unwrap();
    let verify = |msg: &Path| {
        openssl(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            path(&pub_file),
            "-rawin",
            "-in",
            path(msg),
            "-sigfile",
            path(&sig_file),
        ])
    };
    let out = verify(&msg_file);
    assert!(
        out.status.success(),
        "openssl refused the signature: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Without the context prefix (or with any other byte changed) it fails.
    let bare = dir.path().join("bare");
    std::fs::write(&bare, key).unwrap();
    assert!(!verify(&bare).status.success());

    // And our verifier agrees with the key OpenSSL made.
    let pinned = VerifyingKey::from_pem(&ed_pub_pem).unwrap();
    assert_eq!(KeyDocument::verify(&signed, &pinned, 1).unwrap(), doc);
}
