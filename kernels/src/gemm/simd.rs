//! The one microkernel body every SIMD ISA shares, written against a tiny
//! vector trait; each ISA module implements [`Simd`] and wraps [`body`] in
//! thin `#[target_feature]` shells, which is where the intrinsics inline.

use super::epilogue::{TileEpilogue, store_tile};
use super::{ASteps, BSteps};

/// The vector operations the microkernel needs. Every method is
/// `#[inline(always)]` in its implementation, so it compiles with the target
/// features of the shell it is inlined into.
///
/// # Safety
/// Implementations may only be used from code compiled with (or running on a
/// CPU that has) their ISA's target features; the kernel shells guarantee it.
pub(crate) unsafe trait Simd {
    /// One vector of `LANES` floats.
    type V: Copy;
    /// Floats per vector.
    const LANES: usize;

    /// All lanes zero.
    unsafe fn zero() -> Self::V;
    /// All lanes `x`.
    unsafe fn splat(x: f32) -> Self::V;
    /// Loads `LANES` floats (any alignment).
    unsafe fn load(p: *const f32) -> Self::V;
    /// Stores `LANES` floats (any alignment).
    unsafe fn store(p: *mut f32, v: Self::V);
    /// `a * b + c`, fused.
    unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a * b`.
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// `a + b`.
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// `clamp(x, lo, hi)` lane-wise, returning `x` unchanged where it is NaN.
    unsafe fn clamp(x: Self::V, lo: Self::V, hi: Self::V) -> Self::V;

    /// Loads the first `len < LANES` floats, zero in the other lanes, never
    /// touching memory past them. The default spills through the stack;
    /// ISAs with masked loads override it.
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, len: usize) -> Self::V {
        let mut tmp = [0.0f32; 16];
        debug_assert!(len <= Self::LANES && Self::LANES <= 16);
        // SAFETY: the caller vouches for `len` readable floats at `p`;
        // `tmp` holds LANES <= 16 floats.
        unsafe {
            std::ptr::copy_nonoverlapping(p, tmp.as_mut_ptr(), len);
            Self::load(tmp.as_ptr())
        }
    }
    /// Stores the first `len < LANES` lanes, never touching memory past
    /// them. The default spills through the stack; ISAs with masked stores
    /// override it.
    #[inline(always)]
    unsafe fn store_partial(p: *mut f32, len: usize, v: Self::V) {
        let mut tmp = [0.0f32; 16];
        debug_assert!(len <= Self::LANES && Self::LANES <= 16);
        // SAFETY: `tmp` holds LANES <= 16 floats; the caller vouches for
        // `len` writable floats at `p`.
        unsafe {
            Self::store(tmp.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, len);
        }
    }
}

/// The microkernel: an `MR x NR` tile held in `MR * NV` vector accumulators
/// (`NR = NV * LANES`), one B step loaded as `NV` vectors, each A element
/// broadcast, then the epilogue applied in registers.
///
/// A's element (i, p) and B's step p (NR contiguous floats) are read where
/// `a` and `b` say: packed panels have strides `(1, MR)` and `NR`, the
/// driver passes the source matrix's own strides where packing would cost
/// more than it saves ([`StridedKernelFn`](crate::gemm::StridedKernelFn)),
/// and implicit convolution reads B at a table of offsets
/// ([`OffsetKernelFn`](crate::gemm::OffsetKernelFn)) or A at gathered rows
/// ([`GatherKernelFn`](crate::gemm::GatherKernelFn)).
///
/// With row-major C (`cs_c == 1`) the epilogue runs on the vectors and
/// stores them straight to C, with partial vectors for a partial last
/// column block ([`Simd::store_partial`]); any other C layout spills the
/// tile to the stack and writes it with [`store_tile`].
///
/// # Safety
/// The contract of [`crate::gemm::StridedKernelFn`] (or, for an offset
/// table, [`crate::gemm::OffsetKernelFn`]), the CPU supports `S`, and
/// `NR == NV * S::LANES`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the BLIS kernel contract, see StridedKernelFn
pub(crate) unsafe fn body<S: Simd, A: ASteps, B: BSteps, const MR: usize, const NV: usize, const NR: usize>(
    kc: usize,
    a: A,
    b: B,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    t: &TileEpilogue,
) {
    debug_assert!(NR == NV * S::LANES && m <= MR && n <= NR);
    // SAFETY (whole body): the caller guarantees the CPU has S's features;
    // each pointer access is justified where it happens.
    unsafe {
        let mut acc = [[S::zero(); NV]; MR];
        for p in 0..kc {
            // Step p: NR floats of B, column p of A's MR rows.
            let bp = b.step(p);
            let mut bv = [S::zero(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = S::load(bp.add(v * S::LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = S::splat(a.at(i, p));
                for (x, &bj) in row.iter_mut().zip(&bv) {
                    *x = S::fmadd(ai, bj, *x);
                }
            }
        }

        if cs_c != 1 {
            let mut tile = [[0.0f32; NR]; MR];
            for (dst, row) in tile.iter_mut().zip(&acc) {
                for (v, &x) in row.iter().enumerate() {
                    S::store(dst.as_mut_ptr().add(v * S::LANES), x);
                }
            }
            store_tile::<MR, NR>(&tile, c, rs_c, cs_c, m, n, t);
            return;
        }

        // Row-major C: the epilogue on the vectors. `lens[v]` is how many of
        // vector v's lanes lie inside the tile's n columns.
        let lens: [usize; NV] = std::array::from_fn(|v| n.saturating_sub(v * S::LANES).min(S::LANES));
        let alpha = S::splat(t.alpha);
        let beta = S::splat(t.beta);
        let mut bias_col = [S::zero(); NV];
        if !t.bias_col.is_null() {
            for (v, x) in bias_col.iter_mut().enumerate() {
                if lens[v] > 0 {
                    // bias_col reaches n floats; this vector's part is inside.
                    *x = load_n::<S>(t.bias_col.add(v * S::LANES), lens[v]);
                }
            }
        }
        let clamp = t.clamp.map(|(lo, hi)| (S::splat(lo), S::splat(hi)));
        for (i, row) in acc.iter().enumerate().take(m) {
            // bias_row reaches m floats when non-null, and i < m.
            let bias_row = if t.bias_row.is_null() { None } else { Some(S::splat(*t.bias_row.add(i))) };
            for (v, &x) in row.iter().enumerate() {
                let len = lens[v];
                if len == 0 {
                    break;
                }
                // Row i, columns v*LANES .. +len: inside the m x n block.
                let cp = c.add(i * rs_c + v * S::LANES);
                let mut y = S::mul(alpha, x);
                if t.load_c {
                    y = S::fmadd(beta, load_n::<S>(cp, len), y);
                }
                if let Some(br) = bias_row {
                    y = S::add(y, br);
                }
                if !t.bias_col.is_null() {
                    y = S::add(y, bias_col[v]);
                }
                if let Some((lo, hi)) = clamp {
                    y = S::clamp(y, lo, hi);
                }
                if len == S::LANES {
                    S::store(cp, y);
                } else {
                    S::store_partial(cp, len, y);
                }
            }
        }
    }
}

/// Loads `len <= LANES` floats, the rest zero.
///
/// # Safety
/// `len` floats at `p` are readable; the CPU supports `S`.
#[inline(always)]
unsafe fn load_n<S: Simd>(p: *const f32, len: usize) -> S::V {
    // SAFETY: forwarded from the caller.
    unsafe { if len == S::LANES { S::load(p) } else { S::load_partial(p, len) } }
}

/// Declares the four `#[target_feature]` shells around [`body`] for one
/// tile: the [`crate::gemm::KernelFn`] over packed panels, the
/// [`crate::gemm::StridedKernelFn`] over any A and row-contiguous B, the
/// [`crate::gemm::OffsetKernelFn`] over a packed A and B rows at offsets,
/// and the [`crate::gemm::GatherKernelFn`] over gathered A rows and a
/// packed B.
macro_rules! kernel_shell {
    ($(#[$doc:meta])* $name:ident, $strided:ident, $offsets:ident, $gathered:ident, $simd:ty, $features:literal, $mr:literal, $nv:literal, $nr:literal) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The contract of [`crate::gemm::KernelFn`] for this tile, on a CPU
        /// with the kernel's target features.
        #[target_feature(enable = $features)]
        pub unsafe fn $name(
            kc: usize,
            a: *const f32,
            b: *const f32,
            c: *mut f32,
            rs_c: usize,
            cs_c: usize,
            m: usize,
            n: usize,
            t: &$crate::gemm::TileEpilogue,
        ) {
            // SAFETY: forwarded from the caller, who runs this only on a CPU
            // with these features (the registry's ISA check); packed panels
            // have these strides.
            unsafe {
                let (a, b) = ($crate::gemm::StridedA { a, rs: 1, cs: $mr }, $crate::gemm::StridedB { b, rs: $nr });
                $crate::gemm::simd::body::<$simd, _, _, $mr, $nv, $nr>(kc, a, b, c, rs_c, cs_c, m, n, t)
            }
        }

        #[doc = concat!("[`", stringify!($name), "`] reading A and B through strides.")]
        ///
        /// # Safety
        /// The contract of [`crate::gemm::StridedKernelFn`] for this tile, on
        /// a CPU with the kernel's target features.
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)] // the BLIS kernel contract, see StridedKernelFn
        pub unsafe fn $strided(
            kc: usize,
            a: *const f32,
            rs_a: usize,
            cs_a: usize,
            b: *const f32,
            rs_b: usize,
            c: *mut f32,
            rs_c: usize,
            cs_c: usize,
            m: usize,
            n: usize,
            t: &$crate::gemm::TileEpilogue,
        ) {
            // SAFETY: forwarded from the caller, who runs this only on a CPU
            // with these features (the registry's ISA check).
            unsafe {
                let (a, b) = ($crate::gemm::StridedA { a, rs: rs_a, cs: cs_a }, $crate::gemm::StridedB { b, rs: rs_b });
                $crate::gemm::simd::body::<$simd, _, _, $mr, $nv, $nr>(kc, a, b, c, rs_c, cs_c, m, n, t)
            }
        }

        #[doc = concat!("[`", stringify!($name), "`] reading B's steps at a table of offsets.")]
        ///
        /// # Safety
        /// The contract of [`crate::gemm::OffsetKernelFn`] for this tile, on
        /// a CPU with the kernel's target features.
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)] // the BLIS kernel contract, see OffsetKernelFn
        pub unsafe fn $offsets(
            kc: usize,
            a: *const f32,
            b: *const f32,
            offsets: *const u32,
            c: *mut f32,
            rs_c: usize,
            cs_c: usize,
            m: usize,
            n: usize,
            t: &$crate::gemm::TileEpilogue,
        ) {
            // SAFETY: forwarded from the caller, who runs this only on a CPU
            // with these features (the registry's ISA check); a packed A
            // panel has these strides.
            unsafe {
                let (a, b) = ($crate::gemm::StridedA { a, rs: 1, cs: $mr }, $crate::gemm::OffsetB { b, offsets });
                $crate::gemm::simd::body::<$simd, _, _, $mr, $nv, $nr>(kc, a, b, c, rs_c, cs_c, m, n, t)
            }
        }

        #[doc = concat!("[`", stringify!($name), "`] reading A's rows at gathered addresses.")]
        ///
        /// # Safety
        /// The contract of [`crate::gemm::GatherKernelFn`] for this tile, on
        /// a CPU with the kernel's target features.
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)] // the BLIS kernel contract, see GatherKernelFn
        pub unsafe fn $gathered(
            kc: usize,
            rows: *const *const f32,
            offsets: *const u32,
            b: *const f32,
            c: *mut f32,
            rs_c: usize,
            cs_c: usize,
            m: usize,
            n: usize,
            t: &$crate::gemm::TileEpilogue,
        ) {
            // A short row block (a few-pixel layer's last: 49 = 8 x 6 + 1)
            // runs a tile a third or two thirds as tall, not all MR rows.
            // SAFETY: forwarded from the caller, who runs this only on a CPU
            // with these features (the registry's ISA check); a packed B
            // panel has this stride; a shorter tile reads fewer rows.
            unsafe {
                let (a, b) = ($crate::gemm::GatheredA { rows, offsets }, $crate::gemm::StridedB { b, rs: $nr });
                if m <= $mr / 3 {
                    $crate::gemm::simd::body::<$simd, _, _, { $mr / 3 }, $nv, $nr>(kc, a, b, c, rs_c, cs_c, m, n, t)
                } else if m <= 2 * $mr / 3 {
                    $crate::gemm::simd::body::<$simd, _, _, { 2 * $mr / 3 }, $nv, $nr>(kc, a, b, c, rs_c, cs_c, m, n, t)
                } else {
                    $crate::gemm::simd::body::<$simd, _, _, $mr, $nv, $nr>(kc, a, b, c, rs_c, cs_c, m, n, t)
                }
            }
        }
    };
}
pub(crate) use kernel_shell;
