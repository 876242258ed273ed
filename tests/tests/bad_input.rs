//! Bad input, table-driven: every kind gets its documented status and error
//! body, the daemon keeps serving, and nothing is stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hotline_e2e::*;
use hotline_protocol::cbor::Writer;
use hotline_protocol::{AckRequest, ErrorBody, Kid};
use hyper::Method;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One raw HTTP/1.1 exchange over TLS (or plain TCP), for requests a normal
/// client would refuse to send. Returns (status, body) of the answer.
async fn raw(
    gw: &Gateway,
    tls: bool,
    head: &str,
    body_chunks: &[(&[u8], Duration)],
) -> (u16, Vec<u8>) {
    let addr = gw.addr.unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    if tls {
        let config = tls_client(gw, &[]);
        let mut s = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        for (chunk, pause) in body_chunks {
            tokio::time::sleep(*pause).await;
            if s.write_all(chunk).await.is_err() {
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    } else {
        let mut s = tcp;
        s.write_all(head.as_bytes()).await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    }
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| buf[i + 4..].to_vec())
        .unwrap_or_default();
    (status, body)
}

/// One map entry: a key and a function writing its value.
type Field<'a> = (&'a str, &'a dyn Fn(&mut Writer));

/// A table row: what is sent and what must come back.
struct Case<'a> {
    what: &'a str,
    method: Method,
    path: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: Vec<u8>,
    status: u16,
    /// Expected reason; empty when several decoder reasons are correct.
    reason: &'a str,
}

