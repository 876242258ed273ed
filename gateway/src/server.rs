//! The daemon's life cycle: open everything ([`Gateway::bind`]), serve until
//! told to stop ([`Gateway::serve`]), then drain.
//!
//! Each accepted connection takes a permit from a semaphore sized by
//! `max_connections`, and on the TLS port a place in its client's share of
//! them ([`crate::edge`]); without both it is closed at once, so a flood
//! costs a socket for a moment, never unbounded memory, and one address
//! cannot shut the others out. The TLS handshake, the request headers and
//! each body have their own timeouts against slow clients. HTTP/2
//! connections are bounded in streams, windows and buffers, and a watchdog
//! closes one that goes idle or stops taking its answers; the answer bytes
//! held at once have a budget (beyond it, 503).
//!
//! Stopping is the caller's choice of future (the binary passes SIGTERM or
//! SIGINT, a test a oneshot channel). Then the gateway stops accepting, tells
//! every connection to finish the request it is on and close, waits for all
//! of them (bounded by [`DRAIN_TIMEOUT`]), waits for the writer to commit
//! what it holds, and returns.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::app::{App, Peer};
use crate::auth::TokenHashes;
use crate::config::{Config, Engine, LimitsConfig};
use crate::edge::{Activity, ConnectionShares, End, ResponseBudget, Share};
use crate::forward::Forwarder;
use crate::keyset::KeySet;
use crate::metrics::{ConnectionRejection, Metrics};
use crate::ratelimit::ClientLimiter;
use crate::routes;
use crate::GatewayError;

/// Longest wait for open requests after the stop signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the gateway until `shutdown` completes, then drains and returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
    Gateway::bind(config).await?.serve(shutdown).await
}

/// A gateway with its keys loaded, its store open and its sockets bound,
/// not yet serving: a caller that asked for port 0 learns the real port
/// from [`Gateway::tls_addr`] before the first request.
#[derive(Debug)]
pub struct Gateway {
    app: Arc<App>,
    tls: Listener,
    plain: Option<Listener>,
    shred_interval: Duration,
    forwarder: Option<Forwarder>,
    max_connections: usize,
}

/// A bound socket and, for the public port, its TLS acceptor.
struct Listener {
    socket: TcpListener,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Gateway {
    /// Checks the config's files, loads the keys, opens the store and its
    /// writer, and binds the listeners. Fails before anything is served.
    pub async fn bind(config: Config) -> Result<Gateway, GatewayError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(crate::config::ConfigError::Invalid(problems).into());
        }
        let tls = crate::tls::server_config(&config.listen.cert, &config.listen.cert_key)?;
        let app = Arc::new(open_app(&config)?);
        let forwarder = match &config.forward {
            Some(f) => Some(Forwarder::new(f, app.store.clone(), app.metrics.clone())?),
            None => None,
        };
        let tls = Listener::bind(config.listen.tls, Some(TlsAcceptor::from(tls))).await?;
        tracing::info!(addr = %tls.addr, "listening (TLS)");
        let plain = match config.listen.plain {
            Some(addr) => {
                let plain = Listener::bind(addr.addr(), None).await?;
                tracing::info!(addr = %plain.addr, "listening (plain HTTP, loopback)");
                Some(plain)
            }
            None => None,
        };
        Ok(Gateway {
            app,
            tls,
            plain,
            shred_interval: config.store.shred_interval,
            forwarder,
            max_connections: config.limits.max_connections,
        })
    }

    /// Where the TLS listener is bound.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls.addr
    }

    /// Where the plain-HTTP listener is bound, if there is one.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().map(|p| p.addr)
    }

    /// Serves until `shutdown` completes, then drains: no new connections,
    /// every open request answered (within [`DRAIN_TIMEOUT`]), every
    /// accepted report committed.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
        let Gateway {
            app,
            tls,
            plain,
            shred_interval,
            forwarder,
            max_connections,
        } = self;
        let (stop_tx, stop) = watch::channel(false);
        let permits = Arc::new(Semaphore::new(max_connections));
        let shares =
            ConnectionShares::new(app.limits.connections_per_client(), app.limits.rate_buckets)
                .map_err(|_| GatewayError::Keys("system random number generator failed".into()))?;
        let edge = Edge {
            permits: permits.clone(),
            admin: None,
            // The plain port's only client is the local proxy: no shares.
            shares: None,
            budget: ResponseBudget::new(app.limits.response_buffer_bytes),
        };
        let tls_edge = Edge {
            shares: Some(Arc::new(shares)),
            admin: Some(Arc::new(Semaphore::new(app.limits.admin_connections))),
            ..edge.clone()
        };
        let listeners: Vec<JoinHandle<()>> = std::iter::once((tls, tls_edge))
            .chain(plain.map(|p| (p, edge)))
            .map(|(l, e)| tokio::spawn(accept_loop(l, app.clone(), e, stop.clone())))
            .collect();
        let mut background = vec![
            crate::retention::spawn(app.store.clone(), shred_interval, stop.clone()),
            forget_idle_clients(app.clone(), stop.clone()),
            give_back_memory(stop.clone()),
        ];
        background.extend(forwarder.map(|f| f.spawn(stop.clone())));

        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing open requests");
        let _ = stop_tx.send(true);
        for l in listeners {
            let _ = l.await;
        }
        // Every connection holds a permit until its task ends.
        let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(DRAIN_TIMEOUT, permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("open requests did not finish in time");
        }
        for b in background {
            let _ = b.await;
        }
        app.commits.clone().close().await;
        tracing::info!(queued = app.store.count(), "stopped");
        Ok(())
    }
}

