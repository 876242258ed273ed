//! `hotline-report`: submit reports to a hotline gateway from the command
//! line, for apps' developers and industry partners.
//!
//! Every report is padded and sealed here, to a hotline key that the pinned
//! signing key vouches for; the gateway only ever sees the envelope. Images
//! given with `--image` are hashed here and only the hashes are sent.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use hotline_client::key::{fetch_key, verify_key_document, KeyError, Pin, VerifiedKey};
use hotline_client::queue::{FlushOptions, FlushReport, Queue};
use hotline_client::report::{hash_image_file, parse_category, parse_seen_at, ReportInput};
use hotline_client::status::receipt_status;
use hotline_client::submit::{seal, send_with_retries, IdempotencyKey, RetryPolicy};
use hotline_https::Transport;
use hotline_protocol::time::unix_now;
use hotline_protocol::Report;

/// Exit status when a report or line was refused or could not be sent.
const EXIT_FAILED: u8 = 1;
/// Exit status for bad arguments (as clap uses).
const EXIT_USAGE: u8 = 2;
/// Exit status when the gateway's key was refused: do not send to it.
const EXIT_KEY_REFUSED: u8 = 3;
/// Exit status when reports stay queued for later (EX_TEMPFAIL).
const EXIT_TEMPFAIL: u8 = 75;

#[derive(Debug, Parser)]
#[command(
    name = "hotline-report",
    version,
    about = "Report online child sexual exploitation to a hotline: sealed on this device, \
             sent through the hotline's gateway."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Seal and send one report (or queue it with --queue-dir).
    Submit(SubmitArgs),
    /// Send the reports waiting in a queue directory.
    Flush(FlushArgs),
    /// Look up a receipt code.
    Status(StatusArgs),
    /// Seal and send each line of a JSON-lines file as its own report.
    Batch(BatchArgs),
    /// Fetch the hotline key from the gateway and check it against the pin.
    Key(KeyArgs),
}

#[derive(Debug, Args)]
struct Gateway {
    /// The gateway, e.g. https://report.example.org
    #[arg(long, env = "HOTLINE_URL")]
    url: String,
    /// Trust only this certificate (PEM), e.g. a self-signed gateway's.
    #[arg(long, env = "HOTLINE_CA")]
    ca: Option<PathBuf>,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Debug, Args)]
struct Retries {
    /// Attempts per report, the first included; waits grow exponentially
    /// with jitter and honour Retry-After.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
}