fn envelope_map(entries: &[Field<'_>]) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(entries.len());
    for (k, f) in entries {
        w.text(k);
        f(&mut w);
    }
    w.into_bytes()
}

fn suite(aead: u64) -> impl Fn(&mut Writer) {
    move |w: &mut Writer| {
        w.array(3).uint(32).uint(1).uint(aead);
    }
}

/// Sends every case and checks status, reason and that the body is the
/// protocol's error body with a message.
async fn check_all(t: &hotline_https::Transport, cases: Vec<Case<'_>>) {
    for c in cases {
        let a = t.send(c.method, c.path, &c.headers, c.body).await.unwrap();
        let what = c.what;
        assert_eq!(a.status.as_u16(), c.status, "{what}: status");
        let err = ErrorBody::decode(&a.body).unwrap_or_else(|e| panic!("{what}: error body: {e}"));
        if !c.reason.is_empty() {
            assert_eq!(err.error, c.reason, "{what}: reason");
        }
        assert!(!err.message.is_empty(), "{what}: message");
    }
}

#[test]
fn every_kind_of_bad_input_gets_its_status_and_reason_and_stores_nothing() {
    let mut gw = Gateway::install(|c| {
        c.limits.per_client_per_minute = 100_000;
        c.limits.per_client_burst = 10_000;
        c.limits.body_timeout = Duration::from_secs(2);
    })
    .in_process();
    gw.start();
    let rt = runtime();
    rt.block_on(async {
        let t = gw.transport();
        let kid = gw.key_document().kid();
        let good = seal(&gw, &sample_report("valid"));
        let v1 = |w: &mut Writer| {
            w.uint(1);
        };
        let kid_ok = move |w: &mut Writer| {
            w.bytes(&kid.0);
        };
        let enc_ok = |w: &mut Writer| {
            w.bytes(&[7u8; 32]);
        };
        let ct_ok = |w: &mut Writer| {
            w.bytes(&[9u8; 64]);
        };
        let mut deep = vec![0xa1, 0x62, b'v', b'x'];
        // As deep as fits the body limit (the decoder tests go to 100,000).
        deep.extend(std::iter::repeat_n(0x81, 60_000));
        deep.push(0x01);
        let mut huge_string = envelope_map(&[("v", &v1), ("suite", &suite(3)), ("kid", &kid_ok), ("enc", &enc_ok)]);
        huge_string[0] = 0xa5;
        huge_string.extend_from_slice(&[0x62, b'c', b't', 0x5b, 0, 0, 0, 1, 0, 0, 0, 0]);
        let mut trailing = good.clone();
        trailing.push(0x00);
        let random: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();

        let cbor = "application/cbor";
        let report = |what, ctype, body, idem: Option<&'static str>, status, reason| Case {
            what,
            method: Method::POST,
            path: "/v1/reports",
            headers: [("content-type", ctype)]
                .into_iter()
                .chain(idem.map(|k| ("idempotency-key", k)))
                .collect(),
            body,
            status,
            reason,
        };
        let cases: Vec<Case> = vec![
            report("random bytes", cbor, random, None, 400, ""),
            report("empty body", cbor, vec![], None, 400, "cbor_truncated"),
            report("truncated CBOR", cbor, good[..good.len() / 2].to_vec(), None, 400, "cbor_truncated"),
            report("trailing bytes", cbor, trailing, None, 400, "cbor_trailing_bytes"),
            report("60,000 nested arrays", cbor, deep, None, 400, "cbor_too_deep"),
            report("a 4 GiB string declared", cbor, huge_string, None, 400, "cbor_string_too_long"),
            report("indefinite-length map", cbor, vec![0xbf, 0x61, b'v', 0x01, 0xff], None, 400, "cbor_indefinite_length"),
            report("not a map", cbor, vec![0x83, 1, 2, 3], None, 400, "wrong_type"),
            report("duplicate key", cbor, envelope_map(&[("v", &v1), ("v", &v1)]), None, 400, "duplicate_field"),
            report("missing ct", cbor, envelope_map(&[("v", &v1), ("suite", &suite(3)), ("kid", &kid_ok), ("enc", &enc_ok)]), None, 400, "missing_field"),
            report("wrong enc length", cbor, envelope_map(&[("v", &v1), ("suite", &suite(3)), ("kid", &kid_ok), ("enc", &|w: &mut Writer| { w.bytes(&[1u8; 31]); }), ("ct", &ct_ok)]), None, 400, "invalid_value"),
            report("unknown suite", cbor, envelope_map(&[("v", &v1), ("suite", &suite(2)), ("kid", &kid_ok), ("enc", &enc_ok), ("ct", &ct_ok)]), None, 422, "unsupported_suite"),
            report("unknown version", cbor, envelope_map(&[("v", &|w: &mut Writer| { w.uint(2); }), ("suite", &suite(3)), ("kid", &kid_ok), ("enc", &enc_ok), ("ct", &ct_ok)]), None, 422, "unsupported_version"),
            report("unknown kid", cbor, envelope_map(&[("v", &v1), ("suite", &suite(3)), ("kid", &|w: &mut Writer| { w.bytes(&Kid([1; 8]).0); }), ("enc", &enc_ok), ("ct", &ct_ok)]), None, 422, "unknown_kid"),
            report("wrong media type", "text/plain", good.clone(), None, 415, "wrong_media_type"),
            report("form media type", "application/x-www-form-urlencoded", good.clone(), None, 415, "wrong_media_type"),
            report("oversized body", cbor, vec![0u8; 100_000], None, 413, "body_too_large"),
            report("malformed Idempotency-Key", cbor, good.clone(), Some("not base64!"), 400, "bad_idempotency_key"),
            report("short Idempotency-Key", cbor, good.clone(), Some("AAAA"), 400, "bad_idempotency_key"),
        ];
        check_all(&t, cases).await;

        // Requests a well-behaved client library would not send.
        let (s, body) = raw(&gw, false, "POST /v1/reports HTTP/1.1\r\nhost: x\r\n\r\n", &[]).await;
        assert_eq!(s, 400, "plain HTTP to the TLS port");
        assert_eq!(ErrorBody::decode(&body).unwrap().error, "tls_required");

        let many: String = (0..40).map(|i| format!("x-h{i}: v\r\n")).collect();
        let (s, body) = raw(&gw, true, &format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many}connection: close\r\n\r\n"), &[]).await;
        assert_eq!(s, 431, "too many headers");
        assert_eq!(ErrorBody::decode(&body).unwrap().error, "too_many_headers");

        let (s, body) = raw(
            &gw,
            true,
            "POST /v1/reports HTTP/1.1\r\nhost: x\r\ncontent-type: application/cbor\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            &[(format!("{:x}\r\n", 70_000).as_bytes(), Duration::ZERO), (&vec![0u8; 70_000], Duration::ZERO), (b"\r\n0\r\n\r\n", Duration::ZERO)],
        )
        .await;
        assert_eq!(s, 413, "oversized chunked body without content-length");
        assert_eq!(ErrorBody::decode(&body).unwrap().error, "body_too_large");

        let slow: Vec<(&[u8], Duration)> = good.chunks(1).take(5).map(|c| (c, Duration::from_secs(1))).collect();
        let (s, body) = raw(
            &gw,
            true,
            &format!("POST /v1/reports HTTP/1.1\r\nhost: x\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", good.len()),
            &slow,
        )
        .await;
        assert_eq!(s, 408, "a body sent one byte a second");
        assert_eq!(ErrorBody::decode(&body).unwrap().error, "body_timeout");

        // Staff API.
        let token = gw.staff_token();
        // The closures above take 'static headers; leaking two short strings in a test is fine.
        let bearer: &'static str = Box::leak(format!("Bearer {token}").into_boxed_str());
        let wrong = "Bearer wrong-token";
        let staff = |what, method, path, auth: Option<&'static str>, body, status, reason| Case {
            what,
            method,
            path,
            headers: [("content-type", "application/cbor")]
                .into_iter()
                .chain(auth.map(|a| ("authorization", a)))
                .collect(),
            body,
            status,
            reason,
        };
        let cases: Vec<Case> = vec![
            staff("staff list without token", Method::GET, "/v1/staff/reports", None, vec![], 401, "unauthenticated"),
            staff("staff list with wrong token", Method::GET, "/v1/staff/reports", Some(wrong), vec![], 401, "unauthenticated"),
            staff("ack without token", Method::POST, "/v1/staff/ack", None, AckRequest { ids: vec![] }.encode(), 401, "unauthenticated"),
            staff("ack of malformed ids", Method::POST, "/v1/staff/ack", Some(bearer), AckRequest { ids: vec!["nope".into()] }.encode(), 422, "unknown_ids"),
            staff("ack body not CBOR", Method::POST, "/v1/staff/ack", Some(bearer), b"ids=1".to_vec(), 400, ""),
            staff("bad page size", Method::GET, "/v1/staff/reports?limit=0", Some(bearer), vec![], 400, "bad_limit"),
            staff("bad cursor", Method::GET, "/v1/staff/reports?after=x", Some(bearer), vec![], 400, "bad_cursor"),
            staff("wrong method", Method::GET, "/v1/reports", None, vec![], 405, "method_not_allowed"),
            staff("unknown path", Method::GET, "/v2/reports", None, vec![], 404, "not_found"),
        ];
        check_all(&t, cases).await;

        let unknown = AckRequest { ids: vec!["0123456789abcdef0123456789abcdef".into()] };
        let a = t
            .send(Method::POST, "/v1/staff/ack", &[("authorization", bearer)], unknown.encode())
            .await
            .unwrap();
        assert_eq!(a.status, 200, "acking an unknown but well-formed id is harmless");
        assert_eq!(hotline_protocol::AckAnswer::decode(&a.body).unwrap().acked, 0);

        // Still serving, and nothing was stored.
        let h = t.send(Method::GET, "/healthz", &[], vec![]).await.unwrap();
        assert_eq!(h.status, 200);
        assert!(staff_list_all(&t, &token).await.reports.is_empty());
        let m = t.send(Method::GET, "/metrics", &[], vec![]).await.unwrap();
        let text = String::from_utf8(m.body.to_vec()).unwrap();
        assert!(text.contains("hotline_queue_depth 0"));
        assert!(text.contains("hotline_rejections_total{reason=\"cbor_too_deep\"} 1"));
        assert!(text.contains("hotline_rejections_total{reason=\"tls_required\"} 1"));
        // A valid report still goes through afterwards.
        assert_eq!(submit(&t, good, None).await.status, 201);
    });
}

