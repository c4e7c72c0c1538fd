//! Pooling against `receptive::reference`: random geometries with every
//! option, on the active ISA (the public functions) and on every ISA this
//! CPU runs (plans made for each), NaN and infinities included.

use proptest::prelude::*;
use receptive::{Isa, Padding, Pool2dParams, Pool2dPlan, PoolKind, reference};

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig::with_cases(n)
}

/// Every ISA this CPU runs, each once (the caps collapse to what exists).
fn isas() -> Vec<Isa> {
    let mut v: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.supported()).collect();
    v.dedup();
    v
}

/// Deterministic values; `mode` 0: spread floats, 1: few small integers
/// (ties everywhere, signed zeros), 2: floats with NaN, +-inf sprinkled.
fn fill(len: usize, seed: u64, mode: u8) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 40) as u32;
            let f = (u as f32 / (1u32 << 24) as f32) * 20.0 - 10.0;
            match mode {
                0 => f,
                1 => [0.0, -0.0, 1.0, 2.0, -1.0][(u % 5) as usize],
                _ => match u % 13 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    2 => f32::INFINITY,
                    3 => -f32::NAN,
                    _ => f,
                },
            }
        })
        .collect()
}

fn check_max(x: &[f32], shape: [usize; 4], q: &Pool2dParams, (y, idx): (&[f32], &[i64]), what: &str) {
    let (wy, widx) = reference::max_pool2d_with_indices(x, shape, q).unwrap();
    assert_eq!(y.len(), wy.len(), "{what}: output length");
    for (o, ((g, w), (gi, wi))) in y.iter().zip(&wy).zip(idx.iter().zip(&widx)).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() && gi == wi,
            "{what} {q:?} {shape:?} at {o}: got ({g}, {gi}) want ({w}, {wi})"
        );
    }
}

fn check_avg(x: &[f32], shape: [usize; 4], q: &Pool2dParams, y: &[f32], what: &str) {
    let want = reference::avg_pool2d(x, shape, q).unwrap();
    // The error bound of a sum of kh*kw terms scaled once: tolerance over
    // the mean of |x| (the reference run on |x|).
    let ax: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    let abs = reference::avg_pool2d(&ax, shape, q).unwrap();
    let taps = q.kernel[0] * q.kernel[1] + 1;
    assert_eq!(y.len(), want.len(), "{what}: output length");
    for (o, (g, w)) in y.iter().zip(&want).enumerate() {
        let ok = if w.is_finite() {
            (g - w).abs() <= reference::tolerance(taps, abs[o])
        } else {
            g.is_nan() == w.is_nan() && (w.is_nan() || g == w)
        };
        assert!(ok, "{what} {q:?} {shape:?} at {o}: got {g} want {w}");
    }
}

#[derive(Clone, Debug)]
struct Case {
    shape: [usize; 4],
    q: Pool2dParams,
    mode: u8,
    seed: u64,
}

/// Random geometry with every option; invalid combinations are rejected by
/// `output_shape` and skipped.
fn case(kind: PoolKind) -> impl Strategy<Value = Case> {
    let max = kind == PoolKind::Max;
    (
        (1usize..=2, 1usize..=3, 1usize..=12, 1usize..=70),
        (
            1usize..=5,
            1usize..=5,
            prop_oneof![3 => 1usize..=2, 1 => 3usize..=4],
            prop_oneof![3 => 1usize..=2, 1 => 3usize..=4],
        ),
        (1usize..=if max { 3 } else { 1 }, 1usize..=if max { 3 } else { 1 }),
        (0usize..=3, 0usize..=3, 0usize..=3, 0usize..=3),
        (any::<bool>(), any::<bool>(), prop_oneof![3 => Just(None), 1 => (1usize..=30).prop_map(Some)]),
        (0u8..3, any::<u64>()),
    )
        .prop_map(
            move |((n, c, h, w), (kh, kw, sh, sw), (dh, dw), (pt, pb, pl, pr), (ceil, cip, div), (mode, seed))| {
                let base = if max { Pool2dParams::max([kh, kw]) } else { Pool2dParams::avg([kh, kw]) };
                // Padding is at most half the dilated window.
                let span = |k: usize, d: usize| d * (k - 1) + 1;
                let (hh, hw) = (span(kh, dh) / 2, span(kw, dw) / 2);
                let q = base
                    .stride_hw([sh, sw])
                    .dilation_hw([dh, dw])
                    .padding_with(Padding::new(pt.min(hh), pb.min(hh), pl.min(hw), pr.min(hw)))
                    .ceil_mode(ceil)
                    .count_include_pad(cip)
                    .divisor_override(if max { None } else { div });
                Case { shape: [n, c, h, w], q, mode, seed }
            },
        )
        .prop_filter("valid geometry", |c| c.q.output_shape(c.shape).is_ok())
}

