//! Pooling kernels over NCHW planes: windowed max (with indices) and
//! average, and global max and average.
//!
//! One generic body per reduction (modules `window`, `separable` and
//! `global`) runs on any instance of the private `Simd` trait; each ISA
//! module instantiates it inside thin `#[target_feature]` shells. Max
//! pooling with overlapping rows (without indices) and average pooling go
//! separably, along rows and down columns through row buffers; the
//! commonest 3-wide windows (max at column stride 2, small-plane averages at
//! unit stride) take one-pass kernels instead (module `fused`). Strides 1
//! and 2 along the row are vectorized (stride 2 with deinterleaving loads);
//! other strides run the one-lane `Scalar` instance of the same body.

mod fused;
mod global;
mod separable;
mod simd;
mod window;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;

use crate::isa::Isa;
use window::{FlatAvg, Window, tap_range};

/// Geometry of 2-D pooling on one plane, in PyTorch's terms. The caller
/// (the `receptive` crate) derives `out_hw` from the rest with PyTorch's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Input plane `[H, W]`.
    pub in_hw: [usize; 2],
    /// Output plane `[OH, OW]`.
    pub out_hw: [usize; 2],
    /// Window `[rows, columns]`.
    pub kernel: [usize; 2],
    /// Stride `[rows, columns]`.
    pub stride: [usize; 2],
    /// Dilation `[rows, columns]` (1 for average pooling).
    pub dilation: [usize; 2],
    /// Padding `[top, left]`.
    pub pad_before: [usize; 2],
    /// Padding `[bottom, right]` (average pooling clips windows to it).
    pub pad_after: [usize; 2],
}

/// How average pooling divides a window's sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divisor {
    /// By this number (PyTorch's `divisor_override`).
    Override(usize),
    /// By the window clipped to the padded input (`count_include_pad`).
    IncludePad,
    /// By the number of input elements in the window.
    ExcludePad,
}

/// What a [`PoolKernel`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolOp {
    /// Maximum (NaN wins, first index on ties).
    Max,
    /// Average with the given divisor rule.
    Avg(Divisor),
}

/// Windowed max pooling on `planes` planes.
///
/// # Safety
/// See [`window::max_planes`].
type MaxFn = unsafe fn(&Window, *const f32, *mut f32, *mut i64, usize);
/// Windowed average pooling on `planes` planes.
///
/// # Safety
/// See [`separable::avg_planes`].
type AvgFn = unsafe fn(&Window, *const f32, *mut f32, usize);
/// The windowed shells of one ISA, stride class and window width.
#[derive(Clone, Copy)]
struct WindowFns {
    max: MaxFn,
    max_idx: MaxFn,
    /// Max pooling without indices, separably (see [`separable::max_planes`]).
    max_separable: MaxFn,
    avg: AvgFn,
    /// 3-wide max at column stride 2 (see [`fused::max3_s2_planes`]).
    max3_s2: MaxFn,
    /// 3-wide flat average (see [`fused::avg3_planes`]).
    avg3: AvgFn,
}

/// Global pooling of `planes` planes of `len` floats.
///
/// # Safety
/// See [`global::avg_planes`].
type GlobalFn = unsafe fn(*const f32, usize, *mut f32, usize);

