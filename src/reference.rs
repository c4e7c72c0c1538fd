//! Naive implementations that are obviously right: the oracles every fast
//! kernel is tested against. Public, so users can check results too.
//!
//! They validate their input exactly like the fast ops, accumulate in `f64`
//! (so their own rounding is negligible next to the f32 kernels'), and
//! follow PyTorch's semantics, NaN included.

use crate::activation::Activation;
use crate::error::{Result, check_len};
use crate::gemm::{Bias, MatMut, MatRef, check_gemm_shapes};
use crate::params::{Conv2dParams, Pool2dParams, PoolKind};

/// Position of tap `t` of output `o` along an axis, if it lies inside the input.
fn tap(o: usize, t: usize, stride: usize, dilation: usize, pad_before: usize, input: usize) -> Option<usize> {
    (o * stride + t * dilation).checked_sub(pad_before).filter(|&i| i < input)
}

/// Forward convolution, the seven-loop nest over (n, k, oh, ow, c, fh, fw),
/// with groups, dilation, asymmetric padding and an optional bias.
///
/// ```
/// use receptive::{reference, Conv2dParams};
/// // A 3x3 input, one 2x2 filter of ones: each output sums a 2x2 patch.
/// let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
/// let p = Conv2dParams::new(1, 1, [2, 2]);
/// let y = reference::conv2d(&x, [1, 1, 3, 3], &[1.0; 4], Some(&[0.5]), &p)?;
/// assert_eq!(y, [12.5, 16.5, 24.5, 28.5]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d(x: &[f32], x_shape: [usize; 4], w: &[f32], bias: Option<&[f32]>, p: &Conv2dParams) -> Result<Vec<f32>> {
    let [n, k, oh, ow] = p.output_shape(x_shape)?;
    let [_, c_in, h, wd] = x_shape;
    check_len("input", x.len(), &x_shape)?;
    check_len("weights", w.len(), &p.weight_shape())?;
    if let Some(b) = bias {
        check_len("bias", b.len(), &[k])?;
    }
    let [_, cg, fh, fw] = p.weight_shape();
    let kg = k / p.groups;
    let mut y = vec![0.0f32; n * k * oh * ow];
    for b in 0..n {
        for f in 0..k {
            let g = f / kg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0f64;
                    for c in 0..cg {
                        let ci = g * cg + c;
                        for ky in 0..fh {
                            let Some(iy) = tap(oy, ky, p.stride[0], p.dilation[0], p.padding.top, h) else { continue };
                            for kx in 0..fw {
                                let Some(ix) = tap(ox, kx, p.stride[1], p.dilation[1], p.padding.left, wd) else {
                                    continue;
                                };
                                let xv = x[((b * c_in + ci) * h + iy) * wd + ix] as f64;
                                let wv = w[((f * cg + c) * fh + ky) * fw + kx] as f64;
                                acc += xv * wv;
                            }
                        }
                    }
                    if let Some(bias) = bias {
                        acc += bias[f] as f64;
                    }
                    y[((b * k + f) * oh + oy) * ow + ox] = acc as f32;
                }
            }
        }
    }
    Ok(y)
}

