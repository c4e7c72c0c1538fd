//! Small arbitrary backward problems (sizes bounded so a run takes
//! milliseconds): the data gradient through `Conv2dBackwardDataPlan` and
//! `conv2d_backward_data`, the weight and bias gradients, the transposed
//! convolution (output padding included) through `ConvTranspose2dPlan` and
//! `conv_transpose2d`, and the max / average pooling gradients (max with the
//! forward's indices, or with one index replaced by an arbitrary value),
//! with NaN and infinities and buffers or shapes that are a little off,
//! against the `reference` twins: both refuse the same inputs (a plan
//! writing nothing), accepted ones agree within the derived tolerance, and a
//! plan and its one-shot op agree bit for bit.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use receptive::{
    Conv2dBackwardDataPlan, Conv2dParams, ConvTranspose2dParams, ConvTranspose2dPlan, Padding, Pool2dParams,
    avg_pool2d_backward, conv_transpose2d, conv2d_backward_bias, conv2d_backward_data, conv2d_backward_weights,
    max_pool2d_backward, max_pool2d_with_indices, reference,
};
use receptive_fuzz::{abs, assert_close, same_bits, values};

#[derive(Arbitrary, Debug)]
pub struct Input {
    /// 0 data gradient, 1 weight gradient, 2 bias gradient, 3 transposed
    /// convolution, 4 max pooling gradient, 5 average pooling gradient.
    op: u8,
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
    /// Transposed convolution only.
    output_padding: [u8; 2],
    bias: bool,
    ceil_mode: bool,
    count_include_pad: bool,
    /// Average pooling; 0 is no override.
    divisor: u8,
    specials: bool,
    /// 0: exact lengths and shapes; otherwise `% 4` picks the first
    /// operand, the second, the caller's output buffer (or the bias) or the
    /// gradient's height, one more (high bit clear, or a length of 0) or one
    /// less.
    wrong_len: u8,
    /// Max pooling: nonzero replaces index `bad_index - 1` (mod the count) by `index`.
    bad_index: u8,
    index: i64,
    seed: u64,
}

/// Larger problems are skipped, as in the `conv2d` target.
const MAX_MACS: u64 = 1_000_000;
const SENTINEL: f32 = 12345.0;

/// `len` one more or one less when `inp.wrong_len` picks operand `which`.
fn off(inp: &Input, which: u8, len: usize) -> usize {
    match inp.wrong_len {
        0 => len,
        v if v % 4 != which => len,
        v if v & 0x80 == 0 || len == 0 => len + 1,
        _ => len.saturating_sub(1),
    }
}

fn product(s: &[usize]) -> usize {
    s.iter().product()
}

fuzz_target!(|inp: Input| {
    match inp.op % 6 {
        0..3 => conv_grads(&inp),
        3 => transpose(&inp),
        _ => pool_grads(&inp),
    }
});

fn conv_params(inp: &Input) -> (Conv2dParams, [usize; 4]) {
    let groups = usize::from(inp.groups % 5);
    let cpg = usize::from(inp.c_per_group % 5);
    let kpg = usize::from(inp.k_per_group % 9);
    let x_shape = [usize::from(inp.n % 3), cpg * groups.max(1), usize::from(inp.h % 20), usize::from(inp.w % 20)];
    let p = Conv2dParams::new(x_shape[1], kpg * groups.max(1), [usize::from(inp.kh % 6), usize::from(inp.kw % 6)])
        .stride_hw([usize::from(inp.sh % 4), usize::from(inp.sw % 4)])
        .dilation_hw([usize::from(inp.dh % 4), usize::from(inp.dw % 4)])
        .padding_with(Padding::new(
            usize::from(inp.pad[0] % 5),
            usize::from(inp.pad[1] % 5),
            usize::from(inp.pad[2] % 5),
            usize::from(inp.pad[3] % 5),
        ))
        .groups(groups);
    (p, x_shape)
}

