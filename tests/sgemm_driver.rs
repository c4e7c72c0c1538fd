//! The blocked driver against the triple loop, across block boundaries.

use receptive::{Activation, Bias, MatMut, MatRef, reference, sgemm};

use receptive::reference::pseudo_random as fill;

#[test]
fn blocked_driver_matches_reference() {
    // The last two cross a KC block boundary, the last an MC one too (MC
    // grows as the KC blocks shorten, but at most to twice its size here).
    let (mc, kc) = (receptive::sgemm_kernel_info().mc, receptive::sgemm_kernel_info().kc);
    let shapes = [(1, 1, 1), (5, 9, 0), (7, 13, 3), (33, 17, 300), (9, 70, kc + 1), (2 * mc + 7, 70, kc + 1)];
    for &(m, n, k) in &shapes {
        let a = fill(m * k, 1);
        let b = fill(k * n, 2);
        let c0 = fill(m * n, 3);
        let bias = fill(m, 4);
        // A column-major (transposed strides), B row-major, C row-major.
        let av = MatRef::new(&a, m, k, 1, m).unwrap();
        let bv = MatRef::new(&b, k, n, n, 1).unwrap();
        let (mut got, mut want) = (c0.clone(), c0.clone());
        let act = Activation::Clamp { min: -0.5, max: 2.0 };
        sgemm(0.5, av, bv, 0.25, MatMut::new(&mut got, m, n, n, 1).unwrap(), Bias::PerRow(&bias), act).unwrap();
        reference::sgemm(0.5, av, bv, 0.25, MatMut::new(&mut want, m, n, n, 1).unwrap(), Bias::PerRow(&bias), act)
            .unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            // |a|, |b| <= 1: the products' absolute sum is at most k.
            let tol = reference::tolerance(k, 0.5 * k as f32 + 0.25 + 1.0);
            assert!((g - w).abs() <= tol, "m={m} n={n} k={k} at {i}: {g} vs {w}");
        }
    }
}
