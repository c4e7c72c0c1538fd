//! The weight gradient read in place: `dW^T = im2col(X) * dY^T`, with
//! im2col's rows `(c, fy, fx)` read straight out of a band of padded input
//! rows ([`Band`](crate::implicit::Band)) and dY transposed into NR-wide
//! panels, so nothing of the size of the im2col matrix is built.
//!
//! On the band's grid (see [`crate::implicit`]) im2col row `j` is the run
//! of floats at `band + taps[j]`, grid pixel `q` at `taps[j] + q`; the
//! reduction steps through the grid pixels of real output pixels only
//! (a table of offsets), so the grid's extra columns cost nothing here. The GEMM's rows are
//! the taps (A, one broadcast per row and step, read where they lie), its
//! columns the output channels (B, the packed dY, NR contiguous floats per
//! pixel) and its reduction the grid pixels: the forward microkernel's
//! shape, whose accumulators stay in registers over the whole reduction,
//! so the result needs no horizontal sums. C is `dW^T` (`taps x K`,
//! row-major), which the caller transposes once at the end.

use crate::gemm::scalar::Scalar;
use crate::gemm::simd::Simd;
use crate::isa::{Isa, kernel_for};
use crate::transpose::transpose;
use crate::view::MatMut;

/// `C[m x n] (+)= A * B` over `kc` steps: A's element `(i, p)` (row `i <
/// m`) is at `a + rows[i] + steps[p]`, B a packed `kc x NR` panel (step p
/// at `b + p*NR`), C row-major with row stride `rs_c`; with `load_c` the
/// product is added to C, otherwise it replaces it.
///
/// # Safety
/// `1 <= m <= MR`, `n <= NR`; `rows` holds `m` entries, `steps` `kc`, and
/// every A element is readable; `b` points to `kc * NR` readable floats;
/// C's `m x n` block is writable (and readable with `load_c`).
pub type WgradKernelFn = unsafe fn(
    kc: usize,
    a: *const f32,
    rows: *const u32,
    steps: *const u32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    m: usize,
    n: usize,
    load_c: bool,
);

