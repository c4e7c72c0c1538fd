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

/// `im2col(X)^T` read from a band of padded input rows
/// ([`Band`](crate::implicit::Band)): element `(p, j)` (output pixel `p`,
/// im2col row `j`) is `band[taps[j] + steps[p]]`, with `taps` from
/// [`Band::taps`](crate::implicit::Band::taps) and `steps` the grid pixels
/// of the output pixels ([`WgradKernel::grid_steps`](crate::wgrad::WgradKernel::grid_steps)).
/// Packing a panel is then one load per float with no bounds to work out:
/// the padding is already zeros in the band.
#[derive(Clone, Copy, Debug)]
pub struct BandColumns<'a> {
    band: &'a [f32],
    taps: &'a [u32],
    steps: &'a [u32],
}

impl<'a> BandColumns<'a> {
    /// The columns `taps` over the pixels `steps` of a filled `band`.
    ///
    /// # Panics
    /// If an element lies past the band.
    pub fn new(band: &'a [f32], taps: &'a [u32], steps: &'a [u32]) -> Self {
        let reach = taps.iter().max().zip(steps.iter().max()).map(|(&t, &s)| t as usize + s as usize);
        assert!(reach.is_none_or(|r| r < band.len()), "band_columns: an element lies past the band");
        BandColumns { band, taps, steps }
    }
}

impl PackB for BandColumns<'_> {
    fn rows(&self) -> usize {
        self.steps.len()
    }

    fn cols(&self) -> usize {
        self.taps.len()
    }

    fn pack(&self, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        assert_eq!(dst.len(), nc.div_ceil(nr) * kc * nr, "B pack buffer length");
        assert!(pc + kc <= self.rows() && jc + nc <= self.cols(), "B block outside the matrix");
        if kc == 0 {
            return;
        }
        for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
            let j0 = jc + q * nr;
            let taps = &self.taps[j0..j0 + nr.min(nc - q * nr)];
            for (step, &s) in panel.chunks_exact_mut(nr).zip(&self.steps[pc..pc + kc]) {
                // One grid pixel of every column: a row of the panel.
                let band = &self.band[s as usize..];
                for (d, &t) in step.iter_mut().zip(taps) {
                    *d = band[t as usize];
                }
                step[taps.len()..].fill(0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::im2col::Geometry;
    use crate::implicit::Band;
    use crate::wgrad::WgradKernel;

    /// Bands of every height pack the same panels as the gather, over
    /// strides, dilations, asymmetric padding, partial panels and blocks
    /// that start inside a band.
    #[test]
    fn band_columns_pack_as_the_gather() {
        // (c, h, w, fh, fw, stride, dilation, [top, left, bottom, right])
        let cases = [
            (3, 7, 7, 3, 3, [1, 1], [1, 1], [1, 1, 1, 1]),
            (2, 10, 9, 5, 3, [2, 2], [1, 1], [2, 1, 2, 1]),
            (2, 12, 13, 3, 2, [3, 2], [2, 3], [0, 2, 1, 0]),
            (4, 6, 5, 1, 1, [1, 1], [1, 1], [0, 0, 0, 0]),
        ];
        let picked = if cfg!(miri) { &cases[1..2] } else { &cases[..] };
        for &(c, h, w, fh, fw, stride, dilation, pads) in picked {
            let oh = (h + pads[0] + pads[2] - dilation[0] * (fh - 1) - 1) / stride[0] + 1;
            let ow = (w + pads[1] + pads[3] - dilation[1] * (fw - 1) - 1) / stride[1] + 1;
            let g = Geometry { c, h, w, fh, fw, stride, dilation, pad_top: pads[0], pad_left: pads[1], oh, ow };
            let pg = PatchGeometry {
                input: [h, w],
                output: [oh, ow],
                kernel: [fh, fw],
                stride,
                dilation,
                pad: [pads[0], pads[1]],
            };
            let x: Vec<f32> = (0..c * h * w).map(|i| i as f32 + 1.0).collect();
            let cols = c * fh * fw;
            let nr = 5;
            for rows in 1..=oh {
                let band = Band::new(g, rows, 1).unwrap();
                let mut taps = vec![0; cols];
                band.taps(&mut taps);
                let mut buf = vec![f32::NAN; band.len()];
                let mut steps = Vec::new();
                for oy0 in (0..oh).step_by(rows) {
                    band.fill(&x, oy0, &mut buf);
                    let pixels = rows.min(oh - oy0) * ow;
                    WgradKernel::grid_steps(ow, Band::grid_width(&g), 0, pixels, &mut steps);
                    let ours = BandColumns::new(&buf, &taps, &steps);
                    let gather = Im2colT::new(&x, pg, c, oy0 * ow, pixels);
                    assert_eq!((ours.rows(), ours.cols()), (gather.rows(), gather.cols()));
                    // A block from step 1 and column 2 on, and the whole.
                    for (pc, jc) in [(pixels.min(1), cols.min(2)), (0, 0)] {
                        let (kc, nc) = (pixels - pc, cols - jc);
                        let len = nc.div_ceil(nr) * kc * nr;
                        let (mut a, mut b) = (vec![f32::NAN; len], vec![f32::NAN; len]);
                        ours.pack(pc, kc, jc, nc, nr, &mut a);
                        gather.pack(pc, kc, jc, nc, nr, &mut b);
                        assert_eq!(a, b, "{g:?} rows {rows} band {oy0} block ({pc}, {jc})");
                    }
                }
            }
        }
    }
}
