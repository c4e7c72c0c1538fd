//! Direct convolution for layers with a short reduction (a network's first
//! layer: 3 input channels, `C * FH * FW` of 27 to a few hundred taps).
//!
//! The input is the implicit path's [`Band`] (padded, phase-split rows, so
//! every tap is a shift of one plane), read at its grid positions with the
//! output pixels in the vector lanes, as in [`Band::run`]. What differs is
//! the tile and the store: the whole reduction runs in registers for an
//! `MR`-channel block (eight on AVX-512, dividing the 16 to 96 filters such
//! layers have, where a 6-row GEMM panel would waste up to a ninth), and
//! each accumulator vector goes straight to the NCHW output: the grid's
//! extra columns (`ox >= OW`) are dropped by compacting the vector's kept
//! lanes, which lie next to each other in the output since output row
//! `oy + 1` follows row `oy`. There is no C tile to copy out and no
//! transpose; with a reduction this short those copies cost a fifth of the
//! layer.

use crate::gemm::simd::Simd;
use crate::im2col::Geometry;
use crate::implicit::Band;
use crate::isa::{Isa, kernel_for};
use crate::view::{MatMut, MatRef};

/// Most vectors per tile (the scalar kernel's 8 one-float "vectors").
const MAX_NV: usize = 8;

/// One call of a kernel: an `MR`-channel block times `NV` vectors of grid
/// pixels, over the whole reduction.
struct Tile {
    /// Reduction steps (taps).
    k: usize,
    /// `k x MR` weights, step-major (`MR` channels per step).
    w: *const f32,
    /// The band at the tile's first grid position.
    x: *const f32,
    /// `k` offsets: step p reads `NV * LANES` floats at `x + offsets[p]`.
    offsets: *const u32,
    /// Output channel 0 of the block at the band's first output pixel.
    c: *mut f32,
    /// Distance between output channels.
    rs: usize,
    /// Channels stored (`<= MR`).
    m: usize,
    /// Output pixel of each vector's first kept lane.
    at: [usize; MAX_NV],
    /// Kept lanes of each vector (bit j = lane j): the grid pixels inside
    /// the output.
    keep: [u32; MAX_NV],
    /// `m` biases, or null.
    bias: *const f32,
    clamp: Option<(f32, f32)>,
}

/// # Safety
/// The CPU supports the kernel's ISA; `t.w` holds `k * MR` floats, each
/// step's `NV * LANES` floats at `x + offsets[p]` are readable, and each
/// channel `i < m` has `popcount(keep[v])` writable floats at
/// `c + i * rs + at[v]` for every vector `v`; `bias` is null or holds `m`
/// floats.
type TileFn = unsafe fn(&Tile);

/// A direct kernel for one ISA.
#[derive(Debug)]
pub struct Direct {
    name: &'static str,
    isa: Isa,
    /// Output channels per tile.
    mr: usize,
    /// Floats per vector.
    lanes: usize,
    /// Grid pixels per tile (`NV * lanes`).
    nr: usize,
    func: TileFn,
}

/// Weights `[K, taps]` packed for a [`Direct`] kernel: `MR`-channel blocks,
/// each `taps x MR` step-major, the last zero-padded to `MR` channels.
#[derive(Clone, Debug)]
pub struct DirectWeights {
    data: Vec<f32>,
    k: usize,
    taps: usize,
    mr: usize,
}

impl DirectWeights {
    /// Output channels.
    pub fn rows(&self) -> usize {
        self.k
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }
}

