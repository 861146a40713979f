//! Latency percentiles, computed in one place: the harness's summary, the
//! report and the harness's bench all read p50, p95, p99 and max from
//! here, so the numbers a person compares are the same numbers.
//!
//! Values go into an HdrHistogram with three significant figures (each
//! percentile is within 0.1% of a recorded value, as HdrHistogram defines
//! them); the maximum is kept exactly.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The quantiles every view shows, in the order of `Percentiles::values`.
pub const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)];

/// p50, p95, p99 and max of some latencies, in the unit they were recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    /// In the order of `QUANTILES`.
    pub fn values(&self) -> [u64; 4] {
        [self.p50, self.p95, self.p99, self.max]
    }
}

/// Latencies being gathered.
#[derive(Clone, Debug)]
pub struct Latencies {
    histogram: Histogram<u64>,
    max: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        Latencies {
            // Auto-resizing: any u64 latency fits.
            histogram: Histogram::new(3).expect("3 significant figures are allowed"),
            max: 0,
        }
    }

    pub fn record(&mut self, value: u64) {
        // HdrHistogram cannot hold values below 1; a zero latency (events
        // in one clock tick) counts as the smallest one.
        self.histogram
            .record(value.max(1))
            .expect("an auto-resizing histogram takes any value");
        self.max = self.max.max(value);
    }

    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.is_empty() {
            return Percentiles::default();
        }
        let at = |q: f64| self.histogram.value_at_quantile(q).min(self.max);
        Percentiles {
            count: self.len(),
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: self.max,
        }
    }
}

impl FromIterator<u64> for Latencies {
    fn from_iter<I: IntoIterator<Item = u64>>(values: I) -> Self {
        let mut l = Latencies::new();
        for v in values {
            l.record(v);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_hundred_values() {
        let l: Latencies = (1..=100u64).map(|v| v * 1_000_000).collect();
        let p = l.percentiles();
        assert_eq!(p.count, 100);
        // Within HdrHistogram's three significant figures of the exact ones.
        let close = |got: u64, want: u64| got.abs_diff(want) <= want / 1000;
        assert!(close(p.p50, 50_000_000), "{p:?}");
        assert!(close(p.p95, 95_000_000), "{p:?}");
        assert!(close(p.p99, 99_000_000), "{p:?}");
        assert_eq!(p.max, 100_000_000, "the maximum is exact");
    }

    #[test]
    fn no_values_no_percentiles() {
        assert_eq!(Latencies::new().percentiles(), Percentiles::default());
        let zero: Latencies = [0u64].into_iter().collect();
        assert_eq!(zero.percentiles().max, 0);
        assert_eq!(zero.percentiles().p99, 0, "never above the maximum");
    }
}
