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
        let [_, fw] = g.kernel;
        let sw = g.stride[1];
        for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
            for jj in 0..nr {
                let j = jc + q * nr + jj;
                // Column jj of the panel: element p sits at panel[p * nr + jj].
                let mut put = |p: usize, v: f32| panel[p * nr + jj] = v;
                if j >= jc + nc {
                    (0..kc).for_each(|p| put(p, 0.0));
                    continue;
                }
                let (c, t) = (j / g.taps(), j % g.taps());
                let (ky, kx) = (t / fw, t % fw);
                let plane = &self.x[c * h * w..(c + 1) * h * w];
                let (oy_lo, oy_hi) = g.valid(0, ky);
                let (ox_lo, ox_hi) = g.valid(1, kx);
                g.for_each_row_segment(self.p0 + pc, kc, |oy, ox0, ox1, off| {
                    let (a, b) = if oy < oy_lo || oy >= oy_hi {
                        (ox1, ox1)
                    } else {
                        (ox_lo.clamp(ox0, ox1), ox_hi.clamp(ox0, ox1))
                    };
                    let b = b.max(a);
                    (off..off + (a - ox0)).for_each(|p| put(p, 0.0));
                    (off + (b - ox0)..off + (ox1 - ox0)).for_each(|p| put(p, 0.0));
                    if a < b {
                        let iy = g.input_at(0, oy, ky);
                        let row = &plane[iy * w..(iy + 1) * w];
                        let ix0 = g.input_at(1, a, kx);
                        let base = off + (a - ox0);
                        for (i, &v) in row[ix0..].iter().step_by(sw).take(b - a).enumerate() {
                            put(base + i, v);
                        }
                    }
                });
            }
        }
    }
}
