//! The configuration file: `Config::load` on arbitrary text, then
//! `problems()`, what `check` and `run` do first. Never panics; a token
//! hash the parser accepts is 64 hex digits.
#![no_main]
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use hotline_gateway::config::{parse_sha256_hex, Config};
use libfuzzer_sys::fuzz_target;

/// One file per process, on tmpfs where there is one: `Config::load`
/// takes a path, and reading the real file keeps the path resolution in.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| hotline_fuzz::scratch_dir("config").join("config.toml"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    std::fs::write(path(), text).expect("write the scratch config");
    let Ok(config) = Config::load(path()) else {
        return;
    };
    let _ = config.problems();
    for h in config
        .staff
        .token_sha256
        .iter()
        .chain(config.metrics.token_sha256.as_ref())
    {
        if parse_sha256_hex(h).is_some() {
            let t = h.trim();
            assert!(
                t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()),
                "{h:?} accepted as a SHA-256"
            );
        }
    }
});
