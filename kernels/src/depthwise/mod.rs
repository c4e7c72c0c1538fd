//! Direct depthwise convolution: each output plane is one input plane
//! convolved with one small filter (`groups == C`, with `m` output channels
//! per input channel). A GEMM would have a single row per group and waste
//! the microkernel, so this kernel vectorizes along the output width.
//!
//! Square 3x3, 5x5 and 7x7 filters with strides 1 or 2 and unit dilation
//! (MobileNet's, EfficientNet's, ConvNeXt's) read the plane in place:
//! strips of up to four vectors walk down the input rows once, each loaded
//! row feeding every output row it touches; padding rows are skipped and
//! padding columns are the zero lanes of masked loads. With stride 2 a tap's
//! columns are the even or odd lanes of a pair of loads
//! (`source::InPlace`).
//!
//! Any other geometry first copies the input plane into a zero-bordered
//! plane (per-thread scratch, reused), wide enough that every vector of
//! outputs, the last partial one included, reads only inside it; with a
//! column stride each row is stored split into its column phases, so a
//! tap's columns for consecutive outputs are contiguous. The loops over the
//! output then need no border cases and no gathers. Filters of 3, 5 or 7
//! rows (at most 7 columns) with row stride 1 or 2 (and unit row dilation)
//! run in strips down the whole plane, each loaded vector feeding every
//! output row it touches from accumulator sets that take fixed turns; any
//! other geometry runs in blocks of four output rows by up to four vectors
//! that walk the input rows they touch the same way. A row's last partial
//! vector is a masked store.
//!
//! Each of these bodies (per filter size, stride and source) is compiled
//! as a function of its own inside each ISA's `#[target_feature]` shell
//! (`Body`, `select`).

mod simd;
mod source;
mod wgrad;

use std::cell::RefCell;

use crate::im2col::{Geometry, copy_short};
use crate::isa::{Isa, kernel_for};
use simd::{MAX_LANES, Scalar, Simd};
use source::{Bordered, InPlace, Rows, Tap, in_place};
pub use wgrad::DepthwiseWgrad;

/// A depthwise kernel for one ISA.
#[derive(Debug)]
pub struct Depthwise {
    name: &'static str,
    isa: Isa,
    /// The body for a geometry, compiled for the ISA.
    select: fn(&Geometry) -> BodyFn,
}

/// # Safety
/// The CPU supports the kernel's ISA, and the job satisfies [`Job::check`].
type BodyFn = unsafe fn(&mut Job<'_>);

static KERNELS: &[Depthwise] = &[
    #[cfg(target_arch = "x86_64")]
    Depthwise { name: "depthwise_avx512", isa: Isa::Avx512, select: select::<simd::Avx512> },
    #[cfg(target_arch = "x86_64")]
    Depthwise { name: "depthwise_avx2", isa: Isa::Avx2, select: select::<simd::Avx2> },
    #[cfg(target_arch = "aarch64")]
    Depthwise { name: "depthwise_neon", isa: Isa::Neon, select: select::<simd::Neon> },
    Depthwise { name: "depthwise_scalar", isa: Isa::Scalar, select: select::<Scalar> },
];

impl Depthwise {
    /// The kernel for `isa`, or for the best ISA below it that this CPU
    /// runs (so the result is always safe to run here).
    pub fn for_isa(isa: Isa) -> &'static Depthwise {
        kernel_for(KERNELS, isa, |k| k.isa)
    }

    /// Name carrying the ISA, e.g. `depthwise_avx512`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The ISA the kernel runs on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Floats of per-thread scratch one call on geometry `g` uses (the
    /// zero-bordered input plane).
    pub fn scratch_len(g: &Geometry) -> usize {
        if in_place(g) {
            return 0;
        }
        let (rows, cols) = padded_dims(g);
        rows * cols + MAX_LANES
    }

    /// Convolves the single input plane `x` (`g.h x g.w`, `g.c == 1`) with
    /// `m = w.len() / (FH*FW)` filters into `y` (`m` planes of `g.oh x g.ow`),
    /// adding `bias[j]` to plane j and clamping to `clamp` if given (NaN
    /// passes through).
    ///
    /// # Panics
    /// If the lengths disagree with the geometry or `g.c != 1`.
    pub fn run(&self, x: &[f32], g: &Geometry, w: &[f32], bias: &[f32], clamp: Option<(f32, f32)>, y: &mut [f32]) {
        assert_eq!(g.c, 1, "depthwise runs one input plane at a time");
        assert_eq!(x.len(), g.h * g.w, "input plane length");
        let taps = g.fh * g.fw;
        let m = bias.len();
        assert_eq!(w.len(), m * taps, "depthwise weights length");
        assert_eq!(y.len(), m * g.oh * g.ow, "depthwise output length");
        assert!(g.stride[0] > 0 && g.stride[1] > 0, "stride must be positive");
        if y.is_empty() {
            return;
        }
        if in_place(g) {
            // These read the plane itself, borders by masked loads.
            let mut job = Job { x, padded: &mut [], pitch: 0, g: *g, w, bias, clamp, y };
            job.check();
            // SAFETY: `for_isa` only hands out kernels this CPU supports, and
            // `check` passed.
            unsafe { (self.select)(g)(&mut job) };
            return;
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let Scratch { plane, zeroed_for } = &mut *s;
            let (rows, cols) = padded_dims(g);
            // MAX_LANES spare floats let the plane start on a 64-byte line.
            if plane.len() < rows * cols + MAX_LANES {
                plane.resize(rows * cols + MAX_LANES, 0.0);
                *zeroed_for = None;
            }
            let start = plane.as_ptr().align_offset(64).min(MAX_LANES);
            let padded = &mut plane[start..start + rows * cols];
            // Consecutive planes of a layer share the geometry, so the zero
            // border written for the first one is still in place.
            if *zeroed_for != Some(*g) {
                padded.fill(0.0);
                *zeroed_for = Some(*g);
            }
            let mut job = Job { x, padded, pitch: cols, g: *g, w, bias, clamp, y };
            job.check();
            // SAFETY: `for_isa` only hands out kernels this CPU supports, and
            // `check` passed.
            unsafe { (self.select)(g)(&mut job) }
        });
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch { plane: Vec::new(), zeroed_for: None }) };
}

