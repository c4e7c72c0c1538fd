//! Tiled im2col: the patch columns of a tile of output pixels, gathered
//! straight into the GEMM's packed B panels.
//!
//! Convolution as a GEMM multiplies the weights `[K, C*FH*FW]` by the
//! im2col matrix `[C*FH*FW, OH*OW]`, whose row `(c, fy, fx)` holds, for each
//! output pixel, the input value that tap of the filter sees (zero in the
//! padding). [`Im2col`] is a [`PackB`] that writes any block of that matrix
//! in panel order on demand, so the whole matrix never exists: the driver
//! asks for `KC x NC` blocks of one tile of pixels at a time.

use crate::gemm::PackB;

/// The shape of one convolution over a stack of `c` input planes, in the
/// terms the gather loops need. Padding is per side; stride and dilation per
/// axis. The output size is given (the safe crate computes and validates it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels in the stack (`C / groups` for one group).
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Filter height.
    pub fh: usize,
    /// Filter width.
    pub fw: usize,
    /// Stride `[rows, columns]`.
    pub stride: [usize; 2],
    /// Dilation `[rows, columns]`.
    pub dilation: [usize; 2],
    /// Zero rows above the input.
    pub pad_top: usize,
    /// Zero columns left of the input.
    pub pad_left: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Geometry {
    /// Panics unless every tap of every output pixel lands inside the input
    /// plus at most the padding implied by `oh`/`ow` (no tap row or column
    /// index past `pad + input + pad_after` can be formed; positions outside
    /// the input read as zero), and `x` holds `c` planes.
    fn check(&self, x_len: usize) {
        assert!(self.stride[0] > 0 && self.stride[1] > 0, "stride must be positive");
        let plane = self.h.checked_mul(self.w).expect("plane size overflows");
        let need = plane.checked_mul(self.c).expect("input size overflows");
        assert!(x_len >= need, "input holds {x_len} floats, the geometry needs {need}");
        // Index arithmetic below never overflows: tap positions are at most
        // (o-1)*s + (f-1)*d, which must fit (the safe crate checks it).
        for (o, s, f, d) in
            [(self.oh, self.stride[0], self.fh, self.dilation[0]), (self.ow, self.stride[1], self.fw, self.dilation[1])]
        {
            o.saturating_sub(1)
                .checked_mul(s)
                .and_then(|a| f.saturating_sub(1).checked_mul(d).and_then(|b| a.checked_add(b)))
                .expect("tap positions overflow");
        }
    }
}

/// Rows `pc..` of the im2col matrix of one tile of output pixels
/// (`first_pixel .. first_pixel + pixels`, in row-major output order) over
/// the `c` planes of `x`.
#[derive(Clone, Copy, Debug)]
pub struct Im2col<'a> {
    x: &'a [f32],
    g: Geometry,
    first_pixel: usize,
    pixels: usize,
}

impl<'a> Im2col<'a> {
    /// The im2col view of `x` (`g.c` planes of `g.h x g.w`) for output pixels
    /// `first_pixel .. first_pixel + pixels`.
    ///
    /// # Panics
    /// If `x` is too short or the tile leaves the `oh x ow` output.
    pub fn new(x: &'a [f32], g: Geometry, first_pixel: usize, pixels: usize) -> Self {
        g.check(x.len());
        let total = g.oh.checked_mul(g.ow).expect("output size overflows");
        assert!(first_pixel.checked_add(pixels).is_some_and(|e| e <= total), "pixel tile outside the output");
        Im2col { x, g, first_pixel, pixels }
    }
}

