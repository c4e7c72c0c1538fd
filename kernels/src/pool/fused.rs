//! One-pass kernels for the commonest 3-wide windows, without row buffers:
//! 3-wide average pooling at unit stride on small planes, and 3-wide max
//! pooling (no indices) at column stride 2. Each keeps a window's taps in
//! registers: neighbouring columns come from lane shifts of vectors already
//! loaded instead of more loads or buffer round trips.

use super::separable::full_rows;
use super::simd::{Scalar, Simd};
use super::window::{Table, Window, max_border};

/// Runs of consecutive output rows whose windows take the same input rows
/// `(first output row, rows in the run, valid kernel rows ky0..ky1)`.
fn row_runs(win: &Window) -> impl Iterator<Item = (usize, usize, (usize, usize))> + '_ {
    let rows = &win.rows;
    let mut a = 0;
    std::iter::from_fn(move || {
        let start = a;
        let taps = *rows.get(start)?;
        a += rows[start..].iter().take_while(|&&t| t == taps).count();
        Some((start, a - start, taps))
    })
}

/// Whether [`avg3_planes`] runs `win`.
pub(crate) fn avg3_applies(win: &Window) -> bool {
    win.avg3.is_some()
}

/// The tables of [`avg3_planes`] for one geometry, in the order it runs.
#[derive(Clone, Debug)]
pub(crate) struct Avg3 {
    /// The runs: first output row, output rows, valid kernel rows `ky0..ky1`
    /// and the offset of the run's first block.
    runs: Vec<(usize, usize, (usize, usize), usize)>,
    /// One block per vector of outputs: its left masks, right masks and
    /// reciprocal divisors, `LANES` each.
    /// Each run's blocks start 64-byte aligned, so a block loads whole lines.
    blocks: Table,
}

impl Avg3 {
    /// The tables for vectors of `lanes`, if `win` is a flat average
    /// ([`FlatAvg`](super::window::FlatAvg): unit strides, `ow == w`) 3
    /// columns wide with one column of padding each side.
    pub fn new(win: &Window, lanes: usize) -> Option<Avg3> {
        let flat = win.flat.as_ref()?;
        let (w, kw, pl) = (win.g.in_hw[1], win.g.kernel[1], win.g.pad_before[1]);
        // Runs shorter than a vector (rows narrower than one) are left to
        // the flat path, which runs them on as one.
        if kw != 3 || pl != 1 || row_runs(win).any(|(_, rows, _)| rows * w < lanes) {
            return None;
        }
        let (mut runs, mut blocks) = (Vec::new(), Vec::new());
        for (oy, rows, taps) in row_runs(win) {
            let (len, l) = (rows * w, lanes);
            blocks.resize(blocks.len().next_multiple_of(16), 0.0);
            runs.push((oy, rows, taps, blocks.len()));
            // The vectors of `avg3_run`: on the grid, then one ending the run.
            let starts = (0..len / l).map(|k| k * l).chain((len % l != 0).then(|| len - l));
            for j in starts {
                let at = oy * w + j;
                for t in [&flat.masks[0], &flat.masks[2], &flat.recip] {
                    blocks.extend_from_slice(&t[at..at + l]);
                }
            }
        }
        Some(Avg3 { runs, blocks: Table::from_iter(64, blocks) })
    }
}

/// Average pooling on [`FlatAvg`](super::window::FlatAvg)'s flat path,
/// 3-wide windows with one column of padding each side ([`Avg3`]). Output
/// rows with the same valid kernel rows form one row-major run: each vector
/// of outputs sums its `n` input rows column by column (`n` loads), takes
/// its left and right neighbours' column sums by lane shifts of the vectors
/// before and after, clears those that lie in another row (the masks) and
/// scales by the reciprocal divisors.
///
/// # Safety
/// As [`max_planes`](super::window::max_planes) without indices, with
/// `avg3_applies(win)`.
#[inline(always)]
pub(crate) unsafe fn avg3_planes<S: Simd>(win: &Window, x: *const f32, y: *mut f32, planes: usize) {
    let Some(avg3) = &win.avg3 else { return };
    let g = &win.g;
    let ([h, w], [oh, _]) = (g.in_hw, g.out_hw);
    let pt = g.pad_before[0];
    // SAFETY: a run of `rows` output rows from `oy` reads input rows
    // oy + ky - pt for ky in ky0..ky1 (inside the plane by the row tap
    // table) over the run's `rows * w` columns; its blocks were laid out
    // for the vectors `avg3_run` takes.
    unsafe {
        for p in 0..planes {
            let (xp, yp) = (x.add(p * h * w), y.add(p * oh * w));
            for &(oy, rows, (ky0, ky1), at) in &avg3.runs {
                let (src, out, blocks) = (xp.add((oy + ky0 - pt) * w), yp.add(oy * w), avg3.blocks.as_ptr().add(at));
                let (len, n) = (rows * w, ky1 - ky0);
                match n {
                    3 => avg3_run::<S, 3>(src, w, n, len, blocks, out),
                    _ => avg3_run::<S, 0>(src, w, n, len, blocks, out),
                }
            }
        }
    }
}