/// As [`case`] with tall planes: the row buffers' bands (up to 32 output
/// rows) end inside the plane.
fn tall_case(kind: PoolKind) -> impl Strategy<Value = Case> {
    (case(kind), 33usize..=90).prop_map(|(mut c, h)| {
        c.shape = [1, c.shape[1].min(2), h, c.shape[3].min(40)];
        c
    })
}

proptest! {
    #![proptest_config(cases(16))]

    #[test]
    fn tall_planes_match_reference(c in tall_case(PoolKind::Max), a in tall_case(PoolKind::Avg)) {
        let x = fill(c.shape.iter().product(), c.seed, c.mode);
        let no_idx = reference::max_pool2d_with_indices(&x, c.shape, &c.q).unwrap().1;
        let xa = fill(a.shape.iter().product(), a.seed, a.mode);
        for isa in isas() {
            let plan = Pool2dPlan::with_isa(&c.q, c.shape, isa).unwrap();
            let mut y = vec![0.0; no_idx.len()];
            plan.run(&x, &mut y).unwrap();
            check_max(&x, c.shape, &c.q, (&y, &no_idx), &plan.path());
            let plan = Pool2dPlan::with_isa(&a.q, a.shape, isa).unwrap();
            let mut y = vec![f32::NAN; plan.output_shape().iter().product()];
            plan.run(&xa, &mut y).unwrap();
            check_avg(&xa, a.shape, &a.q, &y, &plan.path());
        }
    }
}