impl PackB for Im2col<'_> {
    fn rows(&self) -> usize {
        self.g.c * self.g.fh * self.g.fw
    }

    fn cols(&self) -> usize {
        self.pixels
    }

    fn pack(&self, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, dst: &mut [f32]) {
        let g = &self.g;
        let panels = nc.div_ceil(nr);
        assert_eq!(dst.len(), panels * kc * nr, "B pack buffer length");
        assert!(pc + kc <= self.rows() && jc + nc <= self.pixels, "B block outside the im2col matrix");
        if kc == 0 || nc == 0 {
            return;
        }
        SEGMENTS.with(|segs| {
            let (segs, slab) = &mut *segs.borrow_mut();
            runs(g, self.first_pixel + jc, nc, nr, kc * nr, segs);
            let (plane, sw) = (g.h * g.w, g.stride[1]);
            let last_width = nc - (panels - 1) * nr;
            // Tap (ch, fy, fx) of row pc, then stepped along with the rows.
            let taps = g.fh * g.fw;
            let (ch0, tap) = (pc / taps, pc % taps);
            let (mut ch, mut fy, mut fx) = (ch0, tap / g.fw, tap % g.fw);
            let padded = Slab::new(g, segs, ch0..(pc + kc - 1) / taps + 1, kc * nc);
            if let Some(padded) = &padded {
                padded.fill(self.x, g, slab);
            }
            for p in 0..kc {
                let (dy, dx) = (fy * g.dilation[0], fx * g.dilation[1]);
                if let Some(padded) = &padded {
                    // Every run reads inside the padded rows: no borders.
                    let rows = &slab[(ch - ch0) * padded.plane..(ch - ch0 + 1) * padded.plane];
                    for s in segs.iter() {
                        let at = s.dst + p * nr;
                        let from = (s.row + dy - padded.first_row) * padded.width + s.col + dx;
                        let out = &mut dst[at..at + s.len];
                        if sw == 1 {
                            copy_short(out, &rows[from..from + s.len]);
                        } else {
                            let src = &rows[from..=from + (s.len - 1) * sw];
                            for (o, v) in out.iter_mut().zip(src.iter().step_by(sw)) {
                                *o = *v;
                            }
                        }
                    }
                } else {
                    self.gather_row(&self.x[ch * plane..(ch + 1) * plane], segs, dy, dx, &mut dst[p * nr..]);
                }
                if last_width < nr {
                    let at = (panels - 1) * kc * nr + p * nr;
                    dst[at + last_width..at + nr].fill(0.0);
                }
                fx += 1;
                if fx == g.fw {
                    fx = 0;
                    fy += 1;
                    if fy == g.fh {
                        fy = 0;
                        ch += 1;
                    }
                }
            }
        });
    }
}

impl Im2col<'_> {
    /// One pack row read from the input plane `xc` itself, each run checked
    /// against the borders; `dst` starts at the row's place in panel 0.
    fn gather_row(&self, xc: &[f32], segs: &[Run], dy: usize, dx: usize, dst: &mut [f32]) {
        let g = &self.g;
        for s in segs {
            let out = &mut dst[s.dst..s.dst + s.len];
            let iy = s.row + dy;
            if iy < g.pad_top || iy >= g.pad_top + g.h {
                out.fill(0.0);
            } else {
                let y = iy - g.pad_top;
                gather_run(out, &xc[y * g.w..(y + 1) * g.w], s.col + dx, g.stride[1], g.pad_left);
            }
        }
    }
}

/// The input rows a block of runs reads, zero-padded on every side, for a
/// range of channels: with them every run is a plain copy, where the
/// borders would otherwise cost a check (and a short fill) per run.
struct Slab {
    channels: std::ops::Range<usize>,
    /// First padded input row held.
    first_row: usize,
    /// Padded row width: every column a tap of the output reaches.
    width: usize,
    /// `rows * width`.
    plane: usize,
}

impl Slab {
    /// The slab for `segs` over `channels`, unless it would hold more than
    /// `budget` floats (tall dilated filters on few pixels): then the runs
    /// read the input directly.
    fn new(g: &Geometry, segs: &[Run], channels: std::ops::Range<usize>, budget: usize) -> Option<Slab> {
        let (first, last) = (segs.first()?, segs.last()?);
        let first_row = first.row;
        let rows = last.row + (g.fh - 1) * g.dilation[0] + 1 - first_row;
        let width = (g.ow - 1) * g.stride[1] + (g.fw - 1) * g.dilation[1] + 1;
        let plane = rows.checked_mul(width)?;
        (plane.checked_mul(channels.len())? <= budget).then_some(Slab { channels, first_row, width, plane })
    }

