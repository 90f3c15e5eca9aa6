//! A lock-free log-linear histogram of microseconds: exact below 1,024 µs, then 128
//! sub-buckets per power of two (under 1 % error). Workers record into it from many tasks
//! and ship a sparse snapshot to the coordinator, which merges them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

const LINEAR: usize = 1024;
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
const EXPS: usize = 54;
const BUCKETS: usize = LINEAR + EXPS * SUB;

fn index(v: u64) -> usize {
    if v < LINEAR as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let m = ((v >> (e - SUB_BITS)) as usize) & (SUB - 1);
    (LINEAR + (e as usize - 10) * SUB + m).min(BUCKETS - 1)
}

/// The middle of a bucket.
fn value(idx: usize) -> u64 {
    if idx < LINEAR {
        return idx as u64;
    }
    let k = idx - LINEAR;
    let e = (k / SUB) as u32 + 10;
    let m = (k % SUB) as u64;
    let width = 1u64 << (e - SUB_BITS);
    (1u64 << e) + m * width + width / 2
}

pub struct AtomicHist {
    buckets: Box<[AtomicU64]>,
    n: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for AtomicHist {
    fn default() -> Self {
        AtomicHist {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            n: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl AtomicHist {
    pub fn record(&self, us: u64) {
        self.buckets[index(us)].fetch_add(1, Relaxed);
        self.n.fetch_add(1, Relaxed);
        self.sum.fetch_add(us, Relaxed);
        self.max.fetch_max(us, Relaxed);
    }

    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Relaxed);
        }
        self.n.store(0, Relaxed);
        self.sum.store(0, Relaxed);
        self.max.store(0, Relaxed);
    }

    pub fn snapshot(&self) -> Snap {
        let buckets = self
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let c = b.load(Relaxed);
                (c > 0).then_some((i as u32, c))
            })
            .collect();
        Snap { n: self.n.load(Relaxed), sum: self.sum.load(Relaxed), max: self.max.load(Relaxed), buckets }
    }
}

/// A sparse, mergeable copy: `(bucket, count)` pairs in bucket order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snap {
    pub n: u64,
    pub sum: u64,
    pub max: u64,
    pub buckets: Vec<(u32, u64)>,
}

impl Snap {
    pub fn merge(&mut self, o: &Snap) {
        self.n += o.n;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
        let mut all = std::mem::take(&mut self.buckets);
        all.extend_from_slice(&o.buckets);
        all.sort_unstable_by_key(|b| b.0);
        for (i, c) in all {
            match self.buckets.last_mut() {
                Some(last) if last.0 == i => last.1 += c,
                _ => self.buckets.push((i, c)),
            }
        }
    }

    /// The q-quantile in µs (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for &(i, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                return value(i as usize).min(self.max);
            }
        }
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.sum as f64 / self.n as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for v in (0..5_000_000u64).step_by(997) {
            let i = index(v);
            assert!(i >= last);
            last = i;
            let r = value(i) as f64;
            assert!((r - v as f64).abs() <= (v as f64) * 0.01 + 1.0, "{v} -> {r}");
        }
    }

    #[test]
    fn quantiles_merge() {
        let a = AtomicHist::default();
        let b = AtomicHist::default();
        for v in 1..=1000 {
            a.record(v);
            b.record(v + 1000);
        }
        let mut s = a.snapshot();
        s.merge(&b.snapshot());
        assert_eq!(s.n, 2000);
        assert_eq!(s.quantile(0.5), 1000);
        let p99 = s.quantile(0.99);
        assert!((1970..=1995).contains(&p99), "{p99}");
        assert_eq!(s.max, 2000);
    }
}