proptest! {
    #![proptest_config(cases(96))]

    #[test]
    fn max_pool_matches_reference(c in case(PoolKind::Max)) {
        let x = fill(c.shape.iter().product(), c.seed, c.mode);
        let (y, idx) = receptive::max_pool2d_with_indices(&x, c.shape, &c.q).unwrap();
        check_max(&x, c.shape, &c.q, (&y, &idx), "max_pool2d_with_indices");
        let y2 = receptive::max_pool2d(&x, c.shape, &c.q).unwrap();
        let no_idx: Vec<i64> = reference::max_pool2d_with_indices(&x, c.shape, &c.q).unwrap().1;
        check_max(&x, c.shape, &c.q, (&y2, &no_idx), "max_pool2d");
        for isa in isas() {
            let plan = Pool2dPlan::with_isa(&c.q, c.shape, isa).unwrap();
            let what = plan.path();
            let (mut y, mut idx) = (vec![0.0; y2.len()], vec![0; y2.len()]);
            plan.run_with_indices(&x, &mut y, &mut idx).unwrap();
            check_max(&x, c.shape, &c.q, (&y, &idx), &what);
            plan.run(&x, &mut y).unwrap();
            check_max(&x, c.shape, &c.q, (&y, &no_idx), &what);
        }
    }

    #[test]
    fn avg_pool_matches_reference(c in case(PoolKind::Avg)) {
        let x = fill(c.shape.iter().product(), c.seed, c.mode);
        let y = receptive::avg_pool2d(&x, c.shape, &c.q).unwrap();
        check_avg(&x, c.shape, &c.q, &y, "avg_pool2d");
        for isa in isas() {
            let plan = Pool2dPlan::with_isa(&c.q, c.shape, isa).unwrap();
            let mut y = vec![f32::NAN; y.len()];
            plan.run(&x, &mut y).unwrap();
            check_avg(&x, c.shape, &c.q, &y, &plan.path());
        }
    }

    #[test]
    fn global_pools_match_reference(
        n in 1usize..=3, c in 1usize..=40, h in 1usize..=9, w in 1usize..=40, mode in 0u8..3, seed in any::<u64>()
    ) {
        let shape = [n, c, h, w];
        let x = fill(n * c * h * w, seed, mode);
        let gmax = receptive::global_max_pool2d(&x, shape).unwrap();
        let wmax = reference::global_max_pool2d(&x, shape).unwrap();
        for (g, w) in gmax.iter().zip(&wmax) {
            prop_assert_eq!(g.to_bits(), w.to_bits(), "global max {:?}: {} vs {}", shape, g, w);
        }
        let q = Pool2dParams::avg([h, w]);
        check_avg(&x, shape, &q, &receptive::global_avg_pool2d(&x, shape).unwrap(), "global_avg_pool2d");
        for isa in isas() {
            for q in [Pool2dParams::max([h, w]), q, q.divisor_override(Some(h * w))] {
                let plan = Pool2dPlan::with_isa(&q, shape, isa).unwrap();
                let mut y = vec![f32::NAN; n * c];
                plan.run(&x, &mut y).unwrap();
                if q.kind == PoolKind::Max {
                    for (g, w) in y.iter().zip(&wmax) {
                        prop_assert_eq!(g.to_bits(), w.to_bits(), "{} {:?}", plan.path(), shape);
                    }
                } else {
                    check_avg(&x, shape, &q, &y, &plan.path());
                }
            }
        }
    }
}

/// The shapes of the benchmark suite (smaller batch), every ISA.
#[test]
fn suite_layers_match_reference() {
    let layers = [
        ([1, 4, 112, 112], Pool2dParams::max([3, 3]).stride(2).padding(1)),
        ([1, 4, 224, 224], Pool2dParams::max([2, 2])),
        ([1, 8, 35, 35], Pool2dParams::avg([3, 3]).stride(1).padding(1).count_include_pad(false)),
        ([2, 6, 56, 56], Pool2dParams::max([2, 2])),
        ([1, 64, 7, 7], Pool2dParams::avg([7, 7])),
    ];
    for (shape, q) in layers {
        let x = fill(shape.iter().product(), 7, 2);
        for isa in isas() {
            let plan = Pool2dPlan::with_isa(&q, shape, isa).unwrap();
            let n = plan.output_shape().iter().product();
            let mut y = vec![0.0; n];
            plan.run(&x, &mut y).unwrap();
            if q.kind == PoolKind::Max {
                let mut idx = vec![0; n];
                plan.run_with_indices(&x, &mut y, &mut idx).unwrap();
                check_max(&x, shape, &q, (&y, &idx), &plan.path());
            } else {
                check_avg(&x, shape, &q, &y, &plan.path());
            }
        }
    }
}

/// The path names the ISA CI asked for, so a lower path is never tested in its place.
#[test]
fn plans_run_the_active_isa() {
    let isa = receptive::active_isa();
    let plan = Pool2dPlan::new(&Pool2dParams::max([3, 3]).stride(2).padding(1), [1, 2, 40, 40]).unwrap();
    assert_eq!(plan.path(), format!("maxpool {isa} s2"));
    let plan = Pool2dPlan::new(&Pool2dParams::avg([3, 3]).stride(1), [1, 2, 40, 40]).unwrap();
    assert_eq!(plan.path(), format!("avgpool {isa} s1"));
    // Unit strides with rows as wide as the input's take the flat path.
    let plan = Pool2dPlan::new(&Pool2dParams::avg([3, 3]).stride(1).padding(1), [1, 2, 35, 35]).unwrap();
    assert_eq!(plan.path(), format!("avgpool {isa} s1 flat"));
    // Strides above 2 run the one-lane body of the same code.
    let plan = Pool2dPlan::new(&Pool2dParams::max([3, 3]).stride(3), [1, 2, 40, 40]).unwrap();
    assert_eq!(plan.path(), "maxpool scalar s3");
    let plan = Pool2dPlan::new(&Pool2dParams::avg([7, 7]), [1, 2, 7, 7]).unwrap();
    assert_eq!(plan.path(), format!("globalavgpool {isa}"));
}

