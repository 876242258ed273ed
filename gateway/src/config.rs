//! The gateway's configuration: one TOML file, read once into typed values.
//!
//! Every value is checked while it is deserialized (a token hash is 64 hex
//! digits, a log level is a level, a size or duration lies within its
//! bounds, the backend URL obeys one rule), so after [`Config::load`] the
//! server uses the values as they are and parses nothing again. Each section
//! has one `Default` (or, for `[forward]`, one constructor): the single
//! source of defaults, which `setup` also uses to write the config it shows.
//!
//! `load` explains every problem at once, so an operator fixes the file in
//! one pass instead of one restart per mistake: when the file does not
//! deserialize, each setting is tried on its own to name every bad one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod limits;
mod values;

pub use limits::LimitsConfig;
use values::{as_millis, as_secs, millis, secs, within};
pub use values::{parse_sha256_hex, BackendUrl, LogLevel, LoopbackAddr, Sha256Hex};

/// The largest valid envelope in bytes: a 64 KiB padded plaintext, its AEAD
/// tag and framing (SPEC.md, size limits). A body limit below it would
/// refuse valid reports.
pub const LARGEST_ENVELOPE: u64 = hotline_protocol::MAX_ENVELOPE_LEN as u64;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store lives.
    #[serde(default = "Config::default_data_dir")]
    pub data_dir: PathBuf,
    /// Log level or tracing filter.
    #[serde(default)]
    pub log_level: LogLevel,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<ForwardConfig>,
}

/// Listening sockets.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// The TLS listener for the public (TLS 1.3 and 1.2, HTTP/2 and HTTP/1.1).
    pub tls: SocketAddr,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key of the certificate.
    pub cert_key: PathBuf,
    /// Optional plain-HTTP listener, for a TLS-terminating proxy or a Tor
    /// onion service on the same host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain: Option<LoopbackAddr>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            tls: SocketAddr::from(([127, 0, 0, 1], 8443)),
            cert: PathBuf::from("tls/cert.pem"),
            cert_key: PathBuf::from("tls/key.pem"),
            plain: None,
        }
    }
}

/// The hotline's public key material, as the hotline hands it over. No
/// defaults: an install names its files.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Staff {
    /// SHA-256 hashes of the bearer tokens; the tokens themselves are never
    /// stored on the gateway.
    pub token_sha256: Vec<Sha256Hex>,
}

/// Which engine holds the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// redb: real fsync on every commit; the default.
    #[default]
    Redb,
    /// sled 0.34: weaker durability, see store/README.md.
    Sled,
}

/// The durable queue.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Storage engine.
    pub engine: Engine,
    /// Refuse new reports (507) once the store reaches this many bytes.
    #[serde(deserialize_with = "within::<4096, { u64::MAX }, _, _>")]
    pub max_bytes: u64,
    /// Reports waiting for the writer before new ones get 503.
    #[serde(deserialize_with = "within::<1, { 1 << 20 }, _, _>")]
    pub commit_queue: usize,
    /// Most reports committed in one transaction.
    #[serde(deserialize_with = "within::<1, 65_536, _, _>")]
    pub max_batch: usize,
    /// Length of one key epoch in seconds: records received in the same
    /// epoch are sealed at rest under the same key.
    #[serde(deserialize_with = "within::<1, { 366 * DAY }, _, _>")]
    pub epoch_secs: u64,
    /// How long an epoch key outlives the end of its epoch once all its
    /// records are delivered (then it is destroyed: crypto-shredding); also
    /// how long an `Idempotency-Key` is remembered.
    #[serde(deserialize_with = "within::<1, { 3660 * DAY }, _, _>")]
    pub retention_secs: u64,
    /// How often expired entries are purged and spent epoch keys destroyed.
    #[serde(
        rename = "shred_interval_secs",
        deserialize_with = "secs::<1, { 7 * DAY }, _>",
        serialize_with = "as_secs"
    )]
    pub shred_interval: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            engine: Engine::default(),
            max_bytes: 1 << 30,
            commit_queue: 4096,
            max_batch: 512,
            epoch_secs: DAY,
            retention_secs: DAY,
            shred_interval: Duration::from_secs(3600),
        }
    }
}

/// Who may read /metrics.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// SHA-256 of a bearer token for /metrics; without one, only loopback
    /// clients may read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<Sha256Hex>,
}

