//! Forward convolution (every path: 1x1 GEMM, implicit GEMM, tiled im2col +
//! GEMM, groups, depthwise) against `reference::conv2d`, for the ISA this
//! run is capped to.

use proptest::prelude::*;
use receptive::{Activation, Conv2dParams, Conv2dPlan, ConvAlgorithm, Error, Padding, reference};

use receptive::reference::pseudo_random as fill;

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Checks `got` against the reference with the bound derived from the
/// reduction length and each output's absolute sum of terms (the reference
/// run on |x|, |w| and |bias|).
fn check(
    got: &[f32],
    x: &[f32],
    shape: [usize; 4],
    w: &[f32],
    bias: Option<&[f32]>,
    p: &Conv2dParams,
    act: Activation,
) {
    let want = reference::conv2d(x, shape, w, bias, p).unwrap();
    let abs_bias = bias.map(abs);
    let sums = reference::conv2d(&abs(x), shape, &abs(w), abs_bias.as_deref(), p).unwrap();
    let reduction = p.in_channels / p.groups * p.kernel[0] * p.kernel[1];
    assert_eq!(got.len(), want.len());
    for (i, ((&g, &r), &s)) in got.iter().zip(&want).zip(&sums).enumerate() {
        let r = act.apply(r);
        let tol = reference::tolerance(reduction, s);
        assert!((g - r).abs() <= tol, "{p:?} {shape:?} {act:?} at {i}: got {g}, want {r} (tol {tol})");
    }
}

/// Runs the conv through a plan and checks it.
fn run_and_check(p: &Conv2dParams, shape: [usize; 4], with_bias: bool, act: Activation, seed: u64) -> String {
    run_with(p, shape, with_bias, act, seed, ConvAlgorithm::Auto)
}

