//! Setting values checked while they are read: a config that loads holds
//! only valid ones, so nothing downstream parses or checks them again.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};

/// A SHA-256 digest, written as 64 hex digits: how the config names a
/// bearer token without holding it. Anything else is refused at load.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(pub [u8; 32]);

impl FromStr for Sha256Hex {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_sha256_hex(s)
            .map(Sha256Hex)
            .ok_or_else(|| "is not 64 hex digits (a SHA-256 digest)".to_owned())
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Sha256Hex> for String {
    fn from(h: Sha256Hex) -> String {
        hex::encode(h.0)
    }
}

impl fmt::Debug for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hex({})", hex::encode(self.0))
    }
}

/// Parses 64 hex digits (surrounding spaces allowed) into a SHA-256 digest.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).ok()?;
    Some(out)
}

/// The log level (`info`) or a tracing filter directive
/// (`warn,hotline_gateway=debug`), checked at load: a bare word that is not
/// a level would parse as a target name and silently log nothing useful.
#[derive(Clone, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct LogLevel {
    text: String,
    directives: Vec<tracing_subscriber::filter::Directive>,
}

impl LogLevel {
    /// The tracing filter it stands for.
    pub fn filter(&self) -> tracing_subscriber::EnvFilter {
        self.directives
            .iter()
            .cloned()
            .fold(tracing_subscriber::EnvFilter::default(), |f, d| {
                f.add_directive(d)
            })
    }
}

impl Default for LogLevel {
    fn default() -> Self {
        LogLevel {
            text: "info".into(),
            directives: vec![tracing_subscriber::filter::LevelFilter::INFO.into()],
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
        let text = s.trim();
        let bad = || {
            format!("{s:?} is not one of error, warn, info, debug, trace (or a filter directive)")
        };
        let is_directive = text.contains('=') || text.contains(',');
        if !is_directive && !LEVELS.contains(&text.to_ascii_lowercase().as_str()) {
            return Err(bad());
        }
        let directives = text
            .split(',')
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.trim().parse().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        if directives.is_empty() {
            return Err(bad());
        }
        Ok(LogLevel {
            text: text.to_owned(),
            directives,
        })
    }
}

impl TryFrom<String> for LogLevel {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<LogLevel> for String {
    fn from(l: LogLevel) -> String {
        l.text
    }
}

impl PartialEq for LogLevel {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Debug for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogLevel({:?})", self.text)
    }
}

/// A socket address on the loopback interface: plain HTTP is only for a
/// proxy or onion service on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "SocketAddr", into = "SocketAddr")]
pub struct LoopbackAddr(SocketAddr);

impl LoopbackAddr {
    /// The address to bind.
    pub fn addr(self) -> SocketAddr {
        self.0
    }
}

impl TryFrom<SocketAddr> for LoopbackAddr {
    type Error = String;
    fn try_from(a: SocketAddr) -> Result<Self, String> {
        if a.ip().is_loopback() {
            Ok(LoopbackAddr(a))
        } else {
            Err(format!(
                "{a} is not a loopback address: plain HTTP is only for a proxy or onion \
                 service on this host"
            ))
        }
    }
}

impl From<LoopbackAddr> for SocketAddr {
    fn from(a: LoopbackAddr) -> SocketAddr {
        a.0
    }
}

/// The backend's URL under one rule: `https://host/...`, or `http://` only
/// to a loopback address (a backend on this host).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackendUrl {
    text: String,
    origin: String,
    path: String,
}

impl BackendUrl {
    /// `scheme://host:port`, where connections go.
    pub fn origin(&self) -> &str {
        &self.origin
    }
    /// The path (and query) records are POSTed to; `/` when none is given.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl FromStr for BackendUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let uri: hyper::Uri = s.parse().map_err(|_| format!("{s:?} is not a URL"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(format!("{s:?} is not an https:// URL with a host"));
        };
        match scheme {
            "https" => {}
            "http" => {
                let host = authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    return Err(format!(
                        "{s:?}: plain http is allowed only to a loopback address; use https"
                    ));
                }
            }
            _ => return Err(format!("{s:?} is not an https:// URL")),
        }
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        Ok(BackendUrl {
            text: s.to_owned(),
            origin: format!("{scheme}://{authority}"),
            path: path.to_owned(),
        })
    }
}

impl TryFrom<String> for BackendUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<BackendUrl> for String {
    fn from(u: BackendUrl) -> String {
        u.text
    }
}

impl fmt::Debug for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendUrl({:?})", self.text)
    }
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Reads a whole number in `MIN..=MAX`: sizes and counts with their bounds
/// stated once, beside the field.
pub(super) fn within<'de, const MIN: u64, const MAX: u64, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let n = u64::deserialize(d)?;
    if !(MIN..=MAX).contains(&n) {
        return Err(serde::de::Error::custom(if MAX == u64::MAX {
            format!("{n} is below the least allowed, {MIN}")
        } else {
            format!("{n} is not between {MIN} and {MAX}")
        }));
    }
    T::try_from(n).map_err(|_| serde::de::Error::custom(format!("{n} is too large")))
}

/// Reads whole seconds in `MIN..=MAX`.
pub(super) fn secs<'de, const MIN: u64, const MAX: u64, D>(d: D) -> Result<Duration, D::Error>
where
    D: Deserializer<'de>,
{
    within::<MIN, MAX, D, u64>(d).map(Duration::from_secs)
}

/// Reads whole milliseconds in `MIN..=MAX`.
pub(super) fn millis<'de, const MIN: u64, const MAX: u64, D>(d: D) -> Result<Duration, D::Error>
where
    D: Deserializer<'de>,
{
    within::<MIN, MAX, D, u64>(d).map(Duration::from_millis)
}

pub(super) fn as_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

pub(super) fn as_millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hash_is_64_hex_digits_and_nothing_else() {
        assert_eq!(parse_sha256_hex(&"aB".repeat(32)), Some([0xab; 32]));
        // A sign is not a digit (the `config` fuzz target checks this too).
        assert_eq!(parse_sha256_hex(&"+f".repeat(32)), None);
        assert_eq!(parse_sha256_hex(&"ab".repeat(31)), None);
    }
}
