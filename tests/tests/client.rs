//! The reference client (`hotline-client` library and `hotline-report` CLI)
//! against a real gateway: submit and open, image hashes only, the offline
//! queue across a stopped gateway and a SIGKILLed flush, industry batches,
//! and refusal of a gateway that serves another hotline's key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hotline_client::key::{fetch_key, KeyError, Pin};
use hotline_client::pdq::hash_image_bytes;
use hotline_client::queue::{read_sent_log, Queue};
use hotline_client::{Client, ReceiptStatus};
use hotline_e2e::{bin, runtime, sample_report, seal, staff_list_all, Gateway};
use hotline_protocol::{open, open_report, Category, Envelope, HashAlg, Report, VerifyingKey};

/// Limits high enough for the queue and batch tests; industry partners
/// sending in bulk need a similar per-client allowance on the gateway.
fn bulk_gateway() -> Gateway {
    Gateway::install(|c| {
        c.limits.per_client_per_minute = 600_000;
        c.limits.per_client_burst = 100_000;
    })
    .in_process()
}

fn url(gw: &Gateway) -> String {
    format!("https://127.0.0.1:{}", gw.addr.expect("started").port())
}

fn ca(gw: &Gateway) -> PathBuf {
    gw.path("gateway/tls/cert.pem")
}

/// The signing key fingerprint an app pins, read from the install.
fn fingerprint(gw: &Gateway) -> String {
    let pem = std::fs::read_to_string(gw.path("gateway/signing-public.pem")).unwrap();
    VerifyingKey::from_pem(&pem).unwrap().fingerprint()
}

