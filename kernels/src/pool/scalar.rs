//! The portable shells: the generic bodies on one lane, for any stride.

use super::simd::Scalar;

super::pool_shells!(Scalar, [0]);