/// [`run_and_check`] with the GEMM path's algorithm forced.
fn run_with(
    p: &Conv2dParams,
    shape: [usize; 4],
    with_bias: bool,
    act: Activation,
    seed: u64,
    algorithm: ConvAlgorithm,
) -> String {
    let x = fill(shape.iter().product(), seed);
    let w = fill(p.weight_count(), seed + 1);
    let b = fill(p.out_channels, seed + 2);
    let bias = with_bias.then_some(&b[..]);
    let plan = Conv2dPlan::new(p, &w, bias, act).unwrap().algorithm(algorithm);
    let out = plan.output_shape(shape).unwrap();
    let mut y = vec![f32::NAN; out.iter().product()];
    plan.run(&x, shape, &mut y).unwrap();
    check(&y, &x, shape, &w, bias, p, act);
    plan.path_for(shape)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// A random layer: (params, input shape). `depthwise` picks groups == C with
/// a channel multiplier; otherwise 1..=3 groups of 1..=4 input channels.
fn layer() -> impl Strategy<Value = (Conv2dParams, [usize; 4])> {
    (
        (any::<bool>(), 1usize..=3, 1usize..=4, 1usize..=5, 1usize..=6),
        (1usize..=2, 1usize..=11, 1usize..=11),
        (1usize..=4, 1usize..=4, 1usize..=3, 1usize..=3, 1usize..=2, 1usize..=2),
        (0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2),
    )
        .prop_map(|((dw, groups, cg, kg, c_dw), (n, h, w), (fh, fw, sh, sw, dh, dwl), (pt, pb, pl, pr))| {
            let (c, k, groups) = if dw { (c_dw, c_dw * kg.min(3), c_dw) } else { (groups * cg, groups * kg, groups) };
            let p = Conv2dParams::new(c, k, [fh, fw])
                .groups(groups)
                .stride_hw([sh, sw])
                .dilation_hw([dh, dwl])
                .padding_with(Padding::new(pt, pb, pl, pr));
            (p, [n, c, h, w])
        })
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::None),
        Just(Activation::Relu),
        (-0.5f32..0.0, 0.0f32..0.5).prop_map(|(min, max)| Activation::Clamp { min, max }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn matches_reference(
        (p, shape) in layer(),
        with_bias in any::<bool>(),
        act in activation(),
        seed in 0u64..1000,
        algorithm in prop_oneof![
            Just(ConvAlgorithm::Auto),
            Just(ConvAlgorithm::Implicit),
            Just(ConvAlgorithm::ImplicitChannels),
            Just(ConvAlgorithm::Im2col),
            Just(ConvAlgorithm::Direct),
        ],
    ) {
        prop_assume!(p.output_shape(shape).is_ok());
        let path = run_with(&p, shape, with_bias, act, seed, algorithm);
        let pointwise = p.kernel == [1, 1] && p.stride == [1, 1] && p.padding == Padding::uniform(0);
        if pointwise && p.in_channels != p.groups {
            prop_assert!(path.starts_with("1x1 gemm"), "{}", path);
        } else if p.in_channels != p.groups {
            let want = match algorithm {
                ConvAlgorithm::Implicit => "implicit gemm ",
                ConvAlgorithm::ImplicitChannels => "implicit gemm^T",
                ConvAlgorithm::Im2col => "im2col+gemm",
                // Every layer here has a reduction short enough.
                ConvAlgorithm::Direct => "direct",
                ConvAlgorithm::Auto => "",
            };
            prop_assert!(path.starts_with(want), "{}", path);
        }
    }

    /// The depthwise kernel's in-place strips (square 3x3, 5x5 and 7x7
    /// filters with strides 1 or 2, masked loads for the padding columns
    /// and the row ends), over widths spanning several strips and paddings
    /// up to a filter's reach and past it.
    #[test]
    fn depthwise_in_place_matches_reference(
        (c, m, n) in (2usize..=4, 1usize..=2, 1usize..=2),
        (f, s) in (prop_oneof![Just(3usize), Just(5), Just(7)], 1usize..=2),
        (h, w) in (1usize..=12, 1usize..=80),
        (pt, pb, pl, pr) in (0usize..=4, 0usize..=4, 0usize..=4, 0usize..=4),
        with_bias in any::<bool>(),
        act in activation(),
        seed in 0u64..1000,
    ) {
        let p = Conv2dParams::new(c, c * m, [f, f]).groups(c).stride(s).padding_with(Padding::new(pt, pb, pl, pr));
        prop_assume!(p.output_shape([n, c, h, w]).is_ok());
        let path = run_and_check(&p, [n, c, h, w], with_bias, act, seed);
        prop_assert!(path.starts_with("depthwise"), "{}", path);
    }
}

#[test]
fn seed_ten_5x5_filters_pad_2_keep_32x32() {
    let p = Conv2dParams::new(3, 10, [5, 5]).padding(2);
    assert_eq!(p.output_shape([1, 3, 32, 32]).unwrap(), [1, 10, 32, 32]);
    assert_eq!(p.param_count(), 760);
    for algorithm in [ConvAlgorithm::Implicit, ConvAlgorithm::ImplicitChannels, ConvAlgorithm::Im2col] {
        run_with(&p, [1, 3, 32, 32], true, Activation::None, 7, algorithm);
    }
}

#[test]
fn seed_six_5x5_filters_give_28x28x6() {
    let p = Conv2dParams::new(3, 6, [5, 5]);
    assert_eq!(p.output_shape([1, 3, 32, 32]).unwrap(), [1, 6, 28, 28]);
    run_and_check(&p, [1, 3, 32, 32], true, Activation::Relu, 8);
    // The one-shot function computes the same volume.
    let x = fill(3 * 32 * 32, 8);
    let w = fill(p.weight_count(), 9);
    let y = receptive::conv2d(&x, [1, 3, 32, 32], &w, None, &p).unwrap();
    check(&y, &x, [1, 3, 32, 32], &w, None, &p, Activation::None);
}

#[test]
fn seed_filter_is_a_dot_product_over_the_full_depth() {
    // One 2x2x2 filter on a 2-channel 2x2 input: the single output is the
    // dot product of the filter with the whole volume, plus the bias.
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    let w = [1.0, 0.0, 0.0, 1.0, -1.0, 0.5, 0.25, 2.0];
    let p = Conv2dParams::new(2, 1, [2, 2]);
    let y = receptive::conv2d(&x, [1, 2, 2, 2], &w, Some(&[10.0]), &p).unwrap();
    // 1 + 4 - 5 + 3 + 1.75 + 16 + 10
    assert_eq!(y, [30.75]);
}

#[test]
fn each_path_is_chosen_and_correct() {
    // "gemm": implicit or im2col, by shape (each is forced below too).
    let cases = [
        (Conv2dParams::new(16, 24, [1, 1]), [2, 16, 9, 7], "1x1 gemm"),
        // 1x1 with stride or padding reads a band or gathers.
        (Conv2dParams::new(16, 24, [1, 1]).stride(2), [1, 16, 9, 7], "gemm"),
        (Conv2dParams::new(16, 24, [1, 1]).padding(1), [1, 16, 9, 7], "gemm"),
        // Groups of 64 channels: a reduction too long for the direct kernel.
        (Conv2dParams::new(128, 16, [3, 3]).groups(2), [1, 128, 8, 8], "gemm"),
        // A 72-tap reduction runs direct; a 576-tap one a GEMM.
        (Conv2dParams::new(8, 8, [3, 3]).padding(1), [1, 8, 56, 56], "direct"),
        (Conv2dParams::new(64, 16, [3, 3]).padding(1), [1, 64, 24, 24], "gemm"),
        // A 7-wide filter over a 3-wide output: the band's grid would be
        // mostly extra columns (checked below); 80 channels, past the direct
        // kernel's reduction.
        (Conv2dParams::new(80, 8, [1, 7]), [1, 80, 16, 9], "gemm"),
        (Conv2dParams::new(6, 6, [1, 1]).groups(3), [1, 6, 5, 5], "1x1 gemm"),
        (Conv2dParams::new(12, 12, [3, 3]).padding(1).groups(12), [2, 12, 10, 19], "depthwise"),
        (Conv2dParams::new(4, 12, [5, 3]).padding(2).stride_hw([2, 1]).groups(4), [1, 4, 11, 9], "depthwise"),
    ];
    // A 1x1 layer with few pixels (7x7) and many channels puts the channels
    // in the lanes with the SIMD kernels (more input channels than one KC
    // block of the W^T panels, and two images).
    let few = run_and_check(&Conv2dParams::new(1100, 128, [1, 1]), [2, 1100, 7, 7], true, Activation::Relu, 18);
    let simd = ["avx2", "avx512"].contains(&receptive::active_isa().name());
    assert!(few.starts_with(if simd { "1x1 gemm^T" } else { "1x1 gemm" }), "{few}");
    let wide = run_and_check(&Conv2dParams::new(4, 8, [1, 7]), [1, 4, 16, 9], false, Activation::None, 19);
    assert!(!wide.starts_with("implicit gemm "), "the pixel-lane form on a mostly-extra grid: {wide}");
    for (i, (p, shape, path)) in cases.into_iter().enumerate() {
        for act in [Activation::None, Activation::Relu] {
            let got = run_and_check(&p, shape, true, act, 20 + i as u64);
            assert!(got.contains(path), "{p:?}: {got}, want {path}");
            assert!(got.contains(receptive::active_isa().name()) || got.contains("scalar"), "{got}");
            if (path.ends_with("gemm") || path == "direct") && !path.starts_with("1x1") {
                for (algorithm, name) in [
                    (ConvAlgorithm::Implicit, "implicit gemm "),
                    (ConvAlgorithm::ImplicitChannels, "implicit gemm^T"),
                    (ConvAlgorithm::Im2col, "im2col"),
                ] {
                    let got = run_with(&p, shape, true, act, 20 + i as u64, algorithm);
                    assert!(got.starts_with(name), "{p:?} forced {algorithm:?}: {got}");
                }
            }
        }
    }
}

/// A network's first layer (3 channels, stride 2, 16 to 96 filters) runs
/// the direct kernel: filter counts on and off its channel block, output
/// widths whose rows end mid-vector and span several vectors, batches and
/// thread counts, every activation. A long reduction never does.
#[test]
fn first_layers_run_the_direct_kernel() {
    let cases = [
        (Conv2dParams::new(3, 32, [3, 3]).stride(2).padding(1), [1, 3, 40, 38]),
        (Conv2dParams::new(3, 24, [3, 3]).stride(2).padding(1), [2, 3, 33, 35]),
        (Conv2dParams::new(3, 13, [7, 7]).stride(2).padding(3), [1, 3, 37, 30]),
        (Conv2dParams::new(4, 20, [5, 5]).stride(2).padding(2), [1, 4, 20, 70]),
        (Conv2dParams::new(3, 9, [11, 11]).stride(4), [2, 3, 47, 51]),
        (Conv2dParams::new(3, 16, [3, 3]).padding(1), [1, 3, 9, 3]),
        (Conv2dParams::new(4, 6, [3, 3]).stride(2).padding(1).groups(2), [1, 4, 18, 18]),
    ];
    let acts = [Activation::None, Activation::Relu, Activation::Clamp { min: -0.5, max: 0.5 }];
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for (i, (p, shape)) in cases.iter().enumerate() {
            let path =
                pool.install(|| run_with(p, *shape, i % 2 == 0, acts[i % 3], 60 + i as u64, ConvAlgorithm::Direct));
            assert!(path.starts_with("direct"), "{p:?}: {path}");
        }
        let first = Conv2dParams::new(3, 32, [3, 3]).stride(2).padding(1);
        let path = pool.install(|| run_and_check(&first, [1, 3, 64, 64], true, Activation::Relu, 70));
        assert!(path.starts_with("direct"), "auto on a first layer: {path}");
    }
    let long = Conv2dParams::new(64, 8, [3, 3]).padding(1);
    let path = run_with(&long, [1, 64, 9, 9], false, Activation::None, 71, ConvAlgorithm::Direct);
    assert!(!path.starts_with("direct"), "a 576-tap reduction: {path}");
}

