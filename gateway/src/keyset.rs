//! The hotline's public key material as the gateway holds it: the signed key
//! document it serves and the signing key that vouches for it. The gateway
//! checks the signature at start, so it never serves a document apps would refuse.

use std::path::Path;

use hotline_protocol::{KeyDocument, VerifyingKey};

use crate::config::Keys;
use crate::GatewayError;

/// Loaded and verified keys.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// The document's content (HPKE public key, suite, expiry).
    pub document: KeyDocument,
    /// The signed document, served as is at `GET /v1/key`.
    pub signed: Vec<u8>,
    /// The hotline's signing public key.
    pub signing: VerifyingKey,
}

impl KeySet {
    /// Loads and verifies the key document against the signing key.
    pub fn load(keys: &Keys) -> Result<KeySet, GatewayError> {
        let signed = read(&keys.key_document)?;
        let pem = String::from_utf8(read(&keys.signing_public_key)?).map_err(|_| {
            GatewayError::Keys(format!(
                "{} is not a PEM file",
                keys.signing_public_key.display()
            ))
        })?;
        let signing = VerifyingKey::from_pem(&pem).map_err(|e| {
            GatewayError::Keys(format!("{}: {e}", keys.signing_public_key.display()))
        })?;
        let document = KeyDocument::verify(&signed, &signing, crate::unix_now())
            .map_err(|e| GatewayError::Keys(format!("{}: {e}", keys.key_document.display())))?;
        Ok(KeySet {
            document,
            signed: with_signer(&signed, &signing),
            signing,
        })
    }
}

/// The answer to `GET /v1/key`: the signed document's `key` and `sig`, plus
/// `signer`, the raw 32-byte signing public key, so a client that pinned only
/// the key's fingerprint can check the fingerprint and then the signature
/// (hotline-client's `key` module). Readers skip unknown fields, so this is
/// an extension of v1, not a change.
fn with_signer(signed: &[u8], signing: &VerifyingKey) -> Vec<u8> {
    use hotline_protocol::cbor::{Limits, Reader, Writer};
    let mut r = match Reader::new(signed, Limits::ENVELOPE) {
        Ok(r) => r,
        Err(_) => return signed.to_vec(),
    };
    let (mut key, mut sig) = (None, None);
    let parsed = r.for_each_entry("key document", |r, k| {
        match k {
            "key" => key = Some(r.bytes("key")?),
            "sig" => sig = Some(r.bytes("sig")?),
            _ => {
                r.raw_value()?;
            }
        }
        Ok(())
    });
    match (parsed, key, sig) {
        (Ok(()), Some(key), Some(sig)) => {
            let mut w = Writer::new();
            w.map(3)
                .text("key")
                .bytes(key)
                .text("sig")
                .bytes(sig)
                .text("signer")
                .bytes(&signing.0);
            w.into_bytes()
        }
        _ => signed.to_vec(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|source| GatewayError::Io {
        path: path.to_owned(),
        source,
    })
}
