//! Sealing a report and sending it: one idempotency key per report, fixed
//! across retries, so a phone that lost the gateway's answer can send again
//! without the hotline getting the report twice; exponential backoff with
//! jitter that honours Retry-After; a bounded number of attempts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hotline_protocol::{ErrorBody, KeyDocument, Report, SealError, SubmitAnswer};
use hyper::header::RETRY_AFTER;
use hyper::{Method, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};

use hotline_https::{Answer, Transport, TransportError};

/// The `Idempotency-Key` of one report: 16 random bytes, sent as base64url
/// without padding (22 characters, safe in file names).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(pub [u8; 16]);

impl IdempotencyKey {
    /// A fresh random key.
    pub fn generate() -> Result<IdempotencyKey, SealError> {
        let mut raw = [0u8; 16];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| SealError::Key(hotline_protocol::KeyError::Random))?;
        Ok(IdempotencyKey(raw))
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({self})")
    }
}

/// Not 16 bytes of base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an idempotency key (16 bytes, base64url without padding)")]
pub struct BadIdempotencyKey;

impl FromStr for IdempotencyKey {
    type Err = BadIdempotencyKey;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| BadIdempotencyKey)?;
        raw.try_into()
            .map(IdempotencyKey)
            .map_err(|_| BadIdempotencyKey)
    }
}

/// Pads, encodes and seals a report to a verified key document, with the
/// AEAD the document names. Returns the envelope's bytes.
pub fn seal(report: &Report, key: &KeyDocument) -> Result<Vec<u8>, SealError> {
    hotline_protocol::seal_report(report, &key.public_key, key.aead, &SystemRandom::new())
        .map(|e| e.encode())
}

/// How hard to try before giving up for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Cap on the exponential delay.
    pub max_delay: Duration,
    /// A Retry-After longer than this ends the attempts (the report stays
    /// queued, or the caller is told to come back later).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no waiting.
    pub fn once() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1): "equal
    /// jitter", uniformly between half and all of the capped exponential
    /// delay, so many clients cut off together do not come back together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(random_unit())
    }
}

/// A uniform number in [0, 1).
fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    if SystemRandom::new().fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// Why a report was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("cannot seal the report: {0}")]
    Seal(#[from] SealError),
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("the gateway refused the report ({status} {code}): {message}")]
    Rejected {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("the gateway is busy ({status} {code}); it asked to come back in {retry_after:?}")]
    Busy {
        status: StatusCode,
        code: String,
        retry_after: Option<Duration>,
    },
    #[error("the gateway's storage is full (507); try again later")]
    StorageFull,
    #[error("the gateway answered {status} with a body that is not a submit answer")]
    BadAnswer { status: StatusCode },
}

impl SubmitError {
    /// Whether sending the same envelope later may succeed: network trouble,
    /// overload, a full disk. A refusal (400, 413, 415, 422) will not pass,
    /// and a queue should set such a report aside instead of resending it.
    pub fn is_temporary(&self) -> bool {
        match self {
            SubmitError::Transport(e) => e.is_retryable(),
            SubmitError::Busy { .. } | SubmitError::StorageFull | SubmitError::BadAnswer { .. } => {
                true
            }
            SubmitError::Seal(_) | SubmitError::Rejected { .. } => false,
        }
    }

    /// Whether the gateway could not be reached at all (connection refused,
    /// no route, TLS failure, timeout): the next reports will not fare better.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            SubmitError::Transport(
                TransportError::Connect { .. }
                    | TransportError::Handshake { .. }
                    | TransportError::Timeout(_)
            )
        )
    }

    /// A short reason for summaries.
    pub fn code(&self) -> String {
        match self {
            SubmitError::Seal(_) => "seal".into(),
            SubmitError::Transport(_) => "network".into(),
            SubmitError::Rejected { code, .. } | SubmitError::Busy { code, .. } => code.clone(),
            SubmitError::StorageFull => "storage_full".into(),
            SubmitError::BadAnswer { .. } => "bad_answer".into(),
        }
    }
}

/// The `message` of an error body, or a note that there was none.
pub fn error_message(body: &[u8]) -> String {
    match ErrorBody::decode(body) {
        Ok(e) if e.message.is_empty() => e.error.as_str().to_owned(),
        Ok(e) => format!("{} ({})", e.message, e.error),
        Err(_) => "no error body".into(),
    }
}

