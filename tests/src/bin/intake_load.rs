//! Load generator for `ops/bench/intake`: N keep-alive HTTP/1.1 clients POST
//! pre-sealed 2 KiB envelopes for a fixed time and count the 201 answers.
//!
//! intake-load --url https://127.0.0.1:PORT [--ca CERT] --key-doc FILE
//!             [--clients 64] [--seconds 10] [--size 2048]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_protocol::{Aead, Category, KeyDocument, Report};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

struct Args {
    url: String,
    ca: Option<String>,
    key_doc: String,
    clients: usize,
    seconds: u64,
    size: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: String::new(),
        ca: None,
        key_doc: String::new(),
        clients: 64,
        seconds: 10,
        size: 2048,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().expect("flag value");
        match flag.as_str() {
            "--url" => a.url = v,
            "--ca" => a.ca = Some(v),
            "--key-doc" => a.key_doc = v,
            "--clients" => a.clients = v.parse().unwrap(),
            "--seconds" => a.seconds = v.parse().unwrap(),
            "--size" => a.size = v.parse().unwrap(),
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

/// Distinct envelopes of about `size` bytes (a description fills the report).
fn envelopes(doc_path: &str, size: usize, n: usize) -> Vec<Bytes> {
    let signed = std::fs::read(doc_path).unwrap();
    // The benchmark trusts the local file; apps verify against a pinned key.
    let doc = decode_unverified(&signed);
    let rng = ring::rand::SystemRandom::new();
    (0..n)
        .map(|i| {
            let mut r = Report::new(Category::Other);
            r.description = Some(format!("{i:06} {}", "x".repeat(size.saturating_sub(130))));
            let env =
                hotline_protocol::seal(&doc.public_key, Aead::ChaCha20Poly1305, &r.encode(), &rng)
                    .unwrap();
            Bytes::from(env.encode())
        })
        .collect()
}

fn decode_unverified(signed: &[u8]) -> KeyDocument {
    let mut r =
        hotline_protocol::cbor::Reader::new(signed, hotline_protocol::Limits::ENVELOPE).unwrap();
    let mut key = None;
    r.for_each_entry("doc", |r, k| {
        if k == "key" {
            key = Some(r.bytes("key")?.to_vec());
        } else {
            r.raw_value()?;
        }
        Ok(())
    })
    .unwrap();
    KeyDocument::decode(&key.unwrap()).unwrap()
}

fn main() {
    let args = parse_args();
    let uri: hyper::Uri = args.url.parse().unwrap();
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap().to_owned();
    let port = uri.port_u16().unwrap();
    let bodies = Arc::new(envelopes(&args.key_doc, args.size, 256));
    let body_len = bodies[0].len();
    let tls = args.ca.as_ref().map(|ca| {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let mut c = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(c))
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ok = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..args.clients {
            let (ok, other, bodies, tls, host) = (
                ok.clone(),
                other.clone(),
                bodies.clone(),
                tls.clone(),
                host.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                    .await
                    .unwrap();
                tcp.set_nodelay(true).unwrap();
                let mut sender = if https {
                    let name = ServerName::try_from(host.clone()).unwrap();
                    let s = tls.unwrap().connect(name, tcp).await.unwrap();
                    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                        .await
                        .unwrap();
                    tokio::spawn(conn);
                    sender
                } else {
                    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                        .await
                        .unwrap();
                    tokio::spawn(conn);
                    sender
                };
                let mut i = c;
                while Instant::now() < deadline {
                    let req = Request::post("/v1/reports")
                        .header("host", "localhost")
                        .header("content-type", "application/cbor")
                        .body(Full::new(bodies[i % bodies.len()].clone()))
                        .unwrap();
                    i += 1;
                    let Ok(resp) = sender.send_request(req).await else {
                        other.fetch_add(1, Ordering::Relaxed);
                        break;
                    };
                    let status = resp.status();
                    let _ = resp.into_body().collect().await;
                    if status == 201 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        other.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    println!(
        "clients={} seconds={:.1} envelope_bytes={} accepted={} other={} rate={:.0}/s",
        args.clients,
        secs,
        body_len,
        ok,
        other.load(Ordering::Relaxed),
        ok as f64 / secs
    );
}
