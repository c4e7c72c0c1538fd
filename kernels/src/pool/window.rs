//! Windowed max and average pooling over NCHW planes: one generic body per
//! reduction, vectorized along the output row.
//!
//! Each output row splits into border columns (windows that reach into the
//! padding or past the row; done one output at a time with bounds checks)
//! and an interior run `[lo, hi)` whose windows are fully inside the row, done
//! `LANES` outputs at a time without any per-element check. The last vector of
//! the run overlaps the one before it instead of leaving a scalar tail (the
//! outputs are pure functions of the input, so writing one twice is harmless).
//! Rows need no split: the taps of a row that fall outside are skipped whole.

use super::simd::Simd;
use super::{Divisor, PoolGeometry};

/// The taps `t` in `0..k` of output `o` along one axis that land inside the
/// input: `0 <= o*s + t*d - pad < n` holds exactly for `t` in `lo..hi`.
#[inline(always)]
pub(crate) fn tap_range(o: usize, s: usize, d: usize, pad: usize, k: usize, n: usize) -> (usize, usize) {
    let start = o * s;
    let lo = if start >= pad { 0 } else { (pad - start).div_ceil(d) };
    let hi = if n + pad <= start { 0 } else { k.min((n + pad - start - 1) / d + 1) };
    (lo.min(hi), hi)
}

/// A plan's geometry with the interior column run found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub g: PoolGeometry,
    /// Interior output columns `[lo, hi)`, at least `LANES` long, or `lo == hi == ow`.
    pub lo: usize,
    pub hi: usize,
}

impl Window {
    /// Finds the interior run for vectors of `lanes` outputs that read
    /// `extra` elements past their last tap (1 for the stride-2 pair loads).
    pub fn new(g: PoolGeometry, lanes: usize, extra: usize) -> Window {
        let [_, w] = g.in_hw;
        let [_, ow] = g.out_hw;
        let (s, pad) = (g.stride[1], g.pad_before[1]);
        let reach = (g.kernel[1] - 1) * g.dilation[1] + extra;
        // First column whose window starts at or right of column 0.
        let lo = pad.div_ceil(s);
        // Columns with o*s - pad + reach < w, i.e. o*s < w + pad - reach.
        let hi = match (w + pad).checked_sub(reach) {
            Some(lim) if lim > 0 => ((lim - 1) / s + 1).min(ow),
            _ => 0,
        };
        if hi >= lo && hi - lo >= lanes { Window { g, lo, hi } } else { Window { g, lo: ow, hi: ow } }
    }

    /// Input rows of output row `oy`: the valid kernel rows and the input row
    /// of kernel row 0 plus `pad` (so row `ky` is `base + ky*dh - pad`).
    #[inline(always)]
    fn rows(&self, oy: usize) -> (usize, usize) {
        let g = &self.g;
        tap_range(oy, g.stride[0], g.dilation[0], g.pad_before[0], g.kernel[0], g.in_hw[0])
    }

    #[inline(always)]
    fn cols(&self, ox: usize) -> (usize, usize) {
        let g = &self.g;
        tap_range(ox, g.stride[1], g.dilation[1], g.pad_before[1], g.kernel[1], g.in_hw[1])
    }

    /// Average pooling's divisor factor along one axis for output `o`.
    #[inline(always)]
    fn avg_factor(
        divisor: Divisor,
        range: (usize, usize),
        o: usize,
        s: usize,
        pad: usize,
        pad_after: usize,
        k: usize,
        n: usize,
    ) -> usize {
        match divisor {
            Divisor::Override(_) => 1,
            // The window clipped to the padded input.
            Divisor::IncludePad => (o * s + k).min(n + pad + pad_after) - o * s,
            Divisor::ExcludePad => range.1 - range.0,
        }
    }
}

