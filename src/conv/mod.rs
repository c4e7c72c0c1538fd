//! Forward 2-D convolution: a plan that validates and packs once, and runs
//! many times on the caller's rayon pool.
//!
//! The paths, chosen when the plan is made:
//! * **1x1 GEMM** (1x1 filter, stride 1, no padding): the input planes of a
//!   group already are the GEMM's B matrix, so there is nothing to gather.
//!   With few pixels (7x7) the output channels go in the vector lanes
//!   instead, the planes read in place as the implicit form's band.
//! * **implicit GEMM** (most other layers): each task copies the input rows
//!   a band of output rows reads, zero-padded and split by stride phase,
//!   and the microkernel reads every im2col row as a shifted run of that
//!   band ([`Band`](receptive_kernels::implicit::Band)): no gather at all.
//! * **direct** (short reductions, `C/groups * FH * FW` up to 512: a
//!   network's first layer over 3 channels): the implicit path's band read
//!   by a kernel that keeps a block of output channels in registers across
//!   the whole reduction and writes the output in place
//!   ([`Direct`](receptive_kernels::direct::Direct)).
//! * **im2col + GEMM** (layers whose narrow output would waste the implicit
//!   path's extra grid columns): each task gathers the patches of a tile of
//!   output pixels straight into packed B panels
//!   ([`Im2col`](receptive_kernels::im2col::Im2col)); the im2col matrix as a
//!   whole never exists.
//!
//! Groups are independent GEMMs over slices of the packed weights and of the
//! input channels, with no copies.
//! * **depthwise** (one input channel per group): a direct kernel vectorized
//!   along the output width.
//!
//! Bias and activation are fused into the store of every path.

mod gemm_path;

use rayon::prelude::*;
use receptive_kernels::depthwise::Depthwise;
use receptive_kernels::im2col::Geometry;

use crate::activation::Activation;
use crate::error::{Result, check_len};
use crate::gemm::{MatRef, active_gemm};
use crate::params::Conv2dParams;

/// A convolution prepared once for many runs: parameters checked, weights
/// packed into the GEMM's panels, kernel and path chosen.
///
/// `run` then only checks lengths and shapes, detects nothing and, after
/// the first call on a thread, allocates nothing (pack buffers are
/// per-thread and reused).
///
/// ```
/// use receptive::{Activation, Conv2dParams, Conv2dPlan};
/// // Six 5x5 filters on a 32x32x3 image give a 28x28x6 volume (the seed's example).
/// let p = Conv2dParams::new(3, 6, [5, 5]);
/// let w = vec![0.01f32; 6 * 3 * 5 * 5];
/// let plan = Conv2dPlan::new(&p, &w, Some(&[0.5; 6]), Activation::Relu)?;
/// assert_eq!(plan.output_shape([1, 3, 32, 32])?, [1, 6, 28, 28]);
/// let x = vec![1.0f32; 3 * 32 * 32];
/// let mut y = vec![0.0f32; 6 * 28 * 28];
/// plan.run(&x, [1, 3, 32, 32], &mut y)?;
/// assert!((y[0] - (0.75 + 0.5)).abs() < 1e-5); // 75 taps of 0.01, plus the bias
/// # Ok::<(), receptive::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Conv2dPlan {
    p: Conv2dParams,
    act: Activation,
    path: Path,
}

/// How a GEMM-path convolution reaches its pixels, as oneDNN's algorithm
/// kinds: chosen per input shape by default, or forced (tests and
/// benchmarks compare them). Depthwise and 1x1 unit-stride layers have
/// paths of their own and ignore it.
///
/// ```
/// use receptive::{Activation, ConvAlgorithm, Conv2dParams, Conv2dPlan};
/// let p = Conv2dParams::new(16, 16, [3, 3]).padding(1);
/// let plan = Conv2dPlan::new(&p, &[0.1; 16 * 16 * 9], None, Activation::None)?.algorithm(ConvAlgorithm::Im2col);
/// assert!(plan.path_for([1, 16, 56, 56]).starts_with("im2col+gemm"));
/// # Ok::<(), receptive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// Whichever wastes the least of the microkernel on the shape.
    #[default]
    Auto,
    /// Implicit GEMM with output pixels in the vector lanes: B's rows read
    /// in place from a padded copy of the input rows (im2col where no band
    /// is addressable). Path name `implicit gemm`.
    Implicit,
    /// Implicit GEMM with output channels in the vector lanes: each
    /// microkernel row is one output pixel gathered from the same padded
    /// rows, the weights are the packed B. Path name `implicit gemm^T`.
    ImplicitChannels,
    /// im2col panels gathered tile by tile.
    Im2col,
    /// The implicit forms' padded rows read by a direct kernel that runs a
    /// tile's whole reduction in registers and writes the output in place,
    /// for short reductions (`C/groups * FH * FW` up to 512: a network's
    /// first layer); elsewhere as `Auto`. Path name `direct`.
    Direct,
}

