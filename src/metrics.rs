//! Prometheus metrics, one registry per application.
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::sync::Arc;

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    holds: IntCounterVec,
    changes: IntCounterVec,
    ws_connections: IntGauge,
    live_subscriptions: IntGauge,
    live_sent: prometheus::IntCounter,
    live_resyncs: prometheus::IntCounter,
    live_evictions: prometheus::IntCounter,
    live_latency: prometheus::Histogram,
    live_reconciled: prometheus::IntCounter,
    waitlist_reconciles: prometheus::IntCounter,
    free_to_offer: prometheus::Histogram,
    hub_reads: IntCounterVec,
    rate_unchecked: prometheus::IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tablecast_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "tablecast_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )
        .expect("metric");
        let holds = IntCounterVec::new(
            Opts::new("tablecast_holds_total", "Hold attempts by outcome"),
            &["outcome"],
        )
        .expect("metric");
        let changes = IntCounterVec::new(
            Opts::new(
                "tablecast_changes_committed_total",
                "Committed changes by cause",
            ),
            &["cause"],
        )
        .expect("metric");
        let ws_connections =
            IntGauge::new("tablecast_ws_connections", "Open WebSocket connections")
                .expect("metric");
        let live_subscriptions =
            IntGauge::new("tablecast_live_subscriptions", "Live subscriptions").expect("metric");
        let live_sent = prometheus::IntCounter::new(
            "tablecast_live_messages_sent_total",
            "Frames queued to WebSocket subscribers",
        )
        .expect("metric");
        let live_resyncs = prometheus::IntCounter::new(
            "tablecast_live_slow_consumer_resyncs_total",
            "Fresh snapshots sent to subscribers that fell behind",
        )
        .expect("metric");
        let live_evictions = prometheus::IntCounter::new(
            "tablecast_live_slow_consumer_closes_total",
            "Connections closed with 4008 for falling behind",
        )
        .expect("metric");
        let live_latency = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "tablecast_live_commit_to_send_seconds",
                "From a change's commit time to its frame being written to a WebSocket",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )
        .expect("metric");
        let live_reconciled = prometheus::IntCounter::new(
            "tablecast_live_reconcile_repairs_total",
            "Channels found behind the store by the reconcile loop and resnapshotted",
        )
        .expect("metric");
        let waitlist_reconciles = prometheus::IntCounter::new(
            "tablecast_waitlist_reconcile_passes_total",
            "Waitlist reconcile passes completed (the dates with waiting entries visited, up to 1,000)",
        )
        .expect("metric");
        let free_to_offer = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "tablecast_waitlist_free_to_offer_seconds",
                "From the commit that freed capacity to the commit of the offer it made",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("metric");
        let hub_reads = IntCounterVec::new(
            Opts::new(
                "tablecast_hub_store_reads_total",
                "Store reads made by the live hub, by what was read (day, waitlist, restaurant) \
                 and why (subscribe, change: a version gap or a change without its image, \
                 reconcile, repair after a bus outage)",
            ),
            &["kind", "reason"],
        )
        .expect("metric");
        let rate_unchecked = prometheus::IntCounter::new(
            "tablecast_hold_rate_unchecked_total",
            "Hold and join requests let through because the store could not read or write the \
             client's hold-rate bucket",
        )
        .expect("metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(rate_unchecked.clone()),
            Box::new(latency.clone()),
            Box::new(holds.clone()),
            Box::new(changes.clone()),
            Box::new(ws_connections.clone()),
            Box::new(live_subscriptions.clone()),
            Box::new(live_sent.clone()),
            Box::new(live_resyncs.clone()),
            Box::new(live_evictions.clone()),
            Box::new(live_latency.clone()),
            Box::new(live_reconciled.clone()),
            Box::new(waitlist_reconciles.clone()),
            Box::new(free_to_offer.clone()),
            Box::new(hub_reads.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        Metrics(Arc::new(Inner {
            registry,
            requests,
            latency,
            holds,
            changes,
            ws_connections,
            live_subscriptions,
            live_sent,
            live_resyncs,
            live_evictions,
            live_latency,
            live_reconciled,
            waitlist_reconciles,
            free_to_offer,
            hub_reads,
            rate_unchecked,
        }))
    }

    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// Records one answered request. The method label takes the standard methods only (any
    /// other is `OTHER`), so a client cannot grow the label set.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.0
            .requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.0
            .latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// A hold or join let through unchecked: its client's rate bucket could not be read.
    pub fn rate_unchecked(&self) {
        self.0.rate_unchecked.inc();
    }

    pub fn hold_outcome(&self, outcome: &str) {
        self.0.holds.with_label_values(&[outcome]).inc();
    }

    pub fn change_committed(&self, cause: &str) {
        self.0.changes.with_label_values(&[cause]).inc();
    }

    pub fn ws_connections(&self) -> &IntGauge {
        &self.0.ws_connections
    }

    pub fn live_subscriptions(&self) -> &IntGauge {
        &self.0.live_subscriptions
    }

    pub fn live_sent(&self) {
        self.0.live_sent.inc();
    }

    pub fn live_resync(&self) {
        self.0.live_resyncs.inc();
    }

    pub fn live_eviction(&self) {
        self.0.live_evictions.inc();
    }

    pub fn free_to_offer(&self, seconds: f64) {
        self.0.free_to_offer.observe(seconds);
    }

    pub fn live_latency(&self, seconds: f64) {
        self.0.live_latency.observe(seconds);
    }

    /// One store read by the live hub: `kind` day, waitlist, cancelled, restaurant or
    /// reservation (one gone from the day, read by reconcile for its cause and time); `reason`
    /// subscribe, change, reconcile or repair.
    pub fn hub_store_read(&self, kind: &str, reason: &str) {
        self.0.hub_reads.with_label_values(&[kind, reason]).inc();
    }

    pub fn live_reconciled(&self) {
        self.0.live_reconciled.inc();
    }

    pub fn waitlist_reconciled(&self) {
        self.0.waitlist_reconciles.inc();
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.0.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).unwrap_or_default()
    }
}

fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        let m = Metrics::new();
        for i in 0..200 {
            m.observe_request(&format!("M{i}"), "/healthz", 200, 0.001);
        }
        m.observe_request("GET", "/healthz", 200, 0.001);
        let text = m.render();
        assert!(!text.contains("M17"), "a made-up method became a label");
        assert!(text.contains("method=\"OTHER\""));
        assert!(text.contains("method=\"GET\""));
    }
}
