//! The signed key document served at `GET /v1/key`.
//!
//! A malicious or seized gateway could hand out its own public key and read
//! every report. Apps therefore pin the hotline's Ed25519 signing key and accept
//! an HPKE key only inside a document that key signed.

use crate::cbor::{DecodeError, Limits, Reader, Writer};
use crate::envelope::{read_suite, write_suite, Aead, VERSION};
use crate::keys::{HpkePublicKey, KeyError, Kid, SigningKey, VerifyingKey, KEY_DOC_CONTEXT};

/// The content of a key document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDocument {
    /// The hotline's HPKE public key.
    pub public_key: HpkePublicKey,
    /// The AEAD clients should use by default.
    pub aead: Aead,
    /// After this unix time the key must no longer be used.
    pub not_after: u64,
}

/// Why a key document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyDocError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the key document is not signed by the pinned hotline key")]
    BadSignature,
    #[error("the key document expired at {not_after} (now {now})")]
    Expired { not_after: u64, now: u64 },
    #[error("the key document's kid does not match its key")]
    KidMismatch,
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl KeyDocument {
    /// The key id of the document's key.
    pub fn kid(&self) -> Kid {
        self.public_key.kid()
    }

    /// Encodes the inner document (the signed bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(5)
            .text("v")
            .uint(VERSION)
            .text("kid")
            .bytes(&self.kid().0);
        w.text("suite");
        write_suite(&mut w, self.aead);
        w.text("pk")
            .bytes(&self.public_key.0)
            .text("not_after")
            .uint(self.not_after);
        w.into_bytes()
    }

    /// Decodes the inner document; does not check any signature.
    pub fn decode(input: &[u8]) -> Result<KeyDocument, KeyDocError> {
        let mut r = Reader::new(input, Limits::ENVELOPE)?;
        let (mut v, mut kid, mut aead, mut pk, mut not_after) = (None, None, None, None, None);
        r.for_each_entry("key", |r, key| {
            match key {
                "v" => v = Some(r.uint("v")?),
                "kid" => kid = Some(Kid(r.fixed_bytes("kid")?)),
                "suite" => aead = Some(read_suite(r)?),
                "pk" => pk = Some(HpkePublicKey(r.fixed_bytes("pk")?)),
                "not_after" => not_after = Some(r.uint("not_after")?),
                _ => {
                    r.raw_value()?;
                }
            }
            Ok(())
        })?;
        r.finish()?;
        match v.ok_or(DecodeError::MissingField("v"))? {
            VERSION => {}
            other => return Err(DecodeError::UnsupportedVersion(other).into()),
        }
        let doc = KeyDocument {
            public_key: pk.ok_or(DecodeError::MissingField("pk"))?,
            aead: aead.ok_or(DecodeError::MissingField("suite"))?,
            not_after: not_after.ok_or(DecodeError::MissingField("not_after"))?,
        };
        if kid.ok_or(DecodeError::MissingField("kid"))? != doc.kid() {
            return Err(KeyDocError::KidMismatch);
        }
        Ok(doc)
    }

    /// Signs the document: the signed key document, as the hotline's
    /// tools write it to disk (`key` and `sig`, no `signer`).
    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        KeyAnswer::sign(self, key).encode()
    }

    /// Verifies a signed document against the pinned signing key and the
    /// current time, and returns its content.
    pub fn verify(
        signed: &[u8],
        pinned: &VerifyingKey,
        now: u64,
    ) -> Result<KeyDocument, KeyDocError> {
        KeyAnswer::decode(signed)?.verify(pinned, now)
    }
}

/// The signed key document as a message: `{key, sig, ? signer}`, the body
/// of `GET /v1/key`. The gateway serves it with `signer` (the raw signing
/// public key) so a client that pinned only the key's fingerprint can check
/// the fingerprint and then the signature; readers skip unknown fields, so
/// `signer` is an extension of v1, not a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAnswer {
    /// The encoded [`KeyDocument`]: the signed bytes.
    pub key: Vec<u8>,
    /// Ed25519 over `hotline-key/v1 || key`; empty means unsigned.
    pub sig: Vec<u8>,
    /// The signing key that made `sig`, if the sender names it.
    pub signer: Option<VerifyingKey>,
}

impl KeyAnswer {
    /// Signs `doc` with `key`; no `signer` field.
    pub fn sign(doc: &KeyDocument, key: &SigningKey) -> KeyAnswer {
        let inner = doc.encode();
        let sig = key.sign(&[KEY_DOC_CONTEXT, &inner].concat()).to_vec();
        KeyAnswer {
            key: inner,
            sig,
            signer: None,
        }
    }

    /// The same answer naming `signer` (what the gateway serves).
    pub fn with_signer(self, signer: VerifyingKey) -> KeyAnswer {
        KeyAnswer {
            signer: Some(signer),
            ..self
        }
    }

    /// Encodes `key`, `sig` and, if set, `signer`, in that order.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(2 + usize::from(self.signer.is_some()))
            .text("key")
            .bytes(&self.key)
            .text("sig")
            .bytes(&self.sig);
        if let Some(signer) = &self.signer {
            w.text("signer").bytes(&signer.0);
        }
        w.into_bytes()
    }

    /// Decodes the answer within [`Limits::ENVELOPE`]. `key` and `sig` are
    /// required (an empty `sig` is left for [`KeyAnswer::verify`] to
    /// refuse); `signer` must be 32 bytes when present.
    pub fn decode(input: &[u8]) -> Result<KeyAnswer, DecodeError> {
        let mut r = Reader::new(input, Limits::ENVELOPE)?;
        let (mut key, mut sig, mut signer) = (None, None, None);
        r.for_each_entry("key document", |r, k| {
            match k {
                "key" => key = Some(r.bytes("key")?.to_vec()),
                "sig" => sig = Some(r.bytes("sig")?.to_vec()),
                "signer" => signer = Some(VerifyingKey(r.fixed_bytes("signer")?)),
                _ => {
                    r.raw_value()?;
                }
            }
            Ok(())
        })?;
        r.finish()?;
        Ok(KeyAnswer {
            key: key.ok_or(DecodeError::MissingField("key"))?,
            sig: sig.ok_or(DecodeError::MissingField("sig"))?,
            signer,
        })
    }

    /// Checks `sig` with `pinned` over the document, decodes it and checks
    /// that it has not expired at `now`. `signer` is not trusted here: the
    /// caller picks the key to verify with.
    pub fn verify(&self, pinned: &VerifyingKey, now: u64) -> Result<KeyDocument, KeyDocError> {
        pinned
            .verify(&[KEY_DOC_CONTEXT, &self.key].concat(), &self.sig)
            .map_err(|_| KeyDocError::BadSignature)?;
        let doc = KeyDocument::decode(&self.key)?;
        if doc.not_after <= now {
            return Err(KeyDocError::Expired {
                not_after: doc.not_after,
                now,
            });
        }
        Ok(doc)
    }
}