#[derive(Clone, Debug)]
enum Path {
    Gemm(Box<gemm_path::GemmConv>),
    Depthwise {
        kernel: &'static Depthwise,
        /// `[K, FH*FW]`: the filters of input channel c are rows `c*m..(c+1)*m`.
        weights: Vec<f32>,
        /// One per output channel (zeros when the layer has none).
        bias: Vec<f32>,
    },
}

impl Conv2dPlan {
    /// Validates `p`, the weights `[K, C/groups, FH, FW]`, the optional bias
    /// `[K]` and the activation; picks the path and packs the weights.
    ///
    /// ```
    /// use receptive::{Activation, Conv2dParams, Conv2dPlan};
    /// let p = Conv2dParams::new(8, 8, [3, 3]).padding(1).groups(8); // depthwise
    /// let plan = Conv2dPlan::new(&p, &[0.1; 8 * 9], None, Activation::None)?;
    /// assert!(plan.path_for([1, 8, 10, 10]).starts_with("depthwise"));
    /// assert!(Conv2dPlan::new(&p, &[0.1; 5], None, Activation::None).is_err());
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn new(p: &Conv2dParams, w: &[f32], bias: Option<&[f32]>, act: Activation) -> Result<Conv2dPlan> {
        p.validate()?;
        act.validate()?;
        check_len("weights", w.len(), &p.weight_shape())?;
        if let Some(b) = bias {
            check_len("bias", b.len(), &[p.out_channels])?;
        }
        let [k, cg, fh, fw] = p.weight_shape();
        let path = if cg == 1 && p.groups > 1 {
            Path::Depthwise {
                kernel: Depthwise::for_isa(crate::active_isa()),
                weights: w.to_vec(),
                bias: bias.map_or_else(|| vec![0.0; k], <[f32]>::to_vec),
            }
        } else {
            let gemm = active_gemm();
            let pointwise = fh == 1 && fw == 1 && p.stride == [1, 1] && p.padding == crate::Padding::uniform(0);
            let a = MatRef::new(w, k, cg * fh * fw, cg * fh * fw, 1)?;
            Path::Gemm(Box::new(gemm_path::GemmConv::new(gemm, a, p.groups, fh * fw, pointwise, bias)))
        };
        Ok(Conv2dPlan { p: *p, act, path })
    }

    /// The plan with `algorithm` chosen for its GEMM path.
    pub fn algorithm(mut self, algorithm: ConvAlgorithm) -> Conv2dPlan {
        if let Path::Gemm(g) = &mut self.path {
            g.set_algorithm(algorithm);
        }
        self
    }

    /// The parameters the plan was made for.
    pub fn params(&self) -> &Conv2dParams {
        &self.p
    }

    /// The activation fused into the output.
    pub fn activation(&self) -> Activation {
        self.act
    }

    /// Output shape `[N, K, OH, OW]` for an input `[N, C, H, W]`.
    pub fn output_shape(&self, x_shape: [usize; 4]) -> Result<[usize; 4]> {
        self.p.output_shape(x_shape)
    }

