//! The BLIS loop nest and its block sizes.

use std::cell::RefCell;
use std::sync::OnceLock;

use aligned_vec::{AVec, ConstAlign};

use super::epilogue::{Bias, Epilogue, TileEpilogue};
use super::pack::{PackB, pack_a, pack_b};
use super::registry::{MicroKernel, kernel_for};
use crate::isa::Isa;
use crate::view::{MatMut, MatRef};

/// Pack buffers are aligned to a cache line (and a 512-bit vector).
type Buf = AVec<f32, ConstAlign<64>>;

/// A kernel plus the block sizes that feed it.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    /// The microkernel.
    pub kernel: &'static MicroKernel,
    /// Rows of A per packed block (a multiple of MR).
    pub mc: usize,
    /// Reduction length per block.
    pub kc: usize,
    /// Columns of B per packed block (a multiple of NR).
    pub nc: usize,
}

impl Gemm {
    /// The kernel dispatch picks for `isa`, with block sizes sized to the caches.
    pub fn for_isa(isa: Isa) -> Gemm {
        Gemm::for_kernel(kernel_for(isa))
    }

    /// `kernel` with block sizes derived from this CPU's cache sizes
    /// ([`CacheSizes::detect`]).
    ///
    /// The budget (Zen 5 per core: L1d 48 KiB, L2 1 MiB, L3 32 MiB shared):
    /// * L1: the `MR x KC` A micropanel in 3/8 of L1d (6x64 kernel:
    ///   KC = 768, 18 KiB), beside the B step being loaded. The `KC x NR` B
    ///   micropanel that loop 1 reuses is larger than L1 for NR = 64
    ///   and streams from L2: 256 bytes per k-step against 12 cycles of
    ///   FMAs, well under L2's 64 bytes per cycle. A longer KC means fewer
    ///   C reloads and stores per FMA; measured single-thread on Zen 5
    ///   (6x64, GFLOP/s, KC 512 -> 768 with MC from the L2 rule below):
    ///   2048^3 228 -> 242, (64, 3136, 576) 219 -> 233, (128, 784, 1152)
    ///   220 -> 223, (512, 49, 4608) 183 -> 187, the smaller squares equal
    ///   (KC 1024 gained nothing more). KC 512 had beaten 384, 256 and 128;
    /// * L2: the `MC x KC` block of A, reused by every B micropanel of a
    ///   block: `MC * KC * 4` bytes in half of L2 (MC = 168);
    /// * L3: the packed `KC x NC` block of B, reused across the MC blocks:
    ///   `KC * NC * 4` bytes in a quarter of L3, which the cores share
    ///   (NC = 2688).
    pub fn for_kernel(kernel: &'static MicroKernel) -> Gemm {
        let caches = CacheSizes::detect();
        let (mr, nr) = (kernel.mr, kernel.nr);
        let kc = (caches.l1 * 3 / 8 / (mr * 4) / 16 * 16).clamp(128, MAX_KC);
        let mc = (caches.l2 / 2 / (kc * 4) / mr * mr).clamp(mr, 4096 / mr * mr);
        let nc = (caches.l3 / 4 / (kc * 4) / nr * nr).clamp(nr, 8192 / nr * nr);
        Gemm { kernel, mc, kc, nc }
    }

    /// The length of each KC block of a reduction of `k`: equal blocks no
    /// longer than KC (a multiple of 8 where KC allows), so with KC 768
    /// `k = 800` runs as 2 x 400 rather than 768 + 32, whose short second
    /// block would reload and store C for little work.
    pub fn kc_block(&self, k: usize) -> usize {
        let blocks = k.div_ceil(self.kc).max(1);
        k.div_ceil(blocks).next_multiple_of(8).clamp(1, self.kc)
    }

    /// `C = act(alpha * A * B + beta * C + bias)` on the calling thread.
    ///
    /// `beta == 0` does not read C (it may hold NaN), as in BLAS.
    ///
    /// # Panics
    /// If the shapes disagree (A is `m x k`, B `k x n`, C `m x n`), a bias
    /// has the wrong length, or a packed A was packed for another kernel.
    /// The safe API in `receptive` validates all of these first.
    pub fn run(&self, alpha: f32, a: ASource<'_>, b: &dyn PackB, beta: f32, c: MatMut<'_>, ep: &Epilogue<'_>) {
        self.run_with(Packing::Auto, alpha, a, b, beta, c, ep);
    }