/// Push delivery: the gateway POSTs each record to the hotline's backend.
/// `backend_url` has no default; [`ForwardConfig::new`] holds the others.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// The backend's URL: https, or http only to a loopback address.
    pub backend_url: BackendUrl,
    /// PEM certificate(s) to trust for the backend; without it, the web PKI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS (with `client_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Most deliveries in flight at once.
    #[serde(
        default = "ForwardConfig::default_concurrency",
        deserialize_with = "within::<1, 64, _, _>"
    )]
    pub concurrency: usize,
    /// First retry delay after a failure.
    #[serde(
        rename = "initial_backoff_ms",
        default = "ForwardConfig::default_initial_backoff",
        deserialize_with = "millis::<1, 3_600_000, _>",
        serialize_with = "as_millis"
    )]
    pub initial_backoff: Duration,
    /// Longest retry delay.
    #[serde(
        rename = "max_backoff_secs",
        default = "ForwardConfig::default_max_backoff",
        deserialize_with = "secs::<1, DAY, _>",
        serialize_with = "as_secs"
    )]
    pub max_backoff: Duration,
    /// Time one delivery may take, connection included.
    #[serde(
        rename = "timeout_secs",
        default = "ForwardConfig::default_timeout",
        deserialize_with = "secs::<1, 3600, _>",
        serialize_with = "as_secs"
    )]
    pub timeout: Duration,
}

impl ForwardConfig {
    /// Push delivery to `backend_url` with every other setting at its default.
    pub fn new(backend_url: BackendUrl) -> ForwardConfig {
        ForwardConfig {
            backend_url,
            ca_file: None,
            client_cert: None,
            client_key: None,
            concurrency: Self::default_concurrency(),
            initial_backoff: Self::default_initial_backoff(),
            max_backoff: Self::default_max_backoff(),
            timeout: Self::default_timeout(),
        }
    }
    fn default_concurrency() -> usize {
        4
    }
    fn default_initial_backoff() -> Duration {
        Duration::from_millis(500)
    }
    fn default_max_backoff() -> Duration {
        Duration::from_secs(300)
    }
    fn default_timeout() -> Duration {
        Duration::from_secs(30)
    }
}

const DAY: u64 = 86_400;

// ---------------------------------------------------------------------------
// Loading.

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not TOML at all (the parser stops at the first error).
    #[error("{path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    /// Every problem found with the settings.
    #[error("{} problem(s) in the configuration:\n  - {}", .0.len(), .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Settings that have no default, and a valid stand-in for each, so that
/// any other setting can be tried on its own.
const REQUIRED: [(&str, &str, &str); 4] = [
    ("keys", "key_document", "k"),
    ("keys", "signing_public_key", "s"),
    ("keys", "master_key", "m"),
    ("forward", "backend_url", "https://backend.invalid/"),
];
/// Sections that must be present.
const REQUIRED_SECTIONS: [&str; 1] = ["keys"];

impl Config {
    fn default_data_dir() -> PathBuf {
        PathBuf::from("hotline-data")
    }

    /// A config with every default and the given key files.
    pub fn new(keys: Keys) -> Config {
        Config {
            data_dir: Self::default_data_dir(),
            log_level: LogLevel::default(),
            listen: Listen::default(),
            keys,
            staff: Staff::default(),
            store: StoreConfig::default(),
            limits: LimitsConfig::default(),
            metrics: MetricsConfig::default(),
            forward: None,
        }
    }