    /// Copies the input (`x`, the planes of `g`) into `slab`, zeros outside.
    fn fill(&self, x: &[f32], g: &Geometry, slab: &mut Vec<f32>) {
        slab.clear();
        slab.resize(self.plane * self.channels.len(), 0.0);
        let (cols, plane) = (g.w.min(self.width.saturating_sub(g.pad_left)), g.h * g.w);
        for (ch, dst) in self.channels.clone().zip(slab.chunks_exact_mut(self.plane)) {
            for (r, row) in dst.chunks_exact_mut(self.width).enumerate() {
                let iy = self.first_row + r;
                if iy >= g.pad_top && iy < g.pad_top + g.h && cols > 0 {
                    let src = ch * plane + (iy - g.pad_top) * g.w;
                    row[g.pad_left..g.pad_left + cols].copy_from_slice(&x[src..src + cols]);
                }
            }
        }
    }
}

/// A run of pixels inside one output row and one panel: where it goes in
/// the panels (for pack row 0) and where tap (0, 0) of its first pixel is.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// Offset of the run's first float in the packed block, row 0.
    dst: usize,
    /// Pixels in the run.
    len: usize,
    /// Input row of tap (0, 0), padded coordinates (`oy * stride`).
    row: usize,
    /// Input column of tap (0, 0) of the first pixel, padded (`ox * stride`).
    col: usize,
}