fn retry_after(answer: &Answer) -> Option<Duration> {
    answer
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Classifies one answer to `POST /v1/reports`.
fn classify(answer: Answer) -> Result<SubmitAnswer, SubmitError> {
    let status = answer.status;
    if status == StatusCode::CREATED || status == StatusCode::OK {
        return SubmitAnswer::decode(&answer.body).map_err(|_| SubmitError::BadAnswer { status });
    }
    let body = ErrorBody::decode(&answer.body).ok();
    let code = body
        .as_ref()
        .map(|b| b.error.as_str().to_owned())
        .unwrap_or_else(|| status.as_u16().to_string());
    let message = body
        .map(|b| b.message)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned());
    match status {
        StatusCode::INSUFFICIENT_STORAGE => Err(SubmitError::StorageFull),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => Err(SubmitError::Busy {
            status,
            code,
            retry_after: retry_after(&answer),
        }),
        s if s.is_server_error() => Err(SubmitError::Busy {
            status,
            code,
            retry_after: retry_after(&answer),
        }),
        _ => Err(SubmitError::Rejected {
            status,
            code,
            message,
        }),
    }
}

/// Sends one envelope once.
pub async fn send_once(
    transport: &Transport,
    envelope: &[u8],
    key: &IdempotencyKey,
) -> Result<SubmitAnswer, SubmitError> {
    let key = key.to_string();
    let answer = transport
        .send(
            Method::POST,
            "/v1/reports",
            &[
                ("content-type", hotline_protocol::MEDIA_TYPE),
                ("accept", hotline_protocol::MEDIA_TYPE),
                ("idempotency-key", &key),
            ],
            envelope.to_vec(),
        )
        .await?;
    classify(answer)
}

/// Sends one envelope with retries: the same idempotency key every time, a
/// backoff with jitter between attempts, at least as long as any Retry-After.
pub async fn send_with_retries(
    transport: &Transport,
    envelope: &[u8],
    key: &IdempotencyKey,
    policy: &RetryPolicy,
) -> Result<SubmitAnswer, SubmitError> {
    let mut attempt = 1;
    loop {
        let err = match send_once(transport, envelope, key).await {
            Ok(answer) => return Ok(answer),
            Err(e) => e,
        };
        // 507 and refusals are not retried here: a full disk takes longer
        // than a backoff to clear, and a refusal will not change.
        let retryable = match &err {
            SubmitError::Transport(t) => t.is_retryable(),
            SubmitError::Busy { .. } | SubmitError::BadAnswer { .. } => true,
            _ => false,
        };
        if !retryable || attempt >= policy.max_attempts.max(1) {
            return Err(err);
        }
        let mut wait = policy.backoff(attempt);
        if let SubmitError::Busy {
            retry_after: Some(ra),
            ..
        } = &err
        {
            if *ra > policy.max_retry_after {
                return Err(err);
            }
            wait = wait.max(*ra);
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hotline_protocol::Reason;

    #[test]
    fn idempotency_keys_round_trip_as_base64url() {
        let k = IdempotencyKey::generate().unwrap();
        let text = k.to_string();
        assert_eq!(text.len(), 22);
        assert!(text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(text.parse::<IdempotencyKey>().unwrap(), k);
        assert!("abc".parse::<IdempotencyKey>().is_err());
        assert_ne!(IdempotencyKey::generate().unwrap(), k);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(10),
        };
        for attempt in 1..10 {
            let full = (Duration::from_millis(100) * (1 << (attempt - 1))).min(p.max_delay);
            for _ in 0..20 {
                let d = p.backoff(attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn answers_are_classified() {
        let answer = |status: u16, body: Vec<u8>, ra: Option<&str>| {
            let mut headers = hyper::HeaderMap::new();
            if let Some(ra) = ra {
                headers.insert(RETRY_AFTER, ra.parse().unwrap());
            }
            Answer {
                status: StatusCode::from_u16(status).unwrap(),
                headers,
                body: body.into(),
            }
        };
        let ok = SubmitAnswer {
            id: hotline_protocol::RecordId::from_bytes([9; 16]),
            receipt: "1".into(),
        };
        assert_eq!(classify(answer(201, ok.encode(), None)).unwrap(), ok);
        let e = classify(answer(
            429,
            ErrorBody::new(Reason::RateLimited, "wait").encode(),
            Some("7"),
        ))
        .unwrap_err();
        assert!(e.is_temporary());
        assert!(
            matches!(e, SubmitError::Busy { retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
        let e = classify(answer(
            422,
            ErrorBody::new(Reason::UnknownKid, "no").encode(),
            None,
        ))
        .unwrap_err();
        assert!(!e.is_temporary());
        assert_eq!(e.code(), "unknown_kid");
        assert!(classify(answer(507, vec![], None))
            .unwrap_err()
            .is_temporary());
        assert!(classify(answer(503, vec![], Some("2")))
            .unwrap_err()
            .is_temporary());
        assert!(!classify(answer(413, vec![], None))
            .unwrap_err()
            .is_temporary());
    }
}
