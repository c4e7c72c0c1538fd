//! The unsafe half of `receptive`: SIMD microkernels, packing and the loops
//! that drive them. Every line of `unsafe` in the project lives in this crate;
//! each unsafe fn has a `# Safety` section and each block a `// SAFETY:` line.
//!
//! The safe entry points here check what soundness needs (slice bounds,
//! disjoint views) and panic on contract violations; the `receptive` crate
//! validates user input first and reports it as errors.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod col2im;
pub mod depthwise;
pub mod direct;
mod evens;
pub mod gemm;
pub mod im2col;
pub mod im2col_t;
pub mod implicit;
pub mod isa;
pub mod peak;
#[cfg(feature = "peers")]
pub mod peers;
pub mod pool;
#[cfg(test)]
mod testing;
pub mod transpose;
pub mod view;
pub mod wgrad;

pub use isa::Isa;
pub use view::{MatMut, MatRef, ViewError};