/// One run of [`avg3_planes`]: `len` outputs (`len >= LANES`) from `N` (or
/// `n`) input rows `w` apart at `src`, with the run's blocks.
///
/// (Helpers are functions, not closures: closures do not inherit the
/// shells' target features, so vector operations in them are calls.)
///
/// # Safety
/// `src[k*w .. k*w + len]` is readable for each row `k`, the blocks are
/// the run's, `out[0..len]` is writable.
#[inline(always)]
unsafe fn avg3_run<S: Simd, const N: usize>(
    src: *const f32,
    w: usize,
    n: usize,
    len: usize,
    mut blocks: *const f32,
    out: *mut f32,
) {
    let n = if N > 0 { N } else { n };
    let l = S::LANES;
    // SAFETY: every column read is below len; see the caller.
    unsafe {
        // Emits the vector at j with the next block (they follow in the same order).
        macro_rules! emit {
            ($j:expr, $prev:expr, $cur:expr, $next:expr) => {
                blocks = avg3_emit::<S>(blocks, out.add($j), $prev, $cur, $next)
            };
        }
        let zero = S::splat(0.0);
        let (mut prev, mut cur, mut j) = (zero, col_sums::<S>(src, w, n, 0), 0);
        while j + 2 * l <= len {
            let next = col_sums::<S>(src, w, n, j + l);
            emit!(j, prev, cur, next);
            (prev, cur, j) = (cur, next, j + l);
        }
        // len - 2*LANES < j <= len - LANES: the vector at j, then one ending the run.
        if j + l == len {
            avg3_emit::<S>(blocks, out.add(j), prev, cur, zero);
        } else {
            emit!(j, prev, cur, S::splat(col_sums::<Scalar>(src, w, n, j + l)));
            let last = len - l;
            let before = S::splat(col_sums::<Scalar>(src, w, n, last - 1));
            avg3_emit::<S>(blocks, out.add(last), before, col_sums::<S>(src, w, n, last), zero);
        }
    }
}

/// The column sums of `n` rows `w` apart from `src`, at columns `j..j + LANES`.
///
/// # Safety
/// The columns are readable in every row.
#[inline(always)]
unsafe fn col_sums<S: Simd>(src: *const f32, w: usize, n: usize, j: usize) -> S::F {
    // SAFETY: forwarded from the caller.
    unsafe {
        let mut s = S::load(src.add(j));
        for k in 1..n {
            s = S::add(s, S::load(src.add(k * w + j)));
        }
        s
    }
}

/// A vector of outputs at `out` from the column sums of the vectors before,
/// at and after them and its block. A run starts and ends a row, so the
/// masks clear the lanes that would need anything beyond the run: zeros
/// stand there. Returns the next block.
///
/// # Safety
/// `block[0..3*LANES]` is readable, `out[0..LANES]` writable.
#[inline(always)]
unsafe fn avg3_emit<S: Simd>(block: *const f32, out: *mut f32, prev: S::F, cur: S::F, next: S::F) -> *const f32 {
    let l = S::LANES;
    // SAFETY: forwarded from the caller.
    unsafe {
        let left = S::and(S::prev_lane(prev, cur), S::load(block));
        let right = S::and(S::next_lane(cur, next), S::load(block.add(l)));
        S::store(out, S::mul(S::add(S::add(left, cur), right), S::load(block.add(2 * l))));
        block.wrapping_add(3 * l)
    }
}