/// Rows and row pitch of the zero-bordered plane: every tap of every output
/// vector, with the width rounded up to whole vectors of the widest ISA.
/// With a column stride `sx` above 1 each row is stored as its `sx` column
/// phases, one after another (segments of `pitch / sx`): phase p holds
/// padded columns p, p + sx, p + 2sx, ..., so the columns one tap reads
/// for consecutive outputs are contiguous.
fn padded_dims(g: &Geometry) -> (usize, usize) {
    let ([sy, sx], [dy, dx]) = (g.stride, g.dilation);
    let rows = (g.oh.saturating_sub(1) * sy + g.fh.saturating_sub(1) * dy + 1).max(g.pad_top + g.h);
    let seg =
        (g.ow.next_multiple_of(MAX_LANES) + g.fw.saturating_sub(1) * dx / sx).max((g.pad_left + g.w).div_ceil(sx));
    // Whole lines per segment, so the loads of a column line up alike in every row.
    (rows, seg.next_multiple_of(MAX_LANES) * sx)
}

/// Per-thread bordered plane, and the geometry whose zero border it holds
/// (only the interior changes between planes of one layer).
struct Scratch {
    plane: Vec<f32>,
    zeroed_for: Option<Geometry>,
}

/// Copies `x` into `dst` (rows of `pitch`) at (pad_top, pad_left), split
/// into column phases as [`padded_dims`] lays them out; the border around
/// it is left as it is (zero).
#[inline(always)]
fn copy_interior(x: &[f32], g: &Geometry, pitch: usize, dst: &mut [f32]) {
    let (sx, pl) = (g.stride[1], g.pad_left);
    let seg = pitch / sx;
    let rows = dst[g.pad_top * pitch..].chunks_exact_mut(pitch);
    for (row, src) in rows.zip(x.chunks_exact(g.w)) {
        if sx == 1 {
            copy_short(&mut row[pl..pl + g.w], src);
            continue;
        }
        if sx == 2 {
            // The common case, both phases in one pass the compiler
            // vectorizes: pair i goes to index pl/2 + i of phase pl % 2 and
            // index (pl+1)/2 + i of the other.
            let (even, odd) = row.split_at_mut(seg);
            let ((a, ia), (b, ib)) =
                if pl % 2 == 0 { ((even, pl / 2), (odd, pl / 2)) } else { ((odd, pl / 2), (even, pl / 2 + 1)) };
            let n = g.w / 2;
            for ((pair, da), db) in src.chunks_exact(2).zip(&mut a[ia..ia + n]).zip(&mut b[ib..ib + n]) {
                *da = pair[0];
                *db = pair[1];
            }
            if g.w % 2 == 1 {
                a[ia + n] = src[g.w - 1];
            }
            continue;
        }
        for p in 0..sx {
            // The first input column in phase p, and where it goes.
            let c0 = (p + sx - pl % sx) % sx;
            if c0 >= g.w {
                continue;
            }
            let at = p * seg + (pl + c0) / sx;
            for (d, &v) in row[at..at + (g.w - c0).div_ceil(sx)].iter_mut().zip(src[c0..].iter().step_by(sx)) {
                *d = v;
            }
        }
    }
}

/// One call's operands, after the copy into the bordered plane.
struct Job<'a> {
    /// The input plane.
    x: &'a [f32],
    /// The bordered plane, its border zero (empty for the in-place
    /// bodies, which read `x`); the other bodies copy `x` into it.
    padded: &'a mut [f32],
    pitch: usize,
    g: Geometry,
    w: &'a [f32],
    bias: &'a [f32],
    clamp: Option<(f32, f32)>,
    y: &'a mut [f32],
}

