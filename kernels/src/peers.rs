//! Safe faces for the SGEMMs receptive is measured and checked against
//! (feature `peers`, used by tests and benches only): matrixmultiply, the
//! trusted oracle, and the `gemm` crate with AVX-512, the fastest Rust peer.
//! Their APIs take raw pointers; the views here vouch for them.

use crate::view::{MatMut, MatRef};

fn shapes_agree(a: &MatRef<'_>, b: &MatRef<'_>, c: &MatMut<'_>) {
    assert!(a.cols() == b.rows() && a.rows() == c.rows() && b.cols() == c.cols(), "sgemm shapes disagree");
}

fn stride(s: usize) -> isize {
    isize::try_from(s).expect("stride fits isize")
}

/// `C = alpha * A * B + beta * C` by matrixmultiply (`beta == 0` ignores C).
///
/// # Panics
/// If the shapes disagree.
pub fn matrixmultiply_sgemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, mut c: MatMut<'_>) {
    shapes_agree(&a, &b, &c);
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let (rsc, csc) = (stride(c.row_stride()), stride(c.col_stride()));
    // SAFETY: the views guarantee that every (i, j) inside m x k, k x n and
    // m x n lies inside the borrowed slices with these strides, and that C's
    // positions are distinct; C is borrowed mutably, so it overlaps neither
    // input.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data().as_ptr(),
            stride(a.row_stride()),
            stride(a.col_stride()),
            b.data().as_ptr(),
            stride(b.row_stride()),
            stride(b.col_stride()),
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        )
    }
}

/// `C = A * B` by the `gemm` crate, on `threads` rayon threads (1: serial).
///
/// # Panics
/// If the shapes disagree.
pub fn gemm_crate_sgemm(a: MatRef<'_>, b: MatRef<'_>, mut c: MatMut<'_>, threads: usize) {
    shapes_agree(&a, &b, &c);
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    let (rsc, csc) = (stride(c.row_stride()), stride(c.col_stride()));
    // SAFETY: as above. `gemm` takes the column stride before the row stride
    // and computes dst = alpha*dst + beta*lhs*rhs; read_dst = false never
    // reads dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            csc,
            rsc,
            false,
            a.data().as_ptr(),
            stride(a.col_stride()),
            stride(a.row_stride()),
            b.data().as_ptr(),
            stride(b.col_stride()),
            stride(b.row_stride()),
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}
