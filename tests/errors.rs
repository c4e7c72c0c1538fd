//! Every invalid parameter combination is an `Error` that names the value and
//! the rule, never a panic.

use receptive::{Activation, Conv2dParams, Error, MatMut, MatRef, Padding, Pool2dParams, reference};

fn conv_err(p: Conv2dParams, shape: [usize; 4]) -> String {
    p.output_shape(shape).unwrap_err().to_string()
}

#[test]
fn conv_params_errors_name_value_and_rule() {
    let base = Conv2dParams::new(4, 6, [3, 3]);
    let s = [1, 4, 8, 8];
    assert!(conv_err(base.stride(0), s).contains("stride (rows) = 0 must be at least 1"));
    assert!(conv_err(base.dilation_hw([1, 0]), s).contains("dilation (columns) = 0"));
    assert!(conv_err(Conv2dParams::new(4, 6, [0, 3]), s).contains("kernel (rows) = 0"));
    assert!(conv_err(base.groups(0), s).contains("groups = 0"));
    assert!(conv_err(base.groups(4), s).contains("out_channels = 6 must be divisible by groups = 4"));
    assert!(conv_err(base.groups(3), s).contains("in_channels = 4 must be divisible by groups = 3"));
    assert!(conv_err(Conv2dParams::new(0, 6, [3, 3]), [1, 0, 8, 8]).contains("in_channels = 0"));
    assert!(conv_err(base, [1, 5, 8, 8]).contains("input channels is 5 but the parameters require 4"));
    assert!(conv_err(base, [0, 4, 8, 8]).contains("batch size = 0"));
    assert!(conv_err(base, [1, 4, 0, 8]).contains("input height = 0"));
    // The example message.
    let e = conv_err(Conv2dParams::new(1, 1, [5, 5]).dilation(2), [1, 1, 5, 5]);
    assert_eq!(e, "kernel 5 with dilation 2 spans 9 rows but the padded input has 5");
    let e = conv_err(Conv2dParams::new(1, 1, [5, 5]).dilation(2).padding(1), [1, 1, 5, 5]);
    assert!(e.contains("spans 9 rows but the padded input has 7"), "{e}");
}

#[test]
fn conv_overflow_is_an_error() {
    let big = usize::MAX / 2;
    let p = Conv2dParams::new(1, 1, [3, 3]).dilation(usize::MAX);
    assert!(matches!(p.output_shape([1, 1, 8, 8]), Err(Error::Overflow { .. })));
    let p = Conv2dParams::new(1, 1, [1, 1]).padding(usize::MAX);
    assert!(matches!(p.output_shape([1, 1, 8, 8]), Err(Error::Overflow { .. })));
    let p = Conv2dParams::new(1, 1, [1, 1]);
    assert!(matches!(p.output_shape([big, 1, big, 8]), Err(Error::Overflow { .. })));
    let p = Conv2dParams::new(1 << 40, 1 << 40, [1 << 20, 1]);
    assert!(p.validate().is_err());
    assert_eq!(p.weight_count(), usize::MAX, "saturates instead of wrapping");
    assert!(Conv2dParams::new(1, 1, [1, 1]).flops([1 << 62, 1, 1 << 1, 1]).is_err());
}

#[test]
fn pool_params_errors() {
    let e = |q: Pool2dParams, s: [usize; 4]| q.output_shape(s).unwrap_err().to_string();
    let s = [1, 2, 5, 5];
    assert!(e(Pool2dParams::max([2, 2]).padding(2), s).contains("must be at most half the effective window"));
    assert!(
        e(Pool2dParams::max([3, 3]).padding_with(Padding::new(0, 2, 0, 0)), s).contains("padding after (rows) = 2")
    );
    assert!(e(Pool2dParams::max([2, 2]).stride(0), s).contains("pooling stride (rows) = 0"));
    assert!(
        e(Pool2dParams::max([6, 6]), s).contains("kernel 6 with dilation 1 spans 6 rows but the padded input has 5")
    );
    assert!(e(Pool2dParams::avg([2, 2]).dilation(2), s).contains("average pooling dilation"));
    assert!(e(Pool2dParams::avg([2, 2]).divisor_override(Some(0)), s).contains("divisor_override = 0"));
    assert!(e(Pool2dParams::max([2, 2]).divisor_override(Some(3)), s).contains("only applies to average"));
    assert!(e(Pool2dParams::max([2, 2]), [1, 0, 5, 5]).contains("channels = 0"));
    // Dilated taps that skip a 1-wide input entirely.
    let q = Pool2dParams::max([1, 2]).dilation_hw([1, 3]).stride(1).padding_with(Padding::new(0, 0, 2, 2));
    assert!(e(q, [1, 1, 1, 1]).contains("covers no input element"));
    // Huge but valid sizes compute without hanging.
    let q = Pool2dParams::max([3, 3]).dilation(1 << 20).padding(1 << 20);
    assert!(q.output_shape([1, 1, 1 << 40, 3 << 20]).is_ok());
}

#[test]
fn buffers_must_match_shapes() {
    let p = Conv2dParams::new(1, 1, [1, 1]);
    let e = reference::conv2d(&[1.0; 3], [1, 1, 2, 2], &[1.0], None, &p).unwrap_err();
    assert_eq!(e, Error::LengthMismatch { what: "input", expected: 4, got: 3 });
    let e = reference::conv2d(&[1.0; 4], [1, 1, 2, 2], &[1.0, 2.0], None, &p).unwrap_err();
    assert!(e.to_string().contains("weights has 2 elements but its shape needs 1"));
    let e = reference::conv2d(&[1.0; 4], [1, 1, 2, 2], &[1.0], Some(&[]), &p).unwrap_err();
    assert!(e.to_string().contains("bias has 0 elements"));
    let e = reference::max_pool2d(&[1.0; 4], [1, 1, 2, 3], &Pool2dParams::max([2, 2])).unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { what: "input", expected: 6, got: 4 }));
}

#[test]
fn matrix_views_and_gemm_shapes() {
    let v = [0.0f32; 6];
    assert!(MatRef::new(&v, 2, 4, 3, 1).is_err());
    let mut c = [0.0f32; 4];
    assert!(MatMut::new(&mut c, 2, 2, 1, 1).is_err(), "overlapping strides");
    let a = MatRef::new(&v, 2, 3, 3, 1).unwrap();
    let cm = MatMut::new(&mut c, 2, 2, 2, 1).unwrap();
    let e = receptive::sgemm(1.0, a, a, 0.0, cm, receptive::Bias::None, Activation::None).unwrap_err();
    assert!(e.to_string().contains("A's columns vs B's rows is 2 but the parameters require 3"), "{e}");
    let cm = MatMut::new(&mut c, 2, 2, 2, 1).unwrap();
    let e = receptive::sgemm(1.0, a, a.t(), 0.0, cm, receptive::Bias::PerRow(&[1.0]), Activation::None);
    assert!(e.unwrap_err().to_string().contains("row bias has 1 elements"));
    let cm = MatMut::new(&mut c, 2, 2, 2, 1).unwrap();
    let bad = Activation::Clamp { min: 1.0, max: 0.0 };
    let e = receptive::sgemm(1.0, a, a.t(), 0.0, cm, receptive::Bias::None, bad).unwrap_err();
    assert!(e.to_string().contains("min <= max"));
}