    /// [`Gemm::run`] with an explicit packing policy (tests use it to cover
    /// both the packed and the in-place paths).
    #[allow(clippy::too_many_arguments)]
    pub fn run_with(
        &self,
        packing: Packing,
        alpha: f32,
        a: ASource<'_>,
        b: &dyn PackB,
        beta: f32,
        mut c: MatMut<'_>,
        ep: &Epilogue<'_>,
    ) {
        let (m, n, k) = (c.rows(), c.cols(), b.rows());
        assert_eq!(a.rows(), m, "A rows vs C rows");
        assert_eq!(a.cols(), k, "A cols vs B rows");
        assert_eq!(b.cols(), n, "B cols vs C cols");
        match ep.bias {
            Bias::None => {}
            Bias::PerRow(v) => assert_eq!(v.len(), m, "row bias length"),
            Bias::PerCol(v) => assert_eq!(v.len(), n, "column bias length"),
        }
        if let ASource::Packed(p) = a {
            assert!(p.mr == self.kernel.mr && p.kc == self.kc, "A packed for another kernel");
        }
        if m == 0 || n == 0 {
            return;
        }
        let (mr, nr) = (self.kernel.mr, self.kernel.nr);
        // A k of 0 still runs one (empty) block so the epilogue applies.
        let kc_blk = self.kc_block(k);
        let k_blocks = k.div_ceil(kc_blk).max(1);
        // MC is sized for a full KC block; shorter blocks (k = 1024 runs as
        // 2 x 512) leave room in L2 for proportionally taller ones: 1024^3
        // measured 1.5% faster with MC 252 than 168.
        let mc = (self.mc * self.kc / kc_blk).clamp(self.mc, 4096).next_multiple_of(mr);
        // Even blocks no larger than MC / NC (in whole tiles), so a product
        // slightly over a block size does not end in a sliver.
        let even = |len: usize, block: usize, tile: usize| len.div_ceil(len.div_ceil(block)).div_ceil(tile) * tile;
        let (mc_blk, nc_blk) = (even(m, mc, mr), even(n, self.nc, nr));
        // Operands read in place instead of packed (see `Packing::Auto`).
        let (a_in_place, b_in_place) = match packing {
            Packing::Always => (None, None),
            Packing::Auto | Packing::InPlace if k == 0 => (None, None),
            Packing::Auto => (
                match a {
                    ASource::Strided(am) if am.col_stride() == 1 || n <= IN_PLACE_A_MAX_N => Some(am),
                    _ => None,
                },
                b.as_matrix().filter(|bm| bm.col_stride() == 1 && m <= IN_PLACE_B_MAX_M),
            ),
            Packing::InPlace => (
                match a {
                    ASource::Strided(am) => Some(am),
                    ASource::Packed(_) => None,
                },
                b.as_matrix().filter(|bm| bm.col_stride() == 1),
            ),
        };
        WORKSPACE.with(|ws| {
            let mut ws = ws.borrow_mut();
            let Workspace { a: abuf, b: bbuf } = &mut *ws;
            let c_ptr = c.as_mut_ptr();
            let (rs_c, cs_c) = (c.row_stride(), c.col_stride());
            // Loop 5: NC-wide column blocks of B and C.
            for jc in (0..n).step_by(nc_blk) {
                let nc = nc_blk.min(n - jc);
                let npanels = nc.div_ceil(nr);
                // Loop 4: KC-long blocks of the reduction (never parallel).
                for kb in 0..k_blocks {
                    let pc = kb * kc_blk;
                    let kc = kc_blk.min(k - pc);
                    let (first, last) = (kb == 0, kb + 1 == k_blocks);
                    // Packed B: every panel. In place: only a partial last
                    // panel, which the kernel must not read past.
                    let bpack: &[f32] = match b_in_place {
                        None => {
                            let buf = grow(bbuf, npanels * kc * nr);
                            b.pack(pc, kc, jc, nc, nr, buf);
                            buf
                        }
                        Some(bm) if nc % nr != 0 => {
                            let j = nc / nr * nr;
                            let buf = grow(bbuf, kc * nr);
                            pack_b(&bm, pc, kc, jc + j, nc - j, nr, buf);
                            buf
                        }
                        Some(_) => &[],
                    };
                    // Loop 3: MC-tall row blocks of A and C.
                    for ic in (0..m).step_by(mc_blk) {
                        let mc = mc_blk.min(m - ic);
                        let apack: &[f32] = match (a, a_in_place) {
                            (ASource::Packed(p), _) => p.block(pc, kc, ic, mc),
                            (ASource::Strided(am), None) => {
                                let buf = grow(abuf, mc.div_ceil(mr) * kc * mr);
                                pack_a(&am, ic, mc, pc, kc, mr, buf);
                                buf
                            }
                            (ASource::Strided(am), Some(_)) if mc % mr != 0 => {
                                let i = mc / mr * mr;
                                let buf = grow(abuf, kc * mr);
                                pack_a(&am, ic + i, mc - i, pc, kc, mr, buf);
                                buf
                            }
                            (ASource::Strided(_), Some(_)) => &[],
                        };
                        // Loop 2: NR-wide micropanels of B; loop 1: MR-tall
                        // micropanels of A; then the microkernel.
                        for j in (0..nc).step_by(nr) {
                            let nn = nr.min(nc - j);
                            // (pointer, step stride) of B's panel.
                            let bpanel = match b_in_place {
                                Some(bm) if nn == nr => {
                                    (bm.data()[pc * bm.row_stride() + jc + j..].as_ptr(), bm.row_stride())
                                }
                                Some(_) => (bpack.as_ptr(), nr),
                                None => (bpack[j * kc..(j + nr) * kc].as_ptr(), nr),
                            };
                            for i in (0..mc).step_by(mr) {
                                let mm = mr.min(mc - i);
                                // (pointer, row stride, column stride) of A's panel.
                                let apanel = match a_in_place {
                                    Some(am) if mm == mr => {
                                        let at = (ic + i) * am.row_stride() + pc * am.col_stride();
                                        (am.data()[at..].as_ptr(), am.row_stride(), am.col_stride())
                                    }
                                    Some(_) => (apack.as_ptr(), 1, mr),
                                    None => (apack[i * kc..(i + mr) * kc].as_ptr(), 1, mr),
                                };
                                let (gi, gj) = (ic + i, jc + j);
                                let tile = TileEpilogue {
                                    alpha,
                                    beta: if first { beta } else { 1.0 },
                                    load_c: !first || beta != 0.0,
                                    bias_row: match ep.bias {
                                        Bias::PerRow(v) if last => v[gi..].as_ptr(),
                                        _ => std::ptr::null(),
                                    },
                                    bias_col: match ep.bias {
                                        Bias::PerCol(v) if last => v[gj..].as_ptr(),
                                        _ => std::ptr::null(),
                                    },
                                    clamp: if last { ep.clamp } else { None },
                                };
                                let c_tile = c_ptr.wrapping_add(gi * rs_c + gj * cs_c);
                                let packed = apanel.1 == 1 && apanel.2 == mr && bpanel.1 == nr;
                                // SAFETY: a packed panel holds kc*MR (A) or
                                // kc*NR (B) floats (sliced above, or the
                                // single partial panel); an in-place panel
                                // is a full MR x kc block of A or kc x NR
                                // block of B (unit column stride) inside the
                                // view, whose every element lies in its slice;
                                // (gi, gj) + (mm, nn) stays inside C's m x n,
                                // which the MatMut guarantees is writable
                                // and readable; the bias slices start at gi /
                                // gj and hold at least mm / nn more floats.
                                unsafe {
                                    if packed {
                                        (self.kernel.func)(kc, apanel.0, bpanel.0, c_tile, rs_c, cs_c, mm, nn, &tile)
                                    } else {
                                        (self.kernel.func_strided)(
                                            kc, apanel.0, apanel.1, apanel.2, bpanel.0, bpanel.1, c_tile, rs_c, cs_c,
                                            mm, nn, &tile,
                                        )
                                    }
                                };
                            }
                        }
                    }
                }
            }
        });
    }
}

