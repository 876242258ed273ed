//! The offline queue: a directory of already-sealed envelopes, one file per
//! report named by its idempotency key.
//!
//! ```text
//! DIR/<key>.cbor        an envelope waiting to be sent (key = Idempotency-Key)
//! DIR/sent.jsonl        append-only log of accepted reports: key, id, receipt
//! DIR/failed/<key>.*    envelopes the gateway refused for good, and why
//! DIR/key.cbor          the last verified key document, for sealing offline
//! DIR/.lock             held while flushing, so two flushes do not interleave
//! ```
//!
//! The invariant that makes a SIGKILL at any moment harmless: a file is
//! written whole before it appears (temporary file, fsync, rename, fsync of
//! the directory), it is removed only after the gateway answered 2xx and the
//! answer is in `sent.jsonl`, and a resend always carries the key in its
//! name. A report whose answer was lost is sent again with the same key, and
//! the gateway's idempotency dedup answers with the first id and stores
//! nothing new; one already in `sent.jsonl` is not even sent again.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::pool::Pacer;
use crate::submit::{send_with_retries, IdempotencyKey, RetryPolicy};
use hotline_https::Transport;

/// The log of accepted reports.
pub const SENT_LOG: &str = "sent.jsonl";
/// Where refused envelopes are set aside (never deleted by the queue).
pub const FAILED_DIR: &str = "failed";
/// The cached signed key document.
pub const KEY_CACHE: &str = "key.cbor";
const LOCK_FILE: &str = ".lock";
const EXT: &str = "cbor";

/// One line of `sent.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRecord {
    /// The Idempotency-Key the report was sent with (its queue file name).
    pub idempotency_key: String,
    /// The gateway's id for the record.
    pub id: String,
    /// The receipt code for the reporter.
    pub receipt: String,
    /// Unix time the answer arrived.
    pub sent_at: u64,
}

/// A queued envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Its idempotency key.
    pub key: IdempotencyKey,
    /// Its file.
    pub path: PathBuf,
}

/// An offline queue in a directory.
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
    log: Arc<Mutex<()>>,
}

/// How a flush sends.
#[derive(Debug, Clone)]
pub struct FlushOptions {
    /// Retries per report.
    pub policy: RetryPolicy,
    /// Reports in flight at once.
    pub concurrency: usize,
    /// Least time between the starts of two sends (to stay under a rate limit).
    pub pace: Duration,
}

impl Default for FlushOptions {
    fn default() -> Self {
        FlushOptions {
            policy: RetryPolicy::default(),
            concurrency: 4,
            pace: Duration::ZERO,
        }
    }
}

/// What a flush did.
#[derive(Debug, Default)]
pub struct FlushReport {
    /// Reports accepted in this flush (including ones found already in the
    /// log, whose files were left by an interrupted flush).
    pub sent: Vec<SentRecord>,
    /// Reports still queued, with the temporary reason.
    pub kept: Vec<(IdempotencyKey, String)>,
    /// Reports the gateway refused for good, moved to `failed/`.
    pub failed: Vec<(IdempotencyKey, String)>,
    /// Whether the flush stopped early because the gateway was unreachable.
    pub unreachable: bool,
}

