//! Transposing copies: the implicit convolution with channels in the vector
//! lanes computes `pixels x channels` tiles, and the output is NCHW.

use crate::isa::Isa;
use crate::view::MatMut;

/// `dst(j, col + i) = src[i * stride + j]` for `i < rows`, `j < cols`: the
/// `rows x cols` block of `src` (row stride `stride`) transposed into `dst`
/// from column `col` on. `isa` picks the vector path (16x16 register
/// transposes with AVX-512 where `dst` has unit column stride); anything
/// else, and the edges, go element by element.
///
/// # Panics
/// If the block reaches past `src` or past `dst`.
pub fn transpose(isa: Isa, src: &[f32], rows: usize, cols: usize, stride: usize, dst: &mut MatMut<'_>, col: usize) {
    transpose_with(isa, src, rows, cols, stride, dst, col, false);
}

/// [`transpose`] with non-temporal stores where the vector path writes
/// whole aligned cache lines: for an output too large to stay in cache,
/// the lines go straight to memory without first being read (the store
/// path then overlaps the next tile's FMAs instead of stalling on them).
///
/// # Panics
/// As for [`transpose`].
pub fn transpose_streaming(
    isa: Isa,
    src: &[f32],
    rows: usize,
    cols: usize,
    stride: usize,
    dst: &mut MatMut<'_>,
    col: usize,
) {
    transpose_with(isa, src, rows, cols, stride, dst, col, true);
}

