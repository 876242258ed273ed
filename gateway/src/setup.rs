//! `init` and `demo`: everything a new install needs, generated in one step.
//!
//! The layout separates what the gateway may hold from what it must not:
//!
//! ```text
//! DIR/config.toml                 the gateway's configuration (commented)
//! DIR/gateway/                    read by `run`: public keys, master key, TLS
//! DIR/hotline-private/            the hotline's private keys and staff token:
//!                                 move this folder to the hotline's machine
//! DIR/store/                      the encrypted queue
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use hotline_protocol::{Aead, HpkeSecretKey, KeyDocument, SigningKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::{Config, ForwardConfig, Keys, LoopbackAddr, Sha256Hex};
use crate::GatewayError;

/// What `init`/`demo` made, for the message printed to the operator.
#[derive(Debug)]
pub struct Installed {
    /// The config file.
    pub config: PathBuf,
    /// The hotline private folder.
    pub private_dir: PathBuf,
    /// The staff bearer token (printed once; only its hash is in the config).
    pub staff_token_file: PathBuf,
    /// The HPKE key fingerprint, for out-of-band comparison.
    pub key_fingerprint: String,
    /// The signing key fingerprint, which apps pin.
    pub signing_fingerprint: String,
}

/// Seconds a freshly made key document stays valid.
const KEY_VALIDITY_SECS: u64 = 365 * 24 * 3600;

/// Writes a complete install into `dir` unless `dir/config.toml` exists.
pub fn install(dir: &Path, demo: bool) -> Result<Installed, GatewayError> {
    let config = dir.join("config.toml");
    let private_dir = dir.join("hotline-private");
    let gateway_dir = dir.join("gateway");
    if config.exists() {
        return existing(dir);
    }
    let rng = SystemRandom::new();
    fs::create_dir_all(gateway_dir.join("tls")).map_err(|e| io(&gateway_dir, e))?;
    fs::create_dir_all(&private_dir).map_err(|e| io(&private_dir, e))?;
    restrict_dir(&private_dir)?;

    let hpke = HpkeSecretKey::generate(&rng)?;
    let signing = SigningKey::generate(&rng)?;
    let doc = KeyDocument {
        public_key: hpke.public_key(),
        aead: Aead::ChaCha20Poly1305,
        not_after: hotline_protocol::time::unix_now() + KEY_VALIDITY_SECS,
    };
    write_secret(
        &private_dir.join("hotline-hpke.pem"),
        hpke.to_pem()?.as_bytes(),
    )?;
    write_secret(
        &private_dir.join("hotline-signing.pem"),
        signing.to_pem().as_bytes(),
    )?;
    write_public(
        &gateway_dir.join("signing-public.pem"),
        signing.verifying_key().to_pem()?.as_bytes(),
    )?;
    write_public(&gateway_dir.join("key-document.cbor"), &doc.sign(&signing))?;
    write_public(
        &private_dir.join("hotline-public.pem"),
        hpke.public_key().to_pem()?.as_bytes(),
    )?;
    hotline_store::MasterKey::generate_to(&gateway_dir.join("master.key"))?;

    let cert = rcgen::generate_simple_self_signed(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(|e| GatewayError::Tls(format!("cannot make a certificate: {e}")))?;
    write_public(
        &gateway_dir.join("tls/cert.pem"),
        cert.cert.pem().as_bytes(),
    )?;
    write_secret(
        &gateway_dir.join("tls/key.pem"),
        cert.signing_key.serialize_pem().as_bytes(),
    )?;

    let mut token = [0u8; 32];
    rng.fill(&mut token)
        .map_err(|_| GatewayError::Tls("system random number generator failed".into()))?;
    let token = base64url(&token);
    let staff_token_file = private_dir.join("staff-token.txt");
    write_secret(&staff_token_file, format!("{token}\n").as_bytes())?;
    let token_hash = Sha256Hex(
        ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .map_err(|_| GatewayError::Keys("SHA-256 is not 32 bytes".into()))?,
    );
    let text = config_text(&install_config(token_hash), demo)?;
    write_public(&config, text.as_bytes())?;
    fs::write(private_dir.join("README.txt"), PRIVATE_README).map_err(|e| io(&private_dir, e))?;
    Ok(Installed {
        config,
        private_dir,
        staff_token_file,
        key_fingerprint: hpke.public_key().kid().to_string(),
        signing_fingerprint: signing.verifying_key().fingerprint(),
    })
}

fn existing(dir: &Path) -> Result<Installed, GatewayError> {
    let private_dir = dir.join("hotline-private");
    let config = crate::config::Config::load(&dir.join("config.toml"))?;
    let keys = crate::keyset::KeySet::load(&config.keys)?;
    Ok(Installed {
        config: dir.join("config.toml"),
        staff_token_file: private_dir.join("staff-token.txt"),
        private_dir,
        key_fingerprint: keys.document.kid().to_string(),
        signing_fingerprint: keys.signing.fingerprint(),
    })
}

/// base64url without padding: tokens and idempotency keys.
pub fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn io(path: &Path, e: std::io::Error) -> GatewayError {
    GatewayError::Io {
        path: path.to_owned(),
        source: e,
    }
}

fn restrict_dir(path: &Path) -> Result<(), GatewayError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|e| io(path, e))
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), GatewayError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| io(path, e))?;
    f.write_all(bytes).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), GatewayError> {
    write_with_mode(path, bytes, 0o600)
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), GatewayError> {
    write_with_mode(path, bytes, 0o644)
}

