//! `hotline-gateway`: the daemon's command line. All logic lives in the library.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline_gateway::config::Config;
use hotline_gateway::setup;

/// The hotline report gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Try it out: make development keys and a self-signed certificate in
    /// DIR (once), then serve https://127.0.0.1:8443.
    Demo {
        /// Data directory.
        #[arg(long, default_value = "hotline-data")]
        dir: PathBuf,
    },
    /// Write a commented config.toml and fresh keys for a real install.
    Init {
        /// Directory to create.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run the gateway.
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Explain every problem in a configuration file, and exit non-zero if any.
    CheckConfig {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { dir } => demo(dir),
        Command::Init { dir } => init(dir),
        Command::Run { config } => Config::load(&config)
            .map_err(|e| e.to_string())
            .and_then(serve),
        Command::CheckConfig { config } => check(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hotline-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

fn demo(dir: PathBuf) -> Result<(), String> {
    let installed = setup::install(&dir, true).map_err(|e| e.to_string())?;
    let config = Config::load(&installed.config).map_err(|e| e.to_string())?;
    println!(
        "\nHotline gateway DEMO\n\
         \n  Web form:        https://{addr}/   (self-signed certificate: your browser will warn)\
         \n  Key id (kid):    {kid}\
         \n  Signing key fp:  {sfp}\
         \n  Staff token:     {token}\
         \n  Signing pubkey:  {signing}\
         \n  Hotline keys:    {private}   (private key: hotline-hpke.pem)\
         \n\n  Open the reports sent through the form:\
         \n    cargo run -p hotline-staff -- pull --url https://{addr} --ca {cert} \\\
         \n      --token-file {token} --key {private}/hotline-hpke.pem --out reports\
         \n\n  DEMO ONLY: the hotline private key is beside the gateway so you can open\
         \n  reports here. A real install keeps it on the hotline's own machine:\
         \n  see `hotline-gateway init` and docs/deployment.md.\n",
        addr = config.listen.tls,
        kid = installed.key_fingerprint,
        sfp = installed.signing_fingerprint,
        token = installed.staff_token_file.display(),
        signing = config.keys.signing_public_key.display(),
        cert = config.listen.cert.display(),
        private = installed.private_dir.display(),
    );
    serve(config)
}

fn init(dir: PathBuf) -> Result<(), String> {
    if dir.join("config.toml").exists() {
        return Err(format!("{} already holds an install", dir.display()));
    }
    let installed = setup::install(&dir, false).map_err(|e| e.to_string())?;
    println!(
        "Wrote {config}\n\
         \nKey id (kid):   {kid}\nSigning key fp: {sfp}\n\
         \nMOVE {private} to the hotline's own machine and delete it here:\n\
         it holds the private key that opens every report. `run` never reads it.\n\
         \nThen: hotline-gateway check-config --config {config}\n      hotline-gateway run --config {config}",
        config = installed.config.display(),
        kid = installed.key_fingerprint,
        sfp = installed.signing_fingerprint,
        private = installed.private_dir.display(),
    );
    Ok(())
}

fn check(path: PathBuf) -> Result<(), String> {
    let config = Config::load(&path).map_err(|e| e.to_string())?;
    let mut problems = config.problems();
    if problems.is_empty() {
        if let Err(e) = hotline_gateway::keyset::KeySet::load(&config.keys) {
            problems.push(e.to_string());
        }
        if let Err(e) =
            hotline_gateway::tls::server_config(&config.listen.cert, &config.listen.cert_key)
        {
            problems.push(e.to_string());
        }
        if let Err(e) = hotline_store::MasterKey::load(&config.keys.master_key) {
            problems.push(e.to_string());
        }
    }
    if problems.is_empty() {
        println!("{}: OK", path.display());
        Ok(())
    } else {
        Err(format!(
            "{} problem(s) in {}:\n  - {}",
            problems.len(),
            path.display(),
            problems.join("\n  - ")
        ))
    }
}

fn serve(config: Config) -> Result<(), String> {
    // Before any key is read: no core dump, no ptrace by the same user.
    hotline_gateway::hardening::forbid_core_dumps().map_err(|e| e.to_string())?;
    tracing_subscriber::fmt()
        .with_env_filter(config.log_level.filter())
        .with_target(false)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        // Installed before the sockets are bound, so a SIGTERM sent as
        // soon as the gateway says it listens is never lost.
        let stop = stop_signal()?;
        hotline_gateway::run(config, stop)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Completes on the first SIGTERM or SIGINT: the daemon then drains and
/// exits 0.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
