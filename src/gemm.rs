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

/// Which microkernel [`sgemm`] runs and the block sizes that feed it.
///
/// ```
/// let k = receptive::sgemm_kernel_info();
/// // The microkernel tile fits the packed blocks it walks over.
/// assert!(k.mr > 0 && k.nr > 0 && k.mc % k.mr == 0 && k.nc % k.nr == 0 && k.kc > 0);
/// println!("{}: {}x{} tiles, blocks {}x{}x{}", k.name, k.mr, k.nr, k.mc, k.kc, k.nc);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    /// Name carrying tile and ISA, e.g. `sgemm_6x64_avx512`.
    pub name: &'static str,
    /// The instruction set the kernel is written for.
    pub isa: Isa,
    /// Rows of C per microkernel tile.
    pub mr: usize,
    /// Columns of C per microkernel tile.
    pub nr: usize,
    /// Rows of A per packed block.
    pub mc: usize,
    /// Reduction length per block.
    pub kc: usize,
    /// Columns of B per packed block.
    pub nc: usize,
}

/// The kernel [`sgemm`] dispatches to on this machine (after the
/// `RECEPTIVE_MAX_ISA` cap), chosen once per process.
///
/// ```
/// let k = receptive::sgemm_kernel_info();
/// assert_eq!(k.isa, receptive::active_isa());
/// assert!(k.name.starts_with("sgemm_"));
/// ```
pub fn sgemm_kernel_info() -> KernelInfo {
    let g = active_gemm();
    let k = g.kernel;
    KernelInfo { name: k.name, isa: k.isa, mr: k.mr, nr: k.nr, mc: g.mc, kc: g.kc, nc: g.nc }
}

/// This core's measured f32 FMA peak in GFLOP/s for kernels written for
/// `isa` (single thread, independent FMA chains, no memory traffic), so a
/// benchmark can report its share of the peak. `None` when this CPU cannot
/// run `isa`. Measured once per process and ISA (about 0.1 s).
///
/// ```
/// let peak = receptive::peak_gflops(receptive::Isa::Scalar).unwrap();
/// assert!(peak > 0.0);
/// ```
pub fn peak_gflops(isa: Isa) -> Option<f64> {
    receptive_kernels::peak::peak_gflops(isa)
}

/// `C = act(alpha * A * B + beta * C + bias)`, BLAS semantics for alpha and
/// beta (`beta == 0` never reads C, so it may hold NaN).
///
/// Large products are split into blocks of C across the caller's rayon pool
/// (`pool.install(|| sgemm(..))` picks the pool; the global one otherwise):
/// row blocks of whole `MR` tiles or column blocks of whole `NR` tiles,
/// never the reduction, so every element is summed in the same order
/// whatever the thread count. A call made inside a rayon task splits too;
/// rayon runs those parts on the same pool, without oversubscription.
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
    let gemm = active_gemm();
    split(gemm, alpha, a, b, beta, c, bias, act.bounds(), rayon::current_num_threads());
    Ok(())
}

/// Below this many multiply-adds a product runs on one thread: a rayon
/// split costs a few microseconds, and each part packs its own panels.
const PARALLEL_MIN_MACS: usize = 1 << 21;

/// Where to cut C in two for [`split`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// The first `usize` columns (whole NR tiles) and the rest.
    Cols(usize),
    /// The first `usize` rows (whole MR tiles) and the rest.
    Rows(usize),
}

/// Cuts a C of `m_tiles x n_tiles` tiles for `threads` threads, the first
/// `threads / 2` of them before the cut: across whichever dimension leaves the
/// busier side fewer tiles per part (the kernel runs a partial tile at the
/// cost of a whole one), on a tie across the columns when C is at least as
/// wide as tall, so each part re-reads the smaller operand. `None` when C is
/// a single tile.
///
/// Where the tiles do not divide evenly the first side gets the extra
/// ones: `rayon::join` runs it on the calling thread, which then finds the
/// other side done instead of waiting for it. A caller that waits has gone
/// to sleep by the time the other side ends and takes 15-25 us to wake, on
/// a 2-thread `(64, 3136, 576)` (480 us a side) 4% on top of the imbalance:
/// 1536 + 1600 columns ran at 430 GFLOP/s, 1600 + 1536 at 466.
fn cut(m_tiles: usize, n_tiles: usize, wide: bool, threads: usize) -> Option<Cut> {
    let left = threads / 2;
    // The first side's share of `tiles`, rounded up, at least one and
    // leaving one.
    let share = |tiles: usize| (tiles * left).div_ceil(threads).clamp(1, tiles - 1);
    // The busier side's tiles per part, scaled by left * (threads - left).
    let load = |tiles: usize, other: usize| {
        let at = share(tiles);
        (at, (at * (threads - left)).max((tiles - at) * left) * other)
    };
    let cols = (n_tiles >= 2).then(|| load(n_tiles, m_tiles));
    let rows = (m_tiles >= 2).then(|| load(m_tiles, n_tiles));
    match (cols, rows) {
        (Some((c, lc)), Some((r, lr))) => Some(if lc < lr || (lc == lr && wide) { Cut::Cols(c) } else { Cut::Rows(r) }),
        (Some((c, _)), None) => Some(Cut::Cols(c)),
        (None, Some((r, _))) => Some(Cut::Rows(r)),
        (None, None) => None,
    }
}

