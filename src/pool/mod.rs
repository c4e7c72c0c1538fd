//! Pooling: max (with PyTorch's indices), average and global pooling over
//! NCHW tensors, planned once per layer geometry and run in parallel over
//! the (batch x channel) planes.

mod backward;

pub use backward::{avg_pool2d_backward, max_pool2d_backward};
use rayon::prelude::*;
use receptive_kernels::Isa;
use receptive_kernels::pool::{Divisor, PoolGeometry, PoolKernel, PoolOp, global_pool};

use crate::error::{Error, Result, check_len, checked_product};
use crate::params::{Pool2dParams, PoolKind};

/// A task covers at least this many elements (input plus output), so small
/// planes are batched instead of being one rayon task each.
const MIN_TASK_ELEMS: usize = 32 * 1024;

/// Planes per rayon task: enough for [`MIN_TASK_ELEMS`], and about four tasks
/// per thread for balance. All of them (one task, no rayon) on one thread.
pub(crate) fn planes_per_task(planes: usize, elems_per_plane: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads <= 1 {
        return planes.max(1);
    }
    let min = MIN_TASK_ELEMS.div_ceil(elems_per_plane.max(1));
    min.max(planes.div_ceil(threads * 4)).max(1)
}

/// Runs `f` on chunks of whole planes: `x` in planes of `plane_in`, `y` (and
/// `idx`) in planes of `plane_out`.
fn for_plane_chunks<F>(x: &[f32], plane_in: usize, y: &mut [f32], idx: Option<&mut [i64]>, plane_out: usize, f: F)
where
    F: Fn(&[f32], &mut [f32], Option<&mut [i64]>) + Sync,
{
    let planes = x.len() / plane_in;
    let per = planes_per_task(planes, plane_in + plane_out);
    if per >= planes {
        return f(x, y, idx);
    }
    let xs = x.par_chunks(per * plane_in);
    let ys = y.par_chunks_mut(per * plane_out);
    match idx {
        Some(idx) => xs.zip(ys).zip(idx.par_chunks_mut(per * plane_out)).for_each(|((x, y), i)| f(x, y, Some(i))),
        None => xs.zip(ys).for_each(|(x, y)| f(x, y, None)),
    }
}

/// How a plan computes its output.
#[derive(Clone, Debug)]
enum Path {
    /// A windowed kernel.
    Window(PoolKernel),
    /// The window is the whole plane: a plane reduction (indices still go
    /// through the windowed kernel).
    Global { max: bool, isa: Isa, window: PoolKernel },
}

/// Pooling planned for one layer: parameters and input shape fixed, the
/// kernel and its interior/border split chosen once.
///
/// ```
/// use receptive::{Pool2dParams, Pool2dPlan};
/// let q = Pool2dParams::max([2, 2]); // stride 2
/// let plan = Pool2dPlan::new(&q, [1, 1, 2, 4])?;
/// assert_eq!(plan.output_shape(), [1, 1, 1, 2]);
/// let x = [1.0, 7.0, 3.0, 4.0, 5.0, 6.0, 2.0, 8.0];
/// let (mut y, mut idx) = ([0.0; 2], [0i64; 2]);
/// plan.run_with_indices(&x, &mut y, &mut idx)?;
/// assert_eq!((y, idx), ([7.0, 8.0], [1, 7]));
/// # Ok::<(), receptive::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Pool2dPlan {
    params: Pool2dParams,
    x_shape: [usize; 4],
    y_shape: [usize; 4],
    path: Path,
}

impl Pool2dPlan {
    /// Validates `q` for inputs of shape `x_shape` (`[N, C, H, W]`) and picks
    /// the kernel for the active ISA.
    pub fn new(q: &Pool2dParams, x_shape: [usize; 4]) -> Result<Pool2dPlan> {
        Self::with_isa(q, x_shape, Isa::active())
    }

