//! `sgemm`: single-precision matrix multiply with a fused epilogue, over
//! strided views (transposes are expressed by swapping strides).

use receptive_kernels::gemm::{self as kg, ASource, Gemm};
use receptive_kernels::{Isa, ViewError};

use crate::activation::Activation;
use crate::error::{Error, Result};

pub use receptive_kernels::gemm::Bias;
pub use receptive_kernels::{MatMut, MatRef};

impl From<ViewError> for Error {
    fn from(e: ViewError) -> Error {
        match e {
            ViewError::OutOfBounds { last, len } => Error::invalid(
                "matrix view",
                format!("reaching index {last}"),
                format!("must stay inside its slice of {len} elements"),
            ),
            ViewError::Overflow => Error::overflow("the matrix view's last index"),
            ViewError::Overlap { row_stride, col_stride } => Error::invalid(
                "mutable matrix strides",
                format!("(row {row_stride}, column {col_stride})"),
                "must not map two positions to one element",
            ),
        }
    }
}

/// The GEMM configuration dispatch picks for the active ISA, found once.
pub(crate) fn active_gemm() -> &'static Gemm {
    static GEMM: std::sync::OnceLock<Gemm> = std::sync::OnceLock::new();
    GEMM.get_or_init(|| Gemm::for_isa(Isa::active()))
}

/// `C = act(alpha * A * B + beta * C + bias)`, BLAS semantics for alpha and
/// beta (`beta == 0` never reads C).
///
/// ```
/// use receptive::{sgemm, Activation, Bias, MatMut, MatRef};
/// let a = [1.0, 2.0, 3.0, 4.0]; // 2x2, row-major
/// let b = [1.0, 0.0, 0.0, 1.0];
/// let mut c = [0.0; 4];
/// sgemm(1.0, MatRef::new(&a, 2, 2, 2, 1)?, MatRef::new(&b, 2, 2, 2, 1)?, 0.0,
///       MatMut::new(&mut c, 2, 2, 2, 1)?, Bias::PerRow(&[0.5, -10.0]), Activation::Relu)?;
/// assert_eq!(c, [1.5, 2.5, 0.0, 0.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn sgemm(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    bias: Bias<'_>,
    act: Activation,
) -> Result<()> {
    check_gemm_shapes(&a, &b, &c, &bias)?;
    act.validate()?;
    let ep = kg::Epilogue { bias, clamp: act.bounds() };
    active_gemm().run(alpha, ASource::Strided(a), &b, beta, c, &ep);
    Ok(())
}

pub(crate) fn check_gemm_shapes(a: &MatRef<'_>, b: &MatRef<'_>, c: &MatMut<'_>, bias: &Bias<'_>) -> Result<()> {
    let dims = [
        ("A's columns vs B's rows", a.cols(), b.rows()),
        ("C's rows vs A's rows", a.rows(), c.rows()),
        ("C's columns vs B's columns", b.cols(), c.cols()),
    ];
    for (what, expected, got) in dims {
        if expected != got {
            return Err(Error::ShapeMismatch { what, expected, got });
        }
    }
    match bias {
        Bias::PerRow(v) if v.len() != c.rows() => {
            Err(Error::LengthMismatch { what: "row bias", expected: c.rows(), got: v.len() })
        }
        Bias::PerCol(v) if v.len() != c.cols() => {
            Err(Error::LengthMismatch { what: "column bias", expected: c.cols(), got: v.len() })
        }
        _ => Ok(()),
    }
}
