//! The archive: one JSON file per report, `DIR/<id>.json`, written durably
//! and never twice.
//!
//! A write goes to a temporary file that is fsynced, then linked to its final
//! name with `link(2)`, which fails if the name exists (a no-clobber rename),
//! and the directory is fsynced. So a report is in the archive whole or not
//! at all, even after a power cut, and when two writers race for the same id
//! (a retry overtaking itself, two staff machines, pull and push together)
//! exactly one of them writes it; the other learns it was already there.
//!
//! Envelopes that do not open go to `DIR/undecryptable/<id>.cbor` as
//! received, for later investigation, and are not acknowledged.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hotline_protocol::{Channel, HpkeSecretKey, RecordId, Report};
use serde_json::{json, Map, Value};

use crate::StaffError;

/// Format tag written into every report file.
pub const FORMAT: &str = "hotline-staff-report/1";
/// Sub-folder for envelopes that do not open.
pub const UNDECRYPTABLE: &str = "undecryptable";

/// What the gateway says about a record besides its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The gateway's record id (also the file name: a record id is safe as one).
    pub id: RecordId,
    /// Receive time (rounded to the hour), if known.
    pub received_at: Option<u64>,
    /// Intake channel, if known.
    pub channel: Option<Channel>,
    /// Why the push backend refused it, for a record taken out of dead-letter.
    pub dead_reason: Option<String>,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Opened and written now.
    Written,
    /// Already in the archive (written before, or by another writer).
    AlreadyPresent,
    /// Did not open; kept in `undecryptable/` and must not be acked.
    Undecryptable(String),
}

impl Kept {
    /// Whether the gateway may delete the record.
    pub fn may_ack(&self) -> bool {
        matches!(self, Kept::Written | Kept::AlreadyPresent)
    }
}

/// A folder of opened reports.
#[derive(Debug, Clone)]
pub struct Archive {
    dir: PathBuf,
}

impl Archive {
    /// Opens (creating, mode 0700) the archive folder.
    pub fn open(dir: &Path) -> Result<Archive, StaffError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StaffError::io(dir, e))?;
        Ok(Archive {
            dir: dir.to_owned(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a report's file. A [`RecordId`] is 32 hex digits, so the
    /// path cannot leave the archive folder.
    pub fn path_of(&self, id: &RecordId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Whether the report is already kept.
    pub fn contains(&self, id: &RecordId) -> bool {
        self.path_of(id).exists()
    }

    /// Opens `envelope` with `key` and keeps the report under `meta.id`.
    /// Returns once the file (or the undecryptable copy) is durable.
    pub fn keep(
        &self,
        meta: &Meta,
        envelope: &[u8],
        key: &HpkeSecretKey,
    ) -> Result<Kept, StaffError> {
        self.keep_with(meta, envelope, key, true)
    }

    /// Like [`Archive::keep`], but an envelope that does not open is only
    /// reported, not copied to `undecryptable/`: in push mode the gateway
    /// keeps it in dead-letter.
    pub fn keep_openable(
        &self,
        meta: &Meta,
        envelope: &[u8],
        key: &HpkeSecretKey,
    ) -> Result<Kept, StaffError> {
        self.keep_with(meta, envelope, key, false)
    }

    fn keep_with(
        &self,
        meta: &Meta,
        envelope: &[u8],
        key: &HpkeSecretKey,
        save_undecryptable: bool,
    ) -> Result<Kept, StaffError> {
        if self.contains(&meta.id) {
            return Ok(Kept::AlreadyPresent);
        }
        match hotline_protocol::open_report(key, envelope) {
            Ok(report) => {
                let mut text = serde_json::to_vec_pretty(&report_json(meta, &report, envelope))?;
                text.push(b'\n');
                if write_new(&self.dir, &format!("{}.json", meta.id), &text)? {
                    Ok(Kept::Written)
                } else {
                    Ok(Kept::AlreadyPresent)
                }
            }
            Err(e) if !save_undecryptable => Ok(Kept::Undecryptable(e.to_string())),
            Err(e) => {
                let dir = self.dir.join(UNDECRYPTABLE);
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|err| StaffError::io(&dir, err))?;
                write_new(&dir, &format!("{}.cbor", meta.id), envelope)?;
                Ok(Kept::Undecryptable(e.to_string()))
            }
        }
    }
}

/// Writes `bytes` to `dir/name` durably unless that name exists. Returns
/// false (writing nothing) if it does.
pub fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<bool, StaffError> {
    let target = dir.join(name);
    if target.exists() {
        return Ok(false);
    }
    let mut nonce = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| StaffError::Usage("the system random number generator failed".into()))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(nonce)));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(StaffError::io(&tmp, e));
    }
    let linked = fs::hard_link(&tmp, &target);
    let _ = fs::remove_file(&tmp);
    let created = match linked {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(StaffError::io(&target, e)),
    };
    sync_dir(dir)?;
    Ok(created)
}

