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

use aligned_vec::{AVec, ConstAlign};

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

/// A plan's geometry with everything per row and column found once: the
/// interior column run, the valid taps of each output row and column, and
/// average pooling's reciprocal divisors.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    pub g: PoolGeometry,
    /// Interior output columns `[lo, hi)`, at least `LANES` long, or `lo == hi == ow`.
    pub lo: usize,
    pub hi: usize,
    /// Valid kernel rows `ky0..ky1` of each output row.
    pub rows: Vec<(usize, usize)>,
    /// Valid kernel columns `kx0..kx1` of each output column.
    pub cols: Vec<(usize, usize)>,
    /// Average pooling: rows of `ow` reciprocal divisors, one per row
    /// factor (`divisor = row factor * column factor` unless overridden),
    /// and the offset of each output row's one.
    pub recip: Vec<f32>,
    pub recip_row: Vec<usize>,
    /// Average pooling's flat path, where it applies.
    pub flat: Option<FlatAvg>,
    /// The fused kernel's tables for 3-wide flat averages.
    pub avg3: Option<super::fused::Avg3>,
}

/// A 64-byte aligned table, so that vectors from its start load whole lines.
pub(crate) type Table = AVec<f32, ConstAlign<64>>;

/// Planes up to this many outputs take average pooling's flat path.
const FLAT_MAX: usize = 4096;
/// Windows up to this wide take it (and left paddings up to 16 floats, the
/// offset of the column sums in their buffer).
const FLAT_KW: usize = 9;

/// Average pooling with unit strides, output rows as wide as the input rows
/// (`ow == w`), on small planes: each pass runs over the whole plane as one
/// row-major run instead of row by row, so short rows cost no more than long
/// ones. The windows' sums along that run reach across row ends; these
/// masks clear such taps.
#[derive(Clone, Debug)]
pub(crate) struct FlatAvg {
    /// Each output's reciprocal divisor, row-major.
    pub recip: Table,
    /// For each window column `kx`, each output's mask: all ones where the
    /// tap lies inside its row, zero where it would reach into the next or
    /// previous row. Empty for column `pl`, inside for every output.
    pub masks: Vec<Table>,
}

impl FlatAvg {
    /// The flat path of `win` (an average) for vectors of `lanes`, if it applies.
    pub fn new(win: &Window, lanes: usize) -> Option<FlatAvg> {
        let g = &win.g;
        let ([_, w], [oh, ow]) = (g.in_hw, g.out_hw);
        let n = oh * ow;
        // Tables of kw planes' size: for windows up to FLAT_KW wide.
        let narrow = g.kernel[1] <= FLAT_KW && g.pad_before[1] <= 16;
        if g.stride != [1, 1] || ow != w || n < lanes || n > FLAT_MAX || !narrow {
            return None;
        }
        let pl = g.pad_before[1];
        let recip = AVec::from_iter(64, (0..n).map(|j| win.recip[win.recip_row[j / w] + j % w]));
        let inside = |kx: usize, j: usize| (j % w + kx).checked_sub(pl).is_some_and(|c| c < w);
        let mask = |kx: usize| (0..n).map(move |j| f32::from_bits(if inside(kx, j) { !0 } else { 0 }));
        let masks =
            (0..g.kernel[1]).map(|kx| if kx == pl { AVec::new(64) } else { AVec::from_iter(64, mask(kx)) }).collect();
        Some(FlatAvg { recip, masks })
    }
}

/// The divisor factor of output `o` along one axis, whose valid taps are
/// `taps`: the window clipped to the padded input, or the taps inside.
fn div_factor(divisor: Divisor, taps: (usize, usize), o: usize, s: usize, k: usize, padded: usize) -> usize {
    match divisor {
        Divisor::Override(_) => 1,
        Divisor::IncludePad => (o * s + k).min(padded) - o * s,
        Divisor::ExcludePad => taps.1 - taps.0,
    }
}

