//! The hotline's keys: an X25519 HPKE key pair that reports are sealed to, and
//! an Ed25519 key that signs the key document.
//!
//! Both load from and save to PKCS#8 / SPKI PEM, the files that
//! `openssl genpkey -algorithm X25519|ED25519` and `openssl pkey -pubout` make,
//! so a hotline can run its key ceremony with tools it already trusts.

use core::fmt;

use hpke::{Deserializable, Kem as _, Serializable};
use pkcs8::der::asn1::BitStringRef;
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, Encode};
use pkcs8::{AlgorithmIdentifierRef, ObjectIdentifier, PrivateKeyInfo};
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use spki::SubjectPublicKeyInfoRef;

/// The one KEM of protocol v1.
pub(crate) type Kem = hpke::kem::X25519HkdfSha256;

const OID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// Domain separation for key document signatures.
pub const KEY_DOC_CONTEXT: &[u8] = b"hotline-key/v1";

/// Why a key could not be loaded, made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM file: {0}")]
    Pem(String),
    #[error("PEM label is {found:?}, expected {expected:?}")]
    Label {
        found: String,
        expected: &'static str,
    },
    #[error("malformed key structure: {0}")]
    Der(String),
    #[error("key algorithm is {found}, expected {expected}")]
    Algorithm {
        found: String,
        expected: &'static str,
    },
    #[error("key material has the wrong length")]
    Length,
    #[error("the system random number generator failed")]
    Random,
    #[error("signature does not verify")]
    BadSignature,
}

/// Key id: the first 8 bytes of SHA-256 of the raw HPKE public key. Lets a
/// gateway refuse reports sealed to a key it does not serve, and a hotline
/// pick the right private key after a rotation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(pub [u8; 8]);

impl Kid {
    /// The kid of a raw X25519 public key.
    pub fn of(public_key: &[u8; 32]) -> Kid {
        let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&digest.as_ref()[..8]);
        Kid(kid)
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kid({self})")
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A fingerprint a person can compare over the phone: SHA-256 of a raw public
/// key, first 16 bytes, as eight groups of four hex digits.
pub fn fingerprint(raw_public_key: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, raw_public_key);
    digest.as_ref()[..16]
        .chunks(2)
        .map(|c| format!("{:02X}{:02X}", c[0], c[1]))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The hotline's HPKE public key, which reports are sealed to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HpkePublicKey(pub [u8; 32]);

impl fmt::Debug for HpkePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HpkePublicKey(kid {})", self.kid())
    }
}

impl HpkePublicKey {
    /// The key id of this key.
    pub fn kid(&self) -> Kid {
        Kid::of(&self.0)
    }

    pub(crate) fn to_hpke(self) -> Result<<Kem as hpke::Kem>::PublicKey, KeyError> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(&self.0).map_err(|_| KeyError::Length)
    }

    /// Loads an SPKI PEM (`openssl pkey -pubout`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_decode(pem, "PUBLIC KEY")?;
        spki_raw(&der, OID_X25519, "X25519").map(HpkePublicKey)
    }

    /// Saves as SPKI PEM.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        spki_pem(&self.0, OID_X25519)
    }
}

/// The hotline's HPKE private key. It lives on the hotline's own machines,
/// never on the gateway (except in the self-contained demo).
#[derive(Clone)]
pub struct HpkeSecretKey {
    inner: <Kem as hpke::Kem>::PrivateKey,
    public: HpkePublicKey,
}

impl fmt::Debug for HpkeSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HpkeSecretKey(kid {}, ..)", self.public.kid())
    }
}

impl HpkeSecretKey {
    /// Makes a new key pair from the system random number generator.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        let mut ikm = [0u8; 32];
        rng.fill(&mut ikm).map_err(|_| KeyError::Random)?;
        let (sk, pk) = Kem::derive_keypair(&ikm);
        Ok(Self::from_parts(sk, pk))
    }

    fn from_parts(sk: <Kem as hpke::Kem>::PrivateKey, pk: <Kem as hpke::Kem>::PublicKey) -> Self {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&pk.to_bytes());
        HpkeSecretKey {
            inner: sk,
            public: HpkePublicKey(raw),
        }
    }

    /// Builds a key from its raw 32 bytes (RFC 9180 `SerializePrivateKey`).
    pub fn from_raw(raw: &[u8]) -> Result<Self, KeyError> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(raw).map_err(|_| KeyError::Length)?;
        let pk = Kem::sk_to_pk(&sk);
        Ok(Self::from_parts(sk, pk))
    }

    /// The public half.
    pub fn public_key(&self) -> HpkePublicKey {
        self.public
    }

    pub(crate) fn hpke(&self) -> &<Kem as hpke::Kem>::PrivateKey {
        &self.inner
    }

    /// Loads a PKCS#8 PEM (`openssl genpkey -algorithm X25519`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_decode(pem, "PRIVATE KEY")?;
        let raw = pkcs8_raw(&der, OID_X25519, "X25519")?;
        Self::from_raw(&raw)
    }

    /// Saves as PKCS#8 v1 PEM, readable by `openssl pkey`.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        pkcs8_pem(&self.inner.to_bytes(), OID_X25519)
    }
}

