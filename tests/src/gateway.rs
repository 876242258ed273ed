//! The gateway under test: a fresh install in a temporary directory, served inside the test
//! process or as a real `hotline-gateway run` process, started, stopped, killed and read back.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotline_https::Transport;
use hotline_protocol::{HpkeSecretKey, KeyDocument, VerifyingKey};

use crate::{bin, runtime, Config, Engine};

/// The store engines the gateway binary of this test build has: sled only
/// when this crate is built with its `sled` feature.
pub const ENGINES: &[&str] = if cfg!(feature = "sled") {
    &["redb", "sled"]
} else {
    &["redb"]
};

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

/// Raises the per-client limits so one test client may send hundreds of
/// reports and receipt checks from 127.0.0.1.
pub fn open_limits(config: &mut Config) {
    config.limits.per_client_per_minute = 1_000_000;
    config.limits.per_client_burst = 100_000;
}