    /// As [`new`](Self::new), with the kernel written for `isa` (or the best
    /// supported one below it), e.g. to compare instruction sets.
    ///
    /// ```
    /// use receptive::{Isa, Pool2dParams, Pool2dPlan};
    /// let plan = Pool2dPlan::with_isa(&Pool2dParams::max([2, 2]), [1, 8, 32, 32], Isa::Scalar)?;
    /// assert_eq!(plan.path(), "maxpool scalar s2");
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn with_isa(q: &Pool2dParams, x_shape: [usize; 4], isa: Isa) -> Result<Pool2dPlan> {
        let y_shape = q.output_shape(x_shape)?;
        checked_product(&y_shape, "the output element count")?;
        let [_, _, h, w] = x_shape;
        let p = &q.padding;
        let g = PoolGeometry {
            in_hw: [h, w],
            out_hw: [y_shape[2], y_shape[3]],
            kernel: q.kernel,
            stride: q.stride,
            dilation: q.dilation,
            pad_before: [p.top, p.left],
            pad_after: [p.bottom, p.right],
        };
        let op = match q.kind {
            PoolKind::Max => PoolOp::Max,
            PoolKind::Avg => PoolOp::Avg(match q.divisor_override {
                Some(d) => Divisor::Override(d),
                None if q.count_include_pad => Divisor::IncludePad,
                None => Divisor::ExcludePad,
            }),
        };
        // Supported, so it is also what the global kernels run.
        let isa = Isa::best_up_to(isa);
        let window = PoolKernel::new(op, g, isa);
        let whole_plane = q.kernel == [h, w] && *p == crate::Padding::default();
        let path = match op {
            PoolOp::Max if whole_plane => Path::Global { max: true, isa, window },
            PoolOp::Avg(Divisor::IncludePad | Divisor::ExcludePad) if whole_plane => {
                Path::Global { max: false, isa, window }
            }
            PoolOp::Avg(Divisor::Override(d)) if whole_plane && d == h * w => Path::Global { max: false, isa, window },
            _ => Path::Window(window),
        };
        Ok(Pool2dPlan { params: *q, x_shape, y_shape, path })
    }

    /// The parameters the plan was made for.
    pub fn params(&self) -> &Pool2dParams {
        &self.params
    }

    /// The input shape `[N, C, H, W]` the plan was made for.
    pub fn input_shape(&self) -> [usize; 4] {
        self.x_shape
    }

    /// The output shape `[N, C, OH, OW]`.
    pub fn output_shape(&self) -> [usize; 4] {
        self.y_shape
    }

    /// The path that runs, e.g. `"maxpool avx512 s2"`.
    pub fn path(&self) -> String {
        match &self.path {
            Path::Window(k) => k.path(),
            Path::Global { max, isa, .. } => {
                format!("global{}pool {isa}", if *max { "max" } else { "avg" })
            }
        }
    }

    fn check(&self, x: &[f32], y: &[f32]) -> Result<()> {
        check_len("input", x.len(), &self.x_shape)?;
        check_len("output", y.len(), &self.y_shape)
    }

    /// Pools `x` into `y` (lengths as the shapes; nothing is written if they
    /// are wrong).
    pub fn run(&self, x: &[f32], y: &mut [f32]) -> Result<()> {
        self.check(x, y)?;
        let [_, _, h, w] = self.x_shape;
        let [_, _, oh, ow] = self.y_shape;
        match &self.path {
            Path::Window(k) => for_plane_chunks(x, h * w, y, None, oh * ow, |x, y, _| k.run(x, y, None)),
            Path::Global { max, isa, .. } => {
                for_plane_chunks(x, h * w, y, None, 1, |x, y, _| global_pool(*isa, *max, x, h * w, y))
            }
        }
        Ok(())
    }

    /// Max pooling with PyTorch's indices: `idx[o]` is the flat position
    /// `h * W + w` of output `o`'s value within its input plane.
    pub fn run_with_indices(&self, x: &[f32], y: &mut [f32], idx: &mut [i64]) -> Result<()> {
        if self.params.kind != PoolKind::Max {
            return Err(Error::Unsupported { what: "indices of average pooling (only max pooling has them)".into() });
        }
        self.check(x, y)?;
        check_len("indices", idx.len(), &self.y_shape)?;
        let [_, _, h, w] = self.x_shape;
        let [_, _, oh, ow] = self.y_shape;
        let k = match &self.path {
            Path::Window(k) | Path::Global { window: k, .. } => k,
        };
        for_plane_chunks(x, h * w, y, Some(idx), oh * ow, |x, y, i| k.run(x, y, i));
        Ok(())
    }
}