#[test]
fn large_layers_split_into_tiles_and_channel_blocks() {
    // More pixels than one tile, more filters than one row block, and
    // batches, under different thread counts (the task grid changes).
    let cases = [
        (Conv2dParams::new(5, 300, [3, 3]).padding(1), [1, 5, 21, 23]),
        (Conv2dParams::new(40, 70, [1, 1]), [3, 40, 19, 31]),
        (
            Conv2dParams::new(8, 10, [3, 5])
                .stride_hw([2, 1])
                .dilation_hw([1, 2])
                .padding_with(Padding::new(0, 3, 4, 1)),
            [2, 8, 40, 37],
        ),
        (Conv2dParams::new(300, 8, [3, 3]).padding(1), [1, 300, 6, 6]),
        // Two groups of two row blocks each: one thread runs each group's
        // blocks over one band fill.
        (Conv2dParams::new(6, 520, [3, 3]).padding(1).groups(2), [1, 6, 9, 8]),
        (Conv2dParams::new(32, 32, [3, 3]).padding(1).groups(32), [1, 32, 45, 47]),
        // Few pixels: the last row block of the channel form is 1, 3, 8 or
        // 4 pixels tall under MR 4, 6 and 12, on a shorter gathered tile.
        (Conv2dParams::new(24, 70, [3, 3]).padding(1), [1, 24, 7, 7]),
        (Conv2dParams::new(24, 70, [3, 3]).padding(1), [1, 24, 3, 5]),
        (Conv2dParams::new(24, 70, [3, 3]).padding(1), [1, 24, 4, 5]),
        (Conv2dParams::new(24, 70, [3, 3]).padding(1), [1, 24, 2, 5]),
    ];
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for (i, (p, shape)) in cases.iter().enumerate() {
            for algorithm in [ConvAlgorithm::Implicit, ConvAlgorithm::ImplicitChannels, ConvAlgorithm::Im2col] {
                let act = Activation::Clamp { min: -1.0, max: 1.5 };
                pool.install(|| run_with(p, *shape, i % 2 == 0, act, 40 + i as u64, algorithm));
            }
        }
    }
}

