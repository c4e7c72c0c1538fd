//! What each suite op runs: the validated geometry of a case ([`Spec`]) and
//! a prepared problem with its buffers ([`Bench`]) that runs the fast op and
//! checks its last result against `receptive::reference`.

use receptive::{Activation, Bias, MatMut, MatRef, reference, sgemm};

use super::check::{self, Check, FULL_CHECK_MACS, SAMPLES, fill};
use crate::case::{Case, Op};

/// A case needing more buffer memory than this is refused up front.
const MAX_BUFFER_BYTES: u64 = 4 << 30;

/// What a case's throughput is counted in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Work {
    /// Floating-point operations (GFLOP/s, share of the FMA peak).
    Flops(u64),
    /// Bytes read plus bytes written (GB/s, share of the copy bandwidth).
    Bytes(u64),
}

/// A suite case whose geometry has been checked: it can be prepared and run.
#[derive(Clone, Debug)]
pub struct Spec {
    pub case: Case,
    /// e.g. `1x64x56x56 -> 1x64x56x56` or `1024x1024x1024 (MxNxK)`.
    pub shape: String,
    pub work: Work,
}

fn dims(d: &[usize]) -> String {
    d.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("x")
}

/// The issue that brings an op, when it is not in the library yet.
pub fn not_built(op: Op) -> Option<&'static str> {
    match op {
        Op::Sgemm => None,
        Op::Conv => Some("issue 4"),
        Op::MaxPool | Op::AvgPool | Op::GlobalAvgPool | Op::GlobalMaxPool => Some("issue 5"),
        Op::ConvBwdData | Op::ConvBwdWeights | Op::ConvTranspose => Some("issue 6"),
    }
}

/// Total f32 elements of the buffers a case allocates, refused above the limit.
fn check_memory(elements: &[usize]) -> Result<(), String> {
    let bytes = elements.iter().try_fold(0u64, |a, &e| a.checked_add((e as u64).checked_mul(4)?));
    match bytes {
        Some(b) if b <= MAX_BUFFER_BYTES => Ok(()),
        _ => Err(format!(
            "needs {} of buffers; the bench refuses more than {} GiB",
            bytes.map_or("more than 16 EiB".into(), |b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)),
            MAX_BUFFER_BYTES >> 30
        )),
    }
}

impl Spec {
    /// Validates a case's geometry: missing keys, impossible shapes and
    /// oversized problems are errors (whether the op is built is
    /// [`not_built`]'s question).
    pub fn new(case: Case) -> Result<Spec, String> {
        let (shape, work) = match case.op {
            Op::Sgemm => {
                let [m, n, k] = case.gemm_dims()?;
                for (key, v) in [("m", m), ("n", n), ("k", k)] {
                    if v == 0 {
                        return Err(format!("key '{key}' = 0 must be at least 1"));
                    }
                }
                check_memory(&[m.saturating_mul(k), k.saturating_mul(n), m.saturating_mul(n).saturating_mul(2)])?;
                let flops = [m, n, k].iter().try_fold(2u64, |a, &d| a.checked_mul(d as u64));
                (format!("{m}x{n}x{k} (MxNxK)"), Work::Flops(flops.ok_or("the FLOP count overflows u64")?))
            }
            Op::Conv => {
                let (p, x) = case.conv()?;
                let y = p.output_shape(x).map_err(err)?;
                let [xn, wn, yn] = [x, p.weight_shape(), y].map(|d| d.iter().product::<usize>());
                // Input, weights, output, and the reference's two outputs.
                check_memory(&[xn, xn, wn, wn, yn, yn, yn])?;
                (format!("{} -> {}", dims(&x), dims(&y)), Work::Flops(p.flops(x).map_err(err)?))
            }
            Op::MaxPool | Op::AvgPool | Op::GlobalAvgPool | Op::GlobalMaxPool => {
                let (q, x) = case.pool()?;
                let y = q.output_shape(x).map_err(err)?;
                let [xn, yn] = [x, y].map(|d| d.iter().product::<usize>());
                // Input, |input|, output, the reference's two outputs and indices (i64).
                check_memory(&[xn, xn, yn, yn, yn, yn, yn])?;
                (format!("{} -> {}", dims(&x), dims(&y)), Work::Bytes(4 * (xn as u64 + yn as u64)))
            }
            Op::ConvBwdData | Op::ConvBwdWeights | Op::ConvTranspose => {
                return Err(format!("op '{}' is not built yet (issue 6)", case.op.word()));
            }
        };
        Ok(Spec { case, shape, work })
    }

