//! Implicit-GEMM convolution: the GEMM's B operand read straight out of a
//! zero-padded copy of the input rows, with no im2col gather.
//!
//! With stride 1, output pixel (oy, ox) sees tap (fy, fx) at padded input
//! position (oy + fy*dy, ox + fx*dx). Lay the output out on a grid as wide
//! as the padded rows it reads (`grid_w`): flat grid pixel `q = oy*grid_w +
//! ox` then reads padded flat index `q + fy*dy*grid_w + fx*dx`, so each row
//! `(c, fy, fx)` of the im2col matrix is channel c of the padded input
//! shifted by a constant. The microkernel reads B's step p at `band +
//! taps[p]` ([`crate::gemm::OffsetKernelFn`]): no packing, and the few
//! padded rows one tile of pixels reads stay in L1 across all its taps.
//! The grid's extra columns (`ox >= OW`) compute values nobody stores,
//! which costs `(grid_w - OW) / grid_w` of the work.
//!
//! A stride `s` splits the padded rows and columns into phases (row `r`
//! goes to phase `r % s`, row `r / s`), after which every tap is a shift of
//! one phase plane again: the same kernel serves every stride and dilation.
//! Only the phases some tap reads are stored.
//!
//! A *band* is the padded, phase-split copy of the input rows that a run of
//! `rows` output rows reads, over all the channels of one group: the unit of
//! work of one task, a few hundred KiB.
//!
//! The form with output channels in the vector lanes reads each pixel at its
//! own address, so it needs no phase split: its band is the padded input
//! rows as they are ([`Band::unsplit`]), a plain copy, with the pixels
//! `stride` apart; and where nothing is padded it is the input itself
//! ([`Band::in_place`]), with nothing to copy.

use crate::gemm::{Bias, Epilogue, Gemm, PackedA, TileEpilogue};
use crate::im2col::{Geometry, gather_run};
use crate::transpose::{transpose, transpose_streaming};
use crate::view::MatMut;

/// Where everything lies in the band buffer of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    g: Geometry,
    /// Output rows per band.
    rows: usize,
    /// Width of the output grid and of every phase row.
    grid_w: usize,
    /// `s / gcd(d, s)` per axis: tap `f` reads phase `f % period`.
    period: [usize; 2],
    /// Phases stored per axis: `min(F, period)`.
    phases: [usize; 2],
    /// Phase rows stored: `rows` plus the deepest tap's row shift.
    phase_rows: usize,
    /// Floats per phase plane: `phase_rows * grid_w` plus NR of slack that
    /// the last tile's extra lanes may read.
    plane: usize,
    /// The microkernel's NR.
    nr: usize,
    /// Band rows and columns from one output pixel to the next: 1 with the
    /// phase split, the stride without.
    step: [usize; 2],
    /// Whether the band is the group's input planes themselves.
    in_place: bool,
}

impl Band {
    /// Width of the output grid for `g`: the output width plus the widest
    /// tap's column shift. The grid computes `grid_width * OH` pixels for
    /// the `OW * OH` the output holds.
    pub fn grid_width(g: &Geometry) -> usize {
        g.ow + (g.fw - 1) * g.dilation[1] / g.stride[1]
    }

    /// The layout for bands of `rows` output rows of `g`, read by a kernel
    /// with `NR = nr`; `None` when the band would not be addressable with
    /// 32-bit offsets or the sizes overflow.
    ///
    /// # Panics
    /// If `g` has a zero stride, dilation, filter size or output size.
    pub fn new(g: Geometry, rows: usize, nr: usize) -> Option<Band> {
        Band::layout(g, rows, nr, [1, 1], false)
    }

    /// The layout without the phase split: the padded input rows as they
    /// are, each output pixel `stride` from the next. Only
    /// [`run_transposed`](Self::run_transposed) reads it.
    ///
    /// # Panics
    /// As for [`new`](Self::new).
    pub fn unsplit(g: Geometry, rows: usize, nr: usize) -> Option<Band> {
        Band::layout(g, rows, nr, g.stride, false)
    }

