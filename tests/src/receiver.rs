//! Delivery to the hotline: a `hotline-staff receive` process as the push-mode backend, and
//! the config that points a gateway at it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{bin, BackendUrl, ForwardConfig, Gateway};

/// A free TCP port on 127.0.0.1 (bound and released; a process started right
/// after can take it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `[forward]` section pointing at a receiver, with small backoff for tests.
pub fn forward_section(receiver: &Receiver) -> ForwardConfig {
    let url: BackendUrl = format!("{}/reports", receiver.url()).parse().unwrap();
    let mut forward = ForwardConfig::new(url);
    forward.ca_file = Some(receiver.cert.clone());
    forward.concurrency = 4;
    forward.initial_backoff = Duration::from_millis(50);
    forward.max_backoff = Duration::from_secs(1);
    forward.timeout = Duration::from_secs(10);
    forward
}

/// A `hotline-staff receive` process: the hotline's backend in push mode.
/// Keeps its port across restarts; its stdout events (`stored ID`,
/// `duplicate ID`) and stderr are kept across restarts too.
#[derive(Debug)]
pub struct Receiver {
    /// Folder for its TLS files.
    pub dir: tempfile::TempDir,
    /// Where it writes reports.
    pub out: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// TLS certificate (also the CA the gateway trusts).
    pub cert: PathBuf,
    /// TLS private key.
    pub cert_key: PathBuf,
    /// The hotline private key it opens reports with.
    pub hotline_key: PathBuf,
    /// The running process.
    pub child: Option<Child>,
    /// stdout lines of every run.
    pub events: Arc<Mutex<Vec<String>>>,
    /// stderr of every run.
    pub log: Arc<Mutex<String>>,
}

impl Receiver {
    /// A receiver (not started) that opens reports with `gw`'s hotline key.
    pub fn new(gw: &Gateway) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        Receiver {
            out: dir.path().join("out"),
            port: free_port(),
            cert: cert_path,
            cert_key: key_path,
            hotline_key: gw.path("hotline-private/hotline-hpke.pem"),
            dir,
            child: None,
            events: Arc::new(Mutex::new(Vec::new())),
            log: Arc::new(Mutex::new(String::new())),
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Starts it and waits until it listens.
    pub fn start(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(bin("hotline-staff"))
                .arg("receive")
                .args(["--listen", &format!("127.0.0.1:{}", self.port)])
                .arg("--cert")
                .arg(&self.cert)
                .arg("--key-file")
                .arg(&self.cert_key)
                .arg("--key")
                .arg(&self.hotline_key)
                .arg("--out")
                .arg(&self.out)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start hotline-staff receive");
            let stdout = child.stdout.take().unwrap();
            let events = self.events.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    events.lock().unwrap().push(line);
                }
            });
            let stderr = child.stderr.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let log = self.log.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening on") {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
            if rx.recv_timeout(Duration::from_secs(10)).is_ok() {
                self.child = Some(child);
                return;
            }
            // The port may still be held for a moment by the last run.
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "receiver did not start; log:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills it with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Ids it reported as newly stored, in order, across all runs.
    pub fn stored(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix("stored ").map(str::to_owned))
            .collect()
    }

    /// Ids of the report files in its output folder.
    pub fn files(&self) -> Vec<String> {
        report_files(&self.out)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Ids of the `<id>.json` files in a staff output folder, sorted.
pub fn report_files(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (!name.starts_with('.'))
                        .then(|| name.strip_suffix(".json").map(str::to_owned))
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}
