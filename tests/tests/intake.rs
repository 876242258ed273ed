//! Intake end to end: the gateway in-process, real TLS, 127.0.0.1; the
//! config check runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hotline_e2e::*;
use hotline_protocol::{open_report, SubmitAnswer};
use hyper::Method;

#[test]
fn a_sealed_report_is_stored_listed_opened_and_gone_after_ack() {
    let mut gw = Gateway::with_engine("redb").in_process();
    gw.start();
    let rt = runtime();
    rt.block_on(async {
        let t = gw.transport();
        let report = sample_report("I saw this on a forum");
        let answer = submit(&t, seal(&gw, &report), None).await;
        assert_eq!(answer.status, 201);
        let answer = SubmitAnswer::decode(&answer.body).unwrap();
        assert_eq!(answer.id.len(), 32);
        assert!(answer
            .receipt
            .parse::<hotline_protocol::ReceiptCode>()
            .is_ok());

        let token = gw.staff_token();
        let list = staff_list_all(&t, &token).await;
        assert_eq!(list.reports.len(), 1);
        let item = &list.reports[0];
        assert_eq!(item.id, answer.id);
        assert_eq!(item.channel, "api");
        assert_eq!(item.received_at % 3600, 0, "receive time is coarse");
        assert_eq!(
            open_report(&gw.hotline_key(), &item.envelope).unwrap(),
            report
        );

        assert_eq!(staff_ack(&t, &token, vec![answer.id.clone()]).await, 1);
        assert!(staff_list_all(&t, &token).await.reports.is_empty());
    });
    assert!(gw.stop().success(), "a stopped gateway ends with Ok");
}

#[test]
fn the_same_envelope_with_one_idempotency_key_is_stored_once() {
    let mut gw = Gateway::with_engine("redb").in_process();
    gw.start();
    runtime().block_on(async {
        let t = gw.transport();
        let envelope = seal(&gw, &sample_report("sent twice from a shaky phone"));
        let key = "q83vEjRWeJCrze8SNFZ4kA";
        let first = submit(&t, envelope.clone(), Some(key)).await;
        let second = submit(&t, envelope, Some(key)).await;
        assert_eq!(first.status, 201);
        assert_eq!(second.status, 201);
        assert_eq!(
            SubmitAnswer::decode(&first.body).unwrap(),
            SubmitAnswer::decode(&second.body).unwrap()
        );
        assert_eq!(staff_list_all(&t, &gw.staff_token()).await.reports.len(), 1);
    });
}

#[test]
fn key_document_health_and_metrics_are_served() {
    let mut gw =
        Gateway::with_engine(hotline_e2e::ENGINES[hotline_e2e::ENGINES.len() - 1]).in_process();
    gw.start();
    runtime().block_on(async {
        let t = gw.transport();
        let key = t.send(Method::GET, "/v1/key", &[], vec![]).await.unwrap();
        assert_eq!(key.status, 200);
        let doc = hotline_protocol::KeyDocument::verify(
            &key.body,
            &hotline_protocol::VerifyingKey::from_pem(
                &std::fs::read_to_string(gw.path("gateway/signing-public.pem")).unwrap(),
            )
            .unwrap(),
            0,
        )
        .unwrap();
        assert_eq!(doc, gw.key_document());
        let h = t.send(Method::GET, "/healthz", &[], vec![]).await.unwrap();
        assert_eq!(h.status, 200);
        submit(&t, seal(&gw, &sample_report("x")), None).await;
        let m = t.send(Method::GET, "/metrics", &[], vec![]).await.unwrap();
        assert_eq!(m.status, 200, "loopback clients may read /metrics");
        let text = String::from_utf8(m.body.to_vec()).unwrap();
        for needle in [
            "hotline_requests_total{route=\"reports\",status=\"201\"} 1",
            "hotline_queue_depth 1",
            "hotline_commit_batch_size_count",
            "hotline_commit_seconds_bucket",
            "hotline_store_bytes",
        ] {
            assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
        }
    });
}

