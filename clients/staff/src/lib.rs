//! The hotline's staff tool, run on the hotline's own machine, the only place
//! the HPKE private key lives.
//!
//! - [`keygen`]: the hotline's key pair, signing key and signed key document;
//! - [`verify`]: check the key a gateway serves against the pinned signing key;
//! - [`pull`]: fetch queued reports through the staff API, open them, keep
//!   each durably in an [`archive::Archive`], and ack only what was kept;
//! - [`receive`]: a minimal HTTPS backend for push mode, doing the same for
//!   reports the gateway POSTs;
//! - [`export`]: the archive as one JSON Lines or CSV file for triage.
//!
//! Delivery is exactly-once by idempotence: every report is kept under its
//! gateway id, written with no-clobber semantics, so a report that arrives
//! twice (a retry, a second staff machine, pull and push together) is kept
//! once.
#![forbid(unsafe_code)]

pub mod archive;
pub mod export;
pub mod keygen;
pub mod pull;
pub mod receive;
pub mod verify;

use std::path::{Path, PathBuf};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Transport(#[from] hotline_https::TransportError),
    #[error("the gateway answered {status}: {message}")]
    Gateway { status: u16, message: String },
    #[error("key: {0}")]
    Key(#[from] hotline_protocol::KeyError),
    #[error("key document: {0}")]
    KeyDocument(#[from] hotline_protocol::KeyDocError),
    #[error("malformed answer: {0}")]
    Decode(#[from] hotline_protocol::DecodeError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Usage(String),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl StaffError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> StaffError {
        StaffError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// An error answer from the gateway, with its protocol error body if any.
    pub fn gateway(answer: &hotline_https::Answer) -> StaffError {
        let message = match hotline_protocol::ErrorBody::decode(&answer.body) {
            Ok(e) => format!("{}: {}", e.error, e.message),
            Err(_) => String::from_utf8_lossy(&answer.body)
                .chars()
                .take(200)
                .collect(),
        };
        StaffError::Gateway {
            status: answer.status.as_u16(),
            message,
        }
    }
}

/// Reads a whole text file, naming it in the error.
pub fn read_text(path: &Path) -> Result<String, StaffError> {
    std::fs::read_to_string(path).map_err(|e| StaffError::io(path, e))
}

/// Reads the hotline HPKE private key (PKCS#8 PEM).
pub fn load_secret_key(path: &Path) -> Result<hotline_protocol::HpkeSecretKey, StaffError> {
    hotline_protocol::HpkeSecretKey::from_pem(&read_text(path)?).map_err(|e| {
        StaffError::Usage(format!(
            "{}: not an X25519 private key: {e}",
            path.display()
        ))
    })
}
