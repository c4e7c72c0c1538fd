//! The GEMM paths: per task, a block of output channels of one group times a
//! tile of output pixels of one image, `C = W_block * B_tile` with B the
//! input planes themselves (1x1), read in place from a padded band of input
//! rows (implicit GEMM), or gathered into im2col panels.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;
use receptive_kernels::direct::{Direct, DirectWeights};
use receptive_kernels::gemm::{ASource, Bias, CacheSizes, Epilogue, Gemm, MicroKernel, PackedA};
use receptive_kernels::im2col::{Geometry, Im2col};
use receptive_kernels::implicit::{Band, TRANSPOSED_CHUNK};

use super::ConvAlgorithm;
use crate::gemm::{MatMut, MatRef};
use crate::parallel;

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
    /// The same blocks packed as B panels of W^T (channels in the lanes),
    /// empty for 1x1 layers.
    weights_t: Vec<PackedA>,
    /// The GEMM the W^T panels were packed for (its own KC).
    gemm_t: Gemm,
    /// The direct kernel and the blocks packed for it, where the reduction
    /// is short enough ([`MAX_DIRECT_TAPS`]); else empty.
    direct: &'static Direct,
    weights_d: Vec<DirectWeights>,
    bias: Option<Vec<f32>>,
    algorithm: ConvAlgorithm,
    /// The last lowering chosen, with what it was chosen for.
    last: LastLowering,
}

/// The last (geometry, batch, threads) a plan ran on and the lowering it
/// chose: scoring every band height costs microseconds, a fifth of a small
/// layer's run (seed_28x28x6: 5 us), and a plan usually runs one shape.
#[derive(Debug, Default)]
struct LastLowering(Mutex<Option<(ShapeKey, Lowering)>>);

/// A run's geometry (per group), batch and threads.
type ShapeKey = (Geometry, usize, usize);

impl Clone for LastLowering {
    fn clone(&self) -> Self {
        LastLowering::default()
    }
}

/// Tasks per thread a layer's pixels split into where the batch and the
/// channel blocks give fewer (the band heights are then chosen for an even
/// share per thread). Measured on Zen 5, 2 threads, GFLOP/s with 2 / 4:
/// r50_3x3_128 458 / 415, r50_3x3_512 431 / 416, vgg_conv1_2 411 / 404.
const TASKS_PER_THREAD: usize = 2;

/// The least work worth a task of its own: handing a task to another
/// thread costs microseconds, so a layer smaller than two of these (the
/// seed's 5x5 layers) runs on one thread.
const MIN_TASK_MACS: usize = 1 << 18;

/// The fewest output pixels in a band (but at least a row): every band
/// re-reads the layer's packed weights, which must stay small beside its
/// FMAs.
const MIN_BAND_PIXELS: usize = 128;

/// Most floats in one band of padded input rows (the implicit path): 1 MiB.
/// Each tile reads only a few rows of it, so it need not fit L2; taller
/// bands copy fewer halo rows and end in fewer part-filled tiles. Measured
/// on Zen 5 (vgg_conv1_2, one thread): 188 GFLOP/s at 256 KiB, 198 at 512,
/// 212 at 1 MiB.
const BAND_BUDGET: usize = 256 << 10;

/// The longest reduction (`C/groups * FH * FW`) the direct kernel runs:
/// it keeps a tile's accumulators in registers across the whole of it,
/// with the weights of every channel block in L1.
const MAX_DIRECT_TAPS: usize = 512;

/// How the pixels of a non-pointwise layer reach the GEMM.
#[derive(Clone, Copy, Debug)]
pub(super) enum Lowering {
    /// The input planes are B.
    Pointwise,
    /// A 1x1 unit-stride layer with output channels in the vector lanes:
    /// the input planes are the implicit form's band as they are (tap p at
    /// plane p), read in bands of output rows.
    PointwiseChannels(Band),
    /// B's rows read in place from bands of padded input rows, pixels in
    /// the vector lanes.
    Implicit(Band),
    /// Bands without the phase split (the input itself where nothing is
    /// padded), output channels in the vector lanes (`C^T = im2col^T * W^T`).
    ImplicitChannels(Band),
    /// Patches gathered into packed panels.
    Im2col,
    /// The implicit form's band read by the direct kernel: the whole
    /// reduction per tile, output written in place (short reductions).
    Direct(Band),
}

