//! Separable pooling: max (without indices) and average windows reduced
//! along one axis for a band of rows into row buffers, then along the other
//! from those buffers.
//!
//! Working a band at a time keeps each buffer row's stores well before its
//! loads: a load that straddles two recent overlapping stores (the last
//! vector of a row overlaps the one before it) would wait for both to reach
//! the cache, once per row; across a band of rows they have long done so.

use aligned_vec::{AVec, ConstAlign};

use super::simd::Simd;
use super::window::{FlatAvg, Window, max_row, sum_row};

/// Runs `$body` with `$c` at the vector starts covering `[0, $n)` (`$n >=
/// $l` lanes): `0, $l, ...`, and a last one at `$n - $l` that overlaps its
/// neighbour when `$l` does not divide `$n` (outputs are pure functions of
/// the input: writing one twice is harmless).
macro_rules! each_vector {
    ($c:ident < $n:expr, $l:expr, $body:block) => {{
        let (n, l) = ($n, $l);
        let mut $c = 0;
        while $c + l <= n {
            $body
            $c += l;
        }
        if $c < n {
            let $c = n - l;
            $body
        }
    }};
}

/// Row buffers of a band hold about this many floats (32 KiB, in L1).
const BAND_FLOATS: usize = 8192;

/// Output rows per band when each takes `per_row` buffer floats after the
/// first `first` ones: as many as fit [`BAND_FLOATS`], 8 to 32. Long bands
/// keep a row's buffer stores well before its loads (see the module notes).
fn band_rows(per_row: usize, first: usize) -> usize {
    (BAND_FLOATS.saturating_sub(first) / per_row.max(1)).clamp(8, 32)
}

/// Row buffers, 64-byte aligned, zeroed.
type Rows = AVec<f32, ConstAlign<64>>;

fn rows(len: usize) -> Rows {
    AVec::from_iter(64, std::iter::repeat_n(0.0, len))
}

/// Sums the rows of `w` floats from `r` (one input row apart) column by
/// column into `out[0..w]`: `N` rows (1 to 3), or `n` when `N` is 0.
///
/// # Safety
/// The rows are readable, `out[0..w]` writable, `w >= LANES`.
#[inline(always)]
unsafe fn sum_rows<S: Simd, const N: usize>(r: *const f32, w: usize, n: usize, out: *mut f32) {
    let n = if N > 0 { N } else { n };
    // SAFETY: every vector lies below w in a row or in `out`.
    unsafe {
        each_vector!(c < w, S::LANES, {
            let mut s = S::load(r.add(c));
            for k in 1..n {
                s = S::add(s, S::load(r.add(k * w + c)));
            }
            S::store(out.add(c), s);
        });
    }
}

