//! Key material: the master key file, the keys derived from it, and the keyring of random
//! per-epoch keys (wrapped under a master-derived key, so destroying an entry shreds an epoch).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::StoreError;

/// Length of the master key and of each epoch key.
const KEY_LEN: usize = 32;
/// Upper bound on a key file's size: 64 hex digits plus a line ending, with some slack.
const MAX_KEY_FILE: u64 = 128;

/// The gateway master key: 32 bytes from which the keyring wrapping key and the HMAC keys are
/// derived. Held only in memory; never written anywhere but its own 0600 file.
pub struct MasterKey([u8; KEY_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        // Best effort: without unsafe code the compiler may still keep copies elsewhere.
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

impl MasterKey {
    /// Reads a key file: exactly 64 hex digits, optionally followed by one newline (what
    /// `openssl rand -hex 32` prints, and printable for a paper backup). Refuses a file that
    /// group or others may access (mode & 0o077 != 0), so a leaked key is caught at start-up.
    pub fn load(path: &Path) -> Result<MasterKey, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io("open master key", path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io("stat master key", path, e))?;
        if !meta.is_file() {
            return Err(StoreError::KeyFileFormat {
                path: path.to_owned(),
                reason: "not a regular file",
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(StoreError::KeyFilePermissions {
                path: path.to_owned(),
                mode,
            });
        }
        let mut text = Vec::with_capacity(72);
        file.take(MAX_KEY_FILE)
            .read_to_end(&mut text)
            .map_err(|e| StoreError::io("read master key", path, e))?;
        let key = parse_hex_key(&text).map_err(|reason| StoreError::KeyFileFormat {
            path: path.to_owned(),
            reason,
        });
        text.fill(0);
        key.map(MasterKey)
    }

    /// Generates a random key and writes it as hex to a new file with mode 0600. Fails if the
    /// file exists (create_new), so an existing key, and the queue sealed under it, is never
    /// overwritten.
    pub fn generate_to(path: &Path) -> Result<MasterKey, StoreError> {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| StoreError::Random { what: "master key" })?;
        let master = MasterKey(key);
        key.fill(0);
        let mut text = hex::encode(master.0).into_bytes();
        text.push(b'\n');
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| StoreError::io("create master key", path, e))?;
            file.write_all(&text)
                .map_err(|e| StoreError::io("write master key", path, e))?;
            file.sync_all()
                .map_err(|e| StoreError::io("sync master key", path, e))?;
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        })();
        text.fill(0);
        result.map(|()| master)
    }

    /// Builds a key from bytes already in memory (e.g. a systemd credential read by the caller,
    /// or tests).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> MasterKey {
        MasterKey(bytes)
    }
}

fn parse_hex_key(text: &[u8]) -> Result<[u8; KEY_LEN], &'static str> {
    let body = text
        .strip_suffix(b"\r\n")
        .or_else(|| text.strip_suffix(b"\n"))
        .unwrap_or(text);
    if body.len() != KEY_LEN * 2 {
        return Err("expected exactly 64 hex digits (32 bytes), optionally followed by a newline");
    }
    let mut key = [0u8; KEY_LEN];
    hex::decode_to_slice(body, &mut key).map_err(|_| "not hexadecimal")?;
    Ok(key)
}

/// fsyncs a directory so a rename or a new file in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync directory", dir, e))
}

/// A 32-byte HKDF output length for raw key material.
struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// Keys derived from the master key with HKDF-SHA256. They are deterministic, so nothing sealed
/// under them can be shredded: they only wrap epoch keys and key HMACs.
pub(crate) struct DerivedKeys {
    /// Wraps epoch keys in the keyring file.
    pub wrap: LessSafeKey,
    /// Proves the keyring was written under this master key.
    pub check: hmac::Key,
    /// Keys the idempotency-key HMAC.
    pub idem: hmac::Key,
    /// Keys the receipt-code HMAC.
    pub receipt: hmac::Key,
}

impl DerivedKeys {
    pub fn derive(master: &MasterKey) -> Result<DerivedKeys, StoreError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"hotline-store/v1").extract(&master.0);
        let fail = |_| StoreError::Random {
            what: "HKDF expansion",
        };
        let wrap = UnboundKey::from(
            prk.expand(&[b"keyring-wrap"], &CHACHA20_POLY1305)
                .map_err(fail)?,
        );
        let mk_hmac = |label: &'static [u8]| -> Result<hmac::Key, StoreError> {
            let mut raw = [0u8; KEY_LEN];
            prk.expand(&[label], Len32)
                .and_then(|okm| okm.fill(&mut raw))
                .map_err(fail)?;
            let key = hmac::Key::new(hmac::HMAC_SHA256, &raw);
            raw.fill(0);
            Ok(key)
        };
        Ok(DerivedKeys {
            wrap: LessSafeKey::new(wrap),
            check: mk_hmac(b"keyring-check")?,
            idem: mk_hmac(b"idempotency-mac")?,
            receipt: mk_hmac(b"receipt-mac")?,
        })
    }
}