impl Direct {
    /// The kernel for `isa`, or for the best ISA below it that this CPU
    /// runs (so the result is always safe to run here).
    pub fn for_isa(isa: Isa) -> &'static Direct {
        kernel_for(KERNELS, isa, |k| k.isa)
    }

    /// Name carrying tile and ISA, e.g. `direct_8x48_avx512`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The ISA the kernel runs on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Output channels per tile.
    pub fn mr(&self) -> usize {
        self.mr
    }

    /// Grid pixels per tile: the `nr` a [`Band`] for this kernel is laid
    /// out for.
    pub fn nr(&self) -> usize {
        self.nr
    }

    /// Packs `w` (`[K, C*FH*FW]`, any strides) for this kernel.
    pub fn pack(&self, w: MatRef<'_>) -> DirectWeights {
        let (k, taps, mr) = (w.rows(), w.cols(), self.mr);
        let mut data = vec![0.0; k.div_ceil(mr) * mr * taps];
        for (b, block) in data.chunks_exact_mut(taps * mr).enumerate() {
            for (p, step) in block.chunks_exact_mut(mr).enumerate() {
                for (i, v) in step.iter_mut().enumerate().take(k.saturating_sub(b * mr)) {
                    *v = w.at(b * mr + i, p);
                }
            }
        }
        DirectWeights { data, k, taps, mr }
    }

    /// `C = act(W * im2col + bias)` for `rows` output rows of one band,
    /// already [filled](Band::fill) into `band`, with `taps` from
    /// [`Band::taps`]. C is `K x rows*OW` (those rows of every output
    /// channel, row-major pixels); `bias` holds one float per channel.
    ///
    /// # Panics
    /// If the shapes disagree, `w` was packed for another kernel, or a tap
    /// would read past `band`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        layout: &Band,
        w: &DirectWeights,
        band: &[f32],
        taps: &[u32],
        rows: usize,
        mut c: MatMut<'_>,
        bias: Option<&[f32]>,
        clamp: Option<(f32, f32)>,
    ) {
        let g: &Geometry = layout.geometry();
        let (k, nr, lanes) = (w.k, self.nr, self.lanes);
        assert!(w.mr == self.mr && w.taps == taps.len(), "weights packed for another kernel or layer");
        assert!(taps.len() == g.c * g.fh * g.fw && !taps.is_empty(), "one tap per reduction step");
        assert!((1..=layout.rows()).contains(&rows), "band rows");
        assert!(c.rows() == k && c.cols() == rows * g.ow && c.col_stride() == 1, "C is the band's rows of the output");
        assert!(bias.is_none_or(|b| b.len() == k), "one bias per output channel");
        let grid_w = Band::grid_width(g);
        let grid = (rows - 1) * grid_w + g.ow;
        let reach = taps.iter().max().map_or(0, |&t| t as usize) + grid.next_multiple_of(nr);
        assert!(reach <= band.len(), "a tap reads past the band");
        let c0 = c.as_mut_ptr();
        for q0 in (0..grid).step_by(nr) {
            let mut tile = Tile {
                k: taps.len(),
                w: std::ptr::null(),
                x: band[q0..].as_ptr(),
                offsets: taps.as_ptr(),
                c: c0,
                rs: c.row_stride(),
                m: 0,
                at: [0; MAX_NV],
                keep: [0; MAX_NV],
                bias: std::ptr::null(),
                clamp,
            };
            // Each vector's kept lanes and where the first lands: grid
            // pixel q is output pixel (q / grid_w, q % grid_w) if that
            // column is below OW. Walked in runs of kept or dropped lanes
            // that stop at vector boundaries.
            let (mut oy, mut ox) = (q0 / grid_w, q0 % grid_w);
            let mut t = 0;
            while t < nr && q0 + t < grid {
                let (v, l) = (t / lanes, t % lanes);
                let run = if ox < g.ow { g.ow - ox } else { grid_w - ox }.min(lanes - l);
                if ox < g.ow {
                    let run = run.min(grid - q0 - t);
                    if tile.keep[v] == 0 {
                        tile.at[v] = oy * g.ow + ox;
                    }
                    tile.keep[v] |= (((1u64 << run) - 1) << l) as u32;
                }
                t += run;
                ox += run;
                if ox == grid_w {
                    (oy, ox) = (oy + 1, 0);
                }
            }
            for (b, block) in w.data.chunks_exact(w.taps * w.mr).enumerate() {
                let i = b * w.mr;
                tile.w = block.as_ptr();
                tile.m = w.mr.min(k - i);
                tile.bias = bias.map_or(std::ptr::null(), |b| b[i..].as_ptr());
                // SAFETY: the kernel is for a supported ISA (`for_isa`);
                // `block` is one packed taps x MR block; step p reads NR
                // floats at q0 + taps[p] <= the largest tap + (grid rounded
                // up to NR) - NR, inside `band` (asserted above); the kept
                // lanes of each vector are output pixels at..at + count of
                // the band's rows (grid pixels of one tile map to
                // consecutive output pixels), and channel i + m <= k rows of
                // C; the bias slice starts at channel i and holds k - i >= m.
                unsafe { (self.func)(&tile) };
                tile.c = tile.c.wrapping_add(w.mr * c.row_stride());
            }
        }
    }
}

/// Stores the kept lanes of a vector next to each other: the one operation
/// the direct kernels need beyond [`Simd`].
///
/// # Safety
/// As for [`Simd`].
unsafe trait Compact: Simd {
    /// Writes the lanes of `v` set in `keep`, in order, to `p..p +
    /// popcount(keep)`. The default spills through the stack.
    ///
    /// # Safety
    /// `popcount(keep)` floats at `p` are writable; the CPU supports `Self`.
    #[inline(always)]
    unsafe fn store_kept(p: *mut f32, keep: u32, v: Self::V) {
        let mut tmp = [0.0f32; 16];
        // SAFETY: `tmp` holds LANES <= 16 floats; the caller vouches for
        // one writable float per set bit of `keep`.
        unsafe {
            Self::store(tmp.as_mut_ptr(), v);
            let mut out = p;
            for (l, &x) in tmp.iter().enumerate().take(Self::LANES) {
                if keep >> l & 1 == 1 {
                    *out = x;
                    out = out.add(1);
                }
            }
        }
    }
}