/// Max pooling returning the values and, per output, the flat index
/// `h * W + w` of the chosen input element within its plane (PyTorch's
/// indices). NaN wins over every number; among equal values the first in
/// row-major window order is kept.
///
/// ```
/// use receptive::{reference, Pool2dParams};
/// let x = [1.0, 5.0, 5.0, f32::NAN];
/// let (y, idx) = reference::max_pool2d_with_indices(&x, [1, 1, 1, 4], &Pool2dParams::max([1, 2]))?;
/// assert_eq!((y[0], idx[0]), (5.0, 1));
/// assert!(y[1].is_nan() && idx[1] == 3);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn max_pool2d_with_indices(x: &[f32], x_shape: [usize; 4], q: &Pool2dParams) -> Result<(Vec<f32>, Vec<i64>)> {
    let q = Pool2dParams { kind: PoolKind::Max, ..*q };
    let [n, c, oh, ow] = q.output_shape(x_shape)?;
    check_len("input", x.len(), &x_shape)?;
    let [_, _, h, w] = x_shape;
    let mut y = vec![0.0f32; n * c * oh * ow];
    let mut idx = vec![0i64; y.len()];
    for plane in 0..n * c {
        let xp = &x[plane * h * w..(plane + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = f32::NEG_INFINITY;
                let mut best_i: Option<usize> = None;
                for ky in 0..q.kernel[0] {
                    let Some(iy) = tap(oy, ky, q.stride[0], q.dilation[0], q.padding.top, h) else { continue };
                    for kx in 0..q.kernel[1] {
                        let Some(ix) = tap(ox, kx, q.stride[1], q.dilation[1], q.padding.left, w) else { continue };
                        let v = xp[iy * w + ix];
                        // PyTorch's rule: a strictly greater value or a NaN takes over.
                        if best_i.is_none() || v > best || v.is_nan() {
                            best = v;
                            best_i = Some(iy * w + ix);
                        }
                    }
                }
                let o = (plane * oh + oy) * ow + ox;
                y[o] = best;
                // Validation guarantees every window covers an input element.
                idx[o] = best_i.unwrap_or(0) as i64;
            }
        }
    }
    Ok((y, idx))
}

/// Max pooling values (see [`max_pool2d_with_indices`]).
///
/// ```
/// use receptive::{reference, Pool2dParams};
/// // Each 2x2 window of a 4x4 plane keeps its largest value.
/// let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
/// assert_eq!(reference::max_pool2d(&x, [1, 1, 4, 4], &Pool2dParams::max([2, 2]))?, [5.0, 7.0, 13.0, 15.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn max_pool2d(x: &[f32], x_shape: [usize; 4], q: &Pool2dParams) -> Result<Vec<f32>> {
    max_pool2d_with_indices(x, x_shape, q).map(|(y, _)| y)
}

/// Average pooling with PyTorch's divisor rules: a window is clipped to the
/// padded input; its divisor is `divisor_override` if set, else the clipped
/// window's size counting padding (`count_include_pad`), else the number of
/// input elements it covers.
///
/// ```
/// use receptive::{reference, Pool2dParams};
/// // PyTorch's ceil_mode trap: the last window holds only the 5.
/// let q = Pool2dParams::avg([1, 2]).ceil_mode(true);
/// let y = reference::avg_pool2d(&[1.0, 2.0, 3.0, 4.0, 5.0], [1, 1, 1, 5], &q)?;
/// assert_eq!(y, [1.5, 3.5, 5.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn avg_pool2d(x: &[f32], x_shape: [usize; 4], q: &Pool2dParams) -> Result<Vec<f32>> {
    let q = Pool2dParams { kind: PoolKind::Avg, ..*q };
    let [n, c, oh, ow] = q.output_shape(x_shape)?;
    check_len("input", x.len(), &x_shape)?;
    let [_, _, h, w] = x_shape;
    // Window bounds along one axis in padded coordinates, clipped to the
    // padded input, then to the input itself.
    let bounds = |o: usize, k: usize, s: usize, pb: usize, pa: usize, len: usize| {
        let start = (o * s) as i64 - pb as i64;
        let end = (start + k as i64).min((len + pa) as i64);
        let padded = end - start;
        let (lo, hi) = (start.max(0), end.min(len as i64));
        (lo as usize, hi as usize, padded as usize)
    };
    let mut y = vec![0.0f32; n * c * oh * ow];
    for plane in 0..n * c {
        let xp = &x[plane * h * w..(plane + 1) * h * w];
        for oy in 0..oh {
            let (y0, y1, ph) = bounds(oy, q.kernel[0], q.stride[0], q.padding.top, q.padding.bottom, h);
            for ox in 0..ow {
                let (x0, x1, pw) = bounds(ox, q.kernel[1], q.stride[1], q.padding.left, q.padding.right, w);
                let mut sum = 0.0f64;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        sum += xp[iy * w + ix] as f64;
                    }
                }
                let divisor = match q.divisor_override {
                    Some(d) => d,
                    None if q.count_include_pad => ph * pw,
                    None => (y1 - y0) * (x1 - x0),
                };
                y[(plane * oh + oy) * ow + ox] = (sum / divisor as f64) as f32;
            }
        }
    }
    Ok(y)
}

