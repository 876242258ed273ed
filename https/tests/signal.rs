//! `shutdown_signal` resolves on SIGTERM. In its own test binary: the signal
//! goes to this whole process, whose default action (exit) the handler
//! replaces from the moment `shutdown_signal` is called.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[tokio::test]
async fn sigterm_resolves_the_shutdown_future() {
    let stop = hotline_https::shutdown_signal().unwrap();
    // Sent before the future is first polled: the handler is already in place.
    let status = Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    stop.await;
}
