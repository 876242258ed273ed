#![allow(clippy::unwrap_used, clippy::expect_used)]
//! RFC 9180 test vectors for the suites of protocol v1 (see
//! tests/vectors/README.md for their provenance): DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! AES-128-GCM and ChaCha20-Poly1305, base and PSK modes.
//!
//! - key derivation: `DeriveKeyPair(ikmR)` gives `skRm`/`pkRm`, and our own
//!   `HpkeSecretKey::from_raw` agrees on the public key;
//! - receiver: every one of the 257 encryptions opens in sequence with its aad,
//!   and every export matches;
//! - sender: our production path (`envelope::seal_with_ikm_info`, under
//!   `seal_with_ikm` and `seal`) reproduces `enc` and the first `ct` of each
//!   base-mode entry from `ikmE`.

use hotline_protocol::envelope::{seal_with_ikm, seal_with_ikm_info, Aead};
use hotline_protocol::{HpkePublicKey, HpkeSecretKey};
use hpke::aead::{Aead as HpkeAead, AesGcm128, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256 as Kem;
use hpke::{Deserializable, Kem as _, OpModeR, PskBundle, Serializable};
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/hpke-rfc9180.json"
);

fn hex_field(v: &Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().unwrap_or_else(|| panic!("missing {name}"))).unwrap()
}

fn load() -> Vec<Value> {
    let text =
        std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("cannot read {VECTORS}: {e}"));
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(all.len(), 4, "expected the 4 filtered entries");
    all
}

fn check_receiver<A: HpkeAead>(entry: &Value) {
    let sk_r = <Kem as hpke::Kem>::PrivateKey::from_bytes(&hex_field(entry, "skRm")).unwrap();
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&hex_field(entry, "enc")).unwrap();
    let info = hex_field(entry, "info");
    let (psk, psk_id) = (hex_field_opt(entry, "psk"), hex_field_opt(entry, "psk_id"));
    let mode = match entry["mode"].as_u64().unwrap() {
        0 => OpModeR::Base,
        1 => OpModeR::Psk(PskBundle::new(&psk, &psk_id).unwrap()),
        m => panic!("unexpected mode {m}"),
    };
    let mut ctx = hpke::setup_receiver::<A, HkdfSha256, Kem>(&mode, &sk_r, &enc, &info).unwrap();

    let encryptions = entry["encryptions"].as_array().unwrap();
    assert_eq!(encryptions.len(), 257);
    for (seq, e) in encryptions.iter().enumerate() {
        let pt = ctx
            .open(&hex_field(e, "ct"), &hex_field(e, "aad"))
            .unwrap_or_else(|err| panic!("encryption {seq} does not open: {err}"));
        assert_eq!(pt, hex_field(e, "pt"), "encryption {seq}");
    }

    let exports = entry["exports"].as_array().unwrap();
    assert_eq!(exports.len(), 3);
    for x in exports {
        let len = usize::try_from(x["L"].as_u64().unwrap()).unwrap();
        let mut out = vec![0u8; len];
        ctx.export(&hex_field(x, "exporter_context"), &mut out)
            .unwrap();
        assert_eq!(out, hex_field(x, "exported_value"));
    }
}

fn hex_field_opt(v: &Value, name: &str) -> Vec<u8> {
    v.get(name)
        .and_then(Value::as_str)
        .map(|h| hex::decode(h).unwrap())
        .unwrap_or_default()
}

/// RFC 9180 §7.1.2: X25519 `SerializePrivateKey` MUST clamp its output; the
/// vectors print the unclamped scalar.
fn clamp(mut sk: Vec<u8>) -> Vec<u8> {
    sk[0] &= 248;
    sk[31] &= 127;
    sk[31] |= 64;
    sk
}

#[test]
fn key_derivation_matches() {
    for entry in load() {
        let (sk, pk) = Kem::derive_keypair(&hex_field(&entry, "ikmR"));
        assert_eq!(sk.to_bytes().as_slice(), clamp(hex_field(&entry, "skRm")));
        assert_eq!(pk.to_bytes().as_slice(), hex_field(&entry, "pkRm"));
        // Our key type computes the same public key from the raw private key.
        let ours = HpkeSecretKey::from_raw(&hex_field(&entry, "skRm")).unwrap();
        assert_eq!(ours.public_key().0.as_slice(), hex_field(&entry, "pkRm"));
        // And the ephemeral side: DeriveKeyPair(ikmE) = (skEm, pkEm = enc).
        let (sk_e, pk_e) = Kem::derive_keypair(&hex_field(&entry, "ikmE"));
        assert_eq!(sk_e.to_bytes().as_slice(), clamp(hex_field(&entry, "skEm")));
        assert_eq!(pk_e.to_bytes().as_slice(), hex_field(&entry, "enc"));
    }
}