/// The body every ISA shares: `MR x NV` vector accumulators, one B step
/// loaded as `NV` vectors, each A element broadcast from where it lies.
///
/// # Safety
/// The contract of [`WgradKernelFn`] with `NR == NV * S::LANES`, on a CPU
/// that supports `S`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the kernel contract, see WgradKernelFn
unsafe fn body<S: Simd, const MR: usize, const NV: usize, const NR: usize>(
    kc: usize,
    a: *const f32,
    rows: *const u32,
    steps: *const u32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    m: usize,
    n: usize,
    load_c: bool,
) {
    debug_assert!(NR == NV * S::LANES && (1..=MR).contains(&m) && n <= NR);
    // SAFETY (whole body): the caller guarantees the CPU has S's features;
    // each pointer access is justified where it happens.
    unsafe {
        // Rows past m repeat the last one: read, never stored.
        let ap: [*const f32; MR] = std::array::from_fn(|i| a.add(*rows.add(i.min(m - 1)) as usize));
        let mut acc = [[S::zero(); NV]; MR];
        for p in 0..kc {
            // Step p: NR floats of the B panel, element p of each A row.
            let (bp, at) = (b.add(p * NR), *steps.add(p) as usize);
            let mut bv = [S::zero(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = S::load(bp.add(v * S::LANES));
            }
            for (row, &arow) in acc.iter_mut().zip(&ap) {
                let ai = S::splat(*arow.add(at));
                for (x, &bj) in row.iter_mut().zip(&bv) {
                    *x = S::fmadd(ai, bj, *x);
                }
            }
        }
        // `lens[v]`: how many of vector v's lanes lie inside the n columns.
        let lens: [usize; NV] = std::array::from_fn(|v| n.saturating_sub(v * S::LANES).min(S::LANES));
        for (i, row) in acc.iter().enumerate().take(m) {
            for v in 0..NV {
                let len = lens[v];
                if len == 0 {
                    break;
                }
                // Row i < m, columns v*LANES .. +len inside the m x n block.
                let cp = c.add(i * rs_c + v * S::LANES);
                let full = len == S::LANES;
                let mut y = row[v];
                if load_c {
                    y = S::add(y, if full { S::load(cp) } else { S::load_partial(cp, len) });
                }
                if full { S::store(cp, y) } else { S::store_partial(cp, len, y) }
            }
        }
    }
}

/// `out[i] += sum_{r < segs, p < len} a[rows[i] + r*a_stride + p] *
/// b[r*len + p]` for `m` rows: the taps of one filter of a depthwise layer
/// (one input channel per group, so there is no channel dimension to fill
/// a GEMM tile with), each a dot product over the output rows of one band
/// (`segs` rows of `len` pixels, `a_stride` apart on the band's grid).
///
/// # Safety
/// `1 <= m <= 9`; `rows` holds `m` entries; the `segs * len` floats at `b`
/// and the `len` floats at each `a + rows[i] + r*a_stride` (`r < segs`)
/// are readable; `out` holds `m` writable floats.
pub type DotKernelFn = unsafe fn(
    len: usize,
    segs: usize,
    a_stride: usize,
    a: *const f32,
    rows: *const u32,
    m: usize,
    b: *const f32,
    out: *mut f32,
);

/// The dot-product body for `MR` rows: one vector accumulator per row
/// (`MR` independent chains) over every segment, `b` loaded once per step
/// for all rows, each row's lanes summed in order at the end.
///
/// # Safety
/// The contract of [`DotKernelFn`] with `m <= MR`, on a CPU that supports `S`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the kernel contract, see DotKernelFn
unsafe fn dot_rows<S: Simd, const MR: usize>(
    len: usize,
    segs: usize,
    a_stride: usize,
    a: *const f32,
    rows: *const u32,
    m: usize,
    b: *const f32,
    out: *mut f32,
) {
    debug_assert!((1..=MR).contains(&m) && S::LANES <= 16);
    // SAFETY (whole body): the caller guarantees the CPU has S's features;
    // each pointer access is justified where it happens.
    unsafe {
        // Rows past m repeat the last one: read, never stored.
        let ap: [*const f32; MR] = std::array::from_fn(|i| a.add(*rows.add(i.min(m - 1)) as usize));
        let mut acc = [S::zero(); MR];
        let full = len / S::LANES * S::LANES;
        for seg in 0..segs {
            // Segment seg < segs: b's floats from seg*len, each row's from
            // seg*a_stride.
            let (bs, off) = (b.add(seg * len), seg * a_stride);
            for p in (0..full).step_by(S::LANES) {
                // Floats p..p+LANES <= len of the segment.
                let bv = S::load(bs.add(p));
                for (x, &row) in acc.iter_mut().zip(&ap) {
                    *x = S::fmadd(S::load(row.add(off + p)), bv, *x);
                }
            }
            if full < len {
                // The last len - full < LANES floats, the other lanes zero.
                let r = len - full;
                let bv = S::load_partial(bs.add(full), r);
                for (x, &row) in acc.iter_mut().zip(&ap) {
                    *x = S::fmadd(S::load_partial(row.add(off + full), r), bv, *x);
                }
            }
        }
        for (i, &x) in acc.iter().enumerate().take(m) {
            let mut lanes = [0.0f32; 16];
            S::store(lanes.as_mut_ptr(), x);
            // i < m: inside `out`.
            *out.add(i) += lanes[..S::LANES].iter().sum::<f32>();
        }
    }
}

/// [`dot_rows`] with `MR = m`, so no row is computed in vain: a 3x3
/// filter's nine taps are nine chains, enough to keep two FMA pipes busy
/// with one accumulator each.
///
/// # Safety
/// The contract of [`DotKernelFn`] with `m <= DOT_ROWS`, on a CPU that
/// supports `S`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the kernel contract, see DotKernelFn
unsafe fn dot_body<S: Simd>(
    len: usize,
    segs: usize,
    a_stride: usize,
    a: *const f32,
    rows: *const u32,
    m: usize,
    b: *const f32,
    out: *mut f32,
) {
    let args = (len, segs, a_stride, a, rows);
    // SAFETY: forwarded from the caller, with MR = m.
    unsafe {
        match m {
            1 => dot_rows::<S, 1>(args.0, args.1, args.2, args.3, args.4, m, b, out),
            2 => dot_rows::<S, 2>(args.0, args.1, args.2, args.3, args.4, m, b, out),
            3 => dot_rows::<S, 3>(args.0, args.1, args.2, args.3, args.4, m, b, out),
            4 => dot_rows::<S, 4>(args.0, args.1, args.2, args.3, args.4, m, b, out),
            5 => dot_rows::<S, 5>(args.0, args.1, args.2, args.3, args.4, m, b, out),
            6 => dot_rows::<S, 6>(args.0, args.1, args.2, args.3, args.4, m, b, out),
            7 => dot_rows::<S, 7>(args.0, args.1, args.2, args.3, args.4, m, b, out),
            8 => dot_rows::<S, 8>(args.0, args.1, args.2, args.3, args.4, m, b, out),
            _ => dot_rows::<S, DOT_ROWS>(args.0, args.1, args.2, args.3, args.4, m, b, out),
        }
    }
}

/// Most rows per dot-product call.
const DOT_ROWS: usize = 9;

/// Declares one kernel: `body` for a tile, in a shell with the ISA's
/// target features.
macro_rules! wgrad_shell {
    ($(#[$doc:meta])* $name:ident, $dot:ident, $simd:ty, $features:literal, $mr:literal, $nv:literal, $nr:literal) => {
        #[doc = concat!("The dot-product kernel beside [`", stringify!($name), "`].")]
        ///
        /// # Safety
        /// The contract of [`DotKernelFn`], on a CPU with the kernel's
        /// target features.
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)] // the kernel contract, see DotKernelFn
        unsafe fn $dot(
            len: usize,
            segs: usize,
            a_stride: usize,
            a: *const f32,
            rows: *const u32,
            m: usize,
            b: *const f32,
            out: *mut f32,
        ) {
            // SAFETY: forwarded from the caller, who runs this only on a CPU
            // with these features (the registry's ISA check).
            unsafe { dot_body::<$simd>(len, segs, a_stride, a, rows, m, b, out) }
        }

        $(#[$doc])*
        ///
        /// # Safety
        /// The contract of [`WgradKernelFn`] for this tile, on a CPU with
        /// the kernel's target features.
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)] // the kernel contract, see WgradKernelFn
        unsafe fn $name(
            kc: usize,
            a: *const f32,
            rows: *const u32,
            steps: *const u32,
            b: *const f32,
            c: *mut f32,
            rs_c: usize,
            m: usize,
            n: usize,
            load_c: bool,
        ) {
            // SAFETY: forwarded from the caller, who runs this only on a CPU
            // with these features (the registry's ISA check).
            unsafe { body::<$simd, $mr, $nv, $nr>(kc, a, rows, steps, b, c, rs_c, m, n, load_c) }
        }
    };
}