    /// Reads and checks `path`. Relative paths inside are taken relative to
    /// the file's folder so the config can move with its keys. On failure
    /// the error lists every problem: each bad setting, and the missing
    /// files of the settings that were fine.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// [`Config::load`] for text already in memory; `base` is the folder
    /// relative paths start from.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        match deserialize(&table) {
            Ok(mut config) => {
                config.resolve_paths(base);
                Ok(config)
            }
            Err(_) => {
                let (usable, mut problems) = diagnose(&table);
                if let Some(mut config) = usable {
                    config.resolve_paths(base);
                    problems.extend(config.problems());
                }
                Err(ConfigError::Invalid(problems))
            }
        }
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

    /// What the values alone cannot say: files that do not exist, settings
    /// that go together. Empty when the config is usable.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut files = vec![
            ("keys.key_document", &self.keys.key_document),
            ("keys.signing_public_key", &self.keys.signing_public_key),
            ("keys.master_key", &self.keys.master_key),
            ("listen.cert", &self.listen.cert),
            ("listen.cert_key", &self.listen.cert_key),
        ];
        if let Some(f) = &self.forward {
            files.extend(f.ca_file.iter().map(|p| ("forward.ca_file", p)));
            files.extend(f.client_cert.iter().map(|p| ("forward.client_cert", p)));
            files.extend(f.client_key.iter().map(|p| ("forward.client_key", p)));
            if f.client_cert.is_some() != f.client_key.is_some() {
                p.push("forward.client_cert and forward.client_key go together".into());
            }
        }
        for (name, path) in files {
            if !path.is_file() {
                p.push(format!("{name}: {} does not exist", path.display()));
            }
        }
        // Behind a proxy or onion service every client is loopback, and
        // loopback may read /metrics without a token.
        if self.listen.plain.is_some() && self.metrics.token_sha256.is_none() {
            p.push("listen.plain is set but metrics.token_sha256 is not: behind a proxy or onion service every client comes from loopback, so /metrics would be open to anyone; set metrics.token_sha256 (docs/metrics.md)".into());
        }
        p
    }
}

fn deserialize(table: &toml::Table) -> Result<Config, toml::de::Error> {
    toml::Value::Table(table.clone()).try_into()
}

/// Names every bad setting by trying each one on its own (with stand-ins
/// for the settings that have no default), then reads what is left: a
/// config good enough to check its files, or `None` when a required
/// setting is missing.
fn diagnose(table: &toml::Table) -> (Option<Config>, Vec<String>) {
    let mut problems = Vec::new();
    let mut rest = table.clone();
    for (key, value) in table {
        match value.as_table() {
            Some(section) if is_section(key) => {
                for (name, value) in section {
                    let path = format!("{key}.{name}");
                    if let Some(problem) = try_alone(Some(key), name, value, &path) {
                        problems.push(problem);
                        if let Some(s) = rest.get_mut(key).and_then(|s| s.as_table_mut()) {
                            s.remove(name);
                        }
                    }
                }
            }
            _ => {
                if let Some(problem) = try_alone(None, key, value, key) {
                    problems.push(problem);
                    rest.remove(key);
                }
            }
        }
    }
    let mut complete = true;
    for (section, name, _) in REQUIRED {
        let present = rest.get(section).and_then(|s| s.as_table());
        let required = REQUIRED_SECTIONS.contains(&section) || present.is_some();
        let given = table
            .get(section)
            .and_then(|s| s.as_table())
            .is_some_and(|s| s.contains_key(name));
        if required && !given {
            problems.push(format!("{section}.{name} is required"));
        }
        if required && !present.is_some_and(|s| s.contains_key(name)) {
            complete = false;
        }
    }
    if !complete {
        return (None, problems);
    }
    match deserialize(&rest) {
        Ok(config) => (Some(config), problems),
        Err(e) => {
            problems.push(e.message().to_owned());
            (None, problems)
        }
    }
}

/// True for the names of the config's sections (tables of settings).
fn is_section(key: &str) -> bool {
    [
        "listen", "keys", "staff", "store", "limits", "metrics", "forward",
    ]
    .contains(&key)
}

