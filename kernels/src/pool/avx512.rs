//! AVX-512F: 16 lanes, compare masks for the max rule, `vpermt2ps` to
//! deinterleave stride-2 columns.

use std::arch::x86_64::*;

use super::simd::Simd;

/// The AVX-512F instance.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512;

impl Simd for Avx512 {
    const LANES: usize = 16;
    type F = __m512;
    type I = __m512i;

    #[inline(always)]
    unsafe fn splat(v: f32) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe { _mm512_set1_ps(v) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract); the caller makes p[0..16] readable.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_pair(p: *const f32) -> (__m512, __m512) {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract); the caller makes p[0..32] readable.
        unsafe {
            let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            let (a, b) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
            (_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b))
        }
    }
    #[inline(always)]
    unsafe fn load_even(p: *const f32) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract); the caller makes p[0..31] readable and the
        // masked load reads no further.
        unsafe {
            let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let (a, b) = (_mm512_loadu_ps(p), _mm512_maskz_loadu_ps(0x7fff, p.add(16)));
            _mm512_permutex2var_ps(a, even, b)
        }
    }
    #[inline(always)]
    unsafe fn shift_in(v: __m512, next: f32) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe {
            _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(
                _mm512_castps_si512(_mm512_set1_ps(next)),
                _mm512_castps_si512(v),
            ))
        }
    }
    #[inline(always)]
    unsafe fn next_lane(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe { _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(_mm512_castps_si512(b), _mm512_castps_si512(a))) }
    }
    #[inline(always)]
    unsafe fn prev_lane(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe { _mm512_castsi512_ps(_mm512_alignr_epi32::<15>(_mm512_castps_si512(b), _mm512_castps_si512(a))) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract); the caller makes p[0..16] writable.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn and(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe { _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b))) }
    }
    #[inline(always)]
    unsafe fn max_nan(best: __m512, v: __m512) -> __m512 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe {
            // maxps(v, best) is `v > best ? v : best` (ties and a NaN best keep
            // best), taken where v is a number; a NaN v passes through.
            let num = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(v, v);
            _mm512_mask_max_ps(v, num, v, best)
        }
    }
    #[inline(always)]
    unsafe fn max_nan_idx(best: __m512, bi: __m512i, v: __m512, vi: __m512i) -> (__m512, __m512i) {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe {
            let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best) | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
            (_mm512_mask_mov_ps(best, take, v), _mm512_mask_mov_epi32(bi, take, vi))
        }
    }
    #[inline(always)]
    unsafe fn lane_steps(step: usize) -> __m512i {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe {
            let s = step as i32;
            _mm512_mullo_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(s),
            )
        }
    }
    #[inline(always)]
    unsafe fn index(base: usize, steps: __m512i) -> __m512i {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe { _mm512_add_epi32(_mm512_set1_epi32(base as i32), steps) }
    }
    #[inline(always)]
    unsafe fn store_idx(p: *mut i64, i: __m512i) {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract); the caller makes p[0..16] writable.
        unsafe {
            let lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(i));
            let hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(i));
            _mm512_storeu_si512(p.cast(), lo);
            _mm512_storeu_si512(p.add(8).cast(), hi);
        }
    }
    #[inline(always)]
    unsafe fn hsum(v: __m512) -> f32 {
        // SAFETY: the caller's CPU supports AVX-512F (trait contract).
        unsafe { _mm512_reduce_add_ps(v) }
    }
}

super::pool_shells!(Avx512, [1, 2], "avx512f,avx2,fma");
