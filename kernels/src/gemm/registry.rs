//! One table of every microkernel. Tests and benches iterate it, and
//! dispatch picks from it, so adding a kernel is one line here.

use super::{GatherKernelFn, KernelFn, OffsetKernelFn, StridedKernelFn};
use crate::isa::Isa;

/// A microkernel and the facts the driver needs about it.
#[derive(Debug)]
pub struct MicroKernel {
    /// Name carrying tile and ISA, e.g. `sgemm_4x8_scalar`.
    pub name: &'static str,
    /// The ISA the kernel needs.
    pub isa: Isa,
    /// Rows of C per tile (A panel width).
    pub mr: usize,
    /// Columns of C per tile (B panel width).
    pub nr: usize,
    /// The kernel over packed panels.
    pub func: KernelFn,
    /// The same kernel reading A and B through strides (see [`StridedKernelFn`]).
    pub func_strided: StridedKernelFn,
    /// The same kernel reading B's steps at offsets (see [`OffsetKernelFn`]).
    pub func_offsets: OffsetKernelFn,
    /// The same kernel reading A's rows at gathered addresses (see [`GatherKernelFn`]).
    pub func_gathered: GatherKernelFn,
}

macro_rules! kernel {
    ($module:ident :: $name:ident / $strided:ident / $offsets:ident / $gathered:ident, $isa:expr, $mr:literal x $nr:literal) => {
        MicroKernel {
            name: stringify!($name),
            isa: $isa,
            mr: $mr,
            nr: $nr,
            func: super::$module::$name,
            func_strided: super::$module::$strided,
            func_offsets: super::$module::$offsets,
            func_gathered: super::$module::$gathered,
        }
    };
}

/// Every microkernel compiled for this target; per ISA the first listed is
/// the one dispatch picks.
#[cfg(target_arch = "x86_64")]
pub static KERNELS: &[MicroKernel] = &[
    kernel!(avx512::sgemm_6x64_avx512 / sgemm_6x64_avx512_strided / sgemm_6x64_avx512_offsets / sgemm_6x64_avx512_gathered, Isa::Avx512, 6 x 64),
    kernel!(avx2::sgemm_6x16_avx2 / sgemm_6x16_avx2_strided / sgemm_6x16_avx2_offsets / sgemm_6x16_avx2_gathered, Isa::Avx2, 6 x 16),
    kernel!(scalar::sgemm_4x8_scalar / sgemm_4x8_scalar_strided / sgemm_4x8_scalar_offsets / sgemm_4x8_scalar_gathered, Isa::Scalar, 4 x 8),
];

/// Every microkernel compiled for this target; per ISA the first listed is
/// the one dispatch picks.
#[cfg(target_arch = "aarch64")]
pub static KERNELS: &[MicroKernel] = &[
    kernel!(neon::sgemm_12x8_neon / sgemm_12x8_neon_strided / sgemm_12x8_neon_offsets / sgemm_12x8_neon_gathered, Isa::Neon, 12 x 8),
    kernel!(scalar::sgemm_4x8_scalar / sgemm_4x8_scalar_strided / sgemm_4x8_scalar_offsets / sgemm_4x8_scalar_gathered, Isa::Scalar, 4 x 8),
];

/// Every microkernel compiled for this target; per ISA the first listed is
/// the one dispatch picks.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub static KERNELS: &[MicroKernel] = &[
    kernel!(scalar::sgemm_4x8_scalar / sgemm_4x8_scalar_strided / sgemm_4x8_scalar_offsets / sgemm_4x8_scalar_gathered, Isa::Scalar, 4 x 8),
];

/// The preferred kernel for `isa`, falling back to scalar when the table has
/// none for it.
pub fn kernel_for(isa: Isa) -> &'static MicroKernel {
    KERNELS
        .iter()
        .find(|k| k.isa == isa)
        .or_else(|| KERNELS.iter().find(|k| k.isa == Isa::Scalar))
        .expect("the registry always lists a scalar kernel")
}
