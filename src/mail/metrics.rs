//! The mail sender's metrics, in the application's registry.
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct MailMetrics {
    depth: IntGauge,
    sent: IntCounterVec,
    failures: IntCounterVec,
    dropped: IntCounterVec,
}

impl MailMetrics {
    pub fn register(registry: &Registry) -> anyhow::Result<Self> {
        let depth = IntGauge::new(
            "tablecast_mail_outbox_depth",
            "Mail in the outbox not yet sent or given up (all instances)",
        )?;
        let sent = IntCounterVec::new(
            Opts::new(
                "tablecast_mail_sent_total",
                "Mail handed to the relay, by kind",
            ),
            &["kind"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "tablecast_mail_send_failures_total",
                "Failed attempts to send mail, by kind (each is retried unless permanent)",
            ),
            &["kind"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "tablecast_mail_dropped_total",
                "Mail given up unsent because it no longer says what is true, by kind and why: \
                 an offer whose deadline passed, a confirmation whose reservation was cancelled",
            ),
            &["kind", "why"],
        )?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(sent.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        // Every kind shows from the start, at zero.
        for k in crate::store::MailKind::ALL {
            sent.with_label_values(&[k.as_str()]);
            failures.with_label_values(&[k.as_str()]);
        }
        Ok(Self {
            depth,
            sent,
            failures,
            dropped,
        })
    }

    pub fn outbox_depth(&self, n: u64) {
        self.depth.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn mail_sent(&self, kind: &str) {
        self.sent.with_label_values(&[kind]).inc();
    }

    pub fn mail_failed(&self, kind: &str) {
        self.failures.with_label_values(&[kind]).inc();
    }

    pub fn mail_dropped(&self, kind: &str, why: &str) {
        self.dropped.with_label_values(&[kind, why]).inc();
    }
}
