//! The configuration file: `Config::from_toml` on arbitrary text (what
//! `Config::load` runs on the file's text), then `problems()`, what `check`
//! and `run` do first. Never panics; a config that loads serializes to TOML
//! that loads to the same config; and a token hash the parser accepts is 64
//! hex digits (each quoted string of the input is tried as one).
#![no_main]
#![forbid(unsafe_code)]

use std::path::Path;

use hotline_gateway::config::{parse_sha256_hex, Config};
use libfuzzer_sys::fuzz_target;

/// Relative paths in the input resolve against this folder, which does not
/// exist: `problems()` then reports the files as missing, never touching any.
const BASE: &str = "/nonexistent/hotline-fuzz";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for quoted in text.split(['\'', '"']).skip(1).step_by(2) {
        if parse_sha256_hex(quoted).is_some() {
            let t = quoted.trim();
            assert!(
                t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()),
                "{quoted:?} accepted as a SHA-256"
            );
        }
    }
    let Ok(config) = Config::from_toml(text, Path::new(BASE)) else {
        return;
    };
    let _ = config.problems();
    // Paths are absolute once loaded, so the base no longer matters.
    if let Ok(written) = toml::to_string(&config) {
        let again = Config::from_toml(&written, Path::new("/elsewhere"))
            .unwrap_or_else(|e| panic!("a written config does not load: {e}\n{written}"));
        assert_eq!(again, config, "{written}");
    }
});