/// Results do not depend on the thread count or the chunking.
#[test]
fn thread_count_does_not_change_results() {
    let shape = [3, 37, 19, 45];
    let x = fill(shape.iter().product(), 3, 2);
    let run = |threads: usize, q: &Pool2dParams| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let plan = Pool2dPlan::new(q, shape).unwrap();
            let n = plan.output_shape().iter().product();
            let (mut y, mut idx) = (vec![0.0f32; n], vec![0i64; n]);
            if q.kind == PoolKind::Max {
                plan.run_with_indices(&x, &mut y, &mut idx).unwrap();
            } else {
                plan.run(&x, &mut y).unwrap();
            }
            (y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), idx)
        })
    };
    for q in [Pool2dParams::max([3, 2]).stride(2).padding(1), Pool2dParams::avg([2, 3]).stride(1).ceil_mode(true)] {
        let one = run(1, &q);
        for t in [2, 3, 5] {
            assert_eq!(one, run(t, &q), "{q:?} with {t} threads");
        }
    }
}

/// `dx` within the tolerance of summing `terms` contributions whose
/// absolute values add up to `abs` (the reference run on |dy|).
fn check_grad(got: &[f32], want: &[f32], abs: &[f32], terms: usize, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((g, w), a)) in got.iter().zip(want).zip(abs).enumerate() {
        assert!((g - w).abs() <= reference::tolerance(terms, *a), "{what} at {i}: got {g} want {w}");
    }
}

/// Windows overlapping one input element: at most ceil(k/s) per axis.
fn overlap(q: &Pool2dParams) -> usize {
    (0..2).map(|a| (q.dilation[a] * (q.kernel[a] - 1) + 1).div_ceil(q.stride[a])).product::<usize>() + 1
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn max_pool_backward_matches_reference(c in case(PoolKind::Max)) {
        let x = fill(c.shape.iter().product(), c.seed, c.mode);
        let (y, idx) = receptive::max_pool2d_with_indices(&x, c.shape, &c.q).unwrap();
        let dy = fill(y.len(), c.seed ^ 1, 0);
        let got = receptive::max_pool2d_backward(&dy, &idx, c.shape, &c.q).unwrap();
        let want = reference::max_pool2d_backward(&dy, &idx, c.shape, &c.q).unwrap();
        let ady: Vec<f32> = dy.iter().map(|v| v.abs()).collect();
        let abs = reference::max_pool2d_backward(&ady, &idx, c.shape, &c.q).unwrap();
        check_grad(&got, &want, &abs, overlap(&c.q), "max_pool2d_backward");
    }

    #[test]
    fn avg_pool_backward_matches_reference(c in case(PoolKind::Avg)) {
        let n_out: usize = c.q.output_shape(c.shape).unwrap().iter().product();
        let dy = fill(n_out, c.seed, 0);
        let got = receptive::avg_pool2d_backward(&dy, c.shape, &c.q).unwrap();
        let want = reference::avg_pool2d_backward(&dy, c.shape, &c.q).unwrap();
        let ady: Vec<f32> = dy.iter().map(|v| v.abs()).collect();
        let abs = reference::avg_pool2d_backward(&ady, c.shape, &c.q).unwrap();
        check_grad(&got, &want, &abs, overlap(&c.q) + 1, "avg_pool2d_backward");
    }

    /// The backward references against central differences of
    /// `L(x) = <dy, pool(x)>` computed in f64. Inputs are distinct values
    /// one apart, so a step of 1/4 never changes a max window's winner.
    #[test]
    fn backward_references_match_finite_differences(c in case(PoolKind::Max), avg in any::<bool>()) {
        prop_assume!(c.shape.iter().product::<usize>() <= 400);
        let q = if avg {
            Pool2dParams { kind: PoolKind::Avg, dilation: [1, 1], ..c.q }
        } else {
            Pool2dParams { divisor_override: None, ..c.q }
        };
        prop_assume!(q.output_shape(c.shape).is_ok());
        let len: usize = c.shape.iter().product();
        // A permutation of 0..len: distinct values one apart.
        let mut x: Vec<f32> = (0..len).map(|i| i as f32).collect();
        x.sort_by_key(|v| ((*v as u64).wrapping_mul(c.seed | 1) >> 7) % 1009);
        let fwd = |x: &[f32]| if avg { reference::avg_pool2d(x, c.shape, &q) } else { reference::max_pool2d(x, c.shape, &q) };
        let dy = fill(fwd(&x).unwrap().len(), c.seed, 0);
        let loss = |x: &[f32]| -> f64 { fwd(x).unwrap().iter().zip(&dy).map(|(y, g)| *y as f64 * *g as f64).sum() };
        let dx = if avg {
            reference::avg_pool2d_backward(&dy, c.shape, &q).unwrap()
        } else {
            let (_, idx) = reference::max_pool2d_with_indices(&x, c.shape, &q).unwrap();
            reference::max_pool2d_backward(&dy, &idx, c.shape, &q).unwrap()
        };
        let h = 0.25f32;
        for i in 0..len {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let fd = (loss(&xp) - loss(&xm)) / (2.0 * h as f64);
            // Only the windows holding x[i] change; each f32 output (|y| <= len)
            // is rounded once, by at most len * eps, and |dy| <= 10.
            let tol = 2.0 * overlap(&q) as f64 * 10.0 * len as f64 * f32::EPSILON as f64 / (2.0 * h as f64);
            let err = (fd - dx[i] as f64).abs();
            prop_assert!(err <= tol + f32::EPSILON as f64 * fd.abs(), "{:?} at {}: fd {} vs {} (tol {})", q, i, fd, dx[i], tol);
        }
    }
}

