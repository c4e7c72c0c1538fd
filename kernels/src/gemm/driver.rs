//! The BLIS loop nest and its block sizes.

use std::cell::RefCell;
use std::sync::OnceLock;

use aligned_vec::{AVec, ConstAlign};

use super::epilogue::{Bias, Epilogue, TileEpilogue};
use super::pack::{PackB, pack_a};
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
    /// * L1: the `KC x NR` B micropanel stays resident while the loop over
    ///   A micropanels reuses it, and one `MR x KC` A micropanel streams
    ///   through beside it: `(MR + NR) * KC * 4` bytes in about 3/4 of L1d;
    /// * L2: the packed `MC x KC` block of A stays resident across all the
    ///   B micropanels of a block: `MC * KC * 4` bytes in half of L2;
    /// * L3: the packed `KC x NC` block of B is reused across the MC blocks:
    ///   `KC * NC * 4` bytes in a quarter of L3 (it is shared by the cores).
    pub fn for_kernel(kernel: &'static MicroKernel) -> Gemm {
        let caches = CacheSizes::detect();
        let (mr, nr) = (kernel.mr, kernel.nr);
        let kc = (caches.l1 * 3 / 4 / ((mr + nr) * 4) / 16 * 16).clamp(64, 512);
        let mc = (caches.l2 / 2 / (kc * 4) / mr * mr).clamp(mr, 4096 / mr * mr);
        let nc = (caches.l3 / 4 / (kc * 4) / nr * nr).clamp(nr, 8192 / nr * nr);
        Gemm { kernel, mc, kc, nc }
    }

    /// `C = act(alpha * A * B + beta * C + bias)` on the calling thread.
    ///
    /// `beta == 0` does not read C (it may hold NaN), as in BLAS.
    ///
    /// # Panics
    /// If the shapes disagree (A is `m x k`, B `k x n`, C `m x n`), a bias
    /// has the wrong length, or a packed A was packed for another kernel.
    /// The safe API in `receptive` validates all of these first.
    pub fn run(&self, alpha: f32, a: ASource<'_>, b: &dyn PackB, beta: f32, mut c: MatMut<'_>, ep: &Epilogue<'_>) {
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
        WORKSPACE.with(|ws| {
            let mut ws = ws.borrow_mut();
            let Workspace { a: abuf, b: bbuf } = &mut *ws;
            let c_ptr = c.as_mut_ptr();
            let (rs_c, cs_c) = (c.row_stride(), c.col_stride());
            // A k of 0 still runs one (empty) block so the epilogue applies.
            let k_blocks = k.div_ceil(self.kc).max(1);
            // Loop 5: NC-wide column blocks of B and C.
            for jc in (0..n).step_by(self.nc) {
                let nc = self.nc.min(n - jc);
                let npanels = nc.div_ceil(nr);
                // Loop 4: KC-long blocks of the reduction (never parallel).
                for kb in 0..k_blocks {
                    let pc = kb * self.kc;
                    let kc = self.kc.min(k - pc);
                    let (first, last) = (kb == 0, kb + 1 == k_blocks);
                    let bpack = grow(bbuf, npanels * kc * nr);
                    b.pack(pc, kc, jc, nc, nr, bpack);
                    // Loop 3: MC-tall row blocks of A and C.
                    for ic in (0..m).step_by(self.mc) {
                        let mc = self.mc.min(m - ic);
                        let apack: &[f32] = match a {
                            ASource::Packed(p) => p.block(pc, kc, ic, mc),
                            ASource::Strided(am) => {
                                let buf = grow(abuf, mc.div_ceil(mr) * kc * mr);
                                pack_a(&am, ic, mc, pc, kc, mr, buf);
                                buf
                            }
                        };
                        // Loop 2: NR-wide micropanels of B; loop 1: MR-tall
                        // micropanels of A; then the microkernel.
                        // (Indexing, not chunks: kc is 0 when k is.)
                        for j in (0..nc).step_by(nr) {
                            let bpanel = &bpack[j * kc..(j + nr) * kc];
                            let nn = nr.min(nc - j);
                            for i in (0..mc).step_by(mr) {
                                let apanel = &apack[i * kc..(i + mr) * kc];
                                let mm = mr.min(mc - i);
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
                                // SAFETY: the panels hold kc*MR and kc*NR
                                // floats (sliced above); (gi, gj) + (mm, nn)
                                // stays inside C's m x n, which the MatMut
                                // guarantees is writable and readable; the
                                // bias slices start at gi / gj and hold at
                                // least mm / nn more floats (lengths asserted).
                                unsafe {
                                    (self.kernel.func)(
                                        kc,
                                        apanel.as_ptr(),
                                        bpanel.as_ptr(),
                                        c_ptr.add(gi * rs_c + gj * cs_c),
                                        rs_c,
                                        cs_c,
                                        mm,
                                        nn,
                                        &tile,
                                    )
                                };
                            }
                        }
                    }
                }
            }
        });
    }
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
        let (m, k, mr, kc) = (a.rows(), a.cols(), gemm.kernel.mr, gemm.kc);
        let panels = m.div_ceil(mr);
        let mut data = Buf::new(64);
        data.resize(panels * mr * k, 0.0);
        for pc in (0..k).step_by(kc) {
            let kcb = kc.min(k - pc);
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
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }
    /// The panels for rows `ic..ic+mc` (ic a multiple of MR) of the KC block at `pc`.
    fn block(&self, pc: usize, kc: usize, ic: usize, mc: usize) -> &[f32] {
        let panels = self.m.div_ceil(self.mr);
        let start = pc * panels * self.mr + (ic / self.mr) * kc * self.mr;
        &self.data[start..start + mc.div_ceil(self.mr) * kc * self.mr]
    }
}
