//! Receipt status: what a reporter may learn about a report from its code.

use std::fmt;

use hotline_protocol::time::civil_date;
use hotline_protocol::{ReceiptAnswer, ReceiptCode, ReceiptError, ReceiptState};
use hyper::{Method, StatusCode};

use hotline_https::{Transport, TransportError};

/// Where a report is, as far as the gateway says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Waiting on the gateway for the hotline.
    Queued,
    /// Passed on to the hotline on this day (days since 1970-01-01 UTC).
    Delivered {
        /// Days since the epoch, if the gateway said.
        day: Option<u64>,
    },
    /// Unknown, expired, or never existed: the gateway does not say which.
    Unknown,
}

impl fmt::Display for ReceiptStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiptStatus::Queued => f.write_str("queued: the report waits for the hotline"),
            ReceiptStatus::Delivered { day: Some(d) } => {
                write!(f, "delivered to the hotline on {}", civil_date(*d))
            }
            ReceiptStatus::Delivered { day: None } => f.write_str("delivered to the hotline"),
            ReceiptStatus::Unknown => {
                f.write_str("unknown: no report with this code (or it has expired)")
            }
        }
    }
}

/// Why the status could not be learned.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("the receipt code is mistyped: {0}")]
    Code(#[from] ReceiptError),
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("the gateway answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("the gateway's answer is malformed")]
    BadAnswer,
}

/// Looks up a receipt code. The code's check digit is verified first, so a
/// typo is caught here instead of reading as "unknown".
pub async fn receipt_status(
    transport: &Transport,
    code: &str,
) -> Result<ReceiptStatus, StatusError> {
    let code: ReceiptCode = code.parse()?;
    let answer = transport
        .send(
            Method::GET,
            &format!("/v1/receipts/{}", code.digits()),
            &[("accept", hotline_protocol::MEDIA_TYPE)],
            Vec::new(),
        )
        .await?;
    if answer.status != StatusCode::OK {
        return Err(StatusError::Status {
            status: answer.status,
            message: crate::submit::error_message(&answer.body),
        });
    }
    let a = ReceiptAnswer::decode(&answer.body).map_err(|_| StatusError::BadAnswer)?;
    Ok(match a.status {
        ReceiptState::Queued => ReceiptStatus::Queued,
        ReceiptState::Delivered => ReceiptStatus::Delivered { day: a.day },
        ReceiptState::Unknown => ReceiptStatus::Unknown,
    })
}
