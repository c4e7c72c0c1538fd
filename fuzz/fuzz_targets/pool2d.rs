//! Small arbitrary pooling problems: max (indices included), average
//! (ceil_mode, count_include_pad, divisor_override) and global pooling, with
//! NaN and infinities in the input and wrong buffer lengths. Checks that the
//! references validate like the shape algebra, never panic, and that every
//! max index points at its value. The fast ops join when they land.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use receptive::{Padding, Pool2dParams, reference};
use receptive_fuzz::values;

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
        .divisor_override((kind == 1 && inp.divisor % 8 != 0).then_some(usize::from(inp.divisor % 8)));
    let mut len = shape.iter().product::<usize>();
    if inp.wrong_len != 0 {
        len = if inp.wrong_len & 1 == 0 { len + 1 } else { len.saturating_sub(1) };
    }
    let x = values(len, inp.seed, inp.specials);
    let [_, _, h, w] = shape;
    match kind {
        0 => match reference::max_pool2d_with_indices(&x, shape, &q) {
            Ok((y, idx)) => {
                let out = q.output_shape(shape).expect("the reference ran a shape the algebra refuses");
                assert_eq!(y.len(), out.iter().product::<usize>());
                let plane_out = out[2] * out[3];
                for (o, (&v, &i)) in y.iter().zip(&idx).enumerate() {
                    let i = usize::try_from(i).expect("a negative index");
                    assert!(i < h * w, "index {i} outside a {h}x{w} plane");
                    let picked = x[o / plane_out * h * w + i];
                    assert!(picked.to_bits() == v.to_bits() || (picked.is_nan() && v.is_nan()));
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        },
        1 => match reference::avg_pool2d(&x, shape, &q) {
            Ok(y) => {
                let out = q.output_shape(shape).expect("the reference ran a shape the algebra refuses");
                assert_eq!(y.len(), out.iter().product::<usize>());
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        },
        _ => {
            let r = if kind == 2 {
                reference::global_max_pool2d(&x, shape)
            } else {
                reference::global_avg_pool2d(&x, shape)
            };
            match r {
                Ok(y) => assert_eq!(y.len(), shape[0] * shape[1]),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
});
