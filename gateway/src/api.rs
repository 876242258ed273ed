//! The public endpoints of protocol v1 and the operator's: health, metrics,
//! the key document, the intake of sealed reports and receipt lookups.
//! Handlers return `Result<Resp, ApiError>`; `routes.rs` turns every error
//! into the protocol's error body in one place. Staff endpoints are in
//! `staff.rs`.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Request, StatusCode};

use hotline_protocol::{Channel, Envelope, Reason};

use crate::app::{App, Peer};
use crate::error::ApiError;
use crate::http::{self, Resp};

/// `GET /healthz`: the process answers.
pub fn healthz() -> Resp {
    http::text(StatusCode::OK, "ok\n")
}

/// `GET /v1/key`: the signed key document, as loaded at start.
pub fn key(app: &App) -> Resp {
    http::cbor(StatusCode::OK, app.keys.signed.clone())
}

/// `GET /metrics`: for the configured token, else only from loopback.
pub fn metrics(app: &App, req: &Request<Incoming>, peer: Peer) -> Result<Resp, ApiError> {
    let allowed = match &app.metrics_token {
        Some(t) => t.allows(req.headers()),
        None => peer.ip.is_loopback(),
    };
    if !allowed {
        return Err(ApiError::unauthenticated());
    }
    let body = app
        .metrics
        .render(app.store.count(), app.store.size_bytes().unwrap_or(0));
    let mut resp = http::text(StatusCode::OK, &body);
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(resp)
}

/// `POST /v1/reports`: check the envelope (never the plaintext, which the
/// gateway cannot read), then answer 201 only once the record is durable.
pub async fn submit(app: &App, req: Request<Incoming>, peer: Peer) -> Result<Resp, ApiError> {
    http::require_cbor(req.headers())?;
    app.check_rate(peer)?;
    let idempotency_key = idempotency_key(req.headers())?;
    let channel = Channel::of_submission(
        req.headers()
            .get(hotline_protocol::headers::CHANNEL)
            .map(HeaderValue::as_bytes),
    );
    let body = http::read_body(req, app.limits.max_body_bytes, app.limits.body_timeout).await?;
    let envelope = Envelope::decode(&body)?;
    if envelope.kid != app.keys.document.kid() {
        return Err(ApiError::new(
            Reason::UnknownKid,
            "the report is sealed to a key this gateway does not serve; fetch /v1/key again",
        ));
    }
    app.store_envelope(body.to_vec(), channel, idempotency_key)
        .await
        .map(|answer| http::cbor(StatusCode::CREATED, answer.encode()))
}

/// `GET /v1/receipts/{code}`.
pub async fn receipt(app: &App, code: &str, peer: Peer) -> Result<Resp, ApiError> {
    let answer = app.receipt_status(code, peer).await?;
    Ok(http::cbor(StatusCode::OK, answer.encode()))
}

/// Parses `Idempotency-Key`: 128 random bits, base64url without padding.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<[u8; 16]>, ApiError> {
    use base64::Engine as _;
    let Some(value) = headers.get(hotline_protocol::headers::IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            Reason::BadIdempotencyKey,
            "Idempotency-Key must be 16 random bytes in base64url without padding",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| bad())?;
    raw.try_into().map(Some).map_err(|_| bad())
}