    /// Multiply-adds of the reference computation, to choose a full or a
    /// sampled check.
    fn macs(&self) -> u64 {
        match self.work {
            Work::Flops(f) => f / 2,
            Work::Bytes(b) => b,
        }
    }
}

/// A prepared problem: buffers filled with fixed pseudo-random data.
pub trait Bench {
    /// The kernel path the library chose, e.g. `im2col+gemm avx512 14x32`.
    fn path(&self) -> String;
    /// Runs the fast op once.
    fn run(&mut self) -> Result<(), String>;
    /// Compares the last run's output with the reference.
    fn check(&self) -> Result<Check, String>;
}

/// Allocates and fills the buffers of a case (and builds its plan).
pub fn prepare(spec: &Spec) -> Result<Box<dyn Bench>, String> {
    match spec.case.op {
        Op::Sgemm => {
            let [m, n, k] = spec.case.gemm_dims()?;
            Ok(Box::new(Sgemm {
                m,
                n,
                k,
                a: fill(m * k, 1),
                b: fill(k * n, 2),
                c: vec![0.0; m * n],
                full: spec.macs() <= FULL_CHECK_MACS,
            }))
        }
        op => Err(format!("op '{}' is not built yet", op.word())),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `C = A * B`, all row-major, alpha 1, beta 0, no epilogue.
struct Sgemm {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    full: bool,
}

impl Sgemm {
    fn views<'a>(&self, a: &'a [f32], b: &'a [f32]) -> Result<(MatRef<'a>, MatRef<'a>), String> {
        let av = MatRef::new(a, self.m, self.k, self.k, 1).map_err(|e| err(receptive::Error::from(e)))?;
        let bv = MatRef::new(b, self.k, self.n, self.n, 1).map_err(|e| err(receptive::Error::from(e)))?;
        Ok((av, bv))
    }

    /// Reference values and absolute sums at the sampled outputs, mirroring
    /// `reference::sgemm` (f64 accumulation over p in order).
    fn sampled_reference(&self, idx: &[usize]) -> Vec<(f32, f32)> {
        idx.iter()
            .map(|&o| {
                let (i, j) = (o / self.n, o % self.n);
                let (mut acc, mut abs) = (0.0f64, 0.0f64);
                for p in 0..self.k {
                    let prod = self.a[i * self.k + p] as f64 * self.b[p * self.n + j] as f64;
                    acc += prod;
                    abs += prod.abs();
                }
                (acc as f32, abs as f32)
            })
            .collect()
    }
}

impl Bench for Sgemm {
    fn path(&self) -> String {
        format!("gemm {}", receptive::active_isa())
    }

    fn run(&mut self) -> Result<(), String> {
        let (m, n) = (self.m, self.n);
        let (a, b) = self.views(&self.a, &self.b)?;
        let c = MatMut::new(&mut self.c, m, n, n, 1).map_err(|e| err(receptive::Error::from(e)))?;
        sgemm(1.0, a, b, 0.0, c, Bias::None, Activation::None).map_err(err)
    }

    fn check(&self) -> Result<Check, String> {
        let (m, n) = (self.m, self.n);
        let mut check = Check::new(m * n);
        if self.full {
            let (abs_a, abs_b) = (check::abs(&self.a), check::abs(&self.b));
            let mut want = vec![0.0; m * n];
            let mut abs_sum = vec![0.0; m * n];
            for (out, (a, b)) in [(&mut want, (&self.a, &self.b)), (&mut abs_sum, (&abs_a, &abs_b))] {
                let (a, b) = self.views(a, b)?;
                let c = MatMut::new(out, m, n, n, 1).map_err(|e| err(receptive::Error::from(e)))?;
                reference::sgemm(1.0, a, b, 0.0, c, Bias::None, Activation::None).map_err(err)?;
            }
            for (o, ((&g, &w), &s)) in self.c.iter().zip(&want).zip(&abs_sum).enumerate() {
                check.compare(o, g, w, reference::tolerance(self.k, s));
            }
        } else {
            let idx = check::sample_indices(m * n, SAMPLES);
            for (&o, (w, s)) in idx.iter().zip(self.sampled_reference(&idx)) {
                check.compare(o, self.c[o], w, reference::tolerance(self.k, s));
            }
        }
        Ok(check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(line: &str) -> Result<Spec, String> {
        Spec::new(Case::parse_line(line)?.expect("a case"))
    }

    #[test]
    fn sgemm_spec_counts_flops_and_refuses_zero_and_huge() {
        let s = spec("sgemm name=x m=2 n=3 k=4").unwrap();
        assert_eq!((s.shape.as_str(), s.work), ("2x3x4 (MxNxK)", Work::Flops(48)));
        assert!(spec("sgemm m=0 n=3 k=4").unwrap_err().contains("key 'm' = 0 must be at least 1"));
        assert!(spec("sgemm m=3 k=4").unwrap_err().contains("missing key 'n'"));
        assert!(spec("sgemm m=100000 n=100000 k=100000").unwrap_err().contains("refuses more than 4 GiB"));
        let e = spec(&format!("sgemm m={} n={} k=1", usize::MAX, usize::MAX)).unwrap_err();
        assert!(e.contains("more than 16 EiB"), "{e}");
    }

    #[test]
    fn sampled_sgemm_reference_is_the_reference() {
        let spec = spec("sgemm m=7 n=13 k=37").unwrap();
        let mut full = prepare(&spec).unwrap();
        full.run().unwrap();
        let c = full.check().unwrap();
        assert!(c.ok() && !c.sampled(), "{}", c.describe());
        // The sampled path's values match reference::sgemm bit for bit.
        let g = Sgemm { m: 7, n: 13, k: 37, a: fill(7 * 37, 1), b: fill(37 * 13, 2), c: vec![], full: false };
        let mut want = vec![0.0; 7 * 13];
        let (a, b) = g.views(&g.a, &g.b).unwrap();
        reference::sgemm(1.0, a, b, 0.0, MatMut::new(&mut want, 7, 13, 13, 1).unwrap(), Bias::None, Activation::None)
            .unwrap();
        let idx: Vec<usize> = (0..7 * 13).collect();
        for (&o, (w, _)) in idx.iter().zip(g.sampled_reference(&idx)) {
            assert_eq!(w.to_bits(), want[o].to_bits(), "output {o}");
        }
    }

    #[test]
    fn a_wrong_result_fails_the_check() {
        let mut s = Sgemm { m: 3, n: 5, k: 8, a: fill(24, 1), b: fill(40, 2), c: vec![0.0; 15], full: true };
        s.run().unwrap();
        assert!(s.check().unwrap().ok());
        s.c[7] += 1e-3;
        let c = s.check().unwrap();
        assert_eq!(c.failures, 1);
        assert!(c.describe().contains("output 7"));
        s.full = false;
        assert_eq!(s.check().unwrap().failures, 1, "15 outputs are all sampled");
    }

    #[test]
    fn conv_and_pool_specs_validate_shapes() {
        let s = spec("conv n=1 c=3 h=32 w=32 k=10 kh=5 kw=5 stride=1 pad=2").unwrap();
        assert_eq!((s.shape.as_str(), s.work), ("1x3x32x32 -> 1x10x32x32", Work::Flops(2 * 10 * 32 * 32 * 75)));
        let e = spec("conv n=1 c=1 h=5 w=5 k=1 kh=5 kw=5 dilation=2").unwrap_err();
        assert!(e.contains("kernel 5 with dilation 2 spans 9 rows"), "{e}");
        assert!(spec("conv c=4 h=5 w=5 k=6 kh=1 kw=1 groups=4").unwrap_err().contains("divisible by groups"));
        let s = spec("maxpool n=1 c=64 h=112 w=112 kh=3 kw=3 stride=2 pad=1").unwrap();
        assert_eq!(s.work, Work::Bytes(4 * 64 * (112 * 112 + 56 * 56)));
        assert!(spec("maxpool c=1 h=5 w=5 kh=2 kw=2 pad=2").unwrap_err().contains("at most half"));
        assert_eq!(spec("globalavgpool c=8 h=7 w=7").unwrap().shape, "1x8x7x7 -> 1x8x1x1");
        assert!(spec("conv_transpose c=1 h=2 w=2 k=1 kh=1 kw=1").unwrap_err().contains("not built yet"));
    }
}