/// Runs `hotline-report SUBCOMMAND --url .. --ca .. ARGS`.
fn cli(gw: &Gateway, sub: &str, args: &[&str]) -> Output {
    let out = Command::new(bin("hotline-report"))
        .arg(sub)
        .arg("--url")
        .arg(url(gw))
        .arg("--ca")
        .arg(ca(gw))
        .args(args)
        .env_remove("HOTLINE_PIN")
        .env_remove("HOTLINE_URL")
        .env_remove("HOTLINE_CA")
        .output()
        .expect("run hotline-report");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The value of a `name: value` line in the CLI's output.
fn field(out: &Output, name: &str) -> String {
    let stdout = text(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {stdout:?} / {}", text(&out.stderr)))
        .to_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "hotline-report failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn opened(gw: &Gateway, envelope: &[u8]) -> Report {
    open_report(&gw.hotline_key(), envelope).expect("the hotline opens the report")
}

fn pdq_dir() -> PathBuf {
    hotline_e2e::workspace().join("clients/cli/tests/vectors/pdq")
}

#[test]
fn a_submitted_report_is_opened_by_the_hotline_and_its_receipt_works() {
    let mut gw = Gateway::install(|_| {}).in_process();
    gw.start();
    let fp = fingerprint(&gw);
    let out = cli(
        &gw,
        "submit",
        &[
            "--pin",
            &fp.to_lowercase(),
            "--category",
            "grooming",
            "--url-reported",
            "https://chat.example.invalid/u/1",
            "--url-reported",
            "https://chat.example.invalid/u/2",
            "--description",
            "an adult asking a 12-year-old for photos",
            "--platform",
            "ExampleChat",
            "--seen-at",
            "2024-05-01",
            "--lang",
            "fr",
            "--contact",
            "reporter@example.invalid",
        ],
    );
    assert_ok(&out);
    let (id, receipt) = (field(&out, "id"), field(&out, "receipt"));
    runtime().block_on(async {
        let t = gw.transport();
        let list = staff_list_all(&t, &gw.staff_token()).await;
        assert_eq!(list.reports.len(), 1);
        let item = &list.reports[0];
        assert_eq!(item.id, id);
        assert_eq!(item.channel, "api");
        let r = opened(&gw, &item.envelope);
        assert_eq!(r.category, Category::Grooming);
        assert_eq!(
            r.urls,
            [
                "https://chat.example.invalid/u/1",
                "https://chat.example.invalid/u/2"
            ]
        );
        assert_eq!(
            r.description.as_deref(),
            Some("an adult asking a 12-year-old for photos")
        );
        assert_eq!(r.platform.as_deref(), Some("ExampleChat"));
        assert_eq!(r.seen_at, Some(1_714_521_600));
        assert_eq!(r.lang.as_deref(), Some("fr"));
        assert_eq!(r.contact.as_deref(), Some("reporter@example.invalid"));
        assert!(r.hashes.is_empty() && r.extra.is_empty());
        // Padded to a bucket: the ciphertext says little about the length.
        let env = Envelope::decode(&item.envelope).unwrap();
        let plain = open(&gw.hotline_key(), &env).unwrap();
        assert!(hotline_protocol::PAD_BUCKETS.contains(&plain.len()));

        // The library does the same for an app.
        let client = Client::new(t.clone(), Pin::parse(&fp).unwrap());
        let answer = client
            .submit(&sample_report("from the library"))
            .await
            .unwrap();
        assert_eq!(
            client.status(&answer.receipt).await.unwrap(),
            ReceiptStatus::Queued
        );
        assert_eq!(staff_list_all(&t, &gw.staff_token()).await.reports.len(), 2);
    });

    let out = cli(&gw, "status", &[&receipt]);
    assert_ok(&out);
    assert!(
        text(&out.stdout).starts_with("queued"),
        "{}",
        text(&out.stdout)
    );
    // A typo is caught by the check digit, not reported as "unknown".
    let mut typo: Vec<char> = receipt.chars().collect();
    typo[0] = if typo[0] == '1' { '2' } else { '1' };
    let out = cli(&gw, "status", &[&typo.into_iter().collect::<String>()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("mistyped"),
        "{}",
        text(&out.stderr)
    );

    // With --queue-dir while online: queued durably, sent, receipt printed.
    let q = tempfile::tempdir().unwrap();
    let out = cli(
        &gw,
        "submit",
        &[
            "--pin",
            &fp,
            "--category",
            "other",
            "--description",
            "via the queue",
            "--queue-dir",
            q.path().to_str().unwrap(),
        ],
    );
    assert_ok(&out);
    let id = field(&out, "id");
    let log = read_sent_log(q.path()).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].id, id);
    assert!(Queue::open(q.path()).unwrap().pending().unwrap().is_empty());
}

#[test]
fn image_reports_carry_hashes_and_no_byte_of_the_image() {
    // A process: the test reads its log.
    let mut gw = Gateway::install(|_| {});
    gw.start();
    let images = [
        pdq_dir().join("bridge-1-original.jpg"),
        pdq_dir().join("q0746.jpg"),
    ];
    let mut args = vec![
        "--pin".to_owned(),
        fingerprint(&gw),
        "--category".into(),
        "csam".into(),
    ];
    for i in &images {
        args.push("--image".into());
        args.push(i.to_str().unwrap().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli(&gw, "submit", &args);
    assert_ok(&out);

    let list = runtime().block_on(staff_list_all(&gw.transport(), &gw.staff_token()));
    assert_eq!(list.reports.len(), 1);
    let envelope = &list.reports[0].envelope;
    let env = Envelope::decode(envelope).unwrap();
    let plaintext = open(&gw.hotline_key(), &env).unwrap();
    let r = Report::decode(&plaintext).unwrap();
    assert_eq!(r.category, Category::Csam);
    assert!(r.urls.is_empty() && r.description.is_none() && r.extra.is_empty());
    let mut expected = Vec::new();
    for path in &images {
        let h = hash_image_bytes(&std::fs::read(path).unwrap()).unwrap();
        expected.push((HashAlg::Sha256, h.sha256.to_vec()));
        expected.push((HashAlg::Md5, h.md5.to_vec()));
        expected.push((HashAlg::Pdq, h.pdq.bits.to_vec()));
    }
    let got: Vec<_> = r.hashes.iter().map(|h| (h.alg, h.value.clone())).collect();
    assert_eq!(got, expected, "exactly the three hashes of each image");
    // The whole plaintext fits the smallest bucket: no room for an image.
    assert_eq!(plaintext.len(), hotline_protocol::PAD_BUCKETS[0]);

    // No 32-byte window of either image in the plaintext, the envelope, the
    // gateway's files or its log (windows sampled every 61 bytes, skipping
    // low-entropy ones such as runs of zeros, which the padding also has).
    let log = gw.log_text();
    for path in &images {
        let bytes = std::fs::read(path).unwrap();
        let mut checked = 0;
        for start in (0..bytes.len().saturating_sub(32)).step_by(61) {
            let w = &bytes[start..start + 32];
            // Runs of one byte (JPEG fill, zero padding) say nothing.
            if w.iter().collect::<HashSet<_>>().len() < 8 {
                continue;
            }
            assert!(
                !plaintext.windows(32).any(|p| p == w),
                "image bytes in plaintext"
            );
            assert!(
                !envelope.windows(32).any(|p| p == w),
                "image bytes in envelope"
            );
            assert!(!log.as_bytes().windows(32).any(|p| p == w));
            checked += 1;
        }
        assert!(checked > 100);
        for start in (bytes.len() / 16..bytes.len().saturating_sub(32)).step_by(bytes.len() / 8) {
            let hits = hotline_e2e::files_contain(gw.dir.path(), &bytes[start..start + 32]);
            assert!(hits.is_empty(), "image bytes stored in {hits:?}");
        }
    }
}

/// Distinct descriptions of every report the hotline can open.
fn descriptions(gw: &Gateway) -> (usize, BTreeSet<String>) {
    let list = runtime().block_on(staff_list_all(&gw.transport(), &gw.staff_token()));
    let set = list
        .reports
        .iter()
        .map(|i| opened(gw, &i.envelope).description.unwrap_or_default())
        .collect();
    (list.reports.len(), set)
}

#[test]
fn reports_queued_while_the_gateway_is_down_are_sent_exactly_once() {
    let mut gw = bulk_gateway();
    gw.start();
    let fp = fingerprint(&gw);
    let q = tempfile::tempdir().unwrap();
    let qdir = q.path().to_str().unwrap();
    // Once online: the verified key is cached for sealing offline.
    assert_ok(&cli(&gw, "key", &["--pin", &fp, "--queue-dir", qdir]));
    gw.stop();

    for n in 0..50 {
        let d = format!("offline report {n}");
        let out = cli(
            &gw,
            "submit",
            &[
                "--pin",
                &fp,
                "--category",
                "sextortion",
                "--description",
                &d,
                "--queue-dir",
                qdir,
                "--attempts",
                "1",
            ],
        );
        assert_ok(&out);
        assert!(
            text(&out.stdout).contains("queued, will send later"),
            "{}",
            text(&out.stdout)
        );
    }
    let queue = Queue::open(q.path()).unwrap();
    assert_eq!(queue.pending().unwrap().len(), 50);

    gw.start();
    let out = cli(&gw, "flush", &["--pin", &fp, "--queue-dir", qdir]);
    assert_ok(&out);
    assert!(queue.pending().unwrap().is_empty());
    let expected: BTreeSet<String> = (0..50).map(|n| format!("offline report {n}")).collect();
    assert_eq!(descriptions(&gw), (50, expected.clone()));
    let log = read_sent_log(q.path()).unwrap();
    assert_eq!(log.len(), 50);
    assert_eq!(log.iter().map(|r| &r.id).collect::<HashSet<_>>().len(), 50);

    // A second flush has nothing to send.
    assert_ok(&cli(&gw, "flush", &["--queue-dir", qdir]));
    assert_eq!(descriptions(&gw), (50, expected));
}

#[test]
fn a_flush_killed_midway_loses_nothing_and_sends_nothing_twice() {
    let mut gw = bulk_gateway();
    gw.start();
    let q = tempfile::tempdir().unwrap();
    let queue = Queue::open(q.path()).unwrap();
    for n in 0..50 {
        queue
            .push(&seal(&gw, &sample_report(&format!("killed flush {n}"))))
            .unwrap();
    }
    let qdir = q.path().to_str().unwrap();
    // Each round: start a flush, let it send a few reports, then SIGKILL it
    // a few milliseconds later, wherever it is (mid-request, between the
    // answer and the log, between the log and the removal).
    let mut left_after_kills = Vec::new();
    for (round, extra_ms) in [0u64, 7, 3, 13].into_iter().enumerate() {
        let before = read_sent_log(q.path()).unwrap().len();
        let mut child = Command::new(bin("hotline-report"))
            .args(["flush", "--url", &url(&gw), "--ca"])
            .arg(ca(&gw))
            .args(["--queue-dir", qdir, "--concurrency", "2", "--pace-ms", "10"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while read_sent_log(q.path()).unwrap().len() < before + 3 + round
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(extra_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        left_after_kills.push(queue.pending().unwrap().len());
    }
    eprintln!("reports left in the queue after each SIGKILL: {left_after_kills:?}");
    assert!(
        left_after_kills.iter().all(|&n| n > 0 && n < 50),
        "every kill should land in the middle of a flush: {left_after_kills:?}"
    );
    let out = cli(&gw, "flush", &["--queue-dir", qdir]);
    assert_ok(&out);
    assert!(queue.pending().unwrap().is_empty());

    let expected: BTreeSet<String> = (0..50).map(|n| format!("killed flush {n}")).collect();
    assert_eq!(
        descriptions(&gw),
        (50, expected),
        "each report exactly once"
    );
    let log = read_sent_log(q.path()).unwrap();
    let ids: HashSet<_> = log.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 50);
    assert_eq!(log.len(), 50, "no report recorded twice");
    let staff_ids: HashSet<_> = runtime()
        .block_on(staff_list_all(&gw.transport(), &gw.staff_token()))
        .reports
        .into_iter()
        .map(|i| i.id.to_string())
        .collect();
    assert_eq!(ids, staff_ids);
}

#[test]
fn a_batch_of_1000_lines_with_10_malformed_is_sent_and_summarised() {
    let mut gw = bulk_gateway();
    gw.start();
    let bad_lines: Vec<(usize, &str)> = vec![
        (7, "{not json"),
        (100, r#"{"category":"spam","description":"batch bad"}"#),
        (
            201,
            r#"{"category":"csam","hashes":[{"alg":"md5","value":"abc"}]}"#,
        ),
        (
            333,
            r#"{"category":"csam","hashes":[{"alg":"sha1","value":"00"}]}"#,
        ),
        (404, r#"{"category":"csam","seen_at":"last tuesday"}"#),
        (500, r#"{"description":"no category"}"#),
        (612, r#"{"category":"csam","colour":"red"}"#),
        (777, r#"["category","csam"]"#),
        (888, r#"{"category":"csam","urls":"not a list"}"#),
        (
            1000,
            r#"{"category":"csam","hashes":[{"alg":"sha256","value":"zz"}]}"#,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch.jsonl");
    let mut body = String::new();
    for line in 1..=1000usize {
        match bad_lines.iter().find(|(n, _)| *n == line) {
            Some((_, bad)) => body.push_str(bad),
            None => body.push_str(&serde_line(line)),
        }
        body.push('\n');
    }
    std::fs::write(&file, body).unwrap();

    bin("hotline-report"); // built before the clock starts
    let started = Instant::now();
    let out = cli(
        &gw,
        "batch",
        &["--pin", &fingerprint(&gw), file.to_str().unwrap()],
    );
    let elapsed = started.elapsed();
    eprintln!("batch of 1,000 lines took {elapsed:.2?}");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("990 accepted, 10 rejected"), "{stderr}");
    let mut rejected = BTreeSet::new();
    let mut accepted = 0;
    for l in text(&out.stdout).lines() {
        let v: serde_json_lite::Line = serde_json_lite::parse(l);
        match v.status.as_str() {
            "accepted" => accepted += 1,
            "rejected" => {
                assert!(!v.reason.is_empty());
                assert!(stderr.contains(&format!("line {}: ", v.line)), "{stderr}");
                rejected.insert(v.line);
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!(accepted, 990);
    assert_eq!(
        rejected,
        bad_lines.iter().map(|(n, _)| *n).collect::<BTreeSet<_>>()
    );
    let expected: BTreeSet<String> = (1..=1000usize)
        .filter(|n| !rejected.contains(n))
        .map(|n| format!("batch line {n}"))
        .collect();
    assert_eq!(descriptions(&gw), (990, expected));
}

/// A valid batch line with hashes, distinct per line.
fn serde_line(n: usize) -> String {
    format!(
        concat!(
            r#"{{"category":"csam","urls":["https://host.example.invalid/{n}"],"#,
            r#""description":"batch line {n}","platform":"ExampleHost","seen_at":1700000000,"#,
            r#""lang":"en","hashes":[{{"alg":"md5","value":"{md5}"}},"#,
            r#"{{"alg":"sha256","value":"{sha}"}}]}}"#
        ),
        n = n,
        md5 = format!("{n:032x}"),
        sha = format!("{n:064x}"),
    )
}

/// Just enough JSON reading for the batch output lines, without another
/// dependency: `{"line":N,"status":"...",...,"reason":"..."}`.
mod serde_json_lite {
    pub struct Line {
        pub line: usize,
        pub status: String,
        pub reason: String,
    }

    fn string_field(l: &str, name: &str) -> String {
        let Some(rest) = l.split(&format!("\"{name}\":\"")).nth(1) else {
            return String::new();
        };
        let mut out = String::new();
        let mut escaped = false;
        for c in rest.chars() {
            match (escaped, c) {
                (true, c) => {
                    out.push(c);
                    escaped = false;
                }
                (false, '\\') => escaped = true,
                (false, '"') => break,
                (false, c) => out.push(c),
            }
        }
        out
    }

    pub fn parse(l: &str) -> Line {
        let line = l
            .split("\"line\":")
            .nth(1)
            .and_then(|r| r.split([',', '}']).next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no line number in {l}"));
        Line {
            line,
            status: string_field(l, "status"),
            reason: string_field(l, "reason"),
        }
    }
}

#[test]
fn a_gateway_serving_another_hotlines_key_is_refused() {
    let mut a = Gateway::install(|_| {}).in_process();
    a.start();
    let b = Gateway::install(|_| {}); // another hotline: only its keys are used
    let b_fp = fingerprint(&b);
    let b_pem = b.path("gateway/signing-public.pem");

    for pin in [b_fp.as_str(), b_pem.to_str().unwrap()] {
        let out = cli(&a, "key", &["--pin", pin]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("REFUSED"),
            "{}",
            text(&out.stderr)
        );
        let out = cli(
            &a,
            "submit",
            &["--pin", pin, "--category", "csam", "--description", "x"],
        );
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    }
    // Even with a queue and a network failure, a refusal never falls back to
    // a cached key, and nothing is queued.
    let q = tempfile::tempdir().unwrap();
    let out = cli(
        &a,
        "submit",
        &[
            "--pin",
            &b_fp,
            "--category",
            "csam",
            "--queue-dir",
            q.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(Queue::open(q.path()).unwrap().pending().unwrap().is_empty());

    runtime().block_on(async {
        let t = a.transport();
        let err = fetch_key(&t, &Pin::parse(&b_fp).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, KeyError::OtherSigner { .. }), "{err}");
        assert!(fetch_key(&t, &Pin::parse(&fingerprint(&a)).unwrap())
            .await
            .is_ok());
        assert!(staff_list_all(&t, &a.staff_token())
            .await
            .reports
            .is_empty());
    });
    assert_ok(&cli(&a, "key", &["--pin", &fingerprint(&a)]));
}

#[test]
fn a_rate_limited_batch_waits_as_told_and_loses_nothing() {
    // Default limits: 30 a minute with a burst of 20. The 4 reports past the
    // burst get 429 + Retry-After and are sent again after the wait.
    let mut gw = Gateway::install(|_| {}).in_process();
    gw.start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch.jsonl");
    let body: String = (1..=24usize).map(|n| serde_line(n) + "\n").collect();
    std::fs::write(&file, body).unwrap();
    bin("hotline-report");
    let started = Instant::now();
    let out = cli(
        &gw,
        "batch",
        &[
            "--pin",
            &fingerprint(&gw),
            "--attempts",
            "10",
            "--concurrency",
            "4",
            file.to_str().unwrap(),
        ],
    );
    let elapsed = started.elapsed();
    eprintln!("rate-limited batch of 24 took {elapsed:.2?}");
    assert_ok(&out);
    assert!(text(&out.stderr).contains("24 accepted, 0 rejected"));
    assert!(
        elapsed >= Duration::from_secs(4),
        "sent past the limit without waiting"
    );
    let expected: BTreeSet<String> = (1..=24usize).map(|n| format!("batch line {n}")).collect();
    assert_eq!(descriptions(&gw), (24, expected));
}