#[cfg(target_arch = "x86_64")]
wgrad_shell!(
    /// AVX-512 6x64: the forward microkernel's tile (24 accumulators).
    wgrad_6x64_avx512, dot_avx512, crate::gemm::avx512::Avx512, "avx512f,avx2,fma", 6, 4, 64
);
#[cfg(target_arch = "x86_64")]
wgrad_shell!(
    /// AVX2 6x16: 12 accumulators, 2 B vectors and the broadcast.
    wgrad_6x16_avx2, dot_avx2, crate::gemm::avx2::Avx2, "avx2,fma", 6, 2, 16
);
#[cfg(target_arch = "aarch64")]
wgrad_shell!(
    /// NEON 12x8: 24 accumulators, as the forward kernel.
    wgrad_12x8_neon, dot_neon, crate::gemm::neon::Neon, "neon", 12, 2, 8
);

/// Portable 4x8: 32 scalar accumulators.
///
/// # Safety
/// The contract of [`WgradKernelFn`] for `MR = 4`, `NR = 8`.
#[allow(clippy::too_many_arguments)] // the kernel contract, see WgradKernelFn
unsafe fn wgrad_4x8_scalar(
    kc: usize,
    a: *const f32,
    rows: *const u32,
    steps: *const u32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    m: usize,
    n: usize,
    load_c: bool,
) {
    // SAFETY: forwarded from the caller; Scalar runs on every CPU.
    unsafe { body::<Scalar, 4, 8, 8>(kc, a, rows, steps, b, c, rs_c, m, n, load_c) }
}

