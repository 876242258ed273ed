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
        not_after: crate::unix_now() + KEY_VALIDITY_SECS,
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
    let token_hash = crate::auth::sha256_hex(token.as_bytes());

    let text = CONFIG_TEMPLATE
        .replace("{staff_token_sha256}", &token_hash)
        .replace(
            "{demo_note}",
            if demo {
                "# DEMO install: the hotline private key sits in hotline-private/ beside the\n\
                 # gateway, for trying it out only. A real install keeps it on the hotline's\n\
                 # own machine.\n"
            } else {
                ""
            },
        );
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

const CONFIG_TEMPLATE: &str = r#"# hotline-gateway configuration. Relative paths are relative to this file.
# Every setting below shows its default; see docs/configuration.md.
{demo_note}
# Where the encrypted store lives.
data_dir = "store"
# error, warn, info, debug or trace. Logs never hold client addresses,
# report bytes, tokens or keys, at any level.
log_level = "info"

[listen]
# Public TLS listener (TLS 1.3 and 1.2; HTTP/2 and HTTP/1.1 by ALPN).
tls = "127.0.0.1:8443"
cert = "gateway/tls/cert.pem"
cert_key = "gateway/tls/key.pem"
# Plain HTTP for a local TLS-terminating proxy or a Tor onion service.
# Loopback addresses only.
# plain = "127.0.0.1:8080"

[keys]
# Signed by the hotline's Ed25519 key (hotline-staff keygen makes both).
key_document = "gateway/key-document.cbor"
signing_public_key = "gateway/signing-public.pem"
# The gateway's own key for encryption at rest: 32 bytes, mode 0600.
master_key = "gateway/master.key"

[staff]
# SHA-256 (hex) of each staff bearer token. Add one per hotline machine.
token_sha256 = ["{staff_token_sha256}"]

[store]
# "redb" (default: fsync on every commit) or "sled" (see store/README.md).
engine = "redb"
# New reports get 507 once the store holds this many bytes.
max_bytes = 1073741824
# Reports waiting for the writer before new ones get 503 + Retry-After.
commit_queue = 4096
# Most reports written in one transaction (one fsync).
max_batch = 512
# Reports received in the same epoch are sealed at rest under one key. Once
# every record of an epoch is delivered and retention_secs have passed since
# the epoch ended, its key is destroyed (crypto-shredding): leftovers in the
# database files can then never be read. retention_secs is also how long an
# Idempotency-Key is remembered (the protocol promises 24 hours).
epoch_secs = 86400
retention_secs = 86400
# How often expired entries are purged and spent epoch keys destroyed.
shred_interval_secs = 3600

[limits]
# The largest valid envelope (64 KiB padded report) is 65626 bytes.
max_body_bytes = 67584
max_headers = 32
max_header_bytes = 16384
# Time to send request headers; also the idle time between requests.
header_timeout_secs = 10
# Time to send a whole body (slow 2G uploads of 64 KiB fit easily).
body_timeout_secs = 30
handshake_timeout_secs = 10
max_connections = 4096
# Reports per minute per client, keyed by a secret hash of its address that
# is held only in memory, in a fixed number of buckets.
per_client_per_minute = 30
per_client_burst = 20
rate_buckets = 16384

[metrics]
# Without a token, /metrics answers loopback clients only.
# token_sha256 = "<64 hex digits>"

# Push delivery to the hotline's backend (`hotline-staff receive` is a
# minimal one). Without this section, staff pull reports instead; both may
# run together. Each record is POSTed with `Idempotency-Key: <record id>`;
# 2xx deletes it, a permanent 4xx (400, 404, 410, 413, 415, 422) moves it to
# dead-letter (GET /v1/staff/dead), anything else is retried with
# exponential backoff and jitter. The backend must dedupe by that id.
# [forward]
# https, or http only to a loopback address.
# backend_url = "https://hotline.example:9443/reports"
# PEM certificate(s) to trust for the backend; without it, the web PKI.
# ca_file = "gateway/backend-ca.pem"
# Mutual TLS: the gateway's client certificate and key (PEM).
# client_cert = "gateway/forward-client.pem"
# client_key = "gateway/forward-client-key.pem"
# Deliveries in flight at once.
# concurrency = 4
# Retry delays: random in [0, min(max_backoff_secs, initial * 2^n)].
# initial_backoff_ms = 500
# max_backoff_secs = 300
# timeout_secs = 30
"#;
