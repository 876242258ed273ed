//! The envelope: an HPKE-sealed report, the only thing the gateway ever sees.
//!
//! HPKE base mode (RFC 9180) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
//! either ChaCha20-Poly1305 (fast on phones without AES instructions) or
//! AES-128-GCM (native in browsers' WebCrypto). The construction is the `hpke`
//! crate's; this module only fixes the parameters and the framing.

use hpke::aead::{AesGcm128, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use ring::rand::SecureRandom;

use crate::cbor::{head_len, DecodeError, Limits, Reader, Writer};
use crate::keys::{HpkePublicKey, HpkeSecretKey, Kem, KeyError, Kid};

pub use crate::VERSION;
/// HPKE KEM id of v1: DHKEM(X25519, HKDF-SHA256).
pub const KEM_ID: u64 = 0x0020;
/// HPKE KDF id of v1: HKDF-SHA256.
pub const KDF_ID: u64 = 0x0001;
/// Prefix of the HPKE `info`; the kid follows it.
pub const INFO_PREFIX: &[u8] = b"hotline-report/v1";
/// Length of the AEAD tag at the end of `ct` (both v1 AEADs).
pub const TAG_LEN: usize = 16;

/// The largest valid envelope in bytes: one sealing the largest padded
/// report (65,626). A gateway's body limit for `POST /v1/reports` must not
/// be lower; computed here, from the padding buckets and the framing, so no
/// one copies the number.
pub const MAX_ENVELOPE_LEN: usize = envelope_len(crate::report::MAX_PLAINTEXT_LEN + TAG_LEN);

/// The encoded length of an envelope whose `ct` is `ct_len` bytes, as
/// [`Envelope::encode`] writes it: a 5-entry map with `v`, `suite` (three
/// ids), an 8-byte `kid`, a 32-byte `enc` and `ct`.
pub const fn envelope_len(ct_len: usize) -> usize {
    const fn text(s: &str) -> usize {
        head_len(s.len() as u64) + s.len()
    }
    const fn bytes(n: usize) -> usize {
        head_len(n as u64) + n
    }
    head_len(5)
        + text("v")
        + head_len(VERSION)
        + text("suite")
        + head_len(3)
        + head_len(KEM_ID)
        + head_len(KDF_ID)
        + head_len(3)
        + text("kid")
        + bytes(8)
        + text("enc")
        + bytes(32)
        + text("ct")
        + bytes(ct_len)
}

/// The AEADs protocol v1 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aead {
    /// AEAD id 1.
    Aes128Gcm,
    /// AEAD id 3, the default.
    ChaCha20Poly1305,
}

impl Aead {
    /// The HPKE AEAD id.
    pub fn id(self) -> u64 {
        match self {
            Aead::Aes128Gcm => 1,
            Aead::ChaCha20Poly1305 => 3,
        }
    }

