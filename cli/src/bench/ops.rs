//! What each suite op runs: the validated geometry of a case ([`Spec`]) and
//! a prepared problem with its buffers ([`Bench`]) that runs the fast op and
//! checks its last result against `receptive::reference`.

use receptive::{
    Activation, Bias, Conv2dBackwardDataPlan, Conv2dParams, Conv2dPlan, ConvAlgorithm, ConvTranspose2dParams,
    ConvTranspose2dPlan, MatMut, MatRef, Pool2dParams, Pool2dPlan, PoolKind, conv2d_backward_weights_into, reference,
    sgemm,
};

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
    /// oversized problems are errors.
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
            Op::ConvBwdData | Op::ConvBwdWeights => {
                let (p, x) = case.conv()?;
                let y = p.output_shape(x).map_err(err)?;
                let [xn, wn, yn] = [x, p.weight_shape(), y].map(|d| d.iter().product::<usize>());
                check_memory(&[xn, xn, wn, wn, yn, yn, 2 * xn.max(wn)])?;
                let shape = if case.op == Op::ConvBwdData {
                    format!("dy {} -> dx {}", dims(&y), dims(&x))
                } else {
                    format!("x {}, dy {} -> dw {}", dims(&x), dims(&y), dims(&p.weight_shape()))
                };
                (shape, Work::Flops(p.flops(x).map_err(err)?))
            }
            Op::ConvTranspose => {
                let (tp, x) = case.conv_transpose()?;
                let y = tp.output_shape(x).map_err(err)?;
                let [xn, wn, yn] = [x, tp.weight_shape(), y].map(|d| d.iter().product::<usize>());
                check_memory(&[xn, xn, wn, wn, yn, yn, yn])?;
                (format!("{} -> {}", dims(&x), dims(&y)), Work::Flops(tp.flops(x).map_err(err)?))
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

/// The convolution algorithm `RECEPTIVE_CONV_ALGORITHM` forces (default auto).
fn algorithm() -> Result<ConvAlgorithm, String> {
    match std::env::var("RECEPTIVE_CONV_ALGORITHM").as_deref() {
        Err(_) | Ok("auto") => Ok(ConvAlgorithm::Auto),
        Ok("implicit") => Ok(ConvAlgorithm::Implicit),
        Ok("implicit_t") => Ok(ConvAlgorithm::ImplicitChannels),
        Ok("im2col") => Ok(ConvAlgorithm::Im2col),
        Ok("direct") => Ok(ConvAlgorithm::Direct),
        Ok(other) => {
            Err(format!("RECEPTIVE_CONV_ALGORITHM={other}: expected auto, implicit, implicit_t, im2col or direct"))
        }
    }
}

/// Allocates and fills the buffers of a case (and builds its plan).
pub fn prepare(spec: &Spec) -> Result<Box<dyn Bench>, String> {
    let full = spec.macs() <= FULL_CHECK_MACS;
    match spec.case.op {
        Op::Sgemm => {
            let [m, n, k] = spec.case.gemm_dims()?;
            Ok(Box::new(Sgemm { m, n, k, a: fill(m * k, 1), b: fill(k * n, 2), c: vec![0.0; m * n], full }))
        }
        Op::Conv => {
            let (p, shape) = spec.case.conv()?;
            let out = p.output_shape(shape).map_err(err)?;
            let x = fill(shape.iter().product(), 1);
            let w = fill(p.weight_count(), 2);
            let b = fill(p.out_channels, 3);
            let plan = Conv2dPlan::new(&p, &w, Some(&b), Activation::None).map_err(err)?.algorithm(algorithm()?);
            Ok(Box::new(Conv { p, shape, x, w, b, plan, y: vec![0.0; out.iter().product()], full }))
        }
        Op::MaxPool | Op::AvgPool | Op::GlobalAvgPool | Op::GlobalMaxPool => {
            let (q, shape) = spec.case.pool()?;
            let plan = Pool2dPlan::new(&q, shape).map_err(err)?;
            let x = fill(shape.iter().product(), 1);
            Ok(Box::new(Pool { q, shape, x, y: vec![0.0; plan.output_shape().iter().product()], plan }))
        }
        Op::ConvBwdData | Op::ConvBwdWeights => {
            let (p, x_shape) = spec.case.conv()?;
            let dy_shape = p.output_shape(x_shape).map_err(err)?;
            let x = fill(x_shape.iter().product(), 1);
            let w = fill(p.weight_count(), 2);
            let dy = fill(dy_shape.iter().product(), 4);
            let data = if spec.case.op == Op::ConvBwdData {
                Some((Conv2dBackwardDataPlan::new(&p, &w).map_err(err)?, vec![0.0; x.len()]))
            } else {
                None
            };
            Ok(Box::new(ConvBackward { p, x_shape, dy_shape, x, w, dy, data, dw: Vec::new() }))
        }
        Op::ConvTranspose => {
            let (tp, shape) = spec.case.conv_transpose()?;
            let out = tp.output_shape(shape).map_err(err)?;
            let x = fill(shape.iter().product(), 1);
            let w = fill(tp.weight_shape().iter().product(), 2);
            let b = fill(tp.out_channels, 3);
            let plan = ConvTranspose2dPlan::new(&tp, &w, Some(&b)).map_err(err)?;
            Ok(Box::new(ConvTranspose { tp, shape, x, w, b, plan, y: vec![0.0; out.iter().product()] }))
        }
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
        let k = receptive::sgemm_kernel_info();
        format!("gemm {} {}", k.isa, k.name)
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

/// A convolution through a plan, with bias, no activation.
struct Conv {
    p: Conv2dParams,
    shape: [usize; 4],
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    plan: Conv2dPlan,
    y: Vec<f32>,
    full: bool,
}

impl Conv {
    /// Reference values and absolute sums at the sampled outputs, mirroring
    /// `reference::conv2d` (f64 accumulation over (c, fh, fw) in order, then
    /// the bias).
    fn sampled_reference(&self, idx: &[usize]) -> Vec<(f32, f32)> {
        let p = &self.p;
        let [_, c_in, h, wd] = self.shape;
        let [_, k, oh, ow] = p.output_shape(self.shape).expect("validated in prepare");
        let [_, cg, fh, fw] = p.weight_shape();
        let kg = k / p.groups;
        // The reference's tap rule: input position of tap t, if inside.
        let tap = |o: usize, t: usize, s: usize, d: usize, pad: usize, len: usize| {
            (o * s + t * d).checked_sub(pad).filter(|&i| i < len)
        };
        idx.iter()
            .map(|&o| {
                let (b, f, oy, ox) = (o / (k * oh * ow), o / (oh * ow) % k, o / ow % oh, o % ow);
                let g = f / kg;
                let (mut acc, mut abs) = (0.0f64, 0.0f64);
                for c in 0..cg {
                    let ci = g * cg + c;
                    for ky in 0..fh {
                        let Some(iy) = tap(oy, ky, p.stride[0], p.dilation[0], p.padding.top, h) else { continue };
                        for kx in 0..fw {
                            let Some(ix) = tap(ox, kx, p.stride[1], p.dilation[1], p.padding.left, wd) else {
                                continue;
                            };
                            let prod = self.x[((b * c_in + ci) * h + iy) * wd + ix] as f64
                                * self.w[((f * cg + c) * fh + ky) * fw + kx] as f64;
                            acc += prod;
                            abs += prod.abs();
                        }
                    }
                }
                acc += self.b[f] as f64;
                abs += (self.b[f] as f64).abs();
                (acc as f32, abs as f32)
            })
            .collect()
    }
}

impl Bench for Conv {
    fn path(&self) -> String {
        self.plan.path_for(self.shape)
    }

    fn run(&mut self) -> Result<(), String> {
        self.plan.run(&self.x, self.shape, &mut self.y).map_err(err)
    }

    fn check(&self) -> Result<Check, String> {
        let [_, cg, fh, fw] = self.p.weight_shape();
        let k = cg * fh * fw + 1;
        let mut check = Check::new(self.y.len());
        if self.full {
            let want = reference::conv2d(&self.x, self.shape, &self.w, Some(&self.b), &self.p).map_err(err)?;
            let (ax, aw, ab) = (check::abs(&self.x), check::abs(&self.w), check::abs(&self.b));
            let abs_sum = reference::conv2d(&ax, self.shape, &aw, Some(&ab), &self.p).map_err(err)?;
            for (o, ((&g, &w), &s)) in self.y.iter().zip(&want).zip(&abs_sum).enumerate() {
                check.compare(o, g, w, reference::tolerance(k, s));
            }
        } else {
            let idx = check::sample_indices(self.y.len(), SAMPLES);
            for (&o, (w, s)) in idx.iter().zip(self.sampled_reference(&idx)) {
                check.compare(o, self.y[o], w, reference::tolerance(k, s));
            }
        }
        Ok(check)
    }
}

/// Any pooling op through a plan (global pooling is a whole-plane window).
struct Pool {
    q: Pool2dParams,
    shape: [usize; 4],
    x: Vec<f32>,
    plan: Pool2dPlan,
    y: Vec<f32>,
}

impl Bench for Pool {
    fn path(&self) -> String {
        self.plan.path()
    }

    fn run(&mut self) -> Result<(), String> {
        self.plan.run(&self.x, &mut self.y).map_err(err)
    }

    /// Max pooling must match exactly, indices included (checked with one
    /// extra indexed run); averages within the tolerance of their window.
    fn check(&self) -> Result<Check, String> {
        let mut check = Check::new(self.y.len());
        match self.q.kind {
            PoolKind::Max => {
                let (want, want_idx) = reference::max_pool2d_with_indices(&self.x, self.shape, &self.q).map_err(err)?;
                let (mut y, mut idx) = (vec![0.0; want.len()], vec![0i64; want.len()]);
                self.plan.run_with_indices(&self.x, &mut y, &mut idx).map_err(err)?;
                for (o, (&g, &w)) in self.y.iter().zip(&want).enumerate() {
                    check.compare(o, g, w, 0.0);
                }
                for (o, ((&g, &w), (&gi, &wi))) in y.iter().zip(&want).zip(idx.iter().zip(&want_idx)).enumerate() {
                    check.compare(o, g, w, 0.0);
                    if gi != wi {
                        check.compare(o, gi as f32, wi as f32, 0.0);
                    }
                }
                check.checked = self.y.len();
            }
            PoolKind::Avg => {
                let want = reference::avg_pool2d(&self.x, self.shape, &self.q).map_err(err)?;
                let abs_avg = reference::avg_pool2d(&check::abs(&self.x), self.shape, &self.q).map_err(err)?;
                let window = self.q.kernel[0] * self.q.kernel[1];
                for (o, ((&g, &w), &s)) in self.y.iter().zip(&want).zip(&abs_avg).enumerate() {
                    check.compare(o, g, w, reference::tolerance(window, s));
                }
            }
        }
        Ok(check)
    }
}

/// Convolution gradients: with respect to the input through a plan
/// (`data`), or to the weights through the one-shot op.
struct ConvBackward {
    p: Conv2dParams,
    x_shape: [usize; 4],
    dy_shape: [usize; 4],
    x: Vec<f32>,
    w: Vec<f32>,
    dy: Vec<f32>,
    data: Option<(Conv2dBackwardDataPlan, Vec<f32>)>,
    dw: Vec<f32>,
}

impl Bench for ConvBackward {
    fn path(&self) -> String {
        let k = receptive::sgemm_kernel_info();
        let what = if self.data.is_some() { "backward data" } else { "backward weights" };
        format!("{what} gemm {} {}", k.isa, k.name)
    }

    fn run(&mut self) -> Result<(), String> {
        match &mut self.data {
            Some((plan, dx)) => plan.run(&self.dy, self.dy_shape, self.x_shape, dx).map_err(err),
            None => {
                // Into a buffer kept across runs, as a training loop keeps its gradient.
                self.dw.resize(self.p.weight_count(), 0.0);
                conv2d_backward_weights_into(&self.x, self.x_shape, &self.dy, &self.p, &mut self.dw).map_err(err)
            }
        }
    }

    /// Checked in full against the backward references (no sampled mode).
    fn check(&self) -> Result<Check, String> {
        let (ax, aw, ady) = (check::abs(&self.x), check::abs(&self.w), check::abs(&self.dy));
        let [_, k, oh, ow] = self.dy_shape;
        let [_, _, fh, fw] = self.p.weight_shape();
        let (got, want, abs_sum, len) = match &self.data {
            Some((_, dx)) => {
                let r = |dy: &[f32], w: &[f32]| {
                    reference::conv2d_backward_data(dy, self.dy_shape, w, &self.p, self.x_shape).map_err(err)
                };
                (dx, r(&self.dy, &self.w)?, r(&ady, &aw)?, k / self.p.groups * fh * fw)
            }
            None => {
                let r = |x: &[f32], dy: &[f32]| {
                    reference::conv2d_backward_weights(x, self.x_shape, dy, &self.p).map_err(err)
                };
                (&self.dw, r(&self.x, &self.dy)?, r(&ax, &ady)?, self.x_shape[0] * oh * ow)
            }
        };
        let mut check = Check::new(got.len());
        for (o, ((&g, &w), &s)) in got.iter().zip(&want).zip(&abs_sum).enumerate() {
            check.compare(o, g, w, reference::tolerance(len, s));
        }
        Ok(check)
    }
}

/// A transposed convolution through a plan, with bias.
struct ConvTranspose {
    tp: ConvTranspose2dParams,
    shape: [usize; 4],
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    plan: ConvTranspose2dPlan,
    y: Vec<f32>,
}

impl Bench for ConvTranspose {
    fn path(&self) -> String {
        let k = receptive::sgemm_kernel_info();
        format!("transpose gemm {} {}", k.isa, k.name)
    }

    fn run(&mut self) -> Result<(), String> {
        self.plan.run(&self.x, self.shape, &mut self.y).map_err(err)
    }

    /// Checked in full against `reference::conv_transpose2d`.
    fn check(&self) -> Result<Check, String> {
        let want = reference::conv_transpose2d(&self.x, self.shape, &self.w, Some(&self.b), &self.tp).map_err(err)?;
        let (ax, aw, ab) = (check::abs(&self.x), check::abs(&self.w), check::abs(&self.b));
        let abs_sum = reference::conv_transpose2d(&ax, self.shape, &aw, Some(&ab), &self.tp).map_err(err)?;
        let [ci, _, fh, fw] = self.tp.weight_shape();
        let len = ci / self.tp.groups * fh * fw + 1;
        let mut check = Check::new(self.y.len());
        for (o, ((&g, &w), &s)) in self.y.iter().zip(&want).zip(&abs_sum).enumerate() {
            check.compare(o, g, w, reference::tolerance(len, s));
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
    fn every_op_runs_and_checks_on_a_small_case() {
        let lines = [
            "conv n=2 c=6 h=9 w=11 k=4 kh=3 kw=2 sh=2 pt=1 pb=0 pl=2 pr=1 groups=2 dilation=2",
            "conv n=1 c=8 h=7 w=7 k=8 kh=3 kw=3 pad=1 groups=8",
            "conv_bwd_data n=2 c=4 h=9 w=8 k=6 kh=3 kw=3 stride=2 pad=1",
            "conv_bwd_weights n=2 c=4 h=9 w=8 k=6 kh=3 kw=3 stride=2 pad=1 groups=2",
            "conv_transpose n=1 c=4 h=5 w=6 k=6 kh=3 kw=3 stride=2 pad=1 output_padding=1",
            "maxpool n=2 c=3 h=9 w=9 kh=3 kw=3 stride=2 pad=1 ceil=1",
            "avgpool n=1 c=3 h=7 w=7 kh=3 kw=3 stride=2 pad=1 count_include_pad=0",
            "globalavgpool c=5 h=4 w=3",
            "globalmaxpool c=5 h=4 w=3",
            "sgemm m=5 n=9 k=7",
        ];
        for line in lines {
            let mut b = prepare(&spec(line).unwrap()).unwrap();
            b.run().unwrap();
            let c = b.check().unwrap();
            assert!(c.ok() && c.checked == c.total && c.total > 0, "{line}: {}", c.describe());
            assert!(!b.path().is_empty());
        }
    }

    #[test]
    fn sampled_conv_reference_is_the_reference() {
        let s = spec("conv n=2 c=6 h=9 w=11 k=4 kh=3 kw=2 sh=2 pt=1 pb=0 pl=2 pr=1 groups=2 dilation=2").unwrap();
        let (p, shape) = s.case.conv().unwrap();
        let x = fill(shape.iter().product(), 1);
        let w = fill(p.weight_count(), 2);
        let b = fill(p.out_channels, 3);
        let want = reference::conv2d(&x, shape, &w, Some(&b), &p).unwrap();
        let plan = Conv2dPlan::new(&p, &w, Some(&b), Activation::None).unwrap();
        let conv = Conv { p, shape, x, w, b, plan, y: vec![], full: false };
        let idx: Vec<usize> = (0..want.len()).collect();
        for (&o, (v, _)) in idx.iter().zip(conv.sampled_reference(&idx)) {
            assert_eq!(v.to_bits(), want[o].to_bits(), "output {o}");
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
        let s = spec("conv_transpose n=1 c=64 h=28 w=28 k=32 kh=3 kw=3 stride=2 pad=1 output_padding=1").unwrap();
        assert_eq!(s.shape, "1x64x28x28 -> 1x32x56x56");
        let s = spec("conv_bwd_weights n=2 c=4 h=8 w=8 k=6 kh=3 kw=3").unwrap();
        assert_eq!(s.shape, "x 2x4x8x8, dy 2x6x6x6 -> dw 6x4x3x3");
    }
}
