//! The gateway's configuration: one TOML file, every setting with a safe default.
//!
//! `check` explains every problem it finds at once, so an operator fixes the
//! file in one pass instead of one restart per mistake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store, the master key and the generated files live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Log level: error, warn, info, debug or trace.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Listening sockets and TLS.
    #[serde(default)]
    pub listen: Listen,
    /// The hotline's public keys (never its private keys).
    pub keys: Keys,
    /// Staff API access.
    #[serde(default)]
    pub staff: Staff,
    /// The durable queue.
    #[serde(default)]
    pub store: StoreConfig,
    /// Bounds on every input.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Who may read /metrics.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Push delivery to the hotline's backend; without it, staff pull.
    #[serde(default)]
    pub forward: Option<ForwardConfig>,
}

/// Listening sockets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// The TLS listener for the public (TLS 1.3 and 1.2, HTTP/2 and HTTP/1.1).
    #[serde(default = "default_tls_addr")]
    pub tls: SocketAddr,
    /// PEM certificate chain.
    #[serde(default = "default_cert")]
    pub cert: PathBuf,
    /// PEM private key of the certificate.
    #[serde(default = "default_cert_key")]
    pub cert_key: PathBuf,
    /// Optional plain-HTTP listener, for a TLS-terminating proxy or a Tor
    /// onion service on the same host. Must be a loopback address.
    #[serde(default)]
    pub plain: Option<SocketAddr>,
}

/// The hotline's public key material, as the hotline hands it over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// The signed key document (`hotline-staff keygen` writes it).
    pub key_document: PathBuf,
    /// The hotline's Ed25519 public key (SPKI PEM) that signed it.
    pub signing_public_key: PathBuf,
    /// The gateway's own master key for encryption at rest (32 bytes, mode 0600).
    pub master_key: PathBuf,
}

/// Staff API access.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staff {
    /// SHA-256 hashes (hex) of the bearer tokens; the tokens themselves are
    /// never stored on the gateway.
    #[serde(default)]
    pub token_sha256: Vec<String>,
}

/// Which engine holds the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// redb: real fsync on every commit; the default.
    #[default]
    Redb,
    /// sled 0.34: weaker durability, see store/README.md.
    Sled,
}

/// The durable queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Storage engine.
    #[serde(default)]
    pub engine: Engine,
    /// Refuse new reports (507) once the store reaches this many bytes.
    #[serde(default = "default_max_store_bytes")]
    pub max_bytes: u64,
    /// Reports waiting for the writer before new ones get 503.
    #[serde(default = "default_commit_queue")]
    pub commit_queue: usize,
    /// Most reports committed in one transaction.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Length of one key epoch in seconds: records received in the same
    /// epoch are sealed at rest under the same key.
    #[serde(default = "default_epoch_secs")]
    pub epoch_secs: u64,
    /// How long an epoch key outlives the end of its epoch once all its
    /// records are delivered (then it is destroyed: crypto-shredding); also
    /// how long an `Idempotency-Key` is remembered.
    #[serde(default = "default_retention_secs")]
    pub retention_secs: u64,
    /// How often expired entries are purged and spent epoch keys destroyed.
    #[serde(default = "default_shred_interval_secs")]
    pub shred_interval_secs: u64,
}

/// Push delivery: the gateway POSTs each record to the hotline's backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// The backend's URL: https, or http only to a loopback address.
    pub backend_url: String,
    /// PEM certificate(s) to trust for the backend; without it, the web PKI.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS (with `client_key`).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Most deliveries in flight at once.
    #[serde(default = "default_forward_concurrency")]
    pub concurrency: usize,
    /// First retry delay after a failure, in milliseconds.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest retry delay, in seconds.
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
    /// Seconds one delivery may take, connection included.
    #[serde(default = "default_forward_timeout_secs")]
    pub timeout_secs: u64,
}

