//! The one error type of the library.

use std::fmt;

/// Everything that can be wrong with a call. Each message names the
/// offending value and the rule it breaks.
///
/// ```
/// use receptive::{Conv2dParams, Error};
/// // The seed's "doesn't fit": a 3x3 filter, stride 3, on a 7x7 input.
/// let err = Conv2dParams::new(1, 1, [3, 3]).stride(3).strict(true).output_shape([1, 1, 7, 7]).unwrap_err();
/// assert!(matches!(err, Error::DoesNotFit { axis: "rows", input: 7, span: 3, stride: 3, .. }));
/// assert_eq!(
///     err.to_string(),
///     "a filter spanning 3 rows does not fit an input of 7 rows with stride 3: (7 - 3)/3 + 1 = 2.33 is not a whole number"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A parameter has a value its rule forbids, e.g. a zero stride.
    InvalidParam {
        /// The parameter, e.g. `"stride (rows)"`.
        name: String,
        /// Its value as given.
        value: String,
        /// The rule it breaks, e.g. `"must be at least 1"`.
        rule: String,
    },
    /// The (dilated) kernel is larger than the padded input.
    KernelTooLarge {
        /// `"rows"` or `"columns"`.
        axis: &'static str,
        /// Kernel taps along the axis.
        kernel: usize,
        /// Dilation along the axis.
        dilation: usize,
        /// `dilation * (kernel - 1) + 1`.
        span: usize,
        /// Input plus padding along the axis.
        padded: usize,
    },
    /// Strict mode: the filter does not tile the padded input with this stride.
    DoesNotFit {
        /// `"rows"` or `"columns"`.
        axis: &'static str,
        /// Input size along the axis.
        input: usize,
        /// Total padding along the axis (before + after).
        padding: usize,
        /// Effective filter span along the axis.
        span: usize,
        /// Stride along the axis.
        stride: usize,
    },
    /// A buffer's length does not match its shape.
    LengthMismatch {
        /// Which buffer, e.g. `"input"`.
        what: &'static str,
        /// The length the shape requires.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A shape does not match what the parameters require.
    ShapeMismatch {
        /// What disagrees, e.g. `"input channels"`.
        what: &'static str,
        /// The value the parameters require.
        expected: usize,
        /// The value given.
        got: usize,
    },
    /// Size arithmetic overflows `usize`.
    Overflow {
        /// What was being computed.
        what: String,
    },
    /// The operation or configuration is valid but not supported.
    Unsupported {
        /// What is unsupported and why.
        what: String,
    },
}

impl Error {
    pub(crate) fn invalid(name: impl Into<String>, value: impl fmt::Display, rule: impl Into<String>) -> Error {
        Error::InvalidParam { name: name.into(), value: value.to_string(), rule: rule.into() }
    }
    pub(crate) fn overflow(what: impl Into<String>) -> Error {
        Error::Overflow { what: what.into() }
    }
}

/// `num / den + 1` with two decimals, trailing zeros dropped.
fn fmt_ratio_plus_one(num: usize, den: usize) -> String {
    let q = num as f64 / den as f64 + 1.0;
    let s = format!("{q:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidParam { name, value, rule } => write!(f, "{name} = {value} {rule}"),
            Error::KernelTooLarge { axis, kernel, dilation, span, padded } => write!(
                f,
                "kernel {kernel} with dilation {dilation} spans {span} {axis} but the padded input has {padded}"
            ),
            Error::DoesNotFit { axis, input, padding, span, stride } => {
                let filter = if *padding == 0 {
                    format!("({input} - {span})")
                } else {
                    format!("({input} + {padding} - {span})")
                };
                // Saturating: the fields are public, so this must not panic
                // on values no validation produced.
                let num = input.saturating_add(*padding).saturating_sub(*span);
                write!(
                    f,
                    "a filter spanning {span} {axis} does not fit an input of {input} {axis}{} with stride {stride}: \
                     {filter}/{stride} + 1 = {} is not a whole number",
                    if *padding == 0 { String::new() } else { format!(" padded by {padding}") },
                    fmt_ratio_plus_one(num, *stride),
                )
            }
            Error::LengthMismatch { what, expected, got } => {
                write!(f, "{what} has {got} elements but its shape needs {expected}")
            }
            Error::ShapeMismatch { what, expected, got } => {
                write!(f, "{what} is {got} but the parameters require {expected}")
            }
            Error::Overflow { what } => write!(f, "{what} overflows usize"),
            Error::Unsupported { what } => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with the library's [`Error`].
///
/// ```
/// fn output_side(n: usize) -> receptive::Result<usize> {
///     let [_, _, h, _] = receptive::Conv2dParams::new(1, 1, [3, 3]).output_shape([1, 1, n, n])?;
///     Ok(h)
/// }
/// assert_eq!(output_side(7)?, 5);
/// assert!(output_side(2).is_err()); // a 3x3 filter needs at least 3x3
/// # Ok::<(), receptive::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Multiplies sizes, reporting overflow in terms of `what`.
pub(crate) fn checked_product(dims: &[usize], what: &str) -> Result<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| Error::overflow(what.to_string()))
}

/// Checks that `len` matches the element count of `shape`.
pub(crate) fn check_len(what: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    // The message is only formatted on overflow (this runs on every call).
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::overflow(format!("the element count of {what} {shape:?}")))?;
    if len != expected {
        return Err(Error::LengthMismatch { what, expected, got: len });
    }
    Ok(())
}
