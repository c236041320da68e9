//! Percentiles of the measured latencies.

use serde::{Deserialize, Serialize};

/// Percentiles of one-way latency in nanoseconds (each sample is a round trip divided by two).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
    /// Smallest sample.
    pub min_ns: u64,
    /// Number of measured samples (warm-up excluded).
    pub iters: u64,
}

impl LatencyStats {
    /// Computes the statistics of round-trip times `rtt_ns` (sorted in place), halving each.
    /// Returns `None` for an empty slice.
    pub fn from_round_trips(rtt_ns: &mut [u64]) -> Option<Self> {
        if rtt_ns.is_empty() {
            return None;
        }
        rtt_ns.sort_unstable();
        let pick = |q: f64| rtt_ns[nearest_rank(rtt_ns.len(), q)] / 2;
        Some(Self {
            p50_ns: pick(0.50),
            p99_ns: pick(0.99),
            p999_ns: pick(0.999),
            max_ns: rtt_ns[rtt_ns.len() - 1] / 2,
            min_ns: rtt_ns[0] / 2,
            iters: rtt_ns.len() as u64,
        })
    }
}

/// Index of the `q` quantile (0 < q ≤ 1) of `n` sorted samples by the nearest-rank method.
fn nearest_rank(n: usize, q: f64) -> usize {
    let rank = (q * n as f64).ceil() as usize;
    rank.clamp(1, n) - 1
}

/// The median of a few values (used for the cost of reading the clock); 0 for none.
pub fn median(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_thousand() {
        // Round trips 2, 4, ..., 2000 ns: one-way 1..=1000 ns.
        let mut rtt: Vec<u64> = (1..=1000).map(|i| 2 * i).collect();
        let s = LatencyStats::from_round_trips(&mut rtt).expect("non-empty");
        assert_eq!(s.p50_ns, 500);
        assert_eq!(s.p99_ns, 990);
        assert_eq!(s.p999_ns, 999);
        assert_eq!(s.max_ns, 1000);
        assert_eq!(s.min_ns, 1);
        assert_eq!(s.iters, 1000);
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(LatencyStats::from_round_trips(&mut []), None);
        let s = LatencyStats::from_round_trips(&mut [10]).expect("one sample");
        assert_eq!((s.p50_ns, s.p999_ns, s.max_ns), (5, 5, 5));
        assert_eq!(median(&mut [3, 1, 2]), 2);
        assert_eq!(median(&mut []), 0);
    }
}