/// Data, weight and bias gradients of `conv2d`.
fn conv_grads(inp: &Input) {
    let (p, x_shape) = conv_params(inp);
    if let Ok(f) = p.flops(x_shape)
        && f > 2 * MAX_MACS
    {
        return;
    }
    let y_shape = p.output_shape(x_shape);
    // The gradient's shape: the forward output's (or a guess), maybe one row off.
    let mut dy_shape = *y_shape.as_ref().unwrap_or(&[x_shape[0], p.out_channels, 1, 1]);
    dy_shape[2] = off(inp, 3, dy_shape[2]);
    let seed = inp.seed;
    match inp.op % 6 {
        0 => {
            // NaN and infinities only in dY: a padded tap is skipped by the
            // reference but may meet a zero in a GEMM path.
            let dy = values(off(inp, 0, product(&dy_shape)), seed, inp.specials);
            let w = values(off(inp, 1, p.weight_count()), seed ^ 1, false);
            let mut dx = vec![SENTINEL; off(inp, 2, product(&x_shape))];
            let plan = Conv2dBackwardDataPlan::new(&p, &w);
            let fast = plan.as_ref().map_err(Clone::clone).and_then(|plan| plan.run(&dy, dy_shape, x_shape, &mut dx));
            let one_shot = conv2d_backward_data(&dy, dy_shape, &w, &p, x_shape);
            match reference::conv2d_backward_data(&dy, dy_shape, &w, &p, x_shape) {
                Ok(want) => {
                    assert_eq!(want.len(), product(&x_shape));
                    assert!(inp.wrong_len == 0 || inp.wrong_len % 4 == 2, "a wrong length or shape ran");
                    let one_shot = one_shot.expect("conv2d_backward_data refused what the reference ran");
                    if inp.wrong_len != 0 {
                        assert!(fast.is_err(), "the plan took a wrong-length dX");
                        assert!(dx.iter().all(|&v| v == SENTINEL), "dX written before an error");
                        dx = one_shot.clone();
                    }
                    fast.or_else(|e| if inp.wrong_len != 0 { Ok(()) } else { Err(e) })
                        .expect("the plan refused what the reference ran");
                    assert!(same_bits(&dx, &one_shot), "the plan and the one-shot op differ");
                    let abs_sum = reference::conv2d_backward_data(&abs(&dy), dy_shape, &abs(&w), &p, x_shape).unwrap();
                    let kg = p.out_channels / p.groups;
                    assert_close("conv2d_backward_data", &dx, &want, &abs_sum, kg * p.kernel[0] * p.kernel[1]);
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    assert!(fast.is_err() && one_shot.is_err(), "ran what the reference refused: {e}");
                    assert!(dx.iter().all(|&v| v == SENTINEL), "dX written before an error");
                }
            }
        }
        1 => {
            // NaN and infinities only in X (dY meets the zero padding).
            let x = values(off(inp, 0, product(&x_shape)), seed, inp.specials);
            let dy = values(off(inp, 1, product(&dy_shape)), seed ^ 1, false);
            let got = conv2d_backward_weights(&x, x_shape, &dy, &p);
            match reference::conv2d_backward_weights(&x, x_shape, &dy, &p) {
                Ok(want) => {
                    assert!(inp.wrong_len == 0 || inp.wrong_len % 4 >= 2, "a wrong length ran");
                    assert_eq!(want.len(), p.weight_count());
                    let got = got.expect("conv2d_backward_weights refused what the reference ran");
                    let abs_sum = reference::conv2d_backward_weights(&abs(&x), x_shape, &abs(&dy), &p).unwrap();
                    let [n, _, oh, ow] = y_shape.expect("the reference ran a shape the algebra refuses");
                    assert_close("conv2d_backward_weights", &got, &want, &abs_sum, n * oh * ow);
                }
                Err(e) => assert!(got.is_err(), "ran what the reference refused: {e}"),
            }
        }
        _ => {
            let dy = values(off(inp, 0, product(&dy_shape)), seed, inp.specials);
            let got = conv2d_backward_bias(&dy, dy_shape);
            match reference::conv2d_backward_bias(&dy, dy_shape) {
                Ok(want) => {
                    assert!(inp.wrong_len == 0 || !inp.wrong_len.is_multiple_of(4), "a wrong length ran");
                    assert_eq!(want.len(), dy_shape[1]);
                    let got = got.expect("conv2d_backward_bias refused what the reference ran");
                    let abs_sum = reference::conv2d_backward_bias(&abs(&dy), dy_shape).unwrap();
                    let [n, _, oh, ow] = dy_shape;
                    assert_close("conv2d_backward_bias", &got, &want, &abs_sum, n * oh * ow);
                }
                Err(e) => assert!(got.is_err(), "ran what the reference refused: {e}"),
            }
        }
    }
}

