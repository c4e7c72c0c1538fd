//! NEON microkernels (aarch64).

use std::arch::aarch64::*;

use super::simd::{Simd, kernel_shell};

/// 4 floats per `q` register; partial vectors spill through the stack
/// (the trait's default), so no load or store leaves the tile.
pub(crate) struct Neon;

// SAFETY: only used inside the `neon` shells below, which the registry runs
// only when the CPU reports NEON (always, on aarch64).
unsafe impl Simd for Neon {
    type V = float32x4_t;
    const LANES: usize = 4;

    #[inline(always)]
    unsafe fn zero() -> float32x4_t {
        // SAFETY: register-only; the CPU has NEON (trait contract).
        unsafe { vdupq_n_f32(0.0) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> float32x4_t {
        // SAFETY: register-only; the CPU has NEON (trait contract).
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> float32x4_t {
        // SAFETY: the caller vouches for 4 readable floats.
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: float32x4_t) {
        // SAFETY: the caller vouches for 4 writable floats.
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: register-only; the CPU has NEON (trait contract).
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: register-only; the CPU has NEON (trait contract).
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: register-only; the CPU has NEON (trait contract).
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn clamp(x: float32x4_t, lo: float32x4_t, hi: float32x4_t) -> float32x4_t {
        // Compare and select (not FMAX/FMIN, which turn NaN into NaN but
        // also +0 for max(0, -0)): lanes with x < lo take lo, x > hi take
        // hi, and NaN compares false, so it is kept, as in the reference.
        // SAFETY: register-only; the CPU has NEON (trait contract).
        unsafe {
            let x = vbslq_f32(vcltq_f32(x, lo), lo, x);
            vbslq_f32(vcgtq_f32(x, hi), hi, x)
        }
    }
}

kernel_shell!(
    /// NEON 12x8 microkernel: 24 accumulators, 2 for the B step and the
    /// broadcast A element fit the 32 `q` registers. Chosen by register
    /// count (no aarch64 hardware to measure on; it runs under qemu).
    sgemm_12x8_neon, sgemm_12x8_neon_strided, sgemm_12x8_neon_offsets, sgemm_12x8_neon_gathered, Neon, "neon", 12, 2, 8
);
