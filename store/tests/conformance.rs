//! One conformance suite, run against both engines (see the `suite!` invocations at the end;
//! sled's runs when the crate is built with the `sled` feature, as `--all-features` in CI does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotline_protocol::time::{unix_now as now, DAY};
use hotline_protocol::{Channel, ReceiptAnswer, ReceiptState, RecordId};
use hotline_store::committer::{Committer, Overloaded};
use hotline_store::{Appended, EngineKind, MasterKey, NewRecord, Store, StoreError, StoreOptions};

const CANARY: &[u8] = b"CANARY-7f3a9c1e-d00d-4b1d-hotline-plaintext";
/// A channel whose name must never be on disk in clear (it is sealed with the record).
const CANARY_CHANNEL: Channel = Channel::WebNojs;
const CANARY_RECEIPT: &str = "receipt-CANARY-9b3c77d1";

/// The record id of test record `i`.
fn rid(i: u64) -> RecordId {
    let mut raw = [0x5a; 16];
    raw[8..].copy_from_slice(&i.to_be_bytes());
    RecordId::from_bytes(raw)
}

fn key() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

fn open(dir: &Path, kind: EngineKind) -> Store {
    Store::open(dir, kind, &key(), StoreOptions::default()).unwrap()
}

fn open_with(dir: &Path, kind: EngineKind, opts: StoreOptions) -> Store {
    Store::open(dir, kind, &key(), opts).unwrap()
}

fn rec(i: u64, received_at: u64) -> NewRecord {
    let mut envelope = CANARY.to_vec();
    envelope.extend_from_slice(format!("-{i:08}-").as_bytes());
    envelope.resize(2048, b'x');
    NewRecord {
        id: rid(i),
        receipt: format!("{CANARY_RECEIPT}-{i:08}"),
        received_at,
        channel: CANARY_CHANNEL,
        envelope,
        idempotency_key: None,
    }
}

fn with_idem(mut r: NewRecord, k: u8) -> NewRecord {
    r.idempotency_key = Some([k; 16]);
    r
}

fn stored_seq(a: &Appended) -> u64 {
    match a {
        Appended::Stored { seq } => *seq,
        other => panic!("expected Stored, got {other:?}"),
    }
}

fn ids(recs: &[hotline_store::StoredRecord]) -> Vec<RecordId> {
    recs.iter().map(|r| r.id.clone()).collect()
}

