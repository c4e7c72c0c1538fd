//! The public `sgemm` against `reference::sgemm` over random shapes,
//! strides (transposes included), alpha, beta, bias and activation; the
//! parallel split against the single-threaded run; a large product against
//! matrixmultiply.

use proptest::prelude::*;
use receptive::{Activation, Bias, MatMut, MatRef, reference, sgemm};

use receptive::reference::pseudo_random as fill;

/// A strided layout of an `rows x cols` matrix: row- or column-major, with
/// `pad` unused elements after each run of the inner axis.
#[derive(Clone, Copy, Debug)]
struct Layout {
    col_major: bool,
    pad: usize,
}

impl Layout {
    /// (row stride, column stride, slice length).
    fn strides(self, rows: usize, cols: usize) -> (usize, usize, usize) {
        if self.col_major {
            let ld = (rows + self.pad).max(1);
            (1, ld, ld * cols)
        } else {
            let ld = (cols + self.pad).max(1);
            (ld, 1, ld * rows)
        }
    }
}

fn layout() -> impl Strategy<Value = Layout> {
    (any::<bool>(), prop_oneof![Just(0usize), 1usize..6]).prop_map(|(col_major, pad)| Layout { col_major, pad })
}

#[derive(Clone, Debug)]
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    la: Layout,
    lb: Layout,
    lc: Layout,
    alpha: f32,
    beta: f32,
    bias: u8,
    act: Activation,
    seed: u64,
}

fn problem(max: usize) -> impl Strategy<Value = Problem> {
    let act = prop_oneof![
        Just(Activation::None),
        Just(Activation::Relu),
        (-1.0f32..0.0, 0.0f32..1.0).prop_map(|(min, max)| Activation::Clamp { min, max }),
    ];
    (
        (0..max, 0..max, 0..max),
        (layout(), layout(), layout()),
        (-2.0f32..2.0, prop_oneof![Just(0.0f32), Just(1.0f32), -1.5f32..1.5]),
        (0u8..3, act, any::<u64>()),
    )
        .prop_map(|((m, n, k), (la, lb, lc), (alpha, beta), (bias, act, seed))| Problem {
            m,
            n,
            k,
            la,
            lb,
            lc,
            alpha,
            beta,
            bias,
            act,
            seed,
        })
}

/// Runs `p` through `sgemm` and the reference and compares, with the
/// tolerance of each output derived from the absolute sum of its terms
/// (the reference run on |A|, |B|, |C|, |bias|).
fn check(p: &Problem) -> Result<(), TestCaseError> {
    let Problem { m, n, k, la, lb, lc, alpha, beta, bias, act, seed } = p.clone();
    let (rsa, csa, lena) = la.strides(m, k);
    let (rsb, csb, lenb) = lb.strides(k, n);
    let (rsc, csc, lenc) = lc.strides(m, n);
    let a = fill(lena, seed);
    let b = fill(lenb, seed ^ 1);
    let mut c0 = fill(lenc, seed ^ 2);
    if beta == 0.0 {
        c0.iter_mut().step_by(2).for_each(|x| *x = f32::NAN);
    }
    let bias_v = fill(m.max(n), seed ^ 3);
    fn bias_of(kind: u8, v: &[f32], m: usize, n: usize) -> Bias<'_> {
        match kind {
            1 => Bias::PerRow(&v[..m]),
            2 => Bias::PerCol(&v[..n]),
            _ => Bias::None,
        }
    }
    let av = MatRef::new(&a, m, k, rsa, csa).unwrap();
    let bv = MatRef::new(&b, k, n, rsb, csb).unwrap();
    let (mut got, mut want) = (c0.clone(), c0.clone());
    sgemm(alpha, av, bv, beta, MatMut::new(&mut got, m, n, rsc, csc).unwrap(), bias_of(bias, &bias_v, m, n), act)
        .unwrap();
    reference::sgemm(
        alpha,
        av,
        bv,
        beta,
        MatMut::new(&mut want, m, n, rsc, csc).unwrap(),
        bias_of(bias, &bias_v, m, n),
        act,
    )
    .unwrap();

    let abs = |v: &[f32]| v.iter().map(|x| if x.is_nan() { 0.0 } else { x.abs() }).collect::<Vec<f32>>();
    let (aa, ba, mut bound, biasa) = (abs(&a), abs(&b), abs(&c0), abs(&bias_v));
    reference::sgemm(
        alpha.abs(),
        MatRef::new(&aa, m, k, rsa, csa).unwrap(),
        MatRef::new(&ba, k, n, rsb, csb).unwrap(),
        beta.abs(),
        MatMut::new(&mut bound, m, n, rsc, csc).unwrap(),
        bias_of(bias, &biasa, m, n),
        Activation::None,
    )
    .unwrap();
    for i in 0..m {
        for j in 0..n {
            let at = i * rsc + j * csc;
            let (g, w) = (got[at], want[at]);
            let tol = reference::tolerance(k, bound[at]);
            prop_assert!((g - w).abs() <= tol, "{p:?}: C[{i},{j}] = {g}, want {w} (tol {tol})");
        }
    }
    // Elements outside the view are untouched.
    let inside: std::collections::HashSet<usize> =
        (0..m).flat_map(|i| (0..n).map(move |j| i * rsc + j * csc)).collect();
    for (at, (g, c)) in got.iter().zip(&c0).enumerate() {
        if !inside.contains(&at) {
            prop_assert!(g.to_bits() == c.to_bits(), "{p:?}: wrote outside C at {at}");
        }
    }
    Ok(())
}

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig::with_cases(n)
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn sgemm_matches_reference(p in problem(40)) {
        check(&p)?;
    }

    /// Products big enough to cross the KC block, several MC blocks and the
    /// parallel threshold.
    #[test]
    fn larger_sgemm_matches_reference(p in problem(200)) {
        check(&p)?;
    }
}