    /// [`unsplit`](Self::unsplit) for a layer without padding, whose band is
    /// then the group's input planes themselves: nothing to
    /// [fill](Self::fill), and [`run_transposed`](Self::run_transposed)
    /// reads the input from the band's first row (`oy0 * stride`) on.
    /// `None` where some tap reads padding.
    ///
    /// # Panics
    /// As for [`new`](Self::new).
    pub fn in_place(g: Geometry, rows: usize, nr: usize) -> Option<Band> {
        let padded = g.pad_top + g.pad_left > 0
            || (g.oh - 1) * g.stride[0] + (g.fh - 1) * g.dilation[0] >= g.h
            || (g.ow - 1) * g.stride[1] + (g.fw - 1) * g.dilation[1] >= g.w;
        if padded {
            return None;
        }
        Band::layout(g, rows, nr, g.stride, true)
    }

    fn layout(g: Geometry, rows: usize, nr: usize, step: [usize; 2], in_place: bool) -> Option<Band> {
        assert!(g.stride.iter().chain(&g.dilation).all(|&v| v > 0), "stride and dilation must be positive");
        assert!(g.fh > 0 && g.fw > 0 && g.oh > 0 && g.ow > 0 && rows > 0 && nr > 0, "empty convolution");
        // Input rows and columns from one band row or column to the next.
        let outer = [g.stride[0] / step[0], g.stride[1] / step[1]];
        let period = [0, 1].map(|i| outer[i] / gcd(g.dilation[i], outer[i]));
        let phases = [period[0].min(g.fh), period[1].min(g.fw)];
        // The band rows (columns) the pixels and their taps reach.
        let reach = |n: usize, step: usize, f: usize, d: usize, outer: usize| {
            (n - 1).checked_mul(step)?.checked_add((f - 1).checked_mul(d)? / outer)?.checked_add(1)
        };
        let mut grid_w = reach(g.ow, step[1], g.fw, g.dilation[1], outer[1])?;
        let mut phase_rows = reach(rows, step[0], g.fh, g.dilation[0], outer[0])?;
        let mut plane = phase_rows.checked_mul(grid_w)?.checked_add(nr)?;
        if in_place {
            (grid_w, phase_rows, plane) = (g.w, g.h, g.h.checked_mul(g.w)?);
        }
        let band = Band { g, rows, grid_w, period, phases, phase_rows, plane, nr, step, in_place };
        let len = band.channel_len()?.checked_mul(g.c)?;
        (len <= u32::MAX as usize).then_some(band)
    }

    /// Whether the band is the input itself (see [`in_place`](Self::in_place)).
    pub fn is_in_place(&self) -> bool {
        self.in_place
    }

    /// Output rows per band.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The convolution the band is laid out for.
    pub fn geometry(&self) -> &Geometry {
        &self.g
    }

    fn channel_len(&self) -> Option<usize> {
        (self.phases[0] * self.phases[1]).checked_mul(self.plane)
    }

    /// Input rows (axis 0) or columns (1) from one band row or column to the next.
    fn outer(&self, axis: usize) -> usize {
        self.g.stride[axis] / self.step[axis]
    }

    /// Floats of one band buffer.
    pub fn len(&self) -> usize {
        self.channel_len().expect("checked in new") * self.g.c
    }

    /// Whether the band holds nothing (never: `new` rejects empty shapes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offset in the band of im2col row `(c, fy, fx)`'s first pixel, for
    /// every row in order: `taps.len()` must be `C * FH * FW`.
    pub fn taps(&self, taps: &mut [u32]) {
        let g = &self.g;
        assert_eq!(taps.len(), g.c * g.fh * g.fw, "one offset per im2col row");
        let chan = self.channel_len().expect("checked in new");
        let mut it = taps.iter_mut();
        for c in 0..g.c {
            for fy in 0..g.fh {
                let (py, shift_y) = (fy % self.period[0], fy * g.dilation[0] / self.outer(0));
                for fx in 0..g.fw {
                    let (px, shift_x) = (fx % self.period[1], fx * g.dilation[1] / self.outer(1));
                    let phase = py * self.phases[1] + px;
                    let off = c * chan + phase * self.plane + shift_y * self.grid_w + shift_x;
                    // Below `len`, which `new` checked fits in u32.
                    *it.next().expect("length checked") = off as u32;
                }
            }
        }
    }

    /// Copies what the band of output rows `oy0..` reads from `x` (the `C`
    /// planes of the group) into `band`, zeros in the padding.
    pub fn fill(&self, x: &[f32], oy0: usize, band: &mut [f32]) {
        self.fill_with(x, oy0, band, false);
    }

    /// [`fill`](Self::fill) prefetching each input row of the next plane
    /// while copying this plane's: for an input too large to stay in cache,
    /// each plane's rows are a short stream that the hardware prefetcher
    /// would only catch up with near its end.
    pub fn fill_prefetching(&self, x: &[f32], oy0: usize, band: &mut [f32]) {
        self.fill_with(x, oy0, band, true);
    }