/// Deserializes a config holding only this one setting (and stand-ins);
/// returns the problem with it, if any. A list is tried item by item too,
/// to say which item is bad.
fn try_alone(section: Option<&str>, name: &str, value: &toml::Value, path: &str) -> Option<String> {
    let trial = |value: toml::Value| -> Result<(), String> {
        let mut table = toml::Table::new();
        for (s, n, stand_in) in REQUIRED {
            if REQUIRED_SECTIONS.contains(&s) || Some(s) == section {
                let slot = table
                    .entry(s)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let Some(t) = slot.as_table_mut() {
                    t.insert(n.to_owned(), toml::Value::String(stand_in.to_owned()));
                }
            }
        }
        let slot = match section {
            Some(s) => table
                .entry(s)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut(),
            None => Some(&mut table),
        };
        if let Some(slot) = slot {
            slot.insert(name.to_owned(), value);
        }
        deserialize(&table)
            .map(drop)
            .map_err(|e| e.message().to_owned())
    };
    let message = trial(value.clone()).err()?;
    if let Some(items) = value.as_array() {
        let bad: Vec<String> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                trial(toml::Value::Array(vec![item.clone()]))
                    .err()
                    .map(|m| format!("{path}[{i}]: {m}"))
            })
            .collect();
        if !bad.is_empty() {
            return Some(bad.join("; "));
        }
    }
    Some(format!("{path}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str = "[keys]\nkey_document='k'\nsigning_public_key='s'\nmaster_key='m'\n";

    fn parse(text: &str) -> Result<Config, Vec<String>> {
        match Config::from_toml(text, Path::new("/nowhere")) {
            Ok(c) => Ok(c),
            Err(ConfigError::Invalid(p)) => Err(p),
            Err(e) => Err(vec![e.to_string()]),
        }
    }

    #[test]
    fn minimal_config_gets_safe_defaults_and_lists_missing_files() {
        let c = parse(KEYS).unwrap();
        assert_eq!(c.limits.max_body_bytes, 67_584);
        assert_eq!(c.store.engine, Engine::Redb);
        let mut expected = Config::new(Keys {
            key_document: "k".into(),
            signing_public_key: "s".into(),
            master_key: "m".into(),
        });
        expected.resolve_paths(Path::new("/nowhere"));
        assert_eq!(c, expected);
        let problems = c.problems();
        assert!(problems.iter().any(|p| p.contains("keys.master_key")));
    }

    #[test]
    fn forward_section_is_checked() {
        let forward_problems = |extra: &str| -> Vec<String> {
            let problems = match parse(&format!("{KEYS}{extra}")) {
                Ok(c) => c.problems(),
                Err(p) => p,
            };
            problems
                .into_iter()
                .filter(|p| p.starts_with("forward"))
                .collect()
        };
        let c = parse(&format!(
            "{KEYS}[forward]\nbackend_url='https://hotline.example/in'\n"
        ))
        .unwrap();
        let f = c.forward.as_ref().unwrap();
        assert_eq!(
            (f.concurrency, f.max_backoff, f.initial_backoff),
            (4, Duration::from_secs(300), Duration::from_millis(500))
        );
        assert_eq!(f.backend_url.origin(), "https://hotline.example");
        assert_eq!(f.backend_url.path(), "/in");
        assert!(
            forward_problems("[forward]\nbackend_url='https://hotline.example/in'\n").is_empty()
        );
        assert!(forward_problems("[forward]\nbackend_url='http://127.0.0.1:9/x'\n").is_empty());
        let p = forward_problems("[forward]\nbackend_url='http://10.0.0.1/x'\n");
        assert!(p.iter().any(|p| p.contains("loopback")), "{p:?}");
        let p = forward_problems("[forward]\nbackend_url='ftp://h/x'\n");
        assert!(p.iter().any(|p| p.contains("https://")), "{p:?}");
        let p = forward_problems(
            "[forward]\nbackend_url='https://h/'\nclient_cert='c.pem'\nconcurrency=0\n",
        );
        assert!(p.iter().any(|p| p.contains("go together")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("client_cert")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("concurrency")), "{p:?}");
        let p = forward_problems("[forward]\nconcurrency=2\n");
        assert_eq!(p, ["forward.backend_url is required"]);
        assert!(parse(KEYS).unwrap().forward.is_none());
    }

    #[test]
    fn plain_http_must_be_loopback() {
        let p = parse(&format!("[listen]\nplain='0.0.0.0:8080'\n{KEYS}")).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.starts_with("listen.plain") && p.contains("loopback")),
            "{p:?}"
        );
        let c = parse(&format!("[listen]\nplain='127.0.0.1:8080'\n{KEYS}")).unwrap();
        assert_eq!(
            c.listen.plain.map(LoopbackAddr::addr),
            Some("127.0.0.1:8080".parse().unwrap())
        );
    }

    #[test]
    fn every_bad_setting_is_named_at_once_and_none_is_replaced() {
        let p = parse(&format!(
            "log_level='loud'\ncolour=true\n[limits]\nmax_headers=1\nbody_timeout_secs=0\n\
             max_connections='many'\n[staff]\ntoken_sha256=['{}', 'beef']\n\
             [metrics]\ntoken_sha256='xyz'\n{KEYS}",
            "ab".repeat(32)
        ))
        .unwrap_err();
        for needle in [
            "log_level: \"loud\" is not one of",
            "colour: unknown field",
            "limits.max_headers: 1 is not between 4 and 200",
            "limits.body_timeout_secs: 0 is not between 1 and 3600",
            "limits.max_connections: invalid type",
            "staff.token_sha256[1]: is not 64 hex digits",
            "metrics.token_sha256: is not 64 hex digits",
            // The settings that were fine are still checked against the disk.
            "keys.master_key: /nowhere/m does not exist",
        ] {
            assert!(
                p.iter().any(|p| p.starts_with(needle)),
                "no {needle:?} in {p:?}"
            );
        }
        // 7 bad settings, then 5 files of the usable rest.
        assert_eq!(p.len(), 7 + 5, "{p:#?}");
        let missing = parse("[keys]\nkey_document='k'\n").unwrap_err();
        assert_eq!(
            missing,
            [
                "keys.signing_public_key is required",
                "keys.master_key is required"
            ]
        );
        assert!(parse("data_dir = [").unwrap_err()[0].contains("not valid TOML"));
    }

    #[test]
    fn typed_values_are_read_once() {
        let hash = "0f".repeat(32);
        let c = parse(&format!(
            "log_level='warn,hotline_gateway=debug'\n[staff]\ntoken_sha256=['{hash}']\n\
             [metrics]\ntoken_sha256=' {hash} '\n{KEYS}"
        ))
        .unwrap();
        assert_eq!(c.staff.token_sha256, [Sha256Hex([0x0f; 32])]);
        assert_eq!(c.metrics.token_sha256, Some(Sha256Hex([0x0f; 32])));
        assert_eq!(
            String::from(c.log_level.clone()),
            "warn,hotline_gateway=debug"
        );
        let filter = c.log_level.filter().to_string();
        assert!(
            filter.contains("hotline_gateway=debug") && filter.contains("warn"),
            "{filter}"
        );
        assert!("INFO".parse::<LogLevel>().is_ok());
        assert!("".parse::<LogLevel>().is_err());
        assert!("hotline_gateway=loud".parse::<LogLevel>().is_err());
    }

    /// Every setting, with a value other than its default where it can.
    fn full() -> Config {
        let mut c = Config::new(Keys {
            key_document: "/k".into(),
            signing_public_key: "/s".into(),
            master_key: "/m".into(),
        });
        c.data_dir = "/d".into();
        c.listen.plain =
            Some(LoopbackAddr::try_from("127.0.0.1:8080".parse::<SocketAddr>().unwrap()).unwrap());
        c.listen.cert = "/c".into();
        c.listen.cert_key = "/ck".into();
        c.staff.token_sha256 = vec![Sha256Hex([1; 32])];
        c.metrics.token_sha256 = Some(Sha256Hex([2; 32]));
        c.limits.max_connections_per_client = Some(100);
        let mut f = ForwardConfig::new("https://h.example:9443/in?x=1".parse().unwrap());
        f.ca_file = Some("/ca".into());
        f.client_cert = Some("/cc".into());
        f.client_key = Some("/ck".into());
        c.forward = Some(f);
        c
    }

    /// The dotted name of every setting.
    pub(crate) fn setting_names() -> Vec<String> {
        let value = toml::Value::try_from(full()).unwrap();
        let mut names = Vec::new();
        for (k, v) in value.as_table().unwrap() {
            match v.as_table() {
                Some(t) if is_section(k) => names.extend(t.keys().map(|n| format!("{k}.{n}"))),
                _ => names.push(k.clone()),
            }
        }
        names
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let c = full();
        let text = toml::to_string(&c).unwrap();
        assert_eq!(parse(&text).unwrap(), c, "{text}");
        assert_eq!(setting_names().len(), 40);
    }

    #[test]
    fn docs_name_every_setting_and_no_other() {
        let docs = include_str!("../../docs/configuration.md");
        let names = setting_names();
        for name in &names {
            assert!(
                docs.contains(&format!("`{name}`")),
                "docs/configuration.md lacks `{name}`"
            );
        }
        // Each row of the settings table names known settings only.
        for row in docs.lines().filter(|l| l.starts_with("| `")) {
            let first = row.split('|').nth(1).unwrap_or("");
            for name in first.split('`').skip(1).step_by(2) {
                assert!(
                    names.iter().any(|n| n == name),
                    "docs name an unknown setting `{name}`"
                );
            }
        }
    }
}
