//! What a client of the gateway does, over real TLS: seal and submit reports, list and ack
//! through the staff API, read metrics, run `hotline-staff pull`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_https::{Answer, Transport};
use hotline_protocol::{Aead, Category, Report, StaffList};
use hyper::Method;

use crate::{bin, Gateway};

/// A report with a recognisable description.
pub fn sample_report(description: &str) -> Report {
    let mut r = Report::new(Category::Csam);
    r.urls = vec!["https://example.invalid/a".into()];
    r.description = Some(description.to_owned());
    r.lang = Some("en".into());
    r
}

/// Seals a report to the gateway's key.
pub fn seal(gw: &Gateway, report: &Report) -> Vec<u8> {
    let doc = gw.key_document();
    hotline_protocol::seal_report(
        report,
        &doc.public_key,
        Aead::ChaCha20Poly1305,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap()
    .encode()
}

/// POSTs an envelope to /v1/reports.
pub async fn submit(t: &Transport, envelope: Vec<u8>, idempotency_key: Option<&str>) -> Answer {
    let mut headers = vec![("content-type", "application/cbor")];
    if let Some(k) = idempotency_key {
        headers.push(("idempotency-key", k));
    }
    t.send(Method::POST, "/v1/reports", &headers, envelope)
        .await
        .expect("submit")
}

/// Lists every queued record through the staff API.
pub async fn staff_list_all(t: &Transport, token: &str) -> StaffList {
    let auth = format!("Bearer {token}");
    let mut all = StaffList {
        reports: Vec::new(),
        next: None,
    };
    let mut after = 0u64;
    loop {
        let a = t
            .send(
                Method::GET,
                &format!("/v1/staff/reports?after={after}&limit=1000"),
                &[("authorization", &auth)],
                Vec::new(),
            )
            .await
            .expect("staff list");
        assert_eq!(a.status, 200, "staff list answered {}", a.status);
        let page = StaffList::decode(&a.body).expect("staff list decodes");
        all.reports.extend(page.reports);
        match page.next {
            Some(n) => after = n.parse().unwrap(),
            None => return all,
        }
    }
}

/// Acks `ids` through the staff API and returns how many were deleted.
pub async fn staff_ack(t: &Transport, token: &str, ids: Vec<impl AsRef<str>>) -> u64 {
    let ids = ids.iter().map(|id| id.as_ref().to_owned()).collect();
    let auth = format!("Bearer {token}");
    let a = t
        .send(
            Method::POST,
            "/v1/staff/ack",
            &[("authorization", &auth)],
            hotline_protocol::AckRequest { ids }.encode(),
        )
        .await
        .expect("staff ack");
    assert_eq!(a.status, 200, "staff ack answered {}", a.status);
    hotline_protocol::AckAnswer::decode(&a.body)
        .expect("ack answer decodes")
        .acked
}

/// Seals `n` reports (descriptions "report {i}") and submits them with
/// `tasks` concurrent clients; returns (id, receipt) in submission order.
pub async fn submit_many(gw: &Gateway, n: usize, tasks: usize) -> Vec<(String, String)> {
    let doc = gw.key_document();
    let rng = ring::rand::SystemRandom::new();
    let envelopes: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            hotline_protocol::seal_report(
                &sample_report(&format!("report {i}")),
                &doc.public_key,
                Aead::ChaCha20Poly1305,
                &rng,
            )
            .unwrap()
            .encode()
        })
        .collect();
    let t = gw.transport();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let envelopes = Arc::new(envelopes);
    let mut handles = Vec::new();
    for _ in 0..tasks.max(1) {
        let (t, next, envelopes) = (t.clone(), next.clone(), envelopes.clone());
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= envelopes.len() {
                    return mine;
                }
                let a = submit(&t, envelopes[i].clone(), None).await;
                assert_eq!(a.status, 201, "submit answered {}", a.status);
                let a = hotline_protocol::SubmitAnswer::decode(&a.body).unwrap();
                mine.push((i, a.id.to_string(), a.receipt));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_by_key(|(i, _, _)| *i);
    all.into_iter().map(|(_, id, r)| (id, r)).collect()
}

/// One value from the gateway's /metrics (open to loopback clients).
pub async fn metric(t: &Transport, name: &str) -> f64 {
    let a = t
        .send(Method::GET, "/metrics", &[], Vec::new())
        .await
        .expect("metrics");
    assert_eq!(a.status, 200, "/metrics answered {}", a.status);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Waits until the gateway's queue is empty; returns how long it took.
pub async fn wait_for_drain(t: &Transport, token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if metric(t, "hotline_queue_depth").await == 0.0
            && staff_list_all(t, token).await.reports.is_empty()
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "the queue did not drain within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `hotline-staff pull` for a gateway into `out`; returns the process
/// (stdout and stderr piped).
pub fn spawn_pull(gw: &Gateway, out: &Path, page: usize) -> Child {
    spawn_pull_with(gw, out, page, &[])
}

/// [`spawn_pull`] with extra arguments (e.g. `--dead`).
pub fn spawn_pull_with(gw: &Gateway, out: &Path, page: usize, extra: &[&str]) -> Child {
    let token_file = gw.path("hotline-private/staff-token.txt");
    Command::new(bin("hotline-staff"))
        .arg("pull")
        .args([
            "--url",
            &format!("https://127.0.0.1:{}", gw.addr.expect("started").port()),
        ])
        .arg("--token-file")
        .arg(token_file)
        .arg("--key")
        .arg(gw.path("hotline-private/hotline-hpke.pem"))
        .arg("--out")
        .arg(out)
        .arg("--ca")
        .arg(gw.path("gateway/tls/cert.pem"))
        .args(["--page", &page.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hotline-staff pull")
}

/// An envelope sealed to the gateway's key (so it is accepted) whose
/// ciphertext was altered (so the hotline cannot open it).
pub fn corrupt_envelope(gw: &Gateway) -> Vec<u8> {
    let env = seal(gw, &sample_report("tampered"));
    let mut e = hotline_protocol::Envelope::decode(&env).unwrap();
    e.ct[0] ^= 0x55;
    e.encode()
}

/// A rustls client configuration that trusts only this gateway's
/// self-signed certificate and offers `alpn`, for tests that speak raw
/// TLS, HTTP/2 or bind their own source address.
pub fn tls_client(gw: &Gateway, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(gw.path("gateway/tls/cert.pem"))
        .expect("certificate file")
    {
        roots.add(c.expect("certificate")).expect("add certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
