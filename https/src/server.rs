//! Server-side pieces used by both servers of the project (the gateway and
//! `hotline-staff receive`), so the two cannot drift apart on TLS versions,
//! ALPN or how they stop.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// Why a server's TLS configuration could not be built. Each variant names
/// the file at fault, so an operator can fix the configuration from the
/// message alone.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A PEM file is missing, unreadable or malformed.
    #[error("{}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{}: no certificate in the file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate of the client CA file cannot be used as a trust anchor.
    #[error("{}: {source}", path.display())]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// Why rustls refused it.
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built (for example, no
    /// usable trust anchor).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// rustls refused the certificate and key (for example, a key that does
    /// not match the certificate).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

fn pem_error(path: &Path) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsConfigError + '_ {
    |source| TlsConfigError::Pem {
        path: path.to_owned(),
        source,
    }
}

/// The TLS configuration of a server: the certificate chain and key from PEM
/// files, TLS 1.3 and 1.2 with ring, HTTP/2 and HTTP/1.1 offered by ALPN.
/// With `client_ca`, only clients presenting a certificate issued by that CA
/// complete the handshake (mutual TLS, as a hotline's push endpoint may
/// require of the gateway).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(pem_error(cert))?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(pem_error(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(pem_error(ca))?
            {
                roots.add(c).map_err(|source| TlsConfigError::ClientCa {
                    path: ca.to_owned(),
                    source,
                })?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots.into(), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, private)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Resolves at the first SIGTERM or SIGINT, so a server can stop accepting
/// and finish its open requests instead of dying mid-write.
///
/// The handlers are installed when this is called, not when the future is
/// first polled, so a signal that arrives in between is not lost. Installing
/// them can fail (the OS refuses); the caller decides whether to carry on
/// without them. Call it from within a Tokio runtime (tokio panics
/// otherwise).
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// An answer whose body is CBOR (the protocol's media type), the one
/// content type both servers answer API requests with.
pub fn cbor_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(hotline_protocol::MEDIA_TYPE),
    );
    resp
}