/// Average pooling of `planes` planes with PyTorch's divisor rules.
///
/// For a band of output rows, each row's input rows are summed column by
/// column into a row buffer with zeros on both sides (as far as any window
/// reaches); then each row's windows are summed along its buffer, border
/// columns alike, and scaled by the reciprocal divisors of its row class:
/// no border case, no per-element check, no division. The zeros add
/// nothing, so the sums equal the sums over the taps inside.
///
/// # Safety
/// As [`max_planes`](super::window::max_planes) without indices; no dilation.
#[inline(always)]
pub(crate) unsafe fn avg_planes<S: Simd, const SW: usize, const KW: usize>(
    win: &Window,
    x: *const f32,
    y: *mut f32,
    planes: usize,
) {
    if let (Some(flat), 0 | 1) = (&win.flat, SW) {
        // SAFETY: forwarded; the flat path is for unit strides.
        return unsafe { avg_planes_flat::<S, KW>(win, flat, x, y, planes) };
    }
    let g = &win.g;
    let ([h, w], [oh, ow]) = (g.in_hw, g.out_hw);
    let ([sh, sw], [pt, pl]) = (g.stride, g.pad_before);
    let kw = g.kernel[1];
    let l = S::LANES;
    // A vector of windows from output column ox0 <= max(ow, LANES) - LANES
    // reads below ox0*sw + kw + 2*LANES (pair loads read 2*LANES).
    let pitch = (ow.max(l) * sw + kw + 2 * l).max(pl + w).next_multiple_of(16);
    let band_len = band_rows(pitch, 0);
    let mut buf = rows(band_len * pitch);
    let mut tail = [0.0f32; 16];
    // SAFETY: as in `max_planes` (no dilation); the row tap table keeps the
    // summed rows inside the plane, and the buffer is sized above.
    unsafe {
        let buf = buf.as_mut_ptr();
        for p in 0..planes {
            let xp = x.add(p * h * w);
            for oy0 in (0..oh).step_by(band_len) {
                let band = band_len.min(oh - oy0);
                for i in 0..band {
                    let (ky0, ky1) = win.rows[oy0 + i];
                    let r = xp.add(((oy0 + i) * sh + ky0 - pt) * w);
                    let (n, out) = (ky1 - ky0, buf.add(i * pitch + pl));
                    match n {
                        _ if w < l => {
                            for c in 0..w {
                                *out.add(c) = (1..n).fold(*r.add(c), |s, k| s + *r.add(k * w + c));
                            }
                        }
                        1 => sum_rows::<S, 1>(r, w, n, out),
                        2 => sum_rows::<S, 2>(r, w, n, out),
                        3 => sum_rows::<S, 3>(r, w, n, out),
                        _ => sum_rows::<S, 0>(r, w, n, out),
                    }
                }
                for i in 0..band {
                    let oy = oy0 + i;
                    let (b, recip) = (buf.add(i * pitch), win.recip.as_ptr().add(win.recip_row[oy]));
                    let yrow = y.add((p * oh + oy) * ow);
                    if ow < l {
                        S::store(tail.as_mut_ptr(), sum_row::<S, SW, KW>(b, kw, sw));
                        (0..ow).for_each(|ox| *yrow.add(ox) = tail[ox] * *recip.add(ox));
                        continue;
                    }
                    each_vector!(ox0 < ow, l, {
                        let s = sum_row::<S, SW, KW>(b.add(ox0 * sw), kw, sw);
                        S::store(yrow.add(ox0), S::mul(s, S::load(recip.add(ox0))));
                    });
                }
            }
        }
    }
}

/// The output rows `[a, b)` whose windows cover all `kh` kernel rows, as
/// found in the row tap table: contiguous, since only the first and last
/// rows are clipped (empty if there are none).
fn full_rows(win: &Window) -> (usize, usize) {
    let kh = win.g.kernel[0];
    let full = |&(lo, hi): &(usize, usize)| lo == 0 && hi == kh;
    let a = win.rows.iter().position(full).unwrap_or(0);
    let b = a + win.rows[a..].iter().take_while(|t| full(t)).count();
    (a, b)
}