/// Bounds on every input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Most request headers.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Largest total header size in bytes (HTTP/2 header list; HTTP/1 read buffer).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Seconds a client may take to send its request headers (also the idle
    /// time allowed between requests on a kept-alive connection).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a whole body.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: u64,
    /// Seconds for a TLS handshake.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_secs: u64,
    /// Most open connections; further ones are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Reports per minute from one client (keyed hash of its address).
    #[serde(default = "default_per_client_per_minute")]
    pub per_client_per_minute: u32,
    /// Burst allowance on top of the steady rate.
    #[serde(default = "default_per_client_burst")]
    pub per_client_burst: u32,
    /// Buckets the keyed client hashes fall into: bounds the limiter's memory.
    #[serde(default = "default_rate_buckets")]
    pub rate_buckets: u32,
}

/// Who may read /metrics.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// SHA-256 (hex) of a bearer token for /metrics; without one, only
    /// loopback clients may read it.
    #[serde(default)]
    pub token_sha256: Option<String>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("hotline-data")
}
fn default_log_level() -> String {
    "info".into()
}
fn default_tls_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}
fn default_cert() -> PathBuf {
    PathBuf::from("tls/cert.pem")
}
fn default_cert_key() -> PathBuf {
    PathBuf::from("tls/key.pem")
}
fn default_max_store_bytes() -> u64 {
    1 << 30
}
fn default_commit_queue() -> usize {
    4096
}
fn default_max_batch() -> usize {
    512
}
fn default_epoch_secs() -> u64 {
    86_400
}
fn default_retention_secs() -> u64 {
    86_400
}
fn default_shred_interval_secs() -> u64 {
    3_600
}
fn default_forward_concurrency() -> usize {
    4
}
fn default_initial_backoff_ms() -> u64 {
    500
}
fn default_max_backoff_secs() -> u64 {
    300
}
fn default_forward_timeout_secs() -> u64 {
    30
}
/// Room for the largest valid envelope: a 64 KiB padded plaintext, its AEAD
/// tag and framing (SPEC.md, size limits).
fn default_max_body() -> usize {
    hotline_protocol::Limits::ENVELOPE.max_input
}
fn default_max_headers() -> usize {
    32
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_header_timeout() -> u64 {
    10
}
fn default_body_timeout() -> u64 {
    30
}
fn default_handshake_timeout() -> u64 {
    10
}
fn default_max_connections() -> usize {
    4096
}
fn default_per_client_per_minute() -> u32 {
    30
}
fn default_per_client_burst() -> u32 {
    20
}
fn default_rate_buckets() -> u32 {
    16384
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            tls: default_tls_addr(),
            cert: default_cert(),
            cert_key: default_cert_key(),
            plain: None,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            engine: Engine::default(),
            max_bytes: default_max_store_bytes(),
            commit_queue: default_commit_queue(),
            max_batch: default_max_batch(),
            epoch_secs: default_epoch_secs(),
            retention_secs: default_retention_secs(),
            shred_interval_secs: default_shred_interval_secs(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: default_max_body(),
            max_headers: default_max_headers(),
            max_header_bytes: default_max_header_bytes(),
            header_timeout_secs: default_header_timeout(),
            body_timeout_secs: default_body_timeout(),
            handshake_timeout_secs: default_handshake_timeout(),
            max_connections: default_max_connections(),
            per_client_per_minute: default_per_client_per_minute(),
            per_client_burst: default_per_client_burst(),
            rate_buckets: default_rate_buckets(),
        }
    }
}

