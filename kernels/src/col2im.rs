//! col2im for the backward passes: the adjoint of im2col. A tile of the
//! column matrix (rows `(c, ky, kx)`, columns output pixels) is added back
//! into the image planes it was gathered from, so the full column matrix is
//! never built.

/// Where the taps of a 2-D sliding window land: the geometry shared by
/// col2im and the transposed im2col gather ([`crate::im2col_t`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchGeometry {
    /// Input plane `[H, W]`.
    pub input: [usize; 2],
    /// Output plane `[OH, OW]` (any size: taps outside the input are skipped).
    pub output: [usize; 2],
    /// Window `[FH, FW]`.
    pub kernel: [usize; 2],
    /// Stride `[rows, columns]`.
    pub stride: [usize; 2],
    /// Dilation `[rows, columns]`.
    pub dilation: [usize; 2],
    /// Padding before the input `[top, left]`.
    pub pad: [usize; 2],
}

impl PatchGeometry {
    /// Taps per window, `FH * FW`.
    pub fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// Output pixels, `OH * OW`.
    pub fn out_pixels(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// The outputs `lo..hi` along `axis` (0 rows, 1 columns) whose tap `t`
    /// lies inside the input: `0 <= o*S + t*D - P < N`.
    pub fn valid(&self, axis: usize, t: usize) -> (usize, usize) {
        let (n, s, off) = (self.input[axis], self.stride[axis], t * self.dilation[axis]);
        let p = self.pad[axis];
        let lo = p.saturating_sub(off).div_ceil(s);
        // o*s <= n + p - off - 1
        let hi = match (n + p).checked_sub(off + 1) {
            Some(top) => (top / s + 1).min(self.output[axis]),
            None => 0,
        };
        (lo.min(hi), hi)
    }

    /// Input coordinate of tap `t` for output `o` along `axis`; only
    /// meaningful for `o` inside [`valid`](Self::valid).
    #[inline(always)]
    pub fn input_at(&self, axis: usize, o: usize, t: usize) -> usize {
        o * self.stride[axis] + t * self.dilation[axis] - self.pad[axis]
    }

    /// Calls `f(oy, ox0, ox1, offset)` for each output row segment of the
    /// pixel range `p0..p0+len`, where `offset` is the segment's start
    /// relative to `p0`.
    #[inline(always)]
    pub fn for_each_row_segment(&self, p0: usize, len: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
        let ow = self.output[1];
        let (mut p, end) = (p0, p0 + len);
        while p < end {
            let (oy, ox0) = (p / ow, p % ow);
            let ox1 = ow.min(ox0 + (end - p));
            f(oy, ox0, ox1, p - p0);
            p += ox1 - ox0;
        }
    }
}

/// `dx[c, iy, ix] += cols[(c*FH + ky)*FW + kx][p - p0]` for every output pixel
/// `p` in `p0..p0+nt` and every tap that lands inside the input.
///
/// `cols` holds `channels * FH * FW` rows of `nt` floats. `dx` holds
/// `channels` planes in the column-phase layout of [`PhaseRows`]: with a
/// column stride `S`, each input row is stored as its `S` phases (columns
/// `ix % S == r`) one after the other, so every tap's outputs land on
/// consecutive floats and the adds vectorize. With `S = 1` that is the
/// plain `H x W` plane.
///
/// # Panics
/// If a buffer is too short or the pixel range passes `OH * OW`.
pub fn col2im_add(g: &PatchGeometry, cols: &[f32], p0: usize, nt: usize, channels: usize, dx: &mut [f32]) {
    let h = g.input[0];
    let [fh, fw] = g.kernel;
    let rows = PhaseRows::new(g.input[1], g.stride[1]);
    let plane = h * rows.len();
    assert!(cols.len() >= channels * fh * fw * nt, "col2im: column tile too short");
    assert!(dx.len() >= channels * plane, "col2im: output too short");
    assert!(p0 + nt <= g.out_pixels(), "col2im: pixel range outside the output");
    if nt == 0 {
        return;
    }
    for (c, dplane) in dx[..channels * plane].chunks_exact_mut(plane).enumerate() {
        for ky in 0..fh {
            let (oy_lo, oy_hi) = g.valid(0, ky);
            for kx in 0..fw {
                let (ox_lo, ox_hi) = g.valid(1, kx);
                let src = &cols[((c * fh + ky) * fw + kx) * nt..][..nt];
                g.for_each_row_segment(p0, nt, |oy, ox0, ox1, off| {
                    let (a, b) = (ox_lo.clamp(ox0, ox1), ox_hi.clamp(ox0, ox1));
                    if oy < oy_lo || oy >= oy_hi || a >= b {
                        return;
                    }
                    let row = &mut dplane[g.input_at(0, oy, ky) * rows.len()..][..rows.len()];
                    let at = rows.index(g.input_at(1, a, kx));
                    for (d, v) in row[at..at + (b - a)].iter_mut().zip(&src[off + (a - ox0)..]) {
                        *d += *v;
                    }
                });
            }
        }
    }
}

/// The column-phase layout of one input row of width `W` for a column
/// stride `S`: phase `r` (the columns `ix = j*S + r`) holds `ceil(W/S)`
/// floats at `r * ceil(W/S)`, so columns `S` apart sit side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseRows {
    width: usize,
    stride: usize,
    phase_len: usize,
}

