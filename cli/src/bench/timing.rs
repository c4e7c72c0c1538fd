//! Timing that holds up on a noisy machine: warm-up, then samples until the
//! median is stable or the case's time budget is spent, with quartiles so
//! the spread can be judged.

use std::time::{Duration, Instant};

/// A sample lasts at least this long, so timer resolution never matters.
const MIN_SAMPLE: Duration = Duration::from_millis(1);
const MIN_SAMPLES: usize = 5;
const MAX_SAMPLES: usize = 500;
/// Relative inter-quartile range above which a result is flagged as noisy.
pub const WIDE_SPREAD: f64 = 0.05;

/// Per-run times of one case, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub q1: f64,
    pub q3: f64,
    /// Timed samples (each the mean of `runs / samples` back-to-back runs).
    pub samples: usize,
    /// Timed runs in all, warm-up excluded.
    pub runs: usize,
}

impl Stats {
    /// `(q3 - q1) / median`: the noise of this measurement.
    pub fn spread(&self) -> f64 {
        if self.median > 0.0 { (self.q3 - self.q1) / self.median } else { 0.0 }
    }
    pub fn wide(&self) -> bool {
        self.spread() > WIDE_SPREAD
    }

    /// Statistics of per-run sample times (any order).
    pub fn from_samples(mut s: Vec<f64>, runs: usize) -> Stats {
        s.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let x = p * (s.len() - 1) as f64;
            let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
            s[lo] + (s[hi] - s[lo]) * (x - lo as f64)
        };
        Stats { median: q(0.5), min: s[0], max: s[s.len() - 1], q1: q(0.25), q3: q(0.75), samples: s.len(), runs }
    }
}

/// Times `run`: one cold run and a warm-up of a tenth of the budget, then
/// samples of enough back-to-back runs to last [`MIN_SAMPLE`], until the
/// budget is spent (at least 5 samples) or the median has settled (stops
/// moving by more than 0.5% over the last 5 samples, after 20). A run slower
/// than the budget still gets 3 samples.
pub fn measure(budget: Duration, mut run: impl FnMut() -> Result<(), String>) -> Result<Stats, String> {
    run()?;
    let warm = Instant::now();
    let mut fastest = f64::INFINITY;
    loop {
        let t = Instant::now();
        run()?;
        fastest = fastest.min(t.elapsed().as_secs_f64());
        if warm.elapsed() >= budget / 10 {
            break;
        }
    }
    let per_sample = ((MIN_SAMPLE.as_secs_f64() / fastest).ceil() as usize).clamp(1, 100_000);
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        let t = Instant::now();
        for _ in 0..per_sample {
            run()?;
        }
        samples.push(t.elapsed().as_secs_f64() / per_sample as f64);
        let (n, spent) = (samples.len(), start.elapsed());
        let settled = n >= 20 && {
            let before = median(&samples[..n - 5]);
            (median(&samples) - before).abs() <= 0.005 * before
        };
        if n >= MAX_SAMPLES || (n >= MIN_SAMPLES && (spent >= budget || settled)) || (n >= 3 && spent >= 3 * budget) {
            break;
        }
    }
    let runs = samples.len() * per_sample;
    Ok(Stats::from_samples(samples, runs))
}

fn median(s: &[f64]) -> f64 {
    Stats::from_samples(s.to_vec(), s.len()).median
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_interpolate() {
        let s = Stats::from_samples(vec![4.0, 1.0, 3.0, 2.0, 5.0], 5);
        assert_eq!((s.min, s.q1, s.median, s.q3, s.max), (1.0, 2.0, 3.0, 4.0, 5.0));
        let s = Stats::from_samples(vec![1.0, 2.0], 2);
        assert_eq!(s.median, 1.5);
        assert!((s.spread() - 0.5 / 1.5).abs() < 1e-12);
    }

    #[test]
    fn stops_within_a_few_budgets_and_counts_runs() {
        let mut calls = 0usize;
        let t = Instant::now();
        let s = measure(Duration::from_millis(20), || {
            calls += 1;
            std::hint::black_box((0..1000).sum::<u64>());
            Ok(())
        })
        .unwrap();
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(s.samples >= MIN_SAMPLES && s.runs >= s.samples && calls > s.runs);
        assert!(s.min <= s.median && s.median <= s.max);
    }

    #[test]
    fn errors_stop_the_measurement() {
        assert_eq!(measure(Duration::from_millis(5), || Err("boom".into())), Err("boom".to_string()));
    }
}
