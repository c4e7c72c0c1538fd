//! The input gradient of a strided convolution as forward convolutions, one
//! per stride phase of dX.
//!
//! Along one axis, dX row `iy = s*t + e` (phase `e < s`) receives
//! `dY[oy] * W[fy]` for the taps with `oy*s + fy*d = iy + pad`: the taps
//! `fy = fy0 + m*P` (`P = s / gcd(s, d)`) whose `fy*d` has the right
//! remainder, each at `oy = t + B - m*D` (`D = d / gcd(s, d)`). Over `t`
//! that is a unit-stride convolution of dY with the sub-filter of those taps
//! (flipped), dilation `D`: the forward pass runs it (implicit GEMM), into
//! a buffer whose rows are then spread over the phase's rows of dX. Every
//! product is one of the gradient's: the stride's zeros are never
//! multiplied.
//!
//! Layers with few input channels per group (a 3-channel stem) would give
//! each phase's convolution too few output channels (the GEMM's rows) to
//! fill a microkernel tile. There the column phases of a row phase are
//! stacked as the output channels of one convolution whose window spans
//! the union of their taps (zeros where a phase lacks one, when `D = 1`):
//! a few wasted products buy full tiles.

use rayon::prelude::*;

use crate::parallel::InlineOnOneThread;

use crate::activation::Activation;
use crate::conv::Conv2dPlan;
use crate::error::Result;
use crate::params::{Conv2dParams, Padding};

/// One phase along one axis.
#[derive(Clone, Copy, Debug)]
struct AxisPhase {
    /// The phase `e < s`.
    e: usize,
    /// First tap of the phase and the tap step `P`.
    first: usize,
    step: usize,
    /// Taps in the phase (0: the phase gets no gradient).
    taps: usize,
    /// Dilation `D` of the sub-filter.
    dilation: usize,
    /// `B`: dY offset (from `t`) of the phase's first tap.
    b: isize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl AxisPhase {
    /// Phase `e` of an axis with stride `s`, dilation `d`, `f` taps and
    /// `pad` before.
    fn new(e: usize, s: usize, d: usize, f: usize, pad: usize) -> AxisPhase {
        let g = gcd(s, d);
        let (step, dilation) = (s / g, d / g);
        let want = (e + pad) % s;
        let Some(first) = (0..f).find(|&fy| fy * d % s == want) else {
            return AxisPhase { e, first: 0, step, taps: 0, dilation, b: 0 };
        };
        let taps = (f - 1 - first) / step + 1;
        // B = (e + pad - first*d) / s, exact.
        let b = ((e + pad) as isize - (first * d) as isize) / s as isize;
        AxisPhase { e, first, step, taps, dilation, b }
    }

    /// The lowest dY offset (from `t`) the phase reads: its last tap's.
    fn lo(&self) -> isize {
        self.b - ((self.taps - 1) * self.dilation) as isize
    }
}

/// Phases of one axis computed by one convolution (one phase, or stacked
/// phases of `D = 1`): its window over dY runs from offset `lo` (from `t`)
/// in `kernel` steps of `dilation`.
#[derive(Clone, Debug)]
struct AxisStack {
    members: Vec<AxisPhase>,
    lo: isize,
    kernel: usize,
    dilation: usize,
}

impl AxisStack {
    /// The window of `members` (each with taps; several only with `D = 1`).
    fn new(members: Vec<AxisPhase>) -> AxisStack {
        let lo = members.iter().map(AxisPhase::lo).min().expect("at least one phase");
        let hi = members.iter().map(|m| m.b).max().expect("at least one phase");
        let dilation = members[0].dilation;
        debug_assert!(members.len() == 1 || dilation == 1);
        let kernel = (hi - lo) as usize / dilation + 1;
        AxisStack { members, lo, kernel, dilation }
    }

    /// Padding before dY: the window's reach before `t = 0`.
    fn pad(&self) -> usize {
        (-self.lo).max(0) as usize
    }

    /// Leading outputs of the convolution before `t = 0` (where the exact
    /// padding would be negative).
    fn lead(&self) -> usize {
        self.lo.max(0) as usize
    }

    /// Member `j`'s filter tap at window index `i` (`None`: a zero).
    fn tap(&self, j: usize, i: usize) -> Option<usize> {
        let m = &self.members[j];
        let off = self.lo + (i * self.dilation) as isize - m.lo();
        let ix = usize::try_from(off).ok().filter(|&ix| ix % m.dilation == 0)? / m.dilation;
        (ix < m.taps).then(|| m.first + (m.taps - 1 - ix) * m.step)
    }