#[test]
fn receiver_opens_every_encryption_and_export() {
    let mut checked = 0;
    for entry in load() {
        match entry["aead_id"].as_u64().unwrap() {
            1 => check_receiver::<AesGcm128>(&entry),
            3 => check_receiver::<ChaCha20Poly1305>(&entry),
            a => panic!("unexpected aead {a}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn our_sender_reproduces_base_mode_vectors() {
    let mut checked = 0;
    for entry in load().iter().filter(|e| e["mode"] == 0) {
        let aead = Aead::from_id(entry["aead_id"].as_u64().unwrap()).unwrap();
        let pk = HpkePublicKey(hex_field(entry, "pkRm").try_into().unwrap());
        let ikm_e: [u8; 32] = hex_field(entry, "ikmE").try_into().unwrap();
        let first = &entry["encryptions"][0];
        let (pt, aad) = (hex_field(first, "pt"), hex_field(first, "aad"));

        let (enc, ct) =
            seal_with_ikm_info(&pk, aead, &hex_field(entry, "info"), &pt, &aad, &ikm_e).unwrap();
        assert_eq!(enc.as_slice(), hex_field(entry, "enc"));
        assert_eq!(ct, hex_field(first, "ct"));

        // The envelope path uses the same ephemeral key; only `info` differs,
        // so `enc` is the vector's and the ciphertext is not.
        let env = seal_with_ikm(&pk, aead, &pt, &aad, &ikm_e).unwrap();
        assert_eq!(env.enc.as_slice(), hex_field(entry, "enc"));
        assert_eq!(env.kid, pk.kid());
        assert_eq!(env.aead, aead);
        assert_ne!(env.ct, hex_field(first, "ct"));
        checked += 1;
    }
    assert_eq!(checked, 2);
}

/// The test vectors of SPEC.md section 12: our encoder, sealer and signer
/// reproduce them, and SPEC.md still prints them.
#[test]
fn spec_vectors() {
    use hotline_protocol::cbor::Writer;
    use hotline_protocol::envelope::open;
    use hotline_protocol::{
        open_report, Category, Envelope, HashAlg, ImageHash, KeyDocument, Report, SigningKey,
    };

    const SPEC: &str = include_str!("../SPEC.md");
    const ED25519_SEED_22: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEICIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIi\n\
        -----END PRIVATE KEY-----\n";
    let spec: String = SPEC.split_whitespace().collect();
    let in_spec = |bytes: &[u8]| assert!(spec.contains(&hex::encode(bytes)), "not in SPEC.md");

    let sk = HpkeSecretKey::from_raw(&[0x11; 32]).unwrap();
    let pk = sk.public_key();
    in_spec(&pk.0);
    in_spec(&pk.kid().0);

    let mut hint = Writer::new();
    hint.text("web-nojs");
    let report = Report {
        urls: vec!["https://chat.example/u/12345".into()],
        description: Some("Un adulte demande des photos à ma sœur de 12 ans.".into()),
        lang: Some("fr".into()),
        seen_at: Some(1_763_900_000),
        platform: Some("chat.example".into()),
        hashes: vec![ImageHash {
            alg: HashAlg::Sha256,
            value: hex::decode("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
                .unwrap(),
        }],
        extra: vec![("x-channel-hint".into(), hint.into_bytes())],
        ..Report::new(Category::Grooming)
    };
    let plaintext = report.encode();
    in_spec(&plaintext);
    let padded = report.encode_padded().unwrap();
    assert_eq!(padded.len(), 1024);
    assert_eq!(&padded[1024 - 767 - 7..1024 - 767], b"\x63pad\x59\x02\xff");

    let envelope = seal_with_ikm(&pk, Aead::ChaCha20Poly1305, &plaintext, &[], &[0x33; 32])
        .unwrap()
        .encode();
    in_spec(&envelope);
    assert_eq!(
        open(&sk, &Envelope::decode(&envelope).unwrap()).unwrap(),
        plaintext
    );
    assert_eq!(open_report(&sk, &envelope).unwrap(), report);

    let signing = SigningKey::from_pem(ED25519_SEED_22).unwrap();
    in_spec(&signing.verifying_key().0);
    assert!(SPEC.contains(&signing.verifying_key().fingerprint()));
    let doc = KeyDocument {
        public_key: pk,
        aead: Aead::ChaCha20Poly1305,
        not_after: 1_798_761_600,
    };
    in_spec(&doc.sign(&signing));
}
