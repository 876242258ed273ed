//! Delivery to the hotline, end to end: push forwarding to a real
//! `hotline-staff receive` process that is down, flapping or refusing; two
//! staff machines pulling at once; dead-letter; crypto-shredding of
//! delivered epochs; receipts. Real processes, real TLS, 127.0.0.1 only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use hotline_e2e::*;
use hotline_protocol::{ReceiptAnswer, ReceiptCode};
use hyper::Method;

/// Exactly once: no id was newly written twice (`stored`: the writers'
/// "stored ID" events, across restarts and machines), and the report files
/// are exactly the expected ids (`files`: what is on disk, which also counts
/// a report whose writer was killed after its durable write but before it
/// could say so).
fn assert_exactly_once(stored: &[String], files: &[String], expected: &[String]) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in stored {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    let got: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    assert_eq!(got.len(), files.len(), "duplicate files");
    let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let lost: Vec<_> = want.difference(&got).collect();
    assert!(lost.is_empty(), "{} report(s) lost: {lost:?}", lost.len());
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(extra.is_empty(), "unexpected reports: {extra:?}");
    let unannounced: Vec<_> = got.iter().filter(|id| !counts.contains_key(*id)).collect();
    if !unannounced.is_empty() {
        eprintln!(
            "{} report(s) written by a run killed before it could report them",
            unannounced.len()
        );
    }
}

/// Adds push delivery to `gw` (open limits, a `[forward]` section for a new
/// receiver) and starts it. The receiver needs the gateway's hotline key, and
/// the gateway the receiver's port: the install comes first.
fn push_gateway(mut gw: Gateway) -> (Gateway, Receiver) {
    let receiver = Receiver::new(&gw);
    open_limits(&mut gw.config);
    gw.config.forward = Some(forward_section(&receiver));
    gw.start();
    (gw, receiver)
}

#[test]
fn backend_down_then_up_gets_all_500_exactly_once_and_the_queue_drains() {
    let (mut gw, mut receiver) = push_gateway(Gateway::with_engine("redb").in_process());
    let rt = runtime();
    let ids: Vec<String> = rt.block_on(async {
        let t = gw.transport();
        let started = Instant::now();
        let submitted = submit_many(&gw, 500, 8).await;
        eprintln!("submitted 500 in {:?}", started.elapsed());
        let ids: Vec<String> = submitted.into_iter().map(|(id, _)| id).collect();
        // The backend stays down a while: nothing is lost, nothing deleted,
        // and the retries back off instead of hammering it.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let token = gw.staff_token();
        assert_eq!(staff_list_all(&t, &token).await.reports.len(), 500);
        let failures = metric(&t, "hotline_forward_failures_total").await;
        assert!(failures >= 1.0, "no delivery was attempted");
        assert!(
            failures < 200.0,
            "{failures} attempts in ~3 s: the forwarder does not back off"
        );
        receiver.start();
        let drained = wait_for_drain(&t, &token, Duration::from_secs(45)).await;
        eprintln!(
            "drained 500 reports in {drained:?} after the backend came up ({failures} failed attempts while down)"
        );
        assert_eq!(metric(&t, "hotline_queue_depth").await, 0.0);
        assert!(metric(&t, "hotline_forwarded_total").await >= 500.0);
        ids
    });
    assert_exactly_once(&receiver.stored(), &receiver.files(), &ids);
    assert_eq!(receiver.files().len(), 500);
    // The files are the reports, opened.
    let first: serde_json::Value = serde_json::from_slice(
        &std::fs::read(receiver.out.join(format!("{}.json", ids[0]))).unwrap(),
    )
    .unwrap();
    assert_eq!(first["description"], "report 0");
    assert_eq!(first["channel"], "api");
    assert_eq!(first["category"], "csam");
    assert!(gw.stop().success());
}

