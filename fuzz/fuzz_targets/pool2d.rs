//! Small arbitrary pooling problems: max (indices included), average
//! (ceil_mode, count_include_pad, divisor_override) and global pooling, with
//! NaN and infinities in the input and wrong buffer lengths, through the
//! one-shot ops and `Pool2dPlan` on the ISA the input picks, against the
//! references: the same inputs refused (nothing written), max values and
//! indices exact, averages within the derived tolerance, every max index
//! pointing at its value.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use receptive::{
    Isa, Padding, Pool2dParams, Pool2dPlan, avg_pool2d, global_avg_pool2d, global_max_pool2d, max_pool2d,
    max_pool2d_with_indices, reference,
};
use receptive_fuzz::{abs, assert_close, same_bits, values};

#[derive(Arbitrary, Debug)]
pub struct Input {
    /// 0 max, 1 average, 2 global max, 3 global average.
    kind: u8,
    n: u8,
    c: u8,
    h: u8,
    w: u8,
    kh: u8,
    kw: u8,
    sh: u8,
    sw: u8,
    dh: u8,
    dw: u8,
    /// top, bottom, left, right
    pad: [u8; 4],
    ceil_mode: bool,
    count_include_pad: bool,
    /// 0 is no override.
    divisor: u8,
    specials: bool,
    /// 0: exact input length; otherwise one more or one less.
    wrong_len: u8,
    seed: u64,
    /// The plan's ISA cap: scalar, avx2, avx512, neon (the best supported one below it runs).
    isa: u8,
}

fuzz_target!(|inp: Input| {
    let shape = [usize::from(inp.n % 3), usize::from(inp.c % 5), usize::from(inp.h % 20), usize::from(inp.w % 20)];
    let kernel = [usize::from(inp.kh % 7), usize::from(inp.kw % 7)];
    let kind = inp.kind % 4;
    let base = if kind == 1 { Pool2dParams::avg(kernel) } else { Pool2dParams::max(kernel) };
    let q = base
        .stride_hw([usize::from(inp.sh % 5), usize::from(inp.sw % 5)])
        .dilation_hw([
            1 + usize::from(inp.dh % 3 * u8::from(kind == 0)),
            1 + usize::from(inp.dw % 3 * u8::from(kind == 0)),
        ])
        .padding_with(Padding::new(
            usize::from(inp.pad[0] % 4),
            usize::from(inp.pad[1] % 4),
            usize::from(inp.pad[2] % 4),
            usize::from(inp.pad[3] % 4),
        ))
        .ceil_mode(inp.ceil_mode)
        .count_include_pad(inp.count_include_pad)
        .divisor_override((kind == 1 && !inp.divisor.is_multiple_of(8)).then_some(usize::from(inp.divisor % 8)));
    let mut len = shape.iter().product::<usize>();
    if inp.wrong_len != 0 {
        len = if inp.wrong_len & 1 == 0 { len + 1 } else { len.saturating_sub(1) };
    }
    let x = values(len, inp.seed, inp.specials);
    let [_, _, h, w] = shape;
    let isa = Isa::ALL[usize::from(inp.isa % 4)];
    const SENTINEL: f32 = 12345.0;
    let shape_ok = q.output_shape(shape);
    let out_len = shape_ok.as_ref().map_or(1, |o| o.iter().product::<usize>());
    let (mut y, mut idx) = (vec![SENTINEL; out_len], vec![-7i64; out_len]);
    let plan = Pool2dPlan::with_isa(&q, shape, isa);
    match kind {
        0 => {
            let fast = plan.and_then(|p| p.run_with_indices(&x, &mut y, &mut idx));
            let one_shot = max_pool2d_with_indices(&x, shape, &q);
            let values_only = max_pool2d(&x, shape, &q);
            match reference::max_pool2d_with_indices(&x, shape, &q) {
                Ok((want, want_idx)) => {
                    let out = shape_ok.expect("the reference ran a shape the algebra refuses");
                    assert_eq!(want.len(), out.iter().product::<usize>());
                    let plane_out = out[2] * out[3];
                    for (o, (&v, &i)) in want.iter().zip(&want_idx).enumerate() {
                        let i = usize::try_from(i).expect("a negative index");
                        assert!(i < h * w, "index {i} outside a {h}x{w} plane");
                        let picked = x[o / plane_out * h * w + i];
                        assert!(same_bits(&[picked], &[v]), "index {i} does not hold the maximum {v}");
                    }
                    fast.expect("the plan refused what the reference ran");
                    let (one, one_idx) = one_shot.expect("max_pool2d_with_indices refused what the reference ran");
                    for (what, got, got_idx) in [("plan", &y, &idx), ("one-shot", &one, &one_idx)] {
                        assert!(same_bits(got, &want), "max pooling values ({what}, {isa})");
                        assert_eq!(got_idx, &want_idx, "max pooling indices ({what}, {isa})");
                    }
                    assert!(same_bits(&values_only.expect("max_pool2d refused"), &want), "max_pool2d values");
                }
                Err(e) => {
                    assert!(
                        fast.is_err() && one_shot.is_err() && values_only.is_err(),
                        "ran what the reference refused: {e}"
                    );
                    assert!(
                        y.iter().all(|&v| v == SENTINEL) && idx.iter().all(|&i| i == -7),
                        "written before an error"
                    );
                }
            }
        }
        1 => {
            let fast = plan.and_then(|p| p.run(&x, &mut y));
            let one_shot = avg_pool2d(&x, shape, &q);
            match reference::avg_pool2d(&x, shape, &q) {
                Ok(want) => {
                    let out = shape_ok.expect("the reference ran a shape the algebra refuses");
                    assert_eq!(want.len(), out.iter().product::<usize>());
                    fast.expect("the plan refused what the reference ran");
                    let abs_avg = reference::avg_pool2d(&abs(&x), shape, &q).unwrap();
                    let window = q.kernel[0] * q.kernel[1];
                    assert_close(&format!("avg pooling plan ({isa})"), &y, &want, &abs_avg, window);
                    let one = one_shot.expect("avg_pool2d refused what the reference ran");
                    assert_close("avg pooling one-shot", &one, &want, &abs_avg, window);
                }
                Err(e) => {
                    assert!(fast.is_err() && one_shot.is_err(), "ran what the reference refused: {e}");
                    assert!(y.iter().all(|&v| v == SENTINEL), "written before an error");
                }
            }
        }
        _ => {
            let (want, got) = if kind == 2 {
                (reference::global_max_pool2d(&x, shape), global_max_pool2d(&x, shape))
            } else {
                (reference::global_avg_pool2d(&x, shape), global_avg_pool2d(&x, shape))
            };
            match want {
                Ok(want) => {
                    assert_eq!(want.len(), shape[0] * shape[1]);
                    let got = got.expect("the global op refused what the reference ran");
                    if kind == 2 {
                        assert!(same_bits(&got, &want), "global max pooling");
                    } else {
                        let abs_avg = reference::global_avg_pool2d(&abs(&x), shape).unwrap();
                        assert_close("global avg pooling", &got, &want, &abs_avg, h * w);
                    }
                }
                Err(e) => assert!(got.is_err(), "ran what the reference refused: {e}"),
            }
        }
    }
});