impl Job<'_> {
    /// What the body's unchecked reads rely on: the bordered plane reaches
    /// every tap of every (rounded-up) output vector.
    fn check(&self) {
        assert_eq!(self.x.len(), self.g.h * self.g.w, "input plane length");
        if !in_place(&self.g) {
            let (rows, cols) = padded_dims(&self.g);
            assert!(self.pitch == cols && self.padded.len() == rows * cols, "bordered plane size");
        }
        let taps = self.g.fh * self.g.fw;
        assert!(self.w.len() == self.bias.len() * taps && self.y.len() == self.bias.len() * self.g.oh * self.g.ow);
    }
}

/// A block of `R` output rows by `U` vectors, starting at output (oy, ox)
/// of plane `j`: bias plus the sum over taps, clamped, then stored (the
/// last vector of a row may be partial). It walks the input rows the block
/// touches once: each row's vectors are loaded once per column tap and
/// feed every output row of the block that the row meets (through its
/// filter row), so a tap costs a fraction of a load when strides are
/// small. `R * U` independent accumulators hide the FMA latency.
///
/// # Safety
/// The CPU supports `V`'s ISA, `job.check()` passed, `oy + R <= OH` and
/// `ox + U*LANES <= OW` rounded up to whole vectors.
#[inline(always)]
unsafe fn block<V: Simd, const R: usize, const U: usize>(
    job: &Job<'_>,
    wj: &[f32],
    b: f32,
    oy: usize,
    ox: usize,
    out: &mut [f32],
) {
    let g = &job.g;
    let ([sy, sx], [dy, dx]) = (g.stride, g.dilation);
    let (l, seg) = (V::LANES, job.pitch / sx);
    // Output row oy + r starts at padded row (oy + r)*sy.
    let top = oy * sy;
    let rows_in = (R - 1) * sy + (g.fh - 1) * dy + 1;
    // SAFETY: the ISA is supported (caller's contract).
    let mut acc = [[unsafe { V::splat(b) }; U]; R];
    // Padded column ox*sx + fx*dx is phase (fx*dx) % sx, index
    // ox + (fx*dx) / sx: each tap steps the phase by dx % sx and the index
    // by dx / sx, carrying into the index when the phase wraps.
    let (ph_step, q_step) = (dx % sx, dx / sx);
    for ii in 0..rows_in {
        // Where the filter row that puts input row top + ii into output row
        // oy + r starts, if any (no division for the usual dy == 1).
        let wrows: [Option<usize>; R] = std::array::from_fn(|r| {
            let d = ii.checked_sub(r * sy)?;
            let fy = if dy == 1 {
                d
            } else if d % dy == 0 {
                d / dy
            } else {
                return None;
            };
            (fy < g.fh).then_some(fy * g.fw)
        });
        let row = &job.padded[(top + ii) * job.pitch..(top + ii + 1) * job.pitch];
        let (mut ph, mut q) = (0, ox);
        for fx in 0..g.fw {
            // SAFETY: the ISA is supported (the splat only fills the array).
            let mut v = [unsafe { V::splat(0.0) }; U];
            // A loop, not a closure, so the loads are compiled with the ISA.
            for (u, v) in v.iter_mut().enumerate() {
                // SAFETY: `padded_dims` makes each phase segment reach every
                // tap of every vector up to the width rounded to MAX_LANES (a
                // multiple of LANES), which bounds these reads.
                *v = unsafe { V::load(row.as_ptr().add(ph * seg + q + u * l)) };
            }
            (ph, q) = (ph + ph_step, q + q_step);
            if ph >= sx {
                (ph, q) = (ph - sx, q + 1);
            }
            // Written out per output row with constant indices (R <= 4),
            // so the accumulators stay in registers.
            // SAFETY: rows fy < FH and fx < FW index the filter; the ISA is
            // supported.
            unsafe {
                let w = |at: usize| *wj.get_unchecked(at + fx);
                if let Some(fy) = wrows[0] {
                    feed(&mut acc[0], &v, V::splat(w(fy)));
                }
                if R > 1
                    && let Some(fy) = wrows[1]
                {
                    feed(&mut acc[1], &v, V::splat(w(fy)));
                }
                if R > 2
                    && let Some(fy) = wrows[2]
                {
                    feed(&mut acc[2], &v, V::splat(w(fy)));
                }
                if R > 3
                    && let Some(fy) = wrows[3]
                {
                    feed(&mut acc[3], &v, V::splat(w(fy)));
                }
            }
        }
    }
    for (r, accs) in acc.iter().enumerate() {
        // SAFETY: the ISA is supported (caller's contract).
        unsafe { store_row::<V, U>(job, accs, oy + r, ox, out) };
    }
}