#[test]
fn a_plan_reused_across_inputs_gives_identical_results() {
    let p = Conv2dParams::new(6, 9, [3, 3]).padding(1).stride(2);
    let w = fill(p.weight_count(), 1);
    let b = fill(9, 2);
    let plan = Conv2dPlan::new(&p, &w, Some(&b), Activation::Relu).unwrap();
    let shapes = [[1, 6, 13, 17], [3, 6, 8, 8], [1, 6, 13, 17], [2, 6, 30, 5]];
    let mut first: Vec<Vec<f32>> = Vec::new();
    for round in 0..3 {
        for (i, &shape) in shapes.iter().enumerate() {
            let x = fill(shape.iter().product(), 100 + i as u64);
            let mut y = vec![0.0; plan.output_shape(shape).unwrap().iter().product()];
            plan.run(&x, shape, &mut y).unwrap();
            // A fresh plan, and the one-shot function, agree bit for bit.
            let fresh = receptive::conv2d_with(&x, shape, &w, Some(&b), &p, Activation::Relu).unwrap();
            assert_eq!(y, fresh);
            if round == 0 {
                check(&y, &x, shape, &w, Some(&b), &p, Activation::Relu);
                first.push(y);
            } else {
                assert_eq!(y, first[i], "round {round}, input {i}");
            }
        }
    }
}

