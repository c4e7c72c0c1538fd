//! The convolution backward passes: the references against finite
//! differences, the fast ops against the references, the adjoint identity,
//! reproducibility of the weight gradient, and bad inputs.

use proptest::prelude::*;
use receptive::{
    Conv2dBackwardDataPlan, Conv2dParams, Error, Padding, conv2d_backward_bias, conv2d_backward_data,
    conv2d_backward_weights, conv2d_backward_weights_into, reference,
};

use receptive::reference::pseudo_random as fill;

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Each element within the bound for a sum of `len` products whose absolute
/// values add up to `abs_sum[i]`.
fn assert_close(what: &str, got: &[f32], want: &[f32], abs_sum: &[f32], len: usize) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((g, w), s)) in got.iter().zip(want).zip(abs_sum).enumerate() {
        let tol = reference::tolerance(len, *s);
        assert!((g - w).abs() <= tol, "{what} at {i}: {g} vs {w} (tol {tol})");
    }
}

/// Forward convolution in f64 with an explicit output plane: the function
/// whose finite differences check the gradient references.
fn conv64(x: &[f64], xs: [usize; 4], w: &[f64], bias: Option<&[f64]>, p: &Conv2dParams, out: [usize; 2]) -> Vec<f64> {
    let [n, c_in, h, wd] = xs;
    let [k, cg, fh, fw] = p.weight_shape();
    let kg = k / p.groups;
    let [oh, ow] = out;
    let mut y = vec![0.0; n * k * oh * ow];
    for b in 0..n {
        for f in 0..k {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |v| v[f]);
                    for c in 0..cg {
                        for ky in 0..fh {
                            for kx in 0..fw {
                                let iy = (oy * p.stride[0] + ky * p.dilation[0]) as i64 - p.padding.top as i64;
                                let ix = (ox * p.stride[1] + kx * p.dilation[1]) as i64 - p.padding.left as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 {
                                    continue;
                                }
                                let ci = (f / kg) * cg + c;
                                let xi = ((b * c_in + ci) * h + iy as usize) * wd + ix as usize;
                                acc += x[xi] * w[((f * cg + c) * fh + ky) * fw + kx];
                            }
                        }
                    }
                    y[((b * k + f) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    y
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Central differences of `f` at `z`; `f` is linear, so they are exact up
/// to f64 rounding.
fn finite_diff(z: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let h = 0.25;
    (0..z.len())
        .map(|i| {
            let (mut up, mut down) = (z.to_vec(), z.to_vec());
            up[i] += h;
            down[i] -= h;
            (f(&up) - f(&down)) / (2.0 * h)
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The reference rounds an exact f64 sum once to f32.
fn assert_rounded(what: &str, got: &[f32], exact: &[f64]) {
    for (i, (g, e)) in got.iter().zip(exact).enumerate() {
        let tol = f32::EPSILON as f64 * e.abs() + 1e-12;
        assert!((*g as f64 - e).abs() <= tol, "{what} at {i}: {g} vs {e}");
    }
}

#[test]
fn references_match_finite_differences() {
    let cases = [
        (Conv2dParams::new(2, 3, [2, 3]), [2, 2, 4, 5]),
        (Conv2dParams::new(4, 2, [3, 2]).stride_hw([2, 1]).dilation_hw([1, 2]).groups(2), [1, 4, 6, 5]),
        (Conv2dParams::new(3, 3, [3, 3]).padding_with(Padding::new(1, 0, 2, 1)).stride(2).groups(3), [2, 3, 4, 4]),
    ];
    for (i, (p, xs)) in cases.into_iter().enumerate() {
        let ys = p.output_shape(xs).unwrap();
        let out = [ys[2], ys[3]];
        let (x, w, b) = (fill(xs.iter().product(), 1), fill(p.weight_count(), 2), fill(p.out_channels, 3));
        let dy = fill(ys.iter().product(), 4);
        let (x64, w64, b64, dy64) = (to64(&x), to64(&w), to64(&b), to64(&dy));
        let loss = |x: &[f64], w: &[f64], b: &[f64]| dot(&conv64(x, xs, w, Some(b), &p, out), &dy64);
        let dx = finite_diff(&x64, |x| loss(x, &w64, &b64));
        let dw = finite_diff(&w64, |w| loss(&x64, w, &b64));
        let db = finite_diff(&b64, |b| loss(&x64, &w64, b));
        assert_rounded(&format!("case {i} dx"), &reference::conv2d_backward_data(&dy, ys, &w, &p, xs).unwrap(), &dx);
        assert_rounded(&format!("case {i} dw"), &reference::conv2d_backward_weights(&x, xs, &dy, &p).unwrap(), &dw);
        assert_rounded(&format!("case {i} db"), &reference::conv2d_backward_bias(&dy, ys).unwrap(), &db);
    }
}

/// One convolution case: parameters and input shape.
#[derive(Clone, Debug)]
struct Case {
    p: Conv2dParams,
    xs: [usize; 4],
}

/// Random N, C, H, W, K, FH, FW, asymmetric padding, stride, dilation,
/// groups (depthwise included), with an input the window fits.
fn cases() -> impl Strategy<Value = Case> {
    let channels = (1usize..4, 1usize..4, 1usize..4, any::<bool>());
    let window = (1usize..4, 1usize..4, 1usize..4, 1usize..4, 1usize..3, 1usize..3);
    let pad = (0usize..3, 0usize..3, 0usize..3, 0usize..3);
    let rest = (1usize..3, 0usize..6, 0usize..6);
    (channels, window, pad, rest).prop_map(|((groups, cg, kg, depthwise), (fh, fw, sh, sw, dh, dw), pad, rest)| {
        let (cg, kg, groups) = if depthwise { (1, kg, groups + 2) } else { (cg, kg, groups) };
        let (pt, pb, pl, pr) = pad;
        let (n, eh, ew) = rest;
        let span = |f: usize, d: usize| (f - 1) * d + 1;
        let h = span(fh, dh).saturating_sub(pt + pb).max(1) + eh;
        let w = span(fw, dw).saturating_sub(pl + pr).max(1) + ew;
        let p = Conv2dParams::new(groups * cg, groups * kg, [fh, fw])
            .stride_hw([sh, sw])
            .dilation_hw([dh, dw])
            .padding_with(Padding::new(pt, pb, pl, pr))
            .groups(groups);
        Case { p, xs: [n, groups * cg, h, w] }
    })
}

/// Depthwise cases the in-place weight-gradient kernel takes: square 3x3
/// or 5x5 filters, strides 1 or 2, unit dilation, padding 0..2 per side, one or
/// two filters per channel, planes from smaller than the filter to past
/// two vectors of every ISA.
fn depthwise_cases() -> impl Strategy<Value = Case> {
    let shape = (1usize..5, 1usize..3, prop_oneof![Just(3usize), Just(5)], 1usize..3, 1usize..3);
    let pad = (0usize..3, 0usize..3, 0usize..3, 0usize..3);
    let plane = (0usize..12, 0usize..40);
    (shape, pad, plane).prop_map(|((groups, kg, f, n, stride), (pt, pb, pl, pr), (eh, ew))| {
        let h = f.saturating_sub(pt + pb).max(1) + eh;
        let w = f.saturating_sub(pl + pr).max(1) + ew;
        let p = Conv2dParams::new(groups, groups * kg, [f, f])
            .stride(stride)
            .padding_with(Padding::new(pt, pb, pl, pr))
            .groups(groups);
        Case { p, xs: [n, groups, h, w] }
    })
}

/// Cases for the weight gradient's band path: 64 or 56 filters per group
/// (whole NR-wide panels of every kernel, or most of one), two or more
/// channels per group and outputs of 256 pixels or more (most cases),
/// with the rest of the parameters random.
fn band_cases() -> impl Strategy<Value = Case> {
    let channels = (1usize..3, 2usize..4, prop_oneof![Just(64usize), Just(56)]);
    let window = (1usize..4, 1usize..4, 1usize..3, 1usize..3, 1usize..3, 1usize..3);
    let pad = (0usize..3, 0usize..3, 0usize..3, 0usize..3);
    let rest = (1usize..3, 16usize..28, 16usize..28);
    (channels, window, pad, rest).prop_map(|((groups, cg, kg), (fh, fw, sh, sw, dh, dw), pad, (n, h, w))| {
        let (pt, pb, pl, pr) = pad;
        let p = Conv2dParams::new(groups * cg, groups * kg, [fh, fw])
            .stride_hw([sh, sw])
            .dilation_hw([dh, dw])
            .padding_with(Padding::new(pt, pb, pl, pr))
            .groups(groups);
        Case { p, xs: [n, groups * cg, h * sh, w * sw] }
    })
}

/// Cases whose input gradient runs as forward convolutions (one, or one
/// per stride phase): 8 to 10 input channels per group, the rest random.
fn forward_cases() -> impl Strategy<Value = Case> {
    (cases(), 8usize..11).prop_map(|(c, cg)| {
        let groups = c.p.groups;
        let p = Conv2dParams { in_channels: groups * cg, ..c.p };
        Case { p, xs: [c.xs[0], groups * cg, c.xs[2], c.xs[3]] }
    })
}

/// Cases whose input gradient stacks the column phases of a stride into
/// one forward convolution: 3 to 7 input channels per group, a column
/// stride of 2 or 3 without dilation, the rest random.
fn stacked_cases() -> impl Strategy<Value = Case> {
    (cases(), 3usize..8, 2usize..4).prop_map(|(c, cg, sw)| {
        let groups = if c.p.groups > 2 { 1 } else { c.p.groups };
        let kg = c.p.out_channels / c.p.groups;
        let p = Conv2dParams {
            in_channels: groups * cg,
            out_channels: groups * kg,
            groups,
            stride: [c.p.stride[0], sw],
            dilation: [c.p.dilation[0], 1],
            ..c.p
        };
        // Wide enough for the window at this stride.
        let w = c.xs[3].max(p.kernel[1]) + sw;
        Case { p, xs: [c.xs[0], groups * cg, c.xs[2], w] }
    })
}

fn check_data(c: &Case, seed: u64) {
    let ys = c.p.output_shape(c.xs).unwrap();
    let (dy, w) = (fill(ys.iter().product(), seed), fill(c.p.weight_count(), seed + 1));
    let got = conv2d_backward_data(&dy, ys, &w, &c.p, c.xs).unwrap();
    let want = reference::conv2d_backward_data(&dy, ys, &w, &c.p, c.xs).unwrap();
    let bound = reference::conv2d_backward_data(&abs(&dy), ys, &abs(&w), &c.p, c.xs).unwrap();
    let [k, _, fh, fw] = c.p.weight_shape();
    assert_close(&format!("{c:?} dx"), &got, &want, &bound, k / c.p.groups * fh * fw);
}

fn check_weights(c: &Case, seed: u64) {
    let ys = c.p.output_shape(c.xs).unwrap();
    let (x, dy) = (fill(c.xs.iter().product(), seed), fill(ys.iter().product(), seed + 1));
    let got = conv2d_backward_weights(&x, c.xs, &dy, &c.p).unwrap();
    let want = reference::conv2d_backward_weights(&x, c.xs, &dy, &c.p).unwrap();
    let bound = reference::conv2d_backward_weights(&abs(&x), c.xs, &abs(&dy), &c.p).unwrap();
    assert_close(&format!("{c:?} dw"), &got, &want, &bound, ys[0] * ys[2] * ys[3]);
    // Into a buffer of NaN: every value overwritten, the same bits.
    let mut into = vec![f32::NAN; got.len()];
    conv2d_backward_weights_into(&x, c.xs, &dy, &c.p, &mut into).unwrap();
    assert!(got.iter().zip(&into).all(|(a, b)| a.to_bits() == b.to_bits()), "{c:?}: _into differs");
}

fn proptest_cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

    #[test]
    fn backward_data_matches_reference(c in cases(), seed in 0u64..1000) {
        check_data(&c, seed);
    }

    #[test]
    fn backward_data_by_forward_convolutions_matches_reference(c in forward_cases(), seed in 0u64..1000) {
        check_data(&c, seed);
    }

    #[test]
    fn backward_data_by_stacked_phases_matches_reference(c in stacked_cases(), seed in 0u64..1000) {
        check_data(&c, seed);
    }

    #[test]
    fn backward_weights_matches_reference(c in cases(), seed in 0u64..1000) {
        check_weights(&c, seed);
    }

    #[test]
    fn backward_weights_depthwise_in_place_matches_reference(c in depthwise_cases(), seed in 0u64..1000) {
        check_weights(&c, seed);
    }

    #[test]
    fn backward_weights_by_bands_matches_reference(c in band_cases(), seed in 0u64..1000) {
        check_weights(&c, seed);
    }

    #[test]
    fn backward_bias_matches_reference(c in cases(), seed in 0u64..1000) {
        let ys = c.p.output_shape(c.xs).unwrap();
        let dy = fill(ys.iter().product(), seed);
        let got = conv2d_backward_bias(&dy, ys).unwrap();
        let want = reference::conv2d_backward_bias(&dy, ys).unwrap();
        let bound = reference::conv2d_backward_bias(&abs(&dy), ys).unwrap();
        assert_close("db", &got, &want, &bound, ys[0] * ys[2] * ys[3]);
    }

    /// <conv(x), y> = <x, conv_backward_data(y)>, with conv from the reference.
    #[test]
    fn backward_data_is_the_adjoint(c in cases(), seed in 0u64..1000) {
        let ys = c.p.output_shape(c.xs).unwrap();
        let (x, w, y) = (fill(c.xs.iter().product(), seed), fill(c.p.weight_count(), seed + 1), fill(ys.iter().product(), seed + 2));
        let cx = reference::conv2d(&x, c.xs, &w, None, &c.p).unwrap();
        let dx = conv2d_backward_data(&y, ys, &w, &c.p, c.xs).unwrap();
        let lhs: f64 = cx.iter().zip(&y).map(|(a, b)| *a as f64 * *b as f64).sum();
        let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| *a as f64 * *b as f64).sum();
        // Both sides sum the same products |x*w*y|; each conv output and each
        // dx element carries its own reduction error.
        let abs_cx = reference::conv2d(&abs(&x), c.xs, &abs(&w), None, &c.p).unwrap();
        let scale: f64 = abs_cx.iter().zip(&y).map(|(a, b)| *a as f64 * b.abs() as f64).sum();
        let [k, cg, fh, fw] = c.p.weight_shape();
        let len = (k / c.p.groups).max(cg) * fh * fw + 1;
        let tol = 2.0 * reference::tolerance(len, scale as f32) as f64;
        prop_assert!((lhs - rhs).abs() <= tol, "{lhs} vs {rhs} (tol {tol})");
    }
}

/// Layers large enough for several channel blocks, pixel tiles, KC blocks
/// of both reductions, the 1x1 direct path, in pools of 1-3
/// threads.
#[test]
fn larger_layers_match_reference() {
    let cases = [
        Case { p: Conv2dParams::new(40, 24, [3, 3]).padding(1), xs: [1, 40, 23, 29] },
        Case { p: Conv2dParams::new(36, 20, [1, 1]), xs: [2, 36, 19, 21] },
        Case {
            p: Conv2dParams::new(16, 12, [3, 3]).stride(2).padding_with(Padding::new(0, 2, 1, 0)),
            xs: [3, 16, 27, 25],
        },
        Case { p: Conv2dParams::new(12, 12, [3, 3]).padding(1).groups(12), xs: [2, 12, 30, 31] },
        Case { p: Conv2dParams::new(18, 12, [2, 3]).dilation_hw([2, 1]).groups(3), xs: [2, 18, 24, 17] },
        // K/groups past one KC block of the backward-data GEMM.
        Case { p: Conv2dParams::new(6, 300, [2, 2]).stride(2), xs: [1, 6, 9, 9] },
        // The weight gradient's band path: several bands and chunks, several
        // NR panels, a 1x1 read in place.
        Case { p: Conv2dParams::new(20, 136, [3, 3]).padding(1), xs: [2, 20, 30, 40] },
        Case { p: Conv2dParams::new(24, 64, [1, 1]), xs: [1, 24, 20, 33] },
        // Too few filters for the band path: the GEMM over im2col^T, its
        // columns packed from two bands of each image.
        Case { p: Conv2dParams::new(64, 8, [3, 3]).padding(1), xs: [1, 64, 80, 80] },
        // Too few channels for the threads: output rows split into parts;
        // the input gradient by stacked column phases.
        Case { p: Conv2dParams::new(3, 64, [7, 7]).stride(2).padding(3), xs: [2, 3, 40, 36] },
        Case { p: Conv2dParams::new(3, 48, [11, 11]).stride(4).padding(2), xs: [1, 3, 45, 47] },
    ];
    for threads in 1..=3 {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for (i, c) in cases.iter().enumerate() {
            pool.install(|| {
                check_data(c, i as u64);
                check_weights(c, i as u64 + 7);
            });
        }
    }
}

#[test]
fn plan_reuses_packed_weights() {
    let p = Conv2dParams::new(8, 6, [3, 3]).padding(1).stride(2);
    let w = fill(p.weight_count(), 1);
    let plan = Conv2dBackwardDataPlan::new(&p, &w).unwrap();
    assert_eq!(plan.params(), &p);
    for (n, seed) in [(1, 5), (3, 6)] {
        let xs = [n, 8, 11, 9];
        let ys = p.output_shape(xs).unwrap();
        let dy = fill(ys.iter().product(), seed);
        let mut dx = vec![f32::NAN; xs.iter().product()];
        plan.run(&dy, ys, xs, &mut dx).unwrap();
        assert_eq!(dx, conv2d_backward_data(&dy, ys, &w, &p, xs).unwrap());
    }
}

/// The weight gradient is bitwise the same run to run for a fixed thread
/// count (the reduction is split and summed in a fixed order).
#[test]
fn backward_weights_is_reproducible() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    // The GEMM over im2col^T, the band path (64 filters, 20x20 outputs) and
    // the depthwise kernel.
    for (p, xs) in [
        (Conv2dParams::new(24, 16, [3, 3]).padding(1), [3, 24, 21, 20]),
        (Conv2dParams::new(12, 64, [3, 3]).padding(1), [3, 12, 20, 20]),
        // Depthwise, read in place.
        (Conv2dParams::new(6, 12, [5, 5]).padding(2).groups(6), [3, 6, 21, 37]),
        (Conv2dParams::new(6, 6, [3, 3]).stride(2).padding(1).groups(6), [3, 6, 21, 37]),
    ] {
        let ys = p.output_shape(xs).unwrap();
        let (x, dy) = (fill(xs.iter().product(), 1), fill(ys.iter().product(), 2));
        let first = pool.install(|| conv2d_backward_weights(&x, xs, &dy, &p).unwrap());
        for _ in 0..4 {
            let again = pool.install(|| conv2d_backward_weights(&x, xs, &dy, &p).unwrap());
            assert!(first.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "bits differ between runs");
        }
    }
}

/// Infinities and NaN in the input give the reference's pattern of
/// non-finite gradients on every weight-gradient path (the band paths
/// would otherwise multiply an infinity by the zeros of dY's extra grid
/// columns).
#[test]
fn non_finite_inputs_give_the_references_pattern() {
    for (p, xs) in [
        (Conv2dParams::new(12, 64, [3, 3]).padding(1), [1, 12, 20, 20]),
        (Conv2dParams::new(3, 64, [7, 7]).stride(2).padding(3), [1, 3, 40, 36]),
        (Conv2dParams::new(12, 12, [3, 3]).padding(1).groups(12), [2, 12, 30, 31]),
        (Conv2dParams::new(24, 16, [3, 3]).padding(1), [2, 24, 9, 9]),
    ] {
        let ys = p.output_shape(xs).unwrap();
        let dy = fill(ys.iter().product(), 2);
        for (i, v) in [(0, f32::INFINITY), (xs[3] - 1, f32::NEG_INFINITY), (3 * xs[3] + 5, f32::NAN)] {
            let mut x = fill(xs.iter().product(), 1);
            x[i] = v;
            let got = conv2d_backward_weights(&x, xs, &dy, &p).unwrap();
            let want = reference::conv2d_backward_weights(&x, xs, &dy, &p).unwrap();
            for (o, (g, w)) in got.iter().zip(&want).enumerate() {
                let same =
                    if w.is_finite() { g.is_finite() } else { g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan() };
                assert!(same, "{p:?} x[{i}] = {v}: dw[{o}] = {g}, reference {w}");
            }
        }
    }
}

/// The same for the data gradient: the stacked column phases of a
/// few-channel strided layer hold zero taps, which must not meet an
/// infinity in dY (0 x inf = NaN where the reference forms no product).
#[test]
fn non_finite_output_gradients_give_the_references_pattern() {
    for (p, xs) in [
        (Conv2dParams::new(3, 16, [7, 7]).stride(2).padding(3), [1, 3, 40, 36]),
        (Conv2dParams::new(3, 8, [3, 3]).stride(2).padding(1), [2, 3, 17, 18]),
    ] {
        let ys = p.output_shape(xs).unwrap();
        let w = fill(p.weight_count(), 3);
        for (i, v) in [(0, f32::INFINITY), (ys[3] + 2, f32::NEG_INFINITY), (2 * ys[3] + 5, f32::NAN)] {
            let mut dy = fill(ys.iter().product(), 2);
            dy[i] = v;
            let got = conv2d_backward_data(&dy, ys, &w, &p, xs).unwrap();
            let want = reference::conv2d_backward_data(&dy, ys, &w, &p, xs).unwrap();
            for (o, (g, r)) in got.iter().zip(&want).enumerate() {
                let same =
                    if r.is_finite() { g.is_finite() } else { g.to_bits() == r.to_bits() || g.is_nan() && r.is_nan() };
                assert!(same, "{p:?} dy[{i}] = {v}: dx[{o}] = {g}, reference {r}");
            }
        }
    }
}

#[test]
fn bad_inputs_are_errors() {
    let p = Conv2dParams::new(4, 6, [3, 3]);
    let xs = [2, 4, 8, 8];
    let ys = p.output_shape(xs).unwrap();
    let (x, w, dy) = (vec![0.0; 2 * 4 * 64], vec![0.0; p.weight_count()], vec![0.0; ys.iter().product()]);
    let e = conv2d_backward_data(&dy, [2, 6, 6, 7], &w, &p, xs).unwrap_err().to_string();
    assert!(e.contains("output gradient shape = [2, 6, 6, 7] must be [2, 6, 6, 6]"), "{e}");
    let e = conv2d_backward_data(&dy[1..], ys, &w, &p, xs).unwrap_err();
    assert_eq!(e, Error::LengthMismatch { what: "output gradient", expected: dy.len(), got: dy.len() - 1 });
    let e = conv2d_backward_data(&dy, ys, &w[1..], &p, xs).unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { what: "weights", .. }));
    let e = conv2d_backward_data(&dy, ys, &w, &p.stride(0), xs).unwrap_err().to_string();
    assert!(e.contains("stride (rows) = 0"), "{e}");
    let e = conv2d_backward_data(&dy, ys, &w, &p, [2, 5, 8, 8]).unwrap_err().to_string();
    assert!(e.contains("input channels is 5"), "{e}");
    let plan = Conv2dBackwardDataPlan::new(&p, &w).unwrap();
    let mut dx = vec![0.0; x.len() - 1];
    let e = plan.run(&dy, ys, xs, &mut dx).unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { what: "input gradient", .. }));
    assert!(dx.iter().all(|&v| v == 0.0), "nothing written on error");
    assert!(Conv2dBackwardDataPlan::new(&p.groups(3), &w).is_err());

    let e = conv2d_backward_weights(&x[1..], xs, &dy, &p).unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { what: "input", .. }));
    let e = conv2d_backward_weights(&x, xs, &dy[1..], &p).unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { what: "output gradient", .. }));
    let mut dw = vec![0.0; p.weight_count() - 1];
    let e = conv2d_backward_weights_into(&x, xs, &dy, &p, &mut dw).unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { what: "weight gradient", .. }));
    let e = conv2d_backward_weights(&x, [2, 4, 1, 8], &dy, &p).unwrap_err().to_string();
    assert!(e.contains("spans 3 rows but the padded input has 1"), "{e}");

    let e = conv2d_backward_bias(&dy, [2, 6, 0, 6]).unwrap_err().to_string();
    assert!(e.contains("output gradient output height = 0 must be at least 1"), "{e}");
    assert!(matches!(conv2d_backward_bias(&dy[1..], ys), Err(Error::LengthMismatch { .. })));
    assert!(matches!(conv2d_backward_bias(&dy, [usize::MAX, 2, 2, 2]), Err(Error::Overflow { .. })));
    // The references reject the same inputs.
    assert!(reference::conv2d_backward_data(&dy, [2, 6, 6, 7], &w, &p, xs).is_err());
    assert!(reference::conv2d_backward_weights(&x, xs, &dy[1..], &p).is_err());
    assert!(reference::conv2d_backward_bias(&dy, [2, 6, 0, 6]).is_err());
}