/// `acc[u] += v[u] * w` for the `U <= 4` vectors of one output row.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn feed<V: Simd, const U: usize>(acc: &mut [V; U], v: &[V; U], w: V) {
    // SAFETY: the ISA is supported (caller's contract).
    unsafe {
        acc[0] = V::mul_add(v[0], w, acc[0]);
        if U > 1 {
            acc[1] = V::mul_add(v[1], w, acc[1]);
        }
        if U > 2 {
            acc[2] = V::mul_add(v[2], w, acc[2]);
        }
        if U > 3 {
            acc[3] = V::mul_add(v[3], w, acc[3]);
        }
    }
}

/// Every output plane's strips for an `FH`-row filter with row stride
/// `SY` and unit row dilation, their vectors from source `R`: strips as
/// wide as the registers allow (`NS` = ceil(FH/SY) sets of accumulators
/// and `SY` loaded vectors per strip vector, as the in-place source's
/// pairs need with `SY == 2`, with four to spare).
///
/// # Safety
/// The CPU supports `V`'s ISA, `job.check()` passed, `g.fh == FH <= 7`,
/// `g.stride[0] == SY`, `NS * SY <= 8`, the row dilation is 1, and `R`
/// reaches every tap of its strips.
#[inline(always)]
unsafe fn strips<'a, V: Simd, const FH: usize, const SY: usize, R: Rows<'a, V>>(job: &'a Job<'a>, y: &mut [f32]) {
    let (g, l) = (&job.g, V::LANES);
    let taps = g.fh * g.fw;
    let wide = ((V::REGS - 4) / (FH.div_ceil(SY) + SY)).clamp(1, 4);
    // A constant where the source fixes it, so the broadcast taps of small
    // filters can stay in registers (the array is optimized away where no
    // strip holds them).
    let fw = if R::FW > 0 { R::FW } else { g.fw };
    for ((wj, &b), out) in job.w.chunks_exact(taps).zip(job.bias).zip(y.chunks_exact_mut(g.oh * g.ow)) {
        // SAFETY: the ISA is supported (caller's contract); FH * fw <= 49.
        let wv = unsafe {
            let mut wv = [V::splat(0.0); 49];
            for t in 0..FH * fw {
                wv[t] = V::splat(wj[t]);
            }
            wv
        };
        let mut ox = 0;
        while ox < g.ow {
            let vectors = (g.ow - ox).div_ceil(l).min(wide);
            // SAFETY: ox + vectors*LANES is the width rounded up to whole
            // vectors at most; the rest is the caller's contract.
            unsafe {
                let src = R::new(job, ox, vectors);
                match vectors {
                    4 => strip_rows::<V, FH, SY, 4, R>(job, &src, (wj, &wv), fw, b, ox, out),
                    3 => strip_rows::<V, FH, SY, 3, R>(job, &src, (wj, &wv), fw, b, ox, out),
                    2 => strip_rows::<V, FH, SY, 2, R>(job, &src, (wj, &wv), fw, b, ox, out),
                    _ => strip_rows::<V, FH, SY, 1, R>(job, &src, (wj, &wv), fw, b, ox, out),
                }
            }
            ox += vectors * l;
        }
    }
}

/// A strip of `U` vectors of one output plane, from output column `ox`
/// down all rows, read from `src`. It walks the padded rows once: each
/// row's vectors are loaded once per column tap and feed every output row
/// they touch (up to `NS` = ceil(FH/SY)), so a tap costs a fraction of a
/// load. `NS` sets of accumulators take turns as the output rows (set
/// `o % NS` holds output row o); the walk is unrolled by the period
/// `P = NS * SY` so the turns are fixed registers. Padding rows add nothing
/// and are skipped; so are the rows of the last period past the end (one
/// copy of the period, not a second one for the remainder).
///
/// # Safety
/// As for [`strips`], and `ox + U*LANES <= OW` rounded up to whole vectors.
#[inline(always)]
unsafe fn strip_rows<'a, V: Simd, const FH: usize, const SY: usize, const U: usize, R: Rows<'a, V>>(
    job: &Job<'_>,
    src: &R,
    w: (&[f32], &[V; 49]),
    fw: usize,
    b: f32,
    ox: usize,
    out: &mut [f32],
) {
    // SAFETY: the ISA is supported (caller's contract).
    let bv = [unsafe { V::splat(b) }; U];
    // Only the first NS sets are used; the others are optimized away.
    let mut acc = [bv; 8];
    let period = FH.div_ceil(SY) * SY;
    // Output row OH-1 is complete after padded row (OH-1)*SY + FH-1.
    let rows = (job.g.oh - 1) * SY + FH;
    let mut i = 0;
    // SAFETY (the calls): forwarded from the caller; i % period is the
    // step's S.
    unsafe {
        while i < rows {
            row_step::<V, FH, SY, U, 0, R>(job, src, w, fw, bv, &mut acc, i, ox, out);
            row_step::<V, FH, SY, U, 1, R>(job, src, w, fw, bv, &mut acc, i + 1, ox, out);
            row_step::<V, FH, SY, U, 2, R>(job, src, w, fw, bv, &mut acc, i + 2, ox, out);
            if period > 3 {
                row_step::<V, FH, SY, U, 3, R>(job, src, w, fw, bv, &mut acc, i + 3, ox, out);
            }
            if period > 4 {
                row_step::<V, FH, SY, U, 4, R>(job, src, w, fw, bv, &mut acc, i + 4, ox, out);
            }
            if period > 5 {
                row_step::<V, FH, SY, U, 5, R>(job, src, w, fw, bv, &mut acc, i + 5, ox, out);
            }
            if period > 6 {
                row_step::<V, FH, SY, U, 6, R>(job, src, w, fw, bv, &mut acc, i + 6, ox, out);
            }
            if period > 7 {
                row_step::<V, FH, SY, U, 7, R>(job, src, w, fw, bv, &mut acc, i + 7, ox, out);
            }
            i += period;
        }
    }
}