/// The hotline's Ed25519 signing key for key documents.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    seed_pem: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.verifying_key().fingerprint())
    }
}

impl SigningKey {
    /// Makes a new signing key from the system random number generator.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed).map_err(|_| KeyError::Random)?;
        Self::from_seed(&seed)
    }

    fn from_seed(seed: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| KeyError::Length)?;
        let seed_pem = pkcs8_pem(seed, OID_ED25519)?;
        Ok(SigningKey { pair, seed_pem })
    }

    /// Loads a PKCS#8 PEM (`openssl genpkey -algorithm ED25519`), v1 or v2.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_decode(pem, "PRIVATE KEY")?;
        let seed = pkcs8_raw(&der, OID_ED25519, "Ed25519")?;
        Self::from_seed(&seed)
    }

    /// Saves as PKCS#8 v1 PEM.
    pub fn to_pem(&self) -> String {
        self.seed_pem.clone()
    }

    /// The public half, which apps pin.
    pub fn verifying_key(&self) -> VerifyingKey {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey(raw)
    }

    /// Signs `message` (callers add their own context prefix).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(self.pair.sign(message).as_ref());
        sig
    }
}

/// The hotline's Ed25519 public key, pinned by apps and shown by the web form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(pub [u8; 32]);

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.fingerprint())
    }
}

impl VerifyingKey {
    /// Checks an Ed25519 signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .map_err(|_| KeyError::BadSignature)
    }

    /// The fingerprint to compare out of band.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }

    /// Loads an SPKI PEM (`openssl pkey -pubout`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_decode(pem, "PUBLIC KEY")?;
        spki_raw(&der, OID_ED25519, "Ed25519").map(VerifyingKey)
    }

    /// Saves as SPKI PEM.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        spki_pem(&self.0, OID_ED25519)
    }
}

fn pem_decode(pem: &str, expected: &'static str) -> Result<Vec<u8>, KeyError> {
    let (label, der) = pkcs8::der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|e| KeyError::Pem(e.to_string()))?;
    if label != expected {
        return Err(KeyError::Label {
            found: label.to_owned(),
            expected,
        });
    }
    Ok(der)
}

/// The raw 32-byte key inside a PKCS#8 document (RFC 8410: an OCTET STRING
/// wrapped in the privateKey OCTET STRING).
fn pkcs8_raw(der: &[u8], oid: ObjectIdentifier, name: &'static str) -> Result<[u8; 32], KeyError> {
    let info = PrivateKeyInfo::try_from(der).map_err(|e| KeyError::Der(e.to_string()))?;
    if info.algorithm.oid != oid {
        return Err(KeyError::Algorithm {
            found: info.algorithm.oid.to_string(),
            expected: name,
        });
    }
    let inner = pkcs8::der::asn1::OctetStringRef::from_der(info.private_key)
        .map_err(|e| KeyError::Der(e.to_string()))?;
    inner.as_bytes().try_into().map_err(|_| KeyError::Length)
}

fn pkcs8_pem(raw: &[u8], oid: ObjectIdentifier) -> Result<String, KeyError> {
    let inner = pkcs8::der::asn1::OctetStringRef::new(raw)
        .and_then(|o| o.to_der())
        .map_err(|e| KeyError::Der(e.to_string()))?;
    let info = PrivateKeyInfo::new(
        AlgorithmIdentifierRef {
            oid,
            parameters: None,
        },
        &inner,
    );
    let der = info.to_der().map_err(|e| KeyError::Der(e.to_string()))?;
    pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der)
        .map_err(|e| KeyError::Der(e.to_string()))
}

fn spki_raw(der: &[u8], oid: ObjectIdentifier, name: &'static str) -> Result<[u8; 32], KeyError> {
    let info = SubjectPublicKeyInfoRef::try_from(der).map_err(|e| KeyError::Der(e.to_string()))?;
    if info.algorithm.oid != oid {
        return Err(KeyError::Algorithm {
            found: info.algorithm.oid.to_string(),
            expected: name,
        });
    }
    info.subject_public_key
        .as_bytes()
        .ok_or(KeyError::Length)?
        .try_into()
        .map_err(|_| KeyError::Length)
}

fn spki_pem(raw: &[u8; 32], oid: ObjectIdentifier) -> Result<String, KeyError> {
    let info = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid,
            parameters: None,
        },
        subject_public_key: BitStringRef::from_bytes(raw)
            .map_err(|e| KeyError::Der(e.to_string()))?,
    };
    let der = info.to_der().map_err(|e| KeyError::Der(e.to_string()))?;
    pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &der)
        .map_err(|e| KeyError::Der(e.to_string()))
}
