//! Listeners, connections and the daemon's life cycle.
//!
//! Each accepted connection takes a permit from a semaphore sized by
//! `max_connections`; without one it is closed at once, so a flood costs a
//! socket for a moment, never unbounded memory. The TLS handshake, the request
//! headers and each body have their own timeouts against slow clients. On
//! SIGTERM or SIGINT the gateway stops accepting, lets open requests finish,
//! waits for the writer to commit what it holds, and exits 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::app::{App, Peer};
use crate::auth::TokenHashes;
use crate::config::{parse_sha256_hex, Config, Engine};
use crate::keyset::KeySet;
use crate::metrics::Metrics;
use crate::ratelimit::ClientLimiter;
use crate::routes;
use crate::GatewayError;

/// Longest wait for open requests after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the gateway until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), GatewayError> {
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(crate::config::ConfigError::Invalid(problems).into());
    }
    let keys = KeySet::load(&config.keys)?;
    let tls = crate::tls::server_config(&config.listen.cert, &config.listen.cert_key)?;
    let metrics = Arc::new(Metrics::new());
    let master = hotline_store::MasterKey::load(&config.keys.master_key)?;
    let store = Arc::new(hotline_store::Store::open(
        &config.data_dir,
        match config.store.engine {
            Engine::Redb => hotline_store::EngineKind::Redb,
            Engine::Sled => hotline_store::EngineKind::Sled,
        },
        &master,
        hotline_store::StoreOptions {
            max_bytes: config.store.max_bytes,
            epoch_secs: config.store.epoch_secs,
            retention_secs: config.store.retention_secs,
            ..hotline_store::StoreOptions::default()
        },
    )?);
    let commit_metrics = metrics.clone();
    let commits = hotline_store::committer::Committer::spawn_observed(
        store.clone(),
        config.store.commit_queue,
        config.store.max_batch,
        Some(Arc::new(move |batch, elapsed: Duration| {
            commit_metrics.commit(batch, elapsed.as_secs_f64())
        })),
    );
    let limiter = ClientLimiter::new(
        config.limits.per_client_per_minute,
        config.limits.per_client_burst,
        config.limits.rate_buckets,
    )
    .map_err(|_| GatewayError::Keys("system random number generator failed".into()))?;
    let staff = TokenHashes::new(
        config
            .staff
            .token_sha256
            .iter()
            .filter_map(|h| parse_sha256_hex(h))
            .collect(),
    );
    let metrics_token = config
        .metrics
        .token_sha256
        .as_deref()
        .and_then(parse_sha256_hex)
        .map(|h| TokenHashes::new(vec![h]));
    let app = Arc::new(App {
        keys,
        store: store.clone(),
        commits: commits.clone(),
        limiter,
        metrics: metrics.clone(),
        staff,
        metrics_token,
        limits: config.limits.clone(),
        rng: ring::rand::SystemRandom::new(),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let graceful = Arc::new(GracefulShutdown::new());
    let permits = Arc::new(Semaphore::new(config.limits.max_connections));
    let mut listeners = Vec::new();
    let tls_listener = bind(config.listen.tls).await?;
    tracing::info!(addr = %local(&tls_listener, config.listen.tls), "listening (TLS)");
    listeners.push(tokio::spawn(accept_loop(
        tls_listener,
        Some(TlsAcceptor::from(tls)),
        app.clone(),
        permits.clone(),
        graceful.clone(),
        stop_rx.clone(),
    )));
    if let Some(addr) = config.listen.plain {
        let plain = bind(addr).await?;
        tracing::info!(addr = %local(&plain, addr), "listening (plain HTTP, loopback)");
        listeners.push(tokio::spawn(accept_loop(
            plain,
            None,
            app.clone(),
            permits.clone(),
            graceful.clone(),
            stop_rx.clone(),
        )));
    }
    let mut background = vec![crate::retention::spawn(
        store.clone(),
        Duration::from_secs(config.store.shred_interval_secs),
        stop_rx.clone(),
    )];
    if let Some(forward) = &config.forward {
        let forwarder = crate::forward::Forwarder::new(forward, store.clone(), metrics.clone())?;
        background.push(forwarder.spawn(stop_rx.clone()));
    }
    let idle_app = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            idle_app.limiter.forget_idle();
        }
    });

    wait_for_signal().await;
    tracing::info!("shutting down: no new connections; finishing open requests");
    let _ = stop_tx.send(true);
    for l in listeners.into_iter().chain(background) {
        let _ = l.await;
    }
    drop(app);
    if let Ok(graceful) = Arc::try_unwrap(graceful) {
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("open requests did not finish in time");
        }
    }
    commits.close().await;
    tracing::info!(queued = store.count(), "stopped");
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Listen { addr, source })
}

/// The bound address (the real port when the config asked for port 0).
fn local(listener: &TcpListener, configured: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(configured)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    permits: Arc<Semaphore>,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off, don't spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            app.metrics.connection_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let graceful = graceful.clone();
        tokio::spawn(async move {
            app.metrics.connection_opened();
            let peer = Peer { ip: addr.ip() };
            match tls {
                Some(acceptor) => serve_tls(stream, acceptor, app.clone(), peer, &graceful).await,
                // Behind a local proxy or onion service: HTTP/1.1.
                None => serve(TokioIo::new(stream), false, app.clone(), peer, &graceful).await,
            }
            app.metrics.connection_closed();
            drop(permit);
        });
    }
}

async fn serve_tls(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    app: Arc<App>,
    peer: Peer,
    graceful: &GracefulShutdown,
) {
    let timeout = app.limits.handshake_timeout();
    // A client speaking plain HTTP to the TLS port gets a plain answer
    // saying so, instead of a silent close.
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != 0x16 => {
            app.metrics.rejection("tls_required");
            let _ = answer_plain_http(stream).await;
            return;
        }
        Ok(Ok(1)) => {}
        _ => return,
    }
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            serve(TokioIo::new(tls), h2, app, peer, graceful).await
        }
        Ok(Err(_)) => app.metrics.rejection("tls_handshake"),
        Err(_) => app.metrics.rejection("tls_handshake_timeout"),
    }
}

async fn answer_plain_http(mut stream: TcpStream) -> std::io::Result<()> {
    let body = hotline_protocol::ErrorBody::new(
        hotline_protocol::Reason::TlsRequired,
        "this port speaks HTTPS only; use https://",
    )
    .encode();
    let head = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

/// Serves one connection: HTTP/2 when TLS negotiated `h2`, else HTTP/1.1.
/// The HTTP/2 state lives in its own allocation, so the many HTTP/1.1
/// connections of cheap phones do not carry its size.
async fn serve<S>(io: TokioIo<S>, h2: bool, app: Arc<App>, peer: Peer, graceful: &GracefulShutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = app.limits.clone();
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(routes::handle(app, req, peer).await) }
    });
    let result = if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(32)
            .max_header_list_size(limits.max_header_bytes as u32)
            .keep_alive_interval(Some(limits.header_timeout()))
            .keep_alive_timeout(limits.header_timeout());
        Box::pin(graceful.watch(builder.serve_connection(io, service))).await
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout())
            // The hard cap is twice the configured one: between the two, the
            // handler answers 431 with the protocol's error body.
            .max_headers(limits.max_headers.saturating_mul(2))
            .max_buf_size(limits.max_header_bytes.max(8192))
            .keep_alive(true);
        graceful.watch(builder.serve_connection(io, service)).await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
