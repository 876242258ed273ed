//! Reference client for apps and industry partners.
//!
//! An app embeds [`Client`]: it fetches the hotline's key from the gateway
//! and checks it against the pinned signing key ([`key`]), pads and seals
//! each report on the device and sends it with retries ([`submit`]), keeps
//! sealed reports in a durable [`queue`] while offline, and looks up receipt
//! codes ([`status`]). Images are hashed on the device ([`pdq`],
//! [`report::hash_image_file`]); only the hashes go into a report.
#![forbid(unsafe_code)]

pub mod key;
pub mod pdq;
pub mod pool;
pub mod queue;
pub mod report;
pub mod status;
pub mod submit;

use hotline_protocol::{Report, SubmitAnswer};

/// The HTTPS transport every call takes, re-exported so apps need not name
/// the plumbing crate.
pub use hotline_https::Transport;
pub use key::{KeyError, Pin, VerifiedKey};
pub use queue::{FlushOptions, FlushReport, Queue, SentRecord};
pub use status::ReceiptStatus;
pub use submit::{IdempotencyKey, RetryPolicy, SubmitError};

/// A gateway, the pinned hotline key and how hard to try.
#[derive(Debug, Clone)]
pub struct Client {
    /// How to reach the gateway.
    pub transport: Transport,
    /// The hotline signing key the gateway's key document must be signed by.
    pub pin: Pin,
    /// Retries per report.
    pub policy: RetryPolicy,
}

/// Why a report was not sent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl Client {
    /// A client with the default retry policy.
    pub fn new(transport: Transport, pin: Pin) -> Client {
        Client {
            transport,
            pin,
            policy: RetryPolicy::default(),
        }
    }

    /// Fetches and verifies the hotline key.
    pub async fn key(&self) -> Result<VerifiedKey, KeyError> {
        key::fetch_key(&self.transport, &self.pin).await
    }

    /// Verifies the key, seals the report and sends it with retries under
    /// one fresh idempotency key.
    pub async fn submit(&self, report: &Report) -> Result<SubmitAnswer, ClientError> {
        let key = self.key().await?;
        let envelope = submit::seal(report, &key.document).map_err(SubmitError::from)?;
        let idem = IdempotencyKey::generate().map_err(SubmitError::from)?;
        Ok(submit::send_with_retries(&self.transport, &envelope, &idem, &self.policy).await?)
    }

    /// Looks up a receipt code.
    pub async fn status(&self, code: &str) -> Result<ReceiptStatus, status::StatusError> {
        status::receipt_status(&self.transport, code).await
    }
}