impl Lowering {
    pub fn name(&self) -> &'static str {
        match self {
            Lowering::Pointwise => "1x1 gemm",
            Lowering::PointwiseChannels(_) => "1x1 gemm^T",
            Lowering::Implicit(_) => "implicit gemm",
            Lowering::ImplicitChannels(_) => "implicit gemm^T",
            Lowering::Im2col => "im2col+gemm",
            Lowering::Direct(_) => "direct",
        }
    }
}

/// What the tasks of one image share.
struct Image<'a> {
    x: &'a [f32],
    geom: Geometry,
    lowering: Lowering,
    /// Output pixels per task column (a band's rows for the implicit path).
    tile: usize,
    clamp: Option<(f32, f32)>,
    /// Whether the output is written with streaming stores.
    stream: bool,
    /// Whether band fills prefetch the input ahead.
    prefetch: bool,
    /// Whether the row blocks of a group are separate tasks (else one task
    /// runs them all over one band fill).
    split_rows: bool,
}

/// One thread's band, the taps of the band layout `taps_for`, and C tile.
struct BandBuffers {
    band: Vec<f32>,
    taps_for: Option<Band>,
    taps: Vec<u32>,
    ctile: Vec<f32>,
}

thread_local! {
    /// The implicit path's per-thread buffers, reused.
    static BAND: RefCell<BandBuffers> = const {
        RefCell::new(BandBuffers { band: Vec::new(), taps_for: None, taps: Vec::new(), ctile: Vec::new() })
    };
}

impl GemmConv {
    /// Packs `a` (`K x C/groups*FH*FW`, the weights as a matrix) block by block.
    /// `window` is the filter's taps per input channel (FH * FW).
    pub fn new(
        gemm: &'static Gemm,
        a: MatRef<'_>,
        groups: usize,
        window: usize,
        pointwise: bool,
        bias: Option<&[f32]>,
    ) -> Self {
        let kg = a.rows() / groups;
        // Equal KC blocks no longer than the tuned KC: a 3x3 over 64
        // channels (K = 576) runs as 2 x 288, not 512 + 64, whose short
        // second block would reload and store C for little work.
        let k = a.cols();
        let kc = k.div_ceil(k.div_ceil(gemm.kc).max(1)).next_multiple_of(8).min(gemm.kc);
        let gemm = Gemm { kc, ..*gemm };
        // The W^T panels are the channel form's B: one reduction block as
        // long as a KC x NR panel fits a quarter of L2, so the C tile stays
        // in registers across the whole reduction (the panel streams from
        // L2 either way). Measured on Zen 5, one thread, GFLOP/s at KC 512
        // / 1024: r50_3x3_64 233 / 246, r50_3x3_128 237 / 250, vgg_conv1_2
        // 215 / 218, r50_3x3_64_b8 225 / 232; at 64 / 128 / 256: r50_3x3_64
        // 216 / 225 / 236. A filter window reads FH * FW taps of each input
        // line it loads, so its A rows touch few lines per step, and its
        // panels go up to half of L2; a 1x1 layer reads a new plane each
        // step. Measured on Zen 5, GFLOP/s at a quarter / half of L2, one
        // thread: r50_3x3_128 237 / 242, r50_3x3_256_14 238 / 243, 1x1
        // 2048->512 at 7x7 229 / 204; two: r50_3x3_128 441 / 453,
        // r50_3x3_512 443 / 452, the 1x1 460 / 415.
        let l2_share = if window > 1 { 2 } else { 4 };
        let kc_t = (CacheSizes::detect().l2 / l2_share / (gemm.kernel.nr * 4)).max(gemm.kc);
        let gemm_t = Gemm { kc: k.div_ceil(k.div_ceil(kc_t).max(1)).next_multiple_of(8).min(kc_t), ..gemm };
        let blocks = kg.div_ceil(MAX_BLOCK_ROWS);
        // Whole NR panels when there are that many channels, so the form
        // with channels in the lanes wastes none; else whole MR panels.
        let unit = if kg >= gemm.kernel.nr { gemm.kernel.nr } else { gemm.kernel.mr };
        let block_rows = kg.div_ceil(blocks).next_multiple_of(unit).min(kg);
        let blocks_per_group = kg.div_ceil(block_rows);
        let mut conv = GemmConv {
            gemm,
            pointwise,
            groups,
            kg,
            block_rows,
            blocks_per_group,
            weights: Vec::with_capacity(groups * blocks_per_group),
            weights_t: Vec::new(),
            gemm_t,
            direct: Direct::for_isa(gemm.kernel.isa),
            weights_d: Vec::new(),
            bias: bias.map(<[f32]>::to_vec),
            algorithm: ConvAlgorithm::Auto,
            last: LastLowering::default(),
        };
        for rb in 0..groups * blocks_per_group {
            let (r0, rows) = conv.row_block(rb);
            let block = a.block(r0, 0, rows, a.cols()).expect("row blocks lie inside the weights");
            conv.weights.push(PackedA::new(&conv.gemm, block));
            conv.weights_t.push(PackedA::with_width(&conv.gemm_t, block, conv.gemm.kernel.nr));
            if k <= MAX_DIRECT_TAPS {
                conv.weights_d.push(conv.direct.pack(block));
            }
        }
        conv
    }