/// The tile: `MR` channels times `NV` vectors, the whole reduction in
/// registers, then bias, clamp and the compacting store.
///
/// # Safety
/// The contract of [`TileFn`] with `MR` and `NV` vectors of `S`.
#[inline(always)]
unsafe fn body<S: Compact, const MR: usize, const NV: usize>(t: &Tile) {
    // SAFETY (whole body): the caller guarantees the CPU has S's features;
    // each access is inside what the TileFn contract vouches for.
    unsafe {
        let mut acc = [[S::zero(); NV]; MR];
        for p in 0..t.k {
            let xp = t.x.add(*t.offsets.add(p) as usize);
            let xv: [S::V; NV] = std::array::from_fn(|v| S::load(xp.add(v * S::LANES)));
            let wp = t.w.add(p * MR);
            for (i, row) in acc.iter_mut().enumerate() {
                let wi = S::splat(*wp.add(i));
                for (a, &x) in row.iter_mut().zip(&xv) {
                    *a = S::fmadd(wi, x, *a);
                }
            }
        }
        let full = u32::MAX >> (32 - S::LANES);
        let clamp = t.clamp.map(|(lo, hi)| (S::splat(lo), S::splat(hi)));
        for (i, row) in acc.iter().enumerate().take(t.m) {
            let bias = if t.bias.is_null() { None } else { Some(S::splat(*t.bias.add(i))) };
            let out = t.c.add(i * t.rs);
            for (v, &a) in row.iter().enumerate() {
                let mut y = a;
                if let Some(b) = bias {
                    y = S::add(y, b);
                }
                if let Some((lo, hi)) = clamp {
                    y = S::clamp(y, lo, hi);
                }
                if t.keep[v] == full {
                    S::store(out.add(t.at[v]), y);
                } else if t.keep[v] != 0 {
                    S::store_kept(out.add(t.at[v]), t.keep[v], y);
                }
            }
        }
    }
}

// SAFETY: plain Rust.
unsafe impl Compact for crate::gemm::scalar::Scalar {}

/// The scalar tile: 4 channels x 8 pixels.
///
/// # Safety
/// The contract of [`TileFn`].
unsafe fn direct_4x8_scalar(t: &Tile) {
    // SAFETY: forwarded from the caller.
    unsafe { body::<crate::gemm::scalar::Scalar, 4, 8>(t) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Compact, Tile, body};
    use crate::gemm::avx2::Avx2;
    use crate::gemm::avx512::Avx512;

    // SAFETY: used only inside the avx2 shell below.
    unsafe impl Compact for Avx2 {}

    // SAFETY: used only inside the avx512f shell below.
    unsafe impl Compact for Avx512 {
        #[inline(always)]
        unsafe fn store_kept(p: *mut f32, keep: u32, v: __m512) {
            // Compacting in a register and a masked store: the compress
            // straight to memory is microcoded on Zen 4.
            // SAFETY: the first popcount(keep) lanes are written, which the
            // caller vouches for; the CPU has AVX-512F.
            unsafe {
                let packed = _mm512_maskz_compress_ps(keep as __mmask16, v);
                let len = keep.count_ones();
                _mm512_mask_storeu_ps(p, ((1u32 << len) - 1) as __mmask16, packed)
            }
        }
    }

    /// The AVX-512 tile: 8 channels x 3 vectors (48 pixels), 24 of the 32
    /// `zmm` registers; 11 loads per 24 FMAs.
    ///
    /// # Safety
    /// The contract of [`super::TileFn`] on a CPU with AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn direct_8x48_avx512(t: &Tile) {
        // SAFETY: forwarded from the caller.
        unsafe { body::<Avx512, 8, 3>(t) }
    }

    /// The AVX2 tile: 4 channels x 3 vectors (24 pixels), 12 accumulators
    /// of the 16 `ymm` registers.
    ///
    /// # Safety
    /// The contract of [`super::TileFn`] on a CPU with AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn direct_4x24_avx2(t: &Tile) {
        // SAFETY: forwarded from the caller.
        unsafe { body::<Avx2, 4, 3>(t) }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::{Compact, Tile, body};
    use crate::gemm::neon::Neon;

    // SAFETY: used only inside the neon shell below.
    unsafe impl Compact for Neon {}

    /// The NEON tile: 8 channels x 3 vectors (12 pixels), 24 of the 32
    /// `q` registers.
    ///
    /// # Safety
    /// The contract of [`super::TileFn`] on a CPU with NEON.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn direct_8x12_neon(t: &Tile) {
        // SAFETY: forwarded from the caller.
        unsafe { body::<Neon, 8, 3>(t) }
    }
}

