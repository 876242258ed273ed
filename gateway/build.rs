//! Reads every web form translation (`clients/web/i18n/*.json`) at build
//! time, so adding a language is one more file and a broken file (not JSON,
//! a value that is not a string, a key twice) fails the build. Writes
//! `web_i18n.rs`: one `Lang` per file, sorted by code, its strings sorted by
//! key, read by `src/web/i18n.rs`.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

#[path = "build/translations.rs"]
mod translations;

fn main() {
    // Read at run time, not baked in with env!: a build script binary can be
    // reused by a checkout at another path.
    let manifest = env::var_os("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|| panic!("cargo sets CARGO_MANIFEST_DIR for build scripts"));
    let dir = Path::new(&manifest).join("../clients/web/i18n");
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-changed=build/translations.rs");
    let mut langs: Vec<(String, Vec<(String, String)>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let code = path
                .file_name()?
                .to_str()?
                .strip_suffix(".json")?
                .to_owned();
            // A code goes into URLs and attributes: BCP 47-ish names only.
            let ok = !code.is_empty()
                && code.len() <= 16
                && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            assert!(ok, "{}: not a language code", path.display());
            let text =
                fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut strings =
                translations::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            strings.sort();
            Some((code, strings))
        })
        .collect();
    langs.sort();
    let mut out = String::from("&[\n");
    for (code, strings) in &langs {
        let _ = writeln!(
            out,
            "    Lang {{\n        code: {code:?},\n        strings: &["
        );
        for (key, text) in strings {
            let _ = writeln!(out, "            ({key:?}, {text:?}),");
        }
        out.push_str("        ],\n    },\n");
    }
    out.push(']');
    let out_dir = env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}"));
    let dest = Path::new(&out_dir).join("web_i18n.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}
