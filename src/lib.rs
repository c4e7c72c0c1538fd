//! # receptive
//!
//! SIMD-optimized CPU kernels for convolutional networks: conv2d and
//! pooling, forward and backward, in `f32`, for Rust ML crates (candle,
//! burn, tract, ndarray code) that want fast, checked kernels underneath.
//!
//! ```
//! use receptive::{Activation, Conv2dParams, Conv2dPlan, Pool2dParams};
//! // The seed's worked example: ten 5x5 filters, stride 1, pad 2 on 32x32x3.
//! let p = Conv2dParams::new(3, 10, [5, 5]).stride(1).padding(2);
//! assert_eq!(p.output_shape([1, 3, 32, 32])?, [1, 10, 32, 32]);
//! assert_eq!(p.param_count(), 760); // 10 * (5*5*3 + 1)
//!
//! let (x, w, b) = (vec![0.5; 3 * 32 * 32], vec![0.01; p.weight_count()], vec![0.1; 10]);
//! let plan = Conv2dPlan::new(&p, &w, Some(&b), Activation::Relu)?; // validate + pack once
//! let mut y = vec![0.0; 10 * 32 * 32];
//! plan.run(&x, [1, 3, 32, 32], &mut y)?; // run many times
//! let pooled = receptive::max_pool2d(&y, [1, 10, 32, 32], &Pool2dParams::max([2, 2]))?;
//! assert_eq!(pooled.len(), 10 * 16 * 16);
//! # Ok::<(), receptive::Error>(())
//! ```
//!
//! ## Layouts and shapes
//!
//! Tensors are NCHW `f32` slices plus a shape `[N, C, H, W]`, row-major
//! (`W` fastest). Convolution weights are `[K, C/groups, FH, FW]` (PyTorch's
//! layout), the bias `[K]`; transposed-convolution weights are
//! `[C_in, C_out/groups, FH, FW]`. Output sizes follow PyTorch:
//! `floor((N + pad_before + pad_after - dilation*(F-1) - 1) / stride) + 1`,
//! which with dilation 1 and symmetric padding is the familiar
//! `(N + 2P - F)/S + 1`. [`Conv2dParams::strict`] turns a stride that does
//! not tile the input exactly into an error instead of flooring. Pooling
//! follows `max_pool2d`/`avg_pool2d`, `ceil_mode`, `count_include_pad` and
//! `divisor_override` included; max pooling indices are flat per plane
//! (`h * W + w`), as PyTorch returns them.
//!
//! ## One-shot functions or plans
//!
//! [`conv2d`], [`max_pool2d`] and friends validate, prepare and run in one
//! call: right for a single use. A layer that runs many times should build a
//! plan once ([`Conv2dPlan`], [`Pool2dPlan`], [`Conv2dBackwardDataPlan`],
//! [`ConvTranspose2dPlan`]): the plan validates the parameters, packs the
//! weights into the GEMM's panel layout and picks the kernel once, so `run`
//! only checks buffer lengths and computes, allocating nothing beyond
//! per-thread scratch that is reused from call to call. Activations (ReLU,
//! clamp) are fused into the convolution's epilogue through
//! [`Activation`].
//!
//! ## Threads
//!
//! Work is split with rayon over batches, output-channel blocks and pixel
//! tiles (planes for pooling), on the *caller's* rayon pool: run inside
//! `pool.install(|| ...)` to choose the thread count, as a host framework
//! does; by default rayon's global pool is used. There is one level of
//! parallelism: the GEMM inside a task runs on its thread. Backward-weights
//! sums are reduced in a fixed order, so results are bitwise reproducible
//! for a given thread count.
//!
//! ## Errors
//!
//! Every operation validates its input before writing anything and returns
//! [`Result`]: bad parameters, shapes that do not fit, overflowing sizes and
//! buffers whose length does not match their shape are [`Error`]s whose
//! message names the value and the rule it breaks (e.g. "kernel 5 with
//! dilation 2 spans 9 rows but the padded input has 7"). Nothing panics on
//! bad input and nothing reads out of bounds.
//!
//! ## Instruction sets
//!
//! The best instruction set the CPU supports (AVX-512, AVX2+FMA, NEON, or
//! portable scalar code) is detected once per process; plans store their
//! kernel. The environment variable `RECEPTIVE_MAX_ISA=scalar|avx2|avx512|neon`
//! caps the choice (it never raises it), like oneDNN's `ONEDNN_MAX_CPU_ISA`;
//! [`active_isa`] and [`sgemm_kernel_info`] say what runs, and each plan's
//! `path()` (for a convolution, `path_for(input shape)`) names its kernel.
//!
//! ## Checking results
//!
//! [`reference`](mod@reference) holds naive loops (the seven-loop
//! convolution, window-by-window pooling, the triple-loop GEMM) that every
//! fast path is tested against; [`reference::tolerance`] gives the error
//! bound derived from the reduction length. Use them to check results on
//! your own data.
//!
//! ## Integrations
//!
//! Feature `ndarray`: `receptive::nd` runs plans and pooling over
//! `ArrayView4<f32>`. Feature `candle`: `receptive::candle` provides custom
//! ops with backward passes and a `Conv2d` module shaped like
//! `candle_nn::Conv2d`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod activation;
#[cfg(feature = "candle")]
pub mod candle;
mod conv;
mod conv_backward;
mod conv_transpose;
mod error;
mod gemm;
#[cfg(feature = "ndarray")]
pub mod nd;
mod parallel;
mod params;
mod pool;
pub mod reference;

pub use activation::Activation;
pub use conv::{Conv2dPlan, ConvAlgorithm, conv2d, conv2d_with};
pub use conv_backward::{
    Conv2dBackwardDataPlan, conv2d_backward_bias, conv2d_backward_data, conv2d_backward_weights,
    conv2d_backward_weights_into,
};
pub use conv_transpose::{ConvTranspose2dParams, ConvTranspose2dPlan, conv_transpose2d};
pub use error::{Error, Result};
pub use gemm::{Bias, KernelInfo, MatMut, MatRef, peak_gflops, sgemm, sgemm_kernel_info};
pub use params::{Conv2dParams, Padding, Pool2dParams, PoolKind};
pub use pool::{
    Pool2dPlan, avg_pool2d, avg_pool2d_backward, global_avg_pool2d, global_max_pool2d, max_pool2d, max_pool2d_backward,
    max_pool2d_with_indices,
};
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
