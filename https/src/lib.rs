//! The HTTPS plumbing that the gateway, the staff tool and the reference
//! client share, kept in one small crate so that the gateway daemon links a
//! TLS client without linking the app client (and its image decoders), and
//! so that TLS settings are decided in one place: rustls with the ring
//! provider only, TLS 1.3 and 1.2.
//!
//! - [`Transport`]: "send these bytes, get status and bytes back" over
//!   kept-alive HTTP/1.1 connections, trusting a pinned certificate or the
//!   web PKI, optionally with a client certificate.
//! - [`server_config`]: a server's rustls configuration from PEM files,
//!   optionally requiring client certificates.
//! - [`shutdown_signal`]: SIGTERM or SIGINT as a future, for graceful stops.
//! - [`cbor_response`]: an answer in the protocol's media type.
#![forbid(unsafe_code)]

mod client;
mod server;

pub use client::{Answer, Transport, TransportError, MAX_RESPONSE};
pub use server::{cbor_response, server_config, shutdown_signal, TlsConfigError};
