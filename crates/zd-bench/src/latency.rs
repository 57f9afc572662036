//! Latency samples and their percentiles (nearest rank, the same rule the peers use).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Latencies in microseconds, kept whole: a run holds at most a few tens of thousands.
#[derive(Debug, Default)]
pub(crate) struct Samples(Vec<u64>);

/// Percentiles of a set of samples, in microseconds.
#[derive(Debug, Serialize, Default)]
pub(crate) struct Summary {
    /// Median.
    pub(crate) p50_us: u64,
    /// 99th percentile.
    pub(crate) p99_us: u64,
    /// Largest.
    pub(crate) max_us: u64,
    /// How many samples.
    pub(crate) samples: usize,
}

impl Samples {
    /// Records one latency.
    pub(crate) fn push(&mut self, latency: Duration) {
        self.0
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one latency already in microseconds.
    pub(crate) fn push_us(&mut self, micros: u64) {
        self.0.push(micros);
    }

    /// How many samples.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Sorts and summarizes.
    pub(crate) fn summary(mut self) -> Summary {
        self.0.sort_unstable();
        Summary {
            p50_us: rank(&self.0, 50),
            p99_us: rank(&self.0, 99),
            max_us: self.0.last().copied().unwrap_or(0),
            samples: self.0.len(),
        }
    }
}

/// Nearest-rank percentile of sorted samples: the smallest value with at least `pct`% of the
/// samples at or below it.
fn rank(sorted: &[u64], pct: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = (sorted.len() * pct).div_ceil(100).max(1) - 1;
    sorted[index.min(sorted.len() - 1)]
}

/// Microseconds since the Unix epoch: the clock visitors stamp their messages with, shared by
/// every process on the machine.
pub(crate) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for v in 1..=100 {
            s.push_us(v);
        }
        let sum = s.summary();
        assert_eq!(
            (sum.p50_us, sum.p99_us, sum.max_us, sum.samples),
            (50, 99, 100, 100)
        );
        assert_eq!(Samples::default().summary().p99_us, 0);
        let mut one = Samples::default();
        one.push_us(7);
        assert_eq!(one.summary().p50_us, 7);
    }
}