#[test]
fn bad_inputs_are_errors_and_write_nothing() {
    let p = Conv2dParams::new(4, 6, [3, 3]).padding(1);
    let w = fill(p.weight_count(), 1);
    // Plan creation: wrong weight or bias length, bad clamp, bad params.
    assert!(matches!(
        Conv2dPlan::new(&p, &w[1..], None, Activation::None),
        Err(Error::LengthMismatch { what: "weights", .. })
    ));
    assert!(matches!(
        Conv2dPlan::new(&p, &w, Some(&[0.0; 5]), Activation::None),
        Err(Error::LengthMismatch { what: "bias", .. })
    ));
    assert!(Conv2dPlan::new(&p, &w, None, Activation::Clamp { min: 1.0, max: 0.0 }).is_err());
    assert!(Conv2dPlan::new(&p.groups(4), &w, None, Activation::None).is_err());
    let plan = Conv2dPlan::new(&p, &w, None, Activation::None).unwrap();
    let x = fill(2 * 4 * 5 * 5, 2);
    let sentinel = vec![7.0f32; 2 * 6 * 5 * 5];
    let bad: [(&[f32], [usize; 4], usize); 5] = [
        (&x[1..], [2, 4, 5, 5], sentinel.len()), // input too short
        (&x, [2, 4, 5, 5], sentinel.len() - 1),  // output too short
        (&x, [2, 4, 5, 5], sentinel.len() + 1),  // output too long
        (&x, [2, 5, 5, 4], sentinel.len()),      // wrong channels
        (&x, [2, 4, 0, 5], sentinel.len()),      // empty plane
    ];
    for (xs, shape, ylen) in bad {
        let mut y = vec![7.0f32; ylen];
        let err = plan.run(xs, shape, &mut y).unwrap_err();
        assert!(!err.to_string().is_empty());
        assert!(y.iter().all(|&v| v == 7.0), "{shape:?} wrote into y before failing: {err}");
    }
    assert!(matches!(
        plan.run(&x, [2, 5, 5, 4], &mut vec![0.0; 300]),
        Err(Error::ShapeMismatch { what: "input channels", .. })
    ));
    // The one-shot function validates too.
    assert!(receptive::conv2d(&x, [2, 4, 5, 5], &w, Some(&[0.0; 2]), &p).is_err());
    assert!(receptive::conv2d(&x[..10], [2, 4, 5, 5], &w, None, &p).is_err());
    // A filter larger than the (unpadded) input.
    let unpadded = Conv2dPlan::new(&p.padding(0), &w, None, Activation::None).unwrap();
    assert!(matches!(unpadded.run(&x[..32], [2, 4, 2, 2], &mut [0.0; 0]), Err(Error::KernelTooLarge { .. })));
}

