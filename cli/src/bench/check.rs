//! Comparing a fast result with `receptive::reference`, each output held to
//! the tolerance derived from its reduction length and the absolute sum of
//! its products (`reference::tolerance`).
//!
//! Problems up to [`FULL_CHECK_MACS`] multiply-adds are checked in full by
//! the reference functions. Larger ones (where the naive loops would take
//! seconds) are checked at [`SAMPLES`] deterministic output positions, each
//! recomputed by a small loop that mirrors the reference's arithmetic
//! (f64 accumulation in the same order); tests hold that loop to the
//! reference bit for bit.

/// Above this many multiply-adds, a case is checked on sampled outputs.
pub const FULL_CHECK_MACS: u64 = 150_000_000;
/// Output positions checked on a large case.
pub const SAMPLES: usize = 600;

/// The outcome of comparing one output buffer.
#[derive(Clone, Debug, Default)]
pub struct Check {
    pub max_abs_err: f64,
    pub checked: usize,
    pub total: usize,
    pub failures: usize,
    pub first_failure: Option<String>,
}

impl Check {
    pub fn new(total: usize) -> Check {
        Check { total, ..Check::default() }
    }

    pub fn ok(&self) -> bool {
        self.failures == 0
    }

    pub fn sampled(&self) -> bool {
        self.checked < self.total
    }

    /// Compares output `index`; `tol` is its allowed absolute error.
    /// Equal values (infinities included) and NaN against NaN pass.
    pub fn compare(&mut self, index: usize, got: f32, want: f32, tol: f32) {
        self.checked += 1;
        if got == want || (got.is_nan() && want.is_nan()) {
            return;
        }
        let err = (got as f64 - want as f64).abs();
        self.max_abs_err = if err.is_nan() { f64::INFINITY } else { self.max_abs_err.max(err) };
        if err.is_nan() || err > tol as f64 {
            self.failures += 1;
            self.first_failure.get_or_insert_with(|| format!("output {index}: got {got}, want {want} (tol {tol:e})"));
        }
    }

    /// A one-line summary for the table's notes.
    pub fn describe(&self) -> String {
        let how = if self.sampled() {
            format!("{} of {} outputs (sampled)", self.checked, self.total)
        } else {
            format!("all {} outputs", self.total)
        };
        match &self.first_failure {
            None => format!("checked {how}"),
            Some(f) => format!("{} mismatches in {how}; first: {f}", self.failures),
        }
    }
}

/// Up to `count` distinct positions in `0..total`, sorted: the first and the
/// last output plus a fixed pseudo-random spread (the same every run).
pub fn sample_indices(total: usize, count: usize) -> Vec<usize> {
    if total <= count {
        return (0..total).collect();
    }
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut v = vec![0, total - 1];
    while v.len() < count {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        v.push(((s >> 11) % total as u64) as usize);
    }
    v.sort_unstable();
    v.dedup();
    v
}

pub use receptive::reference::pseudo_random as fill;

pub fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_uses_the_tolerance_and_catches_nan() {
        let mut c = Check::new(4);
        c.compare(0, 1.0, 1.0 + 1e-7, 1e-6);
        c.compare(1, f32::NAN, f32::NAN, 0.0);
        assert!(c.ok() && c.checked == 2 && c.max_abs_err < 1e-6);
        c.compare(2, f32::NAN, 1.0, 1.0);
        c.compare(3, 2.0, 1.0, 0.5);
        assert_eq!(c.failures, 2);
        assert_eq!(c.max_abs_err, f64::INFINITY);
        assert!(c.describe().contains("2 mismatches in all 4 outputs; first: output 2"), "{}", c.describe());
    }

    #[test]
    fn samples_are_deterministic_distinct_and_cover_the_ends() {
        let a = sample_indices(1_000_000, 100);
        assert_eq!(a, sample_indices(1_000_000, 100));
        assert!(a.len() > 90 && a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((a[0], *a.last().unwrap()), (0, 999_999));
        assert_eq!(sample_indices(5, 100), vec![0, 1, 2, 3, 4]);
    }
}
