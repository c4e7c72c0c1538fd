//! The portable microkernel: plain Rust the compiler may auto-vectorize.
//! `a * b + c`, never `mul_add`, which is a libm call without the `fma`
//! target feature.

use super::epilogue::{TileEpilogue, store_tile};
use super::{ASteps, BSteps, GatheredA, OffsetB, StridedA, StridedB};

/// Generic body for any `MR x NR`, A read through strides and B's steps
/// where `b` says, as in the SIMD body.
///
/// # Safety
/// The contract of [`crate::gemm::StridedKernelFn`] (or
/// [`crate::gemm::OffsetKernelFn`]) for this `MR` and `NR`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the BLIS kernel contract, see StridedKernelFn
unsafe fn body<A: ASteps, B: BSteps, const MR: usize, const NR: usize>(
    kc: usize,
    a: A,
    b: B,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    t: &TileEpilogue,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for p in 0..kc {
        // SAFETY: step p of B's NR columns is readable.
        let bp = unsafe { b.step(p) };
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: i < MR, p < kc: readable by the kernel contract.
            let ai = unsafe { a.at(i, p) };
            for (j, x) in row.iter_mut().enumerate() {
                // SAFETY: j < NR, inside step p of the B panel.
                *x += ai * unsafe { *bp.add(j) };
            }
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { store_tile::<MR, NR>(&acc, c, rs_c, cs_c, m, n, t) }
}

/// Scalar 4x8 microkernel: 32 accumulators, small enough for the compiler
/// to keep in registers on every target.
///
/// # Safety
/// The contract of [`crate::gemm::KernelFn`] with `MR = 4`, `NR = 8`.
pub unsafe fn sgemm_4x8_scalar(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    t: &TileEpilogue,
) {
    // SAFETY: forwarded from the caller; packed panels have these strides.
    unsafe { body::<_, _, 4, 8>(kc, StridedA { a, rs: 1, cs: 4 }, StridedB { b, rs: 8 }, c, rs_c, cs_c, m, n, t) }
}

/// [`sgemm_4x8_scalar`] reading A and B through strides.
///
/// # Safety
/// The contract of [`crate::gemm::StridedKernelFn`] with `MR = 4`, `NR = 8`.
#[allow(clippy::too_many_arguments)] // the BLIS kernel contract, see StridedKernelFn
pub unsafe fn sgemm_4x8_scalar_strided(
    kc: usize,
    a: *const f32,
    rs_a: usize,
    cs_a: usize,
    b: *const f32,
    rs_b: usize,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    t: &TileEpilogue,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        body::<_, _, 4, 8>(kc, StridedA { a, rs: rs_a, cs: cs_a }, StridedB { b, rs: rs_b }, c, rs_c, cs_c, m, n, t)
    }
}

/// [`sgemm_4x8_scalar`] reading B's steps at a table of offsets.
///
/// # Safety
/// The contract of [`crate::gemm::OffsetKernelFn`] with `MR = 4`, `NR = 8`.
#[allow(clippy::too_many_arguments)] // the BLIS kernel contract, see OffsetKernelFn
pub unsafe fn sgemm_4x8_scalar_offsets(
    kc: usize,
    a: *const f32,
    b: *const f32,
    offsets: *const u32,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    t: &TileEpilogue,
) {
    // SAFETY: forwarded from the caller; a packed A panel has these strides.
    unsafe { body::<_, _, 4, 8>(kc, StridedA { a, rs: 1, cs: 4 }, OffsetB { b, offsets }, c, rs_c, cs_c, m, n, t) }
}

/// [`sgemm_4x8_scalar`] reading A's rows at gathered addresses.
///
/// # Safety
/// The contract of [`crate::gemm::GatherKernelFn`] with `MR = 4`, `NR = 8`.
#[allow(clippy::too_many_arguments)] // the BLIS kernel contract, see GatherKernelFn
pub unsafe fn sgemm_4x8_scalar_gathered(
    kc: usize,
    rows: *const *const f32,
    offsets: *const u32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    t: &TileEpilogue,
) {
    // SAFETY: forwarded from the caller; a packed B panel has this stride.
    unsafe { body::<_, _, 4, 8>(kc, GatheredA { rows, offsets }, StridedB { b, rs: 8 }, c, rs_c, cs_c, m, n, t) }
}

/// The portable "vector" of one float: the peak probe's scalar baseline.
pub(crate) struct Scalar;

// SAFETY: plain Rust, valid on every CPU.
unsafe impl super::simd::Simd for Scalar {
    type V = f32;
    const LANES: usize = 1;

    #[inline(always)]
    unsafe fn zero() -> f32 {
        0.0
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        // SAFETY: the caller vouches for one readable float.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: f32) {
        // SAFETY: the caller vouches for one writable float.
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn fmadd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
    #[inline(always)]
    unsafe fn mul(a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    unsafe fn add(a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    unsafe fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
        super::epilogue::clamp_keep_nan(x, lo, hi)
    }
}
