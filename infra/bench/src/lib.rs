//! Benchmark tools (see BENCHMARKS.md and infra/bench/run.sh). Not part of the product.

/// The value at quantile `q` (0..=1) of sorted samples.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank]
}

pub mod workload;
