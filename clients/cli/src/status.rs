//! Receipt status: what a reporter may learn about a report from its code.

use std::fmt;

use hotline_protocol::{ReceiptAnswer, ReceiptCode, ReceiptError};
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
    Ok(match a.status.as_str() {
        "queued" => ReceiptStatus::Queued,
        "delivered" => ReceiptStatus::Delivered { day: a.day },
        _ => ReceiptStatus::Unknown,
    })
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01), proleptic Gregorian.
pub fn civil_date(days: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, if it is a real date.
pub fn days_from_civil(text: &str) -> Option<u64> {
    let mut parts = text.trim().split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d > month_days[(m - 1) as usize] {
        return None;
    }
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_both_ways() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(days_from_civil("1970-01-01"), Some(0));
        assert_eq!(days_from_civil("2000-03-01"), Some(11_017));
        assert_eq!(civil_date(11_017), "2000-03-01");
        assert_eq!(
            days_from_civil("2024-02-29").map(civil_date).as_deref(),
            Some("2024-02-29")
        );
        for d in (0..30_000).step_by(97) {
            assert_eq!(days_from_civil(&civil_date(d)), Some(d));
        }
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "1969-12-31",
            "x",
            "2024-01-00",
        ] {
            assert_eq!(days_from_civil(bad), None, "{bad}");
        }
    }
}
