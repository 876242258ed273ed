//! The public edge under abuse: a form posted by another site is refused
//! and stores nothing, while the gateway's own form (and browsers that
//! send no fetch metadata) keep working; /metrics is never left open behind
//! a proxy; the receipt answers have one size whatever the code says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hotline_e2e::*;
use hotline_gateway::config::{LoopbackAddr, Sha256Hex};
use hyper::Method;

const FORM: &str = "category=grooming&description=posted+from+somewhere&lang=en";

async fn post_form(t: &hotline_https::Transport, headers: &[(&str, &str)]) -> (u16, String) {
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    let a = t
        .send(Method::POST, "/report", &all, FORM.as_bytes().to_vec())
        .await
        .unwrap();
    (
        a.status.as_u16(),
        String::from_utf8_lossy(&a.body).into_owned(),
    )
}

#[test]
fn a_form_posted_by_another_site_is_refused_and_nothing_is_stored() {
    let mut gw = Gateway::with_engine("redb").in_process();
    gw.start();
    let own = format!("https://127.0.0.1:{}", gw.addr.unwrap().port());
    runtime().block_on(async {
        let t = gw.transport();
        let stored = |t: hotline_https::Transport, token: String| async move {
            staff_list_all(&t, &token).await.reports.len()
        };
        for headers in [
            &[("sec-fetch-site", "cross-site")][..],
            &[("sec-fetch-site", "same-site")],
            &[("origin", "https://evil.example")],
            &[("origin", "null")],
            &[("origin", own.as_str()), ("sec-fetch-site", "cross-site")],
        ] {
            let (status, page) = post_form(&t, headers).await;
            assert_eq!(status, 403, "{headers:?}");
            assert!(
                page.contains("<html lang=\"en\""),
                "a page in the form's style"
            );
            assert!(
                page.contains("sent from another website"),
                "a clear message: {page}"
            );
            assert_eq!(stored(t.clone(), gw.staff_token()).await, 0, "{headers:?}");
        }
        assert_eq!(
            metric(&t, "hotline_rejections_total{reason=\"cross_site\"}").await,
            5.0
        );
        // The French page for a French browser.
        let (status, page) = post_form(
            &t,
            &[("sec-fetch-site", "cross-site"), ("accept-language", "fr")],
        )
        .await;
        assert_eq!(status, 403);
        assert!(page.contains("depuis un autre site web"), "{page}");

        // The gateway's own form, and a browser that says nothing.
        let (status, _) = post_form(
            &t,
            &[("sec-fetch-site", "same-origin"), ("origin", own.as_str())],
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = post_form(&t, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(stored(t.clone(), gw.staff_token()).await, 2);
    });
}

/// A config that listens in plain HTTP for a proxy, with no /metrics token.
fn plain_without_metrics_token(gw: &mut Gateway) {
    let plain = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    gw.config.listen.plain = Some(LoopbackAddr::try_from(plain).unwrap());
    gw.config.metrics.token_sha256 = None;
}

#[test]
fn a_plain_listener_without_a_metrics_token_is_refused_by_check_config_and_at_start() {
    let mut gw = Gateway::with_engine("redb");
    plain_without_metrics_token(&mut gw);
    let config_file = gw.path("config.toml");
    std::fs::write(&config_file, toml::to_string(&gw.config).unwrap()).unwrap();
    let out = std::process::Command::new(bin("hotline-gateway"))
        .args(["check-config", "--config"])
        .arg(&config_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("1 problem(s)")
            && text.contains("listen.plain is set but metrics.token_sha256 is not"),
        "{text}"
    );
    // The daemon does not start with it either (the library's bind, which
    // `run` calls).
    let bound = runtime().block_on(hotline_gateway::Gateway::bind(gw.config.clone()));
    let err = match bound {
        Ok(_) => panic!("bind accepted a plain listener without a metrics token"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("metrics.token_sha256"), "{err}");
    // With a token, both accept it.
    gw.config.metrics.token_sha256 = Some(Sha256Hex([7; 32]));
    std::fs::write(&config_file, toml::to_string(&gw.config).unwrap()).unwrap();
    let out = std::process::Command::new(bin("hotline-gateway"))
        .args(["check-config", "--config"])
        .arg(&config_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Occurrences of each needle in the readable memory of process `pid`, or
/// `None` when it cannot be read (not root: the gateway is non-dumpable).
fn count_in_memory(pid: u32, needles: &[&[u8]]) -> Option<Vec<usize>> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut counts = vec![0; needles.len()];
    let mut buf = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let name = fields.nth(3).unwrap_or("");
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        buf.resize((end - start) as usize, 0);
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        for (needle, count) in needles.iter().zip(counts.iter_mut()) {
            let mut at = 0;
            while let Some(i) = buf[at..].iter().position(|b| *b == needle[0]) {
                let i = at + i;
                if buf[i..].starts_with(needle) {
                    *count += 1;
                }
                at = i + 1;
            }
        }
    }
    Some(counts)
}

#[test]
fn a_no_js_report_leaves_no_copy_of_ours_in_the_gateways_memory() {
    // A real process: the test's own buffers (the client's) are elsewhere.
    let mut gw = Gateway::with_engine("redb");
    gw.start();
    let mut rand = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut rand).unwrap();
    let tag: String = rand.iter().map(|b| format!("{b:02x}")).collect();
    // In a field of the report, and right beside it in a field the gateway
    // never decodes: both sit in the received bytes (rustls's and hyper's
    // buffers, not ours, reused at their pace), only the first could have
    // been copied by the no-JS path.
    let field = format!("FIELDCANARY{tag}");
    let ignored = format!("IGNOREDCANARY{tag}");
    // Text first: a freed buffer loses its first 16 bytes to the
    // allocator's pointers, which would hide a canary at its start.
    let form = format!(
        "category=grooming&description=I+saw+this+in+a+chat+{field}&x=I+saw+this+in+a+chat+{ignored}&lang=en"
    );
    runtime().block_on(async {
        let t = gw.transport();
        let a = t
            .send(
                Method::POST,
                "/report",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("connection", "close"),
                ],
                form.into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(a.status, 200);
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let Some(counts) = count_in_memory(gw.pid(), &[field.as_bytes(), ignored.as_bytes()]) else {
        eprintln!("cannot read the gateway's memory (run as root to measure): skipped");
        return;
    };
    eprintln!(
        "canary copies in the gateway's memory: report fields {}, never-decoded fields {}",
        counts[0], counts[1]
    );
    assert!(counts[1] > 0, "the scan finds what the gateway received");
    assert!(
        counts[0] <= counts[1],
        "the no-JS path left copies of the report's fields: {counts:?}"
    );
}

#[test]
fn receipt_answers_and_form_answers_have_one_length_whatever_they_say() {
    let mut gw = Gateway::with_engine("redb").in_process();
    gw.start();
    runtime().block_on(async {
        let t = gw.transport();
        let token = gw.staff_token();
        let (status, sent) = post_form(&t, &[]).await;
        assert_eq!(status, 200);
        let receipt = sent
            .split("<p class=\"receipt\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap()
            .to_owned();
        // The no-JS answers: taken or refused, one length.
        let (status, refused) = post_form(&t, &[("sec-fetch-site", "cross-site")]).await;
        assert_eq!(status, 403);
        assert_eq!(refused.len(), sent.len(), "error and receipt pages");

        let api = |code: String| {
            let t = t.clone();
            async move {
                let a = t
                    .send(Method::GET, &format!("/v1/receipts/{code}"), &[], vec![])
                    .await
                    .unwrap();
                assert_eq!(a.status, 200);
                let answer = hotline_protocol::ReceiptAnswer::decode(&a.body).unwrap();
                (answer.status, a.body.len())
            }
        };
        let page = |code: &str| {
            let t = t.clone();
            let form = format!("lang=fr&code={}", code.replace(' ', "+"));
            async move {
                let a = t
                    .send(
                        Method::POST,
                        "/check",
                        &[("content-type", "application/x-www-form-urlencoded")],
                        form.into_bytes(),
                    )
                    .await
                    .unwrap();
                assert_eq!(a.status, 200);
                String::from_utf8(a.body.to_vec()).unwrap()
            }
        };
        use hotline_protocol::ReceiptState::*;
        let queued_page = page(&receipt).await;
        assert!(queued_page.contains("<html lang=\"fr\""));
        let unknown_page = page("1234 5678").await;
        assert_eq!(api(receipt.clone()).await.0, Queued);
        assert_eq!(api("1234-5678".into()).await.0, Unknown);
        let ids = staff_list_all(&t, &token)
            .await
            .reports
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(staff_ack(&t, &token, ids).await, 1);
        let delivered_page = page(&receipt).await;
        let (state, len) = api(receipt.clone()).await;
        assert_eq!(state, Delivered);
        assert_eq!(len, hotline_protocol::RECEIPT_ANSWER_LEN);
        assert_eq!(api("1234-5678".into()).await.1, len);
        assert_ne!(
            queued_page, delivered_page,
            "the pages say different things"
        );
        assert_eq!(queued_page.len(), delivered_page.len());
        assert_eq!(unknown_page.len(), delivered_page.len());
        // The page without a code has the same length too, and its form
        // posts the code.
        let blank = t
            .send(Method::GET, "/check?lang=fr", &[], vec![])
            .await
            .unwrap();
        let blank = String::from_utf8(blank.body.to_vec()).unwrap();
        assert_eq!(blank.len(), delivered_page.len());
        assert!(blank.contains("<form method=\"post\" action=\"/check\""));
    });
}
