//! The weight gradient of a depthwise layer (one input channel per group):
//! each of a filter's `F x F` taps is a dot product of its output-gradient
//! plane with a shifted window of its input plane. The plane is read in
//! place, one input row at a time: each vector of the row, loaded once per
//! tap column (masked loads at the borders, so padding costs no copy),
//! feeds the `F` output-gradient rows it touches, into `F x F` vector
//! accumulators that stay in registers over the whole plane. Square 3x3
//! and 5x5 filters with unit stride and dilation (MobileNet's and
//! EfficientNet's stride-1 layers); [`DepthwiseWgrad::supports`] says which.
//!
//! Each tap sums in an order the geometry alone fixes (rows top to bottom,
//! vectors left to right, then the lanes in order), so the result is
//! reproducible.

use super::simd::{MAX_LANES, Scalar, Simd};
use crate::im2col::Geometry;
use crate::isa::Isa;

/// The body for one plane, compiled for an ISA.
///
/// # Safety
/// The CPU supports the body's ISA and the job satisfies [`Job::check`].
type BodyFn = unsafe fn(&Job<'_>, &mut [f32]);

/// One plane: the input `x` (`h x w`), its filter's output gradient `dy`
/// (`oh x ow`) and the geometry.
struct Job<'a> {
    x: &'a [f32],
    dy: &'a [f32],
    g: Geometry,
}

impl Job<'_> {
    /// The lengths the body relies on.
    fn check(&self, out: &[f32]) {
        let g = &self.g;
        assert!(DepthwiseWgrad::supports(g), "unsupported depthwise weight-gradient geometry {g:?}");
        assert_eq!(self.x.len(), g.h * g.w, "input plane length");
        assert_eq!(self.dy.len(), g.oh * g.ow, "output-gradient plane length");
        assert_eq!(out.len(), g.fh * g.fw, "one gradient per tap");
    }
}

/// `out[fy*F + fx] += sum_{oy, ox} x[oy + fy - pt][ox + fx - pl] * dy[oy][ox]`
/// (terms outside the input plane left out), one column strip of a vector
/// at a time: the strip's masks are formed once, then the input rows run
/// down it, rows whose `F` output rows all exist without checks.
///
/// # Safety
/// The CPU supports `V`'s ISA; `job.check(out)` passed with `g.fh == F`.
#[inline(always)]
unsafe fn body<V: Simd, const F: usize>(job: &Job<'_>, out: &mut [f32]) {
    let g = &job.g;
    let (h, w, oh, ow) = (g.h as isize, g.w as isize, g.oh as isize, g.ow);
    let (pt, pl) = (g.pad_top as isize, g.pad_left as isize);
    // Input rows that some output row reads (iy + pt - fy in 0..oh), and
    // the middle ones that all F of theirs exist for.
    let (first, end) = ((-pt).max(0), (oh + F as isize - 1 - pt).min(h));
    let mid0 = (F as isize - 1 - pt).clamp(first, end);
    let mid1 = (oh - pt).clamp(mid0, end);
    // SAFETY (whole body): the caller guarantees V's ISA; the strips'
    // loads are justified in `strip`.
    unsafe {
        let mut acc = [[V::splat(0.0); F]; F];
        for ox0 in (0..ow).step_by(V::LANES) {
            let n = V::LANES.min(ow - ox0);
            // Lane l of tap column fx reads input column ox0 + l + fx - pl:
            // inside the row for lanes lo..hi.
            let base = ox0 as isize - pl;
            let xm: [V::Mask; F] = std::array::from_fn(|fx| {
                let start = base + fx as isize;
                let lo = (-start).clamp(0, n as isize) as usize;
                let hi = (w - start).clamp(lo as isize, n as isize) as usize;
                V::mask(lo, hi)
            });
            let s = Strip { job, ox0, dm: V::mask(0, n), xm };
            let interior = n == V::LANES && base >= 0 && base + (V::LANES + F - 1) as isize <= w;
            if interior {
                strip::<V, F, true, false>(&s, first..mid0, &mut acc);
                strip::<V, F, false, false>(&s, mid0..mid1, &mut acc);
                strip::<V, F, true, false>(&s, mid1..end, &mut acc);
            } else {
                strip::<V, F, true, true>(&s, first..mid0, &mut acc);
                strip::<V, F, false, true>(&s, mid0..mid1, &mut acc);
                strip::<V, F, true, true>(&s, mid1..end, &mut acc);
            }
        }
        let mut lanes = [0.0f32; MAX_LANES];
        for (fy, row) in acc.iter().enumerate() {
            for (fx, &a) in row.iter().enumerate() {
                // `lanes` holds MAX_LANES >= LANES floats.
                a.store(lanes.as_mut_ptr());
                out[fy * F + fx] += lanes[..V::LANES].iter().sum::<f32>();
            }
        }
    }
}

