//! The hotline's key, fetched from `GET /v1/key` and trusted only if the
//! pinned signing key vouches for it.
//!
//! A seized or malicious gateway could hand out its own HPKE key and read
//! every report sealed to it. The app therefore carries the hotline's Ed25519
//! signing key, or its fingerprint, and accepts an HPKE key only inside a
//! document that key signed and that has not expired.
//!
//! With a fingerprint pin the signing key itself comes from the answer's
//! `signer` field (32 raw bytes, next to `key` and `sig`): the fingerprint must
//! match it before the signature is checked with it.

use std::fmt;
use std::path::Path;

use hotline_protocol::cbor::DecodeError;
use hotline_protocol::time::unix_now;
use hotline_protocol::{KeyAnswer, KeyDocError, KeyDocument, VerifyingKey};
use hyper::{Method, StatusCode};

use hotline_https::{Transport, TransportError};

/// Bytes of SHA-256 a fingerprint keeps.
const FINGERPRINT_BYTES: usize = 16;

/// What the app trusts: the hotline's signing key, or its fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub enum Pin {
    /// The fingerprint (first 16 bytes of SHA-256 of the raw Ed25519 key), as
    /// `VerifyingKey::fingerprint` prints it.
    Fingerprint([u8; FINGERPRINT_BYTES]),
    /// The key itself.
    Key(VerifyingKey),
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin({})", self.fingerprint())
    }
}

/// Why a pin was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error(
        "the pin must be the signing key fingerprint (32 hex digits, e.g. \"1A2B 3C4D ...\") \
         or an Ed25519 public key PEM"
    )]
    Format,
    #[error("the pinned PEM is not an Ed25519 public key: {0}")]
    Pem(String),
}

impl Pin {
    /// Reads a pin as people pass it: a fingerprint in any case with or
    /// without spaces, colons or dashes; PEM text; or the path of a PEM file.
    pub fn parse(text: &str) -> Result<Pin, PinError> {
        let text = text.trim();
        if text.contains("-----BEGIN") {
            return VerifyingKey::from_pem(text)
                .map(Pin::Key)
                .map_err(|e| PinError::Pem(e.to_string()));
        }
        let digits: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | ':' | '-' | '\t'))
            .collect();
        if digits.len() == 2 * FINGERPRINT_BYTES {
            if let Ok(raw) = hex::decode(&digits) {
                let mut fp = [0u8; FINGERPRINT_BYTES];
                fp.copy_from_slice(&raw);
                return Ok(Pin::Fingerprint(fp));
            }
        }
        let path = Path::new(text);
        if path.is_file() {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| PinError::Pem(format!("{}: {e}", path.display())))?;
            return VerifyingKey::from_pem(&pem)
                .map(Pin::Key)
                .map_err(|e| PinError::Pem(format!("{}: {e}", path.display())));
        }
        Err(PinError::Format)
    }

    /// The pinned fingerprint, formatted like `VerifyingKey::fingerprint`.
    pub fn fingerprint(&self) -> String {
        match self {
            Pin::Key(k) => k.fingerprint(),
            Pin::Fingerprint(fp) => fp
                .chunks(2)
                .map(|c| format!("{:02X}{:02X}", c[0], c[1]))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Whether `key` is the pinned key.
    pub fn matches(&self, key: &VerifyingKey) -> bool {
        match self {
            Pin::Key(k) => k == key,
            Pin::Fingerprint(_) => same_fingerprint(&self.fingerprint(), &key.fingerprint()),
        }
    }
}

/// Compares two fingerprints ignoring spaces and case.
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    norm(a) == norm(b)
}

/// A key document that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    /// The HPKE key, suite and expiry to seal with.
    pub document: KeyDocument,
    /// The signing key that vouched for it (the pinned one).
    pub signer: VerifyingKey,
    /// The signed answer as received, for caching and re-verifying offline.
    pub signed: Vec<u8>,
}

/// Why the hotline's key was refused or could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot fetch the key: {0}")]
    Transport(#[from] TransportError),
    #[error("GET /v1/key answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("the key document is malformed: {0}")]
    Malformed(DecodeError),
    #[error("the key document is not signed")]
    Unsigned,
    #[error(
        "the key document does not say which key signed it; pin the signing key's PEM \
         instead of its fingerprint"
    )]
    NoSigner,
    #[error(
        "REFUSED: the gateway serves a key signed by another key (fingerprint {served}), \
         not the pinned hotline key {pinned}; do not send reports to it"
    )]
    OtherSigner { pinned: String, served: String },
    #[error(
        "REFUSED: the key document's signature does not verify with the pinned hotline key \
         {pinned}; do not send reports to this gateway"
    )]
    BadSignature { pinned: String },
    #[error("REFUSED: the hotline key expired at unix time {not_after} (now {now}); the gateway must publish a new one")]
    Expired { not_after: u64, now: u64 },
    #[error("the key document's kid does not match its key")]
    KidMismatch,
    #[error("the key document holds an unusable key: {0}")]
    Key(String),
}

