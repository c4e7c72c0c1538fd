//! The convolution backward passes: gradients with respect to the input,
//! the weights and the bias.
//!
//! * **Input gradient**: with stride 1, the forward convolution of dY with
//!   the weights flipped and transposed per group (the forward plan, so the
//!   implicit GEMM); with a stride, one such convolution per stride phase
//!   of dX (`phases`), the column phases stacked into one where there are
//!   few input channels per group and the stack wastes few products. Other
//!   layers with few input channels per group (whose GEMM rows would be
//!   mostly empty) run a GEMM of the transposed weights with dY and a tiled
//!   col2im instead (into a column-phase layout, so strided columns still
//!   add with unit stride), as does any shape the phases would not cover.
//! * **Weight gradient**: `dW^T = im2col(X) * dY^T` read in place from
//!   bands of padded input rows with dY packed transposed
//!   ([`receptive_kernels::wgrad`]); depthwise layers as dot products over
//!   a band; small images (more filters than pixels) by a GEMM over the
//!   transposed im2col gather. Every split of the work is fixed by the
//!   thread count and summed in a fixed order.

mod phases;

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::parallel::InlineOnOneThread;
use receptive_kernels::MatMut;
use receptive_kernels::col2im::{PatchGeometry, PhaseRows, col2im_add, correlate_plane_add, scatter_plane_add};
use receptive_kernels::depthwise::DepthwiseWgrad;
use receptive_kernels::gemm::{ASource, Bias, Epilogue, Gemm, PackB, PackedA};
use receptive_kernels::im2col::Geometry;
use receptive_kernels::im2col_t::{BandColumns, Im2colT};
use receptive_kernels::implicit::Band;
use receptive_kernels::transpose::transpose;
use receptive_kernels::wgrad::WgradKernel;

use crate::activation::Activation;
use crate::conv::Conv2dPlan;
use crate::error::{Error, Result, check_len};
use crate::gemm::active_gemm;
use crate::params::{Conv2dParams, Padding};
use crate::reference::check_dy_shape;
use receptive_kernels::MatRef;

/// Rows `(c, ky, kx)` of one channel block of the column tile: enough to
/// keep the microkernel busy, few enough that the tile (rows x pixels)
/// stays in L2 next to the packed weights.
const BLOCK_ROWS: usize = 256;
/// Floats of one column tile (256 KiB).
const TILE_FLOATS: usize = 1 << 16;

fn geometry(p: &Conv2dParams, input: [usize; 2], output: [usize; 2]) -> PatchGeometry {
    PatchGeometry {
        input,
        output,
        kernel: p.kernel,
        stride: p.stride,
        dilation: p.dilation,
        pad: [p.padding.top, p.padding.left],
    }
}