/// The end of the vectorized output columns of [`max3_s2_planes`]: lanes
/// `ox` whose pair load `2*ox, 2*ox + 1` (and, without left padding, the
/// tap after it) lies inside the row.
fn max3_hi(win: &Window) -> usize {
    let (w, ow, pl) = (win.g.in_hw[1], win.g.out_hw[1], win.g.pad_before[1]);
    ow.min(if pl == 1 { w / 2 } else { w.saturating_sub(1) / 2 })
}

/// Whether [`max3_s2_planes`] runs `win` for vectors of `lanes`: 3-wide
/// windows at column stride 2, no dilation, at most one column of left
/// padding, and at least one vector of outputs.
pub(crate) fn max3_s2_applies(win: &Window, lanes: usize) -> bool {
    let g = &win.g;
    g.kernel[1] == 3 && g.stride[1] == 2 && g.dilation == [1, 1] && g.pad_before[1] <= 1 && max3_hi(win) >= lanes
}

/// Max pooling without indices of 3-wide windows at column stride 2 (see
/// [`max3_s2_applies`]). Walks down each vector of output columns: each
/// input row's three taps come from one pair load (even and odd columns)
/// and the column before (left padding) or after the pair, shifted in; an
/// output row reduces its rows' results in order, reusing the last row of
/// the one before when they share it. The row maxima taken in row order
/// equal the row-major scan bit for bit (the rule is a monoid), and a left
/// padding tap of -inf changes no value. Columns past the vectors go one
/// output at a time.
///
/// # Safety
/// As [`max_planes`](super::window::max_planes) without indices, with
/// `max3_s2_applies(win, S::LANES)`.
#[inline(always)]
pub(crate) unsafe fn max3_s2_planes<S: Simd>(win: &Window, x: *const f32, y: *mut f32, planes: usize) {
    let g = &win.g;
    let ([h, w], [oh, ow]) = (g.in_hw, g.out_hw);
    let (l, hi) = (S::LANES, max3_hi(win));
    // SAFETY: rows come from the row tap table; lane ox of a vector reads
    // columns 2*ox - 1 (not for ox == 0) to 2*ox + 1 (pl == 1) or 2*ox to
    // 2*ox + 2 (pl == 0), inside the row for ox < hi; border outputs read
    // from the tap tables.
    unsafe {
        for p in 0..planes {
            let (xp, yp) = (x.add(p * h * w), y.add(p * oh * ow));
            // Vector starts: the grid, the last overlapping the one before;
            // two at a time (more independent work per row, and the rows'
            // loads run on through longer stretches of each row).
            let mut starts = (0..hi.div_ceil(l)).map(|k| (k * l).min(hi - l));
            while let Some(c0) = starts.next() {
                // Column 0's left padding as a constant (PL 2), the others'
                // column before loaded.
                match (starts.next(), g.pad_before[1], c0) {
                    (Some(c1), 0, _) => max3_s2_columns::<S, 0, 2>(win, xp, yp, [c0, c1]),
                    (Some(c1), _, 0) => max3_s2_columns::<S, 2, 2>(win, xp, yp, [c0, c1]),
                    (Some(c1), _, _) => max3_s2_columns::<S, 1, 2>(win, xp, yp, [c0, c1]),
                    (None, 0, _) => max3_s2_columns::<S, 0, 1>(win, xp, yp, [c0, c0]),
                    (None, _, 0) => max3_s2_columns::<S, 2, 1>(win, xp, yp, [c0, c0]),
                    (None, _, _) => max3_s2_columns::<S, 1, 1>(win, xp, yp, [c0, c0]),
                }
            }
            for oy in 0..oh {
                for ox in hi..ow {
                    *yp.add(oy * ow + ox) = max_border(win, xp, oy, ox).0;
                }
            }
        }
    }
}

