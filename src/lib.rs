//! # receptive
//!
//! SIMD-optimized CPU kernels for convolutional networks: conv2d and
//! pooling, forward and backward, in `f32`, for Rust ML crates (candle,
//! burn, tract, ndarray code) that want fast, checked kernels underneath.
//!
//! * Tensors are NCHW `f32` slices plus a shape `[N, C, H, W]`; weights are
//!   `[K, C/groups, FH, FW]`.
//! * Every operation validates its input and returns [`Result`]: bad shapes,
//!   overflowing sizes and wrong buffer lengths are [`Error`]s whose
//!   message names the value and the rule it breaks, never panics.
//! * [`reference`](mod@reference) holds naive implementations that every fast path is
//!   tested against; use them to check results on your own data.
//! * The instruction set is detected once; `RECEPTIVE_MAX_ISA=scalar|avx2|avx512|neon`
//!   caps it (see [`active_isa`]).
//!
//! ```
//! use receptive::Conv2dParams;
//! // The seed's worked example: ten 5x5 filters, stride 1, pad 2 on 32x32x3.
//! let p = Conv2dParams::new(3, 10, [5, 5]).stride(1).padding(2);
//! assert_eq!(p.output_shape([1, 3, 32, 32])?, [1, 10, 32, 32]);
//! assert_eq!(p.param_count(), 760); // 10 * (5*5*3 + 1)
//! # Ok::<(), receptive::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod activation;
mod conv;
mod conv_backward;
mod conv_transpose;
mod error;
mod gemm;
#[cfg(feature = "ndarray")]
pub mod nd;
mod params;
mod pool;
pub mod reference;

pub use activation::Activation;
pub use conv::{Conv2dPlan, conv2d, conv2d_with};
pub use conv_backward::{Conv2dBackwardDataPlan, conv2d_backward_bias, conv2d_backward_data, conv2d_backward_weights};
pub use conv_transpose::{ConvTranspose2dParams, ConvTranspose2dPlan, conv_transpose2d};
pub use error::{Error, Result};
pub use gemm::{Bias, KernelInfo, MatMut, MatRef, peak_gflops, sgemm, sgemm_kernel_info};
pub use params::{Conv2dParams, Padding, Pool2dParams, PoolKind};
pub use pool::{Pool2dPlan, avg_pool2d, global_avg_pool2d, global_max_pool2d, max_pool2d, max_pool2d_with_indices};
pub use receptive_kernels::Isa;

/// The instruction set the kernels run on: the best this CPU supports,
/// capped by `RECEPTIVE_MAX_ISA` when set. Detected once per process.
///
/// ```
/// let isa = receptive::active_isa();
/// assert!(isa.supported());
/// ```
pub fn active_isa() -> Isa {
    Isa::active()
}

/// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
