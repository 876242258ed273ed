//! The client and the server halves against each other over real TLS on
//! 127.0.0.1: a pinned self-signed certificate, kept-alive connections,
//! mutual TLS with a client CA, and the errors an operator sees for bad
//! PEM files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hotline_https::{cbor_response, server_config, TlsConfigError, Transport, TransportError};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// PEM files written into a temporary folder.
struct Pems {
    dir: tempfile::TempDir,
}

impl Pems {
    fn new() -> Pems {
        Pems {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, pem: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    }

    /// A self-signed server certificate for 127.0.0.1: (cert, key).
    fn server(&self) -> (PathBuf, PathBuf) {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        (
            self.write("server.pem", &c.cert.pem()),
            self.write("server.key", &c.signing_key.serialize_pem()),
        )
    }

    /// A CA and a client certificate it issued: (ca cert, client cert, client key).
    fn client_ca(&self) -> (PathBuf, PathBuf, PathBuf) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let client_key = KeyPair::generate().unwrap();
        let client_cert = CertificateParams::new(vec!["gateway.example.invalid".to_owned()])
            .unwrap()
            .signed_by(&client_key, &issuer)
            .unwrap();
        (
            self.write("ca.pem", &ca_cert.pem()),
            self.write("client.pem", &client_cert.pem()),
            self.write("client.key", &client_key.serialize_pem()),
        )
    }
}

/// A TLS server answering every request with its method, path and body;
/// returns its base URL and the number of TCP connections it accepted.
async fn echo_server(config: Arc<rustls::ServerConfig>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/base", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let head = format!("{} {} ", req.method(), req.uri().path());
                    let body = req.into_body().collect().await?.to_bytes();
                    let mut out = head.into_bytes();
                    out.extend_from_slice(&body);
                    Ok::<_, hyper::Error>(cbor_response(StatusCode::CREATED, out))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn pinned_certificate_round_trip_reuses_the_connection() {
    let pems = Pems::new();
    let (cert, key) = pems.server();
    let (url, accepted) = echo_server(server_config(&cert, &key, None).unwrap()).await;
    let transport = Transport::new(&url, Some(&cert)).unwrap();
    for i in 0..3 {
        let body = format!("report {i}").into_bytes();
        let answer = transport
            .send(Method::POST, "/v1/reports", &[], body)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::CREATED);
        assert_eq!(
            answer.body,
            Bytes::from(format!("POST /base/v1/reports report {i}"))
        );
        assert_eq!(
            answer.headers.get("content-type").unwrap(),
            hotline_protocol::MEDIA_TYPE
        );
    }
    // Requests are sequential, so the one kept-alive connection serves all.
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unpinned_certificate_is_refused() {
    let pems = Pems::new();
    let (cert, key) = pems.server();
    let (url, _) = echo_server(server_config(&cert, &key, None).unwrap()).await;
    // Trusting the web PKI only: the self-signed certificate does not verify.
    let err = Transport::new(&url, None)
        .unwrap()
        .send(Method::GET, "/", &[], Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Handshake { .. }), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn mutual_tls_needs_a_certificate_from_the_client_ca() {
    let pems = Pems::new();
    let (cert, key) = pems.server();
    let (ca, client_cert, client_key) = pems.client_ca();
    let (url, _) = echo_server(server_config(&cert, &key, Some(&ca)).unwrap()).await;

    let with = Transport::with_client_cert(&url, Some(&cert), Some((&client_cert, &client_key)))
        .unwrap()
        .send(Method::POST, "/deliver", &[], b"sealed".to_vec())
        .await
        .unwrap();
    assert_eq!(with.status, StatusCode::CREATED);
    assert_eq!(with.body, Bytes::from_static(b"POST /base/deliver sealed"));

    // Without a client certificate the server aborts the handshake; with
    // TLS 1.3 the client learns it only when it reads, so the error is
    // either the handshake's or the first request's.
    let without = Transport::new(&url, Some(&cert))
        .unwrap()
        .send(Method::POST, "/deliver", &[], b"sealed".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(
            without,
            TransportError::Handshake { .. } | TransportError::Http(_)
        ),
        "{without}"
    );
}

fn missing(pems: &Pems) -> PathBuf {
    pems.dir.path().join("absent.pem")
}

fn names(err: &TlsConfigError, path: &Path) -> bool {
    err.to_string().contains(&path.display().to_string())
}

#[test]
fn bad_pem_files_are_reported_with_their_path() {
    let pems = Pems::new();
    let (cert, key) = pems.server();

    let absent = missing(&pems);
    let err = server_config(&absent, &key, None).unwrap_err();
    assert!(
        matches!(err, TlsConfigError::Pem { .. }) && names(&err, &absent),
        "{err}"
    );
    let err = server_config(&cert, &absent, None).unwrap_err();
    assert!(
        matches!(err, TlsConfigError::Pem { .. }) && names(&err, &absent),
        "{err}"
    );
    let err = server_config(&cert, &key, Some(&absent)).unwrap_err();
    assert!(
        matches!(err, TlsConfigError::Pem { .. }) && names(&err, &absent),
        "{err}"
    );

    let empty = pems.write("empty.pem", "");
    let err = server_config(&empty, &key, None).unwrap_err();
    assert!(
        matches!(err, TlsConfigError::NoCertificate { .. }) && names(&err, &empty),
        "{err}"
    );

    // A key that is not the certificate's.
    let other_key = pems.write("other.key", &KeyPair::generate().unwrap().serialize_pem());
    let err = server_config(&cert, &other_key, None).unwrap_err();
    assert!(matches!(err, TlsConfigError::Rustls(_)), "{err}");
}

#[test]
fn bad_urls_and_ca_files_are_not_retryable() {
    let pems = Pems::new();
    for url in ["ftp://example.invalid", "no scheme", "https://"] {
        let err = Transport::new(url, None).unwrap_err();
        assert!(matches!(err, TransportError::Url(_)), "{url}: {err}");
        assert!(!err.is_retryable());
    }
    let err = Transport::new("https://127.0.0.1", Some(&missing(&pems))).unwrap_err();
    assert!(matches!(err, TransportError::TlsSetup(_)), "{err}");
    assert!(!err.is_retryable());
}