/// fsyncs a directory so a new name in it survives a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), StaffError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StaffError::io(dir, e))
}

/// The JSON kept for one report: its fields, unknown fields as hex CBOR,
/// the gateway's metadata and the envelope as received (base64).
pub fn report_json(meta: &Meta, report: &Report, envelope: &[u8]) -> Value {
    let mut m = Map::new();
    m.insert("format".into(), json!(FORMAT));
    m.insert("id".into(), json!(meta.id.as_str()));
    m.insert("received_at".into(), json!(meta.received_at));
    m.insert("channel".into(), json!(meta.channel.map(Channel::as_str)));
    if let Some(reason) = &meta.dead_reason {
        m.insert("dead_reason".into(), json!(reason));
    }
    m.insert("category".into(), json!(report.category.as_str()));
    m.insert("urls".into(), json!(report.urls));
    m.insert("description".into(), json!(report.description));
    m.insert("lang".into(), json!(report.lang));
    m.insert("seen_at".into(), json!(report.seen_at));
    m.insert("platform".into(), json!(report.platform));
    let hashes: Vec<Value> = report
        .hashes
        .iter()
        .map(|h| json!({"alg": h.alg.as_str(), "value": hex::encode(&h.value)}))
        .collect();
    m.insert("hashes".into(), Value::Array(hashes));
    m.insert("contact".into(), json!(report.contact));
    m.insert("reply_key".into(), json!(report.reply_key.map(hex::encode)));
    let unknown: Map<String, Value> = report
        .extra
        .iter()
        .map(|(k, v)| (k.clone(), json!({ "cbor_hex": hex::encode(v) })))
        .collect();
    m.insert("unknown".into(), Value::Object(unknown));
    m.insert(
        "envelope".into(),
        json!(base64::engine::general_purpose::STANDARD.encode(envelope)),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use hotline_protocol::{Aead, Category};

    fn sealed(key: &HpkeSecretKey) -> Vec<u8> {
        let mut r = Report::new(Category::Grooming);
        r.description = Some("d".into());
        r.extra.push(("x-new".into(), vec![0x01]));
        hotline_protocol::seal_report(
            &r,
            &key.public_key(),
            Aead::ChaCha20Poly1305,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap()
        .encode()
    }

    #[test]
    fn keeps_once_and_refuses_bad_ids() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::open(dir.path()).unwrap();
        let key = HpkeSecretKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let env = sealed(&key);
        let id = RecordId::from_bytes([0xab; 16]);
        let meta = Meta {
            id: id.clone(),
            received_at: Some(3600),
            channel: Some(Channel::Api),
            dead_reason: Some("backend answered 422".into()),
        };
        assert_eq!(a.keep(&meta, &env, &key).unwrap(), Kept::Written);
        assert_eq!(a.keep(&meta, &env, &key).unwrap(), Kept::AlreadyPresent);
        let v: Value = serde_json::from_slice(&fs::read(a.path_of(&id)).unwrap()).unwrap();
        assert_eq!(v["category"], "grooming");
        assert_eq!(v["channel"], "api");
        assert_eq!(v["dead_reason"], "backend answered 422");
        assert_eq!(v["unknown"]["x-new"]["cbor_hex"], "01");
        // Ids that could walk out of the folder cannot even be made.
        for bad in ["../x", "", "abc123", "../../../../etc/passwd0000000000"] {
            assert!(bad.parse::<RecordId>().is_err(), "{bad:?}");
        }
        let other = HpkeSecretKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let def = RecordId::from_bytes([0xde; 16]);
        let m2 = Meta {
            id: def.clone(),
            ..meta
        };
        assert!(matches!(
            a.keep(&m2, &env, &other).unwrap(),
            Kept::Undecryptable(_)
        ));
        assert!(dir
            .path()
            .join(format!("undecryptable/{def}.cbor"))
            .exists());
        assert!(!a.contains(&def));
        // No temporary files are left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
    }
}
