//! One table of every microkernel. Tests and benches iterate it, and
//! dispatch picks from it, so adding a kernel is one line here.

use super::KernelFn;
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
    /// The kernel.
    pub func: KernelFn,
}

/// Every microkernel compiled for this target; per ISA the first listed is
/// the one dispatch picks.
pub static KERNELS: &[MicroKernel] =
    &[MicroKernel { name: "sgemm_4x8_scalar", isa: Isa::Scalar, mr: 4, nr: 8, func: super::scalar::sgemm_4x8_scalar }];

/// The preferred kernel for `isa`, falling back to scalar when the table has
/// none for it.
pub fn kernel_for(isa: Isa) -> &'static MicroKernel {
    KERNELS
        .iter()
        .find(|k| k.isa == isa)
        .or_else(|| KERNELS.iter().find(|k| k.isa == Isa::Scalar))
        .expect("the registry always lists a scalar kernel")
}