thread_local! {
    /// Per-thread column tile, reused across tasks and calls.
    static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The weight gradient's buffers (bands, packed dY, partial sums),
    /// kept by the calling thread between calls: fresh ones of this size
    /// cost page faults and zeroing every call. They stay until the thread
    /// ends: about one image of dY, the gradient and a band per task.
    static WGRAD_SCRATCH: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` floats from the calling thread's scratch (contents
/// unspecified: callers write before they read).
fn scratch(len: usize) -> Vec<f32> {
    let mut v = WGRAD_SCRATCH.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    v.resize(len, 0.0);
    v
}

/// Returns buffers to the calling thread's scratch.
fn unscratch(bufs: impl IntoIterator<Item = Vec<f32>>) {
    WGRAD_SCRATCH.with(|s| s.borrow_mut().extend(bufs));
}

/// The input gradient of a convolution with its transposed weights packed
/// once: build it once per layer, run it every training step.
///
/// ```
/// use receptive::{Conv2dBackwardDataPlan, Conv2dParams};
/// // A 2x2 filter of ones over a 3x3 input: the centre feeds all four outputs.
/// let p = Conv2dParams::new(1, 1, [2, 2]);
/// let plan = Conv2dBackwardDataPlan::new(&p, &[1.0; 4])?;
/// let mut dx = vec![0.0; 9];
/// plan.run(&[1.0; 4], [1, 1, 2, 2], [1, 1, 3, 3], &mut dx)?;
/// assert_eq!(dx, [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
#[derive(Debug)]
pub struct Conv2dBackwardDataPlan {
    params: Conv2dParams,
    gemm: &'static Gemm,
    /// Input channels per block (the last block of a group may be shorter).
    block: usize,
    blocks_per_group: usize,
    weights: Weights,
    /// Added to every input-gradient channel (a transposed convolution's bias).
    bias: Option<Vec<f32>>,
    /// Strided layers: dX phase by phase as forward convolutions, tried
    /// before the GEMM and col2im path (which is kept for a shape they
    /// would not cover).
    phases: Option<Box<phases::Phases>>,
}

/// The weights as the backward-data pass reads them.
#[derive(Debug)]
enum Weights {
    /// Stride 1: dX is the forward convolution of dY with the weights
    /// flipped and transposed, run by the forward plan (implicit GEMM).
    Flipped(Box<Conv2dPlan>),
    /// `W_g^T` rows of each (group, channel block), group-major, for the GEMM.
    Packed(Vec<PackedA>),
    /// One input channel per group (depthwise): the filters as given, for
    /// the direct scatter, which beats a GEMM whose rows are the taps.
    Direct(Vec<f32>),
}

impl Conv2dBackwardDataPlan {
    /// Validates the parameters and the weights `[K, C/groups, FH, FW]` and
    /// packs the transposed weights of each group.
    ///
    /// ```
    /// use receptive::{Conv2dBackwardDataPlan, Conv2dParams};
    /// let p = Conv2dParams::new(3, 8, [3, 3]);
    /// assert!(Conv2dBackwardDataPlan::new(&p, &[0.0; 8 * 3 * 9]).is_ok());
    /// assert!(Conv2dBackwardDataPlan::new(&p, &[0.0; 8 * 3 * 4]).is_err()); // weights of 2x2 filters
    /// ```
    pub fn new(params: &Conv2dParams, w: &[f32]) -> Result<Self> {
        Self::with_bias(params, w, None, [0, 0])
    }

    /// [`new`](Self::new) for a transposed convolution: `bias` (one per
    /// input channel of `params`) added to the result, whose planes are
    /// `output_padding` larger than the forward input.
    pub(crate) fn with_bias(
        params: &Conv2dParams,
        w: &[f32],
        bias: Option<&[f32]>,
        output_padding: [usize; 2],
    ) -> Result<Self> {
        params.validate()?;
        check_len("weights", w.len(), &params.weight_shape())?;
        let gemm = active_gemm();
        let [k, cg, fh, fw] = params.weight_shape();
        let (taps, kg) = (fh * fw, k / params.groups);
        // Channel blocks: about BLOCK_ROWS rows each, and at least four per
        // group when the group is wide enough, so one image still feeds
        // several threads (blocks write disjoint input channels).
        let block = (BLOCK_ROWS / taps).clamp(1, cg.div_ceil(4).max(1));
        let blocks_per_group = cg.div_ceil(block);
        let block = cg.div_ceil(blocks_per_group);
        let plan = |weights| Conv2dBackwardDataPlan {
            params: *params,
            gemm,
            block,
            blocks_per_group,
            weights,
            bias: bias.map(<[f32]>::to_vec),
            phases: None,
        };
        if let Some(flipped) = flipped_conv(params, w, bias, output_padding)? {
            return Ok(plan(Weights::Flipped(Box::new(flipped))));
        }
        let phases = phases::Phases::new(params, w, bias, output_padding)?.map(Box::new);
        if cg == 1 {
            return Ok(Conv2dBackwardDataPlan { phases, ..plan(Weights::Direct(w.to_vec())) });
        }
        let mut packed = Vec::with_capacity(params.groups * blocks_per_group);
        for g in 0..params.groups {
            for c0 in (0..cg).step_by(block) {
                let chans = block.min(cg - c0);
                // W_g^T restricted to channels c0..c0+chans: row (c, ky, kx),
                // column f, at w[(f*C/g + c)*taps + t].
                let wt = MatRef::new(&w[(g * kg * cg + c0) * taps..], chans * taps, kg, 1, cg * taps)?;
                packed.push(PackedA::new(gemm, wt));
            }
        }
        Ok(Conv2dBackwardDataPlan { phases, ..plan(Weights::Packed(packed)) })
    }

    /// The parameters the plan was built for.
    ///
    /// ```
    /// use receptive::{Conv2dBackwardDataPlan, Conv2dParams};
    /// let plan = Conv2dBackwardDataPlan::new(&Conv2dParams::new(3, 8, [3, 3]), &[0.0; 216])?;
    /// assert_eq!(plan.params().weight_shape(), [8, 3, 3, 3]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn params(&self) -> &Conv2dParams {
        &self.params
    }

    /// Writes the input gradient for the output gradient `dy` (the forward
    /// output's shape for an input of `x_shape`) into `dx` (`x_shape`).
    ///
    /// ```
    /// use receptive::{Conv2dBackwardDataPlan, Conv2dParams};
    /// // A 1x1 filter of 3 with stride 2 reads every other input; only those get a gradient.
    /// let plan = Conv2dBackwardDataPlan::new(&Conv2dParams::new(1, 1, [1, 1]).stride(2), &[3.0])?;
    /// let mut dx = vec![9.0; 9]; // overwritten
    /// plan.run(&[1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], [1, 1, 3, 3], &mut dx)?;
    /// assert_eq!(dx, [3.0, 0.0, 6.0, 0.0, 0.0, 0.0, 9.0, 0.0, 12.0]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn run(&self, dy: &[f32], dy_shape: [usize; 4], x_shape: [usize; 4], dx: &mut [f32]) -> Result<()> {
        check_dy_shape(&self.params, x_shape, dy_shape)?;
        check_len("output gradient", dy.len(), &dy_shape)?;
        check_len("input gradient", dx.len(), &x_shape)?;
        self.run_unchecked(dy, dy_shape, [x_shape[2], x_shape[3]], dx);
        Ok(())
    }

    /// The input gradient for a `dy` of `dy_shape` into a `dx` of planes
    /// `input`, each channel starting from its bias value (or zero). The
    /// caller has checked the channels and lengths; the plane is the one
    /// the plan was built for: the forward input, larger by the output
    /// padding of a transposed convolution.
    pub(crate) fn run_unchecked(&self, dy: &[f32], dy_shape: [usize; 4], input: [usize; 2], dx: &mut [f32]) {
        if let Weights::Flipped(plan) = &self.weights {
            let out = plan.output_shape(dy_shape);
            debug_assert_eq!(
                out,
                Ok([dy_shape[0], self.params.in_channels, input[0], input[1]]),
                "built for this plane"
            );
            plan.run(dy, dy_shape, dx).expect("the caller checked the shapes");
            return;
        }
        if self.phases.as_ref().is_some_and(|ph| ph.run(dy, dy_shape, input, dx)) {
            return;
        }
        let init = self.bias.as_deref();
        let p = &self.params;
        let [n, k, oh, ow] = dy_shape;
        let [_, cg, fh, fw] = p.weight_shape();
        let (groups, kg, taps) = (p.groups, k / p.groups, fh * fw);
        let (plane, pixels) = (input[0] * input[1], oh * ow);
        let geom = geometry(p, input, [oh, ow]);
        // 1x1, stride 1, no leading padding, same plane: col2im is the identity.
        let direct = taps == 1 && p.stride == [1, 1] && geom.pad == [0, 0] && input == [oh, ow];
        let mut tasks = Vec::with_capacity(n * groups * self.blocks_per_group);
        for (ng, image_group) in dx.chunks_mut(cg * plane).enumerate() {
            for (b, chunk) in image_group.chunks_mut(self.block * plane).enumerate() {
                tasks.push((ng / groups, ng % groups, b, chunk));
            }
        }
        tasks.into_par_iter().inline_on_one_thread().for_each(|(img, g, b, dxb)| {
            let chans = dxb.len() / plane;
            let c0 = g * cg + b * self.block;
            let bias = init.map(|v| &v[c0..c0 + chans]);
            let dyg = &dy[(img * k + g * kg) * pixels..];
            let packed = match &self.weights {
                Weights::Packed(packed) => &packed[g * self.blocks_per_group + b],
                Weights::Flipped(_) => unreachable!("run above"),
                Weights::Direct(w) => {
                    dxb.fill(bias.map_or(0.0, |v| v[0]));
                    for (dyk, wk) in
                        dyg.chunks_exact(pixels).zip(w[g * kg * taps..(g + 1) * kg * taps].chunks_exact(taps))
                    {
                        scatter_plane_add(&geom, dyk, wk, dxb);
                    }
                    return;
                }
            };
            let a = ASource::Packed(packed);
            let gemm_into = |p0: usize, len: usize, c: MatMut<'_>, bias: Bias<'_>| {
                let dyt = MatRef::new(&dyg[p0..], kg, len, pixels, 1).expect("dY tile inside dY");
                self.gemm.run(1.0, a, &dyt, 0.0, c, &Epilogue { bias, clamp: None });
            };
            if direct {
                let c = MatMut::new(dxb, chans, pixels, pixels, 1).expect("dX block is chans x pixels");
                gemm_into(0, pixels, c, bias.map_or(Bias::None, Bias::PerRow));
                return;
            }
            // Strided columns: the sums build up in the column-phase layout
            // (unit-stride adds), written back in column order at the end.
            let layout = PhaseRows::new(input[1], p.stride[1]);
            let mut split = (p.stride[1] > 1).then(|| scratch(chans * input[0] * layout.len()));
            let acc: &mut [f32] = match &mut split {
                Some(split) => split,
                None => &mut *dxb,
            };
            let acc_plane = acc.len() / chans;
            match bias {
                Some(bias) => acc.chunks_exact_mut(acc_plane).zip(bias).for_each(|(d, &v)| d.fill(v)),
                None => acc.fill(0.0),
            }
            let rows = chans * taps;
            let nt = (TILE_FLOATS / rows).max(16).min(pixels);
            COLS.with(|cols| {
                let mut cols = cols.borrow_mut();
                if cols.len() < rows * nt {
                    cols.resize(rows * nt, 0.0);
                }
                for p0 in (0..pixels).step_by(nt) {
                    let len = nt.min(pixels - p0);
                    let tile = &mut cols[..rows * len];
                    gemm_into(p0, len, MatMut::new(tile, rows, len, len, 1).expect("tile is rows x len"), Bias::None);
                    col2im_add(&geom, tile, p0, len, chans, acc);
                }
            });
            if let Some(split) = split {
                layout.unsplit(&split, dxb);
                unscratch([split]);
            }
        });
    }
}