/// Every file under `dir`, recursively, with its bytes.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Asserts no file in `dir` holds any of the canaries; `control` must be found (proves the
/// scan sees the data: record ids are stored in clear by design).
fn assert_no_canary(dir: &Path, control: Option<&str>) {
    let files = all_files(dir);
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        for needle in [
            CANARY,
            CANARY_CHANNEL.as_str().as_bytes(),
            CANARY_RECEIPT.as_bytes(),
        ] {
            assert!(
                !contains(bytes, needle),
                "{} contains {:?} in clear",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    if let Some(id) = control {
        assert!(
            files.iter().any(|(_, b)| contains(b, id.as_bytes())),
            "control id {id} not found on disk: the scan does not see the data"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn append_read_delete_count(kind: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), kind);
    let t = now();
    assert_eq!(store.count(), 0);
    assert!(store.append_batch(vec![]).unwrap().is_empty());
    let out = store
        .append_batch((0..5).map(|i| rec(i, t)).collect())
        .unwrap();
    let seqs: Vec<u64> = out.iter().map(stored_seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert_eq!(store.count(), 5);
    assert!(store.size_bytes().unwrap() > 0);

    let all = store.read_after(0, 100).unwrap();
    assert_eq!(all.len(), 5);
    let first = &all[0];
    let original = rec(0, t);
    assert_eq!(first.id, original.id);
    assert_eq!(first.envelope, original.envelope);
    assert_eq!(first.channel, CANARY_CHANNEL);
    assert_eq!(
        first.received_at,
        t - t % 3600,
        "stored rounded to the hour"
    );
    assert_eq!(store.get(&original.id).unwrap().unwrap(), *first);
    assert_eq!(store.get(&rid(999_999)).unwrap(), None);

    let n = store
        .delete(&[rid(1), rid(3), rid(3), rid(999_999)])
        .unwrap();
    assert_eq!(n, 2, "unknown and repeated ids are not counted");
    assert_eq!(store.count(), 3);
    assert_eq!(
        ids(&store.read_after(0, 100).unwrap()),
        vec![rid(0), rid(2), rid(4)]
    );
    assert_eq!(store.get(&rid(1)).unwrap(), None);
    assert_eq!(store.delete(&[rid(1)]).unwrap(), 0);

    // New records keep growing sequence numbers.
    let out = store.append_batch(vec![rec(10, t)]).unwrap();
    assert_eq!(stored_seq(&out[0]), 6);
}

fn cursor_paging(kind: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), kind);
    let t = now();
    for chunk in 0..5u64 {
        store
            .append_batch((0..7).map(|i| rec(chunk * 7 + i, t)).collect())
            .unwrap();
    }
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let page = store.read_after(cursor, 4).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        assert!(page.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
        cursor = page.last().unwrap().seq;
        seen.extend(ids(&page));
    }
    assert_eq!(seen.len(), 35);
    let expected: Vec<RecordId> = (0..35).map(|i| rec(i, t).id).collect();
    assert_eq!(seen, expected);
    assert!(store.read_after(0, 0).unwrap().is_empty());
    assert!(store.read_after(u64::MAX, 10).unwrap().is_empty());

    // Deleting the newest records never lets a sequence number be reused (even after
    // reopening), so a staff cursor past them cannot miss new records.
    let last = store.read_after(34, 10).unwrap();
    assert_eq!(last.len(), 1);
    store.delete(&[last[0].id.clone()]).unwrap();
    drop(store);
    let store = open(dir.path(), kind);
    let out = store.append_batch(vec![rec(100, t)]).unwrap();
    assert_eq!(stored_seq(&out[0]), 36);
}

fn idempotency(kind: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), kind);
    let t = now();
    let first = with_idem(rec(1, t), 0xA1);
    assert!(matches!(
        store.append_batch(vec![first.clone()]).unwrap()[0],
        Appended::Stored { .. }
    ));

    // Across batches.
    let out = store
        .append_batch(vec![with_idem(rec(2, t + 60), 0xA1)])
        .unwrap();
    assert_eq!(
        out[0],
        Appended::Duplicate {
            id: first.id.clone(),
            receipt: first.receipt.clone()
        }
    );
    assert_eq!(store.count(), 1);
    assert_eq!(store.get(&rec(2, t).id).unwrap(), None);

    // Within one batch: the second use answers with the first record of the batch.
    let a = with_idem(rec(3, t), 0xB2);
    let out = store
        .append_batch(vec![
            a.clone(),
            rec(4, t),
            with_idem(rec(5, t), 0xB2),
            with_idem(rec(6, t), 0xA1),
        ])
        .unwrap();
    assert!(matches!(out[0], Appended::Stored { .. }));
    assert!(matches!(out[1], Appended::Stored { .. }));
    assert_eq!(
        out[2],
        Appended::Duplicate {
            id: a.id.clone(),
            receipt: a.receipt.clone()
        }
    );
    assert_eq!(
        out[3],
        Appended::Duplicate {
            id: first.id.clone(),
            receipt: first.receipt.clone()
        }
    );
    assert_eq!(store.count(), 3);

    // After reopen.
    drop(store);
    let store = open(dir.path(), kind);
    let out = store
        .append_batch(vec![with_idem(rec(7, t + 3600), 0xB2)])
        .unwrap();
    assert_eq!(
        out[0],
        Appended::Duplicate {
            id: a.id.clone(),
            receipt: a.receipt.clone()
        }
    );
    // Even after the first record was delivered.
    store.delete(std::slice::from_ref(&first.id)).unwrap();
    let out = store
        .append_batch(vec![with_idem(rec(8, t + 60), 0xA1)])
        .unwrap();
    assert!(matches!(out[0], Appended::Duplicate { .. }));

    // Past the retention window (24 h, plus up to an hour of rounding) the key is free again.
    let out = store
        .append_batch(vec![with_idem(rec(9, t + DAY + 7200), 0xA1)])
        .unwrap();
    assert!(matches!(out[0], Appended::Stored { .. }));
    assert_eq!(store.count(), 3);
}

