//! The transposed im2col gather for the weight gradient: `B = im2col(X)^T`,
//! rows output pixels, columns `(c, ky, kx)`, written straight into packed
//! B panels so the matrix is never built.

use crate::col2im::PatchGeometry;
use crate::gemm::PackB;

/// `im2col(X)^T` restricted to output pixels `p0..p0+pixels` of one image
/// and a run of `channels` input channels.
#[derive(Clone, Copy, Debug)]
pub struct Im2colT<'a> {
    x: &'a [f32],
    geom: PatchGeometry,
    channels: usize,
    p0: usize,
    pixels: usize,
}

impl<'a> Im2colT<'a> {
    /// `x` holds `channels` planes of `H * W` (more is ignored).
    ///
    /// # Panics
    /// If `x` is shorter than `channels` planes or the pixel range passes `OH * OW`.
    pub fn new(x: &'a [f32], geom: PatchGeometry, channels: usize, p0: usize, pixels: usize) -> Self {
        assert!(x.len() >= channels * geom.input[0] * geom.input[1], "im2col_t: input too short");
        assert!(p0 + pixels <= geom.out_pixels(), "im2col_t: pixel range outside the output");
        Im2colT { x, geom, channels, p0, pixels }
    }
}

impl PackB for Im2colT<'_> {
    fn rows(&self) -> usize {
        self.pixels
    }

    fn cols(&self) -> usize {
        self.channels * self.geom.taps()
    }

    fn pack(&self, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        assert_eq!(dst.len(), nc.div_ceil(nr) * kc * nr, "B pack buffer length");
        assert!(pc + kc <= self.pixels && jc + nc <= self.cols(), "B block outside the matrix");
        let g = &self.geom;
        let [h, w] = g.input;
        let fw = g.kernel[1];
        let sw = g.stride[1];
        // What each column of a panel reads: its channel plane, its taps and
        // the output ranges where those taps fall inside the input.
        struct Column<'x> {
            plane: &'x [f32],
            ky: usize,
            kx: usize,
            oy: (usize, usize),
            ox: (usize, usize),
        }
        let mut columns = Vec::with_capacity(nr);
        for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
            let width = nr.min(nc - q * nr);
            columns.clear();
            columns.extend((jc + q * nr..jc + q * nr + width).map(|j| {
                let (c, t) = (j / g.taps(), j % g.taps());
                let (ky, kx) = (t / fw, t % fw);
                Column { plane: &self.x[c * h * w..(c + 1) * h * w], ky, kx, oy: g.valid(0, ky), ox: g.valid(1, kx) }
            }));
            // Row segments outermost, so the panel steps being written (one
            // cache line each) stay in L1 while every column fills them.
            g.for_each_row_segment(self.p0 + pc, kc, |oy, ox0, ox1, off| {
                let steps = &mut panel[off * nr..(off + ox1 - ox0) * nr];
                for (jj, col) in columns.iter().enumerate() {
                    let (a, b) = if oy < col.oy.0 || oy >= col.oy.1 {
                        (ox1, ox1)
                    } else {
                        (col.ox.0.clamp(ox0, ox1), col.ox.1.clamp(ox0, ox1))
                    };
                    let b = b.max(a);
                    // Column jj of the segment's steps: every nr-th float.
                    let mut column = steps[jj..].iter_mut().step_by(nr);
                    column.by_ref().take(a - ox0).for_each(|d| *d = 0.0);
                    if a < b {
                        let iy = g.input_at(0, oy, col.ky);
                        let row = &col.plane[iy * w + g.input_at(1, a, col.kx)..(iy + 1) * w];
                        if sw == 1 {
                            column.by_ref().zip(&row[..b - a]).for_each(|(d, v)| *d = *v);
                        } else {
                            column.by_ref().zip(row.iter().step_by(sw).take(b - a)).for_each(|(d, v)| *d = *v);
                        }
                    }
                    column.for_each(|d| *d = 0.0);
                }
                // Columns past nc are padding.
                for s in steps.chunks_exact_mut(nr) {
                    s[width..].fill(0.0);
                }
            });
        }
    }
}