/// Mean of each whole plane: output `[N, C, 1, 1]`.
///
/// ```
/// // Two 2x2 planes, one mean each.
/// let y = receptive::reference::global_avg_pool2d(&[1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 8.0], [1, 2, 2, 2])?;
/// assert_eq!(y, [2.5, 2.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn global_avg_pool2d(x: &[f32], x_shape: [usize; 4]) -> Result<Vec<f32>> {
    avg_pool2d(x, x_shape, &Pool2dParams::avg([x_shape[2], x_shape[3]]))
}

/// Maximum of each whole plane (NaN wins): output `[N, C, 1, 1]`.
///
/// ```
/// // Two 2x2 planes, one maximum each; NaN wins.
/// let y = receptive::reference::global_max_pool2d(&[1.0, 4.0, 3.0, 2.0, 0.0, f32::NAN, 5.0, 8.0], [1, 2, 2, 2])?;
/// assert!(y[0] == 4.0 && y[1].is_nan());
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn global_max_pool2d(x: &[f32], x_shape: [usize; 4]) -> Result<Vec<f32>> {
    max_pool2d(x, x_shape, &Pool2dParams::max([x_shape[2], x_shape[3]]))
}

/// `C = act(alpha * A * B + beta * C + bias)` as a triple loop (`beta == 0`
/// ignores the old C).
///
/// ```
/// use receptive::{reference, Activation, Bias, MatMut, MatRef};
/// // [1 2; 3 4] times the identity, plus 1 per column, then C keeps half its old value.
/// let (a, id) = ([1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 1.0]);
/// let mut c = [2.0; 4];
/// reference::sgemm(1.0, MatRef::new(&a, 2, 2, 2, 1)?, MatRef::new(&id, 2, 2, 2, 1)?, 0.5,
///                  MatMut::new(&mut c, 2, 2, 2, 1)?, Bias::PerCol(&[1.0, 1.0]), Activation::None)?;
/// assert_eq!(c, [3.0, 4.0, 5.0, 6.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn sgemm(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
    bias: Bias<'_>,
    act: Activation,
) -> Result<()> {
    check_gemm_shapes(&a, &b, &c, &bias)?;
    act.validate()?;
    for i in 0..c.rows() {
        for j in 0..c.cols() {
            let mut acc = 0.0f64;
            for p in 0..a.cols() {
                acc += a.at(i, p) as f64 * b.at(p, j) as f64;
            }
            let mut v = alpha as f64 * acc;
            if beta != 0.0 {
                v += beta as f64 * c.at(i, j) as f64;
            }
            match bias {
                Bias::PerRow(r) => v += r[i] as f64,
                Bias::PerCol(r) => v += r[j] as f64,
                Bias::None => {}
            }
            c.set(i, j, act.apply(v as f32));
        }
    }
    Ok(())
}

/// The error bound the fast kernels are held to: for an output computed as a
/// sum of `reduction_len` products whose absolute values add up to `abs_sum`,
/// f32 accumulation in any order is off by at most about
/// `reduction_len * eps * abs_sum` (the standard bound for recursive
/// summation); the factor 2 covers the final rounding and the epilogue.
///
/// ```
/// let t = receptive::reference::tolerance(576, 10.0);
/// assert!(t > 0.0 && t < 1e-2);
/// ```
pub fn tolerance(reduction_len: usize, abs_sum: f32) -> f32 {
    2.0 * (reduction_len.max(1) as f32) * f32::EPSILON * abs_sum + f32::MIN_POSITIVE
}

/// Checks that an output gradient has the forward output's shape for `x_shape`.
pub(crate) fn check_dy_shape(p: &Conv2dParams, x_shape: [usize; 4], dy_shape: [usize; 4]) -> Result<()> {
    let expected = p.output_shape(x_shape)?;
    if dy_shape != expected {
        return Err(crate::Error::invalid(
            "output gradient shape",
            format!("{dy_shape:?}"),
            format!("must be {expected:?}, the forward output shape for input {x_shape:?}"),
        ));
    }
    Ok(())
}