#[test]
fn a_flood_from_one_address_is_told_to_wait() {
    let mut gw = Gateway::install(|c| {
        c.limits.per_client_per_minute = 1;
        c.limits.per_client_burst = 3;
    })
    .in_process();
    gw.start();
    runtime().block_on(async {
        let t = gw.transport();
        let env = seal(&gw, &sample_report("flood"));
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(submit(&t, env.clone(), None).await);
        }
        assert_eq!(statuses.iter().filter(|a| a.status == 201).count(), 3);
        let limited = statuses.last().unwrap();
        assert_eq!(limited.status, 429);
        assert!(limited.headers.contains_key("retry-after"));
        assert_eq!(
            ErrorBody::decode(&limited.body).unwrap().error,
            "rate_limited"
        );
    });
}

#[test]
fn a_full_store_answers_507_and_stores_nothing_more() {
    let mut gw = Gateway::install(|c| c.store.max_bytes = 20_000).in_process();
    gw.start();
    runtime().block_on(async {
        let t = gw.transport();
        let mut codes = Vec::new();
        for i in 0..20 {
            let a = submit(&t, seal(&gw, &sample_report(&format!("fill {i}"))), None).await;
            codes.push(a.status.as_u16());
            if a.status == 507 {
                assert_eq!(ErrorBody::decode(&a.body).unwrap().error, "storage_full");
                break;
            }
        }
        assert_eq!(codes.last(), Some(&507), "statuses: {codes:?}");
        let stored = codes.iter().filter(|c| **c == 201).count();
        assert_eq!(
            staff_list_all(&t, &gw.staff_token()).await.reports.len(),
            stored
        );
    });
}