/// Padded row `i` (`i % P == S`, `P = NS * SY`) of [`strip_rows`]: filter
/// row k adds to output row (i - k) / SY where that divides, held in set
/// `((i - k) / SY) % NS`; once filter row FH-1 has been added, that output
/// row is complete: stored if it exists, and its set restarted from the
/// bias (for output row o + NS, whose first input row comes later since
/// NS * SY >= FH). Rows past the input add nothing, and rows past the last
/// output's store nothing.
///
/// # Safety
/// As for [`strip_rows`], `i % P == S < P`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn row_step<'a, V: Simd, const FH: usize, const SY: usize, const U: usize, const S: usize, R: Rows<'a, V>>(
    job: &Job<'_>,
    src: &R,
    w: (&[f32], &[V; 49]),
    fw: usize,
    bv: [V; U],
    acc: &mut [[V; U]; 8],
    i: usize,
    ox: usize,
    out: &mut [f32],
) {
    let g = &job.g;
    if (g.pad_top..g.pad_top + g.h).contains(&i) {
        // SAFETY: row i is an input row; the rest is the caller's contract.
        unsafe { src.taps::<U>(i, &mut Feed::<V, FH, SY, U, S> { acc: &mut *acc, w, fw }) };
    }
    if let Some(t) = set::<FH, SY, S>(FH - 1) {
        // Output row (i + 1 - FH) / SY is complete (SY divides i + 1 - FH).
        if i + 1 >= FH && (i + 1 - FH) / SY < g.oh {
            // SAFETY: the ISA is supported.
            unsafe { store_row::<V, U>(job, &acc[t], (i + 1 - FH) / SY, ox, out) };
        }
        acc[t] = bv;
    }
}

/// The accumulator set that filter row `k` adds padded row i into, where
/// `i % P == S` (`P = NS * SY`, `NS` = ceil(FH/SY)): output row (i-k)/SY
/// if SY divides i - k, held in set ((S + P - k) / SY) % NS, a constant.
#[inline(always)]
fn set<const FH: usize, const SY: usize, const S: usize>(k: usize) -> Option<usize> {
    let ns = FH.div_ceil(SY);
    let period = ns * SY;
    if (S + period - k).is_multiple_of(SY) { Some((S + period - k) / SY % ns) } else { None }
}

/// [`row_step`]'s taps: each filter row k adds a tap's vectors, times
/// its weight, to the set [`set`] names.
struct Feed<'a, V: Simd, const FH: usize, const SY: usize, const U: usize, const S: usize> {
    acc: &'a mut [[V; U]; 8],
    /// The filter's taps (row k at k * fw), and the same broadcast.
    w: (&'a [f32], &'a [V; 49]),
    fw: usize,
}

impl<V: Simd, const FH: usize, const SY: usize, const U: usize, const S: usize> Tap<V, U>
    for Feed<'_, V, FH, SY, U, S>
{
    #[inline(always)]
    unsafe fn tap(&mut self, fx: usize, v: &[V; U]) {
        // The broadcast taps where they fit in the registers left beside
        // the accumulators and the loaded vectors (3x3 on AVX-512), else a
        // broadcast per use (held, they would spill).
        let held = FH * self.fw <= V::REGS.saturating_sub((FH.div_ceil(SY) + SY) * U);
        // Written out per filter row with constant set indices (FH <= 7),
        // so the accumulators stay in registers.
        for k in [0, 1, 2, 3, 4, 5, 6] {
            if k < FH
                && let Some(t) = set::<FH, SY, S>(k)
            {
                let at = k * self.fw + fx;
                // SAFETY: the ISA is supported; k < FH and fx < FW index the
                // filter's taps.
                unsafe {
                    let w = if held { self.w.1[at] } else { V::splat(*self.w.0.get_unchecked(at)) };
                    feed(&mut self.acc[t], v, w)
                };
            }
        }
    }
}

