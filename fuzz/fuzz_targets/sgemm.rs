//! Arbitrary m, n, k, layouts (row- or column-major, padded leading
//! dimensions, buffers a little too short), alpha, beta, bias and
//! activation through `receptive::sgemm`, against `reference::sgemm`: both
//! refuse the same inputs, and accepted ones agree within the tolerance.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use receptive::{Activation, Bias, MatMut, MatRef, reference, sgemm};
use receptive_fuzz::{assert_close, values};

#[derive(Arbitrary, Debug)]
struct Input {
    m: u8,
    n: u8,
    k: u8,
    /// Per matrix A, B, C: bit 0 column-major, bits 1..4 leading-dimension padding.
    layout: [u8; 3],
    /// Per matrix: elements missing from (bit 7 clear) the buffer, bits 0..2.
    short: [u8; 3],
    alpha: u8,
    beta: u8,
    bias: u8,
    act: u8,
    specials: bool,
    seed: u64,
}

/// alpha is one of the first seven, beta any of the eight. An infinite
/// alpha is left out: a product of two denormals is 0 in f32 (inf * 0 =
/// NaN) but not in the reference's f64 (inf), so the oracle would disagree
/// with every f32 implementation (fuzz/README.md, sgemm crash-8c4a00a7).
const SCALARS: [f32; 8] = [1.0, 0.0, -1.0, 0.5, 2.0, -0.375, f32::NAN, f32::INFINITY];

/// `(buffer length, row stride, column stride)` of a `rows x cols` matrix.
fn layout(rows: usize, cols: usize, code: u8, short: u8) -> (usize, usize, usize) {
    let pad = usize::from(code >> 1 & 7);
    let (rs, cs, len) =
        if code & 1 == 0 { (cols + pad, 1, rows * (cols + pad)) } else { (1, rows + pad, cols * (rows + pad)) };
    let missing = if short & 0x80 == 0 { usize::from(short & 3) } else { 0 };
    (len.saturating_sub(missing), rs, cs)
}

fuzz_target!(|inp: Input| {
    let (m, n, k) = (usize::from(inp.m % 40), usize::from(inp.n % 40), usize::from(inp.k % 70));
    let (la, ra, ca) = layout(m, k, inp.layout[0], inp.short[0]);
    let (lb, rb, cb) = layout(k, n, inp.layout[1], inp.short[1]);
    let (lc, rc, cc) = layout(m, n, inp.layout[2], inp.short[2]);
    let a = values(la, inp.seed, inp.specials);
    let b = values(lb, inp.seed ^ 1, inp.specials);
    let c0 = values(lc, inp.seed ^ 2, inp.specials);
    let (alpha, beta) = (SCALARS[usize::from(inp.alpha % 7)], SCALARS[usize::from(inp.beta % 8)]);
    let bias_len = [0, m, n, m + 1][usize::from(inp.bias % 4)];
    let bias_v = values(bias_len, inp.seed ^ 3, false);
    let bias = match inp.bias % 4 {
        0 => Bias::None,
        1 | 3 => Bias::PerRow(&bias_v),
        _ => Bias::PerCol(&bias_v),
    };
    let act = match inp.act % 4 {
        0 => Activation::None,
        1 => Activation::Relu,
        2 => Activation::Clamp { min: -1.0, max: 0.5 },
        _ => Activation::Clamp { min: 1.0, max: -1.0 },
    };

    let (Ok(av), Ok(bv)) = (MatRef::new(&a, m, k, ra, ca), MatRef::new(&b, k, n, rb, cb)) else { return };
    let (mut got, mut want) = (c0.clone(), c0.clone());
    let (Ok(cg), Ok(cw)) = (MatMut::new(&mut got, m, n, rc, cc), MatMut::new(&mut want, m, n, rc, cc)) else {
        return;
    };
    let fast = sgemm(alpha, av, bv, beta, cg, bias, act);
    let slow = reference::sgemm(alpha, av, bv, beta, cw, bias, act);
    assert_eq!(fast.is_ok(), slow.is_ok(), "fast {fast:?} vs reference {slow:?}");
    if fast.is_err() {
        assert!(got.iter().zip(&c0).all(|(g, c)| g.to_bits() == c.to_bits()), "C written before an error");
        return;
    }
    // The error bound per output: |alpha| * sum |a b| + |beta c| + |bias|.
    let mut bound = vec![0.0f32; lc];
    for i in 0..m {
        for j in 0..n {
            let dot: f32 = (0..k).map(|p| (a[i * ra + p * ca] * b[p * rb + j * cb]).abs()).sum();
            let c_part = if beta == 0.0 { 0.0 } else { (beta * c0[i * rc + j * cc]).abs() };
            let bias_part = match bias {
                Bias::PerRow(v) => v[i].abs(),
                Bias::PerCol(v) => v[j].abs(),
                Bias::None => 0.0,
            };
            bound[i * rc + j * cc] = alpha.abs() * dot + c_part + bias_part;
        }
    }
    assert_close("sgemm", &got, &want, &bound, k + 2);
});
