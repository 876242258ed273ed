//! The workspace's binaries for the tests that run real processes: where they are, and
//! building them once per test process so a test never runs a stale one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The folder that holds the workspace's binaries (same profile as the tests).
pub fn bin_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join(if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    })
}

/// Path of a workspace binary, built (once per test process) by cargo so a
/// test never runs a stale one (the gateway with sled when this crate has
/// the `sled` feature).
pub fn bin(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let package = match name {
        "hotline-gateway" => "hotline-gateway",
        "hotline-staff" => "hotline-staff",
        "hotline-report" => "hotline-client",
        other => panic!("unknown binary {other}"),
    };
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == package) {
        let mut cmd = Command::new(env!("CARGO"));
        // With this crate in the same build, shared dependencies keep the
        // features `cargo test` gave them: nothing is rebuilt back and forth.
        cmd.current_dir(workspace())
            .args(["build", "--quiet", "-p", package, "-p", "hotline-e2e"]);
        // What cargo set for this test process is not the build's: ring's
        // build script watches CARGO_MANIFEST_DIR, and a changed value
        // rebuilds ring and everything above it, here and in the next
        // `cargo test`.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key == "CARGO_MANIFEST_DIR"
                || key == "CARGO_MANIFEST_PATH"
                || key == "CARGO_CRATE_NAME"
                || key == "CARGO_PRIMARY_PACKAGE"
                || key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_EXE_")
            {
                cmd.env_remove(key.as_ref());
            }
        }
        // The same features as this test build, so the binaries match it.
        if cfg!(feature = "sled") {
            cmd.args(["--features", "hotline-e2e/sled"]);
        }
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
        built.push(package.to_owned());
    }
    bin_dir().join(name)
}