    /// The path and kernel the plan runs on an input of shape `x_shape`, on
    /// the current rayon pool: e.g. `"implicit gemm avx512 sgemm_6x64_avx512"`,
    /// `"im2col+gemm avx2 sgemm_6x16_avx2"`, `"1x1 gemm scalar sgemm_4x8_scalar"`,
    /// `"direct avx512 direct_8x48_avx512"` or `"depthwise avx2 depthwise_avx2"`.
    /// A general GEMM layer reads its input in place (implicit GEMM) unless
    /// the shape would waste too much of the microkernel that way; then it
    /// gathers im2col panels. A short reduction (a first layer over 3
    /// channels) runs the direct kernel.
    ///
    /// ```
    /// use receptive::{Activation, Conv2dParams, Conv2dPlan};
    /// let p = Conv2dParams::new(64, 64, [3, 3]).padding(1);
    /// let plan = Conv2dPlan::new(&p, &[0.1; 64 * 64 * 9], None, Activation::None)?;
    /// assert!(plan.path_for([1, 64, 56, 56]).starts_with("implicit gemm"));
    /// let first = Conv2dParams::new(3, 32, [3, 3]).stride(2).padding(1);
    /// let plan = Conv2dPlan::new(&first, &[0.1; 32 * 3 * 9], None, Activation::None)?;
    /// assert!(plan.path_for([1, 3, 224, 224]).starts_with("direct"));
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn path_for(&self, x_shape: [usize; 4]) -> String {
        match &self.path {
            Path::Gemm(g) => {
                let k = g.kernel();
                let (name, isa, kernel) = match self.output_shape(x_shape) {
                    Ok([n, _, oh, ow]) => {
                        let geom = self.geometry(x_shape, oh, ow, x_shape[1] / self.p.groups);
                        let lowering = g.lowering(&geom, n, rayon::current_num_threads());
                        let (isa, kernel) = g.kernel_name(&lowering);
                        (lowering.name(), isa, kernel)
                    }
                    Err(_) => ("gemm", k.isa, k.name),
                };
                format!("{name} {isa} {kernel}")
            }
            Path::Depthwise { kernel, .. } => format!("depthwise {} {}", kernel.isa(), kernel.name()),
        }
    }

    /// Bytes of packed weights (and bias) the plan holds.
    pub fn packed_bytes(&self) -> usize {
        match &self.path {
            Path::Gemm(g) => g.packed_bytes(),
            Path::Depthwise { weights, bias, .. } => (weights.len() + bias.len()) * 4,
        }
    }