    fn fill_with(&self, x: &[f32], oy0: usize, band: &mut [f32], prefetch: bool) {
        let g = &self.g;
        let plane_in = g.h * g.w;
        assert!(x.len() >= g.c * plane_in, "input shorter than its planes");
        assert!(band.len() >= self.len(), "band buffer too short");
        assert!(!self.in_place, "an in-place band is the input itself");
        let chan = self.channel_len().expect("checked in new");
        let outer = [self.outer(0), self.outer(1)];
        for c in 0..g.c {
            let xc = &x[c * plane_in..(c + 1) * plane_in];
            for py in 0..self.phases[0] {
                let a = py * g.dilation[0] % outer[0];
                for px in 0..self.phases[1] {
                    let b = px * g.dilation[1] % outer[1];
                    let at = c * chan + (py * self.phases[1] + px) * self.plane;
                    let dst = &mut band[at..at + self.phase_rows * self.grid_w];
                    for (i, out) in dst.chunks_exact_mut(self.grid_w).enumerate() {
                        // Padded input row of phase row i; past the input
                        // (or past usize) it is padding.
                        let row = oy0
                            .checked_mul(g.stride[0])
                            .and_then(|r| r.checked_add(i * outer[0] + a))
                            .and_then(|r| r.checked_sub(g.pad_top))
                            .filter(|&iy| iy < g.h);
                        match row {
                            Some(iy) => {
                                // The same row of the next plane.
                                let next = (c + 1) * plane_in + iy * g.w;
                                if prefetch {
                                    for v in x.get(next..next + g.w).unwrap_or(&[]).iter().step_by(16) {
                                        prefetch_line(v);
                                    }
                                }
                                gather_run(out, &xc[iy * g.w..(iy + 1) * g.w], b, outer[1], g.pad_left)
                            }
                            None => out.fill(0.0),
                        }
                    }
                }
            }
        }
    }

