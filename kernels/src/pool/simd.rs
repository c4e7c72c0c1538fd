//! The handful of vector operations the pooling bodies need, one impl per
//! ISA. The bodies are generic over [`Simd`] and inlined into thin
//! `#[target_feature]` shells, so each ISA gets its own machine code.
//!
//! [`Scalar`] is the one-lane instance: the same bodies run on it as the
//! portable path (and as the path for strides the vector loads do not cover).

/// Vector operations on `LANES` floats and `LANES` plane indices.
///
/// Max selection follows PyTorch's rule exactly: a new value `v` replaces
/// `best` when `v > best || v.is_nan()` (so ties keep the earlier element and
/// the last NaN wins); never `max_ps`'s NaN rule alone.
pub(crate) trait Simd: Copy {
    /// Floats per vector.
    const LANES: usize;
    /// A vector of floats.
    type F: Copy;
    /// A vector of plane indices (`i32` lanes on SIMD ISAs).
    type I: Copy;

    /// Every lane `v`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn splat(v: f32) -> Self::F;
    /// `p[0..LANES]`.
    ///
    /// # Safety
    /// `p[0..LANES]` is readable.
    unsafe fn load(p: *const f32) -> Self::F;
    /// `p[0], p[2], ..., p[2*(LANES-1)]`, reading nothing past the last.
    ///
    /// # Safety
    /// `p[0..2*LANES-1]` is readable.
    unsafe fn load_even(p: *const f32) -> Self::F;
    /// The even and the odd elements of `p[0..2*LANES]`.
    ///
    /// # Safety
    /// `p[0..2*LANES]` is readable.
    unsafe fn load_pair(p: *const f32) -> (Self::F, Self::F);
    /// `p[0], p[s], ..., p[s*(LANES-1)]` for any stride (slow on vector ISAs:
    /// dispatch sends strides above 2 to [`Scalar`]).
    ///
    /// # Safety
    /// Every element named is readable.
    unsafe fn load_strided(p: *const f32, s: usize) -> Self::F {
        let mut buf = [0.0f32; 16];
        for (i, b) in buf.iter_mut().take(Self::LANES).enumerate() {
            // SAFETY: the caller makes p[i*s] readable for i < LANES.
            *b = unsafe { *p.add(i * s) };
        }
        // SAFETY: buf holds 16 >= LANES floats.
        unsafe { Self::load(buf.as_ptr()) }
    }
    /// Lanes `1..LANES` of `v`, then `next`: the vector one column on.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn shift_in(v: Self::F, next: f32) -> Self::F;
    /// Lanes `1..LANES` of `a`, then lane 0 of `b`: `a` one column on,
    /// when `b` holds the columns after `a`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn next_lane(a: Self::F, b: Self::F) -> Self::F;
    /// The last lane of `a`, then lanes `0..LANES-1` of `b`: `b` one column
    /// back, when `a` holds the columns before `b`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn prev_lane(a: Self::F, b: Self::F) -> Self::F;
    /// Stores `v` to `p[0..LANES]`.
    ///
    /// # Safety
    /// `p[0..LANES]` is writable.
    unsafe fn store(p: *mut f32, v: Self::F);
    /// `a + b`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn add(a: Self::F, b: Self::F) -> Self::F;
    /// `a * b`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn mul(a: Self::F, b: Self::F) -> Self::F;
    /// The bits of `a` and `b` and-ed (a mask of all ones or zeros keeps
    /// or clears a lane).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn and(a: Self::F, b: Self::F) -> Self::F;
    /// Per lane: `v` if `v > best || v.is_nan()`, else `best`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn max_nan(best: Self::F, v: Self::F) -> Self::F;
    /// [`max_nan`](Self::max_nan) that carries the index of the kept value.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn max_nan_idx(best: Self::F, bi: Self::I, v: Self::F, vi: Self::I) -> (Self::F, Self::I);
    /// Lane `l` holds `l * step` (`step * (LANES - 1)` fits the index type).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn lane_steps(step: usize) -> Self::I;
    /// `steps + base` in every lane (the sum fits the index type).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn index(base: usize, steps: Self::I) -> Self::I;
    /// Stores the indices widened to `i64` at `p[0..LANES]`.
    ///
    /// # Safety
    /// `p[0..LANES]` is writable.
    unsafe fn store_idx(p: *mut i64, i: Self::I);
    /// Sum of the lanes.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn hsum(v: Self::F) -> f32;
}

/// The one-lane portable instance.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

impl Simd for Scalar {
    const LANES: usize = 1;
    type F = f32;
    type I = i64;

    #[inline(always)]
    unsafe fn splat(v: f32) -> f32 {
        v
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        // SAFETY: the caller makes p[0] readable.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn load_even(p: *const f32) -> f32 {
        // SAFETY: the caller makes p[0] readable.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn load_pair(p: *const f32) -> (f32, f32) {
        // SAFETY: the caller makes p[0..2] readable.
        unsafe { (*p, *p.add(1)) }
    }
    #[inline(always)]
    unsafe fn load_strided(p: *const f32, _s: usize) -> f32 {
        // SAFETY: the caller makes p[0] readable.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn shift_in(_v: f32, next: f32) -> f32 {
        next
    }
    #[inline(always)]
    unsafe fn next_lane(_a: f32, b: f32) -> f32 {
        b
    }
    #[inline(always)]
    unsafe fn prev_lane(a: f32, _b: f32) -> f32 {
        a
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: f32) {
        // SAFETY: the caller makes p[0] writable.
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn add(a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    unsafe fn mul(a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    unsafe fn and(a: f32, b: f32) -> f32 {
        f32::from_bits(a.to_bits() & b.to_bits())
    }
    #[inline(always)]
    unsafe fn max_nan(best: f32, v: f32) -> f32 {
        // `|` rather than `||`: one select, no branch on data.
        if (v > best) | v.is_nan() { v } else { best }
    }
    #[inline(always)]
    unsafe fn max_nan_idx(best: f32, bi: i64, v: f32, vi: i64) -> (f32, i64) {
        let take = (v > best) | v.is_nan();
        (if take { v } else { best }, if take { vi } else { bi })
    }
    #[inline(always)]
    unsafe fn lane_steps(_step: usize) -> i64 {
        0
    }
    #[inline(always)]
    unsafe fn index(base: usize, steps: i64) -> i64 {
        base as i64 + steps
    }
    #[inline(always)]
    unsafe fn store_idx(p: *mut i64, i: i64) {
        // SAFETY: the caller makes p[0] writable.
        unsafe { *p = i }
    }
    #[inline(always)]
    unsafe fn hsum(v: f32) -> f32 {
        v
    }
}
