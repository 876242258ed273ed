//! Push forwarding: the gateway delivers each queued record to the hotline's
//! backend instead of waiting for staff to pull it.
//!
//! The queue is the store, so nothing is lost across restarts: the forwarder
//! keeps only a cursor and a small window of records in memory. It reads
//! records after its cursor, POSTs each envelope's bytes as
//! `application/cbor` with `Idempotency-Key: <record id>` (plus
//! `Hotline-Received-At` and `Hotline-Channel`), at most `concurrency` at a
//! time, and then:
//!
//! - on 2xx deletes the record (which marks its receipt delivered);
//! - on a permanent 4xx (400, 404, 410, 413, 415, 422) moves it to
//!   dead-letter with the backend's reason, for staff to inspect
//!   (`GET /v1/staff/dead`);
//! - on anything else (5xx, 401, 403, 408, 429, 3xx, network or TLS errors)
//!   retries it later: exponential backoff with full jitter, both for the
//!   record and for the whole forwarder, so a backend that is down sees about
//!   `concurrency` attempts per backoff period, not a storm.
//!
//! **Exactly once** is achieved the only way it can be over an unreliable
//! network: at-least-once delivery to an idempotent receiver. A record is
//! deleted only after the backend's 2xx, so a crash or a lost answer makes
//! the gateway send it again, with the same id; the backend must treat a
//! repeated `Idempotency-Key` as already stored (answer 2xx, store nothing).
//! Pull and push may run together: if staff ack a record the forwarder is
//! sending, the forwarder's delete finds nothing and carries on; the backend
//! and the staff tool dedupe by id, so the report is kept once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use hotline_https::{Answer, Transport, TransportError};
use hotline_store::{Store, StoredRecord};
use hyper::header::CONTENT_TYPE;
use hyper::Method;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::config::ForwardConfig;
use crate::metrics::Metrics;
use crate::GatewayError;

/// How often an idle forwarder looks for new records.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Shortest wait between attempts, whatever the jitter drew.
const MIN_DELAY: Duration = Duration::from_millis(10);
/// Longest dead-letter reason taken from a backend's answer.
const MAX_REASON: usize = 300;

/// Statuses after which sending the same bytes again cannot succeed.
pub const PERMANENT: [u16; 6] = [400, 404, 410, 413, 415, 422];

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the backend has the record.
    Delivered,
    /// A permanent refusal: dead-letter it with this reason.
    Permanent(String),
    /// Try again later; the backend may have said when.
    Retry {
        /// For the log.
        reason: String,
        /// `Retry-After`, if the backend sent one.
        after: Option<Duration>,
    },
}

/// Classifies an answer (or its absence).
pub fn classify(result: &Result<Answer, TransportError>) -> Outcome {
    let answer = match result {
        Ok(a) => a,
        Err(e) => {
            return Outcome::Retry {
                reason: e.to_string(),
                after: None,
            }
        }
    };
    let status = answer.status;
    if status.is_success() {
        return Outcome::Delivered;
    }
    let detail = describe(answer);
    if PERMANENT.contains(&status.as_u16()) {
        return Outcome::Permanent(format!("backend answered {}{detail}", status.as_u16()));
    }
    let after = answer
        .headers
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Outcome::Retry {
        reason: format!("backend answered {}{detail}", status.as_u16()),
        after,
    }
}

/// A short, printable account of an error answer: the protocol's error body
/// if it is one, else the start of the body as text.
fn describe(answer: &Answer) -> String {
    if let Ok(e) = hotline_protocol::ErrorBody::decode(&answer.body) {
        return truncate(&format!(": {}: {}", e.error, e.message));
    }
    let text: String = String::from_utf8_lossy(&answer.body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        truncate(&format!(": {text}"))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_REASON).collect()
}

/// A record waiting for (another) attempt.
#[derive(Debug)]
struct Item {
    record: StoredRecord,
    attempts: u32,
    not_before: Instant,
}

/// The forwarder's settings, resolved from the config.
#[derive(Debug, Clone)]
pub struct Forwarder {
    transport: Transport,
    path: String,
    concurrency: usize,
    initial_backoff: Duration,
    max_backoff: Duration,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    rng: SystemRandom,
}

