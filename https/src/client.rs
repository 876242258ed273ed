//! A minimal HTTPS client over rustls (ring provider) and hyper's HTTP/1.1
//! client, with a whole-request timeout and a few kept-alive connections.
//!
//! Small on purpose: apps, the staff tool and the gateway's forwarder need
//! exactly "send these bytes, get status and bytes back", with their own
//! trust anchors (a pinned self-signed certificate, or the web PKI) and
//! optionally a client certificate for mutual TLS. HTTP/1.1 only: each
//! request is small and the pool gives parallelism, so HTTP/2's
//! multiplexing would add code for no gain here.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest answer body a client reads, so a hostile or broken server cannot
/// make a client (or the gateway's forwarder) allocate without bound.
pub const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// Idle kept-alive connections a transport (and its clones) keeps.
const MAX_IDLE: usize = 8;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Why a request did not get an answer. `is_retryable` tells a queue whether
/// to try again later.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The base URL is not `http(s)://host[:port][/path]`.
    #[error("bad URL {0:?}: use https://host[:port][/path]")]
    Url(String),
    /// A CA or client certificate file cannot be used.
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    /// No TCP connection (the server is down or unreachable).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port` tried.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS handshake failed (for example, a certificate that does not
    /// match the pin).
    #[error("TLS handshake with {host} failed: {source}")]
    Handshake {
        /// The server's name.
        host: String,
        /// What rustls reported.
        source: std::io::Error,
    },
    /// The HTTP exchange broke off or was malformed.
    #[error("HTTP: {0}")]
    Http(String),
    /// The whole request took longer than the transport's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer exceeded [`MAX_RESPONSE`]; asking again will not help.
    #[error("answer larger than {MAX_RESPONSE} bytes")]
    TooLarge,
}

impl TransportError {
    /// Network trouble that may pass; configuration mistakes do not.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            TransportError::Url(_) | TransportError::TlsSetup(_) | TransportError::TooLarge
        )
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

/// Where to send requests and whom to trust. Clones share their idle
/// connections, so a forwarder's parallel deliveries reuse TLS sessions
/// instead of paying a handshake per report.
#[derive(Clone)]
pub struct Transport {
    scheme_https: bool,
    host: String,
    port: u16,
    prefix: String,
    tls: Arc<ClientConfig>,
    timeout: Duration,
    idle: Arc<Mutex<Vec<Sender>>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("https", &self.scheme_https)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for `base_url`. With `ca_pem`, only that certificate (or CA)
    /// is trusted, which pins a self-signed gateway; without, the web PKI.
    pub fn new(base_url: &str, ca_pem: Option<&Path>) -> Result<Transport, TransportError> {
        Self::with_client_cert(base_url, ca_pem, None)
    }

    /// Like [`Transport::new`], presenting a client certificate (mutual TLS):
    /// `(certificate chain PEM, private key PEM)`.
    pub fn with_client_cert(
        base_url: &str,
        ca_pem: Option<&Path>,
        client_cert: Option<(&Path, &Path)>,
    ) -> Result<Transport, TransportError> {
        let uri: Uri = base_url
            .parse()
            .map_err(|_| TransportError::Url(base_url.to_owned()))?;
        let scheme_https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(TransportError::Url(base_url.to_owned())),
        };
        let host = uri
            .host()
            .ok_or_else(|| TransportError::Url(base_url.to_owned()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme_https { 443 } else { 80 });
        let prefix = uri.path().trim_end_matches('/').to_owned();
        let mut roots = RootCertStore::empty();
        match ca_pem {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| TransportError::TlsSetup(format!("{}: {e}", path.display())))?;
                for c in certs {
                    roots.add(c).map_err(|e| {
                        TransportError::TlsSetup(format!("{}: {e}", path.display()))
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| TransportError::TlsSetup(e.to_string()))?
                .with_root_certificates(roots);
        let mut config = match client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| TransportError::TlsSetup(format!("{}: {e}", cert.display())))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| TransportError::TlsSetup(format!("{}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TransportError::TlsSetup(e.to_string()))?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Transport {
            scheme_https,
            host,
            port,
            prefix,
            tls: Arc::new(config),
            timeout: Duration::from_secs(30),
            idle: Arc::default(),
        })
    }

    /// Sets the whole-request timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, TransportError> {
        tokio::time::timeout(self.timeout, self.send_inner(method, path, headers, body))
            .await
            .map_err(|_| TransportError::Timeout(self.timeout))?
    }

    async fn send_inner(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, TransportError> {
        let body = Bytes::from(body);
        // A kept-alive connection may have been closed by the server since;
        // a failure on one is retried once on a fresh connection. Every
        // request of the protocol may be repeated (submissions carry an
        // Idempotency-Key, deliveries the record id, acks are idempotent).
        if let Some(mut sender) = self.take_idle() {
            let req = self.request(&method, path, headers, body.clone())?;
            if let Ok(answer) = round_trip(&mut sender, req).await {
                self.put_idle(sender);
                return Ok(answer);
            }
        }
        let mut sender = self.connect().await?;
        let answer = round_trip(&mut sender, self.request(&method, path, headers, body)?).await?;
        self.put_idle(sender);
        Ok(answer)
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: Sender) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if !sender.is_closed() && idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }

    fn request(
        &self,
        method: &Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, TransportError> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{}", self.prefix, path))
            .body(Full::new(body))
            .map_err(|e| TransportError::Http(e.to_string()))?;
        let host_header =
            if (self.scheme_https && self.port == 443) || (!self.scheme_https && self.port == 80) {
                self.host_for_socket()
            } else {
                format!("{}:{}", self.host_for_socket(), self.port)
            };
        let h = req.headers_mut();
        h.insert(
            HOST,
            HeaderValue::from_str(&host_header).map_err(|e| TransportError::Http(e.to_string()))?,
        );
        for (k, v) in headers {
            h.insert(
                HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| TransportError::Http(e.to_string()))?,
                HeaderValue::from_str(v).map_err(|e| TransportError::Http(e.to_string()))?,
            );
        }
        if !h.contains_key(CONTENT_TYPE) {
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(hotline_protocol::MEDIA_TYPE),
            );
        }
        Ok(req)
    }

    /// A new connection, TLS when the URL says https.
    async fn connect(&self) -> Result<Sender, TransportError> {
        let addr = format!("{}:{}", self.host_for_socket(), self.port);
        let tcp = TcpStream::connect(&addr)
            .await
            .map_err(|source| TransportError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        if self.scheme_https {
            let name = ServerName::try_from(self.host.clone())
                .map_err(|_| TransportError::Url(self.host.clone()))?;
            let tls = TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|source| TransportError::Handshake {
                    host: self.host.clone(),
                    source,
                })?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    }

    fn host_for_socket(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

async fn handshake<IO>(io: TokioIo<IO>) -> Result<Sender, TransportError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| TransportError::Http(e.to_string()))?;
    // The connection task ends by itself once the sender is dropped or the
    // server closes the connection.
    tokio::spawn(conn);
    Ok(sender)
}

async fn round_trip(
    sender: &mut Sender,
    req: Request<Full<Bytes>>,
) -> Result<Answer, TransportError> {
    sender
        .ready()
        .await
        .map_err(|e| TransportError::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| TransportError::Http(e.to_string()))?;
    let (parts, body) = resp.into_parts();
    let body = Limited::new(body, MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                TransportError::TooLarge
            } else {
                TransportError::Http(e.to_string())
            }
        })?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