const PRIVATE_README: &str = "\
These files belong to the HOTLINE, not to the gateway:

  hotline-hpke.pem     X25519 private key: opens every report. Keep it offline.
  hotline-signing.pem  Ed25519 private key: signs the key document apps pin.
  hotline-public.pem   the HPKE public key (for reference).
  staff-token.txt      bearer token for the staff API (the gateway keeps its hash).

Move this folder to the hotline's own machine and delete it here.
`hotline-gateway run` never reads it.
";

/// The config of a fresh install: its file layout, its staff token's hash,
/// and every other setting at its default.
pub fn install_config(staff_token: Sha256Hex) -> Config {
    let mut config = Config::new(Keys {
        key_document: "gateway/key-document.cbor".into(),
        signing_public_key: "gateway/signing-public.pem".into(),
        master_key: "gateway/master.key".into(),
    });
    config.data_dir = "store".into();
    config.listen.cert = "gateway/tls/cert.pem".into();
    config.listen.cert_key = "gateway/tls/key.pem".into();
    config.staff.token_sha256 = vec![staff_token];
    config
}

/// The example `[forward]` section the written config shows in comments:
/// example URL and files, every other setting at its default.
pub fn example_forward() -> ForwardConfig {
    let url = "https://hotline.example:9443/reports"
        .parse()
        .unwrap_or_else(|e: String| unreachable!("{e}"));
    let mut forward = ForwardConfig::new(url);
    forward.ca_file = Some("gateway/backend-ca.pem".into());
    forward.client_cert = Some("gateway/forward-client.pem".into());
    forward.client_key = Some("gateway/forward-client-key.pem".into());
    forward
}

