//! This machine's reference throughputs, measured once per run: the copy
//! bandwidth that pooling is compared with.

use std::time::Instant;

use rayon::prelude::*;

/// Bytes moved by the DRAM copy printed in the header: source and
/// destination of 64 MiB each, together well past any L3 here.
pub const DRAM_COPY_BYTES: usize = 128 << 20;

/// Bytes read plus bytes written per second by a parallel `copy_from_slice`
/// that moves `bytes` in all (half read, half written), on the current rayon
/// pool (so it follows `--threads`): the bandwidth of a copy with the same
/// working set as the case it is compared with, whether that sits in L2, L3
/// or DRAM. The median of runs after a warm-up that also faults the pages in.
pub fn copy_bandwidth(bytes: usize) -> f64 {
    let len = (bytes / 8).max(1024);
    let src = vec![1.0f32; len];
    let mut dst = vec![0.0f32; len];
    // Chunks of at least 64 KiB: enough tasks to balance, each a long stream.
    let chunk = (len / (4 * rayon::current_num_threads())).max(16 << 10);
    let mut copy = || {
        let t = Instant::now();
        dst.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| d.copy_from_slice(s));
        t.elapsed().as_secs_f64()
    };
    copy();
    // Enough runs for about 20 ms of copying, at least 7.
    let first = copy();
    let runs = ((0.02 / first.max(1e-7)) as usize).clamp(7, 10_000);
    let mut times: Vec<f64> = (0..runs).map(|_| copy()).collect();
    times.sort_by(f64::total_cmp);
    std::hint::black_box(&dst);
    (8 * len) as f64 / times[runs / 2]
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_bandwidth_is_plausible() {
        let bw = super::copy_bandwidth(1 << 20);
        // Anything from a slow VM to a big server: 100 MB/s to 10 TB/s.
        assert!(bw > 1e8 && bw < 1e13, "{bw}");
    }
}