/// One column strip: output columns `ox0..` (the lanes of `dm`), and per
/// tap column the lanes whose input column lies inside the row.
struct Strip<'a, V: Simd, const F: usize> {
    job: &'a Job<'a>,
    ox0: usize,
    dm: V::Mask,
    xm: [V::Mask; F],
}

/// Adds input rows `iys` of the strip to `acc`: each row's `F` tap-column
/// vectors times the output-gradient vectors of the `F` rows it feeds.
/// With `CHECK` output rows outside the plane count as zero (otherwise
/// the rows must all exist); with `MASKED` the loads take the strip's
/// masks (otherwise the strip is a whole vector inside every row).
///
/// # Safety
/// The CPU supports `V`'s ISA; the strip lies inside the job (`ox0 < ow`,
/// masks as [`body`] forms them), `iys` inside the input rows and, without
/// `CHECK`, every `iy + pt - fy` inside the output rows; without `MASKED`
/// every tap column's `LANES` columns lie inside the row.
#[inline(always)]
unsafe fn strip<V: Simd, const F: usize, const CHECK: bool, const MASKED: bool>(
    s: &Strip<'_, V, F>,
    iys: std::ops::Range<isize>,
    acc: &mut [[V; F]; F],
) {
    let g = &s.job.g;
    let (w, oh, ow, pt) = (g.w, g.oh as isize, g.ow, g.pad_top as isize);
    let (x, dy) = (s.job.x.as_ptr(), s.job.dy.as_ptr());
    // Input column of lane 0 of tap column 0 (may lie left of the row).
    let col = s.ox0 as isize - g.pad_left as isize;
    for iy in iys {
        // SAFETY: row iy lies in the plane; loads as the contract says.
        unsafe {
            let dv: [V; F] = std::array::from_fn(|fy| {
                let oy = iy + pt - fy as isize;
                if CHECK && !(0..oh).contains(&oy) {
                    V::splat(0.0)
                } else {
                    // Row oy < oh, the strip's columns (the lanes of dm,
                    // all of them without MASKED).
                    let p = dy.add(oy as usize * ow + s.ox0);
                    if MASKED { V::load_masked(p, s.dm) } else { V::load(p) }
                }
            });
            let xrow = x.add(iy as usize * w);
            // Indexed loops: the iterator form kept the accumulators out
            // of registers (0.8x on Zen 5).
            #[allow(clippy::needless_range_loop)]
            for fx in 0..F {
                let p = xrow.wrapping_offset(col + fx as isize);
                // Masked: only the lanes inside the row are read.
                let xv = if MASKED { V::load_masked(p, s.xm[fx]) } else { V::load(p) };
                for fy in 0..F {
                    acc[fy][fx] = V::mul_add(xv, dv[fy], acc[fy][fx]);
                }
            }
        }
    }
}

/// The body for an `F x F` filter in the ISA's shell.
macro_rules! shell {
    ($name:ident, $simd:ty, $features:literal) => {
        /// [`body`] with the ISA's target features.
        ///
        /// # Safety
        /// The CPU has the features; `job.check(out)` passed with `g.fh == F`.
        #[target_feature(enable = $features)]
        unsafe fn $name<const F: usize>(job: &Job<'_>, out: &mut [f32]) {
            // SAFETY: forwarded from the caller.
            unsafe { body::<$simd, F>(job, out) }
        }
    };
}

#[cfg(target_arch = "x86_64")]
shell!(avx512, super::simd::Avx512, "avx512f");
#[cfg(target_arch = "x86_64")]
shell!(avx2, super::simd::Avx2, "avx2,fma");
#[cfg(target_arch = "aarch64")]
shell!(neon, super::simd::Neon, "neon");

/// [`body`] in plain Rust (any CPU).
///
/// # Safety
/// `job.check(out)` passed with `g.fh == F`.
unsafe fn scalar<const F: usize>(job: &Job<'_>, out: &mut [f32]) {
    // SAFETY: forwarded from the caller; Scalar runs on every CPU.
    unsafe { body::<Scalar, F>(job, out) }
}

/// A depthwise weight-gradient kernel for one ISA.
#[derive(Debug)]
pub struct DepthwiseWgrad {
    name: &'static str,
    isa: Isa,
    /// The bodies for 3x3 and 5x5 filters.
    bodies: [BodyFn; 2],
}