/// Fewest input channels per group for which the input gradient runs as
/// forward convolutions: they are its output channels, the GEMM's rows, and
/// fewer than a few microkernel tiles' worth waste most of each tile (the
/// GEMM and col2im path has `C/groups * FH * FW` rows). Measured on Zen 5
/// (r50_stem, C = 3, one thread): 95 GFLOP/s by phases, 152 by col2im
/// (and 165 with the column phases stacked, see `phases`).
const FORWARD_MIN_CHANNELS: usize = 8;

/// Whether the input gradient of `p` runs as forward convolutions: enough
/// input channels per group, or depthwise (the forward depthwise kernel).
fn by_forward(p: &Conv2dParams) -> bool {
    let [k, cg, _, _] = p.weight_shape();
    cg >= FORWARD_MIN_CHANNELS || (cg == 1 && k == p.groups && p.groups > 1)
}

/// For stride 1, the forward convolution that computes the input gradient:
/// dY convolved with the weights flipped in both axes and transposed per
/// group (`W'[c][k][i][j] = W[k][c][FH-1-i][FW-1-j]`), padded by
/// `dilation*(F-1) - pad` on each side (plus the output padding after).
/// `None` where a side's padding would be negative (more padding than the
/// dilated filter) or the shape suits the GEMM and col2im path better
/// ([`by_forward`]).
fn flipped_conv(
    p: &Conv2dParams,
    w: &[f32],
    bias: Option<&[f32]>,
    output_padding: [usize; 2],
) -> Result<Option<Conv2dPlan>> {
    let [k, cg, fh, fw] = p.weight_shape();
    let kg = k / p.groups;
    let reach = [p.dilation[0] * (fh - 1), p.dilation[1] * (fw - 1)];
    let pad = |reach: usize, before: usize| reach.checked_sub(before);
    let padding = (|| {
        Some(Padding {
            top: pad(reach[0], p.padding.top)?,
            bottom: pad(reach[0], p.padding.bottom)? + output_padding[0],
            left: pad(reach[1], p.padding.left)?,
            right: pad(reach[1], p.padding.right)? + output_padding[1],
        })
    })();
    let Some(padding) = padding.filter(|_| p.stride == [1, 1] && by_forward(p)) else { return Ok(None) };
    let taps = fh * fw;
    let mut flipped = vec![0.0; w.len()];
    for (dst, c) in flipped.chunks_exact_mut(kg * taps).zip(0..) {
        let (g, cl) = (c / cg, c % cg);
        for (kk, d) in dst.chunks_exact_mut(taps).enumerate() {
            let src = &w[((g * kg + kk) * cg + cl) * taps..][..taps];
            d.iter_mut().zip(src.iter().rev()).for_each(|(d, s)| *d = *s);
        }
    }
    let q = Conv2dParams { in_channels: k, out_channels: p.in_channels, stride: [1, 1], padding, strict: false, ..*p };
    Ok(Some(Conv2dPlan::new(&q, &flipped, bias, Activation::None)?))
}

