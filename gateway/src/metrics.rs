//! Prometheus metrics. Only counts and sizes: no addresses, ids, receipts or
//! report bytes ever become a label.

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

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
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
        let requests = Family::<RouteLabels, Counter>::default();
        let rejections = Family::<ReasonLabels, Counter>::default();
        let accepted = Counter::default();
        let connections = Gauge::default();
        let queue_depth = Gauge::default();
        let store_bytes = Gauge::default();
        let commit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let refused_connections = Counter::default();
        registry.register(
            "requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "rejections",
            "Rejected requests by reason",
            rejections.clone(),
        );
        registry.register(
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
        self.queue_depth.set(queue_depth as i64);
        self.store_bytes.set(store_bytes as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
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
    }
}