impl KeyError {
    /// Network trouble that may pass, as opposed to a document to refuse.
    pub fn is_retryable(&self) -> bool {
        match self {
            KeyError::Transport(e) => e.is_retryable(),
            KeyError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}

/// Verifies a `GET /v1/key` answer against the pin at time `now`.
pub fn verify_key_document(signed: &[u8], pin: &Pin, now: u64) -> Result<VerifiedKey, KeyError> {
    let answer = KeyAnswer::decode(signed).map_err(|e| match e {
        DecodeError::MissingField("sig") => KeyError::Unsigned,
        other => KeyError::Malformed(other),
    })?;
    if answer.sig.is_empty() {
        return Err(KeyError::Unsigned);
    }
    let signer = match pin {
        Pin::Key(k) => *k,
        Pin::Fingerprint(_) => {
            let served = answer.signer.ok_or(KeyError::NoSigner)?;
            if !pin.matches(&served) {
                return Err(KeyError::OtherSigner {
                    pinned: pin.fingerprint(),
                    served: served.fingerprint(),
                });
            }
            served
        }
    };
    // With a full-key pin, a document naming another signer is refused with
    // the clearer message before the signature check would fail anyway.
    if let (Pin::Key(k), Some(served)) = (pin, answer.signer) {
        if served != *k {
            return Err(KeyError::OtherSigner {
                pinned: pin.fingerprint(),
                served: served.fingerprint(),
            });
        }
    }
    let document = answer.verify(&signer, now).map_err(|e| match e {
        KeyDocError::Decode(d) => KeyError::Malformed(d),
        KeyDocError::BadSignature => KeyError::BadSignature {
            pinned: pin.fingerprint(),
        },
        KeyDocError::Expired { not_after, now } => KeyError::Expired { not_after, now },
        KeyDocError::KidMismatch => KeyError::KidMismatch,
        KeyDocError::Key(k) => KeyError::Key(k.to_string()),
    })?;
    Ok(VerifiedKey {
        document,
        signer,
        signed: signed.to_vec(),
    })
}

/// Fetches `GET /v1/key` once and verifies it against the pin.
pub async fn fetch_key(transport: &Transport, pin: &Pin) -> Result<VerifiedKey, KeyError> {
    let answer = transport
        .send(
            Method::GET,
            "/v1/key",
            &[("accept", hotline_protocol::MEDIA_TYPE)],
            Vec::new(),
        )
        .await?;
    if answer.status != StatusCode::OK {
        return Err(KeyError::Status {
            status: answer.status,
            message: crate::submit::error_message(&answer.body),
        });
    }
    verify_key_document(&answer.body, pin, unix_now())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hotline_protocol::cbor::Writer;
    use hotline_protocol::{Aead, HpkeSecretKey, SigningKey};
    use ring::rand::SystemRandom;

    fn keys() -> (SigningKey, KeyDocument) {
        let rng = SystemRandom::new();
        let signing = SigningKey::generate(&rng).unwrap();
        let doc = KeyDocument {
            public_key: HpkeSecretKey::generate(&rng).unwrap().public_key(),
            aead: Aead::ChaCha20Poly1305,
            not_after: unix_now() + 3600,
        };
        (signing, doc)
    }

    /// The answer as the gateway serves it: `key`, `sig` and `signer`.
    fn served(doc: &KeyDocument, signing: &SigningKey) -> Vec<u8> {
        KeyAnswer::sign(doc, signing)
            .with_signer(signing.verifying_key())
            .encode()
    }

    #[test]
    fn pins_parse_in_the_forms_people_type() {
        let (signing, _) = keys();
        let vk = signing.verifying_key();
        let fp = vk.fingerprint();
        for text in [
            fp.clone(),
            fp.to_lowercase(),
            fp.replace(' ', ""),
            fp.replace(' ', ":"),
            format!("  {fp}\n"),
        ] {
            let pin = Pin::parse(&text).unwrap();
            assert!(pin.matches(&vk), "{text:?}");
            assert_eq!(pin.fingerprint(), fp);
        }
        let pem = vk.to_pem().unwrap();
        assert_eq!(Pin::parse(&pem).unwrap(), Pin::Key(vk));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-public.pem");
        std::fs::write(&path, &pem).unwrap();
        assert_eq!(Pin::parse(path.to_str().unwrap()).unwrap(), Pin::Key(vk));
        assert_eq!(Pin::parse("1234"), Err(PinError::Format));
        assert_eq!(Pin::parse(&"zz".repeat(16)), Err(PinError::Format));
        assert!(same_fingerprint("ab12 CD34", "AB12cd34"));
    }

    #[test]
    fn a_document_signed_by_the_pinned_key_is_accepted_by_fingerprint_and_by_key() {
        let (signing, doc) = keys();
        let body = served(&doc, &signing);
        let vk = signing.verifying_key();
        for pin in [Pin::parse(&vk.fingerprint()).unwrap(), Pin::Key(vk)] {
            let v = verify_key_document(&body, &pin, unix_now()).unwrap();
            assert_eq!(v.document, doc);
            assert_eq!(v.signer, vk);
        }
        // A plain signed document (no signer field) is fine with a key pin.
        let plain = doc.sign(&signing);
        assert!(verify_key_document(&plain, &Pin::Key(vk), unix_now()).is_ok());
        assert!(matches!(
            verify_key_document(&plain, &Pin::parse(&vk.fingerprint()).unwrap(), unix_now()),
            Err(KeyError::NoSigner)
        ));
    }

    #[test]
    fn a_document_of_another_key_is_refused() {
        let (signing, doc) = keys();
        let (other, _) = keys();
        let body = served(&doc, &other);
        let pin = Pin::parse(&signing.verifying_key().fingerprint()).unwrap();
        let err = verify_key_document(&body, &pin, unix_now()).unwrap_err();
        assert!(matches!(err, KeyError::OtherSigner { .. }), "{err}");
        assert!(err.to_string().contains("REFUSED"));
        let err =
            verify_key_document(&body, &Pin::Key(signing.verifying_key()), unix_now()).unwrap_err();
        assert!(matches!(err, KeyError::OtherSigner { .. }), "{err}");
        // Without a signer field, the signature check refuses it.
        let err = verify_key_document(
            &doc.sign(&other),
            &Pin::Key(signing.verifying_key()),
            unix_now(),
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn a_signer_field_naming_the_pinned_key_does_not_replace_the_signature() {
        // The attacker copies the pinned key into `signer` but signs with its own.
        let (signing, doc) = keys();
        let (other, _) = keys();
        let forged = served(&doc, &other);
        let forged = {
            let mut f = forged.clone();
            let theirs = other.verifying_key().0;
            let pos = f.windows(32).position(|w| w == theirs).unwrap();
            f[pos..pos + 32].copy_from_slice(&signing.verifying_key().0);
            f
        };
        let pin = Pin::parse(&signing.verifying_key().fingerprint()).unwrap();
        let err = verify_key_document(&forged, &pin, unix_now()).unwrap_err();
        assert!(matches!(err, KeyError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn an_expired_document_is_refused() {
        let (signing, mut doc) = keys();
        doc.not_after = unix_now() - 10;
        let body = served(&doc, &signing);
        let pin = Pin::parse(&signing.verifying_key().fingerprint()).unwrap();
        let err = verify_key_document(&body, &pin, unix_now()).unwrap_err();
        assert!(matches!(err, KeyError::Expired { .. }), "{err}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn an_unsigned_or_garbled_document_is_refused() {
        let (signing, doc) = keys();
        let pin = Pin::Key(signing.verifying_key());
        let mut w = Writer::new();
        w.map(1).text("key").bytes(&doc.encode());
        let err = verify_key_document(&w.into_bytes(), &pin, unix_now()).unwrap_err();
        assert!(matches!(err, KeyError::Unsigned), "{err}");
        let mut w = Writer::new();
        w.map(2)
            .text("key")
            .bytes(&doc.encode())
            .text("sig")
            .bytes(&[]);
        let err = verify_key_document(&w.into_bytes(), &pin, unix_now()).unwrap_err();
        assert!(matches!(err, KeyError::Unsigned), "{err}");
        let err = verify_key_document(b"\xff\x00", &pin, unix_now()).unwrap_err();
        assert!(matches!(err, KeyError::Malformed(_)), "{err}");
    }
}