/// `conv_transpose2d` and its plan, output padding included.
fn transpose(inp: &Input) {
    let (p, x_shape) = conv_params(inp);
    let tp = ConvTranspose2dParams::new(p.in_channels, p.out_channels, p.kernel)
        .stride_hw(p.stride)
        .dilation_hw(p.dilation)
        .padding_with(p.padding)
        .output_padding_hw([usize::from(inp.output_padding[0] % 4), usize::from(inp.output_padding[1] % 4)])
        .groups(p.groups);
    if let Ok(f) = tp.flops(x_shape)
        && f > 2 * MAX_MACS
    {
        return;
    }
    let y_shape = tp.output_shape(x_shape);
    // Weights and bias stay finite (see the data gradient).
    let x = values(off(inp, 0, product(&x_shape)), inp.seed, inp.specials);
    let w = values(off(inp, 1, product(&tp.weight_shape())), inp.seed ^ 1, false);
    let b = values(off(inp, 2, tp.out_channels), inp.seed ^ 2, false);
    let bias = inp.bias.then_some(b.as_slice());
    let mut y = vec![SENTINEL; y_shape.as_ref().map_or(1, |s| product(s))];
    let plan = ConvTranspose2dPlan::new(&tp, &w, bias);
    let fast = plan.as_ref().map_err(Clone::clone).and_then(|plan| plan.run(&x, x_shape, &mut y));
    let one_shot = conv_transpose2d(&x, x_shape, &w, bias, &tp);
    match reference::conv_transpose2d(&x, x_shape, &w, bias, &tp) {
        Ok(want) => {
            let out = y_shape.expect("the reference ran a shape the algebra refuses");
            assert_eq!(want.len(), product(&out));
            // A wrong length may only sit in a bias that is not passed (or the gradient's height, unused here).
            assert!(
                inp.wrong_len == 0 || inp.wrong_len % 4 == 3 || (inp.wrong_len % 4 == 2 && !inp.bias),
                "a wrong buffer length ran"
            );
            fast.expect("the plan refused what the reference ran");
            let one_shot = one_shot.expect("conv_transpose2d refused what the reference ran");
            assert!(same_bits(&y, &one_shot), "the plan and the one-shot op differ");
            let abs_b = bias.map(abs);
            let abs_sum = reference::conv_transpose2d(&abs(&x), x_shape, &abs(&w), abs_b.as_deref(), &tp).unwrap();
            let cg = tp.in_channels / tp.groups;
            assert_close("conv_transpose2d", &y, &want, &abs_sum, cg * tp.kernel[0] * tp.kernel[1] + 1);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(fast.is_err() && one_shot.is_err(), "ran what the reference refused: {e}");
            assert!(y.iter().all(|&v| v == SENTINEL), "output written before an error");
        }
    }
}

/// Max pooling's gradient (from the forward's indices, maybe one replaced)
/// and average pooling's.
fn pool_grads(inp: &Input) {
    let max = inp.op % 6 == 4;
    let x_shape =
        [usize::from(inp.n % 3), usize::from(inp.c_per_group % 5), usize::from(inp.h % 20), usize::from(inp.w % 20)];
    let kernel = [usize::from(inp.kh % 7), usize::from(inp.kw % 7)];
    let base = if max { Pool2dParams::max(kernel) } else { Pool2dParams::avg(kernel) };
    let q = base
        .stride_hw([usize::from(inp.sh % 5), usize::from(inp.sw % 5)])
        .dilation_hw([1 + usize::from(inp.dh % 3 * u8::from(max)), 1 + usize::from(inp.dw % 3 * u8::from(max))])
        .padding_with(Padding::new(
            usize::from(inp.pad[0] % 4),
            usize::from(inp.pad[1] % 4),
            usize::from(inp.pad[2] % 4),
            usize::from(inp.pad[3] % 4),
        ))
        .ceil_mode(inp.ceil_mode)
        .count_include_pad(inp.count_include_pad)
        .divisor_override((!max && !inp.divisor.is_multiple_of(8)).then_some(usize::from(inp.divisor % 8)));
    let y_len = q.output_shape(x_shape).map_or(1, |s| product(&s));
    let dy = values(off(inp, 0, y_len), inp.seed, inp.specials);
    let [_, _, h, w] = x_shape;
    // Each input element gets at most one term per window tap (or, with an
    // arbitrary index, per output of its plane).
    let plane_out = q.output_shape(x_shape).map_or(1, |s| s[2] * s[3]);
    let mut terms = q.kernel[0] * q.kernel[1];
    let (got, want, abs_sum) = if max {
        let x = values(product(&x_shape), inp.seed ^ 1, inp.specials);
        let mut idx = max_pool2d_with_indices(&x, x_shape, &q).map_or_else(|_| vec![0; y_len], |(_, i)| i);
        idx.resize(off(inp, 1, idx.len()), 0);
        let replaced = inp.bad_index != 0 && !idx.is_empty();
        if replaced {
            let at = usize::from(inp.bad_index - 1) % idx.len();
            idx[at] = inp.index;
            terms = terms.max(plane_out);
        }
        let got = max_pool2d_backward(&dy, &idx, x_shape, &q);
        let want = reference::max_pool2d_backward(&dy, &idx, x_shape, &q);
        if replaced && !(0..(h * w) as i64).contains(&inp.index) {
            assert!(got.is_err() && want.is_err(), "index {} outside a {h}x{w} plane taken", inp.index);
        }
        (got, want, reference::max_pool2d_backward(&abs(&dy), &idx, x_shape, &q))
    } else {
        let got = avg_pool2d_backward(&dy, x_shape, &q);
        (got, reference::avg_pool2d_backward(&dy, x_shape, &q), reference::avg_pool2d_backward(&abs(&dy), x_shape, &q))
    };
    match want {
        Ok(want) => {
            assert!(
                inp.wrong_len % 4 >= 2 || inp.wrong_len == 0 || (!max && inp.wrong_len % 4 == 1),
                "a wrong length ran"
            );
            assert_eq!(want.len(), product(&x_shape));
            let got = got.expect("the pooling gradient refused what the reference ran");
            assert_close(
                if max { "max_pool2d_backward" } else { "avg_pool2d_backward" },
                &got,
                &want,
                &abs_sum.unwrap(),
                terms,
            );
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(got.is_err(), "ran what the reference refused: {e}");
        }
    }
}
