//! NEON: 4 lanes, compare-and-select for the max rule, `vld2q` to
//! deinterleave stride-2 columns.

use std::arch::aarch64::*;

use super::simd::Simd;

/// The NEON instance.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon;

impl Simd for Neon {
    const LANES: usize = 4;
    type F = float32x4_t;
    type I = int32x4_t;

    #[inline(always)]
    unsafe fn splat(v: f32) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe { vdupq_n_f32(v) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract); the caller makes p[0..4] readable.
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn load_pair(p: *const f32) -> (float32x4_t, float32x4_t) {
        // SAFETY: the caller's CPU supports NEON (trait contract); the caller makes p[0..8] readable.
        unsafe {
            let v = vld2q_f32(p);
            (v.0, v.1)
        }
    }
    #[inline(always)]
    unsafe fn load_even(p: *const f32) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract); the caller makes p[0..7] readable: the loads
        // cover p[0..4] and p[3..7].
        unsafe {
            let (a, b) = (vld1q_f32(p), vld1q_f32(p.add(3)));
            // [p0 p2 ..] and [p4 p6 ..] (the odd lanes of p[3..7]).
            vcombine_f32(vget_low_f32(vuzp1q_f32(a, a)), vget_low_f32(vuzp2q_f32(b, b)))
        }
    }
    #[inline(always)]
    unsafe fn shift_in(v: float32x4_t, next: f32) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe { vextq_f32::<1>(v, vdupq_n_f32(next)) }
    }
    #[inline(always)]
    unsafe fn next_lane(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe { vextq_f32::<1>(a, b) }
    }
    #[inline(always)]
    unsafe fn prev_lane(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe { vextq_f32::<3>(a, b) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: float32x4_t) {
        // SAFETY: the caller's CPU supports NEON (trait contract); the caller makes p[0..4] writable.
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn and(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe { vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(a), vreinterpretq_u32_f32(b))) }
    }
    #[inline(always)]
    unsafe fn max_nan(best: float32x4_t, v: float32x4_t) -> float32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe {
            // vmaxq's NaN rule differs (a NaN best must survive a number), so select.
            let take = vorrq_u32(vcgtq_f32(v, best), vmvnq_u32(vceqq_f32(v, v)));
            vbslq_f32(take, v, best)
        }
    }
    #[inline(always)]
    unsafe fn max_nan_idx(best: float32x4_t, bi: int32x4_t, v: float32x4_t, vi: int32x4_t) -> (float32x4_t, int32x4_t) {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe {
            let take = vorrq_u32(vcgtq_f32(v, best), vmvnq_u32(vceqq_f32(v, v)));
            (vbslq_f32(take, v, best), vbslq_s32(take, vi, bi))
        }
    }
    #[inline(always)]
    unsafe fn lane_steps(step: usize) -> int32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract); `lanes` holds 4 i32.
        unsafe {
            let lanes: [i32; 4] = [0, 1, 2, 3];
            vmulq_n_s32(vld1q_s32(lanes.as_ptr()), step as i32)
        }
    }
    #[inline(always)]
    unsafe fn index(base: usize, steps: int32x4_t) -> int32x4_t {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe { vaddq_s32(vdupq_n_s32(base as i32), steps) }
    }
    #[inline(always)]
    unsafe fn store_idx(p: *mut i64, i: int32x4_t) {
        // SAFETY: the caller's CPU supports NEON (trait contract); the caller makes p[0..4] writable.
        unsafe {
            vst1q_s64(p, vmovl_s32(vget_low_s32(i)));
            vst1q_s64(p.add(2), vmovl_high_s32(i));
        }
    }
    #[inline(always)]
    unsafe fn hsum(v: float32x4_t) -> f32 {
        // SAFETY: the caller's CPU supports NEON (trait contract).
        unsafe { vaddvq_f32(v) }
    }
}

super::pool_shells!(Neon, [1, 2], "neon");