#[allow(clippy::too_many_arguments)]
fn transpose_with(
    isa: Isa,
    src: &[f32],
    rows: usize,
    cols: usize,
    stride: usize,
    dst: &mut MatMut<'_>,
    col: usize,
    stream: bool,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(cols <= stride && (rows - 1) * stride + cols <= src.len(), "block outside src");
    assert!(cols <= dst.rows() && col.checked_add(rows).is_some_and(|e| e <= dst.cols()), "block outside dst");
    // Rows and columns done by the vector path (none without one).
    // Rows `ia..ib` of columns `..j0` are done by the vector path (none
    // without one).
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let (mut ia, mut ib, mut j0) = (0, 0, 0);
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && isa.supported() && dst.col_stride() == 1 {
        let rs = dst.row_stride();
        let base = dst.as_mut_ptr();
        // Streaming stores want whole lines: start the blocks at the first
        // line-aligned column (the same in every row when the row stride is
        // whole lines); the rows before it go with the edges.
        let misaligned = base.wrapping_add(col).addr() % 64;
        let stream = stream && rs.is_multiple_of(16) && misaligned.is_multiple_of(4);
        ia = if stream { ((64 - misaligned) % 64 / 4).min(rows) } else { 0 };
        (ib, j0) = (ia + (rows - ia) / 16 * 16, cols / 16 * 16);
        // Column blocks outer: each output row is written as one run of
        // whole lines, which streams better than 16 rows a line at a time.
        for j in (0..j0).step_by(16) {
            for i in (ia..ib).step_by(16) {
                // SAFETY: the CPU has AVX-512F (checked above); rows
                // i..i+16 and columns j..j+16 of the block lie inside `src`
                // (asserted: i + 16 <= rows, j + 16 <= cols), and dst rows
                // j..j+16, columns col+i..col+i+16 inside `dst` (asserted,
                // unit column stride), which `&mut` makes exclusive; when
                // streaming, each of those rows starts on a line (col + ia
                // is aligned, i - ia and the row stride are multiples of 16).
                unsafe {
                    let (s, d) = (src.as_ptr().add(i * stride + j), base.add(j * rs + col + i));
                    if stream {
                        avx512::transpose16::<true>(s, stride, d, rs)
                    } else {
                        avx512::transpose16::<false>(s, stride, d, rs)
                    }
                };
            }
        }
        if stream && j0 > 0 && ib > ia {
            // SAFETY: the CPU has AVX-512F (so SSE); a fence only orders
            // the streaming stores before whatever this thread does next.
            unsafe { std::arch::x86_64::_mm_sfence() };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (isa, stream);
    // The edges: the rows outside `ia..ib` for the columns done above, and
    // every row of the columns past them.
    let mut run = [0.0f32; 16];
    for j in 0..cols {
        let spans = if j < j0 { [(0, ia), (ib, rows)] } else { [(0, rows), (rows, rows)] };
        for (from, to) in spans {
            let mut i = from;
            while i < to {
                let len = (to - i).min(16);
                for (t, x) in run[..len].iter_mut().enumerate() {
                    *x = src[(i + t) * stride + j];
                }
                dst.write_run(j, col + i, &run[..len]);
                i += len;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Transposes the 16x16 block at `src` (row stride `ss`) into `dst`
    /// (row stride `ds`), with non-temporal stores if `STREAM`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; 16 rows of 16 floats are readable at `src` and
    /// writable at `dst` with those strides; with `STREAM`, each of the 16
    /// rows at `dst` is 64-byte aligned.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose16<const STREAM: bool>(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        // SAFETY: the caller vouches for the 16 rows at each end.
        unsafe {
            let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * ss)));
            // Pairs of rows interleaved by element, then by pairs of
            // elements, then 128-bit lanes across four rows, then across
            // eight: row i of the result is column i of the block.
            let t: [__m512; 16] = std::array::from_fn(|i| {
                let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
                if i % 2 == 0 { _mm512_unpacklo_ps(a, b) } else { _mm512_unpackhi_ps(a, b) }
            });
            let u: [__m512; 16] = std::array::from_fn(|i| {
                let (a, b) = (_mm512_castps_pd(t[i / 4 * 4 + i % 2]), _mm512_castps_pd(t[i / 4 * 4 + i % 2 + 2]));
                _mm512_castpd_ps(if i % 4 < 2 { _mm512_unpacklo_pd(a, b) } else { _mm512_unpackhi_pd(a, b) })
            });
            let v: [__m512; 16] = std::array::from_fn(|i| {
                let (a, b) = (u[i / 8 * 8 + i % 4], u[i / 8 * 8 + i % 4 + 4]);
                if i % 8 < 4 { _mm512_shuffle_f32x4::<0x88>(a, b) } else { _mm512_shuffle_f32x4::<0xdd>(a, b) }
            });
            for i in 0..16 {
                let (a, b) = (v[i % 8], v[i % 8 + 8]);
                let w = if i < 8 { _mm512_shuffle_f32x4::<0x88>(a, b) } else { _mm512_shuffle_f32x4::<0xdd>(a, b) };
                let d = dst.add(row_of(i) * ds);
                if STREAM { _mm512_stream_ps(d, w) } else { _mm512_storeu_ps(d, w) }
            }
        }
    }

    /// Which column of the block output vector `i` of the last stage holds:
    /// the second stage leaves columns 1 and 2 of each group of four
    /// swapped.
    const fn row_of(i: usize) -> usize {
        (i & !3) | ((i & 1) << 1) | ((i >> 1) & 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_transposes_every_shape() {
        for isa in Isa::ALL {
            for stream in [false, true] {
                for (rows, cols) in [(1, 1), (16, 16), (17, 33), (35, 16), (16, 5), (40, 70), (53, 17)] {
                    let stride = cols + 3;
                    let src: Vec<f32> = (0..rows * stride).map(|v| v as f32).collect();
                    // Row strides of whole lines (the streaming path) and
                    // not, from line-aligned and unaligned first columns.
                    for (dcols, col) in [(rows + 5, 2), (64, 0), (64, 3), (80, 16), (64, 11)] {
                        if col + rows > dcols {
                            continue;
                        }
                        let mut d = vec![-1.0f32; cols * dcols + 16];
                        // The view starts on a cache line.
                        let skip = d.as_ptr().align_offset(64).min(16);
                        let view = &mut d[skip..skip + cols * dcols];
                        let mut dst = MatMut::new(view, cols, dcols, dcols, 1).unwrap();
                        if stream {
                            transpose_streaming(isa, &src, rows, cols, stride, &mut dst, col);
                        } else {
                            transpose(isa, &src, rows, cols, stride, &mut dst, col);
                        }
                        for j in 0..cols {
                            for c in 0..dcols {
                                let want =
                                    if (col..col + rows).contains(&c) { src[(c - col) * stride + j] } else { -1.0 };
                                assert_eq!(
                                    view[j * dcols + c],
                                    want,
                                    "{isa:?} {stream} {rows}x{cols} {col} ({j}, {c})"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