impl PhaseRows {
    /// The layout of a row of `width` floats for column stride `stride`.
    pub fn new(width: usize, stride: usize) -> PhaseRows {
        let stride = stride.max(1);
        PhaseRows { width, stride, phase_len: width.div_ceil(stride) }
    }

    /// Floats per stored row (`S * ceil(W/S)`, at least `W`).
    pub fn len(&self) -> usize {
        self.stride * self.phase_len
    }

    /// Whether the stored row is empty (`W = 0`).
    pub fn is_empty(&self) -> bool {
        self.width == 0
    }

    /// Where column `ix` is stored.
    #[inline(always)]
    pub fn index(&self, ix: usize) -> usize {
        ix % self.stride * self.phase_len + ix / self.stride
    }

    /// Writes stored rows (`src`, [`len`](Self::len) floats each) back in
    /// column order into rows of `W` floats (`dst`).
    ///
    /// # Panics
    /// If `src` does not hold a stored row for every row of `dst`.
    pub fn unsplit(&self, src: &[f32], dst: &mut [f32]) {
        let (w, s, q) = (self.width, self.stride, self.phase_len);
        if w == 0 {
            return;
        }
        assert!(src.len() >= dst.len() / w * self.len(), "unsplit: source too short");
        for (row, split) in dst.chunks_exact_mut(w).zip(src.chunks_exact(self.len())) {
            if s == 1 {
                row.copy_from_slice(&split[..w]);
            } else if s == 2 {
                // Even and odd columns zipped: the compiler's interleave.
                let (even, odd) = split.split_at(q);
                for (pair, (e, o)) in row.chunks_exact_mut(2).zip(even.iter().zip(odd)) {
                    pair[0] = *e;
                    pair[1] = *o;
                }
                if w % 2 == 1 {
                    row[w - 1] = even[q - 1];
                }
            } else {
                for (r, phase) in split.chunks_exact(q).enumerate().take(s.min(w)) {
                    row[r..].iter_mut().step_by(s).zip(phase).for_each(|(d, v)| *d = *v);
                }
            }
        }
    }
}

/// Calls `f(iy, oy, a, b, ix0)` for each output row `oy` whose tap `(ky, kx)`
/// lands in input row `iy`, where outputs `a..b` of the row land at input
/// columns `ix0, ix0 + S, ...`.
#[inline(always)]
fn for_each_tap_row(g: &PatchGeometry, ky: usize, kx: usize, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
    let (oy_lo, oy_hi) = g.valid(0, ky);
    let (a, b) = g.valid(1, kx);
    if a >= b {
        return;
    }
    for oy in oy_lo..oy_hi {
        f(g.input_at(0, oy, ky), oy, a, b, g.input_at(1, a, kx));
    }
}

/// One-input-channel groups (depthwise): `dx += sum over taps t of w[t] * dy`
/// shifted to where tap t reads, for one `OH x OW` plane of `dy`, the `FH * FW`
/// taps of its filter and one `H x W` plane of `dx`.
///
/// # Panics
/// If a buffer is shorter than its plane.
pub fn scatter_plane_add(g: &PatchGeometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let ([h, wd], [_, ow]) = (g.input, g.output);
    assert!(dy.len() >= g.out_pixels() && w.len() >= g.taps() && dx.len() >= h * wd, "scatter_plane_add: short buffer");
    let sw = g.stride[1];
    for ky in 0..g.kernel[0] {
        for kx in 0..g.kernel[1] {
            let wt = w[ky * g.kernel[1] + kx];
            for_each_tap_row(g, ky, kx, |iy, oy, a, b, ix0| {
                let src = &dy[oy * ow + a..oy * ow + b];
                let row = &mut dx[iy * wd + ix0..(iy + 1) * wd];
                if sw == 1 {
                    row.iter_mut().zip(src).for_each(|(d, v)| *d += wt * *v);
                } else {
                    row.iter_mut().step_by(sw).zip(src).for_each(|(d, v)| *d += wt * *v);
                }
            });
        }
    }
}

