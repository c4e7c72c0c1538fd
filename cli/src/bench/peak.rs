//! This machine's reference throughputs, measured once per run: the copy
//! bandwidth that pooling is compared with.

use std::time::Instant;

use rayon::prelude::*;

/// Source and destination of 64 MiB each: together well past any L3 here,
/// so the copy streams from and to DRAM.
const COPY_BYTES: usize = 64 << 20;
const COPY_RUNS: usize = 7;

/// Bytes read plus bytes written per second by a parallel `copy_from_slice`
/// of a buffer larger than the last-level cache, on the current rayon pool
/// (so it follows `--threads`). The median of a few runs after a warm-up
/// that also faults the pages in.
pub fn copy_bandwidth() -> f64 {
    let src = vec![1.0f32; COPY_BYTES / 4];
    let mut dst = vec![0.0f32; COPY_BYTES / 4];
    // Chunks of 1 MiB: enough tasks to balance, each a long stream.
    let chunk = (1 << 20) / 4;
    let mut copy = || {
        let t = Instant::now();
        dst.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| d.copy_from_slice(s));
        t.elapsed().as_secs_f64()
    };
    copy();
    let mut times: Vec<f64> = (0..COPY_RUNS).map(|_| copy()).collect();
    times.sort_by(f64::total_cmp);
    std::hint::black_box(&dst);
    (2 * COPY_BYTES) as f64 / times[COPY_RUNS / 2]
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_bandwidth_is_plausible() {
        let bw = super::copy_bandwidth();
        // Anything from a slow VM to a big server: 100 MB/s to 10 TB/s.
        assert!(bw > 1e8 && bw < 1e13, "{bw}");
    }
}
