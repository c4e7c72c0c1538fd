//! Where a strip's input vectors come from: the zero-bordered copy of the
//! plane ([`Bordered`]), or the plane itself under lane masks
//! ([`InPlace`], square 3x3, 5x5 and 7x7 filters with strides 1 or 2).

use super::Job;
use super::simd::Simd;
use crate::im2col::Geometry;

/// What takes a row's vectors, tap by tap. (A trait, not a closure: a
/// closure is a function of its own, compiled without the ISA's target
/// features, so the intrinsics in it would not be inlined.)
pub(super) trait Tap<V: Simd, const U: usize> {
    /// Takes the strip's vectors `v` of column tap `fx`.
    ///
    /// # Safety
    /// The CPU supports `V`'s ISA and `fx < FW`.
    unsafe fn tap(&mut self, fx: usize, v: &[V; U]);
}

/// The vectors of a strip, row by row.
pub(super) trait Rows<'a, V: Simd>: Sized {
    /// The filter's columns where the source fixes them, else 0 (the
    /// geometry's).
    const FW: usize;

    /// The source of a strip of `vectors <= 4` vectors from output column
    /// `ox` of `job`'s plane.
    ///
    /// # Safety
    /// The CPU supports `V`'s ISA.
    unsafe fn new(job: &'a Job<'a>, ox: usize, vectors: usize) -> Self;

    /// Hands `f` the strip's `U <= 4` vectors of every column tap
    /// `fx < FW` of padded row `i`.
    ///
    /// # Safety
    /// The CPU supports `V`'s ISA, `U` is at most the strip's vectors the
    /// source was made for, and padded row `i` is an input row
    /// (`pad_top <= i < pad_top + h`).
    unsafe fn taps<const U: usize>(&self, i: usize, f: &mut impl Tap<V, U>);
}

/// The bordered plane of `job`, strip starting at output column `ox`.
pub(super) struct Bordered<'a> {
    job: &'a Job<'a>,
    ox: usize,
}

impl<'a, V: Simd> Rows<'a, V> for Bordered<'a> {
    const FW: usize = 0;

    #[inline(always)]
    unsafe fn new(job: &'a Job<'a>, ox: usize, _: usize) -> Self {
        Bordered { job, ox }
    }

    #[inline(always)]
    unsafe fn taps<const U: usize>(&self, i: usize, f: &mut impl Tap<V, U>) {
        let (job, l) = (self.job, V::LANES);
        let g = &job.g;
        let (sx, dx) = (g.stride[1], g.dilation[1]);
        let seg = job.pitch / sx;
        let row = &job.padded[i * job.pitch..(i + 1) * job.pitch];
        // Padded column ox*sx + fx*dx is phase (fx*dx) % sx, index
        // ox + (fx*dx) / sx: each tap steps the phase by dx % sx and the
        // index by dx / sx, carrying into the index when the phase wraps.
        let (ph_step, q_step) = (dx % sx, dx / sx);
        let (mut ph, mut q) = (0, self.ox);
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
            // SAFETY: fx < FW; the ISA is supported (caller's contract).
            unsafe { f.tap(fx, &v) };
        }
    }
}

/// Square `F`x`F` filters (3, 5 or 7) with stride `S` (1 or 2) on both
/// axes and unit dilation: the geometries [`InPlace`] reads.
pub(super) fn in_place(g: &Geometry) -> bool {
    g.fh == g.fw && matches!(g.fh, 3 | 5 | 7) && matches!(g.stride, [1, 1] | [2, 2]) && g.dilation == [1, 1]
}

/// The input plane read in place, for an `F`x`F` filter with stride `S`
/// on both axes (as [`in_place`] admits), strip starting at output column
/// `ox`. Vector u of tap fx covers input columns S*(ox + u*LANES + lane) +
/// fx - pad_left; columns outside the row (the padding) are masked-off
/// lanes, read as zero. With `S == 1` each tap is one masked load; with
/// `S == 2` the pair of vectors at columns 2k, 2k + LANES (relative to the
/// strip) split into their even lanes (tap 2k) and odd lanes (tap 2k + 1),
/// so no tap needs a gather.
pub(super) struct InPlace<'a, V: Simd, const F: usize, const S: usize> {
    x: &'a [f32],
    w: usize,
    pad_top: usize,
    /// Input column of lane 0 of the strip's first load (may be negative).
    c0: isize,
    /// The lanes inside the row of each vector's loads (`slot`).
    masks: [[V::Mask; 8]; 4],
    /// Whether every load of a vector lies inside the row: 3x3 filters
    /// then take plain loads (measured: 10% faster on 3x3, while the test
    /// per load cost 5x5 filters 30%).
    full: [bool; 4],
}

