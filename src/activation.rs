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
    ///
    /// ```
    /// use receptive::Activation;
    /// // ReLU6 clips to [0, 6]; values inside pass unchanged.
    /// let relu6 = Activation::Clamp { min: 0.0, max: 6.0 };
    /// assert_eq!([-1.0, 3.0, 9.0].map(|x| relu6.apply(x)), [0.0, 3.0, 6.0]);
    /// ```
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
    ///
    /// ```
    /// use receptive::Activation;
    /// assert!(Activation::Clamp { min: 0.0, max: 6.0 }.validate().is_ok());
    /// assert!(Activation::Clamp { min: 6.0, max: 0.0 }.validate().is_err()); // min > max
    /// assert!(Activation::Clamp { min: f32::NAN, max: 6.0 }.validate().is_err());
    /// ```
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