    /// Padding after dY, so the convolution covers every phase of any dX
    /// plane of this layer: a forward input (up to `OH*s + d*(f-1) - pads`)
    /// or a transposed convolution's, `output_padding` past the smallest.
    fn pad_after(&self, s: usize, d: usize, f: usize, pads: usize, output_padding: usize) -> usize {
        // Rows of phase e past OH: ceil((Hmax - e)/s) - OH, Hmax - OH*s =
        // d*(f-1) - pads + max(s, op+1) - s.
        let slack = (d * (f - 1) + s.max(output_padding + 1)) as isize - (pads + s) as isize;
        let width = ((self.kernel - 1) * self.dilation) as isize;
        let need = |e: usize| {
            let extra =
                (slack - e as isize).div_euclid(s as isize) + isize::from((slack - e as isize) % s as isize != 0);
            self.lead() as isize + extra - self.pad() as isize + width
        };
        self.members.iter().map(|m| need(m.e)).max().unwrap_or(0).max(0) as usize
    }
}

/// One convolution of the phases: row phase `ey`, the column phases of
/// `x` stacked as its output channels (`[group][phase][channel]`).
#[derive(Debug)]
struct Phase {
    ey: AxisStack,
    x: AxisStack,
    plan: Conv2dPlan,
}

/// The forward convolutions for every phase of a strided layer.
#[derive(Debug)]
pub(super) struct Phases {
    stride: [usize; 2],
    /// Channels per group of dX.
    cg: usize,
    phases: Vec<Phase>,
    /// Phases `[ey, ex]` no tap reaches: the bias (or zero).
    empty: Vec<[usize; 2]>,
    bias: Option<Vec<f32>>,
}

/// Fewest output channels per group of a stacked convolution (its GEMM's
/// rows).
const STACK_MIN_ROWS: usize = 6;

/// Most products a stacked convolution may form per real one (its window
/// spans every member's taps). Measured on Zen 5 against the GEMM and
/// col2im path (column-phase layout), GFLOP/s at 1 / 2 threads: r50_stem
/// (7x7 stride 2, 8 products per 7) 165 / 295 stacked, 152 / 209 by
/// col2im; 5x5 stride 2 (6 per 5, C = 4) 99 / 170 stacked, 124 / 250 by
/// col2im; 3x3 stride 2 (4 per 3) and 11x11 stride 4 (16 per 11) lose too.
const MAX_STACK_WASTE: f32 = 1.15;

impl Phases {
    /// The phase convolutions of `p` (weights `w`, optional bias per input
    /// channel), for dX planes at most `output_padding` larger than the
    /// forward input; `None` where the GEMM and col2im path suits the shape
    /// better: too few input channels per group
    /// ([`by_forward`](super::by_forward)) and column phases that do not
    /// stack into enough.
    pub fn new(
        p: &Conv2dParams,
        w: &[f32],
        bias: Option<&[f32]>,
        output_padding: [usize; 2],
    ) -> Result<Option<Phases>> {
        let [k, cg, fh, fw] = p.weight_shape();
        let kg = k / p.groups;
        let (s, d) = (p.stride, p.dilation);
        let xs: Vec<AxisPhase> =
            (0..s[1]).map(|e| AxisPhase::new(e, s[1], d[1], fw, p.padding.left)).filter(|a| a.taps > 0).collect();
        // Few channels: the column phases stack where they share a lattice
        // (D = 1) into enough rows.
        let stack = !super::by_forward(p) && xs.len() > 1 && xs[0].dilation == 1;
        let products = |x: &AxisStack| (x.members.len() * x.kernel) as f32;
        let stacks_enough = stack
            && cg * xs.len() >= STACK_MIN_ROWS
            && products(&AxisStack::new(xs.clone()))
                <= MAX_STACK_WASTE * xs.iter().map(|a| a.taps).sum::<usize>() as f32;
        if !(super::by_forward(p) || stacks_enough) {
            return Ok(None);
        }
        let x_stacks: Vec<AxisStack> = if stack {
            vec![AxisStack::new(xs.clone())]
        } else {
            xs.iter().map(|&a| AxisStack::new(vec![a])).collect()
        };
        let mut phases = Vec::with_capacity(s[0] * x_stacks.len());
        let mut empty = Vec::new();
        for ey in 0..s[0] {
            let py = AxisPhase::new(ey, s[0], d[0], fh, p.padding.top);
            if py.taps == 0 {
                empty.extend((0..s[1]).map(|ex| [ey, ex]));
                continue;
            }
            empty.extend((0..s[1]).filter(|&ex| xs.iter().all(|a| a.e != ex)).map(|ex| [ey, ex]));
            let ey = AxisStack::new(vec![py]);
            for x in &x_stacks {
                let nx = x.members.len();
                // W'[(g, j, c)][kk][iy][ix] = W[g*kg + kk][c][fy][fx], the
                // phase's taps flipped (zero where member j has none).
                let mut sub = Vec::with_capacity(p.in_channels * nx * kg * ey.kernel * x.kernel);
                for g in 0..p.groups {
                    for j in 0..nx {
                        for c in 0..cg {
                            for kk in 0..kg {
                                let filter = &w[((g * kg + kk) * cg + c) * fh * fw..][..fh * fw];
                                for iy in 0..ey.kernel {
                                    let fy = ey.tap(0, iy);
                                    for ix in 0..x.kernel {
                                        let tap = fy.zip(x.tap(j, ix));
                                        sub.push(tap.map_or(0.0, |(fy, fx)| filter[fy * fw + fx]));
                                    }
                                }
                            }
                        }
                    }
                }
                let stacked_bias: Option<Vec<f32>> = bias.map(|b| {
                    (0..p.groups)
                        .flat_map(|g| (0..nx).flat_map(move |_| b[g * cg..(g + 1) * cg].iter().copied()))
                        .collect()
                });
                let q = Conv2dParams {
                    in_channels: k,
                    out_channels: p.in_channels * nx,
                    kernel: [ey.kernel, x.kernel],
                    stride: [1, 1],
                    dilation: [ey.dilation, x.dilation],
                    padding: Padding {
                        top: ey.pad(),
                        bottom: ey.pad_after(s[0], d[0], fh, p.padding.top + p.padding.bottom, output_padding[0]),
                        left: x.pad(),
                        right: x.pad_after(s[1], d[1], fw, p.padding.left + p.padding.right, output_padding[1]),
                    },
                    groups: p.groups,
                    strict: false,
                };
                let plan = Conv2dPlan::new(&q, &sub, stacked_bias.as_deref(), Activation::None)?;
                phases.push(Phase { ey: ey.clone(), x: x.clone(), plan });
            }
        }
        Ok(Some(Phases { stride: s, cg, phases, empty, bias: bias.map(<[f32]>::to_vec) }))
    }