fn full_at_cap(kind: EngineKind) {
    let t = now();
    // Measure the charge of one record, then allow room for 8.5 of them.
    let probe_dir = tempfile::tempdir().unwrap();
    let probe = open(probe_dir.path(), kind);
    probe.append_batch(vec![rec(0, t)]).unwrap();
    let charge = probe.used_bytes();
    assert!(charge > 2048);
    drop(probe);

    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        max_bytes: charge * 8 + charge / 2,
        ..StoreOptions::default()
    };
    let store = open_with(dir.path(), kind, opts.clone());
    let err = store
        .append_batch((0..10).map(|i| rec(i, t)).collect())
        .unwrap_err();
    assert!(matches!(err, StoreError::Full), "{err:?}");
    assert_eq!(store.count(), 0);
    assert!(store.read_after(0, 100).unwrap().is_empty());
    assert_eq!(store.get(&rec(0, t).id).unwrap(), None);

    let mut batch: Vec<NewRecord> = (0..5).map(|i| rec(i, t)).collect();
    batch[4] = with_idem(rec(4, t), 0x55);
    store.append_batch(batch).unwrap();
    let err = store
        .append_batch((5..9).map(|i| rec(i, t)).collect())
        .unwrap_err();
    assert!(matches!(err, StoreError::Full));
    assert_eq!(store.count(), 5, "nothing of the failed batch is stored");
    assert_eq!(store.get(&rec(5, t).id).unwrap(), None);
    store
        .append_batch((5..8).map(|i| rec(i, t)).collect())
        .unwrap();
    assert!(matches!(
        store.append_batch(vec![rec(8, t)]),
        Err(StoreError::Full)
    ));
    // A duplicate stores nothing, so it is answered even when full.
    let out = store
        .append_batch(vec![with_idem(rec(50, t), 0x55)])
        .unwrap();
    assert_eq!(
        out[0],
        Appended::Duplicate {
            id: rec(4, t).id,
            receipt: rec(4, t).receipt
        }
    );
    drop(store);

    // The accounting survives a reopen; deleting makes room again.
    let store = open_with(dir.path(), kind, opts);
    assert_eq!(store.count(), 8);
    assert!(matches!(
        store.append_batch(vec![rec(8, t)]),
        Err(StoreError::Full)
    ));
    store.delete(&[rec(0, t).id]).unwrap();
    store.append_batch(vec![rec(8, t)]).unwrap();
    assert_eq!(store.count(), 8);
}

fn reopen_keeps_everything_and_delete_is_durable(kind: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let before = {
        let store = open(dir.path(), kind);
        store
            .append_batch((0..20).map(|i| rec(i, t)).collect())
            .unwrap();
        store.delete(&[rec(3, t).id, rec(17, t).id]).unwrap();
        store.read_after(0, 100).unwrap()
    };
    assert_eq!(before.len(), 18);
    let store = open(dir.path(), kind);
    assert_eq!(store.count(), 18);
    assert_eq!(store.read_after(0, 100).unwrap(), before);
    assert_eq!(store.get(&rec(3, t).id).unwrap(), None);
    assert_eq!(store.get(&rec(17, t).id).unwrap(), None);
    assert_eq!(
        store.receipt_status(&rec(3, t).receipt).unwrap(),
        ReceiptAnswer::delivered(now() / DAY)
    );
    assert_eq!(
        store.receipt_status(&rec(4, t).receipt).unwrap(),
        ReceiptAnswer::QUEUED
    );
    assert_eq!(
        store.receipt_status("never-issued").unwrap(),
        ReceiptAnswer::UNKNOWN
    );
}