/// Clamps and stores `U` vectors at output (oy, ox); a row's last partial
/// vector goes through a stack buffer.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn store_row<V: Simd, const U: usize>(job: &Job<'_>, acc: &[V; U], oy: usize, ox: usize, out: &mut [f32]) {
    let (g, l) = (&job.g, V::LANES);
    let row = &mut out[oy * g.ow..(oy + 1) * g.ow];
    for (u, a) in acc.iter().enumerate() {
        // SAFETY: the ISA is supported; the stores go through bounds-checked
        // slices.
        unsafe {
            let a = match job.clamp {
                Some((lo, hi)) => a.clamp(lo, hi),
                None => *a,
            };
            let x0 = ox + u * l;
            if x0 + l <= g.ow {
                a.store(row[x0..x0 + l].as_mut_ptr());
            } else if x0 < g.ow {
                a.store_partial(row[x0..].as_mut_ptr(), g.ow - x0);
            }
        }
    }
}

/// Blocks of four output rows (then single rows) by up to four vectors
/// (two where the ISA has 16 registers), for any geometry.
///
/// # Safety
/// The CPU supports `V`'s ISA and `job.check()` passed, with the input
/// already copied into the bordered plane.
#[inline(always)]
unsafe fn blocks<V: Simd>(job: &Job<'_>, y: &mut [f32]) {
    let g = &job.g;
    let (l, taps) = (V::LANES, g.fh * g.fw);
    let wide = if V::REGS >= 32 { 4 } else { 2 };
    for ((wj, &b), out) in job.w.chunks_exact(taps).zip(job.bias).zip(y.chunks_exact_mut(g.oh * g.ow)) {
        let mut oy = 0;
        while oy < g.oh {
            let four = oy + 4 <= g.oh;
            let mut ox = 0;
            while ox < g.ow {
                let vectors = (g.ow - ox).div_ceil(l).min(wide);
                // SAFETY: oy + R <= OH and ox + vectors*LANES is the width
                // rounded up to whole vectors at most; the rest is the
                // caller's contract.
                unsafe {
                    match (four, vectors) {
                        (true, 4) => block::<V, 4, 4>(job, wj, b, oy, ox, out),
                        (true, 3) => block::<V, 4, 3>(job, wj, b, oy, ox, out),
                        (true, 2) => block::<V, 4, 2>(job, wj, b, oy, ox, out),
                        (true, _) => block::<V, 4, 1>(job, wj, b, oy, ox, out),
                        (false, 4) => block::<V, 1, 4>(job, wj, b, oy, ox, out),
                        (false, 3) => block::<V, 1, 3>(job, wj, b, oy, ox, out),
                        (false, 2) => block::<V, 1, 2>(job, wj, b, oy, ox, out),
                        (false, _) => block::<V, 1, 1>(job, wj, b, oy, ox, out),
                    }
                }
                ox += vectors * l;
            }
            oy += if four { 4 } else { 1 };
        }
    }
}

