//! The weight gradient of a depthwise layer (one input channel per group):
//! each of a filter's `F x F` taps is a dot product of its output-gradient
//! plane with a shifted window of its input plane. The plane is read in
//! place, one input row at a time: each vector of the row, loaded once per
//! tap column (masked loads at the borders, so padding costs no copy),
//! feeds the `F` output-gradient rows it touches, into `F x F` vector
//! accumulators that stay in registers over the whole plane. With stride 2
//! a pair of loads splits into its even and odd columns, two tap columns.
//! Square 3x3 and 5x5 filters with strides 1 or 2 and unit dilation
//! (MobileNet's and EfficientNet's); [`DepthwiseWgrad::supports`] says which.
//!
//! Each tap sums in an order the geometry alone fixes (rows top to bottom,
//! vectors left to right, then the lanes in order), so the result is
//! reproducible.

use super::simd::{MAX_LANES, Scalar, Simd};
use crate::im2col::Geometry;
use crate::isa::{Isa, kernel_for};

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

/// `out[fy*F + fx] += sum_{oy, ox} x[S*oy + fy - pt][S*ox + fx - pl] *
/// dy[oy][ox]` (terms outside the input plane left out), one column strip
/// of a vector at a time: the strip's masks are formed once, then the
/// steps run down it, those whose rows all exist without checks.
///
/// Step `q` reads input rows `S*q + s - pt` (`s < S`) and output-gradient
/// rows `q - j` (`j < ceil(F/S)`): input row `s` feeds filter rows
/// `s + S*j` through output row `q - j`.
///
/// # Safety
/// The CPU supports `V`'s ISA; `job.check(out)` passed with `g.fh == F`
/// and stride `S` (1 or 2).
#[inline(always)]
unsafe fn body<V: Simd, const F: usize, const S: usize>(job: &Job<'_>, out: &mut [f32]) {
    let g = &job.g;
    let (h, w, oh, ow) = (g.h as isize, g.w as isize, g.oh as isize, g.ow);
    let (pt, pl) = (g.pad_top as isize, g.pad_left as isize);
    let (rows, groups) = (F.div_ceil(S) as isize, F.div_ceil(S));
    let end = oh + rows - 1;
    // Steps whose output rows and input rows all exist.
    let mid0 = (rows - 1).max((pt + S as isize - 1) / S as isize).min(end);
    let mid1 = oh.min((h + pt) / S as isize).max(mid0);
    // SAFETY (whole body): the caller guarantees V's ISA; the strips'
    // loads are justified in `strip`.
    unsafe {
        let mut acc = [[V::splat(0.0); F]; F];
        for ox0 in (0..ow).step_by(V::LANES) {
            let n = V::LANES.min(ow - ox0);
            // Column group i (taps S*i ..) loads S vectors from input
            // column base + S*i: float k of them is column start + k,
            // needed for k < S*n and inside the row for k in lo..hi.
            let base = (S * ox0) as isize - pl;
            let xm: [[V::Mask; S]; F] = std::array::from_fn(|i| {
                let start = base + (S * i) as isize;
                let lo = (-start).clamp(0, (S * n) as isize);
                let hi = (w - start).clamp(lo, (S * n) as isize);
                std::array::from_fn(|v| {
                    let first = (v * V::LANES) as isize;
                    let lanes = |k: isize| (k - first).clamp(0, V::LANES as isize) as usize;
                    V::mask(lanes(lo), lanes(hi))
                })
            });
            let s = Strip { job, ox0, dm: V::mask(0, n), xm };
            let interior = n == V::LANES && base >= 0 && base + (S * (groups - 1 + V::LANES)) as isize <= w;
            if interior {
                strip::<V, F, S, true, false>(&s, 0..mid0, &mut acc);
                strip::<V, F, S, false, false>(&s, mid0..mid1, &mut acc);
                strip::<V, F, S, true, false>(&s, mid1..end, &mut acc);
            } else {
                strip::<V, F, S, true, true>(&s, 0..mid0, &mut acc);
                strip::<V, F, S, false, true>(&s, mid0..mid1, &mut acc);
                strip::<V, F, S, true, true>(&s, mid1..end, &mut acc);
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
/// column group the lanes of its `S` vectors that lie inside the row.
struct Strip<'a, V: Simd, const F: usize, const S: usize> {
    job: &'a Job<'a>,
    ox0: usize,
    dm: V::Mask,
    xm: [[V::Mask; S]; F],
}

/// Adds steps `qs` of the strip to `acc` (see [`body`]). With `CHECK`
/// rows outside the planes are skipped or count as zero (otherwise they
/// must all exist); with `MASKED` the loads take the strip's masks
/// (otherwise the strip is a whole vector whose columns all lie inside
/// the rows).
///
/// # Safety
/// The CPU supports `V`'s ISA; the strip is as [`body`] forms it, `qs` a
/// range of its steps and, without `CHECK`, every row of those steps
/// inside its plane; without `MASKED` the strip is `LANES` output columns
/// and every column group's `S * LANES` input columns lie inside the row.
#[inline(always)]
unsafe fn strip<V: Simd, const F: usize, const S: usize, const CHECK: bool, const MASKED: bool>(
    s: &Strip<'_, V, F, S>,
    qs: std::ops::Range<isize>,
    acc: &mut [[V; F]; F],
) {
    let g = &s.job.g;
    let (h, w, oh, ow, pt) = (g.h as isize, g.w, g.oh as isize, g.ow, g.pad_top as isize);
    let (x, dy) = (s.job.x.as_ptr(), s.job.dy.as_ptr());
    // Input column of lane 0 of tap column 0 (may lie left of the row).
    let col = (S * s.ox0) as isize - g.pad_left as isize;
    for q in qs {
        // SAFETY: rows inside the planes (checked with CHECK, otherwise
        // the contract); loads as the contract says.
        unsafe {
            let dv: [V; F] = std::array::from_fn(|j| {
                let oy = q - j as isize;
                if j * S >= F || CHECK && !(0..oh).contains(&oy) {
                    V::splat(0.0)
                } else {
                    // Row oy < oh, the strip's columns (the lanes of dm,
                    // all of them without MASKED).
                    let p = dy.add(oy as usize * ow + s.ox0);
                    if MASKED { V::load_masked(p, s.dm) } else { V::load(p) }
                }
            });
            for r in 0..S {
                let iy = S as isize * q + r as isize - pt;
                if CHECK && !(0..h).contains(&iy) {
                    continue;
                }
                let xrow = x.add(iy as usize * w);
                // Indexed loops: the iterator form kept the accumulators
                // out of registers (0.8x on Zen 5).
                #[allow(clippy::needless_range_loop)]
                for i in 0..F.div_ceil(S) {
                    let p = xrow.wrapping_offset(col + (S * i) as isize);
                    // Masked: only the lanes inside the row are read.
                    let ld = |v: usize| {
                        let pv = p.wrapping_add(v * V::LANES);
                        if MASKED { V::load_masked(pv, s.xm[i][v]) } else { V::load(pv) }
                    };
                    let xv: [V; S] = if S == 1 {
                        std::array::from_fn(|_| ld(0))
                    } else {
                        let (even, odd) = V::deinterleave(ld(0), ld(1));
                        std::array::from_fn(|t| if t == 0 { even } else { odd })
                    };
                    for t in 0..S {
                        let fx = S * i + t;
                        if fx >= F {
                            break;
                        }
                        for j in 0..F {
                            let fy = r + S * j;
                            if fy >= F {
                                break;
                            }
                            acc[fy][fx] = V::mul_add(xv[t], dv[j], acc[fy][fx]);
                        }
                    }
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
        /// The CPU has the features; `job.check(out)` passed with `g.fh == F`
        /// and stride `S`.
        #[target_feature(enable = $features)]
        unsafe fn $name<const F: usize, const S: usize>(job: &Job<'_>, out: &mut [f32]) {
            // SAFETY: forwarded from the caller.
            unsafe { body::<$simd, F, S>(job, out) }
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
/// `job.check(out)` passed with `g.fh == F` and stride `S`.
unsafe fn scalar<const F: usize, const S: usize>(job: &Job<'_>, out: &mut [f32]) {
    // SAFETY: forwarded from the caller; Scalar runs on every CPU.
    unsafe { body::<Scalar, F, S>(job, out) }
}

/// A depthwise weight-gradient kernel for one ISA.
#[derive(Debug)]
pub struct DepthwiseWgrad {
    name: &'static str,
    isa: Isa,
    /// The bodies for 3x3 and 5x5 filters, stride 1 then 2.
    bodies: [BodyFn; 4],
}

static KERNELS: &[DepthwiseWgrad] = &[
    #[cfg(target_arch = "x86_64")]
    DepthwiseWgrad {
        name: "depthwise_wgrad_avx512",
        isa: Isa::Avx512,
        bodies: [avx512::<3, 1>, avx512::<5, 1>, avx512::<3, 2>, avx512::<5, 2>],
    },
    #[cfg(target_arch = "x86_64")]
    DepthwiseWgrad {
        name: "depthwise_wgrad_avx2",
        isa: Isa::Avx2,
        bodies: [avx2::<3, 1>, avx2::<5, 1>, avx2::<3, 2>, avx2::<5, 2>],
    },
    #[cfg(target_arch = "aarch64")]
    DepthwiseWgrad {
        name: "depthwise_wgrad_neon",
        isa: Isa::Neon,
        bodies: [neon::<3, 1>, neon::<5, 1>, neon::<3, 2>, neon::<5, 2>],
    },
    DepthwiseWgrad {
        name: "depthwise_wgrad_scalar",
        isa: Isa::Scalar,
        bodies: [scalar::<3, 1>, scalar::<5, 1>, scalar::<3, 2>, scalar::<5, 2>],
    },
];

impl DepthwiseWgrad {
    /// The kernel for `isa`, or for the best ISA below it that this CPU
    /// runs (so the result is always safe to run here).
    pub fn for_isa(isa: Isa) -> &'static DepthwiseWgrad {
        kernel_for(KERNELS, isa, |k| k.isa)
    }

    /// Name carrying the ISA, e.g. `depthwise_wgrad_avx512`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the kernel handles geometry `g`: one input channel, a
    /// square 3x3 or 5x5 filter, stride 1 or 2 on both axes, unit dilation.
    pub fn supports(g: &Geometry) -> bool {
        g.c == 1 && g.fh == g.fw && matches!(g.fh, 3 | 5) && matches!(g.stride, [1, 1] | [2, 2]) && g.dilation == [1, 1]
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
        let body = self.bodies[usize::from(g.fh == 5) + 2 * usize::from(g.stride[0] == 2)];
        // SAFETY: `for_isa` only hands out kernels this CPU supports; the
        // job passed `check`, and the body matches g.fh and the stride.
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
            for (f, st) in [(3, 1), (5, 1), (3, 2), (5, 2)] {
                // Miri runs a plane smaller than the filter and one wider
                // than a vector.
                let planes: &[(usize, usize)] = if cfg!(miri) {
                    &[(2, 3), (6, 17)]
                } else {
                    &[(1, 1), (2, 3), (4, 7), (9, 15), (5, 16), (6, 17), (3, 33), (7, 40), (8, 65), (6, 70)]
                };
                for &(h, w) in planes {
                    for (pt, pl, pb, pr) in [(0, 0, 0, 0), (1, 1, 1, 1), (2, 2, 2, 2), (0, 2, 1, 0), (2, 0, 0, 1)] {
                        let (hp, wp) = (h + pt + pb, w + pl + pr);
                        if hp < f || wp < f {
                            continue;
                        }
                        let (oh, ow) = ((hp - f) / st + 1, (wp - f) / st + 1);
                        let g = Geometry {
                            c: 1,
                            h,
                            w,
                            fh: f,
                            fw: f,
                            stride: [st, st],
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
                                        let (iy, ix) = (
                                            (st * oy + fy) as isize - pt as isize,
                                            (st * ox + fx) as isize - pl as isize,
                                        );
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
