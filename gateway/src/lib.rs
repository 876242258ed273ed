//! The hotline report gateway: TLS intake of sealed reports into a durable,
//! encrypted queue, and the API the hotline uses to take them out.
//!
//! The binary in `main.rs` is a thin shell over [`run`] (or [`Gateway::bind`]
//! then [`Gateway::serve`]), [`setup::install`] and [`config::Config`], so
//! tests and tools drive the same code in-process: bind `127.0.0.1:0`, learn
//! the port, serve until a future of their choosing completes.
// No unsafe code, but for the one justified module `trim` (a single call
// into glibc), which allows it for itself.
#![deny(unsafe_code)]

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod edge;
pub mod error;
pub mod forward;
pub mod hardening;
pub mod http;
pub mod keyset;
pub mod metrics;
pub mod ratelimit;
pub mod retention;
pub mod routes;
pub mod server;
pub mod setup;
pub mod staff;
pub mod tls;
pub mod trim;
pub mod web;

use std::path::PathBuf;

pub use error::ApiError;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("keys: {0}")]
    Keys(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("store: {0}")]
    Store(#[from] hotline_store::StoreError),
    #[error("key: {0}")]
    Key(#[from] hotline_protocol::KeyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub use server::{run, Gateway};
