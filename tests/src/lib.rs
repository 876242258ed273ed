//! Shared harness for the end-to-end tests: build the binaries once, start a
//! real gateway process on 127.0.0.1 with a fresh install, talk to it over
//! real TLS, and read its logs and data directory afterwards.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hotline_client::transport::{Answer, Transport};
use hotline_protocol::{
    Aead, Category, HpkeSecretKey, KeyDocument, Report, StaffList, VerifyingKey,
};
use hyper::Method;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Builds the workspace binaries once per test process and returns the
/// folder that holds them (same profile as the tests).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let release = !cfg!(debug_assertions);
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(workspace()).args([
            "build",
            "--quiet",
            "-p",
            "hotline-gateway",
            "-p",
            "hotline-staff",
            "-p",
            "hotline-client",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target"));
        target.join(if release { "release" } else { "debug" })
    })
}

/// Path of a workspace binary.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// A gateway install in a temporary directory, and its process when running.
pub struct Gateway {
    /// The install (config, keys, store).
    pub dir: tempfile::TempDir,
    /// The running process.
    pub child: Option<Child>,
    /// Where it listens (TLS).
    pub addr: Option<SocketAddr>,
    /// Everything it logged, across restarts.
    pub log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Makes a fresh install with `init`, then applies `edit` to its config text.
    pub fn install(edit: impl FnOnce(String) -> String) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new(bin("hotline-gateway"))
            .args(["init", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .status()
            .expect("run init");
        assert!(status.success(), "hotline-gateway init failed");
        let config = dir.path().join("config.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text.replace("tls = \"127.0.0.1:8443\"", "tls = \"127.0.0.1:0\"");
        std::fs::write(&config, edit(text)).unwrap();
        Gateway {
            dir,
            child: None,
            addr: None,
            log: Arc::new(Mutex::new(String::new())),
        }
    }

    /// An install with default settings and the given engine ("redb" or "sled").
    pub fn with_engine(engine: &str) -> Gateway {
        let engine = engine.to_owned();
        Gateway::install(move |t| t.replace("engine = \"redb\"", &format!("engine = \"{engine}\"")))
    }

    /// Path of a file in the install.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Starts the process and waits until it listens. After the first start
    /// the port is written into the config, so restarts keep it.
    pub fn start(&mut self) {
        let mut child = Command::new(bin("hotline-gateway"))
            .args(["run", "--config"])
            .arg(self.path("config.toml"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gateway");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening (TLS)") {
                    if let Some(addr) = line
                        .split("addr=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                    {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "gateway did not start listening; log:\n{}",
                    self.log.lock().unwrap()
                )
            });
        if self.addr.is_none() {
            let config = self.path("config.toml");
            let text = std::fs::read_to_string(&config).unwrap();
            std::fs::write(
                &config,
                text.replace("tls = \"127.0.0.1:0\"", &format!("tls = \"{addr}\"")),
            )
            .unwrap();
        }
        self.addr = Some(addr);
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL, as a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the process with SIGTERM and returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("gateway did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Resident memory of the process in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// A client for this gateway that trusts its self-signed certificate.
    pub fn transport(&self) -> Transport {
        Transport::new(
            &format!("https://127.0.0.1:{}", self.addr.expect("started").port()),
            Some(&self.path("gateway/tls/cert.pem")),
        )
        .expect("transport")
        .timeout(Duration::from_secs(20))
    }

    /// The staff bearer token.
    pub fn staff_token(&self) -> String {
        std::fs::read_to_string(self.path("hotline-private/staff-token.txt"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The hotline private key.
    pub fn hotline_key(&self) -> HpkeSecretKey {
        HpkeSecretKey::from_pem(
            &std::fs::read_to_string(self.path("hotline-private/hotline-hpke.pem")).unwrap(),
        )
        .unwrap()
    }

    /// The verified key document.
    pub fn key_document(&self) -> KeyDocument {
        let signed = std::fs::read(self.path("gateway/key-document.cbor")).unwrap();
        let pem = std::fs::read_to_string(self.path("gateway/signing-public.pem")).unwrap();
        let pinned = VerifyingKey::from_pem(&pem).unwrap();
        KeyDocument::verify(&signed, &pinned, hotline_protocol_now()).unwrap()
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

fn hotline_protocol_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Resident memory of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A report with a recognisable description.
pub fn sample_report(description: &str) -> Report {
    let mut r = Report::new(Category::Csam);
    r.urls = vec!["https://example.invalid/a".into()];
    r.description = Some(description.to_owned());
    r.lang = Some("en".into());
    r
}

/// Seals a report to the gateway's key.
pub fn seal(gw: &Gateway, report: &Report) -> Vec<u8> {
    let doc = gw.key_document();
    hotline_protocol::seal_report(
        report,
        &doc.public_key,
        Aead::ChaCha20Poly1305,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap()
    .encode()
}

/// POSTs an envelope to /v1/reports.
pub async fn submit(t: &Transport, envelope: Vec<u8>, idempotency_key: Option<&str>) -> Answer {
    let mut headers = vec![("content-type", "application/cbor")];
    if let Some(k) = idempotency_key {
        headers.push(("idempotency-key", k));
    }
    t.send(Method::POST, "/v1/reports", &headers, envelope)
        .await
        .expect("submit")
}

/// Lists every queued record through the staff API.
pub async fn staff_list_all(t: &Transport, token: &str) -> StaffList {
    let auth = format!("Bearer {token}");
    let mut all = StaffList {
        reports: Vec::new(),
        next: None,
    };
    let mut after = 0u64;
    loop {
        let a = t
            .send(
                Method::GET,
                &format!("/v1/staff/reports?after={after}&limit=1000"),
                &[("authorization", &auth)],
                Vec::new(),
            )
            .await
            .expect("staff list");
        assert_eq!(a.status, 200, "staff list answered {}", a.status);
        let page = StaffList::decode(&a.body).expect("staff list decodes");
        all.reports.extend(page.reports);
        match page.next {
            Some(n) => after = n.parse().unwrap(),
            None => return all,
        }
    }
}

/// Every byte of every file under `dir`, for canary searches.
pub fn files_contain(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

/// A multi-threaded runtime for a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