    /// The checks [`run`](Self::run) and [`run_transposed`](Self::run_transposed)
    /// share: one tap per step of the `k`-long reduction, a band's rows of
    /// an `m`-channel output, a per-channel bias (returned) or none.
    fn check_run<'b>(
        &self,
        taps: &[u32],
        k: usize,
        rows: usize,
        c: &MatMut<'_>,
        m: usize,
        ep: &Epilogue<'b>,
    ) -> Option<&'b [f32]> {
        let g = &self.g;
        assert!(k == taps.len() && k == g.c * g.fh * g.fw && k > 0, "one tap per reduction step");
        assert!((1..=self.rows).contains(&rows), "band rows");
        assert!(c.rows() == m && c.cols() == rows * g.ow, "C is the band's rows of the output");
        match ep.bias {
            Bias::None => None,
            Bias::PerRow(v) => {
                assert_eq!(v.len(), m, "one bias per output channel");
                Some(v)
            }
            Bias::PerCol(_) => panic!("convolution bias is per output channel"),
        }
    }

    /// `C = act(A * im2col + bias)` for output rows `oy0..oy0 + rows` of
    /// one band, already [filled](Self::fill) into `band`, with `taps` from
    /// [`taps`](Self::taps). C is `A.rows() x rows*OW` (those rows of the
    /// output channels, row-major pixels); `ctile` is scratch, grown as
    /// needed.
    ///
    /// # Panics
    /// If the shapes disagree, `a` was packed for another kernel or KC, or
    /// a tap would read past `band`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        gemm: &Gemm,
        a: &PackedA,
        band: &[f32],
        taps: &[u32],
        rows: usize,
        mut c: MatMut<'_>,
        ep: &Epilogue<'_>,
        ctile: &mut Vec<f32>,
    ) {
        let g = &self.g;
        let (m, k) = (a.rows(), a.cols());
        // The reduction blocks `PackedA` was packed in.
        let (mr, nr, kc) = (gemm.kernel.mr, gemm.kernel.nr, gemm.kc_block(k));
        assert!(nr == self.nr && a.mr() == mr && a.kc() == gemm.kc, "A or the band laid out for another kernel");
        assert!(self.step == [1, 1] && !self.in_place, "the pixel lanes read a phase-split band");
        let bias = self.check_run(taps, k, rows, &c, m, ep);
        let grid = (rows - 1) * self.grid_w + g.ow;
        let reach = taps.iter().max().map_or(0, |&t| t as usize) + grid.next_multiple_of(nr);
        assert!(reach <= band.len(), "a tap reads past the band");
        if ctile.len() < m * nr {
            ctile.resize(m * nr, 0.0);
        }
        let k_blocks = k.div_ceil(kc);
        for q0 in (0..grid).step_by(nr) {
            let n = nr.min(grid - q0);
            for kb in 0..k_blocks {
                let (pc, kcb) = (kb * kc, kc.min(k - kb * kc));
                let (first, last) = (kb == 0, kb + 1 == k_blocks);
                for i in (0..m).step_by(mr) {
                    let mm = mr.min(m - i);
                    let panel = a.block(pc, kcb, i, mm);
                    let tile = TileEpilogue {
                        alpha: 1.0,
                        beta: 1.0,
                        load_c: !first,
                        bias_row: bias.filter(|_| last).map_or(std::ptr::null(), |b| b[i..].as_ptr()),
                        bias_col: std::ptr::null(),
                        clamp: if last { ep.clamp } else { None },
                    };
                    // SAFETY: `panel` is one packed kcb x MR panel; step p
                    // of B reads NR floats at q0 + taps[pc + p] <= the
                    // largest tap + (grid rounded up to NR) - NR, inside
                    // `band` (asserted above); C is rows i..i+mm, columns
                    // 0..n of the m x NR `ctile`, written before it is read
                    // (load_c only after the first block); the bias slice
                    // starts at row i and holds m - i >= mm floats.
                    unsafe {
                        (gemm.kernel.func_offsets)(
                            kcb,
                            panel.as_ptr(),
                            band[q0..].as_ptr(),
                            taps[pc..].as_ptr(),
                            ctile[i * nr..].as_mut_ptr(),
                            nr,
                            1,
                            mm,
                            n,
                            &tile,
                        )
                    };
                }
            }
            // The tile's grid pixels to their output pixels, skipping the
            // grid's extra columns.
            let mut q = q0;
            while q < q0 + n {
                let (oy, ox) = (q / self.grid_w, q % self.grid_w);
                let len = (self.grid_w - ox).min(q0 + n - q);
                if ox < g.ow {
                    let keep = len.min(g.ow - ox);
                    for (r, src) in ctile.chunks_exact(nr).take(m).enumerate() {
                        c.write_run(r, oy * g.ow + ox, &src[q - q0..q - q0 + keep]);
                    }
                }
                q += len;
            }
        }
    }
}