impl Window {
    /// Finds the interior run for vectors of `lanes` outputs (which read
    /// nothing outside their windows). The caller has checked that every
    /// window covers an input element.
    pub fn new(g: PoolGeometry, divisor: Divisor, lanes: usize) -> Window {
        let ([h, w], [oh, ow]) = (g.in_hw, g.out_hw);
        let (s, pad) = (g.stride[1], g.pad_before[1]);
        let reach = (g.kernel[1] - 1) * g.dilation[1];
        // First column whose window starts at or right of column 0.
        let lo = pad.div_ceil(s);
        // Columns with o*s - pad + reach < w, i.e. o*s < w + pad - reach.
        let hi = match (w + pad).checked_sub(reach) {
            Some(lim) if lim > 0 => ((lim - 1) / s + 1).min(ow),
            _ => 0,
        };
        let (lo, hi) = if hi >= lo && hi - lo >= lanes { (lo, hi) } else { (ow, ow) };
        let axis = |a: usize, n: usize, len: usize| -> Vec<(usize, usize)> {
            (0..len).map(|o| tap_range(o, g.stride[a], g.dilation[a], g.pad_before[a], g.kernel[a], n)).collect()
        };
        let (rows, cols) = (axis(0, h, oh), axis(1, w, ow));
        let factors = |a: usize, n: usize, taps: &[(usize, usize)]| -> Vec<usize> {
            let padded = n + g.pad_before[a] + g.pad_after[a];
            taps.iter().enumerate().map(|(o, &t)| div_factor(divisor, t, o, g.stride[a], g.kernel[a], padded)).collect()
        };
        let (row_div, col_div) = (factors(0, h, &rows), factors(1, w, &cols));
        // Row factors lie in 1..=kh (1 when overridden): one reciprocal row each.
        let factors_y = if let Divisor::Override(_) = divisor { 1 } else { g.kernel[0] };
        let recip = (1..=factors_y)
            .flat_map(|fy| {
                col_div.iter().map(move |&fx| match divisor {
                    Divisor::Override(d) => (1.0 / d as f64) as f32,
                    _ => (1.0 / (fy * fx) as f64) as f32,
                })
            })
            .collect();
        let recip_row = row_div.iter().map(|&fy| (fy - 1) * ow).collect();
        Window { g, lo, hi, rows, cols, recip, recip_row, flat: None, avg3: None }
    }
}

/// Loads the columns `c, c + sw, ...` of one vector: plain, deinterleaved
/// (stride 2) or one lane at a time (any stride, [`Scalar`](super::simd::Scalar)).
///
/// # Safety
/// The elements named are readable.
#[inline(always)]
unsafe fn load_cols<S: Simd, const SW: usize>(p: *const f32, sw: usize) -> S::F {
    // SAFETY: forwarded from the caller.
    unsafe {
        match SW {
            1 => S::load(p),
            2 => S::load_even(p),
            _ => S::load_strided(p, sw),
        }
    }
}

