//! Prometheus metrics. Only counts and sizes: no addresses, ids, receipts or
//! report bytes ever become a label.
//!
//! The counters that say what kind of request a client made (by route and
//! status, by rejection reason, reports accepted) are served from a snapshot
//! renewed at most once per [`COARSE_PERIOD`], so whoever reads /metrics
//! cannot tell which request a connection they watched was, to better than
//! that period. The gauges and delivery counters operators alert on stay
//! live (docs/metrics.md says what they still show).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hotline_protocol::Reason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Why a connection was closed before it carried a request: counted under
/// `hotline_rejections_total` beside the protocol's reasons, but never sent
/// to a client, so not a [`Reason`] and not in SPEC.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRejection {
    /// The TLS handshake failed.
    TlsHandshake,
    /// The TLS handshake did not finish in time.
    TlsHandshakeTimeout,
}

impl ConnectionRejection {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionRejection::TlsHandshake => "tls_handshake",
            ConnectionRejection::TlsHandshakeTimeout => "tls_handshake_timeout",
        }
    }
}

/// How long the per-route and per-reason counters are served unchanged:
/// the time resolution anyone reading /metrics gets on what clients did.
pub const COARSE_PERIOD: Duration = Duration::from_secs(300);

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    /// Gauges and counters rendered at each scrape.
    registry: Registry,
    /// Requests by route and status, rejections, reports accepted: rendered
    /// into `snapshot` at most once per [`COARSE_PERIOD`].
    coarse: Registry,
    /// When `coarse` was last rendered, and the text.
    snapshot: Mutex<Option<(Instant, String)>>,
    requests: Family<RouteLabels, Counter>,
    rejections: Family<ReasonLabels, Counter>,
    accepted: Counter,
    connections: Gauge,
    queue_depth: Gauge,
    store_bytes: Gauge,
    commit_batch: Histogram,
    commit_seconds: Histogram,
    refused_connections: Counter,
    forwarded: Counter,
    forward_failures: Counter,
    dead_lettered: Counter,
}

impl Metrics {
    /// Registers all metrics.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hotline");
        let mut coarse = Registry::with_prefix("hotline");
        let requests = Family::<RouteLabels, Counter>::default();
        let rejections = Family::<ReasonLabels, Counter>::default();
        let accepted = Counter::default();
        let connections = Gauge::default();
        let queue_depth = Gauge::default();
        let store_bytes = Gauge::default();
        let commit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let refused_connections = Counter::default();
        coarse.register(
            "requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        coarse.register(
            "rejections",
            "Rejected requests by reason",
            rejections.clone(),
        );
        coarse.register(
            "reports_accepted",
            "Reports stored durably",
            accepted.clone(),
        );
        registry.register(
            "open_connections",
            "Open client connections",
            connections.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections closed because max_connections was reached",
            refused_connections.clone(),
        );
        registry.register(
            "queue_depth",
            "Records waiting for delivery",
            queue_depth.clone(),
        );
        registry.register(
            "store_bytes",
            "Size of the store on disk",
            store_bytes.clone(),
        );
        registry.register(
            "commit_batch_size",
            "Reports per store transaction",
            commit_batch.clone(),
        );
        registry.register(
            "commit_seconds",
            "Duration of one store transaction with its fsync",
            commit_seconds.clone(),
        );
        let forwarded = Counter::default();
        let forward_failures = Counter::default();
        let dead_lettered = Counter::default();
        registry.register(
            "forwarded",
            "Records delivered to the backend by push forwarding",
            forwarded.clone(),
        );
        registry.register(
            "forward_failures",
            "Delivery attempts that failed and will be retried",
            forward_failures.clone(),
        );
        registry.register(
            "dead_lettered",
            "Records the backend refused for good, moved to dead-letter",
            dead_lettered.clone(),
        );
        Metrics {
            registry,
            coarse,
            snapshot: Mutex::new(None),
            forwarded,
            forward_failures,
            dead_lettered,
            requests,
            rejections,
            accepted,
            connections,
            queue_depth,
            store_bytes,
            commit_batch,
            commit_seconds,
            refused_connections,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, route: &'static str, status: u16) {
        self.requests
            .get_or_create(&RouteLabels { route, status })
            .inc();
    }

    /// Counts one rejection answered with an error body, labelled with
    /// the reason's wire name.
    pub fn rejected(&self, reason: Reason) {
        self.rejection(reason.as_str());
    }