fn canary_never_on_disk(kind: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let first_id = rec(0, t).id;
    {
        let store = open(dir.path(), kind);
        store
            .append_batch((0..50).map(|i| with_idem(rec(i, t), i as u8)).collect())
            .unwrap();
        store
            .mark_dead(
                &rec(1, t).id,
                "HTTP 400 CANARY-7f3a9c1e-d00d-4b1d-hotline-plaintext",
            )
            .unwrap();
        assert_no_canary(dir.path(), Some(&first_id));
        store.delete(&[rec(2, t).id]).unwrap();
        assert_no_canary(dir.path(), Some(&first_id));
    }
    let store = open(dir.path(), kind);
    assert_eq!(store.count(), 48);
    assert_no_canary(dir.path(), Some(&first_id));
    // And the data is still all there.
    assert!(store.read_after(0, 100).unwrap()[0]
        .envelope
        .starts_with(CANARY));
}

fn dead_letters_and_receipts(kind: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), kind);
    let t = now();
    store
        .append_batch((0..3).map(|i| rec(i, t)).collect())
        .unwrap();
    assert!(store
        .mark_dead(&rec(1, t).id, "HTTP 422: unknown kid")
        .unwrap());
    assert!(!store.mark_dead(&rec(1, t).id, "again").unwrap());
    assert!(!store.mark_dead(&rid(999_999), "x").unwrap());
    assert_eq!(store.count(), 2);
    assert_eq!(
        ids(&store.read_after(0, 10).unwrap()),
        vec![rec(0, t).id, rec(2, t).id]
    );
    let dead = store.list_dead(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "HTTP 422: unknown kid");
    assert_eq!(dead[0].record.id, rec(1, t).id);
    assert_eq!(dead[0].record.envelope, rec(1, t).envelope);
    assert_eq!(store.get(&rec(1, t).id).unwrap().unwrap(), dead[0].record);
    assert_eq!(
        store.receipt_status(&rec(1, t).receipt).unwrap(),
        ReceiptAnswer::QUEUED
    );
    drop(store);
    let store = open(dir.path(), kind);
    assert_eq!(store.list_dead(10).unwrap().len(), 1);
    // Deleting a dead record (staff handled it) works like any delete.
    assert_eq!(store.delete(&[rec(1, t).id]).unwrap(), 1);
    assert!(store.list_dead(10).unwrap().is_empty());
    assert_eq!(
        store.receipt_status(&rec(1, t).receipt).unwrap().status,
        ReceiptState::Delivered
    );
}