#[test]
fn a_flapping_backend_loses_nothing_and_writes_nothing_twice() {
    let (mut gw, mut receiver) = push_gateway(Gateway::with_engine("redb").in_process());
    receiver.start();
    let rt = runtime();
    // Kill (SIGKILL) and restart the backend several times while reports
    // arrive and are being delivered.
    let ids: Vec<String> = std::thread::scope(|scope| {
        let receiver = &mut receiver;
        let flapper = scope.spawn(move || {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(300));
                receiver.kill();
                std::thread::sleep(Duration::from_millis(200));
                receiver.start();
            }
        });
        let submitted = rt.block_on(submit_many(&gw, 300, 4));
        flapper.join().unwrap();
        submitted.into_iter().map(|(id, _)| id).collect()
    });
    rt.block_on(async {
        let drained =
            wait_for_drain(&gw.transport(), &gw.staff_token(), Duration::from_secs(45)).await;
        eprintln!("flapping: drained {drained:?} after the last restart");
    });
    assert_exactly_once(&receiver.stored(), &receiver.files(), &ids);
    assert_eq!(receiver.files().len(), 300);
    let duplicates = receiver
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("duplicate "))
        .count();
    eprintln!("flapping: {duplicates} re-sent report(s) recognised as duplicates");
    assert!(gw.stop().success());
}

