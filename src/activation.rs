//! Activations fused into the convolution and GEMM epilogues.

use crate::error::{Error, Result};

/// The function applied to each output while it is still in registers.
///
/// NaN passes through unchanged, as in PyTorch.
///
/// ```
/// use receptive::Activation;
/// assert_eq!(Activation::Relu.apply(-2.0), 0.0);
/// assert_eq!(Activation::Clamp { min: 0.0, max: 6.0 }.apply(7.5), 6.0);
/// assert!(Activation::Relu.apply(f32::NAN).is_nan());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, min), max)` (ReLU6 is `Clamp { min: 0.0, max: 6.0 }`).
    Clamp {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
}

impl Activation {
    /// Applies the activation to one value (the reference semantics).
    pub fn apply(self, x: f32) -> f32 {
        match self.bounds() {
            None => x,
            Some((lo, hi)) => {
                if x < lo {
                    lo
                } else if x > hi {
                    hi
                } else {
                    x
                }
            }
        }
    }

    /// Checks that clamp bounds are numbers with `min <= max`.
    pub fn validate(self) -> Result<()> {
        if let Activation::Clamp { min, max } = self
            && (min.is_nan() || max.is_nan() || min > max)
        {
            return Err(Error::invalid("clamp bounds", format!("({min}, {max})"), "must be numbers with min <= max"));
        }
        Ok(())
    }

    /// The `(min, max)` clamp the kernels apply, `None` for the identity.
    pub(crate) fn bounds(self) -> Option<(f32, f32)> {
        match self {
            Activation::None => None,
            Activation::Relu => Some((0.0, f32::INFINITY)),
            Activation::Clamp { min, max } => Some((min, max)),
        }
    }
}
