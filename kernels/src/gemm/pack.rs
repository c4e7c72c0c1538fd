//! Packing: copies of A and B blocks in the order the microkernel reads them,
//! zero-padded to whole panels.
//!
//! A block of `mc x kc` becomes `ceil(mc/MR)` panels, each `kc` steps of `MR`
//! floats (column `p` of the panel's rows). A block of `kc x nc` becomes
//! `ceil(nc/NR)` panels, each `kc` steps of `NR` floats (row `p` of the
//! panel's columns).

use crate::view::MatRef;

/// A source of B blocks: anything that can write `B[pc..pc+kc, jc..jc+nc]`
/// as packed panels. A plain matrix is one; convolution's im2col gather is
/// another, which never materializes B.
pub trait PackB: Sync {
    /// Rows of B (the reduction length k).
    fn rows(&self) -> usize;
    /// Columns of B (n).
    fn cols(&self) -> usize;
    /// Writes the block as `ceil(nc/nr)` panels of `kc * nr` floats into
    /// `dst` (exactly that long), zero-filling columns past `nc`.
    fn pack(&self, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, dst: &mut [f32]);
    /// The source as a plain strided matrix, if it is one: the driver may
    /// then read it in place instead of packing it.
    fn as_matrix(&self) -> Option<MatRef<'_>> {
        None
    }
}

impl PackB for MatRef<'_> {
    fn rows(&self) -> usize {
        MatRef::rows(self)
    }
    fn cols(&self) -> usize {
        MatRef::cols(self)
    }
    fn pack(&self, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        pack_b(self, pc, kc, jc, nc, nr, dst);
    }
    fn as_matrix(&self) -> Option<MatRef<'_>> {
        Some(*self)
    }
}

/// Packs `B[pc..pc+kc, jc..jc+nc]` of a strided matrix into NR-wide panels.
pub fn pack_b(b: &MatRef<'_>, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, dst: &mut [f32]) {
    let panels = nc.div_ceil(nr);
    assert_eq!(dst.len(), panels * kc * nr, "B pack buffer length");
    assert!(pc + kc <= b.rows() && jc + nc <= b.cols(), "B block outside the matrix");
    if kc == 0 {
        return;
    }
    let (data, rs, cs) = (b.data(), b.row_stride(), b.col_stride());
    for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
        let j0 = jc + q * nr;
        let w = nr.min(jc + nc - j0);
        if rs == 1 && cs != 1 {
            // Columns are contiguous (A row-major seen as B, or B
            // transposed): read each column once, scatter it down the panel.
            if w < nr {
                panel.fill(0.0);
            }
            for j in 0..w {
                let col = &data[(j0 + j) * cs + pc..][..kc];
                for (x, &v) in panel[j..].iter_mut().step_by(nr).zip(col) {
                    *x = v;
                }
            }
            continue;
        }
        for (p, step) in panel.chunks_exact_mut(nr).enumerate() {
            let row = (pc + p) * rs;
            if cs == 1 {
                // An inline loop, not `copy_from_slice`: a memmove call per
                // 32-float step costs more than the copy.
                for (x, &v) in step[..w].iter_mut().zip(&data[row + j0..row + j0 + w]) {
                    *x = v;
                }
            } else {
                for (j, x) in step[..w].iter_mut().enumerate() {
                    *x = data[row + (j0 + j) * cs];
                }
            }
            step[w..].fill(0.0);
        }
    }
}

/// Packs `A[ic..ic+mc, pc..pc+kc]` of a strided matrix into MR-wide panels.
pub fn pack_a(a: &MatRef<'_>, ic: usize, mc: usize, pc: usize, kc: usize, mr: usize, dst: &mut [f32]) {
    // A's panel layout is B's layout for A transposed.
    pack_b(&a.t(), pc, kc, ic, mc, mr, dst);
}