impl LimitsConfig {
    /// Header read (and keep-alive idle) timeout.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }
    /// Whole-body read timeout.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }
    /// TLS handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid configuration: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{} problem(s) in the configuration:\n  - {}", .0.len(), .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads and parses `path`; relative paths inside are taken relative to
    /// the file's folder so the config can move with its keys.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.data_dir);
        abs(&mut self.keys.key_document);
        abs(&mut self.keys.signing_public_key);
        abs(&mut self.keys.master_key);
        abs(&mut self.listen.cert);
        abs(&mut self.listen.cert_key);
        if let Some(f) = &mut self.forward {
            for p in [&mut f.ca_file, &mut f.client_cert, &mut f.client_key]
                .into_iter()
                .flatten()
            {
                abs(p);
            }
        }
    }

    /// Every problem found, in plain words; empty when the config is usable.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        // A bare word would parse as a target name and silently log nothing
        // useful, so it must be a level; directives (`warn,hotline_gateway=info`)
        // go to the filter parser.
        const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
        let level = self.log_level.trim();
        let is_directive = level.contains('=') || level.contains(',');
        if (!is_directive && !LEVELS.contains(&level.to_ascii_lowercase().as_str()))
            || tracing_subscriber::EnvFilter::try_new(level).is_err()
        {
            p.push(format!(
                "log_level {:?} is not one of error, warn, info, debug, trace (or a filter directive)",
                self.log_level
            ));
        }
        if let Some(plain) = self.listen.plain {
            if !plain.ip().is_loopback() {
                p.push(format!(
                    "listen.plain = {plain} is not a loopback address: plain HTTP is only for a \
                     proxy or onion service on this host"
                ));
            }
        }
        for (name, path) in [
            ("keys.key_document", &self.keys.key_document),
            ("keys.signing_public_key", &self.keys.signing_public_key),
            ("keys.master_key", &self.keys.master_key),
            ("listen.cert", &self.listen.cert),
            ("listen.cert_key", &self.listen.cert_key),
        ] {
            if !path.is_file() {
                p.push(format!("{name}: {} does not exist", path.display()));
            }
        }
        for (i, h) in self.staff.token_sha256.iter().enumerate() {
            if parse_sha256_hex(h).is_none() {
                p.push(format!("staff.token_sha256[{i}] is not 64 hex digits"));
            }
        }
        if let Some(h) = &self.metrics.token_sha256 {
            if parse_sha256_hex(h).is_none() {
                p.push("metrics.token_sha256 is not 64 hex digits".into());
            }
        }
        let l = &self.limits;
        let checks: [(bool, &str); 9] = [
            (
                l.max_body_bytes >= 65_626 && l.max_body_bytes <= 1 << 20,
                "limits.max_body_bytes must be between 65626 (the largest valid envelope) and 1048576",
            ),
            (
                (4..=200).contains(&l.max_headers),
                "limits.max_headers must be between 4 and 200",
            ),
            (
                l.max_header_bytes >= 4096,
                "limits.max_header_bytes must be at least 4096",
            ),
            (
                l.header_timeout_secs > 0,
                "limits.header_timeout_secs must be > 0",
            ),
            (
                l.body_timeout_secs > 0,
                "limits.body_timeout_secs must be > 0",
            ),
            (l.max_connections > 0, "limits.max_connections must be > 0"),
            (
                l.per_client_per_minute > 0 && l.per_client_burst > 0,
                "limits.per_client_per_minute and per_client_burst must be > 0",
            ),
            (
                l.rate_buckets >= 16 && l.rate_buckets <= 1 << 20,
                "limits.rate_buckets must be between 16 and 1048576",
            ),
            (
                self.store.commit_queue > 0 && self.store.max_batch > 0,
                "store.commit_queue and store.max_batch must be > 0",
            ),
        ];
        p.extend(
            checks
                .iter()
                .filter(|(ok, _)| !ok)
                .map(|(_, msg)| (*msg).to_owned()),
        );
        let s = &self.store;
        if s.epoch_secs == 0 || s.shred_interval_secs == 0 {
            p.push("store.epoch_secs and store.shred_interval_secs must be > 0".into());
        }
        if let Some(f) = &self.forward {
            p.extend(f.problems());
        }
        p
    }
}