/// Gradient of [`conv2d`](crate::reference::conv2d) with respect to its
/// input: `dy` has the forward output's shape for an input of `x_shape`, the
/// result has `x_shape`. For repeated calls with the same weights build a
/// [`Conv2dBackwardDataPlan`].
///
/// ```
/// use receptive::{conv2d_backward_data, Conv2dParams};
/// let p = Conv2dParams::new(1, 1, [2, 2]);
/// let dx = conv2d_backward_data(&[1.0; 4], [1, 1, 2, 2], &[1.0; 4], &p, [1, 1, 3, 3])?;
/// assert_eq!(dx, [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d_backward_data(
    dy: &[f32],
    dy_shape: [usize; 4],
    w: &[f32],
    p: &Conv2dParams,
    x_shape: [usize; 4],
) -> Result<Vec<f32>> {
    check_dy_shape(p, x_shape, dy_shape)?;
    check_len("output gradient", dy.len(), &dy_shape)?;
    let plan = Conv2dBackwardDataPlan::new(p, w)?;
    let mut dx = vec![0.0; x_shape.iter().product()];
    plan.run_unchecked(dy, dy_shape, [x_shape[2], x_shape[3]], &mut dx);
    Ok(dx)
}

/// Gradient of [`conv2d`](crate::reference::conv2d) with respect to its
/// weights: `dW = dY x im2col(X)^T`, summed over the batch and every output
/// pixel. `dy` has the forward output's shape for an input of `x_shape`; the
/// result has the weight shape `[K, C/groups, FH, FW]`.
///
/// The reduction is split into a number of parts fixed by the thread count
/// of the current rayon pool; their partial sums are added in a fixed order,
/// so the result is bitwise the same run to run for a given thread count.
///
/// ```
/// use receptive::{conv2d_backward_weights, Conv2dParams};
/// let p = Conv2dParams::new(1, 1, [2, 2]);
/// let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
/// let dw = conv2d_backward_weights(&x, [1, 1, 3, 3], &[1.0; 4], &p)?;
/// assert_eq!(dw, [12.0, 16.0, 24.0, 28.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d_backward_weights(x: &[f32], x_shape: [usize; 4], dy: &[f32], p: &Conv2dParams) -> Result<Vec<f32>> {
    let mut dw = vec![0.0; p.weight_count()];
    conv2d_backward_weights_into(x, x_shape, dy, p, &mut dw)?;
    Ok(dw)
}