/// One way to run a job, compiled once per ISA in that ISA's shell: each
/// body is a function of its own, so no function holds every filter size,
/// stride and source at once (which took the compiler a quarter of an
/// hour).
trait Body {
    /// Runs the job.
    ///
    /// # Safety
    /// The CPU supports `V`'s ISA, `job.check()` passed, and the geometry
    /// is one [`select`] picks this body for.
    unsafe fn run<V: Simd>(job: &mut Job<'_>);
}

/// [`strips`] reading the plane in place ([`InPlace`]): square `F`x`F`
/// filters with stride `S` (as [`in_place`] admits).
struct InPlaceStrips<const F: usize, const S: usize>;

impl<const F: usize, const S: usize> Body for InPlaceStrips<F, S> {
    #[inline(always)]
    unsafe fn run<V: Simd>(job: &mut Job<'_>) {
        let y = std::mem::take(&mut job.y);
        // SAFETY: the geometry is as `in_place` admits, which `InPlace`
        // reads within the plane; the rest is the caller's contract.
        unsafe { strips::<V, F, S, InPlace<'_, V, F, S>>(job, y) }
    }
}

/// [`strips`] over the bordered plane: `FH` filter rows with row stride
/// `SY` and unit row dilation, any columns.
struct BorderedStrips<const FH: usize, const SY: usize>;

impl<const FH: usize, const SY: usize> Body for BorderedStrips<FH, SY> {
    #[inline(always)]
    unsafe fn run<V: Simd>(job: &mut Job<'_>) {
        copy_interior(job.x, &job.g, job.pitch, job.padded);
        let y = std::mem::take(&mut job.y);
        // SAFETY: FH, SY and the row dilation are as `select` matched them,
        // and the bordered plane reaches every tap; the rest is the
        // caller's contract.
        unsafe { strips::<V, FH, SY, Bordered<'_>>(job, y) }
    }
}

/// [`blocks`] over the bordered plane: any geometry.
struct Blocks;

impl Body for Blocks {
    #[inline(always)]
    unsafe fn run<V: Simd>(job: &mut Job<'_>) {
        copy_interior(job.x, &job.g, job.pitch, job.padded);
        let y = std::mem::take(&mut job.y);
        // SAFETY: the plane is copied; the rest is the caller's contract.
        unsafe { blocks::<V>(job, y) }
    }
}

/// An ISA's shell: [`Body`] `B` compiled with the ISA's target features.
trait Shell: Simd {
    /// `B`'s entry for this ISA.
    fn shell<B: Body>() -> BodyFn;
}

/// The body for geometry `g`, compiled for `V`'s ISA: square 3x3, 5x5 and
/// 7x7 filters with strides 1 or 2 read the plane in place; other filters
/// of 3, 5 or 7 rows with row stride 1 or 2 (and unit row dilation) run in
/// strips over the bordered plane, anything else in blocks.
fn select<V: Shell>(g: &Geometry) -> BodyFn {
    if in_place(g) {
        return match (g.fh, g.stride[0]) {
            (3, 1) => V::shell::<InPlaceStrips<3, 1>>(),
            (5, 1) => V::shell::<InPlaceStrips<5, 1>>(),
            (7, 1) => V::shell::<InPlaceStrips<7, 1>>(),
            (3, 2) => V::shell::<InPlaceStrips<3, 2>>(),
            (5, 2) => V::shell::<InPlaceStrips<5, 2>>(),
            _ => V::shell::<InPlaceStrips<7, 2>>(),
        };
    }
    // Strips hold the broadcast taps in an array of 7x7.
    if g.dilation[0] != 1 || g.fw > 7 {
        return V::shell::<Blocks>();
    }
    match (g.fh, g.stride[0]) {
        (3, 1) => V::shell::<BorderedStrips<3, 1>>(),
        (5, 1) => V::shell::<BorderedStrips<5, 1>>(),
        (7, 1) => V::shell::<BorderedStrips<7, 1>>(),
        (3, 2) => V::shell::<BorderedStrips<3, 2>>(),
        (5, 2) => V::shell::<BorderedStrips<5, 2>>(),
        (7, 2) => V::shell::<BorderedStrips<7, 2>>(),
        _ => V::shell::<Blocks>(),
    }
}

impl Shell for Scalar {
    fn shell<B: Body>() -> BodyFn {
        /// # Safety
        /// As for [`Body::run`] (plain Rust: any CPU).
        unsafe fn shell<B: Body>(job: &mut Job<'_>) {
            // SAFETY: forwarded from the caller.
            unsafe { B::run::<Scalar>(job) }
        }
        shell::<B>
    }
}

#[cfg(target_arch = "x86_64")]
impl Shell for simd::Avx2 {
    fn shell<B: Body>() -> BodyFn {
        /// # Safety
        /// As for [`Body::run`]: the CPU has AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn shell<B: Body>(job: &mut Job<'_>) {
            // SAFETY: forwarded from the caller.
            unsafe { B::run::<simd::Avx2>(job) }
        }
        shell::<B>
    }
}

#[cfg(target_arch = "x86_64")]
impl Shell for simd::Avx512 {
    fn shell<B: Body>() -> BodyFn {
        /// # Safety
        /// As for [`Body::run`]: the CPU has AVX-512F.
        #[target_feature(enable = "avx512f")]
        unsafe fn shell<B: Body>(job: &mut Job<'_>) {
            // SAFETY: forwarded from the caller.
            unsafe { B::run::<simd::Avx512>(job) }
        }
        shell::<B>
    }
}

#[cfg(target_arch = "aarch64")]
impl Shell for simd::Neon {
    fn shell<B: Body>() -> BodyFn {
        /// # Safety
        /// As for [`Body::run`]: the CPU has NEON.
        #[target_feature(enable = "neon")]
        unsafe fn shell<B: Body>(job: &mut Job<'_>) {
            // SAFETY: forwarded from the caller.
            unsafe { B::run::<simd::Neon>(job) }
        }
        shell::<B>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct loops over the unpadded input: each output and the absolute
    /// sum of its terms (for the error bound).
    fn naive(x: &[f32], g: &Geometry, w: &[f32], bias: &[f32], clamp: Option<(f32, f32)>) -> Vec<(f32, f64)> {
        let mut y = Vec::new();
        for (j, &b) in bias.iter().enumerate() {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let (mut s, mut abs) = (b as f64, b.abs() as f64);
                    for fy in 0..g.fh {
                        for fx in 0..g.fw {
                            let iy = (oy * g.stride[0] + fy * g.dilation[0]) as isize - g.pad_top as isize;
                            let ix = (ox * g.stride[1] + fx * g.dilation[1]) as isize - g.pad_left as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                let t =
                                    x[iy as usize * g.w + ix as usize] as f64 * w[(j * g.fh + fy) * g.fw + fx] as f64;
                                s += t;
                                abs += t.abs();
                            }
                        }
                    }
                    let v = s as f32;
                    y.push((clamp.map_or(v, |(lo, hi)| v.max(lo).min(hi)), abs));
                }
            }
        }
        y
    }

