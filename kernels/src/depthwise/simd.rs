//! The handful of vector operations the depthwise body needs, one
//! implementation per ISA. Every method is `#[inline(always)]`, so the body
//! is compiled inside each ISA's `#[target_feature]` shell.

/// A vector of `LANES` floats.
///
/// # Safety
/// Implementations for an ISA may only be called where the CPU supports it
/// (inside that ISA's `#[target_feature]` shell).
pub(crate) unsafe trait Simd: Copy {
    /// Floats per vector (at most [`MAX_LANES`]).
    const LANES: usize;
    /// Vector registers of the ISA (how many accumulators fit).
    const REGS: usize;
    /// All lanes `v`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn splat(v: f32) -> Self;
    /// Loads `LANES` floats from `p` (any alignment).
    ///
    /// # Safety
    /// The CPU supports the ISA and `p` reaches `LANES` readable floats.
    unsafe fn load(p: *const f32) -> Self;
    /// Stores `LANES` floats at `p` (any alignment).
    ///
    /// # Safety
    /// The CPU supports the ISA and `p` reaches `LANES` writable floats.
    unsafe fn store(self, p: *mut f32);
    /// `a * b + c` (fused where the ISA has FMA).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    /// `min(max(self, lo), hi)` lane-wise, NaN lanes passing through.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn clamp(self, lo: f32, hi: f32) -> Self;

    /// A set of lanes for [`load_masked`](Simd::load_masked).
    type Mask: Copy;
    /// The lanes `lo..hi` (`lo <= hi <= LANES`).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn mask(lo: usize, hi: usize) -> Self::Mask;
    /// Loads the lanes of `m` from `p + lane`, zero in the others, touching
    /// no memory outside them (`p` itself may lie outside memory).
    ///
    /// # Safety
    /// The CPU supports the ISA and the floats `p + lane` of the lanes of
    /// `m` are readable.
    unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self;
    /// The even lanes of `a` then of `b`, and the odd lanes likewise: the
    /// floats at even and at odd offsets of the `2 * LANES` that `a` and
    /// `b` hold.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self);

    /// Stores the first `len < LANES` lanes at `p`, touching nothing past
    /// them. The default goes through the stack; ISAs with masked stores
    /// override it.
    ///
    /// # Safety
    /// The CPU supports the ISA and `p` reaches `len` writable floats.
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, len: usize) {
        let mut t = [0.0f32; MAX_LANES];
        // SAFETY: t holds MAX_LANES >= LANES floats; `len` writable at p.
        unsafe {
            self.store(t.as_mut_ptr());
            std::ptr::copy_nonoverlapping(t.as_ptr(), p, len.min(Self::LANES));
        }
    }
}

/// The widest vector of any ISA (AVX-512).
pub(crate) const MAX_LANES: usize = 16;

/// [`Simd::load_masked`] through the stack, for ISAs without masked
/// loads (the mask is the lane range `lo..hi`): a plain load when every
/// lane is set.
///
/// # Safety
/// As for [`Simd::load_masked`].
#[inline(always)]
unsafe fn load_range<V: Simd>(p: *const f32, (lo, hi): (usize, usize)) -> V {
    if lo == 0 && hi == V::LANES {
        // SAFETY: all LANES floats at p are readable (the contract).
        return unsafe { V::load(p) };
    }
    let mut t = [0.0f32; MAX_LANES];
    for (k, x) in t.iter_mut().enumerate().take(hi).skip(lo) {
        // SAFETY: lo <= k < hi, readable by the contract.
        *x = unsafe { *p.wrapping_add(k) };
    }
    // SAFETY: t holds MAX_LANES >= LANES floats.
    unsafe { V::load(t.as_ptr()) }
}

/// Portable code: four lanes of plain Rust the compiler may vectorize.
#[derive(Clone, Copy)]
pub(crate) struct Scalar([f32; 4]);

