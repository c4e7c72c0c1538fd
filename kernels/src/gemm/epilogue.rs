//! What happens to a finished tile before it is stored: alpha/beta, bias and
//! activation, applied while the tile is still in registers.

/// Bias added to every element of a row or of a column of C.
#[derive(Clone, Copy, Debug, Default)]
pub enum Bias<'a> {
    /// No bias.
    #[default]
    None,
    /// `bias[i]` is added to row i (convolution: one bias per output channel).
    PerRow(&'a [f32]),
    /// `bias[j]` is added to column j (a dense layer with C = X * W).
    PerCol(&'a [f32]),
}

/// The fused epilogue of a GEMM call: bias, then `clamp(min, max)`.
///
/// ReLU is `clamp(0, +inf)`. NaN passes through the clamp unchanged, as in
/// PyTorch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// Bias added after `alpha * A * B + beta * C`.
    pub bias: Bias<'a>,
    /// `Some((min, max))` clamps the result; `None` leaves it.
    pub clamp: Option<(f32, f32)>,
}

/// The per-tile form of the epilogue the driver hands a microkernel.
#[derive(Clone, Copy, Debug)]
pub struct TileEpilogue {
    /// Multiplies the product `A * B`.
    pub alpha: f32,
    /// Multiplies the old C; only read when `load_c`.
    pub beta: f32,
    /// Whether the old value of C is read (false for beta = 0: C may hold NaN).
    pub load_c: bool,
    /// Null, or the `m` row biases of this tile.
    pub bias_row: *const f32,
    /// Null, or the `n` column biases of this tile.
    pub bias_col: *const f32,
    /// `Some((min, max))` clamps the result.
    pub clamp: Option<(f32, f32)>,
}

impl TileEpilogue {
    /// The tile epilogue that only accumulates: `C += alpha * A * B`.
    pub fn accumulate(alpha: f32) -> Self {
        TileEpilogue {
            alpha,
            beta: 1.0,
            load_c: true,
            bias_row: std::ptr::null(),
            bias_col: std::ptr::null(),
            clamp: None,
        }
    }
}

/// Clamps like `max(min, x)` then `min(max, x)`, keeping NaN.
#[inline(always)]
pub(crate) fn clamp_keep_nan(x: f32, lo: f32, hi: f32) -> f32 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// Writes an accumulated `MR x NR` tile (row-major in `acc`) to C through the
/// full epilogue, element by element: the scalar kernels' store, and the
/// partial-tile path of the SIMD kernels (spill to the stack, then this).
///
/// # Safety
/// As for [`crate::gemm::KernelFn`]: `c` reaches a writable `m x n` block,
/// the bias pointers are null or reach `m` / `n` floats, `m <= MR`, `n <= NR`.
#[inline(always)]
pub(crate) unsafe fn store_tile<const MR: usize, const NR: usize>(
    acc: &[[f32; NR]; MR],
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    t: &TileEpilogue,
) {
    for (i, row) in acc.iter().enumerate().take(m) {
        // SAFETY: i < m, and bias_row reaches m floats when non-null.
        let br = if t.bias_row.is_null() { 0.0 } else { unsafe { *t.bias_row.add(i) } };
        for (j, &v) in row.iter().enumerate().take(n) {
            // SAFETY: (i, j) is inside the m x n block the caller vouched for.
            let dst = unsafe { c.add(i * rs_c + j * cs_c) };
            let mut x = t.alpha * v;
            if t.load_c {
                // SAFETY: as above; C is readable when the epilogue loads it.
                x += t.beta * unsafe { *dst };
            }
            x += br;
            if !t.bias_col.is_null() {
                // SAFETY: j < n, and bias_col reaches n floats when non-null.
                x += unsafe { *t.bias_col.add(j) };
            }
            if let Some((lo, hi)) = t.clamp {
                x = clamp_keep_nan(x, lo, hi);
            }
            // SAFETY: as above.
            unsafe { *dst = x };
        }
    }
}