/// Splitting C across threads must give bit-identical results: the split
/// never cuts the reduction, so each element sums in the same order.
#[test]
fn parallel_split_is_bit_identical_to_one_thread() {
    let (m, n, k) = (301, 263, 310);
    let a = fill(m * k, 7);
    let b = fill(k * n, 8);
    let bias = fill(m, 9);
    let run = |threads: usize| {
        let mut c = fill(m * n, 10);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            sgemm(
                1.5,
                MatRef::new(&a, m, k, 1, m).unwrap(),
                MatRef::new(&b, k, n, n, 1).unwrap(),
                0.5,
                MatMut::new(&mut c, m, n, n, 1).unwrap(),
                Bias::PerRow(&bias),
                Activation::Clamp { min: -3.0, max: 3.0 },
            )
        })
        .unwrap();
        c
    };
    let one = run(1);
    for threads in [2, 3, 4] {
        assert!(one == run(threads), "{threads} threads differ from one");
    }
}

/// The parallel split on shapes it cuts across the columns (wide C), across
/// the rows (tall C, and C whose column tiles would split unevenly) and
/// again inside a part (3 threads), with partial tiles at the edges:
/// against the reference, and bit for bit the same as one thread and as a
/// second run on the same pool.
#[test]
fn parallel_parts_match_reference_and_one_thread() {
    // (m, n, k, A column-major, bias per column)
    let shapes = [
        (61, 1100, 260, true, true),
        (700, 50, 260, false, false),
        (130, 790, 330, false, false),
        (131, 131, 131, true, true),
    ];
    for (seed, &(m, n, k, a_col_major, per_col)) in (20..).step_by(4).zip(&shapes) {
        let a = fill(m * k, seed);
        let b = fill(k * n, seed + 1);
        let c0 = fill(m * n, seed + 2);
        let bias_v = fill(if per_col { n } else { m }, seed + 3);
        fn bias_of(v: &[f32], per_col: bool) -> Bias<'_> {
            if per_col { Bias::PerCol(v) } else { Bias::PerRow(v) }
        }
        let (rsa, csa) = if a_col_major { (1, m) } else { (k, 1) };
        let av = MatRef::new(&a, m, k, rsa, csa).unwrap();
        let bv = MatRef::new(&b, k, n, n, 1).unwrap();
        let act = Activation::Clamp { min: -4.0, max: 4.0 };
        let run = |pool: &rayon::ThreadPool| {
            let mut c = c0.clone();
            pool.install(|| {
                sgemm(0.75, av, bv, 0.5, MatMut::new(&mut c, m, n, n, 1).unwrap(), bias_of(&bias_v, per_col), act)
            })
            .unwrap();
            c
        };
        let mut want = c0.clone();
        let cv = MatMut::new(&mut want, m, n, n, 1).unwrap();
        reference::sgemm(0.75, av, bv, 0.5, cv, bias_of(&bias_v, per_col), act).unwrap();
        // Each output's absolute sum of terms: the reference on |A|, |B|, |C|, |bias|.
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
        let (aa, ba, mut bound, biasa) = (abs(&a), abs(&b), abs(&c0), abs(&bias_v));
        reference::sgemm(
            0.75,
            MatRef::new(&aa, m, k, rsa, csa).unwrap(),
            MatRef::new(&ba, k, n, n, 1).unwrap(),
            0.5,
            MatMut::new(&mut bound, m, n, n, 1).unwrap(),
            bias_of(&biasa, per_col),
            Activation::None,
        )
        .unwrap();
        let one = run(&rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap());
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let got = run(&pool);
            for (i, ((g, w), s)) in got.iter().zip(&want).zip(&bound).enumerate() {
                let tol = reference::tolerance(k, *s);
                assert!((g - w).abs() <= tol, "{m}x{n}x{k} on {threads} threads at {i}: {g} vs {w} (tol {tol})");
            }
            assert!(got == one, "{m}x{n}x{k}: {threads} threads differ from one");
            assert!(got == run(&pool), "{m}x{n}x{k}: two runs on {threads} threads differ");
        }
    }
}

/// A large product (several KC, MC and NC blocks, two threads) against
/// matrixmultiply, an independent blocked SGEMM.
#[test]
fn large_sgemm_matches_matrixmultiply() {
    let (m, n, k) = (517, 1100, 1031);
    let a = fill(m * k, 11);
    let b = fill(k * n, 12);
    let mut got = vec![0.0f32; m * n];
    let mut want = vec![0.0f32; m * n];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    // A transposed in memory (column-major), B and C row-major.
    let av = MatRef::new(&a, m, k, 1, m).unwrap();
    let bv = MatRef::new(&b, k, n, n, 1).unwrap();
    pool.install(|| sgemm(1.0, av, bv, 0.0, MatMut::new(&mut got, m, n, n, 1).unwrap(), Bias::None, Activation::None))
        .unwrap();
    receptive_kernels::peers::matrixmultiply_sgemm(1.0, av, bv, 0.0, MatMut::new(&mut want, m, n, n, 1).unwrap());
    // |a|, |b| < 1: each output's absolute sum is below k; both sides
    // round, so allow the tolerance twice.
    let tol = 2.0 * reference::tolerance(k, k as f32);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= tol, "at {i}: {g} vs matrixmultiply {w}");
    }
}