    /// Peak extra memory of one [`run`](Self::run) on an input of shape
    /// `x_shape`, in bytes, on the current rayon pool: the per-thread pack
    /// (or border) buffers of all its threads. Packed weights are not
    /// included (see [`packed_bytes`](Self::packed_bytes)); 0 for a shape
    /// `run` would reject.
    ///
    /// ```
    /// use receptive::{Activation, Conv2dParams, Conv2dPlan};
    /// let p = Conv2dParams::new(64, 64, [3, 3]).padding(1);
    /// let plan = Conv2dPlan::new(&p, &vec![0.0; 64 * 64 * 9], None, Activation::None)?;
    /// // A whole im2col matrix would take 576 * 224 * 224 * 4 bytes = 115 MB.
    /// assert!(plan.workspace_bytes([1, 64, 224, 224]) < 8 << 20);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn workspace_bytes(&self, x_shape: [usize; 4]) -> usize {
        let Ok([n, _, oh, ow]) = self.output_shape(x_shape) else { return 0 };
        let threads = rayon::current_num_threads();
        let per_thread = match &self.path {
            Path::Gemm(g) => {
                g.workspace_floats(&self.geometry(x_shape, oh, ow, x_shape[1] / self.p.groups), n, threads)
            }
            Path::Depthwise { .. } => Depthwise::scratch_len(&self.geometry(x_shape, oh, ow, 1)),
        };
        per_thread * 4 * threads
    }

    /// Runs the convolution of `x` (shape `x_shape`, NCHW) into `y`, which
    /// must be exactly [`output_shape`](Self::output_shape)-sized. Every
    /// length and shape is checked before anything is written.
    ///
    /// ```
    /// use receptive::{Activation, Conv2dParams, Conv2dPlan};
    /// let p = Conv2dParams::new(1, 1, [2, 2]);
    /// let plan = Conv2dPlan::new(&p, &[1.0; 4], None, Activation::None)?;
    /// let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    /// let mut y = [0.0; 4];
    /// plan.run(&x, [1, 1, 3, 3], &mut y)?;
    /// assert_eq!(y, [12.0, 16.0, 24.0, 28.0]);
    /// assert!(plan.run(&x, [1, 1, 3, 3], &mut [0.0; 3]).is_err());
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn run(&self, x: &[f32], x_shape: [usize; 4], y: &mut [f32]) -> Result<()> {
        let out = self.output_shape(x_shape)?;
        check_len("input", x.len(), &x_shape)?;
        check_len("output", y.len(), &out)?;
        let [n, k, oh, ow] = out;
        let [_, c, h, w] = x_shape;
        let clamp = self.act.bounds();
        match &self.path {
            Path::Gemm(g) => {
                let geom = self.geometry(x_shape, oh, ow, c / self.p.groups);
                g.run(x, geom, n, k, y, clamp);
            }
            Path::Depthwise { kernel, weights, bias } => {
                let geom = self.geometry(x_shape, oh, ow, 1);
                let m = k / c;
                let taps = self.p.kernel[0] * self.p.kernel[1];
                // One task per input plane: its m output planes are contiguous.
                let plane = |(i, (yc, xc)): (usize, (&mut [f32], &[f32]))| {
                    let ch = i % c;
                    let (w, b) = (&weights[ch * m * taps..(ch + 1) * m * taps], &bias[ch * m..(ch + 1) * m]);
                    kernel.run(xc, &geom, w, b, clamp, yc);
                };
                if crate::parallel::one_thread() {
                    y.chunks_mut(m * oh * ow).zip(x.chunks(h * w)).enumerate().for_each(plane);
                } else {
                    y.par_chunks_mut(m * oh * ow).zip(x.par_chunks(h * w)).enumerate().for_each(plane);
                }
            }
        }
        Ok(())
    }

    fn geometry(&self, x_shape: [usize; 4], oh: usize, ow: usize, c: usize) -> Geometry {
        let p = &self.p;
        Geometry {
            c,
            h: x_shape[2],
            w: x_shape[3],
            fh: p.kernel[0],
            fw: p.kernel[1],
            stride: p.stride,
            dilation: p.dilation,
            pad_top: p.padding.top,
            pad_left: p.padding.left,
            oh,
            ow,
        }
    }
}

/// One-shot forward convolution (no activation): plans, runs, returns the
/// output `[N, K, OH, OW]`. Reuse a [`Conv2dPlan`] to run a layer many times.
///
/// ```
/// use receptive::Conv2dParams;
/// // The seed's worked example: ten 5x5 filters, stride 1, pad 2 on 32x32x3.
/// let p = Conv2dParams::new(3, 10, [5, 5]).stride(1).padding(2);
/// let x = vec![1.0f32; 3 * 32 * 32];
/// let w = vec![0.1f32; 10 * 3 * 5 * 5];
/// let y = receptive::conv2d(&x, [1, 3, 32, 32], &w, Some(&[0.0; 10]), &p)?;
/// assert_eq!(y.len(), 10 * 32 * 32);
/// assert!((y[16 * 32 + 16] - 7.5).abs() < 1e-4); // an interior pixel sees all 75 taps
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d(x: &[f32], x_shape: [usize; 4], w: &[f32], bias: Option<&[f32]>, p: &Conv2dParams) -> Result<Vec<f32>> {
    conv2d_with(x, x_shape, w, bias, p, Activation::None)
}

/// [`conv2d`] followed by a fused activation.
///
/// ```
/// use receptive::{Activation, Conv2dParams};
/// let p = Conv2dParams::new(1, 1, [1, 1]);
/// let y = receptive::conv2d_with(&[-1.0, 2.0], [1, 1, 1, 2], &[3.0], None, &p, Activation::Relu)?;
/// assert_eq!(y, [0.0, 6.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d_with(
    x: &[f32],
    x_shape: [usize; 4],
    w: &[f32],
    bias: Option<&[f32]>,
    p: &Conv2dParams,
    act: Activation,
) -> Result<Vec<f32>> {
    let plan = Conv2dPlan::new(p, w, bias, act)?;
    let out = plan.output_shape(x_shape)?;
    check_len("input", x.len(), &x_shape)?;
    let mut y = vec![0.0f32; out.iter().product()];
    plan.run(x, x_shape, &mut y)?;
    Ok(y)
}