static KERNELS: &[Direct] = &[
    #[cfg(target_arch = "x86_64")]
    Direct { name: "direct_8x48_avx512", isa: Isa::Avx512, mr: 8, lanes: 16, nr: 48, func: x86::direct_8x48_avx512 },
    #[cfg(target_arch = "x86_64")]
    Direct { name: "direct_4x24_avx2", isa: Isa::Avx2, mr: 4, lanes: 8, nr: 24, func: x86::direct_4x24_avx2 },
    #[cfg(target_arch = "aarch64")]
    Direct { name: "direct_8x12_neon", isa: Isa::Neon, mr: 8, lanes: 4, nr: 12, func: arm::direct_8x12_neon },
    Direct { name: "direct_4x8_scalar", isa: Isa::Scalar, mr: 4, lanes: 1, nr: 8, func: direct_4x8_scalar },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ints, naive_conv};

    /// Direct convolution of `x` (one group) by `w` `[K, C*FH*FW]`, then
    /// bias and clamp.
    fn naive(x: &[f32], w: &[f32], k: usize, g: &Geometry, bias: &[f32], clamp: (f32, f32)) -> Vec<f32> {
        let mut y = naive_conv(x, w, k, g);
        for (plane, b) in y.chunks_exact_mut(g.oh * g.ow).zip(bias) {
            plane.iter_mut().for_each(|v| *v = (*v + b).clamp(clamp.0, clamp.1));
        }
        y
    }

    #[test]
    fn every_kernel_matches_the_direct_convolution() {
        // (c, h, w, fh, fw, stride, dilation, pads [top, left, bottom, right], k):
        // channel counts on and off MR, outputs narrower than a vector and
        // rows ending mid-vector, strides, dilation, asymmetric padding.
        let cases = [
            (3, 17, 19, 3, 3, [2, 2], [1, 1], [1, 1, 1, 1], 16),
            (3, 15, 21, 7, 7, [2, 2], [1, 1], [3, 3, 3, 3], 13),
            (2, 12, 13, 3, 2, [3, 2], [2, 3], [0, 2, 1, 0], 5),
            (1, 6, 3, 2, 2, [1, 1], [1, 1], [1, 0, 0, 1], 9),
            (4, 9, 40, 5, 5, [2, 2], [1, 1], [2, 2, 2, 2], 20),
            (3, 23, 23, 11, 11, [4, 4], [1, 1], [0, 0, 0, 0], 8),
        ];
        let clamp = (-60.0, 60.0);
        for kernel in KERNELS.iter().filter(|k| k.isa.supported()) {
            let picked = if cfg!(miri) { &cases[2..4] } else { &cases[..] };
            for &(c, h, w, fh, fw, stride, dilation, pads, k) in picked {
                let oh = (h + pads[0] + pads[2] - dilation[0] * (fh - 1) - 1) / stride[0] + 1;
                let ow = (w + pads[1] + pads[3] - dilation[1] * (fw - 1) - 1) / stride[1] + 1;
                let g = Geometry { c, h, w, fh, fw, stride, dilation, pad_top: pads[0], pad_left: pads[1], oh, ow };
                let (x, wt, bias) = (ints(c * h * w, 1), ints(k * c * fh * fw, 2), ints(k, 3));
                let want = naive(&x, &wt, k, &g, &bias, clamp);
                let packed = kernel.pack(MatRef::new(&wt, k, c * fh * fw, c * fh * fw, 1).unwrap());
                for rows in if cfg!(miri) { vec![2] } else { vec![1, 2, 3, oh] } {
                    let band = Band::new(g, rows, kernel.nr()).unwrap();
                    let mut taps = vec![0; c * fh * fw];
                    band.taps(&mut taps);
                    let mut buf = vec![f32::NAN; band.len()];
                    let mut y = vec![f32::NAN; k * oh * ow];
                    for oy0 in (0..oh).step_by(rows) {
                        let r = rows.min(oh - oy0);
                        band.fill(&x, oy0, &mut buf);
                        let ym = MatMut::new(&mut y, k, oh * ow, oh * ow, 1).unwrap();
                        let (_, rest) = ym.split_at_col(oy0 * ow);
                        let (cm, _) = rest.split_at_col(r * ow);
                        kernel.run(&band, &packed, &buf, &taps, r, cm, Some(&bias), Some(clamp));
                    }
                    assert_eq!(y, want, "{} {g:?} rows {rows}", kernel.name);
                }
            }
        }
    }
}
