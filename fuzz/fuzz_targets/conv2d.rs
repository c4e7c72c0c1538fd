//! Small arbitrary convolutions (sizes bounded so a run takes milliseconds):
//! padding (asymmetric), stride, dilation, groups, bias, activation, inputs
//! with NaN and infinities, and buffers of the wrong length, through
//! `Conv2dPlan` and the one-shot `conv2d_with` against `reference::conv2d`:
//! both refuse the same inputs (writing nothing), accepted ones agree within
//! the derived tolerance, and the plan and the one-shot op agree bit for bit.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use receptive::{Activation, Conv2dParams, Conv2dPlan, Padding, conv2d_with, reference};
use receptive_fuzz::{abs, assert_close, same_bits, values};

#[derive(Arbitrary, Debug)]
pub struct Input {
    n: u8,
    c_per_group: u8,
    k_per_group: u8,
    groups: u8,
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
    bias: bool,
    act: u8,
    specials: bool,
    /// 0: exact lengths; otherwise one buffer is a little off.
    wrong_len: u8,
    seed: u64,
}

/// Larger problems are skipped (the seed's 32x32x3 with ten 5x5 filters is 768k).
const MAX_MACS: u64 = 1_000_000;

fuzz_target!(|inp: Input| {
    let groups = usize::from(inp.groups % 5);
    let cpg = usize::from(inp.c_per_group % 5);
    let kpg = usize::from(inp.k_per_group % 11);
    let shape = [1 + usize::from(inp.n % 3), cpg * groups.max(1), usize::from(inp.h % 34), usize::from(inp.w % 34)];
    let p = Conv2dParams::new(shape[1], kpg * groups.max(1), [usize::from(inp.kh % 6), usize::from(inp.kw % 6)])
        .stride_hw([usize::from(inp.sh % 4), usize::from(inp.sw % 4)])
        .dilation_hw([usize::from(inp.dh % 4), usize::from(inp.dw % 4)])
        .padding_with(Padding::new(
            usize::from(inp.pad[0] % 5),
            usize::from(inp.pad[1] % 5),
            usize::from(inp.pad[2] % 5),
            usize::from(inp.pad[3] % 5),
        ))
        .groups(groups);
    let mut lens = [shape.iter().product::<usize>(), p.weight_count(), p.out_channels];
    if inp.wrong_len != 0 {
        let which = usize::from(inp.wrong_len % 3);
        lens[which] = if inp.wrong_len & 0x80 == 0 { lens[which] + 1 } else { lens[which].saturating_sub(1) };
    }
    // Weights and bias stay finite: a padded tap is skipped by the
    // reference but multiplied by zero in an im2col path.
    let x = values(lens[0], inp.seed, inp.specials);
    let w = values(lens[1], inp.seed ^ 1, false);
    let b = values(lens[2], inp.seed ^ 2, false);
    let bias = inp.bias.then_some(b.as_slice());
    let act = match inp.act % 4 {
        0 => Activation::None,
        1 => Activation::Relu,
        2 => Activation::Clamp { min: -1.0, max: 0.5 },
        _ => Activation::Clamp { min: f32::NAN, max: 1.0 },
    };
    assert_eq!(act.validate().is_ok(), inp.act % 4 != 3, "NaN clamp bounds are refused");
    let shape_ok = p.output_shape(shape);
    // Keep one run to milliseconds: the reference runs twice, the op twice.
    if let Ok(f) = p.flops(shape)
        && f > 2 * MAX_MACS
    {
        return;
    }
    let want = reference::conv2d(&x, shape, &w, bias, &p);
    let out_len = shape_ok.as_ref().map_or(1, |o| o.iter().product::<usize>());
    const SENTINEL: f32 = 12345.0;
    let mut y = vec![SENTINEL; out_len];
    let plan = Conv2dPlan::new(&p, &w, bias, act);
    let fast = plan.as_ref().map_err(Clone::clone).and_then(|plan| plan.run(&x, shape, &mut y));
    let one_shot = conv2d_with(&x, shape, &w, bias, &p, act);
    match want {
        Ok(want) => {
            let out = shape_ok.expect("the reference ran a shape the algebra refuses");
            assert_eq!(want.len(), out.iter().product::<usize>());
            // A wrong length may only sit in a bias that is not passed.
            assert!(inp.wrong_len == 0 || (inp.wrong_len % 3 == 2 && !inp.bias), "a wrong buffer length ran");
            if act.validate().is_err() {
                assert!(fast.is_err() && one_shot.is_err(), "invalid clamp bounds accepted");
                return;
            }
            fast.expect("the plan refused what the reference ran");
            let one_shot = one_shot.expect("conv2d_with refused what the reference ran");
            assert!(same_bits(&y, &one_shot), "the plan and the one-shot op differ");
            let abs_b = bias.map(abs);
            let abs_sum = reference::conv2d(&abs(&x), shape, &abs(&w), abs_b.as_deref(), &p).unwrap();
            let want: Vec<f32> = want.iter().map(|&v| act.apply(v)).collect();
            let [_, cg, fh, fw] = p.weight_shape();
            assert_close("conv2d", &y, &want, &abs_sum, cg * fh * fw + 1);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(fast.is_err() && one_shot.is_err(), "the fast op ran what the reference refused: {e}");
            assert!(y.iter().all(|&v| v == SENTINEL), "output written before an error");
        }
    }
});
