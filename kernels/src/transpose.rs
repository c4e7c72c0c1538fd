//! Transposing copies: the implicit convolution with channels in the vector
//! lanes computes `pixels x channels` tiles, and the output is NCHW.

use crate::isa::Isa;
use crate::view::MatMut;

/// `dst(j, col + i) = src[i * stride + j]` for `i < rows`, `j < cols`: the
/// `rows x cols` block of `src` (row stride `stride`) transposed into `dst`
/// from column `col` on. `isa` picks the vector path (16x16 register
/// transposes with AVX-512, masked at the edges, where `dst` has unit column
/// stride); anything else goes element by element.
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
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && isa.supported() && dst.col_stride() == 1 {
        let rs = dst.row_stride();
        let base = dst.as_mut_ptr();
        // Streaming stores want whole lines: the blocks from the first
        // line-aligned column on (the same in every row when the row stride
        // is whole lines) stream; the rows before it, and a part-filled
        // last block, take masked ordinary stores.
        let misaligned = base.wrapping_add(col).addr() % 64;
        let stream = stream && rs.is_multiple_of(16) && misaligned.is_multiple_of(4);
        let head = if stream { ((64 - misaligned) % 64 / 4).min(rows) } else { 0 };
        // Column blocks outer: each output row is written as one run of
        // whole lines, which streams better than 16 rows a line at a time.
        for j in (0..cols).step_by(16) {
            let w = (cols - j).min(16);
            let mut i = 0;
            while i < rows {
                let h = if i < head { head } else { (rows - i).min(16) };
                // SAFETY: the CPU has AVX-512F (checked above); rows
                // i..i+h and columns j..j+w of the block lie inside `src`
                // (asserted: i + h <= rows, j + w <= cols), and dst rows
                // j..j+w, columns col+i..col+i+h inside `dst` (asserted,
                // unit column stride), which `&mut` makes exclusive; a
                // streamed block is whole (h = 16) and each of its rows
                // starts on a line (col + head is aligned, i - head and the
                // row stride are multiples of 16).
                unsafe {
                    let (s, d) = (src.as_ptr().add(i * stride + j), base.add(j * rs + col + i));
                    if stream && i >= head && h == 16 {
                        avx512::transpose16::<true>(s, stride, d, rs, h, w)
                    } else {
                        avx512::transpose16::<false>(s, stride, d, rs, h, w)
                    }
                };
                i += h;
            }
        }
        if stream {
            // SAFETY: the CPU has AVX-512F (so SSE); a fence only orders
            // the streaming stores before whatever this thread does next.
            unsafe { std::arch::x86_64::_mm_sfence() };
        }
        return;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (isa, stream);
    // Without the vector path: runs of up to 16 elements per output row.
    let mut run = [0.0f32; 16];
    for j in 0..cols {
        let mut i = 0;
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

    /// Transposes the `h x w` block at `src` (row stride `ss`; `h, w <=
    /// 16`) into the `w x h` block at `dst` (row stride `ds`), with
    /// non-temporal stores if `STREAM`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `h` rows of `w` floats are readable at `src`
    /// and `w` rows of `h` floats writable at `dst` with those strides; with
    /// `STREAM`, `h` is 16 and each of the rows at `dst` is 64-byte aligned.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose16<const STREAM: bool>(
        src: *const f32,
        ss: usize,
        dst: *mut f32,
        ds: usize,
        h: usize,
        w: usize,
    ) {
        let (load_mask, store_mask) = (mask(w), mask(h));
        // SAFETY: the caller vouches for the rows at each end; masked-off
        // lanes are not accessed.
        unsafe {
            let r: [__m512; 16] = std::array::from_fn(|i| {
                if i < h { _mm512_maskz_loadu_ps(load_mask, src.add(i * ss)) } else { _mm512_setzero_ps() }
            });
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
                let row = row_of(i);
                if row >= w {
                    continue;
                }
                let (a, b) = (v[i % 8], v[i % 8 + 8]);
                let x = if i < 8 { _mm512_shuffle_f32x4::<0x88>(a, b) } else { _mm512_shuffle_f32x4::<0xdd>(a, b) };
                let d = dst.add(row * ds);
                if STREAM {
                    _mm512_stream_ps(d, x)
                } else if h == 16 {
                    _mm512_storeu_ps(d, x)
                } else {
                    _mm512_mask_storeu_ps(d, store_mask, x)
                }
            }
        }
    }

    /// The first `len` (<= 16) lanes.
    #[inline(always)]
    fn mask(len: usize) -> __mmask16 {
        ((1u32 << len) - 1) as __mmask16
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
