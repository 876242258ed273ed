//! `keygen`: the hotline's keys and signed key document, in the file names
//! the gateway's `init` uses.
//!
//! ```text
//! DIR/hotline-hpke.pem      X25519 private key (PKCS#8, 0600): opens every report
//! DIR/hotline-signing.pem   Ed25519 private key (PKCS#8, 0600): signs key documents
//! DIR/hotline-public.pem    the X25519 public key (SPKI)
//! DIR/signing-public.pem    the Ed25519 public key (SPKI): give to the gateway, pin in apps
//! DIR/key-document.cbor     the signed key document: give to the gateway
//! ```
//!
//! Existing files are never overwritten.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hotline_protocol::{fingerprint, Aead, HpkeSecretKey, KeyDocument, SigningKey};
use ring::rand::SystemRandom;

use crate::StaffError;

/// File names written by [`keygen`].
pub const HPKE_PRIVATE: &str = "hotline-hpke.pem";
/// Ed25519 private key file.
pub const SIGNING_PRIVATE: &str = "hotline-signing.pem";
/// X25519 public key file.
pub const HPKE_PUBLIC: &str = "hotline-public.pem";
/// Ed25519 public key file.
pub const SIGNING_PUBLIC: &str = "signing-public.pem";
/// Signed key document file.
pub const KEY_DOCUMENT: &str = "key-document.cbor";

/// What was made.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The folder.
    pub dir: PathBuf,
    /// kid of the HPKE key.
    pub kid: String,
    /// Fingerprint of the HPKE public key.
    pub hpke_fingerprint: String,
    /// Fingerprint of the signing key (what apps and people compare).
    pub signing_fingerprint: String,
    /// Unix time the key document expires.
    pub not_after: u64,
}

/// Makes a key pair, a signing key and a key document valid for `days`.
pub fn keygen(dir: &Path, days: u64) -> Result<Generated, StaffError> {
    if days == 0 || days > 3660 {
        return Err(StaffError::Usage(
            "--days must be between 1 and 3660".into(),
        ));
    }
    for name in [
        HPKE_PRIVATE,
        SIGNING_PRIVATE,
        HPKE_PUBLIC,
        SIGNING_PUBLIC,
        KEY_DOCUMENT,
    ] {
        let p = dir.join(name);
        if p.exists() {
            return Err(StaffError::Usage(format!(
                "{} exists; refusing to overwrite keys",
                p.display()
            )));
        }
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StaffError::io(dir, e))?;
    let rng = SystemRandom::new();
    let hpke = HpkeSecretKey::generate(&rng)?;
    let signing = SigningKey::generate(&rng)?;
    let not_after = hotline_protocol::time::unix_now() + days * hotline_protocol::time::DAY;
    let doc = KeyDocument {
        public_key: hpke.public_key(),
        aead: Aead::ChaCha20Poly1305,
        not_after,
    };
    write(&dir.join(HPKE_PRIVATE), hpke.to_pem()?.as_bytes(), 0o600)?;
    write(
        &dir.join(SIGNING_PRIVATE),
        signing.to_pem().as_bytes(),
        0o600,
    )?;
    write(
        &dir.join(HPKE_PUBLIC),
        hpke.public_key().to_pem()?.as_bytes(),
        0o644,
    )?;
    write(
        &dir.join(SIGNING_PUBLIC),
        signing.verifying_key().to_pem()?.as_bytes(),
        0o644,
    )?;
    write(&dir.join(KEY_DOCUMENT), &doc.sign(&signing), 0o644)?;
    crate::archive::sync_dir(dir)?;
    Ok(Generated {
        dir: dir.to_owned(),
        kid: hpke.public_key().kid().to_string(),
        hpke_fingerprint: fingerprint(&hpke.public_key().0),
        signing_fingerprint: signing.verifying_key().fingerprint(),
        not_after,
    })
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StaffError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| StaffError::io(path, e))?;
    f.write_all(bytes).map_err(|e| StaffError::io(path, e))?;
    f.sync_all().map_err(|e| StaffError::io(path, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use hotline_protocol::VerifyingKey;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn makes_a_verifiable_document_and_private_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("keys");
        let g = keygen(&out, 30).unwrap();
        let pem = fs::read_to_string(out.join(SIGNING_PUBLIC)).unwrap();
        let vk = VerifyingKey::from_pem(&pem).unwrap();
        assert_eq!(vk.fingerprint(), g.signing_fingerprint);
        let doc = KeyDocument::verify(
            &fs::read(out.join(KEY_DOCUMENT)).unwrap(),
            &vk,
            hotline_protocol::time::unix_now(),
        )
        .unwrap();
        assert_eq!(doc.kid().to_string(), g.kid);
        let mode = fs::metadata(out.join(HPKE_PRIVATE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(keygen(&out, 30).is_err(), "must not overwrite");
    }
}