/// One-input-channel groups (depthwise): `dw[t] += sum over output pixels of
/// dy * x` at tap t, for one plane of `x` (`H x W`) and of `dy` (`OH x OW`).
/// Each tap sums in eight running lanes, in a fixed order.
///
/// # Panics
/// If a buffer is shorter than its plane.
pub fn correlate_plane_add(g: &PatchGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let ([h, wd], [_, ow]) = (g.input, g.output);
    assert!(
        dy.len() >= g.out_pixels() && dw.len() >= g.taps() && x.len() >= h * wd,
        "correlate_plane_add: short buffer"
    );
    let sw = g.stride[1];
    for ky in 0..g.kernel[0] {
        for kx in 0..g.kernel[1] {
            let mut lanes = [0.0f32; 8];
            for_each_tap_row(g, ky, kx, |iy, oy, a, b, ix0| {
                let d = &dy[oy * ow + a..oy * ow + b];
                let row = &x[iy * wd + ix0..(iy + 1) * wd];
                if sw == 1 {
                    let (d8, row8) = (d.chunks_exact(8), row[..d.len()].chunks_exact(8));
                    let (dr, rr) = (d8.remainder(), row8.remainder());
                    for (dc, xc) in d8.zip(row8) {
                        lanes.iter_mut().zip(dc.iter().zip(xc)).for_each(|(l, (a, b))| *l += a * b);
                    }
                    lanes.iter_mut().zip(dr.iter().zip(rr)).for_each(|(l, (a, b))| *l += a * b);
                } else {
                    for (i, (dv, xv)) in d.iter().zip(row.iter().step_by(sw)).enumerate() {
                        lanes[i % 8] += dv * xv;
                    }
                }
            });
            dw[ky * g.kernel[1] + kx] += lanes.iter().sum::<f32>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(input: usize, output: usize, k: usize, s: usize, d: usize, p: usize) -> PatchGeometry {
        PatchGeometry {
            input: [1, input],
            output: [1, output],
            kernel: [1, k],
            stride: [1, s],
            dilation: [1, d],
            pad: [0, p],
        }
    }

    #[test]
    fn valid_ranges_match_brute_force() {
        for input in 1..7 {
            for output in 1..9 {
                for k in 1..4 {
                    for s in 1..4 {
                        for d in 1..3 {
                            for p in 0..4 {
                                let g = geom(input, output, k, s, d, p);
                                for t in 0..k {
                                    let inside: Vec<usize> = (0..output)
                                        .filter(|&o| {
                                            let i = (o * s + t * d) as i64 - p as i64;
                                            i >= 0 && i < input as i64
                                        })
                                        .collect();
                                    let (lo, hi) = g.valid(1, t);
                                    assert_eq!((lo..hi).collect::<Vec<_>>(), inside, "{g:?} t={t}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Every column lands in its own slot, and unsplit puts each back in
    /// column order (odd widths, strides past the width).
    #[test]
    fn phase_rows_round_trip() {
        for width in 1..10 {
            for stride in 1..5 {
                let rows = PhaseRows::new(width, stride);
                let mut split = vec![f32::NAN; 3 * rows.len()];
                for r in 0..3 {
                    for ix in 0..width {
                        let at = rows.index(ix);
                        assert!(at < rows.len() && split[r * rows.len() + at].is_nan(), "{width} {stride} {ix}");
                        split[r * rows.len() + at] = (r * 100 + ix) as f32;
                    }
                }
                let mut row = vec![0.0; 3 * width];
                rows.unsplit(&split, &mut row);
                let want: Vec<f32> = (0..3).flat_map(|r| (0..width).map(move |ix| (r * 100 + ix) as f32)).collect();
                assert_eq!(row, want, "width {width} stride {stride}");
            }
        }
    }

    #[test]
    fn row_segments_cover_the_range() {
        let g = PatchGeometry { output: [4, 5], ..geom(3, 5, 1, 1, 1, 0) };
        let mut seen = Vec::new();
        g.for_each_row_segment(3, 9, |oy, a, b, off| seen.push((oy, a, b, off)));
        assert_eq!(seen, [(0, 3, 5, 0), (1, 0, 5, 2), (2, 0, 2, 7)]);
    }
}
