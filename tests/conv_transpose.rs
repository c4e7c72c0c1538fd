//! Transposed convolution: the reference against finite differences of a
//! forward convolution, the fast op and plan against the reference, output
//! sizes and output_padding validation as PyTorch.

use proptest::prelude::*;
use receptive::{ConvTranspose2dParams, ConvTranspose2dPlan, Error, Padding, conv_transpose2d, reference};

use receptive::reference::pseudo_random as fill;

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Forward convolution of `z` (`[N, C_out, OH, OW]`) in f64 onto the
/// transposed convolution's input plane: the adjoint of the linear part.
fn conv64(z: &[f64], zs: [usize; 4], w: &[f32], tp: &ConvTranspose2dParams, out: [usize; 2]) -> Vec<f64> {
    let [n, co, oh, ow] = zs;
    let [ci, cog, fh, fw] = tp.weight_shape();
    let cig = ci / tp.groups;
    let [h, wd] = out;
    let mut y = vec![0.0; n * ci * h * wd];
    for b in 0..n {
        for i in 0..ci {
            for iy in 0..h {
                for ix in 0..wd {
                    let mut acc = 0.0;
                    for c in 0..cog {
                        for ky in 0..fh {
                            for kx in 0..fw {
                                let oy = (iy * tp.stride[0] + ky * tp.dilation[0]) as i64 - tp.padding.top as i64;
                                let ox = (ix * tp.stride[1] + kx * tp.dilation[1]) as i64 - tp.padding.left as i64;
                                if oy < 0 || ox < 0 || oy >= oh as i64 || ox >= ow as i64 {
                                    continue;
                                }
                                let o = (i / cig) * cog + c;
                                let zi = ((b * co + o) * oh + oy as usize) * ow + ox as usize;
                                acc += z[zi] * w[((i * cog + c) * fh + ky) * fw + kx] as f64;
                            }
                        }
                    }
                    y[((b * ci + i) * h + iy) * wd + ix] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn reference_matches_finite_differences() {
    let cases = [
        (ConvTranspose2dParams::new(2, 3, [2, 3]), [2, 2, 3, 2]),
        (ConvTranspose2dParams::new(4, 2, [3, 2]).stride_hw([2, 3]).output_padding_hw([1, 2]).groups(2), [1, 4, 3, 3]),
        // output_padding >= stride, allowed because it is below the dilation.
        (
            ConvTranspose2dParams::new(2, 2, [3, 3])
                .dilation(3)
                .output_padding(2)
                .padding_with(Padding::new(1, 3, 0, 2)),
            [1, 2, 3, 2],
        ),
    ];
    for (i, (tp, xs)) in cases.into_iter().enumerate() {
        let ys = tp.output_shape(xs).unwrap();
        let (x, w, b) = (fill(xs.iter().product(), 1), fill(tp.weight_shape().iter().product(), 2), fill(ys[1], 3));
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let got = reference::conv_transpose2d(&x, xs, &w, Some(&b), &tp).unwrap();
        // y = d/dz <x, conv(z)> + bias, by central differences (exact for a linear map).
        let z = vec![0.0; got.len()];
        let plane = ys[2] * ys[3];
        for (j, g) in got.iter().enumerate() {
            let step = |d: f64| {
                let mut zz = z.clone();
                zz[j] = d;
                conv64(&zz, ys, &w, &tp, [xs[2], xs[3]]).iter().zip(&x64).map(|(a, b)| a * b).sum::<f64>()
            };
            let want = (step(0.5) - step(-0.5)) + b[(j / plane) % ys[1]] as f64;
            let tol = f32::EPSILON as f64 * want.abs() + 1e-12;
            assert!((*g as f64 - want).abs() <= tol, "case {i} at {j}: {g} vs {want}");
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    tp: ConvTranspose2dParams,
    xs: [usize; 4],
}

/// Random shapes, stride, dilation, asymmetric padding, output padding
/// (below the stride or the dilation), groups and depthwise.
fn cases() -> impl Strategy<Value = Case> {
    let channels = (1usize..4, 1usize..4, 1usize..4, any::<bool>());
    let window = (1usize..4, 1usize..4, 1usize..4, 1usize..4, 1usize..3, 1usize..3);
    let pad = (0usize..3, 0usize..3, 0usize..3, 0usize..3, 0usize..3, 0usize..3);
    let rest = (1usize..3, 1usize..7, 1usize..7);
    (channels, window, pad, rest).prop_filter_map(
        "padding must leave an output",
        |((groups, cig, cog, depthwise), (fh, fw, sh, sw, dh, dw), pad, (n, h, w))| {
            let (cig, cog, groups) = if depthwise { (1, cog, groups + 2) } else { (cig, cog, groups) };
            let (pt, pb, pl, pr, oph, opw) = pad;
            let tp = ConvTranspose2dParams::new(groups * cig, groups * cog, [fh, fw])
                .stride_hw([sh, sw])
                .dilation_hw([dh, dw])
                .padding_with(Padding::new(pt, pb, pl, pr))
                .output_padding_hw([oph % sh.max(dh), opw % sw.max(dw)])
                .groups(groups);
            let xs = [n, groups * cig, h, w];
            tp.output_shape(xs).ok().map(|_| Case { tp, xs })
        },
    )
}

/// Cases run as forward convolutions (one, or one per stride phase): 8 to
/// 10 output channels per group, the rest random.
fn forward_cases() -> impl Strategy<Value = Case> {
    (cases(), 8usize..11).prop_map(|(c, cog)| {
        let tp = ConvTranspose2dParams { out_channels: c.tp.groups * cog, ..c.tp };
        Case { tp, xs: c.xs }
    })
}

fn check(c: &Case, seed: u64, with_bias: bool) {
    let ys = c.tp.output_shape(c.xs).unwrap();
    let (x, w, b) = (
        fill(c.xs.iter().product(), seed),
        fill(c.tp.weight_shape().iter().product(), seed + 1),
        fill(ys[1], seed + 2),
    );
    let bias = with_bias.then_some(&b[..]);
    let got = conv_transpose2d(&x, c.xs, &w, bias, &c.tp).unwrap();
    let want = reference::conv_transpose2d(&x, c.xs, &w, bias, &c.tp).unwrap();
    let bound = reference::conv_transpose2d(&abs(&x), c.xs, &abs(&w), bias.map(abs).as_deref(), &c.tp).unwrap();
    let [ci, _, fh, fw] = c.tp.weight_shape();
    let len = ci / c.tp.groups * fh * fw + 1;
    for (i, ((g, r), s)) in got.iter().zip(&want).zip(&bound).enumerate() {
        let tol = reference::tolerance(len, *s);
        assert!((g - r).abs() <= tol, "{c:?} at {i}: {g} vs {r} (tol {tol})");
    }
}

fn proptest_cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

    #[test]
    fn conv_transpose_by_forward_convolutions_matches_reference(c in forward_cases(), seed in 0u64..1000, with_bias in any::<bool>()) {
        check(&c, seed, with_bias);
    }

    #[test]
    fn conv_transpose_matches_reference(c in cases(), seed in 0u64..1000, with_bias in any::<bool>()) {
        check(&c, seed, with_bias);
    }
}

#[test]
fn larger_layers_match_reference() {
    let cases = [
        Case {
            tp: ConvTranspose2dParams::new(24, 40, [3, 3]).stride(2).padding(1).output_padding(1),
            xs: [1, 24, 12, 15],
        },
        Case { tp: ConvTranspose2dParams::new(20, 36, [1, 1]), xs: [2, 20, 19, 21] },
        Case { tp: ConvTranspose2dParams::new(12, 12, [4, 4]).stride(2).padding(1).groups(12), xs: [2, 12, 14, 13] },
    ];
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for (i, c) in cases.iter().enumerate() {
            pool.install(|| check(c, i as u64, i != 1));
        }
    }
}

#[test]
fn output_size_is_pytorchs() {
    // (H-1)*stride - pad_before - pad_after + dilation*(F-1) + output_padding + 1
    let tp = ConvTranspose2dParams::new(3, 5, [3, 4])
        .stride_hw([2, 3])
        .dilation_hw([2, 1])
        .padding_with(Padding::new(1, 2, 0, 3))
        .output_padding_hw([1, 2]);
    assert_eq!(tp.output_shape([2, 3, 7, 6]).unwrap(), [2, 5, 6 * 2 - 3 + 2 * 2 + 1 + 1, 5 * 3 - 3 + 3 + 2 + 1]);
    assert_eq!(tp.flops([2, 3, 7, 6]).unwrap(), 2 * 2 * 3 * 7 * 6 * 5 * 12);
}

#[test]
fn plan_matches_one_shot() {
    let tp = ConvTranspose2dParams::new(6, 4, [3, 3]).stride(2).padding(1).output_padding(1);
    let (w, b) = (fill(tp.weight_shape().iter().product(), 1), fill(4, 2));
    let plan = ConvTranspose2dPlan::new(&tp, &w, Some(&b)).unwrap();
    assert_eq!(plan.params(), &tp);
    for n in [1, 2] {
        let xs = [n, 6, 5, 7];
        let x = fill(xs.iter().product(), n as u64);
        let ys = tp.output_shape(xs).unwrap();
        let mut y = vec![f32::NAN; ys.iter().product()];
        plan.run(&x, xs, &mut y).unwrap();
        assert_eq!(y, conv_transpose2d(&x, xs, &w, Some(&b), &tp).unwrap());
    }
}

#[test]
fn bad_inputs_are_errors() {
    let tp = ConvTranspose2dParams::new(4, 6, [3, 3]).stride(2);
    let xs = [1, 4, 5, 5];
    let w = vec![0.0; tp.weight_shape().iter().product()];
    let x = vec![0.0; 100];
    let e = tp.output_padding(2).output_shape(xs).unwrap_err().to_string();
    assert_eq!(e, "output_padding (rows) = 2 must be smaller than the stride (2) or the dilation (1)");
    let e = tp.output_padding_hw([0, 3]).dilation(3).output_shape(xs).unwrap_err().to_string();
    assert!(e.starts_with("output_padding (columns) = 3"), "{e}");
    let e = tp.padding(6).output_shape(xs).unwrap_err().to_string();
    assert!(e.contains("padding (rows) = 12 must be smaller than the unpadded transposed output size 11"), "{e}");
    let e = tp.groups(4).output_shape(xs).unwrap_err().to_string();
    assert_eq!(e, "out_channels = 6 must be divisible by groups = 4");
    assert!(matches!(tp.output_shape([1, 3, 5, 5]), Err(Error::ShapeMismatch { what: "input channels", .. })));
    assert!(tp.output_shape([0, 4, 5, 5]).is_err());
    assert!(matches!(tp.stride(usize::MAX).output_shape(xs), Err(Error::Overflow { .. })));
    assert!(matches!(conv_transpose2d(&x[1..], xs, &w, None, &tp), Err(Error::LengthMismatch { what: "input", .. })));
    assert!(matches!(conv_transpose2d(&x, xs, &w[1..], None, &tp), Err(Error::LengthMismatch { what: "weights", .. })));
    assert!(matches!(
        conv_transpose2d(&x, xs, &w, Some(&[0.0; 5]), &tp),
        Err(Error::LengthMismatch { what: "bias", .. })
    ));
    let plan = ConvTranspose2dPlan::new(&tp, &w, None).unwrap();
    let mut y = vec![1.0; 10];
    assert!(matches!(plan.run(&x, xs, &mut y), Err(Error::LengthMismatch { what: "output", .. })));
    assert!(y.iter().all(|&v| v == 1.0), "nothing written on error");
    assert!(reference::conv_transpose2d(&x, xs, &w, None, &tp.output_padding(2)).is_err());
}
