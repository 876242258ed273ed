//! `hotline-staff`: the hotline's own tool. All logic lives in the library.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hotline_staff::export::Format;
use hotline_staff::verify::Pin;
use hotline_staff::{pull, receive, StaffError};

/// The hotline's staff tool: keys, pulling and opening reports, export, and a
/// minimal push-mode backend. Run it on the hotline's machine, the only place
/// the private key lives.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make the hotline's X25519 and Ed25519 keys and the signed key document.
    Keygen {
        /// Folder to write the keys into (created, mode 0700).
        #[arg(long)]
        out: PathBuf,
        /// Days the key document stays valid.
        #[arg(long, default_value_t = 365)]
        days: u64,
    },
    /// Check the key a gateway serves against the hotline's signing key.
    VerifyKey {
        /// Gateway URL, e.g. https://report.example.org
        #[arg(long)]
        url: String,
        /// The signing key's fingerprint (as printed by keygen).
        #[arg(long, required_unless_present = "signing_key")]
        pin: Option<String>,
        /// The signing key's public PEM file.
        #[arg(long, conflicts_with = "pin")]
        signing_key: Option<PathBuf>,
        /// Certificate to trust for the gateway instead of the web PKI.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Fetch new reports, open them, keep each in OUT/<id>.json, ack what was kept.
    Pull {
        /// Gateway URL.
        #[arg(long)]
        url: String,
        /// File holding the staff bearer token.
        #[arg(long)]
        token_file: PathBuf,
        /// The hotline's X25519 private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// Folder for the reports.
        #[arg(long)]
        out: PathBuf,
        /// Certificate to trust for the gateway instead of the web PKI.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Records per request (1 to 1000).
        #[arg(long, default_value_t = 100)]
        page: usize,
        /// Take the dead-lettered records instead of the queue.
        #[arg(long)]
        dead: bool,
    },
    /// Serve HTTPS as the hotline backend for the gateway's push mode.
    Receive {
        /// Address to listen on; port 0 picks a free one (printed on stderr).
        #[arg(long)]
        listen: SocketAddr,
        /// TLS certificate chain (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// TLS private key (PEM).
        #[arg(long)]
        key_file: PathBuf,
        /// The hotline's X25519 private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// Folder for the reports.
        #[arg(long)]
        out: PathBuf,
        /// Require client certificates issued by this CA (mutual TLS).
        #[arg(long)]
        client_ca: Option<PathBuf>,
    },
    /// Write the pulled reports as one JSON Lines or CSV file.
    Export {
        /// Folder of pulled reports.
        #[arg(long = "in")]
        input: PathBuf,
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotline-staff: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, StaffError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| StaffError::Usage(format!("cannot start the runtime: {e}")))
}

fn run(command: Command) -> Result<(), StaffError> {
    match command {
        Command::Keygen { out, days } => {
            let g = hotline_staff::keygen::keygen(&out, days)?;
            println!(
                "Wrote the hotline keys to {dir}\n\
                 \n  kid:                     {kid}\
                 \n  HPKE key fingerprint:    {hfp}\
                 \n  Signing key fingerprint: {sfp}   (apps pin this; compare out of band)\
                 \n  Key document valid until unix time {na}\n\
                 \nGive the gateway {doc} and {spub}.\
                 \nKeep {hpriv} and {spriv} on this machine only.",
                dir = g.dir.display(),
                kid = g.kid,
                hfp = g.hpke_fingerprint,
                sfp = g.signing_fingerprint,
                na = g.not_after,
                doc = hotline_staff::keygen::KEY_DOCUMENT,
                spub = hotline_staff::keygen::SIGNING_PUBLIC,
                hpriv = hotline_staff::keygen::HPKE_PRIVATE,
                spriv = hotline_staff::keygen::SIGNING_PRIVATE,
            );
            Ok(())
        }
        Command::VerifyKey {
            url,
            pin,
            signing_key,
            ca,
        } => {
            let pin = match (pin, signing_key) {
                (_, Some(path)) => Pin::SigningKey(path),
                (Some(fp), None) => Pin::Fingerprint(fp),
                (None, None) => {
                    return Err(StaffError::Usage(
                        "give --pin FINGERPRINT or --signing-key PEM".into(),
                    ))
                }
            };
            let v = runtime()?.block_on(hotline_staff::verify::verify_key(
                &url,
                &pin,
                ca.as_deref(),
            ))?;
            let days = v
                .document
                .not_after
                .saturating_sub(hotline_protocol::time::unix_now())
                / hotline_protocol::time::DAY;
            println!(
                "OK: {url} serves key {kid} (fingerprint {fp}), signed by {sfp}, valid for {days} more day(s).",
                kid = v.document.kid(),
                fp = hotline_protocol::fingerprint(&v.document.public_key.0),
                sfp = v.signing_fingerprint,
            );
            Ok(())
        }
        Command::Pull {
            url,
            token_file,
            key,
            out,
            ca,
            page,
            dead,
        } => {
            let token = hotline_staff::read_text(&token_file)?;
            let opts = pull::PullOptions {
                url,
                token: token.trim().to_owned(),
                key: hotline_staff::load_secret_key(&key)?,
                out,
                ca,
                page,
                dead,
            };
            let s = runtime()?.block_on(pull::pull(&opts))?;
            eprintln!(
                "pulled: {} written, {} already kept, {} undecryptable (not acked); {} acked",
                s.written, s.already, s.undecryptable, s.acked
            );
            if s.undecryptable > 0 {
                return Err(StaffError::Usage(format!(
                    "{} record(s) were not kept and stay on the gateway; see above",
                    s.undecryptable
                )));
            }
            Ok(())
        }
        Command::Receive {
            listen,
            cert,
            key_file,
            key,
            out,
            client_ca,
        } => {
            let opts = receive::ReceiveOptions {
                listen,
                cert,
                cert_key: key_file,
                client_ca,
                key: hotline_staff::load_secret_key(&key)?,
                out,
            };
            runtime()?.block_on(async move {
                let listener = receive::bind(opts.listen).await?;
                let addr = listener.local_addr().unwrap_or(opts.listen);
                eprintln!("listening on {addr}");
                receive::serve(listener, opts).await
            })
        }
        Command::Export { input, format, out } => {
            let format = match format {
                ExportFormat::Jsonl => Format::Jsonl,
                ExportFormat::Csv => Format::Csv,
            };
            let n = match out {
                Some(path) => {
                    let mut f = std::io::BufWriter::new(
                        std::fs::File::create(&path).map_err(|e| StaffError::io(&path, e))?,
                    );
                    hotline_staff::export::export(&input, format, &mut f)?
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut lock = stdout.lock();
                    hotline_staff::export::export(&input, format, &mut lock)?
                }
            };
            eprintln!("exported {n} report(s)");
            Ok(())
        }
    }
}