    #[test]
    fn every_kernel_matches_the_naive_loops() {
        // (h, w, fh, fw, stride, dilation, pad_top, pad_left): in-place
        // strips (square 3, 5, 7 with strides 1 and 2, planes smaller than
        // the filter), bordered row strips (3, 5, 7 rows), row blocks
        // (dilation, filters wider than 7), column strides 2 and 3, widths
        // that are no multiple of any vector, heights that are no multiple
        // of 4 or of the filter.
        let shapes = [
            (7, 70, 3, 3, [1, 1], [1, 1], 1, 1),
            (9, 37, 3, 5, [2, 3], [1, 2], 0, 2),
            (3, 5, 2, 2, [1, 1], [2, 2], 2, 0),
            (11, 37, 3, 3, [2, 2], [1, 1], 1, 1),
            (12, 40, 3, 3, [2, 2], [1, 1], 1, 1),
            (10, 50, 3, 3, [3, 3], [1, 1], 1, 0),
            (13, 29, 5, 5, [1, 1], [1, 1], 2, 2),
            (9, 45, 7, 7, [1, 1], [1, 1], 3, 3),
            (14, 70, 7, 7, [1, 1], [1, 1], 3, 3),
            (11, 33, 5, 5, [1, 1], [2, 2], 4, 4),
            (8, 19, 3, 3, [1, 2], [2, 1], 2, 1),
            (9, 23, 5, 3, [2, 1], [1, 3], 2, 3),
            (10, 41, 3, 3, [1, 2], [1, 1], 1, 1),
            (12, 40, 5, 7, [1, 1], [1, 2], 2, 3),
            (6, 20, 7, 5, [1, 3], [1, 1], 3, 2),
            (2, 9, 7, 7, [1, 1], [1, 1], 3, 3),
            (16, 100, 3, 1, [1, 1], [1, 1], 0, 0),
            (15, 30, 7, 7, [2, 2], [1, 1], 3, 3),
            (10, 26, 5, 5, [2, 1], [1, 1], 2, 2),
            (12, 17, 7, 3, [2, 1], [1, 1], 1, 1),
            (9, 100, 5, 5, [2, 2], [1, 1], 2, 2),
            (8, 33, 3, 3, [2, 2], [1, 1], 0, 0),
            (10, 47, 7, 7, [2, 2], [1, 1], 1, 3),
            (6, 21, 3, 3, [1, 1], [1, 1], 0, 2),
            (7, 150, 3, 3, [2, 2], [1, 1], 1, 1),
            (5, 9, 3, 3, [2, 2], [1, 1], 4, 4),
            (3, 4, 7, 7, [2, 2], [1, 1], 3, 3),
            (1, 1, 5, 5, [1, 1], [1, 1], 2, 2),
            (2, 3, 5, 5, [2, 2], [1, 1], 2, 2),
            (13, 67, 5, 5, [2, 2], [1, 1], 2, 2),
            (9, 130, 7, 7, [1, 1], [1, 1], 3, 3),
            (8, 35, 3, 9, [1, 1], [1, 1], 1, 4),
        ];
        let geoms = shapes.map(
            |(h, w, fh, fw, stride, dilation, pad_top, pad_left): (_, _, _, _, [usize; 2], [usize; 2], _, _)| {
                let out = |n: usize, p: usize, f: usize, s: usize, d: usize| (n + 2 * p - (f - 1) * d - 1) / s + 1;
                Geometry {
                    c: 1,
                    h,
                    w,
                    fh,
                    fw,
                    stride,
                    dilation,
                    pad_top,
                    pad_left,
                    oh: out(h, pad_top, fh, stride[0], dilation[0]),
                    ow: out(w, pad_left, fw, stride[1], dilation[1]),
                }
            },
        );
        // Miri runs one shape of each body: in place with strides 1 and 2,
        // the general block, and strips of the bordered plane.
        let picked: Vec<Geometry> = if cfg!(miri) { [0, 3, 2, 18].map(|i| geoms[i]).to_vec() } else { geoms.to_vec() };
        for k in KERNELS.iter().filter(|k| k.isa.supported()) {
            for &g in &picked {
                let x: Vec<f32> = (0..g.h * g.w).map(|i| ((i * 7919) % 23) as f32 / 11.0 - 1.0).collect();
                for (m, clamp) in [(1, None), (2, Some((-0.5, 0.75))), (3, None)] {
                    let w: Vec<f32> = (0..m * g.fh * g.fw).map(|i| ((i * 31) % 13) as f32 / 6.0 - 1.0).collect();
                    let bias = &[0.25, -0.5, 0.125][..m];
                    let mut y = vec![f32::NAN; m * g.oh * g.ow];
                    k.run(&x, &g, &w, bias, clamp, &mut y);
                    let want = naive(&x, &g, &w, bias, clamp);
                    for (i, (a, &(b, abs))) in y.iter().zip(&want).enumerate() {
                        // The standard bound for a sum of FH*FW+1 terms.
                        let tol = 2.0 * (g.fh * g.fw + 1) as f64 * f32::EPSILON as f64 * abs;
                        assert!(((a - b).abs() as f64) <= tol, "{} {g:?} at {i}: {a} vs {b}", k.name);
                    }
                }
            }
        }
    }
}