    pub fn set_algorithm(&mut self, algorithm: ConvAlgorithm) {
        self.algorithm = algorithm;
        self.last = LastLowering::default();
    }

    /// [`choose_lowering`](Self::choose_lowering), remembered for the last
    /// shape it was asked for.
    pub fn lowering(&self, g: &Geometry, n: usize, threads: usize) -> Lowering {
        let key = (*g, n, threads);
        // A poisoned lock only means a panic elsewhere; the value is whole.
        let mut last = self.last.0.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some((k, lowering)) if k == key => lowering,
            _ => {
                let lowering = self.choose_lowering(g, n, threads);
                *last = Some((key, lowering));
                lowering
            }
        }
    }

    pub fn kernel(&self) -> &'static MicroKernel {
        self.gemm.kernel
    }

    /// The ISA and name of the kernel `lowering` runs.
    pub fn kernel_name(&self, lowering: &Lowering) -> (receptive_kernels::Isa, &'static str) {
        match lowering {
            Lowering::Direct(_) => (self.direct.isa(), self.direct.name()),
            _ => (self.gemm.kernel.isa, self.gemm.kernel.name),
        }
    }

    pub fn packed_bytes(&self) -> usize {
        self.weights.iter().chain(&self.weights_t).map(PackedA::bytes).sum::<usize>()
            + self.weights_d.iter().map(DirectWeights::bytes).sum::<usize>()
            + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }

    /// First output channel and channel count of row block `rb`.
    fn row_block(&self, rb: usize) -> (usize, usize) {
        let (g, b) = (rb / self.blocks_per_group, rb % self.blocks_per_group);
        let start = b * self.block_rows;
        (g * self.kg + start, self.block_rows.min(self.kg - start))
    }

    /// Tasks the pixels of one image split into: [`TASKS_PER_THREAD`] per
    /// thread over the whole grid of images, channel blocks and pixel
    /// tasks, for balance, but none under [`MIN_TASK_MACS`]; one on a
    /// single thread.
    fn pixel_tasks(&self, g: &Geometry, n: usize, threads: usize) -> usize {
        if threads < 2 {
            return 1;
        }
        let macs = n * self.groups * self.kg * g.oh * g.ow * g.c * g.fh * g.fw;
        let tasks = (TASKS_PER_THREAD * threads).min(macs / MIN_TASK_MACS).max(1);
        tasks.div_ceil(n * self.weights.len())
    }

    /// Pixels per im2col task: [`Self::pixel_tasks`] of them, no wider than
    /// [`MAX_TILE`], in whole micropanels.
    fn tile_width(&self, g: &Geometry, n: usize, threads: usize) -> usize {
        let pixels = g.oh * g.ow;
        let tiles = self.pixel_tasks(g, n, threads).max(pixels.div_ceil(MAX_TILE)).max(1);
        pixels.div_ceil(tiles).next_multiple_of(self.gemm.kernel.nr).min(pixels).max(1)
    }

    /// The lowering for an input of geometry `g`, or the forced algorithm.
    ///
    /// Each candidate is scored by the share of the microkernel's work that
    /// lands in the output, times what its extra passes cost: im2col loses
    /// the part-filled last tile and MR row panel, and its gather (20% at
    /// 64 output channels); implicit GEMM with pixels in the lanes the same row panel and
    /// the grid's extra columns (a wide filter over a narrow output wastes
    /// most); with channels in the lanes, the channels past a multiple of
    /// NR and the transpose of the output (about 0.2 cycles per output,
    /// against taps / 32 cycles of FMAs). The best score wins. Measured on
    /// Zen 5, medians of 3, GFLOP/s pixel lanes / channel lanes, 1 thread:
    /// r50_stem 204 / 213, r50_3x3_64 226 / 237, r50_3x3_128 211 / 242,
    /// r50_3x3_512 181 / 214, vgg_conv1_2 207 / 211; 2 threads: 381 / 393,
    /// 373 / 434, 316 / 397, 349 / 394, 384 / 375. im2col: 131, 199, 202,
    /// 137, 185 on one thread; it wins only where the grid is mostly extra
    /// columns. seed_5x5 (10 channels): pixel lanes 134, channel lanes 33.
    ///
    /// The copies count as about half a cycle per float: im2col copies each
    /// input float FH*FW times, the implicit forms once into the band,
    /// against `K * FH * FW / 32` cycles of FMAs each input float feeds.
    /// A 1x1 unit-stride layer reads its input planes in place.
    ///
    /// The direct kernel (reductions up to [`MAX_DIRECT_TAPS`]) is scored
    /// as the pixel form with its own tile and channel block and no copy
    /// out of a C tile, and wins ties. Measured on Zen 5, one thread,
    /// GFLOP/s implicit / implicit^T / direct: r50_stem 217 / 221 / 233,
    /// first_3x3_s2 (32 filters) 113 / - / 170, 8 -> 32 channels 3x3 at 56x56
    /// 164 / 105 / 217, 16 -> 64 206 / 214 / 232, 56 -> 64 at 28x28 (504
    /// taps) 201 / 232 / 221, where the score picks implicit^T.
    fn choose_lowering(&self, g: &Geometry, n: usize, threads: usize) -> Lowering {
        let (mr, nr) = (self.gemm.kernel.mr, self.gemm.kernel.nr);
        let share = |len: usize, tile: usize| len as f64 / len.next_multiple_of(tile) as f64;
        let pixels = g.oh * g.ow;
        let tile = self.tile_width(g, n, threads);
        let im2col_lanes = (pixels / tile) * tile.next_multiple_of(nr) + (pixels % tile).next_multiple_of(nr);
        let rows_use = share(self.block_rows, mr);
        let gather = 1.0 / (1.0 + 16.0 / self.block_rows as f64);
        let im2col = gather * rows_use * pixels as f64 / im2col_lanes as f64;
        let taps = g.c * g.fh * g.fw;
        let transpose = 1.0 / (1.0 + 6.0 / taps as f64);
        let fill = 1.0 / (1.0 + 16.0 / (self.block_rows * g.fh * g.fw) as f64);
        // Band heights that fit the budget, up to one that splits the images
        // into enough tasks, but none under MIN_BAND_PIXELS if the image
        // has them (each band re-reads all the weights). Each form takes the
        // height with the best product of its lane use and the threads'
        // balance (the busiest thread's rows against an even share), the
        // taller on ties.
        let most_rows = g.oh.div_ceil(self.pixel_tasks(g, n, threads)).max(MIN_BAND_PIXELS.div_ceil(g.ow)).min(g.oh);
        let grid_w = Band::grid_width(g);
        let lanes = |r: usize| ((r - 1) * grid_w + g.ow).next_multiple_of(nr);
        let blocks = n * self.weights.len();
        let balance = |rows: usize| {
            let tasks = blocks * g.oh.div_ceil(rows);
            let even = (blocks * g.oh) as f64 / threads as f64;
            if threads < 2 { 1.0 } else { even / (tasks.div_ceil(threads) * rows) as f64 }
        };
        let mut pixel_form: Option<(f64, Band)> = None;
        let mut channel_form: Option<(f64, Band)> = None;
        // The channel form reads the input in place where nothing is
        // padded, else a band without the phase split.
        let rows_fit = |band: &Band| band.rows() == 1 || band.len() <= BAND_BUDGET;
        let fits = |band: &Band| rows_fit(band) || band.is_in_place();
        let mut direct_form: Option<(f64, usize)> = None;
        let (direct_mr, direct_nr) = (self.direct.mr(), self.direct.nr());
        let direct_rows = share(self.block_rows, direct_mr);
        for rows in 1..=most_rows {
            let total = (g.oh / rows) * lanes(rows) + if g.oh.is_multiple_of(rows) { 0 } else { lanes(g.oh % rows) };
            let pixel =
                (Band::new(*g, rows, nr).filter(rows_fit), balance(rows) * rows_use * pixels as f64 / total as f64);
            let band = Band::in_place(*g, rows, nr).or_else(|| Band::unsplit(*g, rows, nr));
            let channel = (band.filter(fits), balance(rows) * share(rows * g.ow, mr));
            for (form, (band, score)) in [(&mut pixel_form, pixel), (&mut channel_form, channel)] {
                if let Some(band) = band
                    && form.is_none_or(|(best, _)| score >= best - 0.005)
                {
                    *form = Some((score, band));
                }
            }
            if self.weights_d.is_empty() || self.pointwise {
                continue;
            }
            // The direct kernel: the pixel form's lane use with its own
            // tile width and channel block.
            let direct_lanes = |r: usize| ((r - 1) * grid_w + g.ow).next_multiple_of(direct_nr);
            let direct_total = (g.oh / rows) * direct_lanes(rows)
                + if g.oh.is_multiple_of(rows) { 0 } else { direct_lanes(g.oh % rows) };
            let direct = balance(rows) * direct_rows * pixels as f64 / direct_total as f64;
            if direct_form.is_none_or(|(best, _)| direct >= best - 0.005) {
                direct_form = Some((direct, rows));
            }
        }
        let (Some((pixel_lanes, pixel_band)), Some((channel_score, channel_band))) = (pixel_form, channel_form) else {
            return Lowering::Im2col;
        };
        if self.pointwise {
            // Reading the planes in place measured faster than either
            // implicit form wherever the pixels fill the lanes (the channel
            // form with a band, 1x1 2048->512 at 7x7: 159 against 191
            // GFLOP/s); with few pixels per task they are mostly padding
            // (7x7: 49 of 64 lanes), and the channel form reading the planes
            // in place, without a band, wins: 1x1 2048->512 and 512->2048 at
            // 7x7, one thread, 192 -> 235 GFLOP/s.
            let pointwise = pixels as f64 / im2col_lanes as f64;
            let channels = transpose * share(self.block_rows, nr) * channel_score;
            // The taps are u32 offsets into the group's planes.
            let addressable = g.c * g.h * g.w <= u32::MAX as usize;
            return if addressable && channels > pointwise * 1.05 {
                Lowering::PointwiseChannels(channel_band)
            } else {
                Lowering::Pointwise
            };
        }
        let (pixel_lanes, channel_lanes) =
            (fill * pixel_lanes, fill * transpose * share(self.block_rows, nr) * channel_score);
        // The direct kernel's band has the slack its own tile width reads
        // past the grid.
        let direct =
            direct_form.and_then(|(score, rows)| Band::new(*g, rows, direct_nr).map(|band| (fill * score, band)));
        // A forced direct form where the reduction is too long runs as Auto.
        let auto = matches!(self.algorithm, ConvAlgorithm::Auto | ConvAlgorithm::Direct);
        match (self.algorithm, direct) {
            (ConvAlgorithm::Direct, Some((_, band))) => Lowering::Direct(band),
            (ConvAlgorithm::Auto, Some((score, band))) if score >= pixel_lanes.max(channel_lanes).max(im2col) => {
                Lowering::Direct(band)
            }
            (ConvAlgorithm::Im2col, _) => Lowering::Im2col,
            (ConvAlgorithm::Implicit, _) => Lowering::Implicit(pixel_band),
            (ConvAlgorithm::ImplicitChannels, _) => Lowering::ImplicitChannels(channel_band),
            _ if auto && channel_lanes >= pixel_lanes.max(im2col) => Lowering::ImplicitChannels(channel_band),
            _ if auto && pixel_lanes >= im2col => Lowering::Implicit(pixel_band),
            _ => Lowering::Im2col,
        }
    }

    /// Floats of workspace each thread uses: the B pack buffer (im2col), or
    /// the band, its taps and the C tile (implicit).
    pub fn workspace_floats(&self, g: &Geometry, n: usize, threads: usize) -> usize {
        let k = self.weights.first().map_or(0, PackedA::cols);
        let nr = self.gemm.kernel.nr;
        match self.lowering(g, n, threads) {
            Lowering::Pointwise => 0,
            Lowering::Implicit(band) => band.len() + k + self.block_rows * nr,
            Lowering::ImplicitChannels(band) | Lowering::PointwiseChannels(band) => {
                let copied = if band.is_in_place() { 0 } else { band.len() };
                copied + k + self.block_rows * TRANSPOSED_CHUNK
            }
            Lowering::Direct(band) => band.len() + k,
            Lowering::Im2col => self.gemm.kc.min(k) * self.tile_width(g, n, threads).next_multiple_of(nr),
        }
    }

    /// `y = act(W * im2col(x) + bias)` for the `n` images of `x`; the caller
    /// has validated every shape and length (`geom.c` is C/groups).
    pub fn run(&self, x: &[f32], geom: Geometry, n: usize, k: usize, y: &mut [f32], clamp: Option<(f32, f32)>) {
        let pixels = geom.oh * geom.ow;
        let threads = rayon::current_num_threads();
        let lowering = self.lowering(&geom, n, threads);
        let tile = match lowering {
            Lowering::Implicit(band)
            | Lowering::ImplicitChannels(band)
            | Lowering::PointwiseChannels(band)
            | Lowering::Direct(band) => band.rows() * geom.ow,
            _ => self.tile_width(&geom, n, threads),
        };
        let tiles = pixels.div_ceil(tile);
        let in_image = self.groups * geom.c * geom.h * geom.w;
        // An output larger than an eighth of L3 will not be in cache for the
        // next layer anyway (nor for this one's next run): streaming its
        // lines to memory saves reading each before it is written. Measured
        // on Zen 5, one thread, GFLOP/s without / with: vgg_conv1_2 (12.8
        // MB) 208 / 217, r50_3x3_64_b8 (6.4 MB) 221 / 227; r50_stem (3.2
        // MB) 205 / 201, so smaller outputs keep ordinary stores.
        let stream = n * k * pixels * 4 > CacheSizes::detect().l3 / 8;
        // The same for an input larger than that: band fills prefetch it a
        // plane ahead. vgg_conv1_2 (12.8 MB in) 234 -> 247 GFLOP/s, one
        // thread; r50_3x3_64 (0.8 MB) lost 2%, so a smaller input does not.
        let prefetch = n * in_image * 4 > CacheSizes::detect().l3 / 8;
        // One thread gains nothing from separate row-block tasks, and each
        // would fill its own band.
        let split_rows = threads > 1;
        let image = |(yi, xi): (&mut [f32], &[f32])| {
            let c = MatMut::new(yi, k, pixels, pixels, 1).expect("the output image is K x OH*OW");
            let image = Image { x: xi, geom, lowering, tile, clamp, stream, prefetch, split_rows };
            self.split(&image, c, 0..self.weights.len(), 0..tiles);
        };
        if n == 1 || parallel::one_thread() {
            // No rayon hand-over unless `split` finds tasks for several threads.
            y.chunks_mut(k * pixels).zip(x.chunks(in_image)).for_each(image);
        } else {
            y.par_chunks_mut(k * pixels).zip(x.par_chunks(in_image)).for_each(image);
        }
    }

    /// Halves the (row blocks x pixel tiles) grid until one task is left,
    /// running the halves with `rayon::join` (in turn on a one-thread pool); the views stay disjoint.
    /// Row blocks are split first, but where `im.split_rows` is off only at
    /// group boundaries: a task then runs all the row blocks of its group
    /// over one band fill.
    fn split(&self, im: &Image<'_>, c: MatMut<'_>, rbs: Range<usize>, tiles: Range<usize>) {
        // Without `split_rows` the ranges hold whole groups.
        let unit = if im.split_rows { 1 } else { self.blocks_per_group };
        if rbs.len() > unit {
            let mid = rbs.start + rbs.len() / unit / 2 * unit;
            let (top, bottom) = c.split_at_row(self.row_block(mid).0 - self.row_block(rbs.start).0);
            let tiles2 = tiles.clone();
            parallel::join(
                || self.split(im, top, rbs.start..mid, tiles),
                || self.split(im, bottom, mid..rbs.end, tiles2),
            );
        } else if tiles.len() > 1 {
            let mid = tiles.start + tiles.len() / 2;
            let (left, right) = c.split_at_col((mid - tiles.start) * im.tile);
            let rbs2 = rbs.clone();
            parallel::join(
                || self.split(im, left, rbs, tiles.start..mid),
                || self.split(im, right, rbs2, mid..tiles.end),
            );
        } else {
            self.task(im, c, rbs, tiles.start * im.tile);
        }
    }

    /// The GEMMs of row blocks `rbs` (all of one group) times pixels
    /// `p0..p0 + c.cols()`; the implicit forms fill their band once for all.
    fn task(&self, im: &Image<'_>, c: MatMut<'_>, rbs: Range<usize>, p0: usize) {
        let g = &im.geom;
        let group = rbs.start / self.blocks_per_group;
        let group_len = g.c * g.h * g.w;
        let x = &im.x[group * group_len..(group + 1) * group_len];
        let pixels = c.cols();
        let (oy0, rows) = (p0 / g.ow, pixels / g.ow);
        match im.lowering {
            Lowering::Pointwise => {
                let planes = g.h * g.w;
                let b = MatRef::new(x, g.c, planes, planes, 1)
                    .ok()
                    .and_then(|m| m.block(0, p0, g.c, pixels))
                    .expect("the input planes hold the pixel tile");
                self.each_block(c, rbs, im.clamp, |rb, c, ep| {
                    self.gemm.run(1.0, ASource::Packed(&self.weights[rb]), &b, 0.0, c, ep)
                });
            }
            Lowering::Implicit(band)
            | Lowering::ImplicitChannels(band)
            | Lowering::PointwiseChannels(band)
            | Lowering::Direct(band) => BAND.with(|ws| {
                let BandBuffers { band: buf, taps_for, taps, ctile } = &mut *ws.borrow_mut();
                if *taps_for != Some(band) {
                    taps.resize(self.weights[rbs.start].cols(), 0);
                    band.taps(taps);
                    *taps_for = Some(band);
                }
                let buf: &[f32] = if band.is_in_place() {
                    &x[oy0 * g.stride[0] * g.w..]
                } else {
                    buf.resize(buf.len().max(band.len()), 0.0);
                    if im.prefetch {
                        band.fill_prefetching(x, oy0, buf);
                    } else {
                        band.fill(x, oy0, buf);
                    }
                    buf
                };
                self.each_block(c, rbs, im.clamp, |rb, c, ep| match im.lowering {
                    Lowering::Direct(_) => {
                        let r0 = self.row_block(rb).0;
                        let bias = self.bias.as_ref().map(|b| &b[r0..r0 + c.rows()]);
                        self.direct.run(&band, &self.weights_d[rb], buf, taps, rows, c, bias, im.clamp);
                    }
                    Lowering::Implicit(_) => band.run(&self.gemm, &self.weights[rb], buf, taps, rows, c, ep, ctile),
                    _ => {
                        let wt = &self.weights_t[rb];
                        band.run_transposed(&self.gemm_t, wt, buf, taps, rows, c, ep, ctile, im.stream);
                    }
                });
            }),
            Lowering::Im2col => {
                let b = Im2col::new(x, *g, p0, pixels);
                self.each_block(c, rbs, im.clamp, |rb, c, ep| {
                    self.gemm.run(1.0, ASource::Packed(&self.weights[rb]), &b, 0.0, c, ep)
                });
            }
        }
    }

    /// Runs `f(rb, C rows of rb, its epilogue)` for each row block of `rbs`,
    /// `c` holding their rows in order.
    fn each_block(
        &self,
        mut c: MatMut<'_>,
        rbs: Range<usize>,
        clamp: Option<(f32, f32)>,
        mut f: impl FnMut(usize, MatMut<'_>, &Epilogue<'_>),
    ) {
        for rb in rbs {
            let (r0, rows) = self.row_block(rb);
            let (block, rest) = c.split_at_row(rows);
            c = rest;
            let ep =
                Epilogue { bias: self.bias.as_ref().map_or(Bias::None, |b| Bias::PerRow(&b[r0..r0 + rows])), clamp };
            f(rb, block, &ep);
        }
    }
}
