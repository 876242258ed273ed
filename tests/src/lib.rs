//! Shared harness for the end-to-end tests: make a fresh install, start the
//! gateway on 127.0.0.1 (inside the test process, or as a real process when
//! the test needs one: SIGKILL, SIGTERM, logs, memory), talk to it over real
//! TLS, and read its data directory afterwards.
//!
//! Layout: `gateway` (install, start, stop), `receiver` (the push-mode backend),
//! `requests` (what clients and staff send), `binaries` (building the workspace's
//! binaries) and `util`; everything is re-exported here.
//!
//! ```no_run
//! # use hotline_e2e::*;
//! let mut gw = Gateway::install(|c| c.limits.max_headers = 8).in_process();
//! gw.start();
//! runtime().block_on(async {
//!     let answer = submit(&gw.transport(), seal(&gw, &sample_report("x")), None).await;
//!     assert_eq!(answer.status, 201);
//! });
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binaries;
mod gateway;
mod receiver;
mod requests;
mod util;

pub use binaries::{bin, bin_dir, workspace};
pub use gateway::{engine_named, open_limits, rss_kib, Gateway, ENGINES};
pub use hotline_gateway::config::{BackendUrl, Config, Engine, ForwardConfig};
pub use receiver::{forward_section, free_port, report_files, Receiver};
pub use requests::{
    corrupt_envelope, metric, sample_report, seal, spawn_pull, spawn_pull_with, staff_ack,
    staff_list_all, submit, submit_many, tls_client, wait_for_drain,
};
pub use util::{edit, files_contain, runtime};
