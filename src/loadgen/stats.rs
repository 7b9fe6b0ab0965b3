//! Latency summaries, by HdrHistogram.
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Durations recorded in microseconds to three significant digits (HdrHistogram's precision:
/// within 0.1 % of the exact sample).
pub fn histogram(samples: &[Duration]) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).expect("3 significant digits is a valid precision");
    for d in samples {
        // Auto-resizing (`Histogram::new`): any duration up to 2^63 µs fits.
        h.record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX >> 1))
            .expect("the histogram grows to any duration");
    }
    h
}

/// The value at `quantile` (0–1, nearest rank) of a histogram of microseconds, in milliseconds.
pub fn ms_at(h: &Histogram<u64>, quantile: f64) -> f64 {
    h.value_at_quantile(quantile) as f64 / 1000.0
}

/// Nearest-rank percentiles of a histogram of microseconds, in milliseconds.
pub fn summary_of(h: &Histogram<u64>) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    Summary {
        count: h.len() as usize,
        p50_ms: ms_at(h, 0.5),
        p99_ms: ms_at(h, 0.99),
        max_ms: ms_at(h, 1.0),
    }
}

/// Nearest-rank percentiles of durations in milliseconds (see [`histogram`]).
pub fn summarize(samples: &[Duration]) -> Summary {
    summary_of(&histogram(samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = summarize(&v);
        assert_eq!(s.count, 100);
        for (got, want) in [(s.p50_ms, 50.0), (s.p99_ms, 99.0), (s.max_ms, 100.0)] {
            assert!((got - want).abs() <= want * 0.001, "{got} vs {want}");
        }
        assert_eq!(summarize(&[]), Summary::default());
    }
}