#[test]
fn two_staff_machines_pulling_at_once_keep_each_report_once() {
    let mut gw = Gateway::install(open_limits).in_process();
    gw.start();
    let rt = runtime();
    let out = tempfile::tempdir().unwrap();
    let (ids, bad_id) = rt.block_on(async {
        let submitted = submit_many(&gw, 300, 8).await;
        let t = gw.transport();
        let bad = submit(&t, corrupt_envelope(&gw), None).await;
        assert_eq!(bad.status, 201);
        let bad = hotline_protocol::SubmitAnswer::decode(&bad.body)
            .unwrap()
            .id;
        (
            submitted.into_iter().map(|(id, _)| id).collect::<Vec<_>>(),
            bad,
        )
    });
    // Two machines writing to the hotline's shared case folder.
    let a = spawn_pull(&gw, out.path(), 50);
    let b = spawn_pull(&gw, out.path(), 50);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let stderr = format!(
        "{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    // The tampered record does not open: both say so and exit non-zero.
    assert!(!a.status.success() && !b.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("undecryptable {bad_id}")),
        "{stderr}"
    );
    let stored: Vec<String> = [&a.stdout, &b.stdout]
        .iter()
        .flat_map(|o| {
            String::from_utf8_lossy(o)
                .into_owned()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|l| l.strip_prefix("stored ").map(str::to_owned))
        .collect();
    assert_exactly_once(&stored, &report_files(out.path()), &ids);
    assert_eq!(report_files(out.path()), {
        let mut s = ids.clone();
        s.sort();
        s
    });
    assert!(out
        .path()
        .join(format!("undecryptable/{bad_id}.cbor"))
        .exists());
    rt.block_on(async {
        // Everything kept was acked; the record that did not open was not.
        let left = staff_list_all(&gw.transport(), &gw.staff_token()).await;
        let left: Vec<_> = left.reports.iter().map(|r| r.id.clone()).collect();
        assert_eq!(left, vec![bad_id.clone()]);
    });
    // The folder exports as one CSV for triage: a header and one row each.
    let csv = std::process::Command::new(bin("hotline-staff"))
        .args(["export", "--format", "csv", "--in"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(csv.status.success());
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(csv.lines().count(), 301);
    assert!(csv.starts_with("id,received_at,channel,category,urls,description,"));
    assert!(csv.contains(",api,csam,https://example.invalid/a,report 7,"));
    // A second run is idempotent: nothing new is written.
    let again = spawn_pull(&gw, out.path(), 50).wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&again.stdout).contains("stored "));
    assert!(gw.stop().success());
}

#[test]
fn a_permanent_refusal_goes_to_dead_letter_and_stays_there_across_restarts() {
    let (mut gw, mut receiver) = push_gateway(Gateway::with_engine("redb").in_process());
    receiver.start();
    let rt = runtime();
    let token = gw.staff_token();
    let (bad_id, good_id, bad_receipt) = rt.block_on(async {
        let t = gw.transport();
        let bad = submit(&t, corrupt_envelope(&gw), None).await;
        let bad = hotline_protocol::SubmitAnswer::decode(&bad.body).unwrap();
        let good = submit(&t, seal(&gw, &sample_report("fine")), None).await;
        let good = hotline_protocol::SubmitAnswer::decode(&good.body).unwrap();
        wait_for_drain(&t, &token, Duration::from_secs(30)).await;
        assert_eq!(metric(&t, "hotline_dead_lettered_total").await, 1.0);
        (bad.id, good.id, bad.receipt)
    });
    assert_eq!(receiver.stored(), vec![good_id]);
    let dead = |gw: &Gateway| {
        runtime().block_on(async {
            let a = gw
                .transport()
                .send(
                    Method::GET,
                    "/v1/staff/dead",
                    &[("authorization", &format!("Bearer {token}"))],
                    Vec::new(),
                )
                .await
                .unwrap();
            assert_eq!(a.status, 200);
            a.body.to_vec()
        })
    };
    let check = |body: &[u8]| {
        // The staff list's shape, plus "reason".
        let list = hotline_protocol::StaffList::decode(body).unwrap();
        assert_eq!(list.reports.len(), 1);
        assert_eq!(list.reports[0].id, bad_id);
        assert_eq!(list.reports[0].channel, "api");
        let text = String::from_utf8_lossy(body);
        assert!(text.contains("reason"), "{text}");
        assert!(text.contains("422"), "{text}");
        assert!(text.contains("undecryptable"), "{text}");
    };
    check(&dead(&gw));
    // Without a token: 401.
    rt.block_on(async {
        let a = gw
            .transport()
            .send(Method::GET, "/v1/staff/dead", &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(a.status, 401);
    });
    assert!(gw.stop().success());
    gw.start();
    check(&dead(&gw));
    // Dead-lettered reports are still waiting for the hotline: "queued".
    rt.block_on(async {
        let r = receipt(&gw.transport(), &bad_receipt).await;
        assert_eq!(r.status, "queued");
    });
    assert!(gw.stop().success());
}

/// `hotline-staff pull --dead` takes dead-lettered records out and ends,
/// even when a full page of them does not open (it used to stop on the
/// running total of acks and could loop forever).
#[test]
fn pull_dead_takes_dead_letters_out_and_terminates() {
    let (mut gw, mut receiver) = push_gateway(Gateway::with_engine("redb").in_process());
    // A backend holding another hotline key answers 422 `undecryptable` to
    // every delivery: the gateway dead-letters them all.
    let wrong =
        hotline_protocol::HpkeSecretKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    receiver.hotline_key = receiver.dir.path().join("wrong-hpke.pem");
    std::fs::write(&receiver.hotline_key, wrong.to_pem().unwrap()).unwrap();
    receiver.start();
    let token = gw.staff_token();
    let rt = runtime();
    let (good, bad) = rt.block_on(async {
        let t = gw.transport();
        let mut good = Vec::new();
        for i in 0..5 {
            let a = submit(&t, seal(&gw, &sample_report(&format!("dead {i}"))), None).await;
            good.push(hotline_protocol::SubmitAnswer::decode(&a.body).unwrap().id);
        }
        let mut bad = Vec::new();
        for _ in 0..3 {
            let a = submit(&t, corrupt_envelope(&gw), None).await;
            bad.push(hotline_protocol::SubmitAnswer::decode(&a.body).unwrap().id);
        }
        wait_for_drain(&t, &token, Duration::from_secs(30)).await;
        assert_eq!(metric(&t, "hotline_dead_lettered_total").await, 8.0);
        (good, bad)
    });
    let dead_ids = |gw: &Gateway| {
        runtime().block_on(async {
            let a = gw
                .transport()
                .send(
                    Method::GET,
                    "/v1/staff/dead?limit=1000",
                    &[("authorization", &format!("Bearer {token}"))],
                    Vec::new(),
                )
                .await
                .unwrap();
            assert_eq!(a.status, 200);
            let list = hotline_protocol::DeadList::decode(&a.body).unwrap();
            for d in &list.reports {
                assert!(d.reason.contains("422"), "{}", d.reason);
                assert!(d.reason.contains("undecryptable"), "{}", d.reason);
            }
            list.reports
                .into_iter()
                .map(|d| d.item.id.to_string())
                .collect::<BTreeSet<_>>()
        })
    };
    let all: BTreeSet<String> = good.iter().chain(&bad).map(|id| id.to_string()).collect();
    assert_eq!(dead_ids(&gw), all);

    // Pages of 2, with 3 records that never open: it must still end.
    let out = tempfile::tempdir().unwrap();
    let mut pull = spawn_pull_with(&gw, out.path(), 2, &["--dead"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = pull.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = pull.kill();
            panic!("hotline-staff pull --dead did not terminate");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = pull.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // It says the undecryptable ones stay: a failure exit.
    assert!(!status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("3 undecryptable"), "{stderr}");
    for id in &good {
        assert!(stdout.contains(&format!("stored {id}")), "{stdout}");
        let kept: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join(format!("{id}.json"))).unwrap())
                .unwrap();
        let reason = kept["dead_reason"].as_str().unwrap();
        assert!(reason.contains("undecryptable"), "{reason}");
    }
    let left: BTreeSet<String> = bad.iter().map(|id| id.to_string()).collect();
    assert_eq!(dead_ids(&gw), left);
    assert!(gw.stop().success());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn crypto_shredding(engine: &str) {
    let kind = match engine {
        "sled" => hotline_store::EngineKind::Sled,
        _ => hotline_store::EngineKind::Redb,
    };
    // Small epochs and retention so the test sees keys destroyed.
    // A process: the test reads its log.
    let (mut gw, mut receiver) = push_gateway(Gateway::install(|c| {
        c.store.engine = match engine {
            "sled" => Engine::Sled,
            _ => Engine::Redb,
        };
        c.store.epoch_secs = 2;
        c.store.retention_secs = 2;
        c.store.shred_interval = Duration::from_secs(1);
    }));
    let rt = runtime();
    let ids: Vec<String> = rt.block_on(async {
        let submitted = submit_many(&gw, 20, 4).await;
        submitted.into_iter().map(|(id, _)| id).collect()
    });
    // The bytes an attacker might find later: the engine's files now.
    assert!(gw.stop().success());
    let snapshot = tempfile::tempdir().unwrap();
    let old = snapshot.path().join("old");
    let control = snapshot.path().join("control");
    copy_dir(&gw.path("store"), &old);
    copy_dir(&gw.path("store"), &control);
    let master = hotline_store::MasterKey::load(&gw.path("gateway/master.key")).unwrap();
    let opts = hotline_store::StoreOptions {
        epoch_secs: 2,
        retention_secs: 2,
        ..Default::default()
    };
    {
        // With the keys of that time, the old bytes open.
        let store = hotline_store::Store::open(&control, kind, &master, opts.clone()).unwrap();
        assert_eq!(store.read_after(0, 100).unwrap().len(), 20);
    }

    gw.start();
    receiver.start();
    let started = Instant::now();
    rt.block_on(async {
        let t = gw.transport();
        wait_for_drain(&t, &gw.staff_token(), Duration::from_secs(30)).await;
    });
    assert_exactly_once(&receiver.stored(), &receiver.files(), &ids);
    // Every record of those epochs is delivered; once retention has passed,
    // the sweep destroys their keys.
    let keyring = gw.path(&format!("store/{}", hotline_store::KEYRING_FILE));
    loop {
        let log = gw.log_text();
        if log.contains("epoch keys shredded")
            && old_records_unreadable(&keyring, &master, kind, &old, &opts)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no epoch key was shredded; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(gw.stop().success());
    eprintln!(
        "{engine}: epoch keys shredded {:?} after delivery began",
        started.elapsed()
    );
    // The old bytes with today's keyring: nothing opens any more.
    std::fs::copy(&keyring, old.join(hotline_store::KEYRING_FILE)).unwrap();
    let store = hotline_store::Store::open(&old, kind, &master, opts).unwrap();
    match store.read_after(0, 100) {
        Err(hotline_store::StoreError::EpochKeyMissing { .. }) => {}
        other => panic!("shredded records still open: {other:?}"),
    }
}

/// True once the keyring no longer holds any key the old records need.
fn old_records_unreadable(
    keyring: &Path,
    master: &hotline_store::MasterKey,
    kind: hotline_store::EngineKind,
    old: &Path,
    opts: &hotline_store::StoreOptions,
) -> bool {
    let probe = tempfile::tempdir().unwrap();
    copy_dir(old, probe.path());
    if std::fs::copy(keyring, probe.path().join(hotline_store::KEYRING_FILE)).is_err() {
        return false;
    }
    let Ok(store) = hotline_store::Store::open(probe.path(), kind, master, opts.clone()) else {
        return false;
    };
    // Every old record must fail to open.
    let all = store.count();
    (0..all).all(|i| store.read_after(i, 1).is_err())
}

#[test]
fn delivered_epochs_are_crypto_shredded_redb() {
    crypto_shredding("redb");
}

#[cfg(feature = "sled")]
#[test]
fn delivered_epochs_are_crypto_shredded_sled() {
    crypto_shredding("sled");
}

async fn receipt(t: &hotline_https::Transport, code: &str) -> ReceiptAnswer {
    let raw = receipt_raw(t, code).await;
    ReceiptAnswer::decode(&raw.1).unwrap()
}

async fn receipt_raw(t: &hotline_https::Transport, code: &str) -> (u16, Vec<u8>) {
    let a = t
        .send(
            Method::GET,
            &format!("/v1/receipts/{code}"),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    (a.status.as_u16(), a.body.to_vec())
}

#[test]
fn a_receipt_moves_from_queued_to_delivered_and_bad_codes_look_unknown() {
    let (mut gw, mut receiver) = push_gateway(Gateway::with_engine("redb").in_process());
    let rt = runtime();
    rt.block_on(async {
        let t = gw.transport();
        let submitted = submit_many(&gw, 1, 1).await;
        let code = &submitted[0].1;
        assert_eq!(receipt(&t, code).await.status, "queued");
        receiver.start();
        wait_for_drain(&t, &gw.staff_token(), Duration::from_secs(30)).await;
        let r = receipt(&t, code).await;
        assert_eq!(r.status, "delivered");
        let today = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400;
        assert!(r.day == Some(today) || r.day == Some(today - 1), "{r:?}");
        // Typed without dashes, it is the same code.
        assert_eq!(
            receipt(&t, &code.replace('-', "")).await.status,
            "delivered"
        );

        // Unknown (a well-formed code never issued) and malformed codes get
        // the same answer, byte for byte: the one an expired code gets.
        let rng = ring::rand::SystemRandom::new();
        let unknown = ReceiptCode::generate(&rng).unwrap().to_string();
        let reference = receipt_raw(&t, &unknown).await;
        assert_eq!(reference.0, 200);
        assert_eq!(
            ReceiptAnswer::decode(&reference.1).unwrap().status,
            "unknown"
        );
        let mut typo = code.clone().into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'9' {
            b'0'
        } else {
            typo[last] + 1
        };
        let typo = String::from_utf8(typo).unwrap();
        let malformed = [
            "abc".to_owned(),
            "1234".to_owned(),
            typo,
            "1".repeat(200),
            "%00%ff".to_owned(),
        ];
        for m in &malformed {
            assert_eq!(receipt_raw(&t, m).await, reference, "code {m:?}");
        }
        // Same work either way: one keyed hash, one lookup. Compare medians
        // of interleaved requests, loosely (TLS dominates the time).
        let (mut known_t, mut bad_t) = (Vec::new(), Vec::new());
        for i in 0..30 {
            let other = ReceiptCode::generate(&rng).unwrap().to_string();
            let started = Instant::now();
            receipt_raw(&t, &other).await;
            known_t.push(started.elapsed());
            let started = Instant::now();
            receipt_raw(&t, &malformed[i % malformed.len()]).await;
            bad_t.push(started.elapsed());
        }
        known_t.sort();
        bad_t.sort();
        let (a, b) = (known_t[15].as_secs_f64(), bad_t[15].as_secs_f64());
        eprintln!("receipt lookups: median unknown {a:.6} s, malformed {b:.6} s");
        assert!(
            a / b < 3.0 && b / a < 3.0,
            "unknown {a} s vs malformed {b} s"
        );
    });
    assert!(gw.stop().success());
}