impl ForwardConfig {
    /// Every problem with the `[forward]` section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        match self.backend_url.parse::<hyper::Uri>() {
            Ok(uri) => match (uri.scheme_str(), uri.host()) {
                (Some("https"), Some(_)) => {}
                (Some("http"), Some(host)) => {
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    let loopback = host == "localhost"
                        || host
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback());
                    if !loopback {
                        p.push(format!(
                            "forward.backend_url {:?}: plain http is allowed only to a loopback \
                             address; use https",
                            self.backend_url
                        ));
                    }
                }
                _ => p.push(format!(
                    "forward.backend_url {:?} is not an https:// URL",
                    self.backend_url
                )),
            },
            Err(_) => p.push(format!(
                "forward.backend_url {:?} is not a URL",
                self.backend_url
            )),
        }
        for (name, path) in [
            ("forward.ca_file", &self.ca_file),
            ("forward.client_cert", &self.client_cert),
            ("forward.client_key", &self.client_key),
        ] {
            if let Some(path) = path {
                if !path.is_file() {
                    p.push(format!("{name}: {} does not exist", path.display()));
                }
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            p.push("forward.client_cert and forward.client_key go together".into());
        }
        if !(1..=64).contains(&self.concurrency) {
            p.push("forward.concurrency must be between 1 and 64".into());
        }
        if self.initial_backoff_ms == 0 || self.max_backoff_secs == 0 || self.timeout_secs == 0 {
            p.push(
                "forward.initial_backoff_ms, max_backoff_secs and timeout_secs must be > 0".into(),
            );
        }
        p
    }
}

/// Parses 64 hex digits into a SHA-256 digest.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    // `from_str_radix` alone would take a sign: "+f" is 15.
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_safe_defaults_and_lists_missing_files() {
        let c: Config = toml::from_str(
            "[keys]\nkey_document='k.cbor'\nsigning_public_key='s.pem'\nmaster_key='m.key'\n",
        )
        .unwrap();
        assert_eq!(c.limits.max_body_bytes, 67_584);
        assert_eq!(c.store.engine, Engine::Redb);
        let problems = c.problems();
        assert!(problems.iter().any(|p| p.contains("keys.master_key")));
    }

    #[test]
    fn forward_section_is_checked() {
        let base = "[keys]\nkey_document='k'\nsigning_public_key='s'\nmaster_key='m'\n";
        let parse = |extra: &str| -> Config { toml::from_str(&format!("{base}{extra}")).unwrap() };
        let forward_problems = |c: &Config| {
            c.problems()
                .into_iter()
                .filter(|p| p.starts_with("forward"))
                .collect::<Vec<_>>()
        };
        let c = parse("[forward]\nbackend_url='https://hotline.example/in'\n");
        let f = c.forward.as_ref().unwrap();
        assert_eq!(
            (f.concurrency, f.max_backoff_secs, f.initial_backoff_ms),
            (4, 300, 500)
        );
        assert!(forward_problems(&c).is_empty());
        assert!(
            forward_problems(&parse("[forward]\nbackend_url='http://127.0.0.1:9/x'\n")).is_empty()
        );
        let p = forward_problems(&parse("[forward]\nbackend_url='http://10.0.0.1/x'\n"));
        assert!(p.iter().any(|p| p.contains("loopback")), "{p:?}");
        let p = forward_problems(&parse(
            "[forward]\nbackend_url='https://h/'\nclient_cert='c.pem'\nconcurrency=0\n",
        ));
        assert!(p.iter().any(|p| p.contains("go together")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("client_cert")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("concurrency")), "{p:?}");
        assert!(parse("").forward.is_none());
    }

    #[test]
    fn plain_http_must_be_loopback() {
        let c: Config = toml::from_str(
            "[listen]\nplain='0.0.0.0:8080'\n[keys]\nkey_document='k'\nsigning_public_key='s'\nmaster_key='m'\n",
        )
        .unwrap();
        assert!(c.problems().iter().any(|p| p.contains("loopback")));
    }

    #[test]
    fn a_token_hash_is_64_hex_digits_and_nothing_else() {
        assert_eq!(parse_sha256_hex(&"aB".repeat(32)), Some([0xab; 32]));
        // A sign is not a digit (the `config` fuzz target checks this too).
        assert_eq!(parse_sha256_hex(&"+f".repeat(32)), None);
        assert_eq!(parse_sha256_hex(&"ab".repeat(31)), None);
    }
}