impl Band {
    /// [`run`](Self::run) with the output channels in the vector lanes:
    /// `C^T = im2col^T * W^T`, each microkernel row one output pixel read
    /// at its own place in the band ([`crate::gemm::GatherKernelFn`]), and
    /// B the weights packed as NR-wide panels of W^T (`wt`, packed by
    /// [`PackedA::with_width`] with width NR). The grid's extra columns cost
    /// nothing here, only the channels past a multiple of NR do. The tile
    /// goes through `ctile` (pixels x channels) and is transposed into C,
    /// with streaming stores if `stream` (an output too large to stay in
    /// cache: see [`transpose_streaming`]).
    ///
    /// # Panics
    /// As for [`run`](Self::run).
    #[allow(clippy::too_many_arguments)]
    pub fn run_transposed(
        &self,
        gemm: &Gemm,
        wt: &PackedA,
        band: &[f32],
        taps: &[u32],
        rows: usize,
        mut c: MatMut<'_>,
        ep: &Epilogue<'_>,
        ctile: &mut Vec<f32>,
        stream: bool,
    ) {
        let g = &self.g;
        let (m, k) = (wt.rows(), wt.cols());
        // The reduction blocks `PackedA` was packed in.
        let (mr, nr, kc) = (gemm.kernel.mr, gemm.kernel.nr, gemm.kc_block(k));
        assert!(wt.mr() == nr && wt.kc() == gemm.kc, "W^T packed for another kernel");
        assert!(mr <= MAX_MR, "MR above {MAX_MR}");
        let bias = self.check_run(taps, k, rows, &c, m, ep);
        // Pixel (oy, ox) starts at band row oy * step[0], column ox * step[1].
        let (row_step, col_step) = (self.step[0] * self.grid_w, self.step[1]);
        let last = (rows - 1) * row_step + (g.ow - 1) * col_step;
        let reach = taps.iter().max().map_or(0, |&t| t as usize) + last + 1;
        assert!(reach <= band.len(), "a tap reads past the band");
        let pixels = rows * g.ow;
        let chunk = TRANSPOSED_CHUNK.next_multiple_of(mr).min(pixels);
        if ctile.len() < chunk * m {
            ctile.resize(chunk * m, 0.0);
        }
        let k_blocks = k.div_ceil(kc);
        for t0 in (0..pixels).step_by(chunk) {
            let np = chunk.min(pixels - t0);
            // Each pixel's first tap: its grid position in the band; MR
            // rows past the chunk repeat its last pixel.
            let mut pixel_rows = [std::ptr::null::<f32>(); TRANSPOSED_CHUNK + 2 * MAX_MR];
            // (A division per pixel measured 3% of r50_stem.)
            let (mut oy, mut ox) = (t0 / g.ow, t0 % g.ow);
            for row in &mut pixel_rows[..np] {
                *row = band[oy * row_step + ox * col_step..].as_ptr();
                ox += 1;
                if ox == g.ow {
                    (oy, ox) = (oy + 1, 0);
                }
            }
            let last = pixel_rows[np - 1];
            pixel_rows[np..np + mr].fill(last);
            for kb in 0..k_blocks {
                let (pc, kcb) = (kb * kc, kc.min(k - kb * kc));
                let (first, last) = (kb == 0, kb + 1 == k_blocks);
                for j in (0..m).step_by(nr) {
                    let nn = nr.min(m - j);
                    let panel = wt.block(pc, kcb, j, nn);
                    let tile = TileEpilogue {
                        alpha: 1.0,
                        beta: 1.0,
                        load_c: !first,
                        bias_row: std::ptr::null(),
                        bias_col: bias.filter(|_| last).map_or(std::ptr::null(), |b| b[j..].as_ptr()),
                        clamp: if last { ep.clamp } else { None },
                    };
                    for i in (0..np).step_by(mr) {
                        let mm = mr.min(np - i);
                        // SAFETY: `pixel_rows[i..i + MR]` are MR pointers
                        // into `band` (set above: i + MR <= np + MR), each
                        // at a grid position q with q + every tap <=
                        // `reach` - 1 < band.len() (asserted above);
                        // `panel` is one packed kcb x NR panel; C is rows
                        // i..i+mm, columns j..j+nn of the np x m `ctile`,
                        // written before it is read (load_c only after the
                        // first block); the bias slice starts at column j
                        // and holds m - j >= nn floats.
                        unsafe {
                            (gemm.kernel.func_gathered)(
                                kcb,
                                pixel_rows[i..].as_ptr(),
                                taps[pc..].as_ptr(),
                                panel.as_ptr(),
                                ctile[i * m + j..].as_mut_ptr(),
                                m,
                                1,
                                mm,
                                nn,
                                &tile,
                            )
                        };
                    }
                }
            }
            if stream {
                transpose_streaming(gemm.kernel.isa, ctile, np, m, m, &mut c, t0);
            } else {
                transpose(gemm.kernel.isa, ctile, np, m, m, &mut c, t0);
            }
        }
    }
}

/// Largest MR of any microkernel (the gathered kernels' row array).
const MAX_MR: usize = 16;

/// Output pixels per transposed tile: the `pixels x channels` C tile (at
/// most 192 x 256 floats = 192 KiB) stays in L2 across the reduction
/// blocks, and each output row gets runs of 12 whole lines. Measured on
/// Zen 5 (one thread, GFLOP/s at 48 / 96 / 192 / 384 pixels): r50_3x3_64
/// 233 / 233 / 238 / 233, r50_3x3_512 214 / 202 / 222 / 200, vgg_conv1_2
/// 206 / 203 / 214 / 208.
pub const TRANSPOSED_CHUNK: usize = 192;