#[test]
fn workspace_stays_bounded_on_vgg_conv1_2() {
    let p = Conv2dParams::new(64, 64, [3, 3]).padding(1);
    let plan = Conv2dPlan::new(&p, &vec![0.0; p.weight_count()], None, Activation::None).unwrap();
    let bytes = plan.workspace_bytes([1, 64, 224, 224]);
    assert!(bytes > 0 && bytes < 8 << 20, "{bytes} bytes");
    assert_eq!(plan.workspace_bytes([1, 3, 224, 224]), 0, "a shape run rejects");
}

#[test]
fn nan_propagates_through_every_path() {
    for p in [
        Conv2dParams::new(2, 3, [1, 1]),
        Conv2dParams::new(2, 3, [3, 3]).padding(1),
        Conv2dParams::new(2, 2, [3, 3]).padding(1).groups(2),
    ] {
        let mut x = vec![1.0f32; 2 * 4 * 4];
        x[5] = f32::NAN;
        let w = vec![0.5f32; p.weight_count()];
        for act in [Activation::None, Activation::Relu, Activation::Clamp { min: 0.0, max: 6.0 }] {
            let y = receptive::conv2d_with(&x, [1, 2, 4, 4], &w, None, &p, act).unwrap();
            let want = reference::conv2d(&x, [1, 2, 4, 4], &w, None, &p).unwrap();
            for (g, r) in y.iter().zip(&want) {
                assert_eq!(g.is_nan(), r.is_nan(), "{p:?} {act:?}");
            }
        }
    }
}

/// A plan remembers the lowering it chose for the last shape: runs that
/// alternate between shapes (and thread counts) that choose differently
/// must each get their own.
#[test]
fn a_plan_alternating_shapes_and_threads_stays_right() {
    let p = Conv2dParams::new(3, 16, [3, 3]).stride(2).padding(1);
    let w = fill(p.weight_count(), 7);
    let bias = fill(16, 8);
    let plan = Conv2dPlan::new(&p, &w, Some(&bias), Activation::None).unwrap();
    let pools: Vec<_> = [1, 2].map(|t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap()).into();
    let shapes = [[1, 3, 5, 6], [2, 3, 40, 33], [1, 3, 1, 1], [3, 3, 9, 64]];
    let mut paths = std::collections::BTreeSet::new();
    for round in 0..3 {
        for (i, &shape) in shapes.iter().enumerate() {
            let pool = &pools[(round + i) % 2];
            let x = fill(shape.iter().product(), (round * 4 + i) as u64);
            let mut y = vec![f32::NAN; plan.output_shape(shape).unwrap().iter().product()];
            pool.install(|| plan.run(&x, shape, &mut y)).unwrap();
            check(&y, &x, shape, &w, Some(&bias), &p, Activation::None);
            paths.insert(pool.install(|| plan.path_for(shape)));
        }
    }
    assert!(paths.len() > 1, "the shapes should choose different lowerings: {paths:?}");
}