    /// Counts one connection refused before any request, which has no
    /// error body and so no [`Reason`].
    pub fn connection_rejected(&self, why: ConnectionRejection) {
        self.rejection(why.as_str());
    }

    /// Counts one rejection by its label; the labels come only from
    /// [`Metrics::rejected`] and [`Metrics::connection_rejected`].
    fn rejection(&self, reason: &'static str) {
        self.rejections
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts one durable report.
    pub fn accepted(&self) {
        self.accepted.inc();
    }

    /// Tracks open connections.
    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    /// Tracks open connections.
    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// Counts a connection refused at the cap.
    pub fn connection_refused(&self) {
        self.refused_connections.inc();
    }

    /// Records one group commit.
    pub fn commit(&self, batch: usize, seconds: f64) {
        self.commit_batch.observe(batch as f64);
        self.commit_seconds.observe(seconds);
    }

    /// Counts records delivered by the forwarder.
    pub fn forwarded(&self, n: u64) {
        self.forwarded.inc_by(n);
    }

    /// Counts one failed delivery attempt (to be retried).
    pub fn forward_failure(&self) {
        self.forward_failures.inc();
    }

    /// Counts one record moved to dead-letter.
    pub fn dead_lettered(&self) {
        self.dead_lettered.inc();
    }

    /// Renders the text exposition, with store gauges read at scrape time.
    pub fn render(&self, queue_depth: u64, store_bytes: u64) -> String {
        self.render_at(Instant::now(), queue_depth, store_bytes)
    }

    /// [`Metrics::render`] at `now`: the live metrics as they are, the
    /// coarse counters as they were when last rendered, unless that was
    /// [`COARSE_PERIOD`] ago or more.
    fn render_at(&self, now: Instant, queue_depth: u64, store_bytes: u64) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        self.queue_depth.set(queue_depth as i64);
        self.store_bytes.set(store_bytes as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        {
            let mut snapshot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = snapshot
                .as_ref()
                .is_some_and(|(taken, _)| now.saturating_duration_since(*taken) < COARSE_PERIOD);
            if !fresh {
                let mut text = String::new();
                let _ = encode_registry(&mut text, &self.coarse);
                *snapshot = Some((now, text));
            }
            if let Some((_, text)) = snapshot.as_ref() {
                out.push_str(text);
            }
        }
        let _ = encode_eof(&mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_labelled_by_reason_name() {
        let m = Metrics::new();
        m.rejected(Reason::RateLimited);
        m.rejected(Reason::RateLimited);
        m.connection_rejected(ConnectionRejection::TlsHandshakeTimeout);
        let text = m.render(0, 0);
        assert!(
            text.contains("hotline_rejections_total{reason=\"rate_limited\"} 2"),
            "{text}"
        );
        assert!(text.contains("hotline_rejections_total{reason=\"tls_handshake_timeout\"} 1"));
        assert!(text.ends_with("# EOF\n") && text.matches("# EOF").count() == 1);
    }

    #[test]
    fn what_clients_did_is_shown_at_most_once_per_period_and_the_gauges_live() {
        let m = Metrics::new();
        let t0 = Instant::now();
        m.request("reports", 201);
        m.accepted();
        let first = m.render_at(t0, 1, 10);
        assert!(first.contains("hotline_requests_total{route=\"reports\",status=\"201\"} 1"));
        assert!(first.contains("hotline_reports_accepted_total 1"));
        // A new report, read a moment and almost a period later: the
        // counters have not moved, the gauges have.
        m.request("reports", 201);
        m.accepted();
        m.rejected(Reason::CrossSite);
        m.connection_opened();
        for later in [
            Duration::from_secs(1),
            COARSE_PERIOD - Duration::from_secs(1),
        ] {
            let text = m.render_at(t0 + later, 2, 20);
            assert!(text.contains("hotline_requests_total{route=\"reports\",status=\"201\"} 1"));
            assert!(text.contains("hotline_reports_accepted_total 1"));
            assert!(!text.contains("cross_site"));
            assert!(text.contains("hotline_queue_depth 2"), "{text}");
            assert!(text.contains("hotline_open_connections 1"));
        }
        let next = m.render_at(t0 + COARSE_PERIOD, 2, 20);
        assert!(next.contains("hotline_requests_total{route=\"reports\",status=\"201\"} 2"));
        assert!(next.contains("hotline_reports_accepted_total 2"));
        assert!(next.contains("hotline_rejections_total{reason=\"cross_site\"} 1"));
    }
}