#[test]
fn backward_rejects_bad_input() {
    let q = Pool2dParams::max([2, 2]);
    let shape = [1, 1, 4, 4];
    assert!(receptive::max_pool2d_backward(&[1.0; 4], &[0, 1, 2, 16], shape, &q).is_err());
    assert!(receptive::max_pool2d_backward(&[1.0; 4], &[0, 1, 2, -1], shape, &q).is_err());
    assert!(receptive::max_pool2d_backward(&[1.0; 3], &[0, 1, 2], shape, &q).is_err());
    assert!(receptive::avg_pool2d_backward(&[1.0; 5], shape, &Pool2dParams::avg([2, 2])).is_err());
    // Overlapping windows accumulate: 3x3 input, 2x2 windows at stride 1,
    // every window's max is the centre.
    let x = [0.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0];
    let q = Pool2dParams::max([2, 2]).stride(1);
    let (_, idx) = receptive::max_pool2d_with_indices(&x, [1, 1, 3, 3], &q).unwrap();
    assert_eq!(idx, [4, 4, 4, 4]);
    let dx = receptive::max_pool2d_backward(&[1.0, 2.0, 3.0, 4.0], &idx, [1, 1, 3, 3], &q).unwrap();
    assert_eq!(dx, [0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0]);
}

/// PyTorch's named traps, expected values written by hand.
#[test]
fn pytorch_traps() {
    // Length 5, kernel 2, stride 2, pad 1, ceil: (5 + 2 - 2)/2 = 2.5 -> 3 + 1 = 4
    // windows, but the 4th would start at 6 >= 5 + 1 (in the right padding),
    // so 3 outputs: [-1, 0] [1, 2] [3, 4].
    let q = Pool2dParams::max([1, 2]).stride(2).padding_with(Padding::new(0, 0, 1, 1)).ceil_mode(true);
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    let (y, idx) = receptive::max_pool2d_with_indices(&x, [1, 1, 1, 5], &q).unwrap();
    assert_eq!((y, idx), (vec![1.0, 3.0, 5.0], vec![0, 2, 4]));
    // avg [1, 2, 3, 4, 5], kernel 2, stride 2, ceil: the last window holds only the 5.
    let q = Pool2dParams::avg([1, 2]).stride(2).ceil_mode(true);
    assert_eq!(receptive::avg_pool2d(&x, [1, 1, 1, 5], &q).unwrap(), [1.5, 3.5, 5.0]);
    // count_include_pad: a window half in padding divides by 2 or by 1.
    let q = Pool2dParams::avg([1, 2]).stride(2).padding_with(Padding::new(0, 0, 1, 0));
    assert_eq!(receptive::avg_pool2d(&x, [1, 1, 1, 5], &q).unwrap(), [0.5, 2.5, 4.5]);
    assert_eq!(receptive::avg_pool2d(&x, [1, 1, 1, 5], &q.count_include_pad(false)).unwrap(), [1.0, 2.5, 4.5]);
    assert_eq!(receptive::avg_pool2d(&x, [1, 1, 1, 5], &q.divisor_override(Some(4))).unwrap(), [0.25, 1.25, 2.25]);
}