#[derive(Debug, Args)]
struct SubmitArgs {
    #[command(flatten)]
    gateway: Gateway,
    /// The hotline signing key's fingerprint ("1A2B 3C4D ..."), or its PEM file.
    #[arg(long, env = "HOTLINE_PIN")]
    pin: String,
    #[command(flatten)]
    retries: Retries,
    /// csam, grooming, sextortion, livestream, self-generated or other.
    #[arg(long)]
    category: String,
    /// A link to what is reported (repeat for several).
    #[arg(long = "url-reported", value_name = "URL")]
    urls: Vec<String>,
    /// What was seen, in the reporter's words.
    #[arg(long)]
    description: Option<String>,
    /// The platform or app where it was seen.
    #[arg(long)]
    platform: Option<String>,
    /// When it was seen: YYYY-MM-DD or unix seconds.
    #[arg(long = "seen-at")]
    seen_at: Option<String>,
    /// The reporter's language (BCP 47, e.g. fr).
    #[arg(long)]
    lang: Option<String>,
    /// How the hotline may reach the reporter, if they wish.
    #[arg(long)]
    contact: Option<String>,
    /// An image to report by its hashes (SHA-256, MD5, PDQ computed here);
    /// the image itself is never sent. Repeat for several.
    #[arg(long, value_name = "FILE")]
    image: Vec<PathBuf>,
    /// Queue the sealed report durably in this directory first, then try to
    /// send it; if the gateway is unreachable it stays queued (exit 0).
    #[arg(long = "queue-dir", value_name = "DIR")]
    queue_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FlushArgs {
    #[command(flatten)]
    gateway: Gateway,
    /// If given, the gateway's key is checked against it before sending.
    #[arg(long, env = "HOTLINE_PIN")]
    pin: Option<String>,
    #[command(flatten)]
    retries: Retries,
    /// The queue directory.
    #[arg(long = "queue-dir", value_name = "DIR")]
    queue_dir: PathBuf,
    /// Reports in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Least milliseconds between the starts of two sends.
    #[arg(long = "pace-ms", default_value_t = 0)]
    pace_ms: u64,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    gateway: Gateway,
    /// The receipt code, e.g. 1234-5678-9012-3456.
    code: String,
}

#[derive(Debug, Args)]
struct BatchArgs {
    #[command(flatten)]
    gateway: Gateway,
    /// The hotline signing key's fingerprint, or its PEM file.
    #[arg(long, env = "HOTLINE_PIN")]
    pin: String,
    #[command(flatten)]
    retries: Retries,
    /// Reports in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Least milliseconds between the starts of two sends (to stay under the
    /// gateway's per-client rate limit).
    #[arg(long = "pace-ms", default_value_t = 0)]
    pace_ms: u64,
    /// One JSON object per line: category, urls, description, platform,
    /// seen_at, lang, contact, hashes [{alg, value (hex)}].
    file: PathBuf,
}

#[derive(Debug, Args)]
struct KeyArgs {
    #[command(flatten)]
    gateway: Gateway,
    /// The hotline signing key's fingerprint, or its PEM file.
    #[arg(long, env = "HOTLINE_PIN")]
    pin: String,
    /// Cache the verified key here, so reports can be sealed offline.
    #[arg(long = "queue-dir", value_name = "DIR")]
    queue_dir: Option<PathBuf>,
}

/// A failure with the exit status it maps to.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

fn failed(message: impl std::fmt::Display) -> Failure {
    Failure::new(EXIT_FAILED, message.to_string())
}

impl From<KeyError> for Failure {
    fn from(e: KeyError) -> Failure {
        let code = if e.is_retryable() {
            EXIT_FAILED
        } else {
            EXIT_KEY_REFUSED
        };
        Failure::new(code, e.to_string())
    }
}

type Outcome = Result<ExitCode, Failure>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Submit(a) => submit(a).await,
        Command::Flush(a) => flush(a).await,
        Command::Status(a) => status(a).await,
        Command::Batch(a) => batch(a).await,
        Command::Key(a) => key(a).await,
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("hotline-report: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn transport(g: &Gateway) -> Result<Transport, Failure> {
    Transport::new(&g.url, g.ca.as_deref())
        .map(|t| t.timeout(Duration::from_secs(g.timeout.max(1))))
        .map_err(|e| Failure::new(EXIT_USAGE, e.to_string()))
}

fn pin(text: &str) -> Result<Pin, Failure> {
    Pin::parse(text).map_err(|e| Failure::new(EXIT_USAGE, format!("--pin: {e}")))
}

fn policy(r: &Retries) -> RetryPolicy {
    RetryPolicy {
        max_attempts: r.attempts.max(1),
        ..RetryPolicy::default()
    }
}

/// Fetches and verifies the key, retrying network trouble (never a refusal).
async fn fetch_key_retrying(
    t: &Transport,
    pin: &Pin,
    policy: &RetryPolicy,
) -> Result<VerifiedKey, KeyError> {
    let mut attempt = 1;
    loop {
        match fetch_key(t, pin).await {
            Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                tokio::time::sleep(policy.backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn print_key(k: &VerifiedKey) {
    println!("signing key fingerprint: {}", k.signer.fingerprint());
    println!(
        "hotline key: kid {} ({})",
        k.document.kid(),
        hotline_protocol::fingerprint(&k.document.public_key.0)
    );
    println!("valid until: unix {}", k.document.not_after);
}

fn build_report(a: &SubmitArgs) -> Result<Report, Failure> {
    let mut r = Report::new(
        parse_category(&a.category).map_err(|e| Failure::new(EXIT_USAGE, e.to_string()))?,
    );
    r.urls = a.urls.clone();
    r.description = a.description.clone();
    r.platform = a.platform.clone();
    r.lang = a.lang.clone();
    r.contact = a.contact.clone();
    r.seen_at = a
        .seen_at
        .as_deref()
        .map(parse_seen_at)
        .transpose()
        .map_err(|e| Failure::new(EXIT_USAGE, e.to_string()))?;
    for path in &a.image {
        let (hashes, warning) = hash_image_file(path)
            .map_err(|e| Failure::new(EXIT_USAGE, format!("{}: {e}", path.display())))?;
        if let Some(w) = warning {
            eprintln!("hotline-report: {}: {w}", path.display());
        }
        r.hashes.extend(hashes);
    }
    Ok(r)
}

fn print_sent(id: &str, receipt: &str) {
    println!("sent");
    println!("receipt: {receipt}");
    println!("id: {id}");
    eprintln!(
        "Keep the receipt code to check on the report: hotline-report status --url ... {receipt}"
    );
}

async fn submit(a: SubmitArgs) -> Outcome {
    let t = transport(&a.gateway)?;
    let pin = pin(&a.pin)?;
    let policy = policy(&a.retries);
    let report = build_report(&a)?;
    let Some(dir) = &a.queue_dir else {
        let key = fetch_key_retrying(&t, &pin, &policy).await?;
        let envelope = seal(&report, &key.document).map_err(failed)?;
        let idem = IdempotencyKey::generate().map_err(failed)?;
        let answer = send_with_retries(&t, &envelope, &idem, &policy)
            .await
            .map_err(failed)?;
        print_sent(&answer.id, &answer.receipt);
        return Ok(ExitCode::SUCCESS);
    };

    let queue = Queue::open(dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    let (key, online) = match fetch_key_retrying(&t, &pin, &RetryPolicy::once()).await {
        Ok(k) => {
            queue
                .save_key(&k.signed)
                .map_err(|e| failed(format!("caching the key: {e}")))?;
            (k, true)
        }
        Err(e) if e.is_retryable() => {
            let cached = queue.cached_key().ok_or_else(|| {
                failed(format!(
                    "{e}; and no hotline key is cached in {} to seal the report offline \
                     (run `hotline-report key --queue-dir {}` once while online)",
                    dir.display(),
                    dir.display()
                ))
            })?;
            let k = verify_key_document(&cached, &pin, unix_now())?;
            eprintln!("hotline-report: gateway unreachable ({e}); sealing with the cached key");
            (k, false)
        }
        Err(e) => return Err(e.into()),
    };
    let envelope = seal(&report, &key.document).map_err(failed)?;
    let idem = queue
        .push(&envelope)
        .map_err(|e| failed(format!("queueing in {}: {e}", dir.display())))?;
    eprintln!("hotline-report: sealed and queued as {idem}");
    if !online {
        println!("queued, will send later");
        return Ok(ExitCode::SUCCESS);
    }
    let options = FlushOptions {
        policy,
        ..FlushOptions::default()
    };
    let flushed = queue
        .flush(&t, &options)
        .await
        .map_err(|e| failed(format!("flushing {}: {e}", dir.display())))?;
    let ours = idem.to_string();
    if let Some(s) = flushed.sent.iter().find(|s| s.idempotency_key == ours) {
        print_sent(&s.id, &s.receipt);
        summarize_flush(&flushed, false);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some((_, why)) = flushed.failed.iter().find(|(k, _)| *k == idem) {
        summarize_flush(&flushed, false);
        return Err(failed(format!(
            "the gateway refused the report: {why}; it is kept in {}",
            dir.join(hotline_client::queue::FAILED_DIR).display()
        )));
    }
    summarize_flush(&flushed, false);
    println!("queued, will send later");
    Ok(ExitCode::SUCCESS)
}

fn summarize_flush(r: &FlushReport, verbose: bool) {
    if verbose {
        for s in &r.sent {
            println!(
                "sent {} receipt {} id {}",
                s.idempotency_key, s.receipt, s.id
            );
        }
    }
    for (k, why) in &r.failed {
        eprintln!("hotline-report: refused {k}: {why} (moved to failed/)");
    }
    if r.unreachable {
        eprintln!("hotline-report: the gateway is unreachable");
    }
    if verbose || !r.kept.is_empty() || !r.failed.is_empty() {
        eprintln!(
            "hotline-report: {} sent, {} still queued, {} refused",
            r.sent.len(),
            r.kept.len(),
            r.failed.len()
        );
    }
}

async fn flush(a: FlushArgs) -> Outcome {
    let t = transport(&a.gateway)?;
    let policy = policy(&a.retries);
    let queue =
        Queue::open(&a.queue_dir).map_err(|e| failed(format!("{}: {e}", a.queue_dir.display())))?;
    if let Some(p) = &a.pin {
        let pin = pin(p)?;
        match fetch_key_retrying(&t, &pin, &policy).await {
            Ok(k) => queue
                .save_key(&k.signed)
                .map_err(|e| failed(format!("caching the key: {e}")))?,
            Err(e) if e.is_retryable() => {
                eprintln!("hotline-report: {e}; everything stays queued");
                return Ok(ExitCode::from(EXIT_TEMPFAIL));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let options = FlushOptions {
        policy,
        concurrency: a.concurrency.max(1),
        pace: Duration::from_millis(a.pace_ms),
    };
    let r = queue
        .flush(&t, &options)
        .await
        .map_err(|e| failed(format!("flushing {}: {e}", a.queue_dir.display())))?;
    summarize_flush(&r, true);
    Ok(if !r.failed.is_empty() {
        ExitCode::from(EXIT_FAILED)
    } else if !r.kept.is_empty() {
        ExitCode::from(EXIT_TEMPFAIL)
    } else {
        ExitCode::SUCCESS
    })
}

async fn status(a: StatusArgs) -> Outcome {
    let t = transport(&a.gateway)?;
    let s = receipt_status(&t, &a.code).await.map_err(failed)?;
    println!("{s}");
    Ok(ExitCode::SUCCESS)
}

async fn key(a: KeyArgs) -> Outcome {
    let t = transport(&a.gateway)?;
    let pin = pin(&a.pin)?;
    let k = fetch_key_retrying(&t, &pin, &RetryPolicy::default()).await?;
    print_key(&k);
    if let Some(dir) = &a.queue_dir {
        Queue::open(dir)
            .and_then(|q| q.save_key(&k.signed))
            .map_err(|e| failed(format!("caching the key in {}: {e}", dir.display())))?;
        println!("cached in {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The result of one batch line.
#[derive(Debug)]
enum LineResult {
    Accepted {
        id: hotline_protocol::RecordId,
        receipt: String,
    },
    Rejected(String),
}

/// Reads, checks and seals one batch line.
fn seal_line(line: &str, key: &VerifiedKey) -> Result<Vec<u8>, String> {
    let input: ReportInput =
        serde_json::from_str(line).map_err(|e| format!("not a report object: {e}"))?;
    let report = input.into_report().map_err(|e| e.to_string())?;
    seal(&report, &key.document).map_err(|e| e.to_string())
}

fn print_line_result(line: usize, r: &LineResult) {
    let v = match r {
        LineResult::Accepted { id, receipt } => serde_json::json!({
            "line": line, "status": "accepted", "id": id.as_str(), "receipt": receipt
        }),
        LineResult::Rejected(reason) => serde_json::json!({
            "line": line, "status": "rejected", "reason": reason
        }),
    };
    println!("{v}");
}

async fn batch(a: BatchArgs) -> Outcome {
    let started = Instant::now();
    let t = transport(&a.gateway)?;
    let pin = pin(&a.pin)?;
    let policy = policy(&a.retries);
    let file = std::fs::File::open(&a.file)
        .map_err(|e| Failure::new(EXIT_USAGE, format!("{}: {e}", a.file.display())))?;
    let key = Arc::new(fetch_key_retrying(&t, &pin, &policy).await?);
    let concurrency = a.concurrency.max(1);
    let (tx, rx) = tokio::sync::mpsc::channel::<(usize, Vec<u8>)>(2 * concurrency);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let results: Arc<Mutex<Vec<(usize, LineResult)>>> = Arc::default();
    let next = move || {
        let rx = rx.clone();
        async move { rx.lock().await.recv().await }
    };
    let send = {
        let (results, t) = (results.clone(), t.clone());
        move |(line, envelope): (usize, Vec<u8>), pacer: hotline_client::pool::Pacer| {
            let (results, t) = (results.clone(), t.clone());
            async move {
                pacer.wait_turn().await;
                let r = match IdempotencyKey::generate() {
                    Err(e) => LineResult::Rejected(e.to_string()),
                    Ok(idem) => match send_with_retries(&t, &envelope, &idem, &policy).await {
                        Ok(ans) => LineResult::Accepted {
                            id: ans.id,
                            receipt: ans.receipt,
                        },
                        Err(e) => LineResult::Rejected(format!("not sent: {e}")),
                    },
                };
                record(&results, line, r);
                Ok::<(), std::io::Error>(())
            }
        }
    };
    let workers = tokio::spawn(hotline_client::pool::run(
        concurrency,
        Duration::from_millis(a.pace_ms),
        next,
        send,
    ));
    // Lines are read and sealed here, one at a time, while the workers send:
    // memory stays bounded whatever the file's length.
    let mut total = 0usize;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| failed(format!("{}: {e}", a.file.display())))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(s) => s.trim(),
            Err(_) => {
                total += 1;
                record(
                    &results,
                    line_no,
                    LineResult::Rejected("not UTF-8 text".into()),
                );
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        total += 1;
        match seal_line(text, &key) {
            Ok(envelope) => {
                if tx.send((line_no, envelope)).await.is_err() {
                    return Err(failed("the senders stopped"));
                }
            }
            Err(reason) => record(&results, line_no, LineResult::Rejected(reason)),
        }
    }
    drop(tx);
    // The workers only record results, so there is no error to report; a
    // worker that panicked leaves its line out of the results.
    let _ = workers.await;
    let mut results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    results.sort_by_key(|(line, _)| *line);
    for (line, r) in &results {
        print_line_result(*line, r);
    }
    let rejected: Vec<_> = results
        .iter()
        .filter_map(|(line, r)| match r {
            LineResult::Rejected(why) => Some((line, why)),
            LineResult::Accepted { .. } => None,
        })
        .collect();
    let accepted = results.len() - rejected.len();
    eprintln!(
        "hotline-report: {}: {total} reports, {accepted} accepted, {} rejected, in {:.1} s",
        a.file.display(),
        rejected.len(),
        started.elapsed().as_secs_f64()
    );
    for (line, why) in &rejected {
        eprintln!("  line {line}: {why}");
    }
    Ok(if rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn record(results: &Mutex<Vec<(usize, LineResult)>>, line: usize, r: LineResult) {
    results
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((line, r));
}