/// The longest KC block (see [`Gemm::for_kernel`]).
const MAX_KC: usize = 768;

/// A row-major A is always read in place: packing it is a transposing
/// copy, and reading its rows with broadcasts from L2 measured faster at
/// every size. Single-thread on Zen 5, GFLOP/s, packed -> in place:
/// `(512, 49, 4608)`, a late ResNet layer, 88 -> 170; `(128, 784, 1152)`
/// 183 -> 213; 512^3 210 -> 236; 1024^3 207 -> 239; 2048^3 215 -> 235.
/// Any other strided A is read in place up to this many columns of C, where
/// each of its elements feeds too few FMAs to repay a copy.
const IN_PLACE_A_MAX_N: usize = 256;
/// Up to this many rows of C, a row-contiguous B is read in place rather
/// than packed, for the same reason (`(64, 3136, 576)`: 140 -> 190).
const IN_PLACE_B_MAX_M: usize = 512;

/// Whether the driver copies A and B into packed panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// Pack, except where the copy costs more than it saves: a strided A
    /// when C has few columns, a row-contiguous B when C has few rows.
    Auto,
    /// Always pack both.
    Always,
    /// Read every strided A and row-contiguous B in place (partial panels
    /// are still packed, so the kernel never reads past the matrix).
    InPlace,
}

