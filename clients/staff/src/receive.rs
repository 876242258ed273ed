//! `receive`: a minimal national-hotline backend for push mode.
//!
//! An HTTPS endpoint (TLS 1.3/1.2 with rustls, HTTP/1.1 and HTTP/2) that
//! accepts the gateway's `POST` of one envelope with `Idempotency-Key: <id>`
//! on any path, and answers:
//!
//! - 201 once the report is opened and durably written to `OUT/<id>.json`;
//! - 200 if `OUT/<id>.json` already exists (a retry: nothing is written);
//! - 422 `undecryptable` if the envelope does not open with the hotline key
//!   (the gateway then dead-letters the record);
//! - 400 / 413 / 415 for a request that is not a well-formed delivery;
//! - 408 if the body was cut short or too slow, 503 `not_stored` if the
//!   report could not be written (the gateway retries both).
//!
//! The headers are read by the protocol's rules ([`hotline_protocol::headers`]);
//! `Hotline-Received-At` and `Hotline-Channel`, when sent and valid, go into the file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hotline_https::cbor_response;
use hotline_protocol::{headers as push, ErrorBody, HpkeSecretKey, Reason, RecordId};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::archive::{Archive, Kept, Meta};
use crate::StaffError;

/// Largest delivery body accepted.
pub const MAX_BODY: usize = 1 << 20;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// What `receive` needs.
#[derive(Debug)]
pub struct ReceiveOptions {
    /// Address to listen on (port 0 picks one).
    pub listen: SocketAddr,
    /// PEM certificate chain of this endpoint.
    pub cert: std::path::PathBuf,
    /// PEM private key of the certificate.
    pub cert_key: std::path::PathBuf,
    /// If set, clients must present a certificate issued by this CA (mutual TLS).
    pub client_ca: Option<std::path::PathBuf>,
    /// The hotline private key.
    pub key: HpkeSecretKey,
    /// Where reports go.
    pub out: std::path::PathBuf,
}

struct State {
    archive: Archive,
    key: HpkeSecretKey,
}

/// Binds the listener; the caller prints the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StaffError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StaffError::Usage(format!("cannot listen on {addr}: {e}")))
}

/// Serves until SIGTERM or SIGINT.
pub async fn serve(listener: TcpListener, opts: ReceiveOptions) -> Result<(), StaffError> {
    let tls = hotline_https::server_config(&opts.cert, &opts.cert_key, opts.client_ca.as_deref())
        .map_err(|e| StaffError::Tls(e.to_string()))?;
    let tls = TlsAcceptor::from(tls);
    let state = Arc::new(State {
        archive: Archive::open(&opts.out)?,
        key: opts.key,
    });
    let stop = hotline_https::shutdown_signal()
        .map_err(|e| StaffError::Usage(format!("cannot install signal handlers: {e}")))?;
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => return Ok(()),
        };
        let tls = tls.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await
            else {
                return;
            };
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Resp = Response<Full<Bytes>>;

/// An error answer: the reason decides the status.
fn error(reason: Reason, message: &str) -> Resp {
    let status = StatusCode::from_u16(reason.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    cbor_response(status, ErrorBody::new(reason, message).encode())
}

fn kept(status: StatusCode, id: &RecordId, stored: bool) -> Resp {
    let mut w = hotline_protocol::cbor::Writer::new();
    w.map(2).text("id").text(id).text("stored");
    w.uint(u64::from(stored));
    cbor_response(status, w.into_bytes())
}

async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Resp {
    if req.method() == Method::GET && req.uri().path() == "/healthz" {
        return cbor_response(StatusCode::OK, Vec::new());
    }
    if req.method() != Method::POST {
        return error(Reason::MethodNotAllowed, "POST one envelope");
    }
    let headers = req.headers();
    let cbor = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(hotline_protocol::MEDIA_TYPE));
    if !cbor {
        return error(
            Reason::WrongMediaType,
            "send the envelope as application/cbor",
        );
    }
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let Some(id) = header(push::IDEMPOTENCY_KEY).and_then(push::parse_record_id) else {
        return error(
            Reason::BadIdempotencyKey,
            "Idempotency-Key must be the record id: 32 lower-case hex digits",
        );
    };
    let received_at = header(push::RECEIVED_AT).and_then(push::parse_received_at);
    let channel = header(push::CHANNEL).and_then(push::parse_channel);
    if state.archive.contains(&id) {
        println!("duplicate {id}");
        return kept(StatusCode::OK, &id, false);
    }
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return error(Reason::BodyTooLarge, "the envelope is larger than 1 MiB")
        }
        // Cut short or too slow: the gateway sends it again (408 is retried).
        _ => return error(Reason::BodyTimeout, "the body was cut short or too slow"),
    };
    let meta = Meta {
        id: id.clone(),
        received_at,
        channel,
        dead_reason: None,
    };
    let st = state.clone();
    let result =
        tokio::task::spawn_blocking(move || st.archive.keep_openable(&meta, &body, &st.key)).await;
    match result {
        Ok(Ok(Kept::Written)) => {
            println!("stored {id}");
            kept(StatusCode::CREATED, &id, true)
        }
        Ok(Ok(Kept::AlreadyPresent)) => {
            println!("duplicate {id}");
            kept(StatusCode::OK, &id, false)
        }
        Ok(Ok(Kept::Undecryptable(why))) => {
            eprintln!("undecryptable {id}: {why}");
            error(
                Reason::Undecryptable,
                &format!("the envelope does not open with the hotline key: {why}"),
            )
        }
        Ok(Err(e)) => {
            eprintln!("cannot keep {id}: {e}");
            let mut resp = error(
                Reason::NotStored,
                "the report could not be written; send it again",
            );
            resp.headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("5"));
            resp
        }
        Err(_) => error(Reason::Internal, "the write task failed"),
    }
}