fn run_new(q: &Pool2dParams, x: &[f32], x_shape: [usize; 4]) -> Result<(Pool2dPlan, Vec<f32>)> {
    let plan = Pool2dPlan::new(q, x_shape)?;
    check_len("input", x.len(), &x_shape)?;
    let mut y = vec![0.0; plan.y_shape.iter().product()];
    plan.run(x, &mut y)?;
    Ok((plan, y))
}

/// Max pooling (NaN wins, as PyTorch); `q.kind` is taken as max.
///
/// ```
/// use receptive::{max_pool2d, Pool2dParams};
/// let x = [1.0, 5.0, 3.0, 2.0];
/// assert_eq!(max_pool2d(&x, [1, 1, 1, 4], &Pool2dParams::max([1, 2]))?, [5.0, 3.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn max_pool2d(x: &[f32], x_shape: [usize; 4], q: &Pool2dParams) -> Result<Vec<f32>> {
    run_new(&Pool2dParams { kind: PoolKind::Max, ..*q }, x, x_shape).map(|(_, y)| y)
}

/// Max pooling with PyTorch's indices (flat `h * W + w` within each plane;
/// ties keep the first, the last NaN wins); `q.kind` is taken as max.
///
/// ```
/// use receptive::{max_pool2d_with_indices, Pool2dParams};
/// let x = [1.0, 5.0, 5.0, f32::NAN];
/// let (y, idx) = max_pool2d_with_indices(&x, [1, 1, 1, 4], &Pool2dParams::max([1, 2]))?;
/// assert_eq!((y[0], idx[0]), (5.0, 1));
/// assert!(y[1].is_nan() && idx[1] == 3);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn max_pool2d_with_indices(x: &[f32], x_shape: [usize; 4], q: &Pool2dParams) -> Result<(Vec<f32>, Vec<i64>)> {
    let plan = Pool2dPlan::new(&Pool2dParams { kind: PoolKind::Max, ..*q }, x_shape)?;
    check_len("input", x.len(), &x_shape)?;
    let n: usize = plan.y_shape.iter().product();
    let (mut y, mut idx) = (vec![0.0; n], vec![0i64; n]);
    plan.run_with_indices(x, &mut y, &mut idx)?;
    Ok((y, idx))
}

/// Average pooling with PyTorch's divisor rules (`count_include_pad`,
/// `divisor_override`, ceil-mode windows clipped to the padded input);
/// `q.kind` is taken as average.
///
/// ```
/// use receptive::{avg_pool2d, Pool2dParams};
/// // PyTorch's ceil_mode trap: the last window holds only the 5.
/// let q = Pool2dParams::avg([1, 2]).ceil_mode(true);
/// assert_eq!(avg_pool2d(&[1.0, 2.0, 3.0, 4.0, 5.0], [1, 1, 1, 5], &q)?, [1.5, 3.5, 5.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn avg_pool2d(x: &[f32], x_shape: [usize; 4], q: &Pool2dParams) -> Result<Vec<f32>> {
    run_new(&Pool2dParams { kind: PoolKind::Avg, ..*q }, x, x_shape).map(|(_, y)| y)
}

/// Mean of each plane: output `[N, C, 1, 1]`.
///
/// ```
/// let y = receptive::global_avg_pool2d(&[1.0, 2.0, 3.0, 6.0], [1, 2, 1, 2])?;
/// assert_eq!(y, [1.5, 4.5]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn global_avg_pool2d(x: &[f32], x_shape: [usize; 4]) -> Result<Vec<f32>> {
    avg_pool2d(x, x_shape, &Pool2dParams::avg([x_shape[2], x_shape[3]]))
}

/// Maximum of each plane (NaN wins): output `[N, C, 1, 1]`.
///
/// ```
/// let y = receptive::global_max_pool2d(&[1.0, 2.0, -3.0, -6.0], [1, 2, 1, 2])?;
/// assert_eq!(y, [2.0, -3.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn global_max_pool2d(x: &[f32], x_shape: [usize; 4]) -> Result<Vec<f32>> {
    max_pool2d(x, x_shape, &Pool2dParams::max([x_shape[2], x_shape[3]]))
}