/// NaN wins (the last NaN's index), ties keep the first index, -inf is a
/// value like any other; written for a row long enough for every vector path.
#[test]
fn nan_ties_and_infinities() {
    let w = 64;
    let mut x = vec![1.0f32; w];
    x[3] = f32::NAN; // window 1 (cols 2..4)
    x[10] = f32::NAN; // window 5 (cols 10..12) holds two NaNs: the last wins
    x[11] = -f32::NAN;
    x[20] = f32::NEG_INFINITY; // window 10: -inf and 1.0 -> 1.0 at 21
    x[30] = f32::NEG_INFINITY; // window 15: all -inf -> first index
    x[31] = f32::NEG_INFINITY;
    x[40] = 7.0; // window 20: tie 7.0, 7.0 -> first
    x[41] = 7.0;
    let q = Pool2dParams::max([1, 2]);
    for isa in isas() {
        let plan = Pool2dPlan::with_isa(&q, [1, 1, 1, w], isa).unwrap();
        let (mut y, mut idx) = (vec![0.0; w / 2], vec![0; w / 2]);
        plan.run_with_indices(&x, &mut y, &mut idx).unwrap();
        let what = plan.path();
        assert!(y[1].is_nan() && idx[1] == 3, "{what}");
        assert!(y[5].is_nan() && y[5].to_bits() == (-f32::NAN).to_bits() && idx[5] == 11, "{what}");
        assert_eq!((y[10], idx[10]), (1.0, 21), "{what}");
        assert_eq!((y[15], idx[15]), (f32::NEG_INFINITY, 30), "{what}");
        assert_eq!((y[20], idx[20]), (7.0, 40), "{what}");
        assert_eq!((y[0], idx[0]), (1.0, 0), "{what}");
        let g = receptive::global_max_pool2d(&x, [1, 1, 1, w]).unwrap();
        assert_eq!(g[0].to_bits(), (-f32::NAN).to_bits(), "global max keeps the last NaN");
    }
}

/// Wrong lengths and indices of an average are errors, and nothing is written.
#[test]
fn plan_rejects_bad_buffers() {
    let plan = Pool2dPlan::new(&Pool2dParams::max([2, 2]), [1, 2, 4, 4]).unwrap();
    assert_eq!(plan.output_shape(), [1, 2, 2, 2]);
    let x = vec![1.0f32; 32];
    let mut y = vec![-5.0f32; 8];
    let mut idx = vec![-1i64; 8];
    assert!(plan.run(&x[..31], &mut y).is_err());
    assert!(plan.run(&x, &mut y[..7]).is_err());
    assert!(plan.run_with_indices(&x, &mut y, &mut idx[..7]).is_err());
    assert!(y.iter().all(|&v| v == -5.0) && idx.iter().all(|&i| i == -1));
    let avg = Pool2dPlan::new(&Pool2dParams::avg([2, 2]), [1, 2, 4, 4]).unwrap();
    assert!(avg.run_with_indices(&x, &mut y, &mut idx).is_err());
    assert!(receptive::max_pool2d(&x, [1, 2, 4, 5], &Pool2dParams::max([2, 2])).is_err());
    assert!(receptive::avg_pool2d(&x, [1, 2, 4, 4], &Pool2dParams::avg([2, 2]).padding(2)).is_err());
}