/// Sealing helpers shared by records, idempotency entries and the keyring.
pub(crate) fn random_nonce(rng: &SystemRandom) -> Result<[u8; NONCE_LEN], StoreError> {
    let mut n = [0u8; NONCE_LEN];
    rng.fill(&mut n)
        .map_err(|_| StoreError::Random { what: "nonce" })?;
    Ok(n)
}

const KEYRING_MAGIC: &[u8; 8] = b"HLKEYS01";
const WRAPPED_LEN: usize = KEY_LEN + 16;
const ENTRY_LEN: usize = 4 + NONCE_LEN + WRAPPED_LEN;
const HEADER_LEN: usize = 8 + 32 + 4;

/// One epoch key: the usable key and its wrapped form as stored in the file.
#[derive(Clone)]
struct EpochEntry {
    key: Arc<LessSafeKey>,
    nonce: [u8; NONCE_LEN],
    wrapped: [u8; WRAPPED_LEN],
}

/// The keyring file `epochs.keys`: magic || HMAC check tag || count (u32 BE) || entries of
/// epoch (u32 BE) || nonce (12) || ChaCha20-Poly1305(wrap key, epoch key, AAD = label || epoch).
/// Replaced atomically (temp file, fsync, rename, fsync directory).
pub(crate) struct Keyring {
    path: PathBuf,
    entries: BTreeMap<u32, EpochEntry>,
}

fn wrap_aad(epoch: u32) -> [u8; 27] {
    let mut aad = [0u8; 27];
    aad[..23].copy_from_slice(b"hotline-store/epoch-key");
    aad[23..].copy_from_slice(&epoch.to_be_bytes());
    aad
}

impl Keyring {
    /// Loads the keyring, or creates an empty one if the file does not exist.
    pub fn load_or_create(path: PathBuf, keys: &DerivedKeys) -> Result<Keyring, StoreError> {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = Keyring {
                    path,
                    entries: BTreeMap::new(),
                };
                ring.persist(keys)?;
                return Ok(ring);
            }
            Err(e) => return Err(StoreError::io("read keyring", &path, e)),
        };
        let corrupt = |reason: &str| StoreError::KeyringCorrupt {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        if bytes.len() < HEADER_LEN || &bytes[..8] != KEYRING_MAGIC {
            return Err(corrupt("bad magic or truncated header"));
        }
        if hmac::verify(&keys.check, KEYRING_MAGIC, &bytes[8..40]).is_err() {
            return Err(StoreError::WrongMasterKey { path });
        }
        let mut count_be = [0u8; 4];
        count_be.copy_from_slice(&bytes[40..44]);
        let count = u32::from_be_bytes(count_be) as usize;
        let body = &bytes[HEADER_LEN..];
        if body.len() != count.saturating_mul(ENTRY_LEN) {
            return Err(corrupt("length does not match the entry count"));
        }
        let mut entries = BTreeMap::new();
        for chunk in body.chunks_exact(ENTRY_LEN) {
            let mut epoch_be = [0u8; 4];
            epoch_be.copy_from_slice(&chunk[..4]);
            let epoch = u32::from_be_bytes(epoch_be);
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&chunk[4..4 + NONCE_LEN]);
            let mut wrapped = [0u8; WRAPPED_LEN];
            wrapped.copy_from_slice(&chunk[4 + NONCE_LEN..]);
            let mut buf = wrapped;
            let raw = keys
                .wrap
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(wrap_aad(epoch)),
                    &mut buf,
                )
                .map_err(|_| corrupt(&format!("epoch {epoch} key does not unwrap")))?;
            let unbound = UnboundKey::new(&CHACHA20_POLY1305, raw)
                .map_err(|_| corrupt(&format!("epoch {epoch} key has a bad length")))?;
            buf.fill(0);
            entries.insert(
                epoch,
                EpochEntry {
                    key: Arc::new(LessSafeKey::new(unbound)),
                    nonce,
                    wrapped,
                },
            );
        }
        Ok(Keyring { path, entries })
    }

    /// The key of an epoch, if it still exists.
    pub fn get(&self, epoch: u32) -> Option<Arc<LessSafeKey>> {
        self.entries.get(&epoch).map(|e| Arc::clone(&e.key))
    }

    /// Epochs that still have a key.
    pub fn epochs(&self) -> Vec<u32> {
        self.entries.keys().copied().collect()
    }

    /// Adds fresh random keys for the given epochs (skipping those present) and persists the
    /// file before returning, so no record is ever committed under a key that is not on disk.
    pub fn add(
        &mut self,
        epochs: &[u32],
        keys: &DerivedKeys,
        rng: &SystemRandom,
    ) -> Result<(), StoreError> {
        let mut added = Vec::new();
        for &epoch in epochs {
            if self.entries.contains_key(&epoch) {
                continue;
            }
            let mut raw = [0u8; KEY_LEN];
            rng.fill(&mut raw)
                .map_err(|_| StoreError::Random { what: "epoch key" })?;
            let unbound =
                UnboundKey::new(&CHACHA20_POLY1305, &raw).map_err(|_| StoreError::Random {
                    what: "epoch key length",
                })?;
            let nonce = random_nonce(rng)?;
            let mut buf = raw.to_vec();
            raw.fill(0);
            keys.wrap
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(wrap_aad(epoch)),
                    &mut buf,
                )
                .map_err(|_| StoreError::Random {
                    what: "wrapping an epoch key",
                })?;
            let mut wrapped = [0u8; WRAPPED_LEN];
            if buf.len() != WRAPPED_LEN {
                return Err(StoreError::Random {
                    what: "wrapped epoch key length",
                });
            }
            wrapped.copy_from_slice(&buf);
            self.entries.insert(
                epoch,
                EpochEntry {
                    key: Arc::new(LessSafeKey::new(unbound)),
                    nonce,
                    wrapped,
                },
            );
            added.push(epoch);
        }
        if !added.is_empty() {
            if let Err(e) = self.persist(keys) {
                // Keep memory in step with the file: forget the keys that were not written.
                for epoch in &added {
                    self.entries.remove(epoch);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Destroys the keys of the given epochs and persists the file.
    pub fn remove(&mut self, epochs: &[u32], keys: &DerivedKeys) -> Result<(), StoreError> {
        let removed: Vec<(u32, EpochEntry)> = epochs
            .iter()
            .filter_map(|e| self.entries.remove(e).map(|entry| (*e, entry)))
            .collect();
        if removed.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.persist(keys) {
            self.entries.extend(removed);
            return Err(e);
        }
        Ok(())
    }

    fn persist(&self, keys: &DerivedKeys) -> Result<(), StoreError> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.entries.len() * ENTRY_LEN);
        out.extend_from_slice(KEYRING_MAGIC);
        out.extend_from_slice(hmac::sign(&keys.check, KEYRING_MAGIC).as_ref());
        let count = u32::try_from(self.entries.len()).map_err(|_| StoreError::KeyringCorrupt {
            path: self.path.clone(),
            reason: "too many epoch keys".to_owned(),
        })?;
        out.extend_from_slice(&count.to_be_bytes());
        for (epoch, entry) in &self.entries {
            out.extend_from_slice(&epoch.to_be_bytes());
            out.extend_from_slice(&entry.nonce);
            out.extend_from_slice(&entry.wrapped);
        }
        write_atomic(&self.path, &out)
    }
}