    /// The AEAD for an HPKE id, if v1 allows it.
    pub fn from_id(id: u64) -> Option<Aead> {
        match id {
            1 => Some(Aead::Aes128Gcm),
            3 => Some(Aead::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The suite triple `[kem, kdf, aead]` as it appears on the wire.
    pub fn suite(self) -> [u64; 3] {
        [KEM_ID, KDF_ID, self.id()]
    }
}

/// Reads a `[kem, kdf, aead]` suite; anything but a v1 suite is refused with
/// its own error, which the gateway answers with 422.
pub(crate) fn read_suite(r: &mut Reader<'_>) -> Result<Aead, DecodeError> {
    let n = r.array("suite")?;
    if n != 3 {
        return Err(DecodeError::InvalidValue {
            field: "suite",
            reason: "must have three ids",
        });
    }
    let ids = [r.uint("suite")?, r.uint("suite")?, r.uint("suite")?];
    r.leave();
    match (ids, Aead::from_id(ids[2])) {
        ([KEM_ID, KDF_ID, _], Some(aead)) => Ok(aead),
        _ => Err(DecodeError::UnsupportedSuite(ids)),
    }
}

pub(crate) fn write_suite(w: &mut Writer, aead: Aead) {
    w.array(3);
    for id in aead.suite() {
        w.uint(id);
    }
}

/// A sealed report as sent to `POST /v1/reports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The AEAD of the suite.
    pub aead: Aead,
    /// Which hotline key the report is sealed to.
    pub kid: Kid,
    /// The HPKE encapsulated key (the ephemeral X25519 public key).
    pub enc: [u8; 32],
    /// The ciphertext with its 16-byte tag.
    pub ct: Vec<u8>,
}

impl Envelope {
    /// Decodes an envelope within [`Limits::ENVELOPE`]. Unknown fields are
    /// skipped (a later minor revision may add some); an unknown version is refused.
    pub fn decode(input: &[u8]) -> Result<Envelope, DecodeError> {
        Self::decode_with(input, Limits::ENVELOPE)
    }

    /// Decodes an envelope within the given limits.
    pub fn decode_with(input: &[u8], limits: Limits) -> Result<Envelope, DecodeError> {
        let mut r = Reader::new(input, limits)?;
        let mut v = None;
        let mut aead = None;
        let mut kid = None;
        let mut enc = None;
        let mut ct = None;
        r.for_each_entry("envelope", |r, key| {
            match key {
                "v" => v = Some(r.uint("v")?),
                "suite" => aead = Some(read_suite(r)?),
                "kid" => kid = Some(Kid(r.fixed_bytes("kid")?)),
                "enc" => enc = Some(r.fixed_bytes("enc")?),
                "ct" => ct = Some(r.bytes("ct")?),
                _ => {
                    r.raw_value()?;
                }
            }
            Ok(())
        })?;
        r.finish()?;
        match v {
            None => return Err(DecodeError::MissingField("v")),
            Some(VERSION) => {}
            Some(other) => return Err(DecodeError::UnsupportedVersion(other)),
        }
        let ct = ct.ok_or(DecodeError::MissingField("ct"))?;
        if ct.len() < 16 {
            return Err(DecodeError::InvalidValue {
                field: "ct",
                reason: "shorter than the AEAD tag",
            });
        }
        Ok(Envelope {
            aead: aead.ok_or(DecodeError::MissingField("suite"))?,
            kid: kid.ok_or(DecodeError::MissingField("kid"))?,
            enc: enc.ok_or(DecodeError::MissingField("enc"))?,
            ct: ct.to_vec(),
        })
    }

    /// Encodes the envelope (keys in the order of SPEC.md).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(5).text("v").uint(VERSION).text("suite");
        write_suite(&mut w, self.aead);
        w.text("kid")
            .bytes(&self.kid.0)
            .text("enc")
            .bytes(&self.enc)
            .text("ct")
            .bytes(&self.ct);
        w.into_bytes()
    }
}

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the envelope is sealed to key {envelope}, not to {ours}")]
    WrongKid { envelope: Kid, ours: Kid },
    #[error("the envelope does not open: wrong key or altered ciphertext")]
    Open,
    #[error("HPKE failure: {0}")]
    Hpke(String),
    #[error("the report is too large: {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// The HPKE `info` of v1: `hotline-report/v1` followed by the kid.
pub fn info(kid: &Kid) -> Vec<u8> {
    [INFO_PREFIX, &kid.0].concat()
}

/// Seals `plaintext` to the hotline key. The ephemeral key comes from `rng`.
pub fn seal(
    recipient: &HpkePublicKey,
    aead: Aead,
    plaintext: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Envelope, SealError> {
    let mut ikm = [0u8; 32];
    rng.fill(&mut ikm).map_err(|_| KeyError::Random)?;
    seal_with_ikm(recipient, aead, plaintext, &[], &ikm)
}

/// Seals with a given ephemeral input keying material (`ikmE` of RFC 9180).
/// Only tests with published vectors should call this; everything else uses [`seal`].
pub fn seal_with_ikm(
    recipient: &HpkePublicKey,
    aead: Aead,
    plaintext: &[u8],
    aad: &[u8],
    ikm_e: &[u8; 32],
) -> Result<Envelope, SealError> {
    let kid = recipient.kid();
    let (enc, ct) = seal_with_ikm_info(recipient, aead, &info(&kid), plaintext, aad, ikm_e)?;
    Ok(Envelope { aead, kid, enc, ct })
}

/// The HPKE base-mode seal under [`seal_with_ikm`], with a caller-chosen
/// `info`; returns `(enc, ct)`. Exposed only so that the RFC 9180 vector test
/// (whose `info` is not ours) runs exactly the code production uses.
#[doc(hidden)]
pub fn seal_with_ikm_info(
    recipient: &HpkePublicKey,
    aead: Aead,
    info: &[u8],
    plaintext: &[u8],
    aad: &[u8],
    ikm_e: &[u8; 32],
) -> Result<([u8; 32], Vec<u8>), SealError> {
    let pk = recipient.to_hpke()?;
    let mut rng = IkmRng(*ikm_e);
    let sealed = match aead {
        Aead::ChaCha20Poly1305 => hpke::single_shot_seal_with_rng::<
            ChaCha20Poly1305,
            HkdfSha256,
            Kem,
        >(&OpModeS::Base, &pk, info, plaintext, aad, &mut rng),
        Aead::Aes128Gcm => hpke::single_shot_seal_with_rng::<AesGcm128, HkdfSha256, Kem>(
            &OpModeS::Base,
            &pk,
            info,
            plaintext,
            aad,
            &mut rng,
        ),
    };
    let (enc, ct) = sealed.map_err(|e| SealError::Hpke(e.to_string()))?;
    let mut enc_raw = [0u8; 32];
    enc_raw.copy_from_slice(&enc.to_bytes());
    Ok((enc_raw, ct))
}

/// Opens an envelope with the hotline private key.
pub fn open(secret: &HpkeSecretKey, envelope: &Envelope) -> Result<Vec<u8>, SealError> {
    let ours = secret.public_key().kid();
    if envelope.kid != ours {
        return Err(SealError::WrongKid {
            envelope: envelope.kid,
            ours,
        });
    }
    let enc =
        <Kem as hpke::Kem>::EncappedKey::from_bytes(&envelope.enc).map_err(|_| SealError::Open)?;
    let info = info(&envelope.kid);
    let opened = match envelope.aead {
        Aead::ChaCha20Poly1305 => hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            secret.hpke(),
            &enc,
            &info,
            &envelope.ct,
            &[],
        ),
        Aead::Aes128Gcm => hpke::single_shot_open::<AesGcm128, HkdfSha256, Kem>(
            &OpModeR::Base,
            secret.hpke(),
            &enc,
            &info,
            &envelope.ct,
            &[],
        ),
    };
    opened.map_err(|_| SealError::Open)
}

/// Hands the HPKE crate exactly the 32 bytes of ephemeral keying material we
/// drew (fallibly) from the system RNG. The crate's X25519 key generation asks
/// for precisely one private key's worth of bytes (`DeriveKeyPair(random(Nsk))`),
/// which the RFC 9180 vector test confirms: any other consumption would give
/// other `enc` values than the published ones.
struct IkmRng([u8; 32]);

impl hpke::rand_core::TryRng for IkmRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for (d, s) in dst.iter_mut().zip(self.0.iter().cycle()) {
            *d = *s;
        }
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for IkmRng {}
