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
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(cols <= stride && (rows - 1) * stride + cols <= src.len(), "block outside src");
    assert!(cols <= dst.rows() && col.checked_add(rows).is_some_and(|e| e <= dst.cols()), "block outside dst");
    // Rows and columns done by the vector path (none without one).
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let (mut i0, mut j0) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && isa.supported() && dst.col_stride() == 1 {
        (i0, j0) = (rows / 16 * 16, cols / 16 * 16);
        let rs = dst.row_stride();
        let base = dst.as_mut_ptr();
        // Column blocks outer: each output row is written as one run of
        // whole lines, which streams better than 16 rows a line at a time.
        for j in (0..j0).step_by(16) {
            for i in (0..i0).step_by(16) {
                // SAFETY: the CPU has AVX-512F (checked above); rows
                // i..i+16 and columns j..j+16 of the block lie inside `src`
                // (asserted: i + 16 <= rows, j + 16 <= cols), and dst rows
                // j..j+16, columns col+i..col+i+16 inside `dst` (asserted,
                // unit column stride), which `&mut` makes exclusive.
                unsafe {
                    avx512::transpose16(src.as_ptr().add(i * stride + j), stride, base.add(j * rs + col + i), rs)
                };
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = isa;
    // The edges: rows past the last whole 16 for every column, then the
    // columns past the last whole 16 for the rows done above.
    let mut run = [0.0f32; 16];
    for j in 0..cols {
        let from = if j < j0 { i0 } else { 0 };
        let mut i = from;
        while i < rows {
            let len = (rows - i).min(16);
            for (t, x) in run[..len].iter_mut().enumerate() {
                *x = src[(i + t) * stride + j];
            }
            dst.write_run(j, col + i, &run[..len]);
            i += len;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Transposes the 16x16 block at `src` (row stride `ss`) into `dst`
    /// (row stride `ds`).
    ///
    /// # Safety
    /// The CPU has AVX-512F; 16 rows of 16 floats are readable at `src` and
    /// writable at `dst` with those strides.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose16(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
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
                _mm512_storeu_ps(dst.add(row_of(i) * ds), w);
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
            for (rows, cols) in [(1, 1), (16, 16), (17, 33), (35, 16), (16, 5), (40, 70)] {
                let stride = cols + 3;
                let src: Vec<f32> = (0..rows * stride).map(|v| v as f32).collect();
                let (dcols, col) = (rows + 5, 2);
                let mut d = vec![-1.0f32; cols * dcols];
                let mut dst = MatMut::new(&mut d, cols, dcols, dcols, 1).unwrap();
                transpose(isa, &src, rows, cols, stride, &mut dst, col);
                for j in 0..cols {
                    for c in 0..dcols {
                        let want = if (col..col + rows).contains(&c) { src[(c - col) * stride + j] } else { -1.0 };
                        assert_eq!(d[j * dcols + c], want, "{isa:?} {rows}x{cols} at ({j}, {c})");
                    }
                }
            }
        }
    }
}