impl Forwarder {
    /// Builds a forwarder from the `[forward]` section.
    pub fn new(
        config: &ForwardConfig,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Forwarder, GatewayError> {
        let client = match (&config.client_cert, &config.client_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        };
        let transport = Transport::with_client_cert(
            config.backend_url.origin(),
            config.ca_file.as_deref(),
            client,
        )
        .map_err(|e| GatewayError::Tls(format!("forward: {e}")))?
        .timeout(config.timeout);
        Ok(Forwarder {
            transport,
            path: config.backend_url.path().to_owned(),
            concurrency: config.concurrency,
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
            store,
            metrics,
            rng: SystemRandom::new(),
        })
    }

    /// Starts delivering in the background until `stop` turns true.
    pub fn spawn(self, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    /// Full jitter: a random delay in [0, min(cap, base * 2^(n-1))].
    fn backoff(&self, n: u32) -> Duration {
        let base = self.initial_backoff.as_millis() as u64;
        let ceiling = base
            .saturating_mul(1u64 << n.saturating_sub(1).min(40))
            .min(self.max_backoff.as_millis() as u64);
        let mut b = [0u8; 8];
        let r = match self.rng.fill(&mut b) {
            Ok(()) => u64::from_le_bytes(b) % ceiling.saturating_add(1),
            Err(_) => ceiling / 2,
        };
        Duration::from_millis(r).max(MIN_DELAY)
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let window = (self.concurrency * 8).max(32);
        let mut cursor = 0u64;
        let mut pending: VecDeque<Item> = VecDeque::new();
        let mut inflight: JoinSet<(Item, Outcome)> = JoinSet::new();
        let mut failures = 0u32;
        let mut pause_until: Option<Instant> = None;
        tracing::info!(concurrency = self.concurrency, "forwarding to the backend");
        loop {
            if *stop.borrow() {
                break;
            }
            let now = Instant::now();
            if pause_until.is_some_and(|t| t <= now) {
                pause_until = None;
            }
            if pending.len() < window && pause_until.is_none() {
                let store = self.store.clone();
                let want = window - pending.len();
                match tokio::task::spawn_blocking(move || store.read_after(cursor, want)).await {
                    Ok(Ok(records)) => {
                        if let Some(last) = records.last() {
                            cursor = last.seq;
                        }
                        pending.extend(records.into_iter().map(|record| Item {
                            record,
                            attempts: 0,
                            not_before: now,
                        }));
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "forward: cannot read the queue");
                        failures = failures.saturating_add(1);
                        pause_until = Some(now + self.backoff(failures));
                    }
                    Err(_) => {
                        failures = failures.saturating_add(1);
                        pause_until = Some(now + self.backoff(failures));
                    }
                }
            }
            while pause_until.is_none() && inflight.len() < self.concurrency {
                let Some(pos) = pending.iter().position(|i| i.not_before <= now) else {
                    break;
                };
                let Some(item) = pending.remove(pos) else {
                    break;
                };
                let transport = self.transport.clone();
                let path = self.path.clone();
                inflight.spawn(async move {
                    let result = deliver(&transport, &path, &item.record).await;
                    let outcome = classify(&result);
                    (item, outcome)
                });
            }
            if inflight.is_empty() {
                let wake = pending
                    .iter()
                    .map(|i| i.not_before)
                    .chain(pause_until)
                    .min()
                    .unwrap_or(now + IDLE_POLL)
                    .min(now + IDLE_POLL)
                    .max(now + MIN_DELAY);
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = stop.changed() => break,
                }
                continue;
            }
            let first = tokio::select! {
                r = inflight.join_next() => r,
                _ = stop.changed() => break,
            };
            let mut done = Vec::with_capacity(self.concurrency);
            done.extend(first);
            while let Some(r) = inflight.try_join_next() {
                done.push(r);
            }
            let mut delivered = Vec::new();
            let mut retry = Vec::new();
            for joined in done {
                let Ok((item, outcome)) = joined else {
                    // A delivery task panicked; its record stays in the queue
                    // and goes again after a restart.
                    tracing::error!("forward: a delivery task failed");
                    continue;
                };
                match outcome {
                    Outcome::Delivered => delivered.push(item),
                    Outcome::Permanent(reason) => {
                        if let Err(item) = self.dead_letter(item, &reason).await {
                            retry.push((item, "store failure".to_owned(), None));
                        }
                    }
                    Outcome::Retry { reason, after } => retry.push((item, reason, after)),
                }
            }
            if !delivered.is_empty() {
                failures = 0;
                pause_until = None;
                retry.extend(
                    self.remove_delivered(delivered)
                        .await
                        .into_iter()
                        .map(|i| (i, "store failure".to_owned(), None)),
                );
            }
            for (mut item, reason, after) in retry {
                self.metrics.forward_failure();
                failures = failures.saturating_add(1);
                item.attempts = item.attempts.saturating_add(1);
                let now = Instant::now();
                item.not_before = now + self.backoff(item.attempts);
                let mut pause = self.backoff(failures);
                if let Some(after) = after {
                    pause = pause.max(after.min(self.max_backoff));
                }
                pause_until = Some(pause_until.map_or(now + pause, |t| t.max(now + pause)));
                tracing::warn!(
                    attempts = item.attempts,
                    retry_in_ms = pause.as_millis() as u64,
                    reason = %reason,
                    "forward: delivery failed; will retry"
                );
                pending.push_back(item);
            }
        }
        inflight.abort_all();
        tracing::info!("forwarder stopped");
    }