/// Max pooling of `planes` planes, with indices when `IDX`. `SW` is the
/// column stride when it is 1 or 2 (loads specialized), 0 for any other.
///
/// # Safety
/// `x` holds `planes * h * w` readable floats, `y` (and `idx` when `IDX`)
/// `planes * oh * ow` writable elements; `win` was built for `S::LANES` and
/// `extra = (SW == 2) as usize`; the column stride is `SW` unless `SW == 0`,
/// and `SW == 0` only with one lane; plane indices fit `S::I`.
#[inline(always)]
pub(crate) unsafe fn max_planes<S: Simd, const SW: usize, const IDX: bool>(
    win: &Window,
    x: *const f32,
    y: *mut f32,
    idx: *mut i64,
    planes: usize,
) {
    let g = &win.g;
    let ([h, w], [oh, ow]) = (g.in_hw, g.out_hw);
    let ([sh, sw], [dh, dw], [pt, pl]) = (g.stride, g.dilation, g.pad_before);
    let kw = g.kernel[1];
    let l = S::LANES;
    // SAFETY: the caller's contract covers every pointer formed below: rows
    // and columns come from `tap_range` (border) or from the interior run,
    // whose windows (plus `extra`) lie inside the row by construction.
    unsafe {
        let steps = S::lane_steps(sw);
        for p in 0..planes {
            let xp = x.add(p * h * w);
            for oy in 0..oh {
                let (ky0, ky1) = win.rows(oy);
                let yrow = y.add((p * oh + oy) * ow);
                let irow = if IDX { idx.add((p * oh + oy) * ow) } else { idx };
                let border = |ox: usize| {
                    let (kx0, kx1) = win.cols(ox);
                    let mut best = f32::NEG_INFINITY;
                    let mut bi = -1i64;
                    for ky in ky0..ky1 {
                        let iy = oy * sh + ky * dh - pt;
                        for kx in kx0..kx1 {
                            let ix = ox * sw + kx * dw - pl;
                            let v = *xp.add(iy * w + ix);
                            if bi < 0 || v > best || v.is_nan() {
                                best = v;
                                bi = (iy * w + ix) as i64;
                            }
                        }
                    }
                    *yrow.add(ox) = best;
                    if IDX {
                        *irow.add(ox) = bi;
                    }
                };
                (0..win.lo).for_each(border);
                let mut ox0 = win.lo;
                while ox0 < win.hi {
                    let c0 = ox0 * sw - pl;
                    let mut best = S::splat(f32::NEG_INFINITY);
                    // Index of the first tap: kept if every value is -inf.
                    let mut bi = S::index((oy * sh + ky0 * dh - pt) * w + c0, steps);
                    for ky in ky0..ky1 {
                        let iy = oy * sh + ky * dh - pt;
                        let r = xp.add(iy * w);
                        let mut take = |c: usize, v: S::F| {
                            if IDX {
                                (best, bi) = S::max_nan_idx(best, bi, v, S::index(iy * w + c, steps));
                            } else {
                                best = S::max_nan(best, v);
                            }
                        };
                        let mut kx = 0;
                        while kx < kw {
                            let c = c0 + kx * dw;
                            if SW == 2 && dw == 1 && kx + 1 < kw {
                                let (e, o) = S::load_pair(r.add(c));
                                take(c, e);
                                take(c + 1, o);
                                kx += 2;
                                continue;
                            }
                            let v = match SW {
                                1 => S::load(r.add(c)),
                                2 => S::load_even(r.add(c)),
                                _ => S::load_strided(r.add(c), sw),
                            };
                            take(c, v);
                            kx += 1;
                        }
                    }
                    S::store(yrow.add(ox0), best);
                    if IDX {
                        S::store_idx(irow.add(ox0), bi);
                    }
                    ox0 = if ox0 + l >= win.hi { win.hi } else { (ox0 + l).min(win.hi - l) };
                }
                (win.hi..ow).for_each(border);
            }
        }
    }
}

/// Average pooling of `planes` planes with PyTorch's divisor rules.
///
/// # Safety
/// As [`max_planes`] without indices.
#[inline(always)]
pub(crate) unsafe fn avg_planes<S: Simd, const SW: usize>(
    win: &Window,
    divisor: Divisor,
    x: *const f32,
    y: *mut f32,
    planes: usize,
) {
    let g = &win.g;
    let ([h, w], [oh, ow]) = (g.in_hw, g.out_hw);
    let ([sh, sw], [pt, pl], [pb, pr]) = (g.stride, g.pad_before, g.pad_after);
    let [kh, kw] = g.kernel;
    let l = S::LANES;
    // SAFETY: as in `max_planes` (average pooling has no dilation, so the
    // tap columns of a window are `c0..c0 + kw`).
    unsafe {
        for p in 0..planes {
            let xp = x.add(p * h * w);
            for oy in 0..oh {
                let rows = win.rows(oy);
                let (ky0, ky1) = rows;
                let fy = Window::avg_factor(divisor, rows, oy, sh, pt, pb, kh, h);
                let yrow = y.add((p * oh + oy) * ow);
                let border = |ox: usize| {
                    let cols = win.cols(ox);
                    let mut sum = 0.0f32;
                    for ky in ky0..ky1 {
                        let r = xp.add((oy * sh + ky - pt) * w);
                        for kx in cols.0..cols.1 {
                            sum += *r.add(ox * sw + kx - pl);
                        }
                    }
                    let d = match divisor {
                        Divisor::Override(d) => d,
                        _ => fy * Window::avg_factor(divisor, cols, ox, sw, pl, pr, kw, w),
                    };
                    *yrow.add(ox) = sum / d as f32;
                };
                (0..win.lo).for_each(border);
                // Interior windows cover kw columns in both divisor modes.
                let d = match divisor {
                    Divisor::Override(d) => d,
                    _ => fy * kw,
                };
                let inv = S::splat(1.0 / d as f32);
                let mut ox0 = win.lo;
                while ox0 < win.hi {
                    let c0 = ox0 * sw - pl;
                    let mut sum = S::splat(0.0);
                    for ky in ky0..ky1 {
                        let r = xp.add((oy * sh + ky - pt) * w + c0);
                        let mut kx = 0;
                        while kx < kw {
                            if SW == 2 && kx + 1 < kw {
                                let (e, o) = S::load_pair(r.add(kx));
                                sum = S::add(sum, S::add(e, o));
                                kx += 2;
                                continue;
                            }
                            let v = match SW {
                                1 => S::load(r.add(kx)),
                                2 => S::load_even(r.add(kx)),
                                _ => S::load_strided(r.add(kx), sw),
                            };
                            sum = S::add(sum, v);
                            kx += 1;
                        }
                    }
                    S::store(yrow.add(ox0), S::mul(sum, inv));
                    ox0 = if ox0 + l >= win.hi { win.hi } else { (ox0 + l).min(win.hi - l) };
                }
                (win.hi..ow).for_each(border);
            }
        }
    }
}
