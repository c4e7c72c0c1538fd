//! The GEMM paths: per task, a block of output channels of one group times a
//! tile of output pixels of one image, `C = W_block * B_tile` with B either
//! the input planes themselves (1x1) or gathered im2col panels.

use std::ops::Range;

use rayon::prelude::*;
use receptive_kernels::gemm::{ASource, Bias, Epilogue, Gemm, MicroKernel, PackedA};
use receptive_kernels::im2col::{Geometry, Im2col};

use crate::gemm::{MatMut, MatRef};

/// Widest tile of output pixels per task. The driver packs `KC x tile` of B
/// at a time, so a task's pack buffer stays at `256 * 256 * 4` bytes = 256
/// KiB at most (it streams through L2 while A's `MC x KC` block sits there).
const MAX_TILE: usize = 256;

/// Most output channels per task: larger layers split into equal blocks,
/// each its own packed A, so few-pixel layers (7x7) still make several tasks.
const MAX_BLOCK_ROWS: usize = 256;

/// Packed weights and the task layout of a convolution run as GEMMs.
#[derive(Clone, Debug)]
pub(super) struct GemmConv {
    /// The dispatched GEMM with KC evened out for this reduction length.
    gemm: Gemm,
    pointwise: bool,
    groups: usize,
    /// Output channels per group.
    kg: usize,
    /// Output channels per task (the last block of a group may be shorter).
    block_rows: usize,
    blocks_per_group: usize,
    /// One packed A per (group, row block), group-major.
    weights: Vec<PackedA>,
    bias: Option<Vec<f32>>,
}

/// What the tasks of one image share.
struct Image<'a> {
    x: &'a [f32],
    geom: Geometry,
    tile: usize,
    clamp: Option<(f32, f32)>,
}

impl GemmConv {
    /// Packs `a` (`K x C/groups*FH*FW`, the weights as a matrix) block by block.
    pub fn new(gemm: &'static Gemm, a: MatRef<'_>, groups: usize, pointwise: bool, bias: Option<&[f32]>) -> Self {
        let kg = a.rows() / groups;
        // Equal KC blocks no longer than the tuned KC: a 3x3 over 64
        // channels (K = 576) runs as 2 x 288, not 512 + 64, whose short
        // second block would reload and store C for little work.
        let k = a.cols();
        let kc = k.div_ceil(k.div_ceil(gemm.kc).max(1)).next_multiple_of(8).min(gemm.kc);
        let gemm = Gemm { kc, ..*gemm };
        let blocks = kg.div_ceil(MAX_BLOCK_ROWS);
        let block_rows = kg.div_ceil(blocks).next_multiple_of(gemm.kernel.mr).min(kg);
        let blocks_per_group = kg.div_ceil(block_rows);
        let mut conv = GemmConv {
            gemm,
            pointwise,
            groups,
            kg,
            block_rows,
            blocks_per_group,
            weights: Vec::with_capacity(groups * blocks_per_group),
            bias: bias.map(<[f32]>::to_vec),
        };
        for rb in 0..groups * blocks_per_group {
            let (r0, rows) = conv.row_block(rb);
            let block = a.block(r0, 0, rows, a.cols()).expect("row blocks lie inside the weights");
            conv.weights.push(PackedA::new(&conv.gemm, block));
        }
        conv
    }

