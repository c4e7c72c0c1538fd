//! AVX2: 8 lanes, compare-and-blend for the max rule, in-lane shuffles plus
//! a cross-lane permute to deinterleave stride-2 columns.

use std::arch::x86_64::*;

use super::simd::Simd;

/// The AVX2 instance.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2;

impl Simd for Avx2 {
    const LANES: usize = 8;
    type F = __m256;
    type I = __m256i;

    #[inline(always)]
    unsafe fn splat(v: f32) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe { _mm256_set1_ps(v) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract); the caller makes p[0..8] readable.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_pair(p: *const f32) -> (__m256, __m256) {
        // SAFETY: the caller's CPU supports AVX2 (trait contract); the caller makes p[0..16] readable.
        unsafe {
            let (a, b) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)));
            // Per 128-bit half: [a0 a2 b0 b2 | a4 a6 b4 b6]; then order the
            // 64-bit pairs 0, 2, 1, 3.
            let e = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
            let o = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
            let fix = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
            (fix(e), fix(o))
        }
    }
    #[inline(always)]
    unsafe fn load_even(p: *const f32) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract); the caller makes p[0..15] readable and the
        // masked load reads no further.
        unsafe {
            let a = _mm256_loadu_ps(p);
            let b = _mm256_maskload_ps(p.add(8), _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0));
            let e = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(e)))
        }
    }
    #[inline(always)]
    unsafe fn shift_in(v: __m256, next: f32) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe {
            let down = _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7));
            _mm256_blend_ps::<0x80>(down, _mm256_set1_ps(next))
        }
    }
    #[inline(always)]
    unsafe fn next_lane(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe {
            // [a4..a7, b0..b3], then per 128-bit half the 4 bytes on.
            let mid = _mm256_castps_si256(_mm256_permute2f128_ps::<0x21>(a, b));
            _mm256_castsi256_ps(_mm256_alignr_epi8::<4>(mid, _mm256_castps_si256(a)))
        }
    }
    #[inline(always)]
    unsafe fn prev_lane(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe {
            // [a4..a7, b0..b3], then per 128-bit half the 12 bytes on.
            let mid = _mm256_castps_si256(_mm256_permute2f128_ps::<0x21>(a, b));
            _mm256_castsi256_ps(_mm256_alignr_epi8::<12>(_mm256_castps_si256(b), mid))
        }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        // SAFETY: the caller's CPU supports AVX2 (trait contract); the caller makes p[0..8] writable.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn and(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe { _mm256_and_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn max_nan(best: __m256, v: __m256) -> __m256 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe {
            // maxps(v, best) is `v > best ? v : best`; a NaN v is blended in.
            let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v);
            _mm256_blendv_ps(_mm256_max_ps(v, best), v, nan)
        }
    }
    #[inline(always)]
    unsafe fn max_nan_idx(best: __m256, bi: __m256i, v: __m256, vi: __m256i) -> (__m256, __m256i) {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe {
            let take = _mm256_or_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, best), _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            let i = _mm256_blendv_ps(_mm256_castsi256_ps(bi), _mm256_castsi256_ps(vi), take);
            (_mm256_blendv_ps(best, v, take), _mm256_castps_si256(i))
        }
    }
    #[inline(always)]
    unsafe fn lane_steps(step: usize) -> __m256i {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe { _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(step as i32)) }
    }
    #[inline(always)]
    unsafe fn index(base: usize, steps: __m256i) -> __m256i {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe { _mm256_add_epi32(_mm256_set1_epi32(base as i32), steps) }
    }
    #[inline(always)]
    unsafe fn store_idx(p: *mut i64, i: __m256i) {
        // SAFETY: the caller's CPU supports AVX2 (trait contract); the caller makes p[0..8] writable.
        unsafe {
            let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(i));
            let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(i));
            _mm256_storeu_si256(p.cast(), lo);
            _mm256_storeu_si256(p.add(4).cast(), hi);
        }
    }
    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        // SAFETY: the caller's CPU supports AVX2 (trait contract).
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
            _mm_cvtss_f32(s)
        }
    }
}

super::pool_shells!(Avx2, [1, 2], "avx2,fma");