/// Gradient of [`conv2d`] with respect to its input: every `dy * w` product
/// scattered back to the input element it came from. `dy` has the forward
/// output's shape for an input of `x_shape`; the result has `x_shape`.
///
/// ```
/// use receptive::{reference, Conv2dParams};
/// // A 2x2 filter of ones over a 3x3 input: the centre feeds all four outputs.
/// let p = Conv2dParams::new(1, 1, [2, 2]);
/// let dx = reference::conv2d_backward_data(&[1.0; 4], [1, 1, 2, 2], &[1.0; 4], &p, [1, 1, 3, 3])?;
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
    check_len("weights", w.len(), &p.weight_shape())?;
    let [n, k, oh, ow] = dy_shape;
    let [_, c_in, h, wd] = x_shape;
    let [_, cg, fh, fw] = p.weight_shape();
    let kg = k / p.groups;
    let mut dx = vec![0.0f64; n * c_in * h * wd];
    for b in 0..n {
        for f in 0..k {
            let g = f / kg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let d = dy[((b * k + f) * oh + oy) * ow + ox] as f64;
                    for c in 0..cg {
                        let ci = g * cg + c;
                        for ky in 0..fh {
                            let Some(iy) = tap(oy, ky, p.stride[0], p.dilation[0], p.padding.top, h) else { continue };
                            for kx in 0..fw {
                                let Some(ix) = tap(ox, kx, p.stride[1], p.dilation[1], p.padding.left, wd) else {
                                    continue;
                                };
                                let wv = w[((f * cg + c) * fh + ky) * fw + kx] as f64;
                                dx[((b * c_in + ci) * h + iy) * wd + ix] += d * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(dx.into_iter().map(|v| v as f32).collect())
}

/// Gradient of [`conv2d`] with respect to its weights: `dw[f, c, ky, kx]`
/// sums `dy * x` over the batch and every output position. `dy` has the
/// forward output's shape for an input of `x_shape`; the result has the
/// weight shape `[K, C/groups, FH, FW]`.
///
/// ```
/// use receptive::{reference, Conv2dParams};
/// let p = Conv2dParams::new(1, 1, [2, 2]);
/// let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
/// let dw = reference::conv2d_backward_weights(&x, [1, 1, 3, 3], &[1.0; 4], &p)?;
/// assert_eq!(dw, [12.0, 16.0, 24.0, 28.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d_backward_weights(x: &[f32], x_shape: [usize; 4], dy: &[f32], p: &Conv2dParams) -> Result<Vec<f32>> {
    let [n, k, oh, ow] = p.output_shape(x_shape)?;
    check_len("input", x.len(), &x_shape)?;
    check_len("output gradient", dy.len(), &[n, k, oh, ow])?;
    let [_, c_in, h, wd] = x_shape;
    let [_, cg, fh, fw] = p.weight_shape();
    let kg = k / p.groups;
    let mut dw = vec![0.0f32; p.weight_count()];
    for f in 0..k {
        let g = f / kg;
        for c in 0..cg {
            let ci = g * cg + c;
            for ky in 0..fh {
                for kx in 0..fw {
                    let mut acc = 0.0f64;
                    for b in 0..n {
                        for oy in 0..oh {
                            let Some(iy) = tap(oy, ky, p.stride[0], p.dilation[0], p.padding.top, h) else { continue };
                            for ox in 0..ow {
                                let Some(ix) = tap(ox, kx, p.stride[1], p.dilation[1], p.padding.left, wd) else {
                                    continue;
                                };
                                let d = dy[((b * k + f) * oh + oy) * ow + ox] as f64;
                                acc += d * x[((b * c_in + ci) * h + iy) * wd + ix] as f64;
                            }
                        }
                    }
                    dw[((f * cg + c) * fh + ky) * fw + kx] = acc as f32;
                }
            }
        }
    }
    Ok(dw)
}

/// Gradient of [`conv2d`] with respect to its bias: the sum of each output
/// channel of `dy` (shape `[N, K, OH, OW]`) over the batch and the plane.
///
/// ```
/// let db = receptive::reference::conv2d_backward_bias(&[1.0, 2.0, 3.0, 4.0], [2, 1, 1, 2])?;
/// assert_eq!(db, [10.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d_backward_bias(dy: &[f32], dy_shape: [usize; 4]) -> Result<Vec<f32>> {
    crate::conv_backward::check_bias_grad_shape(dy_shape)?;
    check_len("output gradient", dy.len(), &dy_shape)?;
    let [n, k, oh, ow] = dy_shape;
    Ok((0..k)
        .map(|f| {
            let sum: f64 = (0..n).flat_map(|b| &dy[(b * k + f) * oh * ow..][..oh * ow]).map(|&v| v as f64).sum();
            sum as f32
        })
        .collect())
}

/// Transposed convolution (PyTorch's `conv_transpose2d`): every input
/// element scatters `x * w` into the output, whose size is
/// `(H-1)*stride - pad_before - pad_after + dilation*(F-1) + output_padding + 1`.
/// Weights are `[C_in, C_out/groups, FH, FW]`.
///
/// ```
/// use receptive::{reference, ConvTranspose2dParams};
/// // Stride 2 with a 2x2 filter of ones: each input becomes a 2x2 block.
/// let tp = ConvTranspose2dParams::new(1, 1, [2, 2]).stride(2);
/// let y = reference::conv_transpose2d(&[1.0, 2.0], [1, 1, 1, 2], &[1.0; 4], None, &tp)?;
/// assert_eq!(y, [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv_transpose2d(
    x: &[f32],
    x_shape: [usize; 4],
    w: &[f32],
    bias: Option<&[f32]>,
    tp: &crate::ConvTranspose2dParams,
) -> Result<Vec<f32>> {
    let [n, co, oh, ow] = tp.output_shape(x_shape)?;
    check_len("input", x.len(), &x_shape)?;
    check_len("weights", w.len(), &tp.weight_shape())?;
    if let Some(b) = bias {
        check_len("bias", b.len(), &[co])?;
    }
    let [_, ci_n, h, wd] = x_shape;
    let [_, cog, fh, fw] = tp.weight_shape();
    let cig = ci_n / tp.groups;
    let mut y = vec![0.0f64; n * co * oh * ow];
    for b in 0..n {
        for ci in 0..ci_n {
            let g = ci / cig;
            for iy in 0..h {
                for ix in 0..wd {
                    let xv = x[((b * ci_n + ci) * h + iy) * wd + ix] as f64;
                    for c in 0..cog {
                        let o = g * cog + c;
                        for ky in 0..fh {
                            let Some(oy) = tap(iy, ky, tp.stride[0], tp.dilation[0], tp.padding.top, oh) else {
                                continue;
                            };
                            for kx in 0..fw {
                                let Some(ox) = tap(ix, kx, tp.stride[1], tp.dilation[1], tp.padding.left, ow) else {
                                    continue;
                                };
                                let wv = w[((ci * cog + c) * fh + ky) * fw + kx] as f64;
                                y[((b * co + o) * oh + oy) * ow + ox] += xv * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(bias) = bias {
        for (i, v) in y.iter_mut().enumerate() {
            *v += bias[(i / (oh * ow)) % co] as f64;
        }
    }
    Ok(y.into_iter().map(|v| v as f32).collect())
}

/// Gradient of max pooling w.r.t. its input, from the forward indices:
/// `dx[plane][idx[o]] += dy[o]` for every output `o` (overlapping windows
/// accumulate). `dy` and `idx` have the forward's output shape.
///
/// ```
/// use receptive::{reference, Pool2dParams};
/// let q = Pool2dParams::max([1, 2]).stride(1);
/// // Windows [1, 5] and [5, 2] both pick index 1.
/// let dx = reference::max_pool2d_backward(&[1.0, 10.0], &[1, 1], [1, 1, 1, 3], &q)?;
/// assert_eq!(dx, [0.0, 11.0, 0.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn max_pool2d_backward(dy: &[f32], idx: &[i64], x_shape: [usize; 4], q: &Pool2dParams) -> Result<Vec<f32>> {
    let q = Pool2dParams { kind: PoolKind::Max, ..*q };
    let y_shape = q.output_shape(x_shape)?;
    check_len("output gradient", dy.len(), &y_shape)?;
    check_len("indices", idx.len(), &y_shape)?;
    let [n, c, h, w] = x_shape;
    let plane_out = y_shape[2] * y_shape[3];
    let mut dx = vec![0.0f64; n * c * h * w];
    for (o, (&g, &i)) in dy.iter().zip(idx).enumerate() {
        let i = usize::try_from(i).ok().filter(|&i| i < h * w).ok_or_else(|| {
            crate::Error::invalid(format!("index {o}"), i, format!("must lie in the plane, 0..{}", h * w))
        })?;
        dx[o / plane_out * h * w + i] += g as f64;
    }
    Ok(dx.into_iter().map(|v| v as f32).collect())
}

/// Gradient of average pooling w.r.t. its input: each output's gradient,
/// divided by that window's divisor (the forward's rules), is added to every
/// input element of the window (padding taps get nothing).
///
/// ```
/// use receptive::{reference, Pool2dParams};
/// let q = Pool2dParams::avg([1, 2]).ceil_mode(true);
/// // Windows [x0, x1], [x2, x3], [x4]: divisors 2, 2, 1.
/// let dx = reference::avg_pool2d_backward(&[2.0, 4.0, 6.0], [1, 1, 1, 5], &q)?;
/// assert_eq!(dx, [1.0, 1.0, 2.0, 2.0, 6.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn avg_pool2d_backward(dy: &[f32], x_shape: [usize; 4], q: &Pool2dParams) -> Result<Vec<f32>> {
    let q = Pool2dParams { kind: PoolKind::Avg, ..*q };
    let y_shape = q.output_shape(x_shape)?;
    check_len("output gradient", dy.len(), &y_shape)?;
    let [n, c, h, w] = x_shape;
    let [_, _, oh, ow] = y_shape;
    let bounds = |o: usize, k: usize, s: usize, pb: usize, pa: usize, len: usize| {
        let start = (o * s) as i64 - pb as i64;
        let end = (start + k as i64).min((len + pa) as i64);
        let (lo, hi) = (start.max(0), end.min(len as i64));
        (lo as usize, hi as usize, (end - start) as usize)
    };
    let mut dx = vec![0.0f64; n * c * h * w];
    for plane in 0..n * c {
        for oy in 0..oh {
            let (y0, y1, ph) = bounds(oy, q.kernel[0], q.stride[0], q.padding.top, q.padding.bottom, h);
            for ox in 0..ow {
                let (x0, x1, pw) = bounds(ox, q.kernel[1], q.stride[1], q.padding.left, q.padding.right, w);
                let divisor = match q.divisor_override {
                    Some(d) => d,
                    None if q.count_include_pad => ph * pw,
                    None => (y1 - y0) * (x1 - x0),
                };
                let g = dy[(plane * oh + oy) * ow + ox] as f64 / divisor as f64;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        dx[(plane * h + iy) * w + ix] += g;
                    }
                }
            }
        }
    }
    Ok(dx.into_iter().map(|v| v as f32).collect())
}

/// Deterministic pseudo-random values in `[-1, 1)` (a 64-bit LCG), the same
/// for a given `(len, seed)` on every machine: test and benchmark data that
/// anyone can regenerate.
///
/// ```
/// let v = receptive::reference::pseudo_random(1000, 7);
/// assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
/// assert_eq!(v, receptive::reference::pseudo_random(1000, 7));
/// assert_ne!(v, receptive::reference::pseudo_random(1000, 8));
/// ```
pub fn pseudo_random(len: usize, seed: u64) -> Vec<f32> {
    const MUL: u64 = 6364136223846793005;
    const ADD: u64 = 1442695040888963407;
    let mut s = seed.wrapping_mul(MUL).wrapping_add(ADD);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(MUL).wrapping_add(ADD);
            // The top 24 bits, scaled to [0, 2), shifted to [-1, 1).
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}
