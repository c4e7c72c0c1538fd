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
                let (hh, hw) = ((dh * (kh - 1) + 1) / 2, (dw * (kw - 1) + 1) / 2);
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