#[test]
fn check_config_explains_every_problem_at_once() {
    // As an operator would: `init`, then edit the text.
    let dir = tempfile::tempdir().unwrap();
    let init = |dir: &std::path::Path| {
        let status = std::process::Command::new(bin("hotline-gateway"))
            .args(["init", "--dir"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "hotline-gateway init failed");
        dir.join("config.toml")
    };
    let config = init(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    let text = edit(&text, "max_headers = 32", "max_headers = 1");
    let text = edit(
        &text,
        "# plain = \"127.0.0.1:8080\"",
        "plain = \"0.0.0.0:8080\"",
    );
    let text = edit(&text, "log_level = \"info\"", "log_level = \"loud\"");
    std::fs::write(&config, text).unwrap();
    std::fs::remove_file(dir.path().join("gateway/master.key")).unwrap();
    let out = std::process::Command::new(bin("hotline-gateway"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "4 problem(s)",
        "max_headers",
        "loopback",
        "log_level",
        "master_key",
    ] {
        assert!(
            text.contains(needle),
            "check-config output lacks {needle:?}:\n{text}"
        );
    }
    let ok = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin("hotline-gateway"))
        .args(["check-config", "--config"])
        .arg(init(ok.path()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn http2_is_offered_by_alpn_and_serves_the_api() {
    use http_body_util::{BodyExt, Full};
    let mut gw = Gateway::with_engine("redb").in_process();
    gw.start();
    runtime().block_on(async {
        let config = tls_client(&gw, &[b"h2"]);
        let tcp = tokio::net::TcpStream::connect(gw.addr.unwrap())
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(
                rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post("https://127.0.0.1/v1/reports")
            .header("content-type", "application/cbor")
            .body(Full::new(bytes::Bytes::from(seal(
                &gw,
                &sample_report("over h2"),
            ))))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        assert_eq!(resp.status(), 201);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(SubmitAnswer::decode(&body).is_ok());
    });
}

#[test]
fn the_no_js_form_sent_again_after_a_lost_answer_is_stored_once() {
    let mut gw = Gateway::with_engine("redb").in_process();
    gw.start();
    runtime().block_on(async {
        let t = gw.transport();
        let page = t.send(Method::GET, "/", &[], vec![]).await.unwrap();
        let html = String::from_utf8(page.body.to_vec()).unwrap();
        let nonce = html
            .split("name=\"nonce\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the form carries a nonce")
            .to_owned();
        assert_eq!(nonce.len(), 22);
        let receipt_of = |html: &str| {
            html.as_bytes()
                .windows(19)
                .find(|w| {
                    w.iter().enumerate().all(|(i, c)| {
                        if i % 5 == 4 {
                            *c == b'-'
                        } else {
                            c.is_ascii_digit()
                        }
                    })
                })
                .map(|w| String::from_utf8_lossy(w).into_owned())
        };
        let mut receipts = Vec::new();
        for description in ["seen twice", "seen twice", "edited"] {
            let form = format!("nonce={nonce}&category=grooming&description={description}&lang=en")
                .replace(' ', "+");
            let a = t
                .send(
                    Method::POST,
                    "/report",
                    &[("content-type", "application/x-www-form-urlencoded")],
                    form.into_bytes(),
                )
                .await
                .unwrap();
            assert_eq!(a.status, 200);
            receipts.push(receipt_of(&String::from_utf8_lossy(&a.body)).expect("a receipt"));
        }
        assert_eq!(
            receipts[0], receipts[1],
            "the resend gets the first receipt"
        );
        assert_ne!(receipts[0], receipts[2], "edited content is a new report");
        let list = staff_list_all(&t, &gw.staff_token()).await;
        assert_eq!(list.reports.len(), 2);
        assert!(list.reports.iter().all(|r| r.channel == "web-nojs"));

        // The reporter checks the code on the web page, without JavaScript.
        let check = |code: String| {
            let t = t.clone();
            async move {
                let a = t
                    .send(
                        Method::GET,
                        &format!("/check?lang=en&code={code}"),
                        &[],
                        vec![],
                    )
                    .await
                    .unwrap();
                assert_eq!(a.status, 200);
                String::from_utf8(a.body.to_vec()).unwrap()
            }
        };
        assert!(check(receipts[0].clone())
            .await
            .contains("waiting for the hotline"));
        assert!(check("1234-5678".into())
            .await
            .contains("We do not know this code"));
        let ids = list.reports.iter().map(|r| r.id.clone()).collect();
        assert_eq!(staff_ack(&t, &gw.staff_token(), ids).await, 2);
        assert!(check(receipts[0].clone())
            .await
            .contains("has received your report"));
    });
}
