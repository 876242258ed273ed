//! Rejections: each one a protocol [`Reason`] (which knows its HTTP status),
//! a sentence, and for a burst a Retry-After, sent as the protocol's CBOR
//! error body and counted in /metrics under the reason's name.

use bytes::Bytes;
use hotline_protocol::{DecodeError, ErrorBody, Reason};
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};

/// A rejected request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The reason, listed in SPEC.md with its status.
    pub reason: Reason,
    /// A sentence for people.
    pub message: String,
    /// Seconds to wait before trying again, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A rejection without Retry-After.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        ApiError {
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A rejection the client should retry after `secs` seconds.
    pub fn retry(reason: Reason, message: &str, secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs.max(1)),
            ..ApiError::new(reason, message)
        }
    }

    /// The HTTP status: the one the protocol gives the reason.
    pub fn status(&self) -> StatusCode {
        // Every Reason's status is a valid code (a protocol unit test checks
        // they are 400 to 599).
        StatusCode::from_u16(self.reason.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 404.
    pub fn not_found() -> Self {
        ApiError::new(Reason::NotFound, "no such resource")
    }

    /// 401 for the staff API.
    pub fn unauthenticated() -> Self {
        ApiError::new(Reason::Unauthenticated, "a valid bearer token is required")
    }

    /// 405: the path exists, the method does not (the caller adds `Allow`).
    pub fn method_not_allowed() -> Self {
        ApiError::new(Reason::MethodNotAllowed, "this method is not allowed here")
    }

    /// 503 when the writer's queue is full: a burst, worth retrying soon.
    pub fn overloaded() -> Self {
        ApiError::retry(
            Reason::Overloaded,
            "the gateway is busy; please send again shortly",
            2,
        )
    }

    /// 500 for a failure of the gateway itself (a dead task, no randomness).
    pub fn internal(message: &str) -> Self {
        ApiError::new(Reason::Internal, message)
    }

    /// The response carrying this error.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let status = self.status();
        let body = ErrorBody::new(self.reason, self.message).encode();
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
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
                Reason::StorageFull,
                "the gateway's storage is full; the operator has been told",
            ),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::retry(
                    Reason::StoreUnavailable,
                    "the report could not be stored; please send again",
                    5,
                )
            }
        }
    }
}

impl From<DecodeError> for ApiError {
    /// The decoder's reason, with its status: 422 for well-formed messages
    /// of another version or suite, 413 for too much input, else 400.
    fn from(e: DecodeError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_the_reasons() {
        let e = ApiError::overloaded();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[RETRY_AFTER], "2");
        for r in Reason::ALL {
            assert_eq!(ApiError::new(*r, "x").status().as_u16(), r.status());
        }
    }

    #[test]
    fn decode_errors_keep_their_status() {
        let status = |e: DecodeError| ApiError::from(e).status();
        assert_eq!(
            status(DecodeError::UnsupportedSuite([9, 9, 9])),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(DecodeError::UnsupportedVersion(2)),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(DecodeError::InputTooLarge { len: 9, limit: 1 }),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(status(DecodeError::Truncated), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(DecodeError::MissingField("kid")),
            StatusCode::BAD_REQUEST
        );
    }
}