/// [`conv2d_backward_weights`] into a caller's buffer `dw` (the weight
/// shape; overwritten, whatever it held): a training loop that keeps its
/// gradient buffer skips the allocation and the first-touch page faults of
/// a fresh one every step, which on a layer with many weights and a small
/// image (ResNet's 3x3x512 on 7x7) cost a tenth of the pass.
///
/// ```
/// use receptive::{conv2d_backward_weights_into, Conv2dParams};
/// let p = Conv2dParams::new(1, 1, [2, 2]);
/// let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
/// let mut dw = [f32::NAN; 4];
/// conv2d_backward_weights_into(&x, [1, 1, 3, 3], &[1.0; 4], &p, &mut dw)?;
/// assert_eq!(dw, [12.0, 16.0, 24.0, 28.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d_backward_weights_into(
    x: &[f32],
    x_shape: [usize; 4],
    dy: &[f32],
    p: &Conv2dParams,
    dw: &mut [f32],
) -> Result<()> {
    let dy_shape = p.output_shape(x_shape)?;
    check_len("input", x.len(), &x_shape)?;
    check_len("output gradient", dy.len(), &dy_shape)?;
    check_len("weight gradient", dw.len(), &p.weight_shape())?;
    let gemm = active_gemm();
    let [n, c, h, w] = x_shape;
    let [_, k, oh, ow] = dy_shape;
    let [_, cg, fh, fw] = p.weight_shape();
    let (groups, kg, cols) = (p.groups, k / p.groups, cg * fh * fw);
    let (plane, pixels) = (h * w, oh * ow);
    let geom = geometry(p, [h, w], [oh, ow]);
    let bands = Geometry {
        c: cg,
        h,
        w,
        fh,
        fw,
        stride: p.stride,
        dilation: p.dilation,
        pad_top: p.padding.top,
        pad_left: p.padding.left,
        oh,
        ow,
    };
    // The band paths multiply the reference's products and the zeros of
    // padding, as the GEMM paths do; as a guard (a product of an infinity
    // with a zero the reference never forms would leave a NaN in the
    // gradient, as the extra grid columns once did: fuzz crash-60adfb8e), a
    // gradient with any non-finite value is recomputed by the GEMM paths.
    // Checking the gradient, not the larger input, costs next to nothing.
    if cg == 1 {
        if depthwise_weights(x, x_shape, dy, p, bands, dw).is_some() && all_finite(dw) {
            return Ok(());
        }
        // One input channel per group: each filter's taps are independent
        // dot products, summed over the images in order.
        dw.fill(0.0);
        dw.par_chunks_mut(cols).enumerate().inline_on_one_thread().for_each(|(f, dwf)| {
            let g = f / kg;
            for img in 0..n {
                let xp = &x[(img * c + g) * plane..][..plane];
                correlate_plane_add(&geom, xp, &dy[(img * k + f) * pixels..][..pixels], dwf);
            }
        });
        return Ok(());
    }
    if weights_from_bands(x, x_shape, dy, p, bands, dw).is_some() {
        return Ok(());
    }
    let group_len = kg * cols;
    // Enough independent groups keep every thread busy. Otherwise split
    // each group's input channels (dW's columns, and the im2col^T panels
    // each task gathers) into blocks where there are more filters than
    // reduction steps (small images: partial sums of the whole gradient
    // would cost more than the products), else the reduction over (image,
    // pixel) into one part per thread.
    let threads = rayon::current_num_threads();
    let total = n * pixels;
    let split_chans = groups < 2 * threads && kg > total;
    let parts = if groups >= 2 * threads || split_chans { 1 } else { threads.min(total) };
    let block = if split_chans { cg.div_ceil((2 * threads).div_ceil(groups)) } else { cg };
    let taps = fh * fw;
    // Part 0 into dW itself, the others into scratch.
    let mut rest = if parts > 1 { scratch((parts - 1) * groups * group_len) } else { Vec::new() };
    let chunks = dw.par_chunks_mut(group_len).chain(rest.par_chunks_mut(group_len));
    chunks.enumerate().inline_on_one_thread().for_each(|(i, dwg)| {
        let (part, g) = (i / groups, i % groups);
        let (start, end) = (part * total / parts, (part + 1) * total / parts);
        let mut blocks = Vec::with_capacity(cg.div_ceil(block));
        let mut rest = MatMut::new(dwg, kg, cols, cols, 1).expect("dW_g is K/g x cols");
        for c0 in (0..cg).step_by(block) {
            let chans = block.min(cg - c0);
            let (left, right) = rest.split_at_col(chans * taps);
            blocks.push((c0, chans, left));
            rest = right;
        }
        blocks.into_par_iter().inline_on_one_thread().for_each(|(c0, chans, mut dst)| {
            let mut cols = BlockColumns::new(bands, chans);
            let mut beta = 0.0;
            let mut r = start;
            while r < end {
                let (img, p0) = (r / pixels, r % pixels);
                let xs = &x[(img * c + g * cg + c0) * plane..][..chans * plane];
                let len = cols.span(p0, (pixels - p0).min(end - r));
                let a = MatRef::new(&dy[(img * k + g * kg) * pixels + p0..], kg, len, pixels, 1)
                    .expect("dY tile inside dY");
                let run = |b: &dyn PackB, dst: MatMut<'_>| {
                    gemm.run(1.0, ASource::Strided(a), b, beta, dst, &Epilogue::default())
                };
                match cols.band_columns(xs, img, p0, len) {
                    Some(b) => run(&b, dst.rb_mut()),
                    None => run(&Im2colT::new(xs, geom, chans, p0, len), dst.rb_mut()),
                }
                beta = 1.0;
                r += len;
            }
            cols.release();
        });
    });
    if parts == 1 {
        return Ok(());
    }
    // Fixed-order reduction of the parts: dw = ((p0 + p1) + p2) + ...
    let len = groups * group_len;
    dw.par_chunks_mut(4096).enumerate().inline_on_one_thread().for_each(|(i, out)| {
        for part in rest.chunks_exact(len) {
            for (o, v) in out.iter_mut().zip(&part[i * 4096..]) {
                *o += *v;
            }
        }
    });
    unscratch([rest]);
    Ok(())
}

/// Whether every value is finite: the exponent fields ORed together with
/// no early exit, so the scan vectorizes (it reads the whole input once).
fn all_finite(x: &[f32]) -> bool {
    // An exponent field of all ones carries into the sign bit.
    const EXP: u32 = 0x7f80_0000;
    x.iter().fold(0, |m: u32, v| m | (v.to_bits() & EXP).wrapping_add(1 << 23)) >> 31 == 0
}

/// The columns of `im2col(X)^T` for one channel block of the GEMM path,
/// read from bands of padded input rows ([`BandColumns`]: one load per
/// float to pack a panel, where the gather of [`Im2colT`] works out every
/// column's bounds per output row, a sixth of the pass on 7x7 images);
/// [`Im2colT`] where no band is addressable.
struct BlockColumns {
    band: Option<Band>,
    grid_w: usize,
    ow: usize,
    taps: Vec<u32>,
    steps: Vec<u32>,
    buf: Vec<f32>,
    /// The (image, first output row) the buffer holds.
    filled: Option<(usize, usize)>,
}

