//! Shared harness for the end-to-end tests: make a fresh install, start the
//! gateway on 127.0.0.1 (inside the test process, or as a real process when
//! the test needs one: SIGKILL, SIGTERM, logs, memory), talk to it over real
//! TLS, and read its data directory afterwards.
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

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use hotline_gateway::config::{BackendUrl, Config, Engine, ForwardConfig};
use hotline_https::{Answer, Transport};
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

/// The store engines the gateway binary of this test build has: sled only
/// when this crate is built with its `sled` feature.
pub const ENGINES: &[&str] = if cfg!(feature = "sled") {
    &["redb", "sled"]
} else {
    &["redb"]
};

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

/// Returns `text` with `from` replaced by `to`; panics when `from` is absent,
/// so a test never runs against a config it did not mean to write.
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in:\n{text}");
    text.replace(from, to)
}

/// The storage engine called `name` ("redb" or "sled").
pub fn engine_named(name: &str) -> Engine {
    match name {
        "redb" => Engine::Redb,
        "sled" => Engine::Sled,
        other => panic!("unknown engine {other}"),
    }
}

/// How a [`Gateway`] runs.
#[derive(Debug)]
enum Mode {
    /// A `hotline-gateway run` process: for what only a process shows
    /// (SIGKILL, SIGTERM, logs, memory).
    Process(Option<Child>),
    /// The library inside this test process, on its own thread and runtime,
    /// stopped through a oneshot channel: fast, for API behaviour.
    InProcess(Option<Served>),
}

/// A gateway served inside the test process.
#[derive(Debug)]
struct Served {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

/// A gateway install in a temporary directory, and the gateway when running.
#[derive(Debug)]
pub struct Gateway {
    /// The install (config, keys, store).
    pub dir: tempfile::TempDir,
    /// Its configuration; written to `config.toml` before each process start.
    pub config: Config,
    /// Where it listens (TLS), once started.
    pub addr: Option<SocketAddr>,
    /// Everything a process logged, across restarts.
    pub log: Arc<Mutex<String>>,
    mode: Mode,
}

impl Gateway {
    /// A fresh install (the library's `setup::install`, as `init` does),
    /// listening on 127.0.0.1 with a port picked at the first start, with
    /// `edit` applied to its typed config. Runs as a process; see
    /// [`Gateway::in_process`].
    pub fn install(edit: impl FnOnce(&mut Config)) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let installed = hotline_gateway::setup::install(dir.path(), false).expect("install");
        let mut config = Config::load(&installed.config).expect("the installed config loads");
        config.listen.tls = SocketAddr::from(([127, 0, 0, 1], 0));
        edit(&mut config);
        Gateway {
            dir,
            config,
            addr: None,
            log: Arc::new(Mutex::new(String::new())),
            mode: Mode::Process(None),
        }
    }

    /// An install with default settings and the given engine ("redb" or "sled").
    pub fn with_engine(engine: &str) -> Gateway {
        let engine = engine_named(engine);
        Gateway::install(|c| c.store.engine = engine)
    }

    /// Serves this install inside the test process instead of as a process.
    pub fn in_process(mut self) -> Gateway {
        assert!(
            self.addr.is_none(),
            "choose the mode before the first start"
        );
        self.mode = Mode::InProcess(None);
        self
    }

    /// Path of a file in the install.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Starts the gateway and waits until it listens. The port picked at the
    /// first start is kept in the config, so restarts keep it.
    pub fn start(&mut self) {
        let addr = match self.mode {
            Mode::Process(_) => self.start_process(),
            Mode::InProcess(_) => self.start_in_process(),
        };
        self.config.listen.tls = addr;
        self.addr = Some(addr);
    }

    fn start_in_process(&mut self) -> SocketAddr {
        let config = self.config.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime().block_on(async move {
                let gateway = match hotline_gateway::Gateway::bind(config).await {
                    Ok(g) => g,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e.to_string()));
                        return Err(e.to_string());
                    }
                };
                let _ = addr_tx.send(Ok(gateway.tls_addr()));
                // A dropped sender stops it too.
                gateway
                    .serve(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        let addr = addr_rx
            .recv()
            .expect("the gateway thread answers")
            .unwrap_or_else(|e| panic!("the gateway did not start: {e}"));
        self.mode = Mode::InProcess(Some(Served { stop, thread }));
        addr
    }

    fn start_process(&mut self) -> SocketAddr {
        let config_file = self.path("config.toml");
        std::fs::write(&config_file, toml::to_string(&self.config).unwrap()).unwrap();
        let mut child = Command::new(bin("hotline-gateway"))
            .args(["run", "--config"])
            .arg(&config_file)
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
            .unwrap_or_else(|e| {
                std::thread::sleep(Duration::from_millis(200));
                let status = child.try_wait();
                let _ = child.kill();
                panic!(
                    "gateway did not start listening ({e}; status {status:?}); log:\n{}",
                    self.log.lock().unwrap()
                )
            });
        self.mode = Mode::Process(Some(child));
        addr
    }

    /// Kills a process with SIGKILL, as a power cut would. An in-process
    /// gateway cannot be killed: it is stopped.
    pub fn kill(&mut self) {
        match &mut self.mode {
            Mode::Process(child) => {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            Mode::InProcess(served) => {
                if let Some(s) = served.take() {
                    let _ = s.stop.send(());
                    let _ = s.thread.join();
                }
            }
        }
    }

    /// Stops the gateway (a process with SIGTERM) and returns its exit
    /// status; an in-process gateway's is 0 when `serve` returned `Ok`.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        let mut c = match &mut self.mode {
            Mode::Process(child) => child.take().expect("running"),
            Mode::InProcess(served) => {
                let s = served.take().expect("running");
                let _ = s.stop.send(());
                return match s.thread.join() {
                    Ok(Ok(())) => std::process::ExitStatus::from_raw(0),
                    Ok(Err(e)) => {
                        eprintln!("the gateway stopped with an error: {e}");
                        std::process::ExitStatus::from_raw(1 << 8)
                    }
                    Err(_) => panic!("the gateway thread panicked"),
                };
            }
        };
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
        match &self.mode {
            Mode::Process(Some(c)) => c.id(),
            Mode::Process(None) => panic!("not running"),
            Mode::InProcess(_) => panic!("an in-process gateway has no process id"),
        }
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