/// Data cache sizes in bytes that the block sizes are derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSizes {
    /// Level-1 data cache of one core.
    pub l1: usize,
    /// Level-2 cache of one core.
    pub l2: usize,
    /// Level-3 cache (shared).
    pub l3: usize,
}

impl CacheSizes {
    /// Zen 5's sizes, used where the OS does not say.
    pub const FALLBACK: CacheSizes = CacheSizes { l1: 48 << 10, l2: 1 << 20, l3: 32 << 20 };

    /// The sizes Linux reports for CPU 0 (sysfs), read once; each level it
    /// does not report (or reports implausibly) keeps [`Self::FALLBACK`].
    pub fn detect() -> CacheSizes {
        static SIZES: OnceLock<CacheSizes> = OnceLock::new();
        *SIZES.get_or_init(|| {
            let mut sizes = CacheSizes::FALLBACK;
            for index in 0..8 {
                let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
                let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
                let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size")) else {
                    continue;
                };
                let Some(bytes) = parse_size(&size) else { continue };
                match (level.trim(), kind.trim()) {
                    ("1", "Data") if (8 << 10..=1 << 20).contains(&bytes) => sizes.l1 = bytes,
                    ("2", "Unified") if (64 << 10..=64 << 20).contains(&bytes) => sizes.l2 = bytes,
                    ("3", "Unified") if (256 << 10..=2 << 30).contains(&bytes) => sizes.l3 = bytes,
                    _ => {}
                }
            }
            sizes
        })
    }
}

/// Parses sysfs sizes such as `48K` or `32M`.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, unit) = match s.strip_suffix('K') {
        Some(d) => (d, 1 << 10),
        None => match s.strip_suffix('M') {
            Some(d) => (d, 1 << 20),
            None => (s, 1),
        },
    };
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

/// Per-thread pack buffers, grown on demand and reused, so steady-state
/// calls allocate nothing.
struct Workspace {
    a: Buf,
    b: Buf,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace { a: Buf::new(64), b: Buf::new(64) });
}

