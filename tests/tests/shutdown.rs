//! Stopping a real process: SIGTERM while 16 writers post reports. Every
//! request that was sent gets an answer (201, or 503 with Retry-After), none
//! is cut, the process exits 0, and every 201 is in the store after a
//! restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hotline_e2e::*;
use hotline_protocol::SubmitAnswer;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

const WRITERS: usize = 16;

/// What became of one attempt.
#[derive(Debug)]
enum Attempt {
    /// Never sent: no connection or no TLS session (the gateway had stopped
    /// accepting).
    NotSent,
    /// Sent and answered.
    Answered {
        status: u16,
        retry_after: bool,
        body: Bytes,
    },
    /// Sent, and the connection ended without an answer.
    Cut(String),
}

/// One POST on a fresh connection, so no answer can be lost to a kept-alive
/// connection closing as the next request goes out.
async fn post_once(addr: SocketAddr, tls: Arc<rustls::ClientConfig>, body: Vec<u8>) -> Attempt {
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return Attempt::NotSent;
    };
    let Ok(stream) = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
    else {
        return Attempt::NotSent;
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return Attempt::NotSent;
    };
    tokio::spawn(conn);
    let req = Request::post("/v1/reports")
        .header("host", "127.0.0.1")
        .header("content-type", "application/cbor")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    match sender.send_request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp.headers().contains_key("retry-after");
            match resp.into_body().collect().await {
                Ok(b) => Attempt::Answered {
                    status,
                    retry_after,
                    body: b.to_bytes(),
                },
                Err(e) => Attempt::Cut(format!("body: {e}")),
            }
        }
        Err(e) => Attempt::Cut(e.to_string()),
    }
}

#[test]
fn sigterm_under_load_answers_every_request_and_keeps_every_201() {
    let mut gw = Gateway::install(open_limits);
    gw.start();
    let addr = gw.addr.unwrap();
    let tls = tls_client(&gw, &[b"http/1.1"]);
    let envelopes: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..WRITERS)
            .map(|i| seal(&gw, &sample_report(&format!("writer {i}"))))
            .collect(),
    );
    let rt = runtime();
    let (status, mut gw, stored, cut, refused) = rt.block_on(async move {
        let created = Arc::new(AtomicUsize::new(0));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (tls, envelopes, created) = (tls.clone(), envelopes.clone(), created.clone());
            writers.push(tokio::spawn(async move {
                let (mut ids, mut cut, mut refused) = (Vec::new(), Vec::new(), 0usize);
                loop {
                    match post_once(addr, tls.clone(), envelopes[w].clone()).await {
                        Attempt::NotSent => return (ids, cut, refused),
                        Attempt::Cut(e) => cut.push(e),
                        Attempt::Answered {
                            status: 201, body, ..
                        } => {
                            ids.push(SubmitAnswer::decode(&body).unwrap().id);
                            created.fetch_add(1, Ordering::SeqCst);
                        }
                        Attempt::Answered {
                            status: 503,
                            retry_after,
                            ..
                        } => {
                            assert!(retry_after, "a 503 without Retry-After");
                            refused += 1;
                        }
                        Attempt::Answered { status, .. } => {
                            panic!("unexpected answer {status}")
                        }
                    }
                }
            }));
        }
        // SIGTERM once the writers are well under way; they go on posting
        // until the gateway stops accepting.
        while created.load(Ordering::SeqCst) < 64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stopping = tokio::task::spawn_blocking(move || {
            let status = gw.stop();
            (status, gw)
        });
        let (mut stored, mut cut, mut refused) = (Vec::new(), Vec::new(), 0);
        for w in writers {
            let (ids, c, r) = w.await.unwrap();
            stored.extend(ids);
            cut.extend(c);
            refused += r;
        }
        let (status, gw) = stopping.await.unwrap();
        (status, gw, stored, cut, refused)
    });
    assert!(cut.is_empty(), "requests cut at shutdown: {cut:?}");
    assert!(
        status.success(),
        "SIGTERM ends the gateway with status 0: {status:?}; log:\n{}",
        gw.log_text()
    );
    eprintln!("{} reports stored, {refused} told to retry", stored.len());

    gw.start();
    let listed = rt.block_on(staff_list_all(&gw.transport(), &gw.staff_token()));
    let ids: std::collections::HashSet<hotline_protocol::RecordId> =
        listed.reports.into_iter().map(|r| r.id).collect();
    let missing: Vec<&hotline_protocol::RecordId> =
        stored.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "answered 201 but not stored: {missing:?}"
    );
    assert_eq!(
        ids.len(),
        stored.len(),
        "every stored report was answered 201"
    );
}