    /// Deletes delivered records in one commit; returns them back if the
    /// store failed (they are sent again, and the backend dedupes).
    async fn remove_delivered(&self, delivered: Vec<Item>) -> Vec<Item> {
        let ids: Vec<hotline_protocol::RecordId> =
            delivered.iter().map(|i| i.record.id.clone()).collect();
        let n = ids.len() as u64;
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.delete(&ids)).await {
            Ok(Ok(deleted)) => {
                self.metrics.forwarded(n);
                if deleted < n {
                    tracing::debug!(
                        already_gone = n - deleted,
                        "forward: some delivered records were acked by staff meanwhile"
                    );
                }
                Vec::new()
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "forward: cannot delete delivered records");
                delivered
            }
            Err(_) => delivered,
        }
    }

    /// Moves a refused record to dead-letter; gives it back if the store failed.
    async fn dead_letter(&self, item: Item, reason: &str) -> Result<(), Item> {
        let store = self.store.clone();
        let id = item.record.id.clone();
        let why = reason.to_owned();
        match tokio::task::spawn_blocking(move || store.mark_dead(&id, &why)).await {
            Ok(Ok(moved)) => {
                if moved {
                    self.metrics.dead_lettered();
                    tracing::warn!(id = %item.record.id, reason, "forward: dead-lettered");
                }
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "forward: cannot dead-letter a record");
                Err(item)
            }
            Err(_) => Err(item),
        }
    }
}

/// One POST of one record.
async fn deliver(
    transport: &Transport,
    path: &str,
    record: &StoredRecord,
) -> Result<Answer, TransportError> {
    let push = hotline_protocol::headers::push(&record.id, record.received_at, record.channel);
    let mut headers = vec![(CONTENT_TYPE.as_str(), hotline_protocol::MEDIA_TYPE)];
    headers.extend(push.iter().map(|(k, v)| (*k, v.as_str())));
    transport
        .send(Method::POST, path, &headers, record.envelope.clone())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use hyper::{HeaderMap, StatusCode};

    fn answer(status: u16, body: &[u8]) -> Result<Answer, TransportError> {
        Ok(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::copy_from_slice(body),
        })
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(&answer(201, b"")), Outcome::Delivered);
        assert_eq!(classify(&answer(200, b"")), Outcome::Delivered);
        for s in PERMANENT {
            assert!(matches!(classify(&answer(s, b"")), Outcome::Permanent(_)));
        }
        for s in [401, 403, 408, 429, 500, 502, 503, 302] {
            assert!(matches!(classify(&answer(s, b"")), Outcome::Retry { .. }));
        }
        let body = hotline_protocol::ErrorBody::new(
            hotline_protocol::Reason::Undecryptable,
            "does not open",
        )
        .encode();
        match classify(&answer(422, &body)) {
            Outcome::Permanent(r) => assert!(r.contains("undecryptable"), "{r}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_is_read() {
        let mut a = answer(503, b"").unwrap();
        a.headers
            .insert(hyper::header::RETRY_AFTER, "7".parse().unwrap());
        match classify(&Ok(a)) {
            Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(7))),
            other => panic!("{other:?}"),
        }
    }
}