/// Average pooling on [`FlatAvg`]'s flat path: the column sums of every
/// output row into one run (the rows whose windows have all `kh` rows as
/// one loop), then the windows along that run, masked at row ends, scaled
/// by each output's reciprocal divisor.
///
/// # Safety
/// As [`avg_planes`], with unit strides and `flat` made for `win`.
#[inline(always)]
unsafe fn avg_planes_flat<S: Simd, const KW: usize>(
    win: &Window,
    flat: &FlatAvg,
    x: *const f32,
    y: *mut f32,
    planes: usize,
) {
    let g = &win.g;
    let ([h, w], [oh, _]) = (g.in_hw, g.out_hw);
    let (pt, pl) = (g.pad_before[0], g.pad_before[1]);
    let kh = g.kernel[0];
    let kw = if KW > 0 { KW } else { g.kernel[1] };
    let (n, l) = (oh * w, S::LANES);
    let (fa, fb) = full_rows(win);
    // Output j's column sum sits at v[j], 64-byte aligned from v = vbuf +
    // 16 >= pl (or that + stride), zeros around as far as a vector of
    // windows reads.
    // Two buffers (see below), each `stride` floats.
    let stride = (16 + n + kw + l).next_multiple_of(16);
    let mut vbuf = rows(2 * stride);
    let masks: Vec<*const f32> = flat.masks.iter().map(|m| m.as_ptr()).collect();
    // SAFETY: the row tap table keeps the summed rows inside the plane; a
    // vector of windows from j <= n - LANES reads v[j - pl .. j + LANES + kw - 1 - pl],
    // inside the buffer, and masks and reciprocals at [j, j + LANES).
    unsafe {
        // Plane p's column sums go to buffer p % 2 and are read back after
        // plane p + 1's are written: by then the stores have left the store
        // buffer, so the unaligned loads of the window sums (each spans two
        // stores) do not wait for them.
        let vs = [vbuf.as_mut_ptr().add(16), vbuf.as_mut_ptr().add(16 + stride)];
        for p in 0..=planes {
            if p < planes {
                let (xp, v) = (x.add(p * h * w), vs[p % 2]);
                // The column sums of rows fa..fb: one run over rows fa - pt + k.
                if fb > fa {
                    let (src, out) = (xp.add((fa - pt) * w), v.add(fa * w));
                    match kh {
                        2 => sum_run::<S, 2>(src, w, kh, out, (fb - fa) * w),
                        3 => sum_run::<S, 3>(src, w, kh, out, (fb - fa) * w),
                        _ => sum_run::<S, 0>(src, w, kh, out, (fb - fa) * w),
                    }
                }
                for oy in (0..fa).chain(fb..oh) {
                    let (ky0, ky1) = win.rows[oy];
                    sum_run::<S, 0>(xp.add((oy + ky0 - pt) * w), w, ky1 - ky0, v.add(oy * w), w);
                }
            }
            if p == 0 {
                continue;
            }
            let yp = y.add((p - 1) * n);
            let (v, recip) = (vs[(p - 1) % 2].sub(pl), flat.recip.as_ptr());
            each_vector!(j < n, l, {
                let mut s = S::load(v.add(j + pl));
                for kx in 0..kw {
                    if kx != pl {
                        let m = *masks.get_unchecked(kx);
                        s = S::add(s, S::and(S::load(v.add(j + kx)), S::load(m.add(j))));
                    }
                }
                S::store(yp.add(j), S::mul(s, S::load(recip.add(j))));
            });
        }
    }
}

/// Sums `N` rows (`n` when `N` is 0) from `src`, `w` floats apart, column by
/// column into `out[0..len]` (by vectors when `len >= LANES`).
///
/// # Safety
/// `src[k*w .. k*w + len]` is readable for each row `k`, `out[0..len]` writable.
#[inline(always)]
unsafe fn sum_run<S: Simd, const N: usize>(src: *const f32, w: usize, n: usize, out: *mut f32, len: usize) {
    let n = if N > 0 { N } else { n };
    // SAFETY: every access lies in the rows' or the output's range.
    unsafe {
        if len < S::LANES {
            for c in 0..len {
                *out.add(c) = (1..n).fold(*src.add(c), |s, k| s + *src.add(k * w + c));
            }
            return;
        }
        each_vector!(c < len, S::LANES, {
            let mut s = S::load(src.add(c));
            for k in 1..n {
                s = S::add(s, S::load(src.add(k * w + c)));
            }
            S::store(out.add(c), s);
        });
    }
}

