//! Rejections: each one a status, a stable machine-readable reason and a
//! sentence, sent as the protocol's CBOR error body and counted in /metrics.

use bytes::Bytes;
use hotline_protocol::{DecodeError, ErrorBody, Reason};
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};

/// A rejected request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The reason, listed in SPEC.md.
    pub reason: &'static str,
    /// A sentence for people.
    pub message: String,
    /// Seconds to wait before trying again, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A rejection without Retry-After.
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A rejection the client should retry after `secs` seconds.
    pub fn retry(status: StatusCode, reason: &'static str, message: &str, secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs.max(1)),
            ..ApiError::new(status, reason, message)
        }
    }

    /// 400 for a request the gateway cannot parse.
    pub fn bad_request(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, reason, message)
    }

    /// 404.
    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// 401 for the staff API.
    pub fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token is required",
        )
    }

    /// 405: the path exists, the method does not (the caller adds `Allow`).
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed here",
        )
    }

    /// 503 when the writer's queue is full: a burst, worth retrying soon.
    pub fn overloaded() -> Self {
        ApiError::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the gateway is busy; please send again shortly",
            2,
        )
    }

    /// 500 for a failure of the gateway itself (a dead task, no randomness).
    pub fn internal(message: &str) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The response carrying this error.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        // Until ApiError carries a Reason itself: every reason the gateway
        // names is a Reason (SPEC.md's tables are checked against it).
        let parsed = self.reason.parse::<Reason>();
        debug_assert!(parsed.is_ok(), "reason {:?} is not a Reason", self.reason);
        let reason = parsed.unwrap_or(Reason::Internal);
        let body = ErrorBody::new(reason, self.message).encode();
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(hotline_protocol::MEDIA_TYPE),
        );
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<hotline_store::StoreError> for ApiError {
    /// A full store is 507, anything else a retryable 503; the detail goes
    /// to the log, never to the client.
    fn from(e: hotline_store::StoreError) -> Self {
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
}

impl From<DecodeError> for ApiError {
    /// Well-formed messages of another version or suite are 422; anything
    /// else that does not decode is 400.
    fn from(e: DecodeError) -> Self {
        let status = match e {
            DecodeError::UnsupportedSuite(_) | DecodeError::UnsupportedVersion(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            DecodeError::InputTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code().as_str(), e.to_string())
    }
}