/// Hints the line holding `v` into L1 (nothing where no hint is wired).
#[inline(always)]
fn prefetch_line(v: &f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults or changes memory
    // (and `v` is a live reference anyway).
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(v).cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::KERNELS;
    use crate::testing::{ints, naive_conv as naive};
    use crate::view::MatRef;

    #[test]
    fn every_kernel_matches_the_direct_convolution() {
        // (c, h, w, fh, fw, stride, dilation, pads [top, left, bottom, right], k)
        let cases = [
            (3, 9, 11, 3, 3, [1, 1], [1, 1], [1, 1, 1, 1], 7),
            (2, 10, 9, 5, 3, [2, 2], [1, 1], [2, 1, 2, 1], 5),
            (2, 12, 13, 3, 2, [3, 2], [2, 3], [0, 2, 1, 0], 13),
            (1, 8, 8, 1, 1, [2, 2], [1, 1], [0, 0, 0, 0], 3),
            (4, 7, 7, 3, 3, [1, 1], [1, 1], [1, 1, 1, 1], 9),
            (1, 6, 20, 2, 7, [1, 3], [1, 1], [1, 3, 0, 3], 2),
            // No padding (the in-place band): strided, dilated, and with
            // bottom and right padding no tap reaches.
            (3, 11, 12, 3, 3, [2, 2], [1, 1], [0, 0, 0, 0], 9),
            (2, 9, 10, 2, 3, [1, 2], [2, 1], [0, 0, 0, 0], 5),
            (2, 9, 10, 3, 3, [2, 1], [1, 1], [0, 0, 1, 1], 4),
            // More channels than one NR panel, pixels past one chunk.
            (2, 20, 13, 3, 3, [1, 1], [1, 1], [1, 1, 1, 1], 70),
        ];
        for kernel in KERNELS.iter().filter(|k| k.isa.supported()) {
            // Miri runs the stride-2 and the dilated case, one KC and height.
            let picked = if cfg!(miri) { &cases[1..3] } else { &cases[..] };
            for &(c, h, w, fh, fw, stride, dilation, pads, k) in picked {
                let oh = (h + pads[0] + pads[2] - dilation[0] * (fh - 1) - 1) / stride[0] + 1;
                let ow = (w + pads[1] + pads[3] - dilation[1] * (fw - 1) - 1) / stride[1] + 1;
                let g = Geometry { c, h, w, fh, fw, stride, dilation, pad_top: pads[0], pad_left: pads[1], oh, ow };
                let (x, wt) = (ints(c * h * w, 1), ints(k * c * fh * fw, 2));
                let want = naive(&x, &wt, k, &g);
                // A short KC makes several reduction blocks.
                for kc in if cfg!(miri) { &[8][..] } else { &[8, 512][..] } {
                    let kc = *kc;
                    let gemm = Gemm { kc, ..Gemm::for_kernel(kernel) };
                    let wm = MatRef::new(&wt, k, c * fh * fw, c * fh * fw, 1).unwrap();
                    let a = PackedA::new(&gemm, wm);
                    let at = PackedA::with_width(&gemm, wm, kernel.nr);
                    for rows in if cfg!(miri) { vec![2] } else { vec![1, 2, oh] } {
                        // The phase-split band serves both forms; the unsplit
                        // and in-place ones only the channel form.
                        let both = [(false, false), (true, false), (true, true)];
                        let layouts = [
                            (Band::new(g, rows, kernel.nr), &both[..]),
                            (Band::unsplit(g, rows, kernel.nr), &both[1..]),
                            (Band::in_place(g, rows, kernel.nr), &both[1..]),
                        ];
                        for (band, forms) in layouts {
                            let Some(band) = band else { continue };
                            let mut taps = vec![0; c * fh * fw];
                            band.taps(&mut taps);
                            let mut buf = vec![f32::NAN; band.len()];
                            for &(transposed, stream) in forms {
                                let mut y = vec![f32::NAN; k * oh * ow];
                                let mut ctile = Vec::new();
                                for oy0 in (0..oh).step_by(rows) {
                                    let r = rows.min(oh - oy0);
                                    let src: &[f32] = if band.is_in_place() {
                                        &x[oy0 * stride[0] * w..]
                                    } else {
                                        if transposed {
                                            band.fill_prefetching(&x, oy0, &mut buf);
                                        } else {
                                            band.fill(&x, oy0, &mut buf);
                                        }
                                        &buf
                                    };
                                    let ym = MatMut::new(&mut y, k, oh * ow, oh * ow, 1).unwrap();
                                    let (_, rest) = ym.split_at_col(oy0 * ow);
                                    let (cm, _) = rest.split_at_col(r * ow);
                                    let ep = Epilogue::default();
                                    if transposed {
                                        band.run_transposed(&gemm, &at, src, &taps, r, cm, &ep, &mut ctile, stream);
                                    } else {
                                        band.run(&gemm, &a, src, &taps, r, cm, &ep, &mut ctile);
                                    }
                                }
                                assert_eq!(
                                    y, want,
                                    "{} {band:?} kc {kc} rows {rows} transposed {transposed} {stream}",
                                    kernel.name
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