/// Keys, store, writer, limiter and tokens: everything a handler needs.
/// Public only for the `request` fuzz target (`fuzz/`), which serves
/// requests in process over the same `App` without binding sockets.
#[doc(hidden)]
pub fn open_app(config: &Config) -> Result<App, GatewayError> {
    let keys = KeySet::load(&config.keys)?;
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
    let limits = &config.limits;
    let limiter = ClientLimiter::new(
        limits.per_client_per_minute,
        limits.per_client_burst,
        limits.rate_buckets,
    )
    .map_err(|_| GatewayError::Keys("system random number generator failed".into()))?;
    let hashes = |h: &[crate::config::Sha256Hex]| TokenHashes::new(h.iter().map(|h| h.0).collect());
    Ok(App {
        keys,
        store,
        commits,
        limiter,
        metrics,
        staff: hashes(&config.staff.token_sha256),
        metrics_token: config.metrics.token_sha256.map(|h| hashes(&[h])),
        limits: limits.clone(),
        rng: ring::rand::SystemRandom::new(),
    })
}

/// Gives freed memory back to the system every [`crate::trim::TRIM_INTERVAL`],
/// so a flood that has left does not keep the process at its size.
fn give_back_memory(mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::trim::TRIM_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let _ = tokio::task::spawn_blocking(crate::trim::give_back_freed_memory).await;
        }
    })
}

/// Lets the rate limiter drop the state of clients gone quiet, each minute.
fn forget_idle_clients(app: Arc<App>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => app.limiter.forget_idle(),
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })
}

impl Listener {
    async fn bind(addr: SocketAddr, tls: Option<TlsAcceptor>) -> Result<Listener, GatewayError> {
        let socket = TcpListener::bind(addr)
            .await
            .map_err(|source| GatewayError::Listen { addr, source })?;
        // The bound address: the real port when the config asked for port 0.
        let addr = socket.local_addr().unwrap_or(addr);
        Ok(Listener { socket, addr, tls })
    }
}

/// What a listener's connections share: the pool, the per-client shares
/// (TLS port only) and the answer budget.
#[derive(Debug, Clone)]
struct Edge {
    permits: Arc<Semaphore>,
    /// Kept apart for loopback clients (TLS port only).
    admin: Option<Arc<Semaphore>>,
    shares: Option<Arc<ConnectionShares>>,
    budget: ResponseBudget,
}

