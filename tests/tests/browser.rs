//! The public web form in a real browser: runs `tests/browser/*.test.mjs`
//! (node:test + playwright-core driving Debian's Chromium, no browser
//! download) against the freshly built gateway, so `cargo test` covers the
//! form with and without JavaScript, in English and French, down to the
//! hotline opening each report. Screenshots go to `HOTLINE_ARTIFACTS`
//! (default `tests/browser/artifacts`, gitignored).
//!
//! Needs `npm ci` in tests/browser and `/usr/bin/chromium` (or
//! `HOTLINE_CHROMIUM`); `ops/test-all` installs both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole browser run takes about 15 s; this only stops a hung one.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn web_form_in_a_real_browser() {
    let root = hotline_e2e::workspace();
    let dir = root.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run `npm ci` in tests/browser \
         (ops/test-all does it, and installs chromium)"
    );
    let chromium = std::env::var_os("HOTLINE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "no Chromium at {}: `apt-get install -y chromium` (ops/test-all does it) \
         or set HOTLINE_CHROMIUM",
        chromium.display()
    );
    let mut tests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read tests/browser")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "no tests/browser/*.test.mjs");

    let gateway = hotline_e2e::bin("hotline-gateway");
    assert!(gateway.exists(), "{} was not built", gateway.display());
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .arg("--test")
        .args(&tests)
        .env("HOTLINE_GATEWAY_BIN", &gateway)
        .env("HOTLINE_CHROMIUM", &chromium)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The test opens reports itself (HPKE in node); hotline-staff is passed
    // on for checks that want it, when it has been built.
    let staff = hotline_e2e::bin_dir().join("hotline-staff");
    if staff.exists() {
        cmd.env("HOTLINE_STAFF_BIN", &staff);
    }
    let mut child = cmd
        .spawn()
        .expect("cannot run `node`: install Node.js 20 or later");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    println!("{out}");
    if !err.trim().is_empty() {
        println!("--- node stderr ---\n{err}");
    }
    match status {
        None => panic!("the browser test did not finish in {LIMIT:?}"),
        Some(status) => assert!(
            status.success(),
            "the browser test failed ({status}); node's output is above"
        ),
    }
}