impl Queue {
    /// Opens (creating if needed) a queue directory and removes temporary
    /// files a killed writer left behind (their reports were never queued).
    pub fn open(dir: &Path) -> io::Result<Queue> {
        fs::create_dir_all(dir.join(FAILED_DIR))?;
        sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(Queue {
            dir: dir.to_owned(),
            log: Arc::new(Mutex::new(())),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, key: &IdempotencyKey) -> PathBuf {
        self.dir.join(format!("{key}.{EXT}"))
    }

    /// Queues a sealed envelope durably under a fresh idempotency key. When
    /// this returns, the report survives a crash or power cut.
    pub fn push(&self, envelope: &[u8]) -> io::Result<IdempotencyKey> {
        let key = IdempotencyKey::generate().map_err(io::Error::other)?;
        self.push_with_key(&key, envelope)?;
        Ok(key)
    }

    /// Queues a sealed envelope durably under a given key.
    pub fn push_with_key(&self, key: &IdempotencyKey, envelope: &[u8]) -> io::Result<()> {
        write_durably(&self.path_of(key), envelope)
    }

    /// The queued envelopes, oldest first.
    pub fn pending(&self) -> io::Result<Vec<Queued>> {
        let mut items = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXT) {
                continue;
            }
            let Some(key) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<IdempotencyKey>().ok())
            else {
                continue;
            };
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            items.push((modified, Queued { key, path }));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.key.cmp(&b.1.key)));
        Ok(items.into_iter().map(|(_, q)| q).collect())
    }

    /// Every record of `sent.jsonl`; a line torn by a crash is skipped.
    pub fn sent_log(&self) -> io::Result<Vec<SentRecord>> {
        read_sent_log(&self.dir)
    }

    /// Appends to `sent.jsonl` and syncs it.
    fn record_sent(&self, record: &SentRecord) -> io::Result<()> {
        let _guard = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.dir.join(SENT_LOG);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut line = serde_json::to_string(record).map_err(io::Error::other)?;
        line.push('\n');
        // A crash mid-append may have left a torn last line: start a new one.
        let len = file.metadata()?.len();
        if len > 0 {
            use std::io::{Seek, SeekFrom};
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                line.insert(0, '\n');
            }
        }
        file.write_all(line.as_bytes())?;
        file.sync_data()?;
        if len == 0 {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Removes a sent report's file and syncs the directory.
    fn remove(&self, key: &IdempotencyKey) -> io::Result<()> {
        match fs::remove_file(self.path_of(key)) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves a refused report to `failed/`, with the reason next to it.
    fn set_aside(&self, key: &IdempotencyKey, reason: &str) -> io::Result<()> {
        let failed = self.dir.join(FAILED_DIR);
        write_durably(&failed.join(format!("{key}.reason")), reason.as_bytes())?;
        fs::rename(self.path_of(key), failed.join(format!("{key}.{EXT}")))?;
        sync_dir(&failed)?;
        sync_dir(&self.dir)
    }

    /// Saves a verified signed key document for sealing while offline.
    pub fn save_key(&self, signed: &[u8]) -> io::Result<()> {
        write_durably(&self.dir.join(KEY_CACHE), signed)
    }

    /// The cached signed key document, if any (verify it before use).
    pub fn cached_key(&self) -> Option<Vec<u8>> {
        fs::read(self.dir.join(KEY_CACHE)).ok()
    }

    /// Sends every queued report. Each is removed only after a 2xx answer
    /// that is recorded in `sent.jsonl`; temporary failures stay queued,
    /// refusals go to `failed/`. Stops early when the gateway is unreachable.
    pub async fn flush(
        &self,
        transport: &Transport,
        options: &FlushOptions,
    ) -> io::Result<FlushReport> {
        let lock = File::create(self.dir.join(LOCK_FILE))?;
        lock.lock()?;
        let already: HashSet<String> = self
            .sent_log()?
            .into_iter()
            .map(|r| r.idempotency_key)
            .collect();
        let work = Arc::new(Mutex::new(
            self.pending()?.into_iter().collect::<VecDeque<_>>(),
        ));
        let report = Arc::new(Mutex::new(FlushReport::default()));
        let already = Arc::new(already);
        let next = {
            let (work, report) = (work.clone(), report.clone());
            move || {
                // Stop taking reports once the gateway is unreachable.
                let item = if lock_ignore_poison(&report).unreachable {
                    None
                } else {
                    lock_ignore_poison(&work).pop_front()
                };
                std::future::ready(item)
            }
        };
        let send = {
            let (queue, transport, options) = (self.clone(), transport.clone(), options.clone());
            let report = report.clone();
            move |item: Queued, pacer: Pacer| {
                let (queue, transport, options) =
                    (queue.clone(), transport.clone(), options.clone());
                let (report, already) = (report.clone(), already.clone());
                async move {
                    queue
                        .flush_one(item, &transport, &options, &report, &pacer, &already)
                        .await
                }
            }
        };
        let flushed = crate::pool::run(options.concurrency, options.pace, next, send).await;
        drop(lock);
        flushed?;
        let mut report = std::mem::take(&mut *lock_ignore_poison(&report));
        // Whatever the workers did not reach stays queued.
        for item in lock_ignore_poison(&work).drain(..) {
            report
                .kept
                .push((item.key, "not tried: the gateway is unreachable".into()));
        }
        Ok(report)
    }

    async fn flush_one(
        &self,
        item: Queued,
        transport: &Transport,
        options: &FlushOptions,
        report: &Mutex<FlushReport>,
        pacer: &Pacer,
        already: &HashSet<String>,
    ) -> io::Result<()> {
        let key_text = item.key.to_string();
        if already.contains(&key_text) {
            // Accepted before; the flush that sent it died before removing it.
            self.remove(&item.key)?;
            if let Some(r) = self
                .sent_log()?
                .into_iter()
                .find(|r| r.idempotency_key == key_text)
            {
                lock_ignore_poison(report).sent.push(r);
            }
            return Ok(());
        }
        let envelope = match fs::read(&item.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        pacer.wait_turn().await;
        match send_with_retries(transport, &envelope, &item.key, &options.policy).await {
            Ok(answer) => {
                let record = SentRecord {
                    idempotency_key: key_text,
                    id: answer.id.to_string(),
                    receipt: answer.receipt,
                    sent_at: hotline_protocol::time::unix_now(),
                };
                self.record_sent(&record)?;
                self.remove(&item.key)?;
                lock_ignore_poison(report).sent.push(record);
            }
            Err(e) if e.is_temporary() => {
                let mut r = lock_ignore_poison(report);
                r.unreachable |= e.is_unreachable();
                r.kept.push((item.key, e.to_string()));
            }
            Err(e) => {
                self.set_aside(&item.key, &e.to_string())?;
                lock_ignore_poison(report)
                    .failed
                    .push((item.key, e.to_string()));
            }
        }
        Ok(())
    }
}

fn lock_ignore_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads `DIR/sent.jsonl`; lines that do not parse (torn by a crash) are skipped.
pub fn read_sent_log(dir: &Path) -> io::Result<Vec<SentRecord>> {
    let text = match fs::read_to_string(dir.join(SENT_LOG)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Writes a whole file so that after a crash it is either absent or complete:
/// a temporary file in the same directory, fsync, rename, fsync the directory.
pub fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a directory's entries (creations, renames, removals) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn push_lists_and_survives_reopen_and_stale_temp_files_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let a = q.push(b"one").unwrap();
        let b = q.push(b"two").unwrap();
        std::fs::write(dir.path().join(".x.cbor.tmp"), b"torn").unwrap();
        let q = Queue::open(dir.path()).unwrap();
        assert!(!dir.path().join(".x.cbor.tmp").exists());
        let keys: HashSet<_> = q.pending().unwrap().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, HashSet::from([a, b]));
        assert_eq!(std::fs::read(q.path_of(&a)).unwrap(), b"one");
    }

    #[test]
    fn the_sent_log_survives_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let rec = |n: u32| SentRecord {
            idempotency_key: format!("k{n}"),
            id: format!("id{n}"),
            receipt: format!("r{n}"),
            sent_at: 1,
        };
        q.record_sent(&rec(1)).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(SENT_LOG))
            .unwrap();
        f.write_all(b"{\"idempotency_key\":\"to").unwrap();
        drop(f);
        q.record_sent(&rec(2)).unwrap();
        assert_eq!(q.sent_log().unwrap(), vec![rec(1), rec(2)]);
    }

    #[test]
    fn set_aside_keeps_the_envelope_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let k = q.push(b"env").unwrap();
        q.set_aside(&k, "422 unknown_kid").unwrap();
        assert!(q.pending().unwrap().is_empty());
        let failed = dir.path().join(FAILED_DIR);
        assert_eq!(
            std::fs::read(failed.join(format!("{k}.cbor"))).unwrap(),
            b"env"
        );
        assert_eq!(
            std::fs::read_to_string(failed.join(format!("{k}.reason"))).unwrap(),
            "422 unknown_kid"
        );
    }
}