/// Runs `C = ...` on `threads` threads under `rayon::join`, halving C
/// recursively (see [`cut`]); each part runs the single-threaded driver.
/// One part per thread: cutting C finer, for rayon to balance, measured
/// 2-3% slower on 2048^3 (each part re-reads A for fewer columns) and 7%
/// on `(512, 49, 4608)` (each part packs all of B), and no faster on a
/// loaded machine.
#[allow(clippy::too_many_arguments)]
fn split(
    g: &Gemm,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    bias: Bias<'_>,
    clamp: Option<(f32, f32)>,
    threads: usize,
) {
    let (m, n, k) = (c.rows(), c.cols(), a.cols());
    let (mr, nr) = (g.kernel.mr, g.kernel.nr);
    let macs = m.saturating_mul(n).saturating_mul(k);
    let cut = if threads < 2 || macs < PARALLEL_MIN_MACS {
        None
    } else {
        cut(m.div_ceil(mr), n.div_ceil(nr), n >= m, threads)
    };
    let left = threads / 2;
    match cut {
        None => g.run(alpha, ASource::Strided(a), &b, beta, c, &kg::Epilogue { bias, clamp }),
        Some(Cut::Cols(tiles)) => {
            let at = tiles * nr;
            let (c0, c1) = c.split_at_col(at);
            let (b0, b1) = (b.block(0, 0, k, at), b.block(0, at, k, n - at));
            let (bias0, bias1) = match bias {
                Bias::PerCol(v) => (Bias::PerCol(&v[..at]), Bias::PerCol(&v[at..])),
                other => (other, other),
            };
            let (b0, b1) = (b0.expect("left block inside B"), b1.expect("right block inside B"));
            rayon::join(
                || split(g, alpha, a, b0, beta, c0, bias0, clamp, left),
                || split(g, alpha, a, b1, beta, c1, bias1, clamp, threads - left),
            );
        }
        Some(Cut::Rows(tiles)) => {
            let at = tiles * mr;
            let (c0, c1) = c.split_at_row(at);
            let (a0, a1) = (a.block(0, 0, at, k), a.block(at, 0, m - at, k));
            let (bias0, bias1) = match bias {
                Bias::PerRow(v) => (Bias::PerRow(&v[..at]), Bias::PerRow(&v[at..])),
                other => (other, other),
            };
            let (a0, a1) = (a0.expect("top block inside A"), a1.expect("bottom block inside A"));
            rayon::join(
                || split(g, alpha, a0, b, beta, c0, bias0, clamp, left),
                || split(g, alpha, a1, b, beta, c1, bias1, clamp, threads - left),
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_across_the_dimension_that_balances() {
        // 6x64 tiles. (128, 784): 22 x 13 tiles; 13 columns split 6 + 7,
        // 22 rows 11 + 11, so the rows.
        assert_eq!(cut(22, 13, true, 2), Some(Cut::Rows(11)));
        // (64, 3136): 11 x 49 tiles; 25 + 24 columns beat 6 + 5 rows.
        assert_eq!(cut(11, 49, true, 2), Some(Cut::Cols(25)));
        // Squares tie on even counts: columns when C is wide, rows when tall.
        assert_eq!(cut(342, 32, true, 2), Some(Cut::Cols(16)));
        assert_eq!(cut(342, 32, false, 8), Some(Cut::Rows(171)));
        // Only one way to cut, or none.
        assert_eq!(cut(86, 1, false, 2), Some(Cut::Rows(43)));
        // The first side, on the calling thread, takes the odd tile.
        assert_eq!(cut(1, 5, true, 3), Some(Cut::Cols(2)));
        assert_eq!(cut(1, 5, true, 2), Some(Cut::Cols(3)));
        assert_eq!(cut(1, 1, true, 4), None);
    }
}