    /// Everything the process logged so far.
    pub fn log_text(&self) -> String {
        assert!(
            matches!(self.mode, Mode::Process(_)),
            "an in-process gateway's logs are not captured: run it as a process"
        );
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

/// Acks `ids` through the staff API and returns how many were deleted.
pub async fn staff_ack(t: &Transport, token: &str, ids: Vec<impl AsRef<str>>) -> u64 {
    let ids = ids.iter().map(|id| id.as_ref().to_owned()).collect();
    let auth = format!("Bearer {token}");
    let a = t
        .send(
            Method::POST,
            "/v1/staff/ack",
            &[("authorization", &auth)],
            hotline_protocol::AckRequest { ids }.encode(),
        )
        .await
        .expect("staff ack");
    assert_eq!(a.status, 200, "staff ack answered {}", a.status);
    hotline_protocol::AckAnswer::decode(&a.body)
        .expect("ack answer decodes")
        .acked
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

// ---------------------------------------------------------------------------
// Delivery to the hotline: push-mode backend and helpers.

/// A free TCP port on 127.0.0.1 (bound and released; a process started right
/// after can take it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Raises the per-client limits so one test client may send hundreds of
/// reports and receipt checks from 127.0.0.1.
pub fn open_limits(config: &mut Config) {
    config.limits.per_client_per_minute = 1_000_000;
    config.limits.per_client_burst = 100_000;
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

/// Seals `n` reports (descriptions "report {i}") and submits them with
/// `tasks` concurrent clients; returns (id, receipt) in submission order.
pub async fn submit_many(gw: &Gateway, n: usize, tasks: usize) -> Vec<(String, String)> {
    let doc = gw.key_document();
    let rng = ring::rand::SystemRandom::new();
    let envelopes: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            hotline_protocol::seal_report(
                &sample_report(&format!("report {i}")),
                &doc.public_key,
                Aead::ChaCha20Poly1305,
                &rng,
            )
            .unwrap()
            .encode()
        })
        .collect();
    let t = gw.transport();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let envelopes = Arc::new(envelopes);
    let mut handles = Vec::new();
    for _ in 0..tasks.max(1) {
        let (t, next, envelopes) = (t.clone(), next.clone(), envelopes.clone());
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= envelopes.len() {
                    return mine;
                }
                let a = submit(&t, envelopes[i].clone(), None).await;
                assert_eq!(a.status, 201, "submit answered {}", a.status);
                let a = hotline_protocol::SubmitAnswer::decode(&a.body).unwrap();
                mine.push((i, a.id.to_string(), a.receipt));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_by_key(|(i, _, _)| *i);
    all.into_iter().map(|(_, id, r)| (id, r)).collect()
}

/// One value from the gateway's /metrics (open to loopback clients).
pub async fn metric(t: &Transport, name: &str) -> f64 {
    let a = t
        .send(Method::GET, "/metrics", &[], Vec::new())
        .await
        .expect("metrics");
    assert_eq!(a.status, 200, "/metrics answered {}", a.status);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Waits until the gateway's queue is empty; returns how long it took.
pub async fn wait_for_drain(t: &Transport, token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if metric(t, "hotline_queue_depth").await == 0.0
            && staff_list_all(t, token).await.reports.is_empty()
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "the queue did not drain within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `hotline-staff pull` for a gateway into `out`; returns the process
/// (stdout and stderr piped).
pub fn spawn_pull(gw: &Gateway, out: &Path, page: usize) -> Child {
    spawn_pull_with(gw, out, page, &[])
}

/// [`spawn_pull`] with extra arguments (e.g. `--dead`).
pub fn spawn_pull_with(gw: &Gateway, out: &Path, page: usize, extra: &[&str]) -> Child {
    let token_file = gw.path("hotline-private/staff-token.txt");
    Command::new(bin("hotline-staff"))
        .arg("pull")
        .args([
            "--url",
            &format!("https://127.0.0.1:{}", gw.addr.expect("started").port()),
        ])
        .arg("--token-file")
        .arg(token_file)
        .arg("--key")
        .arg(gw.path("hotline-private/hotline-hpke.pem"))
        .arg("--out")
        .arg(out)
        .arg("--ca")
        .arg(gw.path("gateway/tls/cert.pem"))
        .args(["--page", &page.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hotline-staff pull")
}

/// An envelope sealed to the gateway's key (so it is accepted) whose
/// ciphertext was altered (so the hotline cannot open it).
pub fn corrupt_envelope(gw: &Gateway) -> Vec<u8> {
    let env = seal(gw, &sample_report("tampered"));
    let mut e = hotline_protocol::Envelope::decode(&env).unwrap();
    e.ct[0] ^= 0x55;
    e.encode()
}

/// A rustls client configuration that trusts only this gateway's
/// self-signed certificate and offers `alpn`, for tests that speak raw
/// TLS, HTTP/2 or bind their own source address.
pub fn tls_client(gw: &Gateway, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(gw.path("gateway/tls/cert.pem"))
        .expect("certificate file")
    {
        roots.add(c.expect("certificate")).expect("add certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
