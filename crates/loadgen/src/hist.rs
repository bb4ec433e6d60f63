//! A fixed-size latency histogram with nearest-rank percentiles.
//!
//! Latencies are kept in log-linear buckets (128 per power of two, so a reported value
//! is at most 1/128 ≈ 0.8 % above the true one) instead of a vector of samples: memory
//! stays at ~35 KiB per worker however many operations a run performs, and merging the
//! workers' histograms is an element-wise sum.

use std::time::Duration;

/// Sub-buckets per power of two, as a bit count.
const SUB_BITS: u32 = 7;
/// Sub-buckets per power of two.
const SUB: u64 = 1 << SUB_BITS;
/// Largest value kept apart (2^40 ns ≈ 18 minutes); longer latencies land in the last
/// bucket. No request of this tool can take that long: every one has a timeout.
pub const MAX_TRACKED_NANOS: u64 = (1 << 40) - 1;
/// Number of buckets: exact ones below 2·SUB, then SUB per octave up to 2^40.
const BUCKETS: usize = bucket_of(MAX_TRACKED_NANOS) + 1;

/// Bucket index of `v` nanoseconds. Values below 2·SUB have a bucket each; above, the
/// bucket keeps the top SUB_BITS+1 significant bits.
const fn bucket_of(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let mantissa = (v >> shift) - SUB;
    (SUB + shift as u64 * SUB + mantissa) as usize
}

/// Largest value that falls into bucket `b` (so percentiles never under-report).
fn bucket_upper(b: usize) -> u64 {
    let b = b as u64;
    if b < 2 * SUB {
        return b;
    }
    let shift = (b - SUB) / SUB;
    let mantissa = (b - SUB) % SUB;
    ((SUB + mantissa) << shift) + ((1u64 << shift) - 1)
}

/// Latency histogram in nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Records one latency in nanoseconds (clamped to [`MAX_TRACKED_NANOS`]).
    pub fn record_nanos(&mut self, nanos: u64) {
        let v = nanos.min(MAX_TRACKED_NANOS);
        if let Some(c) = self.counts.get_mut(bucket_of(v)) {
            *c += 1;
            self.total += 1;
            self.max = self.max.max(v);
        }
    }

    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        self.record_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds another histogram's samples to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest sample (exact), `None` when empty.
    pub fn max_nanos(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// Nearest-rank percentile `q` (0 < q ≤ 100) in nanoseconds: the smallest recorded
    /// value such that at least q % of the samples are ≤ it, rounded up to its bucket's
    /// upper edge and capped at the exact maximum. `None` when empty.
    pub fn percentile_nanos(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let q = q.clamp(0.0, 100.0);
        // Rank is 1-based: ceil(q/100 · n), at least 1.
        let rank = ((q / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let rank = rank.min(self.total);
        let mut seen = 0u64;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_upper(b).min(self.max));
            }
        }
        Some(self.max)
    }

    /// [`Histogram::percentile_nanos`] in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> Option<f64> {
        self.percentile_nanos(q).map(|n| n as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: nearest-rank percentile over the exact sorted samples.
    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank.min(sorted.len()) - 1]
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn empty_has_no_percentiles() {
        let h = Histogram::new();
        assert_eq!(h.percentile_nanos(50.0), None);
        assert_eq!(h.max_nanos(), None);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        // Shuffled order must not matter.
        for v in (1..=100u64).rev() {
            h.record_nanos(v);
        }
        assert_eq!(h.percentile_nanos(50.0), Some(50));
        assert_eq!(h.percentile_nanos(99.0), Some(99));
        assert_eq!(h.percentile_nanos(100.0), Some(100));
        assert_eq!(h.percentile_nanos(0.5), Some(1));
        assert_eq!(h.count(), 100);
    }

    #[test]
    fn buckets_are_contiguous_and_monotonic() {
        let mut prev_upper = None;
        for b in 0..BUCKETS {
            let up = bucket_upper(b);
            assert_eq!(bucket_of(up), b, "upper edge of bucket {b}");
            if let Some(p) = prev_upper {
                assert_eq!(
                    bucket_of(p + 1),
                    b,
                    "value after bucket {} lands in {b}",
                    b - 1
                );
            }
            prev_upper = Some(up);
        }
        assert_eq!(bucket_upper(BUCKETS - 1), MAX_TRACKED_NANOS);
    }

    #[test]
    fn matches_exact_percentiles_within_bucket_precision() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        // Latencies spread from ~1 µs to ~1 s, like a mix of Zn and Ub runs.
        let samples: Vec<u64> = (0..20_000)
            .map(|_| 1_000 + rng.next() % (1u64 << (10 + rng.next() % 20)))
            .collect();
        let mut h = Histogram::new();
        for &s in &samples {
            h.record_nanos(s);
        }
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        for q in [1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            let want = exact(&sorted, q);
            let got = h.percentile_nanos(q).unwrap_or(0);
            assert!(got >= want, "p{q}: {got} < exact {want}");
            assert!(
                (got - want) as f64 <= want as f64 / SUB as f64,
                "p{q}: {got} too far above exact {want}"
            );
        }
        assert_eq!(h.max_nanos(), sorted.last().copied());
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut rng = XorShift(12345);
        let mut all = Histogram::new();
        let mut parts = [Histogram::new(), Histogram::new(), Histogram::new()];
        for i in 0..3000 {
            let v = rng.next() % 50_000_000;
            all.record_nanos(v);
            parts[i % 3].record_nanos(v);
        }
        let mut merged = Histogram::new();
        for p in &parts {
            merged.merge(p);
        }
        assert_eq!(merged.count(), all.count());
        for q in [50.0, 99.0, 100.0] {
            assert_eq!(merged.percentile_nanos(q), all.percentile_nanos(q));
        }
    }

    #[test]
    fn huge_values_are_clamped_not_lost() {
        let mut h = Histogram::new();
        h.record(Duration::from_secs(100_000));
        h.record_nanos(u64::MAX);
        assert_eq!(h.count(), 2);
        assert_eq!(h.percentile_nanos(50.0), Some(MAX_TRACKED_NANOS));
    }
}