thread_local! {
    /// The runs of the block being packed: the same for every pack row, so
    /// they are found once per block (per-thread, reused).
    /// With them, the padded input rows they read ([`Slab`]).
    static SEGMENTS: std::cell::RefCell<(Vec<Run>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Splits pixels `first..first + count` into [`Run`]s at output-row and
/// panel boundaries.
fn runs(g: &Geometry, first: usize, count: usize, nr: usize, panel_len: usize, out: &mut Vec<Run>) {
    out.clear();
    let (mut oy, mut ox) = (first / g.ow, first % g.ow);
    let (mut q, mut lane) = (0, 0);
    let mut j = 0;
    while j < count {
        let len = (g.ow - ox).min(nr - lane).min(count - j);
        out.push(Run { dst: q * panel_len + lane, len, row: oy * g.stride[0], col: ox * g.stride[1] });
        j += len;
        ox += len;
        if ox == g.ow {
            ox = 0;
            oy += 1;
        }
        lane += len;
        if lane == nr {
            lane = 0;
            q += 1;
        }
    }
}

/// `out[j] = row[start + j*step - pad]`, zero where that index falls outside
/// `row` (in the padding). `start` is in padded coordinates.
#[inline(always)]
pub(crate) fn gather_run(out: &mut [f32], row: &[f32], start: usize, step: usize, pad: usize) {
    let len = out.len();
    let end = pad + row.len();
    // Outputs [lo, hi) read inside the row; unit stride needs no division.
    let (lo, hi) = if step == 1 {
        let lo = pad.saturating_sub(start).min(len);
        (lo, end.saturating_sub(start).clamp(lo, len))
    } else {
        let lo = pad.saturating_sub(start).div_ceil(step).min(len);
        (lo, end.saturating_sub(start).div_ceil(step).clamp(lo, len))
    };
    out[..lo].fill(0.0);
    out[hi..].fill(0.0);
    if lo < hi {
        let from = start + lo * step - pad;
        let dst = &mut out[lo..hi];
        if step == 1 {
            copy_short(dst, &row[from..from + dst.len()]);
        } else if step == 2 {
            crate::evens::copy_evens(dst, &row[from..]);
        } else if !(step <= 4 && crate::evens::copy_every(dst, &row[from..], step)) {
            for (o, v) in dst.iter_mut().zip(row[from..].iter().step_by(step)) {
                *o = *v;
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of a panel row (at most NR
/// floats) or of an image row: whole 8-float blocks as fixed-size moves the
/// compiler inlines, instead of a `memcpy` call per run.
#[inline(always)]
pub(crate) fn copy_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [f32; 8] = d.try_into().expect("chunks of 8");
        let s: &[f32; 8] = s.try_into().expect("chunks of 8");
        *d = *s;
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole im2col matrix, naively: element (row, pixel).
    fn naive(x: &[f32], g: &Geometry, row: usize, pix: usize) -> f32 {
        let (ch, tap) = (row / (g.fh * g.fw), row % (g.fh * g.fw));
        let (fy, fx) = (tap / g.fw, tap % g.fw);
        let (oy, ox) = (pix / g.ow, pix % g.ow);
        let iy = (oy * g.stride[0] + fy * g.dilation[0]) as isize - g.pad_top as isize;
        let ix = (ox * g.stride[1] + fx * g.dilation[1]) as isize - g.pad_left as isize;
        if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
            0.0
        } else {
            x[(ch * g.h + iy as usize) * g.w + ix as usize]
        }
    }

    #[test]
    fn packs_every_block_like_the_naive_matrix() {
        let geoms = [
            Geometry {
                c: 2,
                h: 5,
                w: 7,
                fh: 3,
                fw: 3,
                stride: [1, 1],
                dilation: [1, 1],
                pad_top: 1,
                pad_left: 1,
                oh: 5,
                ow: 7,
            },
            Geometry {
                c: 3,
                h: 9,
                w: 8,
                fh: 2,
                fw: 3,
                stride: [2, 3],
                dilation: [2, 1],
                pad_top: 0,
                pad_left: 2,
                oh: 4,
                ow: 3,
            },
            Geometry {
                c: 1,
                h: 4,
                w: 4,
                fh: 1,
                fw: 5,
                stride: [1, 1],
                dilation: [1, 2],
                pad_top: 3,
                pad_left: 4,
                oh: 10,
                ow: 4,
            },
        ];
        for g in geoms {
            let x: Vec<f32> = (0..g.c * g.h * g.w).map(|i| i as f32 + 1.0).collect();
            let total = g.oh * g.ow;
            for (first, pixels) in [(0, total), (3, total - 5), (total - 1, 1)] {
                let b = Im2col::new(&x, g, first, pixels);
                for (pc, kc) in [(0, b.rows()), (1, b.rows() - 2), (b.rows() - 1, 1)] {
                    for (jc, nc, nr) in [(0, pixels, 4), (pixels / 2, pixels - pixels / 2, 3), (0, pixels, 16)] {
                        let mut dst = vec![f32::NAN; nc.div_ceil(nr) * kc * nr];
                        b.pack(pc, kc, jc, nc, nr, &mut dst);
                        for (q, panel) in dst.chunks(kc * nr).enumerate() {
                            for p in 0..kc {
                                for l in 0..nr {
                                    let j = q * nr + l;
                                    let want = if j < nc { naive(&x, &g, pc + p, first + jc + j) } else { 0.0 };
                                    assert_eq!(panel[p * nr + l], want, "{g:?} row {} col {j}", pc + p);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn gather_run_clips_both_sides() {
        let row = [1.0, 2.0, 3.0, 4.0];
        let mut out = [9.0; 6];
        gather_run(&mut out, &row, 1, 1, 2);
        assert_eq!(out, [0.0, 1.0, 2.0, 3.0, 4.0, 0.0]);
        gather_run(&mut out, &row, 0, 2, 3);
        assert_eq!(out, [0.0, 0.0, 2.0, 4.0, 0.0, 0.0]);
        gather_run(&mut out, &row, 40, 1, 0);
        assert_eq!(out, [0.0; 6]);
    }
}