/// A connection's place: a permit of the pool and the client's share (TLS
/// port), or, for a loopback client of the TLS port when those are full,
/// one of the few kept for the operator.
fn admit(edge: &Edge, ip: std::net::IpAddr) -> Option<(OwnedSemaphorePermit, Option<Share>)> {
    let share = match &edge.shares {
        Some(shares) => shares.take(ip).map(Some),
        None => Some(None),
    };
    if let Some(share) = share {
        if let Ok(permit) = edge.permits.clone().try_acquire_owned() {
            return Some((permit, share));
        }
    }
    match &edge.admin {
        Some(admin) if is_operator(ip) => admin.clone().try_acquire_owned().ok().map(|p| (p, None)),
        _ => None,
    }
}

/// The operator's own machine: 127.0.0.1 or ::1 (not the rest of
/// 127.0.0.0/8, which a local proxy or test may use for other clients).
fn is_operator(ip: std::net::IpAddr) -> bool {
    ip == std::net::Ipv4Addr::LOCALHOST || ip == std::net::Ipv6Addr::LOCALHOST
}

async fn accept_loop(
    listener: Listener,
    app: Arc<App>,
    edge: Edge,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.socket.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
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
        let Some((permit, share)) = admit(&edge, addr.ip()) else {
            app.metrics.connection_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = listener.tls.clone();
        let stop = stop.clone();
        let budget = edge.budget.clone();
        tokio::spawn(async move {
            app.metrics.connection_opened();
            let peer = Peer { ip: addr.ip() };
            match tls {
                Some(acceptor) => {
                    serve_tls(stream, acceptor, app.clone(), budget, peer, stop).await
                }
                // Behind a local proxy or onion service: HTTP/1.1.
                None => {
                    let io = TokioIo::new(stream);
                    serve(io, false, app.clone(), budget, peer, stop).await
                }
            }
            app.metrics.connection_closed();
            drop(permit);
            drop(share);
        });
    }
}

/// HTTP/1.1 as the gateway serves it, with the configured bounds; the
/// request fuzz target serves through the same builder.
pub fn http1_builder(limits: &LimitsConfig) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // The hard cap is twice the configured one: between the two, the
        // handler answers 431 with the protocol's error body.
        .max_headers(limits.max_headers.saturating_mul(2))
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
}

async fn serve_tls(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    app: Arc<App>,
    budget: ResponseBudget,
    peer: Peer,
    stop: watch::Receiver<bool>,
) {
    let timeout = app.limits.handshake_timeout;
    // A client speaking plain HTTP to the TLS port gets a plain answer
    // saying so, instead of a silent close.
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != 0x16 => {
            app.metrics.rejected(hotline_protocol::Reason::TlsRequired);
            let _ = answer_plain_http(stream).await;
            return;
        }
        Ok(Ok(1)) => {}
        _ => return,
    }
    // A handshake under way when the stop signal comes is finished: its
    // client may already have sent a request, which gets its answer.
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            serve(TokioIo::new(tls), h2, app, budget, peer, stop).await
        }
        Ok(Err(_)) => app
            .metrics
            .connection_rejected(ConnectionRejection::TlsHandshake),
        Err(_) => app
            .metrics
            .connection_rejected(ConnectionRejection::TlsHandshakeTimeout),
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
async fn serve<S>(
    io: TokioIo<S>,
    h2: bool,
    app: Arc<App>,
    budget: ResponseBudget,
    peer: Peer,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = app.limits.clone();
    let activity = h2.then(|| {
        Arc::new(Activity::new(
            limits.header_timeout,
            limits.h2_stall_timeout,
        ))
    });
    // Tells `until_stopped` that the first request has been read.
    let (seen_tx, seen) = watch::channel(false);
    let watched = activity.clone();
    let service = service_fn(move |req| {
        seen_tx.send_replace(true);
        let app = app.clone();
        let budget = budget.clone();
        let activity = watched.clone();
        let handling = activity.as_ref().map(|a| a.handling());
        // Boxed: a stream waiting to send its answer keeps only the answer,
        // not room for the largest handler's state.
        Box::pin(async move {
            let resp = routes::handle(app.clone(), req, peer).await;
            let resp = budget.hold(resp, activity, &app.metrics);
            drop(handling);
            Ok::<_, std::convert::Infallible>(resp)
        })
    });
    let result = if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_STREAMS)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .initial_stream_window_size(H2_STREAM_WINDOW)
            .initial_connection_window_size(H2_CONNECTION_WINDOW)
            .max_send_buf_size(H2_SEND_BUFFER)
            .max_pending_accept_reset_streams(H2_MAX_STREAMS as usize)
            .max_local_error_reset_streams(Some(H2_MAX_LOCAL_RESETS))
            .keep_alive_interval(Some(limits.header_timeout))
            .keep_alive_timeout(limits.header_timeout);
        let mut conn = Box::pin(builder.serve_connection(io, service));
        until_stopped(conn.as_mut(), stop, seen, activity.as_deref())
            .await
            .map(|r| r.map_err(|e| e.to_string()))
    } else {
        let conn = pin!(http1_builder(&limits).serve_connection(io, service));
        until_stopped(conn, stop, seen, None)
            .await
            .map(|r| r.map_err(|e| e.to_string()))
    };
    match result {
        Some(Err(e)) => tracing::debug!(error = %e, "connection ended with an error"),
        None => tracing::debug!("connection closed by the watchdog"),
        Some(Ok(())) => {}
    }
}