    /// dX (`[N, C, H, W]` with `input = [H, W]`) for `dy`; `false` where a
    /// phase's convolution would not cover its rows, which the padding after
    /// is sized to rule out (nothing written), or where a stacked run met a
    /// non-finite value (the caller's path then rewrites all of `dx`).
    pub fn run(&self, dy: &[f32], dy_shape: [usize; 4], input: [usize; 2], dx: &mut [f32]) -> bool {
        // Every convolution and copy below is a parallel pass: run them all
        // on the pool's threads, so the caller hands over to the pool once
        // rather than once per pass (about 40 us each on a 2-core VM).
        if crate::parallel::one_thread() {
            self.run_passes(dy, dy_shape, input, dx)
        } else {
            rayon::scope(|_| self.run_passes(dy, dy_shape, input, dx))
        }
    }

    /// [`run`](Self::run)'s passes, on whichever thread calls it.
    fn run_passes(&self, dy: &[f32], dy_shape: [usize; 4], input: [usize; 2], dx: &mut [f32]) -> bool {
        let [n, _, _, _] = dy_shape;
        let (s, [h, w]) = (self.stride, input);
        let plane = h * w;
        let c = dx.len() / (n * plane).max(1);
        let cg = self.cg;
        // Rows (columns) of phase e, and each convolution's output plane.
        let count = |e: usize, s: usize, len: usize| if e < len { (len - e).div_ceil(s) } else { 0 };
        let mut shapes = Vec::with_capacity(self.phases.len());
        for ph in &self.phases {
            let ty = count(ph.ey.members[0].e, s[0], h);
            let tx = ph.x.members.iter().map(|m| count(m.e, s[1], w)).max().unwrap_or(0);
            match ph.plan.output_shape(dy_shape) {
                Ok([_, _, oh, ow]) if oh >= ph.ey.lead() + ty && ow >= ph.x.lead() + tx => shapes.push([oh, ow]),
                _ => return false,
            }
        }
        for &[ey, ex] in &self.empty {
            let t = [count(ey, s[0], h), count(ex, s[1], w)];
            if t[0] == 0 || t[1] == 0 {
                continue;
            }
            dx.par_chunks_mut(plane).enumerate().inline_on_one_thread().for_each(|(i, xp)| {
                let v = self.bias.as_ref().map_or(0.0, |b| b[i % c]);
                for y in 0..t[0] {
                    let row = &mut xp[(ey + y * s[0]) * w..][..w];
                    row[ex..].iter_mut().step_by(s[1]).take(t[1]).for_each(|o| *o = v);
                }
            });
        }
        for (ph, &[oh, ow]) in self.phases.iter().zip(&shapes) {
            let ey = ph.ey.members[0].e;
            let (ty, nx) = (count(ey, s[0], h), ph.x.members.len());
            if ty == 0 {
                continue;
            }
            let mut tmp = super::scratch(n * c * nx * oh * ow);
            ph.plan.run(dy, dy_shape, &mut tmp).expect("shapes checked above");
            let (ly, lx) = (ph.ey.lead(), ph.x.lead());
            dx.par_chunks_mut(plane).enumerate().inline_on_one_thread().for_each(|(i, xp)| {
                // dX channel (img, g, ch) reads the convolution's channels
                // (img, g, j, ch) for each column phase j.
                let (img, g, ch) = (i / c, i % c / cg, i % cg);
                for (j, m) in ph.x.members.iter().enumerate() {
                    let tx = count(m.e, s[1], w);
                    if tx == 0 {
                        continue;
                    }
                    let tp = &tmp[(((img * c / cg + g) * nx + j) * cg + ch) * oh * ow..][..oh * ow];
                    for y in 0..ty {
                        let src = &tp[(ly + y) * ow + lx..][..tx];
                        let row = &mut xp[(ey + y * s[0]) * w..][..w];
                        row[m.e..].iter_mut().step_by(s[1]).zip(src).for_each(|(o, v)| *o = *v);
                    }
                }
            });
            super::unscratch([tmp]);
        }
        // A stacked convolution also multiplies dY by the zero taps of the
        // phases it stacks: 0 x inf is NaN where the reference forms no
        // product. Such a dX (rare: only from non-finite input) is redone
        // by the caller's path, which forms only real products.
        let stacked = self.phases.iter().any(|ph| ph.x.members.len() > 1);
        !stacked || super::all_finite(dx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The padding after covers every phase of every input plane a
    /// gradient can have (so `run` never falls back), stacked or not,
    /// with or without output padding; and few-channel layers stack.
    #[test]
    fn phases_cover_every_plane() {
        let layers = [
            (Conv2dParams::new(3, 8, [7, 7]).stride(2).padding(3), [0, 0], true),
            (Conv2dParams::new(3, 8, [9, 9]).stride(2).padding(4), [1, 1], true),
            (Conv2dParams::new(4, 6, [3, 8]).stride_hw([3, 2]).padding_with(Padding::new(0, 2, 0, 1)), [2, 1], true),
            (Conv2dParams::new(8, 4, [3, 3]).stride(2).dilation(2).padding(1), [1, 1], false),
            (Conv2dParams::new(16, 6, [5, 2]).stride_hw([2, 3]).dilation_hw([3, 1]).groups(2), [0, 2], false),
        ];
        // Stacks that would waste too many products: the col2im path instead.
        for p in [
            Conv2dParams::new(4, 8, [5, 5]).stride(2).padding(2),
            Conv2dParams::new(3, 8, [11, 11]).stride(4).padding(2),
        ] {
            assert!(Phases::new(&p, &vec![1.0; p.weight_count()], None, [0, 0]).unwrap().is_none(), "{p:?}");
        }
        for (p, output_padding, stacked) in layers {
            let w = vec![1.0; p.weight_count()];
            let phases = Phases::new(&p, &w, None, output_padding).unwrap().expect("runs by phases");
            assert_eq!(phases.phases.iter().any(|ph| ph.x.members.len() > 1), stacked, "{p:?}");
            for oh in 1..5 {
                for ow in 1..5 {
                    let ys = [1, p.out_channels, oh, ow];
                    // Every forward input of this output, and larger by the output padding.
                    let span = |o: usize, i: usize, f: usize, pads: usize| {
                        let min = ((o - 1) * p.stride[i] + p.dilation[i] * (f - 1) + 1).saturating_sub(pads).max(1);
                        min..min + p.stride[i].max(output_padding[i] + 1)
                    };
                    for h in span(oh, 0, p.kernel[0], p.padding.top + p.padding.bottom) {
                        for wd in span(ow, 1, p.kernel[1], p.padding.left + p.padding.right) {
                            let mut dx = vec![0.0; p.in_channels * h * wd];
                            let dy = vec![1.0; p.out_channels * oh * ow];
                            assert!(phases.run(&dy, ys, [h, wd], &mut dx), "{p:?} {ys:?} -> {h}x{wd}");
                        }
                    }
                }
            }
        }
    }
}
