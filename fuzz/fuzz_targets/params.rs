//! Arbitrary convolution and pooling parameters and input shapes (huge,
//! zero, overflowing, kernels larger than the padded input, groups not
//! dividing channels, padding over half the window, ceil_mode edges) through
//! validation and the output-size rules: every result is a consistent shape
//! or an error with a message, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use receptive::{Conv2dParams, Padding, Pool2dParams};
use receptive_fuzz::Size;

#[derive(Arbitrary, Debug)]
struct Input {
    shape: [Size; 4],
    in_channels: Size,
    out_channels: Size,
    kernel: [Size; 2],
    stride: [Size; 2],
    dilation: [Size; 2],
    /// top, bottom, left, right
    pad: [Size; 4],
    groups: Size,
    strict: bool,
    avg: bool,
    ceil_mode: bool,
    count_include_pad: bool,
    /// 0 is no override.
    divisor: Size,
}

/// The window positions of one axis, in u128 so nothing can overflow here.
struct Axis {
    input: u128,
    before: u128,
    after: u128,
    span: u128,
    stride: u128,
}

impl Axis {
    fn new(input: usize, before: usize, after: usize, kernel: usize, stride: usize, dilation: usize) -> Axis {
        let span = (kernel as u128 - 1) * dilation as u128 + 1;
        Axis { input: input as u128, before: before as u128, after: after as u128, span, stride: stride as u128 }
    }
    fn padded(&self) -> u128 {
        self.input + self.before + self.after
    }
    /// PyTorch's floor rule: the last window ends inside the padded input
    /// and one more stride would not.
    fn check_floor(&self, out: usize) {
        let last_end = (out as u128 - 1) * self.stride + self.span;
        assert!(last_end <= self.padded(), "last window ends at {last_end} past {}", self.padded());
        assert!(last_end + self.stride > self.padded(), "a further window would fit");
    }
}

fn msg(e: receptive::Error) {
    let text = e.to_string();
    assert!(!text.is_empty());
}

fuzz_target!(|inp: Input| {
    let shape = inp.shape.map(|s| s.0);
    let pad = Padding::new(inp.pad[0].0, inp.pad[1].0, inp.pad[2].0, inp.pad[3].0);
    let [kernel, stride, dilation] = [inp.kernel, inp.stride, inp.dilation].map(|v| v.map(|s| s.0));

    let p = Conv2dParams::new(inp.in_channels.0, inp.out_channels.0, kernel)
        .stride_hw(stride)
        .dilation_hw(dilation)
        .padding_with(pad)
        .groups(inp.groups.0)
        .strict(inp.strict);
    let _ = (p.weight_count(), p.param_count(), p.weight_shape());
    match p.output_shape(shape) {
        Ok(out) => {
            assert!(p.validate().is_ok());
            assert_eq!([out[0], out[1]], [shape[0], p.out_channels]);
            let axes = [
                Axis::new(shape[2], pad.top, pad.bottom, kernel[0], stride[0], dilation[0]),
                Axis::new(shape[3], pad.left, pad.right, kernel[1], stride[1], dilation[1]),
            ];
            for (o, a) in [out[2], out[3]].into_iter().zip(&axes) {
                assert!(o >= 1);
                a.check_floor(o);
                if inp.strict {
                    assert_eq!((a.padded() - a.span) % a.stride, 0, "strict mode accepted a stride that does not fit");
                }
            }
            assert!(out.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).is_some());
            match p.flops(shape) {
                Ok(f) => assert!(f >= 2),
                Err(e) => msg(e),
            }
        }
        Err(e) => msg(e),
    }

    let base = if inp.avg { Pool2dParams::avg(kernel) } else { Pool2dParams::max(kernel) };
    let q = base
        .stride_hw(stride)
        .dilation_hw(dilation)
        .padding_with(pad)
        .ceil_mode(inp.ceil_mode)
        .count_include_pad(inp.count_include_pad)
        .divisor_override((inp.divisor.0 != 0).then_some(inp.divisor.0));
    match q.output_shape(shape) {
        Ok(out) => {
            assert_eq!([out[0], out[1]], [shape[0], shape[1]]);
            let axes = [
                Axis::new(shape[2], pad.top, pad.bottom, kernel[0], stride[0], dilation[0]),
                Axis::new(shape[3], pad.left, pad.right, kernel[1], stride[1], dilation[1]),
            ];
            for (o, a) in [out[2], out[3]].into_iter().zip(&axes) {
                assert!(o >= 1);
                assert!(2 * a.before <= a.span && 2 * a.after <= a.span, "padding over half the window accepted");
                let start = (o as u128 - 1) * a.stride;
                if inp.ceil_mode {
                    // The last window starts inside the input or the leading padding...
                    assert!(start < a.input + a.before, "last window starts at {start}, in the trailing padding");
                    // ...and starts no later than the padded input allows.
                    assert!(start < a.padded(), "last window starts past the padded input");
                } else {
                    a.check_floor(o);
                }
            }
        }
        Err(e) => msg(e),
    }
});
