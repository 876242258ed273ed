//! The gateway's TLS: the server configuration is built by `hotline-https`
//! (rustls with ring, TLS 1.3 and 1.2, HTTP/2 and HTTP/1.1 by ALPN), the
//! same code the staff tool's push endpoint uses.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;

use crate::GatewayError;

/// Builds the server's TLS configuration from PEM files (no client
/// certificates: reporters are anonymous).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, GatewayError> {
    hotline_https::server_config(cert, key, None).map_err(|e| GatewayError::Tls(e.to_string()))
}