impl BlockColumns {
    /// For `chans` channels of `geom`: bands as tall as [`WGRAD_BAND`]
    /// allows (the whole image, on the small images this path is for).
    fn new(geom: Geometry, chans: usize) -> BlockColumns {
        let g = Geometry { c: chans, ..geom };
        let band = Band::new(g, 1, 1).map(|one| {
            (2..=g.oh)
                .take_while(|&r| Band::new(g, r, 1).is_some_and(|b| b.len() <= WGRAD_BAND))
                .last()
                .map_or(one, |rows| Band::new(g, rows, 1).expect("checked"))
        });
        // The first channel's taps, repeated a channel's floats apart
        // (working each out costs four divisions).
        let taps = band.as_ref().map_or_else(Vec::new, |b| {
            let mut first = vec![0u32; g.fh * g.fw];
            Band::new(Geometry { c: 1, ..g }, b.rows(), 1).expect("one channel of a band").taps(&mut first);
            let chan = (b.len() / chans) as u32;
            (0..chans as u32).flat_map(|c| first.iter().map(move |&t| c * chan + t)).collect()
        });
        let buf = band.as_ref().map_or_else(Vec::new, |b| scratch(b.len()));
        BlockColumns { band, grid_w: Band::grid_width(&g), ow: g.ow, taps, steps: Vec::new(), buf, filled: None }
    }

    /// How many of the `len` pixels from `p0` one B operand covers: up to
    /// the end of the band that holds pixel `p0`.
    fn span(&self, p0: usize, len: usize) -> usize {
        match &self.band {
            Some(b) => {
                let rows = b.rows();
                len.min((p0 / self.ow / rows + 1) * rows * self.ow - p0)
            }
            None => len,
        }
    }

    /// The B operand for pixels `p0..p0 + len` (inside one band, see
    /// [`span`](Self::span)) of image `img`, whose block of planes is `xs`,
    /// filling the band if it holds other rows; `None` without a band.
    fn band_columns(&mut self, xs: &[f32], img: usize, p0: usize, len: usize) -> Option<BandColumns<'_>> {
        let band = self.band.as_ref()?;
        let oy0 = p0 / self.ow / band.rows() * band.rows();
        if self.filled != Some((img, oy0)) {
            band.fill(xs, oy0, &mut self.buf);
            self.filled = Some((img, oy0));
        }
        WgradKernel::grid_steps(self.ow, self.grid_w, p0 - oy0 * self.ow, len, &mut self.steps);
        Some(BandColumns::new(&self.buf, &self.taps, &self.steps))
    }

    /// Returns the band buffer to the thread's scratch.
    fn release(self) {
        unscratch([self.buf]);
    }
}

/// Floats of one weight-gradient task's band of padded input rows (1 MiB,
/// as the forward pass: the kernel reads a few rows of it at a time, and
/// taller bands copy fewer halo rows).
const WGRAD_BAND: usize = 256 << 10;

/// Fewest taps (`dW^T` rows) per channel block of the band path: fewer
/// would repack each chunk of dY for too little work.
const WGRAD_BLOCK_ROWS: usize = 512;

/// Fewest output pixels per image for the band path. Measured on Zen 5
/// (r50_3x3_512, 7x7, one thread): bands 3.0 ms, im2col^T GEMM 1.36 ms.
const WGRAD_MIN_PIXELS: usize = 256;

/// The weight gradient of a layer with one input channel per group: the
/// geometries [`DepthwiseWgrad`] supports read the planes in place;
/// otherwise each filter's taps are dot products of its dY, row by row,
/// with runs of a band's rows ([`WgradKernel::dot`]: the grid's extra columns are never
/// read), summed over the bands and images in order. `None` (and `dw`
/// untouched) where no band is addressable.
fn depthwise_weights(
    x: &[f32],
    x_shape: [usize; 4],
    dy: &[f32],
    p: &Conv2dParams,
    geom: Geometry,
    dw: &mut [f32],
) -> Option<()> {
    let [n, c, h, w] = x_shape;
    let [k, _, fh, fw] = p.weight_shape();
    let (kg, taps, plane) = (k / p.groups, fh * fw, h * w);
    let (oh, ow) = (geom.oh, geom.ow);
    let pixels = oh * ow;
    if DepthwiseWgrad::supports(&geom) {
        // Read in place: no band to fill.
        let kernel = DepthwiseWgrad::for_isa(crate::active_isa());
        dw.fill(0.0);
        dw.par_chunks_mut(taps).enumerate().inline_on_one_thread().for_each(|(f, dwf)| {
            let g = f / kg;
            for img in 0..n {
                let xp = &x[(img * c + g) * plane..][..plane];
                kernel.accumulate(xp, &dy[(img * k + f) * pixels..][..pixels], &geom, dwf);
            }
        });
        return Some(());
    }
    let kernel = WgradKernel::for_isa(crate::active_isa());
    Band::new(geom, 1, 1)?;
    let rows =
        (2..=oh).take_while(|&r| Band::new(geom, r, 1).is_some_and(|b| b.len() <= WGRAD_BAND)).last().unwrap_or(1);
    let band = Band::new(geom, rows, 1)?;
    let grid_w = Band::grid_width(&geom);
    let mut offsets = vec![0u32; taps];
    band.taps(&mut offsets);
    dw.fill(0.0);
    dw.par_chunks_mut(taps).enumerate().inline_on_one_thread().for_each(|(f, dwf)| {
        let g = f / kg;
        let mut buf = scratch(band.len());
        for img in 0..n {
            let xp = &x[(img * c + g) * plane..][..plane];
            let dyp = &dy[(img * k + f) * pixels..][..pixels];
            for oy0 in (0..oh).step_by(rows) {
                let r = rows.min(oh - oy0);
                band.fill(xp, oy0, &mut buf);
                kernel.dot(&buf, &offsets, &dyp[oy0 * ow..][..r * ow], ow, grid_w, dwf);
            }
        }
        unscratch([buf]);
    });
    Some(())
}

