//! Every microkernel in the registry over the edge matrix, against the
//! reference: each tile size m x n up to MR x NR, reductions around the KC
//! block and the unroll, prime leading dimensions, every epilogue, beta 0, 1
//! and 0.37. The kernels run through `Gemm` with a single tile, so the test
//! exercises the kernel's own partial-tile handling, once over packed panels
//! and once reading A and B in place (the strided entry point).
//!
//! A kernel this CPU cannot run is skipped, unless `RECEPTIVE_ENSURE_ISA`
//! names its ISA: then the test fails, so CI never passes without running it.

use receptive::{Activation, Bias, MatMut, MatRef, reference};
use receptive_kernels::Isa;
use receptive_kernels::gemm::{ASource, Epilogue, Gemm, KERNELS, MicroKernel, Packing};

use receptive::reference::pseudo_random as fill;

/// The kernels this run must test: all the CPU supports; panics if the
/// ensured ISA's kernels cannot run.
fn runnable_kernels() -> Vec<&'static MicroKernel> {
    let ensure = receptive_kernels::isa::env_ensure().expect("RECEPTIVE_ENSURE_ISA names an ISA");
    if let Some(want) = ensure {
        assert!(KERNELS.iter().any(|k| k.isa == want), "RECEPTIVE_ENSURE_ISA={want} but no {want} kernel is compiled");
    }
    KERNELS
        .iter()
        .filter(|k| {
            let ok = k.isa.supported();
            assert!(ok || ensure != Some(k.isa), "RECEPTIVE_ENSURE_ISA={} but {} cannot run here", k.isa, k.name);
            if !ok {
                eprintln!("skipping {}: this CPU lacks {}", k.name, k.isa);
            }
            ok
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Ep {
    Plain,
    BiasRow,
    BiasColRelu,
    ClampBoth,
}

struct Case {
    m: usize,
    n: usize,
    k: usize,
    beta: f32,
    ep: Ep,
    /// Store C column-major (cs_c != 1: the spill path) instead of row-major.
    col_major_c: bool,
    /// Store A column-major instead of row-major.
    col_major_a: bool,
}

/// Runs one case through `gemm` and the reference; returns how many
/// elements were checked.
fn check(gemm: &Gemm, packing: Packing, case: &Case, seed: u64) {
    let Case { m, n, k, beta, ep, col_major_c, col_major_a } = *case;
    // Prime leading dimensions: A with lda 7 past its inner extent, B with
    // ldb 11 past n, C with ldc 13 past its inner extent.
    let (rs_a, cs_a, len_a) = if col_major_a { (1, m + 7, k.max(1) * (m + 7)) } else { (k + 7, 1, m * (k + 7)) };
    let ldb = n + 11;
    let a = fill(len_a, seed);
    let b = fill(k.max(1) * ldb, seed + 1);
    let (rs_c, cs_c, len_c) = if col_major_c { (1, m + 13, n * (m + 13)) } else { (n + 13, 1, m * (n + 13)) };
    let mut c0 = fill(len_c, seed + 2);
    if beta == 0.0 {
        // beta = 0 must not read C: NaN there must not reach the result.
        c0.iter_mut().step_by(3).for_each(|x| *x = f32::NAN);
    }
    let bias_row = fill(m, seed + 3);
    let bias_col = fill(n, seed + 4);
    let (bias, act) = match ep {
        Ep::Plain => (Bias::None, Activation::None),
        Ep::BiasRow => (Bias::PerRow(&bias_row), Activation::None),
        Ep::BiasColRelu => (Bias::PerCol(&bias_col), Activation::Relu),
        Ep::ClampBoth => (Bias::PerRow(&bias_row), Activation::Clamp { min: -0.3, max: 0.4 }),
    };
    let clamp = match act {
        Activation::None => None,
        Activation::Relu => Some((0.0, f32::INFINITY)),
        Activation::Clamp { min, max } => Some((min, max)),
    };
    let alpha = 0.75;
    let av = MatRef::new(&a, m, k, rs_a, cs_a).unwrap();
    let bv = MatRef::new(&b, k, n, ldb, 1).unwrap();
    let (mut got, mut want) = (c0.clone(), c0.clone());
    gemm.run_with(
        packing,
        alpha,
        ASource::Strided(av),
        &bv,
        beta,
        MatMut::new(&mut got, m, n, rs_c, cs_c).unwrap(),
        &Epilogue { bias, clamp },
    );
    reference::sgemm(alpha, av, bv, beta, MatMut::new(&mut want, m, n, rs_c, cs_c).unwrap(), bias, act).unwrap();
    // |a|, |b|, |c|, |bias| <= 1: the absolute sum of the terms of one
    // output is at most alpha * k + |beta| + 1.
    let tol = reference::tolerance(k, alpha * k as f32 + beta.abs() + 1.0);
    for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
        let inside = if col_major_c { idx % (m + 13) < m } else { idx % (n + 13) < n };
        if !inside {
            // Padding between rows/columns: never written.
            assert!(g.to_bits() == c0[idx].to_bits(), "{}: wrote outside C at {idx}", gemm.kernel.name);
            continue;
        }
        assert!(
            (g - w).abs() <= tol,
            "{} {packing:?}: m={m} n={n} k={k} beta={beta} {ep:?} col_major_c={col_major_c} \
             col_major_a={col_major_a} at {idx}: got {g}, want {w}",
            gemm.kernel.name
        );
    }
}

#[test]
fn every_kernel_over_the_edge_matrix() {
    for kernel in runnable_kernels() {
        let gemm = Gemm::for_kernel(kernel);
        let kc = gemm.kc;
        // The body steps one k at a time; 4 stands in for an unroll of the
        // compiler's choosing.
        let ks = [1, 3, 4, 5, kc - 1, kc, kc + 1];
        let betas = [0.0, 1.0, 0.37];
        let eps = [Ep::Plain, Ep::BiasRow, Ep::BiasColRelu, Ep::ClampBoth];
        let mut count = 0u64;
        for packing in [Packing::Always, Packing::InPlace] {
            for m in 1..=kernel.mr {
                for n in 1..=kernel.nr {
                    for (ki, &k) in ks.iter().enumerate() {
                        // Rotate beta, epilogue and C layout through the grid so
                        // every combination appears, at a fraction of the cost.
                        let r = m + 3 * n + 5 * ki;
                        let case = Case {
                            m,
                            n,
                            k,
                            beta: betas[r % 3],
                            ep: eps[(r / 3) % 4],
                            col_major_c: (r / 12) % 4 == 0,
                            col_major_a: (r / 3) % 2 == 1,
                        };
                        check(&gemm, packing, &case, count);
                        count += 1;
                    }
                }
            }
            // The full tile with every combination.
            for beta in betas {
                for ep in eps {
                    for col_major_c in [false, true] {
                        for &k in &ks {
                            let case =
                                Case { m: kernel.mr, n: kernel.nr, k, beta, ep, col_major_c, col_major_a: k % 2 == 0 };
                            check(&gemm, packing, &case, count);
                            count += 1;
                        }
                    }
                }
            }
        }
    }
}

/// Integer inputs small enough that every product and sum is exact in f32:
/// the kernel must then match the reference bit for bit, in any order.
#[test]
fn every_kernel_is_exact_on_small_integers() {
    for kernel in runnable_kernels() {
        let gemm = Gemm::for_kernel(kernel);
        let (m, n, k) = (2 * kernel.mr + 1, 2 * kernel.nr + 3, gemm.kc + 9);
        let int = |len: usize, seed: u64| -> Vec<f32> {
            fill(len, seed).iter().map(|x| (x * 4.0).round()).collect() // in -4..=4
        };
        let (a, b, c0, bias) = (int(m * k, 1), int(k * n, 2), int(m * n, 3), int(n, 4));
        let av = MatRef::new(&a, m, k, k, 1).unwrap();
        let bv = MatRef::new(&b, k, n, n, 1).unwrap();
        for (alpha, beta) in [(1.0, 0.0), (2.0, 1.0), (-1.0, -3.0)] {
            let (mut got, mut want) = (c0.clone(), c0.clone());
            let ep = Epilogue { bias: Bias::PerCol(&bias), clamp: Some((-100.0, 100.0)) };
            gemm.run(alpha, ASource::Strided(av), &bv, beta, MatMut::new(&mut got, m, n, n, 1).unwrap(), &ep);
            let act = Activation::Clamp { min: -100.0, max: 100.0 };
            reference::sgemm(
                alpha,
                av,
                bv,
                beta,
                MatMut::new(&mut want, m, n, n, 1).unwrap(),
                Bias::PerCol(&bias),
                act,
            )
            .unwrap();
            assert_eq!(got, want, "{} alpha={alpha} beta={beta}", kernel.name);
        }
    }
}

/// NaN produced by the product passes the clamp, as in the reference, and
/// infinities clamp to the bounds.
#[test]
fn every_kernel_keeps_nan_through_the_clamp() {
    for kernel in runnable_kernels() {
        let gemm = Gemm::for_kernel(kernel);
        let (m, n, k) = (kernel.mr, kernel.nr, 3);
        let mut a = vec![1.0f32; m * k];
        a[0] = f32::NAN; // row 0 becomes NaN
        a[k] = f32::INFINITY; // row 1 becomes +inf
        a[2 * k] = f32::NEG_INFINITY; // row 2 (if any) becomes -inf
        let b = vec![1.0f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let ep = Epilogue { bias: Bias::None, clamp: Some((-1.0, 6.0)) };
        gemm.run(
            1.0,
            ASource::Strided(MatRef::new(&a, m, k, k, 1).unwrap()),
            &MatRef::new(&b, k, n, n, 1).unwrap(),
            0.0,
            MatMut::new(&mut c, m, n, n, 1).unwrap(),
            &ep,
        );
        for j in 0..n {
            assert!(c[j].is_nan(), "{}: NaN lost at column {j}", kernel.name);
            assert_eq!(c[n + j], 6.0, "{}", kernel.name);
            if m > 2 {
                assert_eq!(c[2 * n + j], -1.0, "{}", kernel.name);
            }
            if m > 3 {
                assert_eq!(c[3 * n + j], 3.0, "{}", kernel.name);
            }
        }
    }
}

#[test]
fn registry_lists_a_kernel_per_isa_of_this_target() {
    assert!(KERNELS.iter().any(|k| k.isa == Isa::Scalar));
    if cfg!(target_arch = "x86_64") {
        assert!(KERNELS.iter().any(|k| k.isa == Isa::Avx2));
        assert!(KERNELS.iter().any(|k| k.isa == Isa::Avx512));
    }
    if cfg!(target_arch = "aarch64") {
        assert!(KERNELS.iter().any(|k| k.isa == Isa::Neon));
    }
    for k in KERNELS {
        assert!(k.name.contains(&format!("{}x{}", k.mr, k.nr)) && k.name.ends_with(k.isa.name()), "{}", k.name);
    }
}
