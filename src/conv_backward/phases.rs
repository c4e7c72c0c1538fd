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

use rayon::prelude::*;

use crate::activation::Activation;
use crate::conv::Conv2dPlan;
use crate::error::Result;
use crate::params::{Conv2dParams, Padding};

/// One phase along one axis.
#[derive(Clone, Copy, Debug)]
struct AxisPhase {
    /// First tap of the phase and the tap step `P`.
    first: usize,
    step: usize,
    /// Taps in the phase (0: the phase gets no gradient).
    taps: usize,
    /// Dilation `D` of the sub-filter.
    dilation: usize,
    /// Padding before, and the leading outputs of the padded convolution
    /// that lie before the phase's first row (where the exact padding would
    /// be negative).
    pad: usize,
    lead: usize,
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
            return AxisPhase { first: 0, step, taps: 0, dilation, pad: 0, lead: 0 };
        };
        let taps = (f - 1 - first) / step + 1;
        // B = (e + pad - first*d) / s, exact; the padding (taps-1)*D - B.
        let b = (e + pad) as isize - (first * d) as isize;
        let exact = ((taps - 1) * dilation) as isize - b / s as isize;
        AxisPhase { first, step, taps, dilation, pad: exact.max(0) as usize, lead: (-exact).max(0) as usize }
    }
}

/// One phase of dX: its offsets `e` and the convolution that computes it
/// (`None` where no tap reaches it).
#[derive(Debug)]
struct Phase {
    e: [usize; 2],
    lead: [usize; 2],
    plan: Option<Conv2dPlan>,
}

/// The forward convolutions for every phase of a strided layer.
#[derive(Debug)]
pub(super) struct Phases {
    stride: [usize; 2],
    phases: Vec<Phase>,
    bias: Option<Vec<f32>>,
}

impl Phases {
    /// The phase convolutions of `p` (weights `w`, optional bias per input
    /// channel), for dX planes at most `output_padding` larger than the
    /// forward input; `None` where the GEMM and col2im path suits the shape
    /// better ([`by_forward`](super::by_forward)).
    pub fn new(
        p: &Conv2dParams,
        w: &[f32],
        bias: Option<&[f32]>,
        output_padding: [usize; 2],
    ) -> Result<Option<Phases>> {
        let [k, cg, fh, fw] = p.weight_shape();
        let kg = k / p.groups;
        if !super::by_forward(p) {
            return Ok(None);
        }
        let (s, d) = (p.stride, p.dilation);
        // Padding after: enough rows for the largest phase any dX plane of
        // this layer can have (the outputs past it are dropped).
        let after = |i: usize, f: usize, pb: usize| {
            let reach = d[i] * (f - 1) + s[i].max(d[i]).max(output_padding[i] + 1);
            reach.saturating_sub(pb).div_ceil(s[i]) + 1
        };
        let (after_y, after_x) = (after(0, fh, p.padding.bottom), after(1, fw, p.padding.right));
        let mut phases = Vec::with_capacity(s[0] * s[1]);
        for ey in 0..s[0] {
            for ex in 0..s[1] {
                let py = AxisPhase::new(ey, s[0], d[0], fh, p.padding.top);
                let px = AxisPhase::new(ex, s[1], d[1], fw, p.padding.left);
                let lead = [py.lead, px.lead];
                if py.taps == 0 || px.taps == 0 {
                    phases.push(Phase { e: [ey, ex], lead, plan: None });
                    continue;
                }
                // W'[g*cg + c][kk][my][mx] = W[g*kg + kk][c][fy][fx], the
                // phase's taps flipped.
                let (my, mx) = (py.taps, px.taps);
                let mut sub = Vec::with_capacity(p.in_channels * kg * my * mx);
                for ci in 0..p.in_channels {
                    let (g, c) = (ci / cg, ci % cg);
                    for kk in 0..kg {
                        let filter = &w[((g * kg + kk) * cg + c) * fh * fw..][..fh * fw];
                        for iy in 0..my {
                            let fy = py.first + (my - 1 - iy) * py.step;
                            for ix in 0..mx {
                                sub.push(filter[fy * fw + px.first + (mx - 1 - ix) * px.step]);
                            }
                        }
                    }
                }
                let q = Conv2dParams {
                    in_channels: k,
                    out_channels: p.in_channels,
                    kernel: [my, mx],
                    stride: [1, 1],
                    dilation: [py.dilation, px.dilation],
                    padding: Padding { top: py.pad, bottom: after_y, left: px.pad, right: after_x },
                    groups: p.groups,
                    strict: false,
                };
                let plan = Conv2dPlan::new(&q, &sub, bias, Activation::None)?;
                phases.push(Phase { e: [ey, ex], lead, plan: Some(plan) });
            }
        }
        Ok(Some(Phases { stride: s, phases, bias: bias.map(<[f32]>::to_vec) }))
    }

    /// dX (`[N, C, H, W]` with `input = [H, W]`) for `dy`; `false` (and
    /// nothing written) where a phase's convolution would not cover its
    /// rows, which the padding after is sized to rule out.
    pub fn run(&self, dy: &[f32], dy_shape: [usize; 4], input: [usize; 2], dx: &mut [f32]) -> bool {
        let [n, _, _, _] = dy_shape;
        let (s, [h, w]) = (self.stride, input);
        let plane = h * w;
        let c = dx.len() / (n * plane).max(1);
        // Rows and columns of each phase, and the convolution's output shape.
        let count = |e: usize, s: usize, len: usize| if e < len { (len - e).div_ceil(s) } else { 0 };
        let mut shapes = Vec::with_capacity(self.phases.len());
        for ph in &self.phases {
            let t = [count(ph.e[0], s[0], h), count(ph.e[1], s[1], w)];
            let out = match &ph.plan {
                Some(plan) => match plan.output_shape(dy_shape) {
                    Ok([_, _, oh, ow]) if oh >= ph.lead[0] + t[0] && ow >= ph.lead[1] + t[1] => [oh, ow],
                    _ => return false,
                },
                None => [0, 0],
            };
            shapes.push((t, out));
        }
        for (ph, &(t, [oh, ow])) in self.phases.iter().zip(&shapes) {
            if t[0] == 0 || t[1] == 0 {
                continue;
            }
            let Some(plan) = &ph.plan else {
                // No tap reaches this phase: the bias (or zero).
                dx.par_chunks_mut(plane).enumerate().for_each(|(i, xp)| {
                    let v = self.bias.as_ref().map_or(0.0, |b| b[i % c]);
                    for y in 0..t[0] {
                        let row = &mut xp[(ph.e[0] + y * s[0]) * w..][..w];
                        row[ph.e[1]..].iter_mut().step_by(s[1]).take(t[1]).for_each(|o| *o = v);
                    }
                });
                continue;
            };
            let mut tmp = vec![0.0; n * c * oh * ow];
            plan.run(dy, dy_shape, &mut tmp).expect("shapes checked above");
            dx.par_chunks_mut(plane).zip(tmp.par_chunks(oh * ow)).for_each(|(xp, tp)| {
                for y in 0..t[0] {
                    let src = &tp[(ph.lead[0] + y) * ow + ph.lead[1]..][..t[1]];
                    let row = &mut xp[(ph.e[0] + y * s[0]) * w..][..w];
                    row[ph.e[1]..].iter_mut().step_by(s[1]).zip(src).for_each(|(o, v)| *o = *v);
                }
            });
        }
        true
    }
}