/// Max pooling without indices over windows whose rows overlap runs
/// separably (row maxima shared by output rows): bitwise against the
/// reference for NaN, ties, signed zeros and infinities, with row lengths
/// that leave partial vectors, paddings, strides 1 and 2, odd widths.
#[test]
fn separable_max_matches_reference() {
    let geometries = [
        ([3, 3], [2, 2], [1, 1, 1, 1]),
        ([3, 3], [1, 1], [1, 1, 1, 1]),
        ([3, 2], [2, 2], [0, 1, 0, 1]),
        ([4, 3], [3, 2], [2, 1, 1, 0]),
        ([5, 5], [2, 1], [2, 2, 2, 2]),
        ([2, 3], [1, 2], [0, 0, 1, 1]),
    ];
    for (kernel, stride, [pt, pb, pl, pr]) in geometries {
        for (h, w) in [(9, 33), (9, 40), (9, 71), (9, 112), (21, 37), (40, 17)] {
            let shape = [1, 2, h, w];
            let q = Pool2dParams::max(kernel).stride_hw(stride).padding_with(Padding::new(pt, pb, pl, pr));
            for mode in 0..3 {
                let x = fill(shape.iter().product(), w as u64 + mode as u64, mode);
                let idx = reference::max_pool2d_with_indices(&x, shape, &q).unwrap().1;
                for isa in isas() {
                    let plan = Pool2dPlan::with_isa(&q, shape, isa).unwrap();
                    let mut y = vec![0.0; idx.len()];
                    plan.run(&x, &mut y).unwrap();
                    check_max(&x, shape, &q, (&y, &idx), &plan.path());
                }
            }
        }
    }
}

/// Average pooling's paths, bands of rows and the flat path (unit strides,
/// output rows as wide as the input, small planes), against the reference
/// for every divisor rule, with planes around the flat path's limits and
/// widths that leave partial vectors.
#[test]
fn avg_paths_match_reference() {
    let geometries = [
        ([3, 3], [1, 1], [1, 1, 1, 1]),
        ([3, 3], [1, 1], [0, 2, 2, 0]),
        ([5, 3], [1, 1], [2, 2, 1, 1]),
        ([2, 4], [1, 1], [1, 0, 2, 1]),
        ([1, 3], [1, 1], [0, 0, 1, 1]),
        ([3, 3], [2, 2], [1, 1, 1, 1]),
        ([3, 3], [1, 2], [1, 1, 0, 0]),
    ];
    for (kernel, stride, [pt, pb, pl, pr]) in geometries {
        for (h, w) in [(2, 3), (5, 7), (9, 33), (35, 35), (20, 40), (70, 70), (3, 130)] {
            let shape = [1, 3, h, w];
            let base = Pool2dParams::avg(kernel).stride_hw(stride).padding_with(Padding::new(pt, pb, pl, pr));
            for q in [base, base.count_include_pad(false), base.divisor_override(Some(7)), base.ceil_mode(true)] {
                if q.output_shape(shape).is_err() {
                    continue;
                }
                for mode in [0, 2] {
                    let x = fill(shape.iter().product(), (h * w) as u64, mode);
                    for isa in isas() {
                        let plan = Pool2dPlan::with_isa(&q, shape, isa).unwrap();
                        let mut y = vec![f32::NAN; plan.output_shape().iter().product()];
                        plan.run(&x, &mut y).unwrap();
                        check_avg(&x, shape, &q, &y, &plan.path());
                    }
                }
            }
        }
    }
}