/// The portable dot-product kernel.
///
/// # Safety
/// The contract of [`DotKernelFn`].
#[allow(clippy::too_many_arguments)] // the kernel contract, see DotKernelFn
unsafe fn dot_scalar(
    len: usize,
    segs: usize,
    a_stride: usize,
    a: *const f32,
    rows: *const u32,
    m: usize,
    b: *const f32,
    out: *mut f32,
) {
    // SAFETY: forwarded from the caller; Scalar runs on every CPU.
    unsafe { dot_body::<Scalar>(len, segs, a_stride, a, rows, m, b, out) }
}

/// A weight-gradient microkernel and its tile.
#[derive(Debug)]
pub struct WgradKernel {
    /// Name carrying tile and ISA.
    pub name: &'static str,
    /// The ISA the kernel needs.
    pub isa: Isa,
    /// Taps (rows of `dW^T`) per tile.
    pub mr: usize,
    /// Output channels (columns of `dW^T`) per tile: the packed panel width.
    pub nr: usize,
    func: WgradKernelFn,
    dot: DotKernelFn,
}

macro_rules! kernel {
    ($name:ident / $dot:ident, $isa:expr, $mr:literal x $nr:literal) => {
        WgradKernel { name: stringify!($name), isa: $isa, mr: $mr, nr: $nr, func: $name, dot: $dot }
    };
}

/// Every weight-gradient kernel compiled for this target; per ISA the
/// first listed is the one dispatch picks.
#[cfg(target_arch = "x86_64")]
pub static WGRAD_KERNELS: &[WgradKernel] = &[
    kernel!(wgrad_6x64_avx512 / dot_avx512, Isa::Avx512, 6 x 64),
    kernel!(wgrad_6x16_avx2 / dot_avx2, Isa::Avx2, 6 x 16),
    kernel!(wgrad_4x8_scalar / dot_scalar, Isa::Scalar, 4 x 8),
];

/// Every weight-gradient kernel compiled for this target; per ISA the
/// first listed is the one dispatch picks.
#[cfg(target_arch = "aarch64")]
pub static WGRAD_KERNELS: &[WgradKernel] = &[
    kernel!(wgrad_12x8_neon / dot_neon, Isa::Neon, 12 x 8),
    kernel!(wgrad_4x8_scalar / dot_scalar, Isa::Scalar, 4 x 8),
];

/// Every weight-gradient kernel compiled for this target.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub static WGRAD_KERNELS: &[WgradKernel] = &[kernel!(wgrad_4x8_scalar / dot_scalar, Isa::Scalar, 4 x 8)];

