//! The state every request handler shares, and the few actions both the API
//! and the web form take: the per-client rate limit, storing an envelope
//! durably, and looking up a receipt. Routing lives in `routes.rs`; the
//! handlers in `api.rs`, `staff.rs` and `web/`.

use std::net::IpAddr;
use std::sync::Arc;

use hotline_protocol::{Channel, Reason, ReceiptAnswer, ReceiptCode, RecordId, SubmitAnswer};
use hotline_store::{Appended, NewRecord, Store};
use ring::rand::SystemRandom;

use crate::auth::TokenHashes;
use crate::config::LimitsConfig;
use crate::error::ApiError;
use crate::keyset::KeySet;
use crate::metrics::Metrics;
use crate::ratelimit::ClientLimiter;

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

impl App {
    /// The per-client limit shared by every public endpoint that costs the
    /// gateway work or could be used to probe (reports, the form, receipts).
    pub fn check_rate(&self, peer: Peer) -> Result<(), ApiError> {
        self.limiter.check(peer.ip).map_err(|wait| {
            ApiError::retry(
                Reason::RateLimited,
                "too many requests from this address; please wait and send again",
                wait.as_secs() + 1,
            )
        })
    }

    /// Queues an envelope for the writer and waits until it is durable.
    pub async fn store_envelope(
        &self,
        envelope: Vec<u8>,
        channel: Channel,
        idempotency_key: Option<[u8; 16]>,
    ) -> Result<SubmitAnswer, ApiError> {
        let record = NewRecord {
            id: self.new_id()?,
            receipt: ReceiptCode::generate(&self.rng)
                .map_err(|_| ApiError::internal("random number generator failed"))?
                .to_string(),
            received_at: hotline_protocol::time::unix_now(),
            channel,
            envelope,
            idempotency_key,
        };
        let (id, receipt) = (record.id.clone(), record.receipt.clone());
        let pending = self
            .commits
            .submit(record)
            .map_err(|_| ApiError::overloaded())?;
        match pending.await {
            Ok(Appended::Stored { .. }) => {
                self.metrics.accepted();
                Ok(SubmitAnswer { id, receipt })
            }
            Ok(Appended::Duplicate { id, receipt }) => Ok(SubmitAnswer { id, receipt }),
            Err(e) => Err(e.into()),
        }
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
        let status = self
            .with_store("receipt task failed", move |store| {
                store.receipt_status(&key)
            })
            .await?;
        Ok(if valid {
            status
        } else {
            ReceiptAnswer::UNKNOWN
        })
    }

    /// Runs a blocking store call off the async threads; `what` names the
    /// task in the error if it panicked.
    pub async fn with_store<T, F>(&self, what: &'static str, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, hotline_store::StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|_| ApiError::internal(what))?
            .map_err(ApiError::from)
    }

    fn new_id(&self) -> Result<RecordId, ApiError> {
        RecordId::generate(&self.rng)
            .map_err(|_| ApiError::internal("random number generator failed"))
    }
}

/// Receipt codes are typed by people: `%20` and `+` may stand for spaces.
fn percent_decode_digits(code: &str) -> String {
    code.replace("%20", " ").replace('+', " ")
}