impl<V: Simd, const F: usize, const S: usize> InPlace<'_, V, F, S> {
    /// Loads per vector and row: one per tap, or one pair per two taps.
    const SLOTS: usize = if S == 1 { F } else { F + 1 };

    /// Column of load `j` relative to the vector's first one.
    #[inline(always)]
    fn slot(j: usize) -> usize {
        if S == 1 { j } else { j / 2 * 2 + j % 2 * V::LANES }
    }

    /// Load `j` of vector `u`, at `p` + its column.
    ///
    /// # Safety
    /// The CPU supports `V`'s ISA and `p` is the row's pointer at column
    /// `c0`.
    #[inline(always)]
    unsafe fn load(&self, p: *const f32, u: usize, j: usize) -> V {
        let p = p.wrapping_add(S * u * V::LANES + Self::slot(j));
        // SAFETY: the mask admits only lanes whose columns lie in the row
        // (all of them if `full`); the ISA is supported (caller's contract).
        unsafe { if F == 3 && self.full[u] { V::load(p) } else { V::load_masked(p, self.masks[u][j]) } }
    }
}

impl<'a, V: Simd, const F: usize, const S: usize> Rows<'a, V> for InPlace<'a, V, F, S> {
    const FW: usize = F;

    #[inline(always)]
    unsafe fn new(job: &'a Job<'a>, ox: usize, vectors: usize) -> Self {
        let (g, l) = (&job.g, V::LANES);
        let c0 = (S * ox) as isize - g.pad_left as isize;
        // Plain loops, not closures: a closure that is not inlined is
        // compiled without the ISA's target features.
        // SAFETY: the ISA is supported (caller's contract).
        let mut masks = [[unsafe { V::mask(0, 0) }; 8]; 4];
        let mut full = [false; 4];
        for (u, row) in masks.iter_mut().enumerate().take(vectors) {
            full[u] = true;
            for (j, m) in row.iter_mut().enumerate().take(Self::SLOTS) {
                let c = c0 + (S * u * l + Self::slot(j)) as isize;
                let lo = (-c).clamp(0, l as isize);
                let hi = (g.w as isize - c).clamp(lo, l as isize);
                full[u] &= (lo, hi) == (0, l as isize);
                // SAFETY: the ISA is supported (caller's contract).
                *m = unsafe { V::mask(lo as usize, hi as usize) };
            }
        }
        InPlace { x: job.x, w: g.w, pad_top: g.pad_top, c0, masks, full }
    }

    #[inline(always)]
    unsafe fn taps<const U: usize>(&self, i: usize, f: &mut impl Tap<V, U>) {
        let iy = i - self.pad_top;
        let row = &self.x[iy * self.w..(iy + 1) * self.w];
        let p = row.as_ptr().wrapping_offset(self.c0);
        // SAFETY (the loads and taps): p is the row at column c0, fx < F;
        // the ISA is supported (caller's contract).
        unsafe {
            if S == 1 {
                // (Measured: this small closure is inlined, and a loop like
                // the stride-2 branch's made 7x7 filters 35% slower here.)
                for fx in 0..F {
                    let v: [V; U] = std::array::from_fn(|u| self.load(p, u, fx));
                    f.tap(fx, &v);
                }
            } else {
                // A plain loop, not a closure (see `new`): this one was left
                // out of line, intrinsics and all. `zero` only fills the
                // arrays before every lane is written.
                let zero = V::splat(0.0);
                for k in 0..F.div_ceil(2) {
                    let (mut even, mut odd) = ([zero; U], [zero; U]);
                    for u in 0..U {
                        (even[u], odd[u]) = V::deinterleave(self.load(p, u, 2 * k), self.load(p, u, 2 * k + 1));
                    }
                    f.tap(2 * k, &even);
                    if 2 * k + 1 < F {
                        f.tap(2 * k + 1, &odd);
                    }
                }
            }
        }
    }
}