/// One weight-gradient task: a block of input channels of one group, its
/// share of the output rows of every image, its band, packed dY chunk and
/// partial `dW^T`.
struct WgradTask {
    group: usize,
    /// First channel of the block within its group.
    c0: usize,
    /// The output rows of every image this task sums over.
    out_rows: Range<usize>,
    band: Band,
    /// Where each of the block's im2col rows starts in the band.
    offsets: Vec<u32>,
    buf: Vec<f32>,
    /// One chunk of dY, packed transposed into NR-wide panels.
    packed: Vec<f32>,
    steps: Vec<u32>,
    /// `dW^T` of the block: its `chans * FH * FW` taps x `K/groups`.
    ct: Vec<f32>,
}

/// The weight gradient read in place from bands of padded input rows (see
/// [`receptive_kernels::wgrad`]), for `geom` (`c` the channels per group),
/// into `dw`; `None` (and `dw` untouched) where no band is addressable,
/// where the images are so small (under [`WGRAD_MIN_PIXELS`]) that the
/// GEMM over im2col^T, whose reduction runs over the whole batch, does
/// better than sweeping the gradient once per image, or where a group's
/// output channels would fill too little of the kernel's NR columns;
/// also `None` (with `dw` written) where the gradient holds a non-finite
/// value, which the GEMM paths recompute (see the caller).
///
/// Tasks are (group, channel block, part of the output rows): blocks of
/// at least [`WGRAD_BLOCK_ROWS`] taps, up to two per thread (smaller
/// partial sums stay in cache beside the band), then enough parts for a
/// whole number of tasks per thread, summed in order by the last of them
/// to finish. Each
/// task packs the chunk of dY it is about to use itself, so the packed
/// chunk stays in its core's L1 and is reused by every tap of the group
/// (a shared packed dY, written by one core and read by another, cost the
/// packing three times over at two threads). Each task sums in an order
/// that the split alone fixes, and the thread count fixes the split.
fn weights_from_bands(
    x: &[f32],
    x_shape: [usize; 4],
    dy: &[f32],
    p: &Conv2dParams,
    geom: Geometry,
    dw: &mut [f32],
) -> Option<()> {
    let kernel = WgradKernel::for_isa(crate::active_isa());
    let [n, c, h, w] = x_shape;
    let [k, cg, fh, fw] = p.weight_shape();
    let (groups, kg, taps) = (p.groups, k / p.groups, fh * fw);
    let (oh, ow, plane) = (geom.oh, geom.ow, h * w);
    let pixels = oh * ow;
    // Output channels fill the kernel's NR-wide panels (at least 80%).
    if pixels < WGRAD_MIN_PIXELS || kg * 5 < kg.next_multiple_of(kernel.nr) * 4 {
        return None;
    }
    let threads = rayon::current_num_threads();
    let m = cg * taps;
    let blocks = if threads > 1 { (2 * threads).div_ceil(groups).min(m / WGRAD_BLOCK_ROWS).max(1) } else { 1 };
    let cb = cg.div_ceil(blocks);
    let blocks = cg.div_ceil(cb);
    let parts = (threads / gcd(groups * blocks, threads)).min(oh);
    let block_geom = |chans| Geometry { c: chans, ..geom };
    // 1x1 unit-stride unpadded: the input planes are the band.
    let pointwise = taps == 1 && p.stride == [1, 1] && p.padding == Padding::uniform(0);
    // The tallest band within the budget (one row at least).
    Band::new(block_geom(cb), 1, 1)?;
    let rows = if pointwise {
        oh
    } else {
        (2..=oh)
            .take_while(|&r| Band::new(block_geom(cb), r, 1).is_some_and(|b| b.len() <= WGRAD_BAND))
            .last()
            .unwrap_or(1)
    };
    let grid_w = Band::grid_width(&geom);
    let (chunk, nr) = (kernel.chunk(), kernel.nr);
    let panels = kg.div_ceil(nr);
    let mut tasks: Vec<WgradTask> = (0..groups * blocks * parts)
        .map(|t| {
            let (group, c0, part) = (t / (blocks * parts), (t / parts % blocks) * cb, t % parts);
            let chans = cb.min(cg - c0);
            let band = Band::new(block_geom(chans), rows, 1).expect("no larger than the band checked above");
            let offsets: Vec<u32> = if pointwise {
                (0..chans).map(|j| (j * plane) as u32).collect()
            } else {
                let mut offsets = vec![0u32; chans * taps];
                band.taps(&mut offsets);
                offsets
            };
            WgradTask {
                group,
                c0,
                out_rows: part * oh / parts..(part + 1) * oh / parts,
                buf: scratch(if pointwise { 0 } else { band.len() }),
                band,
                packed: scratch(panels * chunk * nr),
                steps: Vec::with_capacity(chunk),
                ct: scratch(offsets.len() * kg),
                offsets,
            }
        })
        .collect();
    // Each block's columns of dW, filled by whichever of its tasks
    // finishes last.
    let mut sums = Vec::with_capacity(groups * blocks);
    for dwg in dw.chunks_mut(kg * m) {
        let mut rest = MatMut::new(dwg, kg, m, m, 1).expect("dW_g is K/g x cols");
        for c0 in (0..cg).step_by(cb) {
            let (left, right) = rest.split_at_col(cb.min(cg - c0) * taps);
            sums.push(Mutex::new(BlockSum { parts: Vec::with_capacity(parts), dst: Some(left) }));
            rest = right;
        }
    }
    let finite = AtomicBool::new(true);
    let isa = crate::active_isa();
    tasks.par_iter_mut().enumerate().inline_on_one_thread().for_each(|(i, t)| {
        let (r0, r1) = (t.out_rows.start, t.out_rows.end);
        let chans = t.offsets.len() / taps;
        for img in 0..n {
            let xs = &x[(img * c + t.group * cg + t.c0) * plane..][..chans * plane];
            let dyg = &dy[(img * k + t.group * kg) * pixels..][..kg * pixels];
            for oy0 in (r0..r1).step_by(rows) {
                let band_pixels = rows.min(r1 - oy0) * ow;
                let src = if pointwise {
                    &xs[oy0 * ow..]
                } else {
                    t.band.fill(xs, oy0, &mut t.buf);
                    &t.buf
                };
                for p0 in (0..band_pixels).step_by(chunk) {
                    let len = chunk.min(band_pixels - p0);
                    for (pi, dst) in t.packed.chunks_exact_mut(len * nr).take(panels).enumerate() {
                        let kn = nr.min(kg - pi * nr);
                        kernel.pack_panel(&dyg[pi * nr * pixels..], kn, pixels, oy0 * ow + p0, len, dst);
                    }
                    WgradKernel::grid_steps(ow, grid_w, p0, len, &mut t.steps);
                    let first = img == 0 && oy0 == r0 && p0 == 0;
                    kernel.accumulate(src, &t.offsets, &t.steps, &t.packed, len * nr, kg, &mut t.ct, !first);
                }
            }
        }
        // The partial sum to its block; the last of the block's parts sums
        // them in order, transposes the block's dW^T (taps x K/groups) into
        // its columns of dW and checks it, all in this one parallel pass
        // (another would cost a hand-over to the pool, about 40 us).
        let block = &sums[i / parts];
        let mut sum = block.lock().expect("no task panics holding it");
        sum.parts.push((i % parts, std::mem::take(&mut t.ct)));
        if sum.parts.len() < parts {
            return;
        }
        let mut done = std::mem::take(&mut sum.parts);
        let mut dst = sum.dst.take().expect("one last part per block");
        drop(sum);
        done.sort_unstable_by_key(|&(part, _)| part);
        let ((_, first), rest) = done.split_first_mut().expect("parts >= 1");
        for (_, ct) in rest {
            first.iter_mut().zip(ct.iter()).for_each(|(a, b)| *a += *b);
        }
        let rows_b = t.offsets.len();
        transpose(isa, first, rows_b, kg, kg, &mut dst, 0);
        if !all_finite(&first[..rows_b * kg]) {
            finite.store(false, Ordering::Relaxed);
        }
        block.lock().expect("no task panics holding it").parts = done;
    });
    // The partial sums back to their tasks, then every buffer to the
    // scratch in the reverse of the order taken, so the next call of the
    // same shape gets each back at its size.
    for (b, sum) in sums.into_iter().enumerate() {
        let sum = sum.into_inner().expect("no task panicked");
        for (part, ct) in sum.parts {
            tasks[b * parts + part].ct = ct;
        }
    }
    let mut bufs: Vec<Vec<f32>> = tasks.into_iter().flat_map(|t| [t.buf, t.packed, t.ct]).collect();
    bufs.reverse();
    unscratch(bufs);
    finite.into_inner().then_some(())
}