fn shredded_epoch_cannot_be_opened(kind: EngineKind) {
    let live = tempfile::tempdir().unwrap();
    let snapshot = tempfile::tempdir().unwrap();
    let t = now();
    let old = t - 10 * DAY;
    let old_rec = with_idem(rec(1, old), 0x11);
    let new_rec = rec(2, t);
    {
        let store = open(live.path(), kind);
        store
            .append_batch(vec![old_rec.clone(), new_rec.clone(), rec(3, old - DAY)])
            .unwrap();
        // Epochs with records are never shredded.
        assert_eq!(store.shred_epochs(t).unwrap(), Vec::<u32>::new());
    }
    // What a seizure of the disk before delivery would copy.
    copy_dir(live.path(), snapshot.path());
    let shredded = {
        let store = open(live.path(), kind);
        store.delete(std::slice::from_ref(&old_rec.id)).unwrap();
        let shredded = store.shred_epochs(t).unwrap();
        assert_eq!(shredded, vec![(old / DAY) as u32]);
        // Idempotent; the other old epoch still has a record, the current one is too new.
        assert!(store.shred_epochs(t).unwrap().is_empty());
        assert_eq!(store.read_after(0, 10).unwrap().len(), 2);
        shredded
    };
    // The live store still works after reopening.
    {
        let store = open(live.path(), kind);
        assert_eq!(store.count(), 2);
        assert_eq!(
            store.get(&new_rec.id).unwrap().unwrap().envelope,
            new_rec.envelope
        );
    }
    // Old engine files + the current keyring: the shredded record cannot be opened.
    std::fs::copy(
        live.path().join(hotline_store::KEYRING_FILE),
        snapshot.path().join(hotline_store::KEYRING_FILE),
    )
    .unwrap();
    let store = open(snapshot.path(), kind);
    match store.get(&old_rec.id) {
        Err(StoreError::EpochKeyMissing { epoch, id, .. }) => {
            assert_eq!(vec![epoch], shredded);
            assert_eq!(id, old_rec.id);
        }
        other => panic!("expected EpochKeyMissing, got {other:?}"),
    }
    let err = store.read_after(0, 10).unwrap_err();
    assert!(err.to_string().contains("shredded"), "{err}");
    // Other records still open.
    assert_eq!(
        store.get(&new_rec.id).unwrap().unwrap().envelope,
        new_rec.envelope
    );
    drop(store);
    assert_no_canary(snapshot.path(), Some(&old_rec.id));
    assert_no_canary(live.path(), None);
}

fn wrong_master_key(kind: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), kind);
        store.append_batch(vec![rec(1, now())]).unwrap();
    }
    let err = Store::open(
        dir.path(),
        kind,
        &MasterKey::from_bytes([8; 32]),
        StoreOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey { .. }), "{err:?}");
    assert!(err.to_string().contains("wrong master key"), "{err}");
    // The right key still works.
    assert_eq!(open(dir.path(), kind).count(), 1);
}

fn engine_mismatch(kind: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), kind));
    let other = match kind {
        EngineKind::Redb => EngineKind::Sled,
        EngineKind::Sled => EngineKind::Redb,
    };
    let err = Store::open(dir.path(), other, &key(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::EngineMismatch { .. }), "{err:?}");
}

fn committer_concurrency(kind: EngineKind) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path(), kind));
        let observed_max = Arc::new(AtomicU64::new(0));
        let observed_records = Arc::new(AtomicU64::new(0));
        let (m, r) = (Arc::clone(&observed_max), Arc::clone(&observed_records));
        let hook: hotline_store::committer::CommitObserver =
            Arc::new(move |n: usize, _d: Duration| {
                m.fetch_max(n as u64, Ordering::Relaxed);
                r.fetch_add(n as u64, Ordering::Relaxed);
            });
        let handle = Committer::spawn_observed(Arc::clone(&store), 4096, 256, Some(hook));
        let t = now();
        let mut tasks = Vec::new();
        for task in 0..64u64 {
            let h = handle.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..50u64 {
                    let pending = h.submit(rec(task * 1000 + i, t)).unwrap();
                    seqs.push(stored_seq(&pending.await.unwrap()));
                }
                seqs
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            3200,
            "every record acknowledged with its own seq"
        );
        assert_eq!(store.count(), 3200);
        let stats = handle.stats();
        assert_eq!(stats.records, 3200);
        assert!(stats.max_batch_seen > 1, "group commit batched: {stats:?}");
        assert!(stats.batches < 3200);
        assert_eq!(stats.failed_batches, 0);
        assert_eq!(observed_records.load(Ordering::Relaxed), 3200);
        assert!(observed_max.load(Ordering::Relaxed) > 1);

        // An invalid record fails alone, without joining a batch.
        let mut bad = rec(999_999, t);
        bad.receipt = "c".repeat(300);
        assert!(matches!(
            handle.submit(bad).unwrap().await,
            Err(StoreError::InvalidRecord { .. })
        ));

        // Graceful close: queued work is answered, later submissions are refused.
        let other = handle.clone();
        let pending = handle.submit(rec(500_000, t)).unwrap();
        handle.close().await;
        assert!(matches!(pending.await, Ok(Appended::Stored { .. })));
        assert!(matches!(
            other.submit(rec(500_001, t)),
            Err(Overloaded::Closed)
        ));
        assert_eq!(store.count(), 3201);
    });
}