/// Replaces `path` with `bytes`: temp file (0600), fsync, rename, fsync the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| StoreError::io("create keyring temp file", &tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| StoreError::io("write keyring temp file", &tmp, e))?;
    file.sync_all()
        .map_err(|e| StoreError::io("sync keyring temp file", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io("rename keyring", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Seals `plaintext` under `key`: returns nonce || ciphertext || tag.
pub(crate) fn seal(
    key: &LessSafeKey,
    rng: &SystemRandom,
    aad: &[u8],
    mut plaintext: Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    let nonce = random_nonce(rng)?;
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut plaintext,
    )
    .map_err(|_| StoreError::Random { what: "sealing" })?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&plaintext);
    Ok(out)
}

/// Opens nonce || ciphertext || tag; `None` when authentication fails.
pub(crate) fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + aead::CHACHA20_POLY1305.tag_len() {
        return None;
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[..NONCE_LEN]);
    let mut buf = sealed[NONCE_LEN..].to_vec();
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_key_parsing() {
        let hex64 = "00".repeat(31) + "ff";
        assert!(parse_hex_key(hex64.as_bytes()).is_ok());
        assert!(parse_hex_key(format!("{hex64}\n").as_bytes()).is_ok());
        assert!(parse_hex_key(format!("{hex64}\n\n").as_bytes()).is_err());
        assert!(parse_hex_key(b"zz").is_err());
        assert!(parse_hex_key(&[0u8; 32]).is_err());
    }

    #[test]
    fn keyring_roundtrip_and_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("epochs.keys");
        let keys = DerivedKeys::derive(&MasterKey::from_bytes([1; 32])).unwrap();
        let rng = SystemRandom::new();
        let mut ring = Keyring::load_or_create(path.clone(), &keys).unwrap();
        ring.add(&[3, 5], &keys, &rng).unwrap();
        let sealed = seal(&ring.get(5).unwrap(), &rng, b"aad", b"hello".to_vec()).unwrap();
        let again = Keyring::load_or_create(path.clone(), &keys).unwrap();
        assert_eq!(again.epochs(), vec![3, 5]);
        assert_eq!(
            open(&again.get(5).unwrap(), b"aad", &sealed).unwrap(),
            b"hello"
        );
        assert!(open(&again.get(5).unwrap(), b"other", &sealed).is_none());
        let other = DerivedKeys::derive(&MasterKey::from_bytes([2; 32])).unwrap();
        assert!(matches!(
            Keyring::load_or_create(path, &other),
            Err(StoreError::WrongMasterKey { .. })
        ));
    }
}