/// One kernel row of a vector of max windows: `kw` taps `dw` apart from
/// `xp[at]` (the row's first tap), reduced in order, the first tap taken as
/// is. Stride 2 without dilation loads two taps with one pair load.
///
/// # Safety
/// Every tap of every lane is readable.
#[inline(always)]
pub(crate) unsafe fn max_row<S: Simd, const SW: usize, const KW: usize, const IDX: bool>(
    xp: *const f32,
    at: usize,
    kw: usize,
    dw: usize,
    sw: usize,
    steps: S::I,
) -> (S::F, S::I) {
    let kw = if KW > 0 { KW } else { kw };
    // SAFETY: forwarded from the caller.
    unsafe {
        let r = xp.add(at);
        let (mut best, mut bi, mut kx);
        if !IDX && SW == 2 && dw == 1 && kw == 3 {
            // Taps 0, 1 and 2 of lane i are r[2i], r[2i + 1], r[2i + 2]: the
            // third is the even vector one lane on, its last lane r[2 * LANES].
            let (e, o) = S::load_pair(r);
            let t = S::shift_in(e, *r.add(2 * S::LANES));
            return (S::max_nan(S::max_nan(e, o), t), S::index(at, steps));
        }
        if SW == 2 && dw == 1 && kw >= 2 {
            let (e, o) = S::load_pair(r);
            (best, bi) = (e, S::index(at, steps));
            if IDX {
                (best, bi) = S::max_nan_idx(best, bi, o, S::index(at + 1, steps));
            } else {
                best = S::max_nan(best, o);
            }
            kx = 2;
        } else {
            (best, bi) = (load_cols::<S, SW>(r, sw), S::index(at, steps));
            kx = 1;
        }
        while kx < kw {
            let c = kx * dw;
            if SW == 2 && dw == 1 && kx + 1 < kw {
                let (e, o) = S::load_pair(r.add(c));
                if IDX {
                    (best, bi) = S::max_nan_idx(best, bi, e, S::index(at + c, steps));
                    (best, bi) = S::max_nan_idx(best, bi, o, S::index(at + c + 1, steps));
                } else {
                    best = S::max_nan(S::max_nan(best, e), o);
                }
                kx += 2;
            } else {
                let v = load_cols::<S, SW>(r.add(c), sw);
                if IDX {
                    (best, bi) = S::max_nan_idx(best, bi, v, S::index(at + c, steps));
                } else {
                    best = S::max_nan(best, v);
                }
                kx += 1;
            }
        }
        (best, bi)
    }
}

/// One kernel row of a vector of average windows: the sum of `kw`
/// adjacent taps from `r`.
///
/// # Safety
/// As [`max_row`].
#[inline(always)]
pub(crate) unsafe fn sum_row<S: Simd, const SW: usize, const KW: usize>(r: *const f32, kw: usize, sw: usize) -> S::F {
    let kw = if KW > 0 { KW } else { kw };
    // SAFETY: forwarded from the caller.
    unsafe {
        let (mut sum, mut kx);
        if SW == 2 && kw >= 2 {
            let (e, o) = S::load_pair(r);
            (sum, kx) = (S::add(e, o), 2);
        } else {
            (sum, kx) = (load_cols::<S, SW>(r, sw), 1);
        }
        while kx < kw {
            if SW == 2 && kx + 1 < kw {
                let (e, o) = S::load_pair(r.add(kx));
                sum = S::add(sum, S::add(e, o));
                kx += 2;
            } else {
                sum = S::add(sum, load_cols::<S, SW>(r.add(kx), sw));
                kx += 1;
            }
        }
        sum
    }
}

/// The next vector start of the interior run after `ox0`, the last one
/// overlapping its neighbour; `hi` when done.
#[inline(always)]
pub(crate) fn next_vector(ox0: usize, hi: usize, lanes: usize) -> usize {
    if ox0 + lanes >= hi { hi } else { (ox0 + lanes).min(hi - lanes) }
}

/// The max window of output `(oy, ox)` of plane `xp` one tap at a time,
/// with bounds from the tap tables, and its flat index.
///
/// # Safety
/// `xp` is a plane `win` describes; `(oy, ox)` is an output of it.
#[inline(always)]
pub(crate) unsafe fn max_border(win: &Window, xp: *const f32, oy: usize, ox: usize) -> (f32, usize) {
    let g = &win.g;
    let w = g.in_hw[1];
    let ([sh, sw], [dh, dw], [pt, pl]) = (g.stride, g.dilation, g.pad_before);
    let ((ky0, ky1), (kx0, kx1)) = (win.rows[oy], win.cols[ox]);
    // SAFETY: the tap tables keep every tap inside the plane.
    unsafe {
        // The first tap is taken as is; the rest by the rule, as selects.
        let first = (oy * sh + ky0 * dh - pt) * w + ox * sw + kx0 * dw - pl;
        let (mut best, mut bi) = (*xp.add(first), first);
        for ky in ky0..ky1 {
            let r = (oy * sh + ky * dh - pt) * w + ox * sw;
            for kx in kx0..kx1 {
                let i = r + kx * dw - pl;
                let v = *xp.add(i);
                let take = (v > best) | v.is_nan();
                best = if take { v } else { best };
                bi = if take { i } else { bi };
            }
        }
        (best, bi)
    }
}

