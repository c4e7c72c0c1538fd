//! AVX-512F microkernels (x86-64).
//!
//! Tile choice: see the note on the kernel below.

use std::arch::x86_64::*;

use super::simd::{Simd, kernel_shell};

/// 16 floats per `zmm` register; partial vectors use masked loads and
/// stores, which never touch memory outside the mask.
pub(crate) struct Avx512;

// SAFETY: only used inside the `avx512f` shells below, which the registry
// runs only when the CPU reports AVX-512F.
unsafe impl Simd for Avx512 {
    type V = __m512;
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        // SAFETY: register-only; the CPU has AVX-512F (trait contract).
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        // SAFETY: register-only; the CPU has AVX-512F (trait contract).
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: the caller vouches for 16 readable floats.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        // SAFETY: the caller vouches for 16 writable floats.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: register-only; the CPU has AVX-512F (trait contract).
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        // SAFETY: register-only; the CPU has AVX-512F (trait contract).
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: register-only; the CPU has AVX-512F (trait contract).
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn clamp(x: __m512, lo: __m512, hi: __m512) -> __m512 {
        // max/min return their second operand when either is NaN, so x
        // goes second and a NaN x survives both.
        // SAFETY: register-only; the CPU has AVX-512F (trait contract).
        unsafe { _mm512_min_ps(hi, _mm512_max_ps(lo, x)) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, len: usize) -> __m512 {
        // SAFETY: masked-off lanes are not accessed; the caller vouches
        // for the first `len`.
        unsafe { _mm512_maskz_loadu_ps(mask(len), p) }
    }
    #[inline(always)]
    unsafe fn store_partial(p: *mut f32, len: usize, v: __m512) {
        // SAFETY: as in `load_partial`.
        unsafe { _mm512_mask_storeu_ps(p, mask(len), v) }
    }
}

/// The first `len` (< 16) lanes.
#[inline(always)]
fn mask(len: usize) -> __mmask16 {
    ((1u32 << len) - 1) as __mmask16
}

kernel_shell!(
    /// AVX-512 6x64 microkernel: 24 `zmm` accumulators (6 rows x 4
    /// vectors), 4 for the B step and 1 for the broadcast A element: 29 of
    /// the 32 registers. Zen 5 runs two 512-bit FMAs per cycle with 4 cycles
    /// latency, so >= 8 independent chains keep it busy; of the tiles that
    /// fit, 6x64 needs the fewest loads per FMA (10 per 24).
    ///
    /// Measured single-thread on Zen 5 through the driver (GFLOP/s, KC 256,
    /// a busy machine, so +-5%): 1024^3 / (512,49,4608) / (64,3136,576) /
    /// (128,784,1152): 6x64 204 / 88 / 163 / 186; 8x32 197 / 84 / 140 / 179;
    /// 12x32 194 / 84 / 137 / 162; 14x32 180 / 79 / 138 / 172; 28x16 173 /
    /// 79 / 102 / 163.
    sgemm_6x64_avx512, sgemm_6x64_avx512_strided, sgemm_6x64_avx512_offsets, sgemm_6x64_avx512_gathered, Avx512, "avx512f,avx2,fma", 6, 4, 64
);
