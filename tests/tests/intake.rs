//! Intake end to end: a real gateway process, real TLS, 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hotline_e2e::*;
use hotline_protocol::{open_report, AckAnswer, AckRequest, SubmitAnswer};
use hyper::Method;

#[test]
fn a_sealed_report_is_stored_listed_opened_and_gone_after_ack() {
    let mut gw = Gateway::with_engine("redb");
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

        let ack = AckRequest {
            ids: vec![answer.id.clone()],
        };
        let auth = format!("Bearer {token}");
        let a = t
            .send(
                Method::POST,
                "/v1/staff/ack",
                &[("authorization", &auth)],
                ack.encode(),
            )
            .await
            .unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(AckAnswer::decode(&a.body).unwrap().acked, 1);
        assert!(staff_list_all(&t, &token).await.reports.is_empty());
    });
    assert!(
        gw.stop().success(),
        "SIGTERM ends the gateway with status 0"
    );
}

#[test]
fn the_same_envelope_with_one_idempotency_key_is_stored_once() {
    let mut gw = Gateway::with_engine("redb");
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
    let mut gw = Gateway::with_engine("sled");
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
