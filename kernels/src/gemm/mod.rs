//! Blocked SGEMM: the five BLIS loops around an `MR x NR` microkernel.
//!
//! `C = act(alpha * A * B + beta * C + bias)`, with `A` `m x k`, `B` `k x n`.
//! A and B are copied into zero-padded panels ([`pack`]) so the microkernel
//! reads both with unit stride and never past memory the library owns;
//! `B` can come from any [`PackB`] source, which is how convolution gathers
//! im2col columns straight into panels without building the whole matrix.
//! Where a copy would cost more than it saves, a plain strided A or
//! row-contiguous B is read in place instead ([`Packing`]).
//!
//! Each SIMD ISA implements the small vector trait in `simd.rs`; one
//! generic body there is the microkernel for all of them, wrapped in thin
//! `#[target_feature]` shells per tile (`avx512.rs`, `avx2.rs`, `neon.rs`).

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
mod driver;
mod epilogue;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
pub mod pack;
mod registry;
pub(crate) mod scalar;
pub(crate) mod simd;

pub use driver::{ASource, CacheSizes, Gemm, PackedA, Packing};
pub use epilogue::{Bias, Epilogue, TileEpilogue};
pub use pack::PackB;
pub use registry::{KERNELS, MicroKernel, kernel_for};

/// A microkernel: `C[m x n] = epilogue(A_panel[kc x MR]^T * B_panel[kc x NR])`
/// for `m <= MR`, `n <= NR`.
///
/// # Safety
/// `a` must point to `kc * MR` readable floats, `b` to `kc * NR` readable
/// floats (both packed, any alignment), and `c` to an `m x n` block whose
/// element (i, j) at `c + i*rs_c + j*cs_c` is writable (and readable when
/// the epilogue loads C); `tile.bias_row` / `tile.bias_col` must be null or
/// point to `m` / `n` readable floats.
pub type KernelFn = unsafe fn(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    tile: &TileEpilogue,
);

/// A microkernel reading A and B in place: the contract of [`KernelFn`],
/// except that A's element (i, p) is at `a + i*rs_a + p*cs_a` and B's step p
/// (NR contiguous floats) at `b + p*rs_b`.
///
/// # Safety
/// For every `i < MR`, `j < NR` and `p < kc` (all MR rows and NR columns,
/// even when `m < MR` or `n < NR`) those elements are readable; C and the
/// epilogue as for [`KernelFn`].
pub type StridedKernelFn = unsafe fn(
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
    tile: &TileEpilogue,
);

/// A microkernel reading B through a table of row offsets: the contract of
/// [`KernelFn`] for A (a packed `kc x MR` panel), with B's step p the NR
/// contiguous floats at `b + offsets[p]`. Implicit-GEMM convolution uses it
/// to read the rows of the im2col matrix straight out of the input
/// ([`crate::implicit`]).
///
/// # Safety
/// `offsets` holds `kc` entries, and for every `p < kc` the NR floats at
/// `b + offsets[p]` are readable (all NR, even when `n < NR`); A, C and the
/// epilogue as for [`KernelFn`].
pub type OffsetKernelFn = unsafe fn(
    kc: usize,
    a: *const f32,
    b: *const f32,
    offsets: *const u32,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    tile: &TileEpilogue,
);

/// A microkernel reading A's rows at gathered addresses: row i's step p at
/// `rows[i] + offsets[p]`, and B as a packed `kc x NR` panel. Implicit
/// convolution with output channels in the vector lanes uses it: each A row
/// is one output pixel, each step one filter tap ([`crate::implicit`]).
///
/// # Safety
/// `rows` holds MR pointers and `offsets` `kc` entries, and for every
/// `i < MR` (all MR, even when `m < MR`) and `p < kc` the float at
/// `rows[i] + offsets[p]` is readable; B, C and the epilogue as for
/// [`KernelFn`].
pub type GatherKernelFn = unsafe fn(
    kc: usize,
    rows: *const *const f32,
    offsets: *const u32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    tile: &TileEpilogue,
);

/// Where a microkernel finds A's element (i, p): packed, strided and
/// gathered A share one body.
pub(crate) trait ASteps: Copy {
    /// Element (i, p).
    ///
    /// # Safety
    /// `i < MR` and `p < kc` of the kernel, whose contract makes it readable.
    unsafe fn at(self, i: usize, p: usize) -> f32;
}

/// Element (i, p) at `a + i * rs + p * cs` (a packed panel: `(1, MR)`).
#[derive(Clone, Copy)]
pub(crate) struct StridedA {
    pub a: *const f32,
    pub rs: usize,
    pub cs: usize,
}

impl ASteps for StridedA {
    #[inline(always)]
    unsafe fn at(self, i: usize, p: usize) -> f32 {
        // SAFETY: inside A by the kernel contract (see the trait).
        unsafe { *self.a.add(i * self.rs + p * self.cs) }
    }
}

/// Element (i, p) at `rows[i] + offsets[p]`.
#[derive(Clone, Copy)]
pub(crate) struct GatheredA {
    pub rows: *const *const f32,
    pub offsets: *const u32,
}

impl ASteps for GatheredA {
    #[inline(always)]
    unsafe fn at(self, i: usize, p: usize) -> f32 {
        // SAFETY: `rows` holds MR pointers, `offsets` kc entries, and each
        // sum is readable, by the contract of `GatherKernelFn`.
        unsafe { *(*self.rows.add(i)).add(*self.offsets.add(p) as usize) }
    }
}

/// Where a microkernel finds B's step p: the one thing the packed, strided
/// and offset-table kernels differ in, so they share one body.
pub(crate) trait BSteps: Copy {
    /// The first of step p's NR floats.
    ///
    /// # Safety
    /// `p` is below the kernel's `kc`, whose contract makes the result valid.
    unsafe fn step(self, p: usize) -> *const f32;
}

/// Step p at `b + p * rs` (a packed panel: `rs = NR`).
#[derive(Clone, Copy)]
pub(crate) struct StridedB {
    pub b: *const f32,
    pub rs: usize,
}

impl BSteps for StridedB {
    #[inline(always)]
    unsafe fn step(self, p: usize) -> *const f32 {
        // SAFETY: inside B by the kernel contract (see the trait).
        unsafe { self.b.add(p * self.rs) }
    }
}

/// Step p at `b + offsets[p]`.
#[derive(Clone, Copy)]
pub(crate) struct OffsetB {
    pub b: *const f32,
    pub offsets: *const u32,
}

impl BSteps for OffsetB {
    #[inline(always)]
    unsafe fn step(self, p: usize) -> *const f32 {
        // SAFETY: `offsets` holds kc entries and each lands inside B, by the
        // contract of `OffsetKernelFn`.
        unsafe { self.b.add(*self.offsets.add(p) as usize) }
    }
}