/// The partial sums of one channel block's tasks as they finish, and the
/// block's columns of dW for the last to fill.
struct BlockSum<'a> {
    parts: Vec<(usize, Vec<f32>)>,
    dst: Option<MatMut<'a>>,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Checks a bias-gradient shape: every dimension at least 1.
pub(crate) fn check_bias_grad_shape(dy_shape: [usize; 4]) -> Result<()> {
    for (name, v) in ["batch size", "output channels", "output height", "output width"].iter().zip(dy_shape) {
        if v == 0 {
            return Err(Error::invalid(format!("output gradient {name}"), 0, "must be at least 1"));
        }
    }
    Ok(())
}

/// Gradient of a convolution's bias: the sum of each output channel of `dy`
/// (`[N, K, OH, OW]`) over the batch and the plane, in a fixed order.
///
/// ```
/// let db = receptive::conv2d_backward_bias(&[1.0, 2.0, 3.0, 4.0], [2, 1, 1, 2])?;
/// assert_eq!(db, [10.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d_backward_bias(dy: &[f32], dy_shape: [usize; 4]) -> Result<Vec<f32>> {
    check_bias_grad_shape(dy_shape)?;
    check_len("output gradient", dy.len(), &dy_shape)?;
    let [n, k, oh, ow] = dy_shape;
    let plane = oh * ow;
    Ok((0..k)
        .into_par_iter()
        .inline_on_one_thread()
        .map(|f| {
            // Eight running sums (vectorizable, and shorter chains than one).
            let mut acc = [0.0f32; 8];
            for img in 0..n {
                let src = &dy[(img * k + f) * plane..][..plane];
                let mut chunks = src.chunks_exact(8);
                for ch in &mut chunks {
                    acc.iter_mut().zip(ch).for_each(|(a, v)| *a += *v);
                }
                acc.iter_mut().zip(chunks.remainder()).for_each(|(a, v)| *a += *v);
            }
            acc.iter().sum::<f32>()
        })
        .collect())
}