/// Max pooling of `planes` planes, with indices when `IDX`. `SW` is the
/// column stride when it is 1 or 2 (loads specialized), 0 for any other;
/// `KW` the window width when specialized (loops unrolled), else 0.
///
/// Each kernel row is reduced on its own and the row results are then
/// combined in row order: the same result as the sequential row-major scan
/// (the last NaN, else the first maximum), with chains only `kw` and `kh`
/// long, and two vectors are in flight per step.
///
/// # Safety
/// `x` holds `planes * h * w` readable floats, `y` (and `idx` when `IDX`)
/// `planes * oh * ow` writable elements; `win` was built for `S::LANES`; the column stride is `SW` unless `SW == 0`,
/// and `SW == 0` only with one lane; `KW` is 0 or the window width; plane
/// indices fit `S::I`.
#[inline(always)]
pub(crate) unsafe fn max_planes<S: Simd, const SW: usize, const KW: usize, const IDX: bool>(
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
    // and columns come from the tap tables (border) or from the interior
    // run, whose windows lie inside the row by construction.
    unsafe {
        let steps = S::lane_steps(sw);
        for p in 0..planes {
            let xp = x.add(p * h * w);
            for oy in 0..oh {
                let (ky0, ky1) = win.rows[oy];
                let yrow = y.add((p * oh + oy) * ow);
                let irow = if IDX { idx.add((p * oh + oy) * ow) } else { idx };
                let border = |ox: usize| {
                    let (best, bi) = max_border(win, xp, oy, ox);
                    *yrow.add(ox) = best;
                    if IDX {
                        *irow.add(ox) = bi as i64;
                    }
                };
                (0..win.lo).for_each(border);
                let row0 = (oy * sh + ky0 * dh - pt) * w;
                let mut ox0 = win.lo;
                while ox0 < win.hi {
                    // Two vectors when both fit, so two chains are in flight.
                    let pair = ox0 + 2 * l <= win.hi;
                    let c0 = ox0 * sw - pl;
                    let c1 = if pair { c0 + l * sw } else { c0 };
                    let (mut b0, mut i0) = max_row::<S, SW, KW, IDX>(xp, row0 + c0, kw, dw, sw, steps);
                    let (mut b1, mut i1) = max_row::<S, SW, KW, IDX>(xp, row0 + c1, kw, dw, sw, steps);
                    for ky in ky0 + 1..ky1 {
                        let at = (oy * sh + ky * dh - pt) * w;
                        let (v0, vi0) = max_row::<S, SW, KW, IDX>(xp, at + c0, kw, dw, sw, steps);
                        let (v1, vi1) = max_row::<S, SW, KW, IDX>(xp, at + c1, kw, dw, sw, steps);
                        if IDX {
                            (b0, i0) = S::max_nan_idx(b0, i0, v0, vi0);
                            (b1, i1) = S::max_nan_idx(b1, i1, v1, vi1);
                        } else {
                            b0 = S::max_nan(b0, v0);
                            b1 = S::max_nan(b1, v1);
                        }
                    }
                    S::store(yrow.add(ox0), b0);
                    if IDX {
                        S::store_idx(irow.add(ox0), i0);
                    }
                    if pair {
                        S::store(yrow.add(ox0 + l), b1);
                        if IDX {
                            S::store_idx(irow.add(ox0 + l), i1);
                        }
                        ox0 = next_vector(ox0 + l, win.hi, l);
                    } else {
                        ox0 = next_vector(ox0, win.hi, l);
                    }
                }
                (win.hi..ow).for_each(border);
            }
        }
    }
}
