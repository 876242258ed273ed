//! The HTTP API of protocol v1: routing, the intake of sealed reports, the
//! staff endpoints, health and metrics. Handlers return `Result<Response,
//! ApiError>`; every error becomes the protocol's error body in one place.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hotline_protocol::{
    AckAnswer, AckRequest, Envelope, ReceiptAnswer, ReceiptCode, StaffItem, StaffList, SubmitAnswer,
};
use hotline_store::{Appended, NewRecord, ReceiptStatus, Store};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::TokenHashes;
use crate::config::LimitsConfig;
use crate::error::ApiError;
use crate::keyset::KeySet;
use crate::metrics::Metrics;
use crate::ratelimit::ClientLimiter;

/// Largest staff ack body.
const MAX_ACK_BODY: usize = 256 * 1024;
/// Default and largest page of the staff list.
const STAFF_PAGE: usize = 100;
const STAFF_PAGE_MAX: usize = 1000;

/// Everything a request handler needs, shared by all connections.
#[derive(Debug)]
pub struct App {
    /// The served key document.
    pub keys: KeySet,
    /// The durable queue.
    pub store: Arc<Store>,
    /// The group-commit writer in front of the store.
    pub commits: hotline_store::committer::CommitHandle,
    /// Per-client limits.
    pub limiter: ClientLimiter,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Staff bearer tokens.
    pub staff: TokenHashes,
    /// The /metrics token, if one is configured.
    pub metrics_token: Option<TokenHashes>,
    /// Input bounds.
    pub limits: LimitsConfig,
    /// Randomness for ids and receipt codes.
    pub rng: SystemRandom,
}

/// Where a request came from, as far as handlers may know: only whether it
/// is local (for /metrics) and the address for the rate limiter, which
/// never stores or logs it.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The TCP peer address.
    pub ip: IpAddr,
}

type Resp = Response<Full<Bytes>>;

impl App {
    /// Answers one request. Never fails: errors become error responses.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: Peer) -> Resp {
        let started = Instant::now();
        let (route, result) = self.route(req, peer).await;
        let resp = match result {
            Ok(resp) => resp,
            Err(e) => {
                self.metrics.rejection(e.reason);
                e.into_response()
            }
        };
        self.metrics.request(route, resp.status().as_u16());
        tracing::debug!(
            route,
            status = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        with_common_headers(resp)
    }