impl WgradKernel {
    /// The kernel for `isa`, or the scalar one where this CPU does not run
    /// `isa`.
    pub fn for_isa(isa: Isa) -> &'static WgradKernel {
        kernel_for(WGRAD_KERNELS, isa, |k| k.isa)
    }

    /// Grid pixels per packed chunk of dY: a `chunk x NR` panel is 32 KiB,
    /// so it stays in L1 while every tap block streams past it.
    pub fn chunk(&self) -> usize {
        (8192 / self.nr).clamp(64, 512)
    }

    /// Packs pixels `p0..p0 + len` of the `kn <= NR` output-gradient planes
    /// of `dy` (`plane` floats apart) into `dst`, one NR-wide panel, pixel
    /// by pixel (`len x NR`), zeros past `kn`.
    ///
    /// # Panics
    /// If `kn > NR`, the pixels pass a plane or `dst` is shorter than `len * NR`.
    pub fn pack_panel(&self, dy: &[f32], kn: usize, plane: usize, p0: usize, len: usize, dst: &mut [f32]) {
        let nr = self.nr;
        assert!(kn <= nr && p0 + len <= plane && dy.len() >= kn * plane, "pixels outside dY");
        assert!(dst.len() >= len * nr, "panel too short");
        if len == 0 || kn == 0 {
            return;
        }
        let mut panel = MatMut::new(&mut dst[..len * nr], len, nr, nr, 1).expect("len x NR panel");
        transpose(self.isa, &dy[p0..], kn, len, plane, &mut panel, 0);
        if kn < nr {
            dst[..len * nr].chunks_exact_mut(nr).for_each(|row| row[kn..].fill(0.0));
        }
    }

    /// `ct (+)= A * B` for `m = taps.len()` rows of A (element `(j, p)` at
    /// `src[taps[j] + steps[p]]`), `kc = steps.len()` steps and `k` columns:
    /// B's NR-wide panels ([`pack_panel`](Self::pack_panel)) start
    /// `panel_stride` floats apart in `packed`; `ct` is `m x k` row-major;
    /// with `load_c` the product is added, otherwise stored.
    ///
    /// # Panics
    /// If an element lies past `src`, a panel past `packed` or `ct` is
    /// shorter than `m * k`.
    pub fn accumulate(
        &self,
        src: &[f32],
        taps: &[u32],
        steps: &[u32],
        packed: &[f32],
        panel_stride: usize,
        k: usize,
        ct: &mut [f32],
        load_c: bool,
    ) {
        let (m, kc, mr, nr) = (taps.len(), steps.len(), self.mr, self.nr);
        if m == 0 || k == 0 || kc == 0 {
            return;
        }
        let reach = taps.iter().max().map_or(0, |&t| t as usize) + steps.iter().max().map_or(0, |&t| t as usize);
        assert!(reach < src.len(), "a tap reads past the source");
        let panels = k.div_ceil(nr);
        assert!(
            panel_stride >= kc * nr && packed.len() >= (panels - 1) * panel_stride + kc * nr,
            "packed dY too short"
        );
        assert!(ct.len() >= m * k, "C too short");
        assert!(self.isa.supported(), "{} needs a CPU with {}", self.name, self.isa);
        for (pi, k0) in (0..k).step_by(nr).enumerate() {
            let n = nr.min(k - k0);
            let panel = &packed[pi * panel_stride..][..kc * nr];
            for j0 in (0..m).step_by(mr) {
                let mm = mr.min(m - j0);
                // SAFETY: the kernel's ISA is supported (asserted); rows
                // j0..j0+mm of `taps` and all kc `steps` exist, and every
                // element taps[j] + steps[p] <= reach < src.len(); the
                // panel holds kc * NR floats; C's block is rows
                // j0..j0+mm <= m, columns k0..k0+n <= k of the m x k `ct`.
                unsafe {
                    (self.func)(
                        kc,
                        src.as_ptr(),
                        taps[j0..].as_ptr(),
                        steps.as_ptr(),
                        panel.as_ptr(),
                        ct[j0 * k + k0..].as_mut_ptr(),
                        k,
                        mm,
                        n,
                        load_c,
                    )
                };
            }
        }
    }

    /// `out[j] += sum_{r, p < width} src[taps[j] + r*stride + p] *
    /// b[r*width + p]` for every tap `j`, over the rows `r` of `b` (each
    /// `width` floats; `stride` apart in `src`) ([`DotKernelFn`]), each sum
    /// in a fixed order.
    ///
    /// # Panics
    /// If `out` and `taps` differ in length, `width` is 0 or does not
    /// divide `b.len()`, or a tap's run passes `src`.
    pub fn dot(&self, src: &[f32], taps: &[u32], b: &[f32], width: usize, stride: usize, out: &mut [f32]) {
        assert_eq!(taps.len(), out.len(), "one output per tap");
        assert!(width > 0 && b.len().is_multiple_of(width), "b is rows of width floats");
        if taps.is_empty() || b.is_empty() {
            return;
        }
        let segs = b.len() / width;
        let reach = taps.iter().max().map_or(0, |&t| t as usize) + (segs - 1) * stride + width;
        assert!(reach <= src.len(), "a tap reads past the source");
        assert!(self.isa.supported(), "{} needs a CPU with {}", self.name, self.isa);
        // Equal calls of at most DOT_ROWS taps: 25 taps run as 9 + 8 + 8,
        // not 9 + 9 + a lone 7 with fewer chains.
        let per = taps.len().div_ceil(taps.len().div_ceil(DOT_ROWS));
        for (rows, o) in taps.chunks(per).zip(out.chunks_mut(per)) {
            // SAFETY: the ISA is supported (asserted); 1 <= rows.len() <=
            // DOT_ROWS taps, each segment's run of width floats ends by
            // `reach <= src.len()`; b holds segs * width floats; `o` holds
            // one float per row.
            unsafe {
                (self.dot)(width, segs, stride, src.as_ptr(), rows.as_ptr(), rows.len(), b.as_ptr(), o.as_mut_ptr())
            };
        }
    }

    /// The grid offsets of band pixels `p0..p0 + len` (row-major over
    /// output rows of width `ow`) on a grid of width `grid_w`, for
    /// [`accumulate`](Self::accumulate)'s `steps`: the grid's extra
    /// columns are skipped, not computed.
    pub fn grid_steps(ow: usize, grid_w: usize, p0: usize, len: usize, steps: &mut Vec<u32>) {
        steps.clear();
        steps.extend((p0..p0 + len).map(|p| ((p / ow) * grid_w + p % ow) as u32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::im2col::Geometry;
    use crate::implicit::Band;
    use crate::testing::ints;

    #[test]
    fn every_kernel_matches_naive_products_over_every_edge() {
        for kernel in WGRAD_KERNELS.iter().filter(|k| k.isa.supported()) {
            let (mr, nr) = (kernel.mr, kernel.nr);
            // Miri runs the edges only.
            let (ms, ks, lens) = if cfg!(miri) {
                (vec![1, mr + 1], vec![nr - 1, nr + 1], vec![7])
            } else {
                (vec![1, mr - 1, mr, mr + 1, 2 * mr + 3], vec![1, nr - 1, nr, nr + 1, 2 * nr + 5], vec![1, 7, 33])
            };
            for &m in &ms {
                for &k in &ks {
                    for &len in &lens {
                        // Rows of A at scattered offsets of a source, steps
                        // skipping around, pixels 2.. of dY planes of len + 5.
                        let taps: Vec<u32> = (0..m).map(|j| ((j * 11) % 17 + j) as u32).collect();
                        let steps: Vec<u32> = (0..len).map(|p| (3 + p + p / 4) as u32).collect();
                        let src = ints((taps.iter().max().unwrap() + steps.iter().max().unwrap()) as usize + 1, 1);
                        let (plane, p0) = (len + 5, 2);
                        let dy = ints(k * plane, 2);
                        // Panels len + 2 pixels apart.
                        let stride = (len + 2) * nr;
                        let mut packed = vec![f32::NAN; k.div_ceil(nr) * stride];
                        for (pi, panel) in packed.chunks_exact_mut(stride).enumerate() {
                            let kn = nr.min(k - pi * nr);
                            kernel.pack_panel(&dy[pi * nr * plane..], kn, plane, p0, len, panel);
                        }
                        let want = |j: usize, kk: usize| -> f32 {
                            (0..len).map(|p| src[(taps[j] + steps[p]) as usize] * dy[kk * plane + p0 + p]).sum()
                        };
                        for load_c in [false, true] {
                            let mut ct = ints(m * k + 1, 3);
                            let before = ct.clone();
                            kernel.accumulate(&src, &taps, &steps, &packed, stride, k, &mut ct, load_c);
                            for j in 0..m {
                                for kk in 0..k {
                                    let base = if load_c { before[j * k + kk] } else { 0.0 };
                                    let got = ct[j * k + kk];
                                    assert_eq!(got, base + want(j, kk), "{} m {m} k {k} len {len}", kernel.name);
                                }
                            }
                            assert_eq!(ct[m * k], before[m * k], "{}: wrote past C", kernel.name);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_dot_kernel_matches_naive_sums() {
        for kernel in WGRAD_KERNELS.iter().filter(|k| k.isa.supported()) {
            let (ms, lens) = if cfg!(miri) {
                (vec![1, 9], vec![5, 17])
            } else {
                (vec![1, 7, 8, 9, 16, 17, 33], vec![1, 5, 15, 16, 17, 40])
            };
            for &m in &ms {
                for &len in &lens {
                    // One segment, and three `len + 3` apart.
                    for (segs, stride) in [(1, 0), (3, len + 3)] {
                        let taps: Vec<u32> = (0..m).map(|j| ((j * 11) % 17 + 2 * j) as u32).collect();
                        let src = ints(*taps.iter().max().unwrap() as usize + (segs - 1) * stride + len, 1);
                        let b = ints(segs * len, 2);
                        let mut out = ints(m + 1, 3);
                        let before = out.clone();
                        kernel.dot(&src, &taps, &b, len, stride, &mut out[..m]);
                        for j in 0..m {
                            let want: f32 = (0..segs * len)
                                .map(|q| src[taps[j] as usize + q / len * stride + q % len] * b[q])
                                .sum();
                            assert_eq!(out[j], before[j] + want, "{} m {m} len {len} segs {segs}", kernel.name);
                        }
                        assert_eq!(out[m], before[m], "{}: wrote past out", kernel.name);
                    }
                }
            }
        }
    }

    /// dW of one group by the naive loops: `[K, C*FH*FW]`.
    fn naive(x: &[f32], dy: &[f32], k: usize, g: &Geometry) -> Vec<f32> {
        let cols = g.c * g.fh * g.fw;
        let mut dw = vec![0.0; k * cols];
        for o in 0..k {
            for c in 0..g.c {
                for fy in 0..g.fh {
                    for fx in 0..g.fw {
                        let mut s = 0.0;
                        for oy in 0..g.oh {
                            for ox in 0..g.ow {
                                let iy = (oy * g.stride[0] + fy * g.dilation[0]) as isize - g.pad_top as isize;
                                let ix = (ox * g.stride[1] + fx * g.dilation[1]) as isize - g.pad_left as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                    s += x[(c * g.h + iy as usize) * g.w + ix as usize]
                                        * dy[(o * g.oh + oy) * g.ow + ox];
                                }
                            }
                        }
                        dw[o * cols + (c * g.fh + fy) * g.fw + fx] = s;
                    }
                }
            }
        }
        dw
    }

    #[test]
    fn bands_of_every_kernel_give_the_weight_gradient() {
        // (c, h, w, fh, fw, stride, dilation, pads [top, left, bottom, right], k)
        let cases = [
            (3, 9, 11, 3, 3, [1, 1], [1, 1], [1, 1, 1, 1], 7),
            (2, 10, 9, 5, 3, [2, 2], [1, 1], [2, 1, 2, 1], 5),
            (2, 12, 13, 3, 2, [3, 2], [2, 3], [0, 2, 1, 0], 13),
            (1, 8, 8, 1, 1, [1, 1], [1, 1], [0, 0, 0, 0], 3),
            (4, 7, 7, 3, 3, [1, 1], [1, 1], [1, 1, 1, 1], 70),
        ];
        // Miri runs the strided and the dilated case.
        let picked = if cfg!(miri) { &cases[1..3] } else { &cases[..] };
        for kernel in WGRAD_KERNELS.iter().filter(|k| k.isa.supported()) {
            for &(c, h, w, fh, fw, stride, dilation, pads, k) in picked {
                let oh = (h + pads[0] + pads[2] - dilation[0] * (fh - 1) - 1) / stride[0] + 1;
                let ow = (w + pads[1] + pads[3] - dilation[1] * (fw - 1) - 1) / stride[1] + 1;
                let g = Geometry { c, h, w, fh, fw, stride, dilation, pad_top: pads[0], pad_left: pads[1], oh, ow };
                let (x, dy) = (ints(c * h * w, 1), ints(k * oh * ow, 2));
                let want = naive(&x, &dy, k, &g);
                let m = c * fh * fw;
                let grid_w = Band::grid_width(&g);
                for rows in [1, 2, oh] {
                    let band = Band::new(g, rows, 1).unwrap();
                    let mut taps = vec![0; m];
                    band.taps(&mut taps);
                    let mut buf = vec![f32::NAN; band.len()];
                    let mut ct = vec![f32::NAN; m * k];
                    let (mut first, mut steps) = (true, Vec::new());
                    for oy0 in (0..oh).step_by(rows) {
                        let pixels = rows.min(oh - oy0) * ow;
                        band.fill(&x, oy0, &mut buf);
                        // A short chunk makes several per band.
                        for p0 in (0..pixels).step_by(5) {
                            let len = 5.min(pixels - p0);
                            let nr = kernel.nr;
                            let mut packed = vec![f32::NAN; k.div_ceil(nr) * len * nr];
                            for (pi, panel) in packed.chunks_exact_mut(len * nr).enumerate() {
                                let kn = nr.min(k - pi * nr);
                                kernel.pack_panel(&dy[pi * nr * oh * ow..], kn, oh * ow, oy0 * ow + p0, len, panel);
                            }
                            WgradKernel::grid_steps(ow, grid_w, p0, len, &mut steps);
                            kernel.accumulate(&buf, &taps, &steps, &packed, len * nr, k, &mut ct, !first);
                            first = false;
                        }
                    }
                    for o in 0..k {
                        for j in 0..m {
                            assert_eq!(ct[j * k + o], want[o * m + j], "{} {g:?} rows {rows}", kernel.name);
                        }
                    }
                }
            }
        }
    }
}