static KERNELS: &[DepthwiseWgrad] = &[
    #[cfg(target_arch = "x86_64")]
    DepthwiseWgrad { name: "depthwise_wgrad_avx512", isa: Isa::Avx512, bodies: [avx512::<3>, avx512::<5>] },
    #[cfg(target_arch = "x86_64")]
    DepthwiseWgrad { name: "depthwise_wgrad_avx2", isa: Isa::Avx2, bodies: [avx2::<3>, avx2::<5>] },
    #[cfg(target_arch = "aarch64")]
    DepthwiseWgrad { name: "depthwise_wgrad_neon", isa: Isa::Neon, bodies: [neon::<3>, neon::<5>] },
    DepthwiseWgrad { name: "depthwise_wgrad_scalar", isa: Isa::Scalar, bodies: [scalar::<3>, scalar::<5>] },
];

impl DepthwiseWgrad {
    /// The kernel for `isa`, or for the best ISA below it that this CPU
    /// runs (so the result is always safe to run here).
    pub fn for_isa(isa: Isa) -> &'static DepthwiseWgrad {
        let isa = if isa.supported() { isa } else { Isa::Scalar };
        KERNELS.iter().find(|k| k.isa == isa).unwrap_or(&KERNELS[KERNELS.len() - 1])
    }

    /// Name carrying the ISA, e.g. `depthwise_wgrad_avx512`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the kernel handles geometry `g`: one input channel, a
    /// square 3x3 or 5x5 filter, unit stride and dilation.
    pub fn supports(g: &Geometry) -> bool {
        g.c == 1 && g.fh == g.fw && matches!(g.fh, 3 | 5) && g.stride == [1, 1] && g.dilation == [1, 1]
    }

    /// Adds the weight gradient of one plane to `out` (`FH * FW` taps,
    /// row-major): `x` the input plane (`g.h x g.w`), `dy` its filter's
    /// output-gradient plane (`g.oh x g.ow`). Each tap's sum runs in an
    /// order fixed by `g`.
    ///
    /// # Panics
    /// If `g` is not [supported](Self::supports) or a length disagrees with it.
    pub fn accumulate(&self, x: &[f32], dy: &[f32], g: &Geometry, out: &mut [f32]) {
        let job = Job { x, dy, g: *g };
        job.check(out);
        let body = self.bodies[usize::from(g.fh == 5)];
        // SAFETY: `for_isa` only hands out kernels this CPU supports; the
        // job passed `check`, and the body matches g.fh.
        unsafe { body(&job, out) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small integers, so every sum is exact in f32 whatever the order.
    fn ints(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7 + seed * 13) % 9) as f32 - 4.0).collect()
    }

    #[test]
    fn every_kernel_matches_naive_sums() {
        for kernel in KERNELS.iter().filter(|k| k.isa.supported()) {
            for f in [3, 5] {
                for (h, w) in [(1, 1), (2, 3), (4, 7), (9, 15), (5, 16), (6, 17), (3, 33), (7, 40)] {
                    for (pt, pl, pb, pr) in [(0, 0, 0, 0), (1, 1, 1, 1), (2, 2, 2, 2), (0, 2, 1, 0), (2, 0, 0, 1)] {
                        let (hp, wp) = (h + pt + pb, w + pl + pr);
                        if hp < f || wp < f {
                            continue;
                        }
                        let (oh, ow) = (hp - f + 1, wp - f + 1);
                        let g = Geometry {
                            c: 1,
                            h,
                            w,
                            fh: f,
                            fw: f,
                            stride: [1, 1],
                            dilation: [1, 1],
                            pad_top: pt,
                            pad_left: pl,
                            oh,
                            ow,
                        };
                        let (x, dy) = (ints(h * w, 1), ints(oh * ow, 2));
                        let mut out = ints(f * f, 3);
                        let before = out.clone();
                        kernel.accumulate(&x, &dy, &g, &mut out);
                        for fy in 0..f {
                            for fx in 0..f {
                                let mut want = before[fy * f + fx];
                                for oy in 0..oh {
                                    for ox in 0..ow {
                                        let (iy, ix) =
                                            ((oy + fy) as isize - pt as isize, (ox + fx) as isize - pl as isize);
                                        if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                                            want += x[iy as usize * w + ix as usize] * dy[oy * ow + ox];
                                        }
                                    }
                                }
                                assert_eq!(out[fy * f + fx], want, "{} {g:?} tap {fy},{fx}", kernel.name);
                            }
                        }
                    }
                }
            }
        }
    }
}
