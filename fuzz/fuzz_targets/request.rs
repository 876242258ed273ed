//! The request path in process: one `App` built once (as `Gateway::bind`
//! opens it, over a redb store in a scratch folder on tmpfs), and each
//! input sent as an HTTP/1.1 request through hyper's server connection
//! into `routes::handle`, over an in-memory pipe.
//!
//! The input is the raw request as text. Two fix-ups keep mutated inputs
//! useful instead of stuck on framing: `Content-Length` is set to the real
//! body length (unless the head asks for `Transfer-Encoding`), and `{TOKEN}`
//! is replaced by the staff bearer token, so staff routes get past auth.
//! Properties: no panic, no hang (libFuzzer's `-timeout`), an answer that
//! starts with a status line, and never a 500.
//!
//! The store keeps what earlier inputs stored, so a run is not exactly
//! reproducible; a crash input is replayed against a fresh store.
#![no_main]
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hotline_gateway::app::{App, Peer};
use hotline_gateway::config::Config;
use hotline_gateway::routes;
use hotline_gateway::server::{http1_builder, open_app};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Written by seedgen: a key document valid until 2100 for a fixed HPKE key.
const KEY_DOCUMENT: &[u8] = include_bytes!("key-document.cbor");
/// The fuzz-only signing key that signed it.
const SIGNING_PUBLIC: &[u8] = include_bytes!("signing-public.pem");

struct Harness {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    token: String,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let dir = hotline_fuzz::scratch_dir("request");
        let installed = hotline_gateway::setup::install(&dir, true).expect("demo install");
        let token = std::fs::read_to_string(&installed.staff_token_file)
            .expect("staff token")
            .trim()
            .to_owned();
        let mut config = Config::load(&installed.config).expect("the demo config loads");
        // The fixed fuzz-only key document, so seed envelopes (sealed to
        // its key by seedgen) have the kid this gateway serves.
        std::fs::write(&config.keys.key_document, KEY_DOCUMENT).expect("key document");
        std::fs::write(&config.keys.signing_public_key, SIGNING_PUBLIC).expect("signing key");
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let app = rt.block_on(async { build_app(&mut config) });
        Harness { rt, app, token }
    })
}

/// The `App` `Gateway::bind` opens (`server::open_app`), minus listeners,
/// TLS and background tasks. The rate limit is lifted so inputs reach the
/// handlers instead of 429, and the store is kept small.
fn build_app(config: &mut Config) -> Arc<App> {
    config.limits.per_client_per_minute = 1_000_000_000;
    config.limits.per_client_burst = 1_000_000_000;
    config.store.max_bytes = 64 << 20;
    Arc::new(open_app(config).expect("the demo install opens"))
}

/// The input with its framing fixed up (see the module comment).
fn request_bytes(data: &[u8], token: &str) -> Vec<u8> {
    let split = data.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 4..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head).replace("{TOKEN}", token);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding");
    let mut out = Vec::with_capacity(data.len() + 64);
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 && !chunked && line.to_ascii_lowercase().starts_with("content-length:") {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !chunked {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let request = request_bytes(data, &h.token);
    // Loopback for odd-length inputs (may read /metrics), else a public one.
    let ip = if data.len() % 2 == 1 {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
    };
    let app = h.app.clone();
    let answer =
        h.rt.block_on(async move {
            let (mut client, server) = tokio::io::duplex(256 * 1024);
            let limits = app.limits.clone();
            let service = service_fn(move |req| {
                let app = app.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(routes::handle(app, req, Peer { ip }).await)
                }
            });
            let conn = tokio::spawn(async move {
                let mut builder = http1_builder(&limits);
                builder.half_close(true);
                let _ = builder
                    .serve_connection(TokioIo::new(server), service)
                    .await;
            });
            let mut answer = Vec::new();
            let io = async {
                client.write_all(&request).await?;
                client.shutdown().await?;
                client.read_to_end(&mut answer).await
            };
            let done = tokio::time::timeout(Duration::from_secs(20), io).await;
            assert!(done.is_ok(), "no answer within 20 s");
            let _ = conn.await;
            answer
        });
    if answer.is_empty() {
        // hyper closed without an answer (a head it could not parse at EOF).
        return;
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 "),
        "not a status line: {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(64)])
    );
    // Every status line in the answer (keep-alive may carry several).
    for at in answer
        .windows(9)
        .enumerate()
        .filter(|(_, w)| *w == b"HTTP/1.1 " || *w == b"HTTP/1.0 ")
        .map(|(i, _)| i + 9)
    {
        let status = &answer[at..(at + 3).min(answer.len())];
        assert_ne!(
            status,
            b"500",
            "a 500 answer: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(400)])
        );
    }
});