/// The example plain-HTTP listener the written config shows in comments.
pub fn example_plain() -> LoopbackAddr {
    LoopbackAddr::try_from(std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
        .unwrap_or_else(|e| unreachable!("{e}"))
}

/// The commented config file for `config`: every `{section.key}` of
/// [`CONFIG_TEMPLATE`] is replaced by that setting's value, so the file
/// shows exactly the values it stands for.
pub fn config_text(config: &Config, demo: bool) -> Result<String, GatewayError> {
    let bad = |e: String| GatewayError::Keys(format!("cannot write the config: {e}"));
    let mut values = match toml::Value::try_from(config).map_err(|e| bad(e.to_string()))? {
        toml::Value::Table(t) => t,
        _ => return Err(bad("not a table".into())),
    };
    values.insert(
        "forward".into(),
        toml::Value::try_from(example_forward()).map_err(|e| bad(e.to_string()))?,
    );
    if let Some(listen) = values.get_mut("listen").and_then(|l| l.as_table_mut()) {
        listen.insert("plain".into(), example_plain().addr().to_string().into());
    }
    let mut out = String::new();
    let mut rest = CONFIG_TEMPLATE;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .ok_or_else(|| bad("unclosed {".into()))?;
        out.push_str(&rest[..start]);
        let name = &rest[start + 1..end];
        let value = match name {
            "demo_note" if demo => DEMO_NOTE.to_owned(),
            "demo_note" => String::new(),
            "largest_envelope" => hotline_protocol::MAX_ENVELOPE_LEN.to_string(),
            _ => lookup(&values, name)
                .ok_or_else(|| bad(format!("no setting {name}")))?
                .to_string(),
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value at a dotted name.
fn lookup<'a>(table: &'a toml::Table, name: &str) -> Option<&'a toml::Value> {
    let (section, key) = match name.split_once('.') {
        Some((s, k)) => (table.get(s)?.as_table()?, k),
        None => (table, name),
    };
    section.get(key)
}

const DEMO_NOTE: &str = "\
# DEMO install: the hotline private key sits in hotline-private/ beside the
# gateway, for trying it out only. A real install keeps it on the hotline's
# own machine.
";

/// The config file `init` and `demo` write; `{name}` stands for a setting's
/// value (see [`config_text`]).
pub const CONFIG_TEMPLATE: &str = r#"# hotline-gateway configuration. Relative paths are relative to this file.
# Every setting below that is not a file of this install shows its default;
# see docs/configuration.md.
{demo_note}
# Where the encrypted store lives.
data_dir = {data_dir}
# error, warn, info, debug or trace. Logs never hold client addresses,
# report bytes, tokens or keys, at any level.
log_level = {log_level}

[listen]
# Public TLS listener (TLS 1.3 and 1.2; HTTP/2 and HTTP/1.1 by ALPN).
tls = {listen.tls}
cert = {listen.cert}
cert_key = {listen.cert_key}
# Plain HTTP for a local TLS-terminating proxy or a Tor onion service.
# Loopback addresses only; needs [metrics] token_sha256 (every client is
# then loopback, which may read /metrics without a token).
# plain = {listen.plain}

[keys]
# Signed by the hotline's Ed25519 key (hotline-staff keygen makes both).
key_document = {keys.key_document}
signing_public_key = {keys.signing_public_key}
# The gateway's own key for encryption at rest: 32 bytes, mode 0600.
master_key = {keys.master_key}

[staff]
# SHA-256 (hex) of each staff bearer token. Add one per hotline machine.
token_sha256 = {staff.token_sha256}

[store]
# "redb" (default: fsync on every commit) or "sled" (see store/README.md).
engine = {store.engine}
# New reports get 507 once the store holds this many bytes.
max_bytes = {store.max_bytes}
# Reports waiting for the writer before new ones get 503 + Retry-After.
commit_queue = {store.commit_queue}
# Most reports written in one transaction (one fsync).
max_batch = {store.max_batch}
# Reports received in the same epoch are sealed at rest under one key. Once
# every record of an epoch is delivered and retention_secs have passed since
# the epoch ended, its key is destroyed (crypto-shredding): leftovers in the
# database files can then never be read. retention_secs is also how long an
# Idempotency-Key is remembered (the protocol promises 24 hours).
epoch_secs = {store.epoch_secs}
retention_secs = {store.retention_secs}
# How often expired entries are purged and spent epoch keys destroyed.
shred_interval_secs = {store.shred_interval_secs}

[limits]
# The largest valid envelope (64 KiB padded report) is {largest_envelope} bytes.
max_body_bytes = {limits.max_body_bytes}
max_headers = {limits.max_headers}
max_header_bytes = {limits.max_header_bytes}
# Time to send request headers; also the idle time between requests.
header_timeout_secs = {limits.header_timeout_secs}
# Time to send a whole body (slow 2G uploads of 64 KiB fit easily).
body_timeout_secs = {limits.body_timeout_secs}
handshake_timeout_secs = {limits.handshake_timeout_secs}
max_connections = {limits.max_connections}
# Kept apart for 127.0.0.1 and ::1 on the TLS port (the operator's /healthz,
# /metrics) when the pool is full.
admin_connections = {limits.admin_connections}
# Reports per minute per client, keyed by a secret hash of its address that
# is held only in memory, in a fixed number of buckets.
per_client_per_minute = {limits.per_client_per_minute}
per_client_burst = {limits.per_client_burst}
rate_buckets = {limits.rate_buckets}
# Connections to the TLS port from one client (keyed hash of its address,
# held only in memory); unset, an eighth of max_connections.
# max_connections_per_client = 512
# An HTTP/2 connection whose answers the peer does not take for this long
# is closed.
h2_stall_timeout_secs = {limits.h2_stall_timeout_secs}
# Bytes of answers held for slow readers at once; beyond it, 503 overloaded.
response_buffer_bytes = {limits.response_buffer_bytes}

[metrics]
# Without a token, /metrics answers loopback clients only. Required with
# listen.plain.
# token_sha256 = "<64 hex digits>"

# Push delivery to the hotline's backend (`hotline-staff receive` is a
# minimal one). Without this section, staff pull reports instead; both may
# run together. Each record is POSTed with `Idempotency-Key: <record id>`;
# 2xx deletes it, a permanent 4xx (400, 404, 410, 413, 415, 422) moves it to
# dead-letter (GET /v1/staff/dead), anything else is retried with
# exponential backoff and jitter. The backend must dedupe by that id.
# [forward]
# https, or http only to a loopback address.
# backend_url = {forward.backend_url}
# PEM certificate(s) to trust for the backend; without it, the web PKI.
# ca_file = {forward.ca_file}
# Mutual TLS: the gateway's client certificate and key (PEM).
# client_cert = {forward.client_cert}
# client_key = {forward.client_key}
# Deliveries in flight at once.
# concurrency = {forward.concurrency}
# Retry delays: random in [0, min(max_backoff_secs, initial * 2^n)].
# initial_backoff_ms = {forward.initial_backoff_ms}
# max_backoff_secs = {forward.max_backoff_secs}
# timeout_secs = {forward.timeout_secs}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of the `[forward]` example, uncommented.
    fn uncomment_forward(text: &str) -> String {
        let block = &text[text.find("# [forward]").expect("forward example")..];
        block
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with('[') || l.contains(" = "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_written_config_shows_the_defaults_it_claims() {
        let dir = tempfile::tempdir().unwrap();
        let installed = install(dir.path(), false).unwrap();
        let text = std::fs::read_to_string(&installed.config).unwrap();
        assert!(!text.contains('{'), "a placeholder is left:\n{text}");
        let loaded = Config::load(&installed.config).unwrap();
        let defaults = Config::new(loaded.keys.clone());
        // Everything but this install's files and token is the default.
        let mut expected = defaults.clone();
        expected.data_dir = dir.path().join("store");
        expected.listen.cert = dir.path().join("gateway/tls/cert.pem");
        expected.listen.cert_key = dir.path().join("gateway/tls/key.pem");
        expected.staff = loaded.staff.clone();
        assert_eq!(loaded, expected);
        assert_eq!(
            loaded.keys.master_key,
            dir.path().join("gateway/master.key")
        );
        assert!(loaded.problems().is_empty(), "{:?}", loaded.problems());

        // The commented examples read back as they say, defaults included.
        let with_examples = format!(
            "{}\n{}",
            text.replace("# plain = ", "plain = "),
            uncomment_forward(&text)
        );
        let c = Config::from_toml(&with_examples, Path::new("/i")).unwrap();
        assert_eq!(c.listen.plain, Some(example_plain()));
        let mut forward = example_forward();
        for p in [
            &mut forward.ca_file,
            &mut forward.client_cert,
            &mut forward.client_key,
        ] {
            *p = p.as_ref().map(|p| Path::new("/i").join(p));
        }
        assert_eq!(c.forward, Some(forward));

        // A demo install says so; the rest is the same.
        let text_demo = config_text(&install_config(loaded.staff.token_sha256[0]), true).unwrap();
        assert!(text_demo.contains("DEMO install"));
        assert_eq!(text_demo.replace(DEMO_NOTE, ""), text);
    }
}