    async fn route(
        self: &Arc<Self>,
        req: Request<Incoming>,
        peer: Peer,
    ) -> (&'static str, Result<Resp, ApiError>) {
        if req.headers().len() > self.limits.max_headers {
            return (
                "headers",
                Err(ApiError::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "too_many_headers",
                    format!("at most {} headers are accepted", self.limits.max_headers),
                )),
            );
        }
        let req = match crate::web::handle(self, req, peer).await {
            Ok(answered) => return answered,
            Err(req) => req,
        };
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        match (method, path.as_str()) {
            (Method::GET, "/healthz") => ("healthz", Ok(text(StatusCode::OK, "ok\n"))),
            (Method::GET, "/metrics") => ("metrics", self.metrics_page(&req, peer)),
            (Method::GET, "/v1/key") => ("key", Ok(cbor(StatusCode::OK, self.keys.signed.clone()))),
            (Method::POST, "/v1/reports") => ("reports", self.submit(req, peer).await),
            (Method::GET, "/v1/staff/reports") => ("staff_list", self.staff_list(&req).await),
            (Method::POST, "/v1/staff/ack") => ("staff_ack", self.staff_ack(req).await),
            (Method::GET, "/v1/staff/dead") => ("staff_dead", self.staff_dead(&req).await),
            (Method::GET, p) if p.starts_with("/v1/receipts/") => (
                "receipts",
                self.receipt(&p["/v1/receipts/".len()..], peer).await,
            ),
            (
                _,
                "/healthz" | "/metrics" | "/v1/key" | "/v1/reports" | "/v1/staff/reports"
                | "/v1/staff/ack" | "/v1/staff/dead",
            ) => (
                "method",
                Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this method is not allowed here",
                )),
            ),
            _ => ("other", Err(ApiError::not_found())),
        }
    }

    fn metrics_page(&self, req: &Request<Incoming>, peer: Peer) -> Result<Resp, ApiError> {
        let allowed = match &self.metrics_token {
            Some(t) => t.allows(req.headers()),
            None => peer.ip.is_loopback(),
        };
        if !allowed {
            return Err(ApiError::unauthenticated());
        }
        let body = self
            .metrics
            .render(self.store.count(), self.store.size_bytes().unwrap_or(0));
        let mut resp = text(StatusCode::OK, &body);
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        Ok(resp)
    }

    /// `POST /v1/reports`: check the envelope (never the plaintext, which the
    /// gateway cannot read), then answer 201 only once the record is durable.
    async fn submit(&self, req: Request<Incoming>, peer: Peer) -> Result<Resp, ApiError> {
        require_cbor(req.headers())?;
        self.check_rate(peer)?;
        let idempotency_key = idempotency_key(req.headers())?;
        let req_channel = req.headers().get("hotline-channel").cloned();
        let body = read_body(req, self.limits.max_body_bytes, &self.limits).await?;
        let envelope = Envelope::decode(&body)?;
        if envelope.kid != self.keys.document.kid() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_kid",
                "the report is sealed to a key this gateway does not serve; fetch /v1/key again",
            ));
        }
        self.store_envelope(body.to_vec(), channel(req_channel), idempotency_key)
            .await
            .map(|answer| cbor(StatusCode::CREATED, answer.encode()))
    }

    /// The per-client limit shared by every public endpoint that costs the
    /// gateway work or could be used to probe (reports, the form, receipts).
    pub fn check_rate(&self, peer: Peer) -> Result<(), ApiError> {
        self.limiter.check(peer.ip).map_err(|wait| {
            ApiError::retry(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this address; please wait and send again",
                wait.as_secs() + 1,
            )
        })
    }

    /// Queues an envelope for the writer and waits until it is durable.
    pub async fn store_envelope(
        &self,
        envelope: Vec<u8>,
        channel: &str,
        idempotency_key: Option<[u8; 16]>,
    ) -> Result<SubmitAnswer, ApiError> {
        let record = NewRecord {
            id: self.new_id()?,
            receipt: ReceiptCode::generate(&self.rng)
                .map_err(|_| internal("random number generator failed"))?
                .to_string(),
            received_at: crate::unix_now(),
            channel: channel.to_owned(),
            envelope,
            idempotency_key,
        };
        let (id, receipt) = (record.id.clone(), record.receipt.clone());
        let pending = self.commits.submit(record).map_err(|_| overloaded())?;
        match pending.await {
            Ok(Appended::Stored { .. }) => {
                self.metrics.accepted();
                Ok(SubmitAnswer { id, receipt })
            }
            Ok(Appended::Duplicate { id, receipt }) => Ok(SubmitAnswer { id, receipt }),
            Err(e) => Err(store_error(e)),
        }
    }

    /// `GET /v1/receipts/{code}`.
    async fn receipt(&self, code: &str, peer: Peer) -> Result<Resp, ApiError> {
        let answer = self.receipt_status(code, peer).await?;
        Ok(cbor(StatusCode::OK, answer.encode()))
    }

    /// The status of a receipt code as people type it. A malformed code is
    /// looked up as a fixed dummy so every answer takes one store lookup,
    /// and unknown, malformed and expired codes all answer `unknown`.
    pub async fn receipt_status(&self, code: &str, peer: Peer) -> Result<ReceiptAnswer, ApiError> {
        self.check_rate(peer)?;
        let code = percent_decode_digits(code);
        let (key, valid) = match code.parse::<ReceiptCode>() {
            Ok(c) => (c.to_string(), true),
            Err(_) => ("0000-0000-0000-0000".to_owned(), false),
        };
        let store = self.store.clone();
        let status = tokio::task::spawn_blocking(move || store.receipt_status(&key))
            .await
            .map_err(|_| internal("receipt task failed"))?
            .map_err(store_error)?;
        let answer = match status.filter(|_| valid) {
            Some(ReceiptStatus::Queued) => ReceiptAnswer {
                status: "queued".into(),
                day: None,
            },
            Some(ReceiptStatus::Delivered { day }) => ReceiptAnswer {
                status: "delivered".into(),
                day: Some(u64::from(day)),
            },
            None => ReceiptAnswer {
                status: "unknown".into(),
                day: None,
            },
        };
        Ok(answer)
    }

    fn new_id(&self) -> Result<String, ApiError> {
        let mut raw = [0u8; 16];
        self.rng
            .fill(&mut raw)
            .map_err(|_| internal("random number generator failed"))?;
        Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
    }

    async fn staff_list(&self, req: &Request<Incoming>) -> Result<Resp, ApiError> {
        if !self.staff.allows(req.headers()) {
            return Err(ApiError::unauthenticated());
        }
        let (mut after, mut limit) = (0u64, STAFF_PAGE);
        for pair in req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "after" => {
                    after = v.parse().map_err(|_| {
                        ApiError::bad_request("bad_cursor", "after must be a cursor from `next`")
                    })?
                }
                "limit" => {
                    limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=STAFF_PAGE_MAX).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request("bad_limit", "limit must be between 1 and 1000")
                        })?
                }
                _ => {}
            }
        }
        let store = self.store.clone();
        let records = tokio::task::spawn_blocking(move || store.read_after(after, limit))
            .await
            .map_err(|_| internal("list task failed"))?
            .map_err(store_error)?;
        let next = (records.len() == limit)
            .then(|| records.last().map(|r| r.seq.to_string()))
            .flatten();
        let list = StaffList {
            reports: records
                .into_iter()
                .map(|r| StaffItem {
                    id: r.id,
                    received_at: r.received_at,
                    channel: r.channel,
                    envelope: r.envelope,
                })
                .collect(),
            next,
        };
        Ok(cbor(StatusCode::OK, list.encode()))
    }

    /// `GET /v1/staff/dead?limit=N`: records the backend refused for good,
    /// with the reason; the staff list's item shape plus `"reason"`. No
    /// cursor: ack the records (which deletes them) to see the next ones.
    async fn staff_dead(&self, req: &Request<Incoming>) -> Result<Resp, ApiError> {
        if !self.staff.allows(req.headers()) {
            return Err(ApiError::unauthenticated());
        }
        let mut limit = STAFF_PAGE;
        let query = req.uri().query().unwrap_or("");
        for (k, v) in query.split('&').filter_map(|p| p.split_once('=')) {
            if k == "limit" {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=STAFF_PAGE_MAX).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request("bad_limit", "limit must be between 1 and 1000")
                    })?;
            }
        }
        let store = self.store.clone();
        let dead = tokio::task::spawn_blocking(move || store.list_dead(limit))
            .await
            .map_err(|_| internal("dead-letter task failed"))?
            .map_err(store_error)?;
        let mut w = hotline_protocol::cbor::Writer::new();
        w.map(2).text("reports").array(dead.len());
        for d in &dead {
            w.map(5)
                .text("id")
                .text(&d.record.id)
                .text("received_at")
                .uint(d.record.received_at)
                .text("channel")
                .text(&d.record.channel)
                .text("envelope")
                .bytes(&d.record.envelope)
                .text("reason")
                .text(&d.reason);
        }
        w.text("next").null();
        Ok(cbor(StatusCode::OK, w.into_bytes()))
    }

    async fn staff_ack(&self, req: Request<Incoming>) -> Result<Resp, ApiError> {
        if !self.staff.allows(req.headers()) {
            return Err(ApiError::unauthenticated());
        }
        require_cbor(req.headers())?;
        let body = read_body(req, MAX_ACK_BODY, &self.limits).await?;
        let ack = AckRequest::decode(&body)?;
        if let Some(bad) = ack.ids.iter().find(|id| !is_record_id(id)) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_ids",
                format!("{bad:?} is not a record id (32 hex digits); nothing was deleted"),
            ));
        }
        let store = self.store.clone();
        let acked = tokio::task::spawn_blocking(move || store.delete(&ack.ids))
            .await
            .map_err(|_| internal("ack task failed"))?
            .map_err(store_error)?;
        Ok(cbor(StatusCode::OK, AckAnswer { acked }.encode()))
    }
}