/// The shells of one ISA: `#[target_feature]` functions that instantiate the
/// generic bodies for `$simd`, and lookups by column stride (`$sw` lists the
/// specialized strides; 0 stands for any stride, one lane only) and window
/// width (2 and 3 unrolled, others a loop).
macro_rules! pool_shells {
    ($simd:ty, [$($sw:literal),*] $(, $feat:literal)?) => {
        use super::window::{self, Window};
        use super::{global, GlobalFn, WindowFns};

        /// Lanes per vector.
        pub(super) const LANES: usize = <$simd as super::simd::Simd>::LANES;

        $(#[target_feature(enable = $feat)])?
        /// # Safety
        /// See [`window::max_planes`]; the CPU supports the ISA.
        unsafe fn max<const SW: usize, const KW: usize, const IDX: bool>(
            w: &Window, x: *const f32, y: *mut f32, idx: *mut i64, planes: usize,
        ) {
            // SAFETY: forwarded from the caller.
            unsafe { window::max_planes::<$simd, SW, KW, IDX>(w, x, y, idx, planes) }
        }

        $(#[target_feature(enable = $feat)])?
        /// # Safety
        /// See [`separable::max_planes`](super::separable::max_planes); the CPU supports the ISA.
        unsafe fn max_separable<const SW: usize, const KW: usize>(
            w: &Window, x: *const f32, y: *mut f32, _idx: *mut i64, planes: usize,
        ) {
            // SAFETY: forwarded from the caller.
            unsafe { super::separable::max_planes::<$simd, SW, KW>(w, x, y, planes) }
        }

        $(#[target_feature(enable = $feat)])?
        /// # Safety
        /// See [`separable::avg_planes`](super::separable::avg_planes); the CPU supports the ISA.
        unsafe fn avg<const SW: usize, const KW: usize>(w: &Window, x: *const f32, y: *mut f32, planes: usize) {
            // SAFETY: forwarded from the caller.
            unsafe { super::separable::avg_planes::<$simd, SW, KW>(w, x, y, planes) }
        }

        $(#[target_feature(enable = $feat)])?
        /// # Safety
        /// See [`fused::max3_s2_planes`](super::fused::max3_s2_planes); the CPU supports the ISA.
        unsafe fn max3_s2(w: &Window, x: *const f32, y: *mut f32, _idx: *mut i64, planes: usize) {
            // SAFETY: forwarded from the caller.
            unsafe { super::fused::max3_s2_planes::<$simd>(w, x, y, planes) }
        }

        $(#[target_feature(enable = $feat)])?
        /// # Safety
        /// See [`fused::avg3_planes`](super::fused::avg3_planes); the CPU supports the ISA.
        unsafe fn avg3(w: &Window, x: *const f32, y: *mut f32, planes: usize) {
            // SAFETY: forwarded from the caller.
            unsafe { super::fused::avg3_planes::<$simd>(w, x, y, planes) }
        }

        $(#[target_feature(enable = $feat)])?
        /// # Safety
        /// See [`global::avg_planes`]; the CPU supports the ISA.
        unsafe fn global_avg(x: *const f32, len: usize, y: *mut f32, planes: usize) {
            // SAFETY: forwarded from the caller.
            unsafe { global::avg_planes::<$simd>(x, len, y, planes) }
        }

        $(#[target_feature(enable = $feat)])?
        /// # Safety
        /// See [`global::max_planes`]; the CPU supports the ISA.
        unsafe fn global_max(x: *const f32, len: usize, y: *mut f32, planes: usize) {
            // SAFETY: forwarded from the caller.
            unsafe { global::max_planes::<$simd>(x, len, y, planes) }
        }

        fn fns<const SW: usize, const KW: usize>() -> WindowFns {
            WindowFns {
                max: max::<SW, KW, false>,
                max_idx: max::<SW, KW, true>,
                max_separable: max_separable::<SW, KW>,
                avg: avg::<SW, KW>,
                max3_s2,
                avg3,
            }
        }

        /// The windowed shells for column stride class `sw` and window
        /// width `kw`, if the stride is specialized.
        pub(super) fn window_fns(sw: usize, kw: usize) -> Option<WindowFns> {
            match (sw, kw) {
                $(($sw, 2) => Some(fns::<$sw, 2>()), ($sw, 3) => Some(fns::<$sw, 3>()), ($sw, _) => Some(fns::<$sw, 0>()),)*
                _ => None,
            }
        }

        /// The global shells: (average, maximum).
        pub(super) fn global_fns() -> (GlobalFn, GlobalFn) {
            (global_avg as GlobalFn, global_max as GlobalFn)
        }
    };
}
use pool_shells;

/// The shells of `isa` for column stride `sw` and window width `kw`, with the lane count.
fn isa_window_fns(isa: Isa, sw: usize, kw: usize) -> Option<(usize, WindowFns)> {
    match isa {
        Isa::Scalar => Some((scalar::LANES, scalar::window_fns(0, kw)?)),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some((avx2::LANES, avx2::window_fns(sw, kw)?)),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some((avx512::LANES, avx512::window_fns(sw, kw)?)),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Some((neon::LANES, neon::window_fns(sw, kw)?)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn isa_global_fns(isa: Isa) -> (GlobalFn, GlobalFn) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::global_fns(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::global_fns(),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => neon::global_fns(),
        _ => scalar::global_fns(),
    }
}

/// The ISA that actually runs: `isa` if this CPU supports it, else scalar.
fn runnable(isa: Isa) -> Isa {
    if isa.supported() { isa } else { Isa::Scalar }
}

/// A windowed pooling kernel for one geometry: the shell chosen once, the
/// interior column run found once.
#[derive(Clone, Debug)]
pub struct PoolKernel {
    op: PoolOp,
    win: Window,
    isa: Isa,
    max: MaxFn,
    max_idx: MaxFn,
    avg: AvgFn,
    /// A [`fused`] kernel runs (without indices).
    fused: bool,
}

impl PoolKernel {
    /// The kernel for `op` on `g` using `isa` (scalar if this CPU lacks it,
    /// or for column strides above 2).
    ///
    /// # Panics
    /// If a size, stride or dilation is 0, a window covers no input element,
    /// an average has dilation other than 1 or a zero divisor, or the plane
    /// sizes overflow. The `receptive` crate validates all of these first.
    pub fn new(op: PoolOp, g: PoolGeometry, isa: Isa) -> PoolKernel {
        let ([h, w], [oh, ow]) = (g.in_hw, g.out_hw);
        assert!(g.kernel.iter().chain(&g.stride).chain(&g.dilation).all(|&v| v > 0), "zero window size");
        assert!(h.checked_mul(w).is_some() && oh.checked_mul(ow).is_some(), "plane size overflows");
        for o in 0..oh {
            let (lo, hi) = tap_range(o, g.stride[0], g.dilation[0], g.pad_before[0], g.kernel[0], h);
            assert!(lo < hi, "window row {o} covers no input row");
        }
        for o in 0..ow {
            let (lo, hi) = tap_range(o, g.stride[1], g.dilation[1], g.pad_before[1], g.kernel[1], w);
            assert!(lo < hi, "window column {o} covers no input column");
        }
        if let PoolOp::Avg(d) = op {
            assert_eq!(g.dilation, [1, 1], "average pooling has no dilation");
            assert_ne!(d, Divisor::Override(0), "zero divisor");
        }
        // Vector lanes hold i32 plane indices.
        let mut isa = runnable(isa);
        if h * w > i32::MAX as usize {
            isa = Isa::Scalar;
        }
        let sw = g.stride[1];
        let kw = g.kernel[1];
        let (lanes, fns) = isa_window_fns(isa, sw, kw).unwrap_or_else(|| {
            isa = Isa::Scalar;
            isa_window_fns(Isa::Scalar, sw, kw).expect("scalar covers every stride")
        });
        let divisor = match op {
            PoolOp::Avg(d) => d,
            PoolOp::Max => Divisor::Override(1),
        };
        let mut win = Window::new(g, divisor, lanes);
        if let PoolOp::Avg(_) = op {
            win.flat = FlatAvg::new(&win, lanes);
            win.avg3 = fused::Avg3::new(&win, lanes);
        }
        // Windows whose rows overlap share row maxima (no row dilation; an
        // interior run, which the buffers' vectors assume).
        let separable = g.dilation[0] == 1 && g.stride[0] < g.kernel[0] && win.lo < win.hi;
        let (max, avg, fused) = match op {
            PoolOp::Max if fused::max3_s2_applies(&win, lanes) => (fns.max3_s2, fns.avg, true),
            PoolOp::Avg(_) if fused::avg3_applies(&win) => (fns.max, fns.avg3, true),
            _ => (if separable { fns.max_separable } else { fns.max }, fns.avg, false),
        };
        PoolKernel { op, win, isa, max, max_idx: fns.max_idx, avg, fused }
    }

    /// The geometry.
    pub fn geometry(&self) -> &PoolGeometry {
        &self.win.g
    }

    /// The ISA whose shell runs.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// A description of the path, e.g. `"maxpool avx512 s2"`.
    pub fn path(&self) -> String {
        let kind = match self.op {
            PoolOp::Max => "maxpool",
            PoolOp::Avg(_) => "avgpool",
        };
        let g = &self.win.g;
        let interior = match (self.win.flat.is_some(), self.win.lo < self.win.hi) {
            _ if self.fused => " fused",
            (true, _) => " flat",
            (false, true) => "",
            (false, false) => " border-only",
        };
        format!("{kind} {} s{}{interior}", self.isa, g.stride[1])
    }

    /// Pools whole planes: `x` holds `P` planes of `H x W`, `y` (and `idx`,
    /// max pooling only) `P` planes of `OH x OW`. Indices are flat within
    /// each input plane, `h * W + w`.
    ///
    /// # Panics
    /// If the lengths disagree with the geometry, or indices are asked of an
    /// average.
    pub fn run(&self, x: &[f32], y: &mut [f32], idx: Option<&mut [i64]>) {
        let g = &self.win.g;
        let (plane_in, plane_out) = (g.in_hw[0] * g.in_hw[1], g.out_hw[0] * g.out_hw[1]);
        assert_eq!(x.len() % plane_in, 0, "input is not whole planes");
        let planes = x.len() / plane_in;
        assert_eq!(Some(y.len()), planes.checked_mul(plane_out), "output length");
        let idx_ptr = match idx {
            Some(i) => {
                assert_eq!(i.len(), y.len(), "index length");
                assert_eq!(self.op, PoolOp::Max, "indices of an average");
                i.as_mut_ptr()
            }
            None => std::ptr::null_mut(),
        };
        // SAFETY: the lengths were checked above; the window was built for the
        // shell's lane count and stride class; the shell's ISA is supported
        // (`runnable`); plane indices fit i32 or the shell is scalar (i64).
        unsafe {
            match self.op {
                PoolOp::Max if idx_ptr.is_null() => (self.max)(&self.win, x.as_ptr(), y.as_mut_ptr(), idx_ptr, planes),
                PoolOp::Max => (self.max_idx)(&self.win, x.as_ptr(), y.as_mut_ptr(), idx_ptr, planes),
                PoolOp::Avg(_) => (self.avg)(&self.win, x.as_ptr(), y.as_mut_ptr(), planes),
            }
        }
    }
}

/// Global average (`max == false`) or maximum of each plane of `len` floats
/// in `x`, written to `y` (one per plane), on `isa` (scalar if unsupported).
///
/// # Panics
/// If `len == 0` or the lengths disagree.
pub fn global_pool(isa: Isa, max: bool, x: &[f32], len: usize, y: &mut [f32]) {
    assert!(len > 0, "empty plane");
    assert_eq!(Some(x.len()), y.len().checked_mul(len), "input length vs planes");
    let (avg_fn, max_fn) = isa_global_fns(runnable(isa));
    let f = if max { max_fn } else { avg_fn };
    // SAFETY: x holds y.len() planes of len floats; the ISA is supported.
    unsafe { f(x.as_ptr(), len, y.as_mut_ptr(), y.len()) }
}
