//! The `[limits]` section: bounds on every input and on what one client
//! or one connection may hold. In its own file so `config.rs` stays short.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::values::{as_secs, secs, within};
use super::LARGEST_ENVELOPE;

/// Bounds on every input.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body in bytes.
    #[serde(deserialize_with = "within::<LARGEST_ENVELOPE, { 1 << 20 }, _, _>")]
    pub max_body_bytes: usize,
    /// Most request headers.
    #[serde(deserialize_with = "within::<4, 200, _, _>")]
    pub max_headers: usize,
    /// Largest total header size in bytes (HTTP/2 header list; HTTP/1 read buffer).
    #[serde(deserialize_with = "within::<4096, { 1 << 20 }, _, _>")]
    pub max_header_bytes: usize,
    /// Time a client may take to send its request headers (also the idle
    /// time allowed between requests on a kept-alive connection).
    #[serde(
        rename = "header_timeout_secs",
        deserialize_with = "secs::<1, 3600, _>",
        serialize_with = "as_secs"
    )]
    pub header_timeout: Duration,
    /// Time a client may take to send a whole body.
    #[serde(
        rename = "body_timeout_secs",
        deserialize_with = "secs::<1, 3600, _>",
        serialize_with = "as_secs"
    )]
    pub body_timeout: Duration,
    /// Time for a TLS handshake.
    #[serde(
        rename = "handshake_timeout_secs",
        deserialize_with = "secs::<1, 3600, _>",
        serialize_with = "as_secs"
    )]
    pub handshake_timeout: Duration,
    /// Most open connections; further ones are closed at once.
    #[serde(deserialize_with = "within::<1, 1_000_000, _, _>")]
    pub max_connections: usize,
    /// Reports per minute from one client (keyed hash of its address).
    #[serde(deserialize_with = "within::<1, 1_000_000, _, _>")]
    pub per_client_per_minute: u32,
    /// Burst allowance on top of the steady rate.
    #[serde(deserialize_with = "within::<1, 1_000_000, _, _>")]
    pub per_client_burst: u32,
    /// Buckets the keyed client hashes fall into: bounds the limiter's memory.
    #[serde(deserialize_with = "within::<16, { 1 << 20 }, _, _>")]
    pub rate_buckets: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: hotline_protocol::Limits::ENVELOPE.max_input,
            max_headers: 32,
            max_header_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
            per_client_per_minute: 30,
            per_client_burst: 20,
            rate_buckets: 16384,
        }
    }
}