/// The channel of an API submission: `web` when the public form's script
/// says it sealed the report in the browser, else `api`. Only these two
/// values can come from a client, so the header cannot smuggle anything
/// into the record.
fn channel(header: Option<HeaderValue>) -> &'static str {
    match header.as_ref().map(HeaderValue::as_bytes) {
        Some(b"web") => "web",
        _ => "api",
    }
}

/// Record ids are 32 lowercase hex digits ([`App::new_id`]).
fn is_record_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Receipt codes are typed by people: `%20` and `+` may stand for spaces.
fn percent_decode_digits(code: &str) -> String {
    code.replace("%20", " ").replace('+', " ")
}

fn require_cbor(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if essence.as_deref() == Some(hotline_protocol::MEDIA_TYPE) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "wrong_media_type",
            "send the envelope as application/cbor",
        ))
    }
}

/// Parses `Idempotency-Key`: 128 random bits, base64url without padding.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<[u8; 16]>, ApiError> {
    use base64::Engine as _;
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "bad_idempotency_key",
            "Idempotency-Key must be 16 random bytes in base64url without padding",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| bad())?;
    raw.try_into().map(Some).map_err(|_| bad())
}

/// Reads a whole body within `max` bytes and the body timeout.
pub async fn read_body(
    req: Request<Incoming>,
    max: usize,
    limits: &LimitsConfig,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {max} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let collect = Limited::new(req.into_body(), max).collect();
    match tokio::time::timeout(limits.body_timeout, collect).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the body took too long to arrive",
        )),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(_)) => Err(ApiError::bad_request(
            "body_incomplete",
            "the body was cut short",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn overloaded() -> ApiError {
    ApiError::retry(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "the gateway is busy; please send again shortly",
        2,
    )
}

fn internal(message: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

/// Maps store failures to answers; the detail goes to the log, not the client.
pub fn store_error(e: hotline_store::StoreError) -> ApiError {
    match e {
        hotline_store::StoreError::Full => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "the gateway's storage is full; the operator has been told",
        ),
        other => {
            tracing::error!(error = %other, "store failure");
            ApiError::retry(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the report could not be stored; please send again",
                5,
            )
        }
    }
}

fn cbor(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(hotline_protocol::MEDIA_TYPE),
    );
    resp
}

fn text(status: StatusCode, body: &str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_owned())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Headers every answer carries: nothing cached, nothing referred, nothing sniffed.
fn with_common_headers(mut resp: Resp) -> Resp {
    let h = resp.headers_mut();
    h.entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000"),
    );
    resp
}