fn grow(buf: &mut Buf, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Where the driver gets A from.
#[derive(Clone, Copy, Debug)]
pub enum ASource<'a> {
    /// A strided matrix, packed block by block during the call.
    Strided(MatRef<'a>),
    /// A matrix packed once ahead of time (convolution weights).
    Packed(&'a PackedA),
}

impl ASource<'_> {
    fn rows(&self) -> usize {
        match self {
            ASource::Strided(a) => a.rows(),
            ASource::Packed(p) => p.m,
        }
    }
    fn cols(&self) -> usize {
        match self {
            ASource::Strided(a) => a.cols(),
            ASource::Packed(p) => p.k,
        }
    }
}

/// A whole `m x k` matrix packed for one [`Gemm`]: for each KC block of the
/// reduction, all `ceil(m/MR)` panels of that block, one after another.
#[derive(Clone, Debug)]
pub struct PackedA {
    data: Buf,
    m: usize,
    k: usize,
    mr: usize,
    kc: usize,
}

impl PackedA {
    /// Packs `a` for `gemm`'s kernel and KC.
    pub fn new(gemm: &Gemm, a: MatRef<'_>) -> PackedA {
        PackedA::with_width(gemm, a, gemm.kernel.mr)
    }

    /// Packs `a` in panels `width` rows wide. With `width = NR` the panels
    /// of `a` are those of B = `a` transposed: the layout of packed B.
    pub fn with_width(gemm: &Gemm, a: MatRef<'_>, width: usize) -> PackedA {
        let (m, k, mr, kc) = (a.rows(), a.cols(), width, gemm.kc);
        let panels = m.div_ceil(mr);
        let mut data = Buf::new(64);
        data.resize(panels * mr * k, 0.0);
        for pc in (0..k).step_by(gemm.kc_block(k)) {
            let kcb = gemm.kc_block(k).min(k - pc);
            let off = pc * panels * mr;
            pack_a(&a, 0, m, pc, kcb, mr, &mut data[off..off + panels * mr * kcb]);
        }
        PackedA { data, m, k, mr, kc }
    }
    /// Rows of the packed matrix.
    pub fn rows(&self) -> usize {
        self.m
    }
    /// Columns (reduction length) of the packed matrix.
    pub fn cols(&self) -> usize {
        self.k
    }
    /// The KC it was packed for.
    pub fn kc(&self) -> usize {
        self.kc
    }
    /// The panel width it was packed for (MR, or NR for a transposed B).
    pub fn mr(&self) -> usize {
        self.mr
    }
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }
    /// The panels for rows `ic..ic+mc` (ic a multiple of MR) of the KC block at `pc`.
    pub(crate) fn block(&self, pc: usize, kc: usize, ic: usize, mc: usize) -> &[f32] {
        let panels = self.m.div_ceil(self.mr);
        let start = pc * panels * self.mr + (ic / self.mr) * kc * self.mr;
        &self.data[start..start + mc.div_ceil(self.mr) * kc * self.mr]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::KERNELS;

    #[test]
    fn sysfs_sizes_parse() {
        assert_eq!(parse_size("48K\n"), Some(48 << 10));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn kc_blocks_are_equal_and_cover_k() {
        let g = Gemm::for_kernel(&KERNELS[0]);
        assert!(g.kc_block(0) >= 1, "a k of 0 still steps");
        for k in (1..3 * g.kc).chain([4608, 4609]) {
            let kc = g.kc_block(k);
            assert!(kc >= 1 && kc <= g.kc, "k={k}: block {kc} vs KC {}", g.kc);
            // As few blocks as KC allows, and never a block of nothing.
            assert_eq!(k.div_ceil(kc), k.div_ceil(g.kc), "k={k}: block {kc}");
        }
        if g.kc == 768 {
            assert_eq!((g.kc_block(576), g.kc_block(1152), g.kc_block(2048)), (576, 576, 688));
        }
    }

    #[test]
    fn block_sizes_are_whole_tiles() {
        for kernel in KERNELS {
            let g = Gemm::for_kernel(kernel);
            assert!(g.mc.is_multiple_of(kernel.mr) && g.mc > 0, "{}: MC {}", kernel.name, g.mc);
            assert!(g.nc.is_multiple_of(kernel.nr) && g.nc > 0, "{}: NC {}", kernel.name, g.nc);
            assert!((128..=MAX_KC).contains(&g.kc), "{}: KC {}", kernel.name, g.kc);
        }
    }
}
