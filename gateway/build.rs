//! Embeds every web form translation (`clients/web/i18n/*.json`), so adding a
//! language is one more file and no code change. Parsing and checking happen
//! in `src/web.rs` (unit-tested); this only lists the files.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/web/i18n");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut langs: Vec<(String, String)> = fs::read_dir(&dir)
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
            Some((code, path.canonicalize().ok()?.display().to_string()))
        })
        .collect();
    langs.sort();
    let mut out = String::from("&[\n");
    for (code, path) in &langs {
        let _ = writeln!(out, "    ({code:?}, include_str!({path:?})),");
    }
    out.push(']');
    let out_dir = env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}"));
    let dest = Path::new(&out_dir).join("web_i18n.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}
