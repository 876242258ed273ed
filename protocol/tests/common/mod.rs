//! What a test that needs an outside tool does when the tool is missing.
//!
//! `cargo test` in a bare clone must pass, so by default such a test skips and
//! says how to enable it; `ops/test-all` sets `HOTLINE_REQUIRE_INTEROP=1`, and
//! there a missing tool is a failure, so a broken setup cannot pass silently.

use std::io::Write;

/// Set to `1` by `ops/test-all`: missing outside tools fail the tests.
pub const REQUIRE_INTEROP: &str = "HOTLINE_REQUIRE_INTEROP";

/// Panics with `problem` if tools are required, else prints a skip notice.
/// The notice goes straight to the process's stderr, past the test
/// harness's output capture, so it shows in a plain `cargo test` run.
pub fn skip_or_fail(test: &str, problem: &str) {
    let hint = "run `bash ops/test-all` to install what it needs and run it";
    if std::env::var(REQUIRE_INTEROP).as_deref() == Ok("1") {
        panic!(
            "{test}: {problem} ({REQUIRE_INTEROP}=1, so this fails instead of skipping); {hint}"
        );
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {problem}; {hint}");
}
