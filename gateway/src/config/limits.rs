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
    /// Connections kept apart for the operator's own machine (127.0.0.1,
    /// ::1) on the TLS port (/healthz, /metrics), taken when the pool or
    /// its share is full, so a flood cannot lock the operator out.
    #[serde(deserialize_with = "within::<0, 1024, _, _>")]
    pub admin_connections: usize,
    /// Reports per minute from one client (keyed hash of its address).
    #[serde(deserialize_with = "within::<1, 1_000_000, _, _>")]
    pub per_client_per_minute: u32,
    /// Burst allowance on top of the steady rate.
    #[serde(deserialize_with = "within::<1, 1_000_000, _, _>")]
    pub per_client_burst: u32,
    /// Buckets the keyed client hashes fall into: bounds the limiter's memory.
    #[serde(deserialize_with = "within::<16, { 1 << 20 }, _, _>")]
    pub rate_buckets: u32,
    /// Most connections to the TLS port from one client (a keyed hash of
    /// its address, IPv6 per /64), so one address cannot take the whole
    /// pool; unset: `max_connections / 8`, at least 1. Not applied to the
    /// plain port, where every client is the local proxy.
    #[serde(
        deserialize_with = "some_within::<1, 1_000_000, _>",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connections_per_client: Option<usize>,
    /// Time an HTTP/2 connection with answers waiting may go without
    /// progress (a request, or a piece of an answer taken by the peer)
    /// before it is closed: a peer that opens streams and never reads them
    /// holds their answers in memory.
    #[serde(
        rename = "h2_stall_timeout_secs",
        deserialize_with = "secs::<1, 3600, _>",
        serialize_with = "as_secs"
    )]
    pub h2_stall_timeout: Duration,
    /// Bytes of answers held for clients at once (bodies built but not yet
    /// sent); beyond it, requests get 503 `overloaded`, so slow readers
    /// cannot grow memory without bound.
    #[serde(deserialize_with = "within::<{ 1 << 16 }, { 1 << 30 }, _, _>")]
    pub response_buffer_bytes: usize,
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
            admin_connections: 4,
            per_client_per_minute: 30,
            per_client_burst: 20,
            rate_buckets: 16384,
            max_connections_per_client: None,
            h2_stall_timeout: Duration::from_secs(20),
            response_buffer_bytes: 8 << 20,
        }
    }
}

impl LimitsConfig {
    /// The connections one client may hold: the configured share, or an
    /// eighth of the pool; never more than the pool nor less than one.
    pub fn connections_per_client(&self) -> usize {
        self.max_connections_per_client
            .unwrap_or(self.max_connections / 8)
            .clamp(1, self.max_connections.max(1))
    }
}

/// Reads an optional whole number in `MIN..=MAX` (present means `Some`).
fn some_within<'de, const MIN: u64, const MAX: u64, D>(d: D) -> Result<Option<usize>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    within::<MIN, MAX, D, usize>(d).map(Some)
}