/// Concurrent streams per HTTP/2 connection.
const H2_MAX_STREAMS: u32 = 32;
/// What a client may send on one stream before the handler reads it: one
/// whole envelope fits.
const H2_STREAM_WINDOW: u32 = 128 * 1024;
/// What a client may send on one connection before handlers read it.
const H2_CONNECTION_WINDOW: u32 = 256 * 1024;
/// Answer bytes queued per stream beyond what the peer's window takes.
const H2_SEND_BUFFER: usize = 32 * 1024;
/// Streams a connection may make us reset (bad frames) before it is closed.
const H2_MAX_LOCAL_RESETS: usize = 64;

/// Drives a connection; once the stop signal is (or already was) given,
/// asks it to finish the request it is on and close: HTTP/1.1 answers that
/// request with `connection: close` (an idle kept-alive connection closes at
/// once), HTTP/2 sends GOAWAY and finishes its open streams.
///
/// A connection that has not yet sent its first request is asked only once
/// that request is read (or the connection ends, at the latest when the
/// header timeout closes it): hyper closes a connection that has read
/// nothing at once, and a client that sent its request just after its
/// handshake would lose it.
///
/// With an HTTP/2 `activity`, its watchdog also ends the connection: idle
/// for the header timeout, a polite close (or, if it never sent a request,
/// a drop: hyper's HTTP/2 would wait for the preface); answers waiting and
/// none taken for the stall timeout, a drop. `None` means dropped.
async fn until_stopped<C>(
    mut conn: Pin<&mut C>,
    mut stop: watch::Receiver<bool>,
    mut seen: watch::Receiver<bool>,
    activity: Option<&Activity>,
) -> Option<C::Output>
where
    C: GracefulConnection,
{
    let expired = || async move {
        match activity {
            Some(a) => a.expired().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = conn.as_mut() => return Some(result),
        _ = stop.wait_for(|s| *s) => {}
        end = expired() => if end == End::Stalled || !*seen.borrow() {
            return None;
        },
    }
    if !*seen.borrow() {
        tokio::select! {
            result = conn.as_mut() => return Some(result),
            _ = seen.wait_for(|s| *s) => {}
            _ = expired() => return None,
        }
    }
    // The idle clock starts again: the polite close has that long.
    if let Some(a) = activity {
        a.touch();
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        result = conn => Some(result),
        _ = expired() => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn binds_port_zero_serves_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let installed = crate::setup::install(dir.path(), false).unwrap();
        let mut config = Config::load(&installed.config).unwrap();
        config.listen.tls = SocketAddr::from(([127, 0, 0, 1], 0));
        let gateway = Gateway::bind(config).await.unwrap();
        let addr = gateway.tls_addr();
        assert_ne!(addr.port(), 0, "the real port is known before serving");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(gateway.serve(async {
            let _ = stopped.await;
        }));
        // It accepts while serving...
        assert!(TcpStream::connect(addr).await.is_ok());
        stop.send(()).unwrap();
        served.await.unwrap().unwrap();
        // ...and not once it has returned.
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
