//! The hotline's public key material as the gateway holds it: the signed key
//! document it serves and the signing key that vouches for it. The gateway
//! checks the signature at start, so it never serves a document apps would refuse.

use std::path::Path;

use hotline_protocol::{KeyAnswer, KeyDocument, VerifyingKey};

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
        let bad = |e: &dyn std::fmt::Display| {
            GatewayError::Keys(format!("{}: {e}", keys.key_document.display()))
        };
        let answer = KeyAnswer::decode(&signed).map_err(|e| bad(&e))?;
        let document = answer
            .verify(&signing, hotline_protocol::time::unix_now())
            .map_err(|e| bad(&e))?;
        Ok(KeySet {
            document,
            // Served with `signer`, so a client that pinned only the signing
            // key's fingerprint can check it (SPEC.md section 10).
            signed: answer.with_signer(signing).encode(),
            signing,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|source| GatewayError::Io {
        path: path.to_owned(),
        source,
    })
}
