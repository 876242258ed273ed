//! Privacy: a canary string inside reports never appears in the data
//! directory, the logs (at the most verbose level) or /metrics, and the
//! client's address never appears in the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use hotline_e2e::*;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

/// A distinctive client address: the whole of 127.0.0.0/8 is loopback, so the
/// test can tell the client apart from the listener (127.0.0.1).
const CLIENT_IP: &str = "127.83.41.29";
const CANARY: &str = "CANARY-e1f0c3a9-never-in-clear";

/// One request from CLIENT_IP over TLS; returns the status.
async fn from_client(gw: &Gateway, req: Request<Full<Bytes>>) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{CLIENT_IP}:0").parse().unwrap())
        .unwrap();
    let tcp = socket.connect(gw.addr.unwrap()).await.unwrap();
    let config = tls_client(gw, &[]);
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

fn post(path: &str, ctype: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", ctype)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

#[test]
fn canary_and_client_address_stay_out_of_disk_logs_and_metrics() {
    for &engine in hotline_e2e::ENGINES {
        let mut gw = Gateway::install(|c| {
            c.log_level = "trace".parse().unwrap();
            c.store.engine = engine_named(engine);
        });
        gw.start();
        runtime().block_on(async {
            let api = seal(&gw, &sample_report(CANARY));
            assert_eq!(from_client(&gw, post("/v1/reports", "application/cbor", api)).await, 201);
            // The no-JS form: the gateway sees the plaintext in memory only.
            let form = format!(
                "category=grooming&description={CANARY}&urls=https%3A%2F%2Fexample.invalid%2F{CANARY}&contact={CANARY}&lang=en"
            );
            let s = from_client(&gw, post("/report", "application/x-www-form-urlencoded", form.into_bytes())).await;
            assert_eq!(s, 200, "the no-JS form is accepted");
            // Rejections log too; they must not leak either.
            let bad = format!("{CANARY}{CANARY}").into_bytes();
            assert_eq!(from_client(&gw, post("/v1/reports", "application/cbor", bad)).await, 400);
            let get = Request::get("/metrics")
                .header("host", "127.0.0.1")
                .body(Full::new(Bytes::new()))
                .unwrap();
            assert_eq!(from_client(&gw, get).await, 200);

            let t = gw.transport();
            let m = t.send(hyper::Method::GET, "/metrics", &[], vec![]).await.unwrap();
            let metrics = String::from_utf8(m.body.to_vec()).unwrap();
            assert!(!metrics.contains(CANARY), "canary in /metrics");
            assert!(!metrics.contains(CLIENT_IP), "client address in /metrics");
            // Both reports are there and open to the canary: the check above is not vacuous.
            let listed = staff_list_all(&t, &gw.staff_token()).await;
            assert_eq!(listed.reports.len(), 2);
            for item in &listed.reports {
                let r = hotline_protocol::open_report(&gw.hotline_key(), &item.envelope).unwrap();
                assert_eq!(r.description.as_deref(), Some(CANARY));
            }
        });
        assert!(gw.stop().success());
        let hits = files_contain(&gw.path("store"), CANARY.as_bytes());
        assert!(hits.is_empty(), "{engine}: canary on disk in {hits:?}");
        let log = gw.log_text();
        assert!(log.contains("listening"), "the log was captured");
        assert!(!log.contains(CANARY), "{engine}: canary in the log");
        assert!(
            !log.contains(CLIENT_IP),
            "{engine}: client address in the log"
        );
    }
}