/// `C` (1 or 2) vectors of output columns, from `cs[0]` (and `cs[1]`), of
/// [`max3_s2_planes`], all rows, into the plane `yp`. `PL` is the left
/// padding, or 2 when it is 1 and `cs[0] == 0`.
///
/// # Safety
/// As [`max3_s2_planes`], with `cs[k] + LANES <= max3_hi(win)`.
#[inline(always)]
unsafe fn max3_s2_columns<S: Simd, const PL: usize, const C: usize>(
    win: &Window,
    xp: *const f32,
    yp: *mut f32,
    cs: [usize; 2],
) {
    let g = &win.g;
    let ([_, w], [oh, ow]) = (g.in_hw, g.out_hw);
    let (sh, pt) = (g.stride[0], g.pad_before[0]);
    // Output rows a..b take all 3 rows and share the first with the row
    // before (3 rows at row stride 2): one loop that carries it.
    let (a, b) = if g.kernel[0] == 3 && sh == 2 { full_rows(win) } else { (0, 0) };
    // SAFETY: forwarded from the caller.
    unsafe {
        for &c0 in &cs[..C] {
            let mut last = (usize::MAX, S::splat(0.0));
            for oy in (0..a).chain(b..oh) {
                let (ky0, ky1) = win.rows[oy];
                let mut best = S::splat(0.0);
                for ky in ky0..ky1 {
                    let iy = oy * sh + ky - pt;
                    let m = if iy == last.0 {
                        last.1
                    } else {
                        max3_s2_row::<S>(xp.add(iy * w), c0, pad_of(PL, c0 == cs[0]))
                    };
                    best = if ky == ky0 { m } else { S::max_nan(best, m) };
                    last = (iy, m);
                }
                S::store(yp.add(oy * ow + c0), best);
            }
        }
        if a < b {
            let mut r = xp.add((2 * a - pt) * w);
            let mut carry = [S::splat(0.0); 2];
            for k in 0..C {
                carry[k] = max3_s2_row::<S>(r, cs[k], pad_of(PL, k == 0));
            }
            for oy in a..b {
                for k in 0..C {
                    // The rows' lines a few output rows on, out of L3 in time.
                    let ahead = r.wrapping_add(AHEAD * w + 2 * cs[k]);
                    prefetch(ahead);
                    prefetch(ahead.wrapping_add(16));
                    prefetch(ahead.wrapping_add(w));
                    prefetch(ahead.wrapping_add(w + 16));
                    let m1 = max3_s2_row::<S>(r.add(w), cs[k], pad_of(PL, k == 0));
                    let m2 = max3_s2_row::<S>(r.add(2 * w), cs[k], pad_of(PL, k == 0));
                    S::store(yp.add(oy * ow + cs[k]), S::max_nan(S::max_nan(carry[k], m1), m2));
                    carry[k] = m2;
                }
                r = r.add(2 * w);
            }
        }
    }
}

/// The padding case of [`max3_s2_row`] for the column `first` or not of
/// [`max3_s2_columns`] with `PL`.
#[inline(always)]
fn pad_of(pl: usize, first: bool) -> usize {
    if pl == 2 && !first { 1 } else { pl }
}

/// The maxima of one input row's taps for the vector of outputs from `c0`:
/// without left padding (`pl == 0`), with it (`pl == 1`: the column before
/// is loaded), or at column 0 (`pl == 2`: -inf stands for it). Inlined with
/// a constant `pl`.
///
/// # Safety
/// The row's columns from `2*c0 - 1` (`pl == 1`) or `2*c0` to `2*(c0 +
/// LANES)` (`pl == 0`) or `2*(c0 + LANES) - 1` are readable.
#[inline(always)]
unsafe fn max3_s2_row<S: Simd>(r: *const f32, c0: usize, pl: usize) -> S::F {
    // SAFETY: forwarded from the caller.
    unsafe {
        let (e, o) = S::load_pair(r.add(2 * c0));
        let before = match pl {
            0 => return S::max_nan(S::max_nan(e, o), S::shift_in(e, *r.add(2 * (c0 + S::LANES)))),
            1 => *r.add(2 * c0 - 1),
            _ => f32::NEG_INFINITY,
        };
        S::max_nan(S::max_nan(S::prev_lane(S::splat(before), o), e), o)
    }
}

/// Input rows [`max3_s2_columns`] prefetches ahead of the two it reads.
const AHEAD: usize = 8;

/// Prefetches the line of `p` into L1 (a hint: `p` need not be valid).
#[inline(always)]
fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
