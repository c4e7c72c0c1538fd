//! AVX2 + FMA microkernels (x86-64).

use std::arch::x86_64::*;

use super::simd::{Simd, kernel_shell};

/// 8 floats per `ymm` register; partial vectors spill through the stack
/// (the trait's default), so no load or store leaves the tile.
pub(crate) struct Avx2;

// SAFETY: only used inside the `avx2,fma` shells below, which the registry
// runs only when the CPU reports AVX2 and FMA.
unsafe impl Simd for Avx2 {
    type V = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn zero() -> __m256 {
        // SAFETY: register-only; the CPU has AVX2 and FMA (trait contract).
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        // SAFETY: register-only; the CPU has AVX2 and FMA (trait contract).
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        // SAFETY: the caller vouches for 8 readable floats.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        // SAFETY: the caller vouches for 8 writable floats.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: register-only; the CPU has AVX2 and FMA (trait contract).
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        // SAFETY: register-only; the CPU has AVX2 and FMA (trait contract).
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        // SAFETY: register-only; the CPU has AVX2 and FMA (trait contract).
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn clamp(x: __m256, lo: __m256, hi: __m256) -> __m256 {
        // max/min return their second operand when either is NaN, so x
        // goes second and a NaN x survives both.
        // SAFETY: register-only; the CPU has AVX2 and FMA (trait contract).
        unsafe { _mm256_min_ps(hi, _mm256_max_ps(lo, x)) }
    }
}

kernel_shell!(
    /// AVX2 6x16 microkernel: 12 `ymm` accumulators, 2 for the B step and 1
    /// for the broadcast A element fill 15 of the 16 registers (the classic
    /// Haswell tile; 2 FMAs/cycle x 5 cycles latency needs >= 10 chains).
    sgemm_6x16_avx2, sgemm_6x16_avx2_strided, sgemm_6x16_avx2_offsets, sgemm_6x16_avx2_gathered, Avx2, "avx2,fma", 6, 2, 16
);
