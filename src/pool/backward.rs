//! Pooling gradients w.r.t. the input: max pooling scatters each output
//! gradient to its forward index, average pooling spreads it over the
//! window's input elements divided by the forward's divisor. Planes run in
//! parallel (each plane's scatter only touches its own plane).

use rayon::prelude::*;

use super::planes_per_task;
use crate::error::{Error, Result, check_len};
use crate::params::{Pool2dParams, PoolKind};

/// Runs `f(dy planes, dx planes, first plane)` on chunks of whole planes.
fn for_grad_chunks<F>(dy: &[f32], plane_out: usize, dx: &mut [f32], plane_in: usize, f: F)
where
    F: Fn(&[f32], &mut [f32], usize) + Sync,
{
    let planes = dx.len() / plane_in;
    let per = planes_per_task(planes, plane_in + plane_out);
    if per >= planes {
        return f(dy, dx, 0);
    }
    dy.par_chunks(per * plane_out)
        .zip(dx.par_chunks_mut(per * plane_in))
        .enumerate()
        .for_each(|(t, (dy, dx))| f(dy, dx, t * per));
}

/// Gradient of max pooling w.r.t. its input, from the forward's indices
/// ([`max_pool2d_with_indices`](crate::max_pool2d_with_indices)):
/// `dx[plane][idx[o]] += dy[o]`, so overlapping windows accumulate.
///
/// ```
/// use receptive::{max_pool2d_backward, Pool2dParams};
/// let q = Pool2dParams::max([1, 2]).stride(1);
/// // Windows [1, 5] and [5, 2] both picked index 1.
/// let dx = max_pool2d_backward(&[1.0, 10.0], &[1, 1], [1, 1, 1, 3], &q)?;
/// assert_eq!(dx, [0.0, 11.0, 0.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn max_pool2d_backward(dy: &[f32], idx: &[i64], x_shape: [usize; 4], q: &Pool2dParams) -> Result<Vec<f32>> {
    let q = Pool2dParams { kind: PoolKind::Max, ..*q };
    let y_shape = q.output_shape(x_shape)?;
    check_len("output gradient", dy.len(), &y_shape)?;
    check_len("indices", idx.len(), &y_shape)?;
    let [n, c, h, w] = x_shape;
    let plane = h * w;
    if let Some(o) = idx.iter().position(|&i| i < 0 || i as u64 >= plane as u64) {
        return Err(Error::invalid(
            format!("index {o}"),
            idx[o],
            format!("must lie in its plane of {h}x{w}: 0..{plane}"),
        ));
    }
    let plane_out = y_shape[2] * y_shape[3];
    let mut dx = vec![0.0f32; n * c * plane];
    for_grad_chunks(dy, plane_out, &mut dx, plane, |dy, dx, first| {
        let idx = &idx[first * plane_out..][..dy.len()];
        for ((dyp, ip), dxp) in dy.chunks(plane_out).zip(idx.chunks(plane_out)).zip(dx.chunks_mut(plane)) {
            for (&g, &i) in dyp.iter().zip(ip) {
                dxp[i as usize] += g;
            }
        }
    });
    Ok(dx)
}

/// One axis of average pooling: per output, the input range its window
/// covers and its divisor factor (the window clipped to the padded input,
/// or the input elements inside it).
fn avg_axis(
    o_len: usize,
    k: usize,
    s: usize,
    pb: usize,
    pa: usize,
    len: usize,
    include_pad: bool,
) -> Vec<(usize, usize, usize)> {
    (0..o_len)
        .map(|o| {
            let start = o * s;
            let end = (start + k).min(len + pb + pa);
            let (lo, hi) = (start.max(pb) - pb, end.min(len + pb).max(pb) - pb);
            (lo, hi, if include_pad { end - start } else { hi - lo })
        })
        .collect()
}

/// Gradient of average pooling w.r.t. its input, with every forward option
/// (ceil_mode, count_include_pad, divisor_override): each output's
/// gradient divided by its window's divisor goes to every input element of
/// the window (padding taps get nothing).
///
/// ```
/// use receptive::{avg_pool2d_backward, Pool2dParams};
/// let q = Pool2dParams::avg([1, 2]).ceil_mode(true);
/// // Windows [x0, x1], [x2, x3], [x4]: divisors 2, 2, 1.
/// let dx = avg_pool2d_backward(&[2.0, 4.0, 6.0], [1, 1, 1, 5], &q)?;
/// assert_eq!(dx, [1.0, 1.0, 2.0, 2.0, 6.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn avg_pool2d_backward(dy: &[f32], x_shape: [usize; 4], q: &Pool2dParams) -> Result<Vec<f32>> {
    let q = Pool2dParams { kind: PoolKind::Avg, ..*q };
    let y_shape = q.output_shape(x_shape)?;
    check_len("output gradient", dy.len(), &y_shape)?;
    let [n, c, h, w] = x_shape;
    let [_, _, oh, ow] = y_shape;
    let p = &q.padding;
    let rows = avg_axis(oh, q.kernel[0], q.stride[0], p.top, p.bottom, h, q.count_include_pad);
    let cols = avg_axis(ow, q.kernel[1], q.stride[1], p.left, p.right, w, q.count_include_pad);
    let mut dx = vec![0.0f32; n * c * h * w];
    for_grad_chunks(dy, oh * ow, &mut dx, h * w, |dy, dx, _| {
        for (dyp, dxp) in dy.chunks(oh * ow).zip(dx.chunks_mut(h * w)) {
            for (&(y0, y1, fy), dyr) in rows.iter().zip(dyp.chunks(ow)) {
                for (&(x0, x1, fx), &g) in cols.iter().zip(dyr) {
                    let d = q.divisor_override.unwrap_or(fy * fx);
                    let g = g / d as f32;
                    for r in dxp[y0 * w..y1 * w].chunks_mut(w) {
                        r[x0..x1].iter_mut().for_each(|v| *v += g);
                    }
                }
            }
        }
    });
    Ok(dx)
}