    pub fn kernel(&self) -> &'static MicroKernel {
        self.gemm.kernel
    }

    pub fn pointwise(&self) -> bool {
        self.pointwise
    }

    pub fn packed_bytes(&self) -> usize {
        self.weights.iter().map(PackedA::bytes).sum::<usize>() + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }

    /// First output channel and channel count of row block `rb`.
    fn row_block(&self, rb: usize) -> (usize, usize) {
        let (g, b) = (rb / self.blocks_per_group, rb % self.blocks_per_group);
        let start = b * self.block_rows;
        (g * self.kg + start, self.block_rows.min(self.kg - start))
    }

    /// Pixels per task: enough tasks for every thread to stay busy (four
    /// per thread, for balance) but no wider than [`MAX_TILE`], in whole
    /// micropanels.
    fn tile_width(&self, n: usize, pixels: usize, threads: usize) -> usize {
        let row_tasks = n * self.weights.len();
        let want = if threads > 1 { 4 * threads } else { 1 };
        let tiles = want.div_ceil(row_tasks).max(pixels.div_ceil(MAX_TILE)).max(1);
        pixels.div_ceil(tiles).next_multiple_of(self.gemm.kernel.nr).min(pixels).max(1)
    }

    /// Floats of B pack buffer each thread uses.
    pub fn workspace_floats(&self, n: usize, pixels: usize, threads: usize) -> usize {
        let k = self.weights.first().map_or(0, PackedA::cols);
        let nr = self.gemm.kernel.nr;
        self.gemm.kc.min(k) * self.tile_width(n, pixels, threads).next_multiple_of(nr)
    }

    /// `y = act(W * im2col(x) + bias)` for the `n` images of `x`; the caller
    /// has validated every shape and length (`geom.c` is C/groups).
    pub fn run(&self, x: &[f32], geom: Geometry, n: usize, k: usize, y: &mut [f32], clamp: Option<(f32, f32)>) {
        let pixels = geom.oh * geom.ow;
        let tile = self.tile_width(n, pixels, rayon::current_num_threads());
        let tiles = pixels.div_ceil(tile);
        let in_image = self.groups * geom.c * geom.h * geom.w;
        y.par_chunks_mut(k * pixels).zip(x.par_chunks(in_image)).for_each(|(yi, xi)| {
            let c = MatMut::new(yi, k, pixels, pixels, 1).expect("the output image is K x OH*OW");
            let image = Image { x: xi, geom, tile, clamp };
            self.split(&image, c, 0..self.weights.len(), 0..tiles);
        });
    }

    /// Halves the (row blocks x pixel tiles) grid until one task is left,
    /// running the halves with `rayon::join`; the views stay disjoint.
    fn split(&self, im: &Image<'_>, c: MatMut<'_>, rbs: Range<usize>, tiles: Range<usize>) {
        if rbs.len() > 1 {
            let mid = rbs.start + rbs.len() / 2;
            let (top, bottom) = c.split_at_row(self.row_block(mid).0 - self.row_block(rbs.start).0);
            let tiles2 = tiles.clone();
            rayon::join(|| self.split(im, top, rbs.start..mid, tiles), || self.split(im, bottom, mid..rbs.end, tiles2));
        } else if tiles.len() > 1 {
            let mid = tiles.start + tiles.len() / 2;
            let (left, right) = c.split_at_col((mid - tiles.start) * im.tile);
            let rbs2 = rbs.clone();
            rayon::join(|| self.split(im, left, rbs, tiles.start..mid), || self.split(im, right, rbs2, mid..tiles.end));
        } else {
            self.task(im, c, rbs.start, tiles.start * im.tile);
        }
    }

    /// One GEMM: row block `rb` of the weights times pixels `p0..p0+c.cols()`.
    fn task(&self, im: &Image<'_>, c: MatMut<'_>, rb: usize, p0: usize) {
        let g = &im.geom;
        let group = rb / self.blocks_per_group;
        let group_len = g.c * g.h * g.w;
        let x = &im.x[group * group_len..(group + 1) * group_len];
        let (r0, rows) = self.row_block(rb);
        let ep = Epilogue {
            bias: self.bias.as_ref().map_or(Bias::None, |b| Bias::PerRow(&b[r0..r0 + rows])),
            clamp: im.clamp,
        };
        let a = ASource::Packed(&self.weights[rb]);
        let pixels = c.cols();
        if self.pointwise {
            let planes = g.h * g.w;
            let b = MatRef::new(x, g.c, planes, planes, 1)
                .ok()
                .and_then(|m| m.block(0, p0, g.c, pixels))
                .expect("the input planes hold the pixel tile");
            self.gemm.run(1.0, a, &b, 0.0, c, &ep);
        } else {
            self.gemm.run(1.0, a, &Im2col::new(x, *g, p0, pixels), 0.0, c, &ep);
        }
    }
}