fn committer_overload(kind: EngineKind) {
    // On a current-thread runtime the writer cannot run between these submissions, so the
    // bounded queue fills deterministically.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path(), kind));
        let handle = Committer::spawn(Arc::clone(&store), 2, 16);
        let t = now();
        let a = handle.submit(rec(1, t)).unwrap();
        let b = handle.submit(rec(2, t)).unwrap();
        assert_eq!(handle.queued(), 2);
        assert!(matches!(
            handle.submit(rec(3, t)),
            Err(Overloaded::QueueFull)
        ));
        assert!(a.await.is_ok());
        assert!(b.await.is_ok());
        assert_eq!(handle.stats().last_batch, 2);
        // Dropping every handle lets the writer finish and exit.
        drop(handle);
        assert_eq!(store.count(), 2);
    });
}

macro_rules! suite {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn append_read_delete_count() {
                super::append_read_delete_count($kind)
            }
            #[test]
            fn cursor_paging() {
                super::cursor_paging($kind)
            }
            #[test]
            fn idempotency() {
                super::idempotency($kind)
            }
            #[test]
            fn full_at_cap() {
                super::full_at_cap($kind)
            }
            #[test]
            fn reopen_keeps_everything_and_delete_is_durable() {
                super::reopen_keeps_everything_and_delete_is_durable($kind)
            }
            #[test]
            fn canary_never_on_disk() {
                super::canary_never_on_disk($kind)
            }
            #[test]
            fn dead_letters_and_receipts() {
                super::dead_letters_and_receipts($kind)
            }
            #[test]
            fn shredded_epoch_cannot_be_opened() {
                super::shredded_epoch_cannot_be_opened($kind)
            }
            #[test]
            fn wrong_master_key() {
                super::wrong_master_key($kind)
            }
            #[test]
            fn engine_mismatch() {
                super::engine_mismatch($kind)
            }
            #[test]
            fn committer_concurrency() {
                super::committer_concurrency($kind)
            }
            #[test]
            fn committer_overload() {
                super::committer_overload($kind)
            }
        }
    };
}

suite!(redb, EngineKind::Redb);
#[cfg(feature = "sled")]
suite!(sled, EngineKind::Sled);

#[test]
fn master_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let generated = MasterKey::generate_to(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim_end().len(), 64);
    assert!(
        MasterKey::generate_to(&path).is_err(),
        "never overwrites a key"
    );

    // The loaded key opens what the generated one wrote.
    let data = dir.path().join("data");
    {
        let store =
            Store::open(&data, EngineKind::Redb, &generated, StoreOptions::default()).unwrap();
        store.append_batch(vec![rec(1, now())]).unwrap();
    }
    let loaded = MasterKey::load(&path).unwrap();
    let store = Store::open(&data, EngineKind::Redb, &loaded, StoreOptions::default()).unwrap();
    assert_eq!(store.count(), 1);
    assert_eq!(format!("{loaded:?}"), "MasterKey(<redacted>)");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = MasterKey::load(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::KeyFilePermissions { mode: 0o640, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("chmod 600"));

    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not hex").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        MasterKey::load(&bad),
        Err(StoreError::KeyFileFormat { .. })
    ));
    assert!(MasterKey::load(&dir.path().join("missing.key")).is_err());
}

#[test]
fn engine_kind_parses() {
    assert_eq!("redb".parse::<EngineKind>().unwrap(), EngineKind::Redb);
    assert_eq!("sled".parse::<EngineKind>().unwrap(), EngineKind::Sled);
    assert!("rocksdb".parse::<EngineKind>().is_err());
    assert_eq!(EngineKind::default(), EngineKind::Redb);
}