/// Max pooling without indices of `planes` planes whose rows are consecutive
/// (no row dilation) and overlap or touch (row stride at most the window
/// height). For a band of output rows, the window maxima along each of its
/// input rows go into row buffers (border columns one tap at a time, the
/// interior by vectors); each output row then takes the maximum down its
/// rows' buffers, in row order.
///
/// The max rule is a monoid (the last NaN, else the first maximum), so row
/// results combined in row order equal the row-major scan bit for bit.
///
/// # Safety
/// As [`max_planes`](super::window::max_planes) without indices, with row
/// dilation 1 and row stride at most the window height.
#[inline(always)]
pub(crate) unsafe fn max_planes<S: Simd, const SW: usize, const KW: usize>(
    win: &Window,
    x: *const f32,
    y: *mut f32,
    planes: usize,
) {
    let g = &win.g;
    let ([h, w], [oh, ow]) = (g.in_hw, g.out_hw);
    let ([sh, sw], [dw, pl], pt) = (g.stride, [g.dilation[1], g.pad_before[1]], g.pad_before[0]);
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    let l = S::LANES;
    let pitch = ow.max(l).next_multiple_of(16);
    // The input rows of a band of output rows.
    let band_len = band_rows(sh * pitch, kh * pitch);
    let mut buf = rows(((band_len - 1) * sh + kh) * pitch);
    // SAFETY: as in `max_planes`: border taps come from the column tap table,
    // interior windows lie inside their row; buffer rows hold `pitch >= ow`
    // floats, and a band's rows are at most (band_len-1)*sh + kh.
    unsafe {
        let steps = S::lane_steps(sw);
        let buf = buf.as_mut_ptr();
        for p in 0..planes {
            let xp = x.add(p * h * w);
            for oy0 in (0..oh).step_by(band_len) {
                let band = band_len.min(oh - oy0);
                let first = oy0 * sh + win.rows[oy0].0 - pt;
                let last = (oy0 + band - 1) * sh + win.rows[oy0 + band - 1].1 - pt;
                for iy in first..last {
                    let (r, out) = (xp.add(iy * w), buf.add((iy - first) * pitch));
                    let border = |ox: usize| {
                        let (kx0, kx1) = win.cols[ox];
                        let mut best = *r.add(ox * sw + kx0 * dw - pl);
                        for kx in kx0 + 1..kx1 {
                            let v = *r.add(ox * sw + kx * dw - pl);
                            best = if (v > best) | v.is_nan() { v } else { best };
                        }
                        *out.add(ox) = best;
                    };
                    for ox in 0..win.lo {
                        border(ox);
                    }
                    for ox in win.hi..ow {
                        border(ox);
                    }
                    // The interior is empty or at least LANES wide.
                    if win.lo < win.hi {
                        let out = out.add(win.lo);
                        let r = r.add(win.lo * sw - pl);
                        each_vector!(c < win.hi - win.lo, l, {
                            let v = max_row::<S, SW, KW, false>(r, c * sw, kw, dw, sw, steps).0;
                            S::store(out.add(c), v);
                        });
                    }
                }
                for i in 0..band {
                    let oy = oy0 + i;
                    let (ky0, ky1) = win.rows[oy];
                    let top = buf.add((oy * sh + ky0 - pt - first) * pitch);
                    let n = ky1 - ky0;
                    let yrow = y.add((p * oh + oy) * ow);
                    if ow < l {
                        for ox in 0..ow {
                            let mut best = *top.add(ox);
                            for k in 1..n {
                                let v = *top.add(k * pitch + ox);
                                best = if (v > best) | v.is_nan() { v } else { best };
                            }
                            *yrow.add(ox) = best;
                        }
                        continue;
                    }
                    match n {
                        2 => max_down::<S, 2>(top, pitch, n, yrow, ow),
                        3 => max_down::<S, 3>(top, pitch, n, yrow, ow),
                        _ => max_down::<S, 0>(top, pitch, n, yrow, ow),
                    }
                }
            }
        }
    }
}

/// Each output column's maximum down `N` buffer rows (`n` when `N` is 0)
/// from `top`, `pitch` floats apart, in row order, into `out[0..ow]`
/// (`ow >= LANES`).
///
/// # Safety
/// The rows' `[0, ow)` are readable, `out[0..ow]` writable.
#[inline(always)]
unsafe fn max_down<S: Simd, const N: usize>(top: *const f32, pitch: usize, n: usize, out: *mut f32, ow: usize) {
    let n = if N > 0 { N } else { n };
    // SAFETY: every vector lies below ow in a row or in `out`.
    unsafe {
        each_vector!(c < ow, S::LANES, {
            let mut best = S::load(top.add(c));
            for k in 1..n {
                best = S::max_nan(best, S::load(top.add(k * pitch + c)));
            }
            S::store(out.add(c), best);
        });
    }
}