// SAFETY: plain Rust, valid on every CPU.
unsafe impl Simd for Scalar {
    const LANES: usize = 4;
    const REGS: usize = 16;
    type Mask = (usize, usize);
    #[inline(always)]
    unsafe fn mask(lo: usize, hi: usize) -> Self::Mask {
        (lo, hi)
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self {
        // SAFETY: forwarded from the caller.
        unsafe { load_range(p, m) }
    }
    #[inline(always)]
    unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
        let ([a0, a1, a2, a3], [b0, b1, b2, b3]) = (a.0, b.0);
        (Scalar([a0, a2, b0, b2]), Scalar([a1, a3, b1, b3]))
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Scalar([v; 4])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller vouches for 4 readable floats.
        Scalar(unsafe { p.cast::<[f32; 4]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller vouches for 4 writable floats.
        unsafe { p.cast::<[f32; 4]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // `a * b + c`, never `mul_add`: that is a libm call without FMA.
        Scalar(std::array::from_fn(|i| a.0[i] * b.0[i] + c.0[i]))
    }
    #[inline(always)]
    unsafe fn clamp(self, lo: f32, hi: f32) -> Self {
        // Comparisons are false for NaN, so it passes through.
        Scalar(self.0.map(|x| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        }))
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use std::arch::x86_64::*;

    /// AVX2 + FMA: 8 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2(__m256);

    // SAFETY: only called inside `avx2,fma` shells (the trait's contract).
    unsafe impl Simd for Avx2 {
        const LANES: usize = 8;
        const REGS: usize = 16;
        /// Lane i is set where its element is negative (all ones).
        type Mask = __m256i;
        #[inline(always)]
        unsafe fn mask(lo: usize, hi: usize) -> Self::Mask {
            // SAFETY: the CPU has AVX2 (caller's contract).
            unsafe {
                let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let below_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi as i32), iota);
                let below_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(lo as i32), iota);
                _mm256_andnot_si256(below_lo, below_hi)
            }
        }
        #[inline(always)]
        unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self {
            // SAFETY: vmaskmovps neither reads nor faults on masked-off
            // lanes; the caller vouches for the others.
            Avx2(unsafe { _mm256_maskload_ps(p, m) })
        }
        #[inline(always)]
        unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
            // shuffle_ps picks within 128-bit halves ([a0 a2 b0 b2 | a4 a6
            // b4 b6]); the 64-bit permute puts the halves in order.
            // SAFETY: the CPU has AVX2 (caller's contract).
            unsafe {
                let even = _mm256_shuffle_ps::<0b10_00_10_00>(a.0, b.0);
                let odd = _mm256_shuffle_ps::<0b11_01_11_01>(a.0, b.0);
                let order = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
                (Avx2(order(even)), Avx2(order(odd)))
            }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: the CPU has AVX (caller's contract).
            Avx2(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 8 readable floats at p (caller's contract).
            Avx2(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 8 writable floats at p (caller's contract).
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU has FMA (caller's contract).
            Avx2(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, len: usize) {
            // Lane i is written where its mask element is negative.
            // SAFETY: masked-off lanes are not written; the caller vouches
            // for the first `len`.
            unsafe {
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(len as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                _mm256_maskstore_ps(p, mask, self.0)
            }
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: f32, hi: f32) -> Self {
            // max/min return their second operand when either is NaN, so a
            // NaN in `self` passes through.
            // SAFETY: the CPU has AVX (caller's contract).
            unsafe { Avx2(_mm256_min_ps(_mm256_set1_ps(hi), _mm256_max_ps(_mm256_set1_ps(lo), self.0))) }
        }
    }

    /// AVX-512F: 16 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    // SAFETY: only called inside `avx512f` shells (the trait's contract).
    unsafe impl Simd for Avx512 {
        const LANES: usize = 16;
        const REGS: usize = 32;
        type Mask = __mmask16;
        #[inline(always)]
        unsafe fn mask(lo: usize, hi: usize) -> Self::Mask {
            (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as __mmask16
        }
        #[inline(always)]
        unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self {
            // SAFETY: AVX-512 masked loads neither read nor fault on
            // masked-off lanes; the caller vouches for the others.
            Avx512(unsafe { _mm512_maskz_loadu_ps(m, p) })
        }
        #[inline(always)]
        unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
            // SAFETY: the CPU has AVX-512F (caller's contract).
            unsafe {
                let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
                (Avx512(_mm512_permutex2var_ps(a.0, even, b.0)), Avx512(_mm512_permutex2var_ps(a.0, odd, b.0)))
            }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: the CPU has AVX-512F (caller's contract).
            Avx512(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 16 readable floats at p (caller's contract).
            Avx512(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 16 writable floats at p (caller's contract).
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU has AVX-512F (caller's contract).
            Avx512(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, len: usize) {
            // SAFETY: masked-off lanes are not written; the caller vouches
            // for the first `len`.
            unsafe { _mm512_mask_storeu_ps(p, ((1u32 << len) - 1) as __mmask16, self.0) }
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: f32, hi: f32) -> Self {
            // As for AVX2: the second operand wins when either is NaN.
            // SAFETY: the CPU has AVX-512F (caller's contract).
            unsafe { Avx512(_mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), self.0))) }
        }
    }
}

#[cfg(target_arch = "aarch64")]
pub(crate) use arm::Neon;

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::Simd;
    use std::arch::aarch64::*;

    /// NEON: 4 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Neon(float32x4_t);

    // SAFETY: only called inside `neon` shells (the trait's contract).
    unsafe impl Simd for Neon {
        const LANES: usize = 4;
        const REGS: usize = 32;
        type Mask = (usize, usize);
        #[inline(always)]
        unsafe fn mask(lo: usize, hi: usize) -> Self::Mask {
            (lo, hi)
        }
        #[inline(always)]
        unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self {
            // SAFETY: forwarded from the caller.
            unsafe { super::load_range(p, m) }
        }
        #[inline(always)]
        unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
            // SAFETY: the CPU has NEON (caller's contract).
            unsafe { (Neon(vuzp1q_f32(a.0, b.0)), Neon(vuzp2q_f32(a.0, b.0))) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            // SAFETY: the CPU has NEON (caller's contract).
            Neon(unsafe { vdupq_n_f32(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 4 readable floats at p (caller's contract).
            Neon(unsafe { vld1q_f32(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 4 writable floats at p (caller's contract).
            unsafe { vst1q_f32(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU has NEON (caller's contract).
            Neon(unsafe { vfmaq_f32(c.0, a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: f32, hi: f32) -> Self {
            // NEON's max/min return NaN when either input is NaN.
            // SAFETY: the CPU has NEON (caller's contract).
            unsafe { Neon(vminq_f32(vdupq_n_f32(hi), vmaxq_f32(vdupq_n_f32(lo), self.0))) }
        }
    }
}
