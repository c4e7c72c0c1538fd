//! Pinned cases: expected values written by hand from the seed and from
//! PyTorch's documented behaviour, never produced by the reference.

use receptive::{Conv2dParams, Error, Padding, Pool2dParams, reference};

fn out_hw(p: &Conv2dParams, h: usize, w: usize) -> Result<[usize; 2], Error> {
    p.output_shape([1, p.in_channels, h, w]).map(|s| [s[2], s[3]])
}

#[test]
fn seed_7x7_with_3x3_filter_strides_1_2_3() {
    let p = Conv2dParams::new(1, 1, [3, 3]);
    assert_eq!(out_hw(&p.stride(1), 7, 7).unwrap(), [5, 5]);
    assert_eq!(out_hw(&p.stride(2), 7, 7).unwrap(), [3, 3]);
    // Stride 3 "doesn't fit": PyTorch floors to 2, strict mode refuses.
    assert_eq!(out_hw(&p.stride(3), 7, 7).unwrap(), [2, 2]);
    let err = out_hw(&p.stride(3).strict(true), 7, 7).unwrap_err();
    assert!(matches!(err, Error::DoesNotFit { input: 7, span: 3, stride: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("(7 - 3)/3 + 1 = 2.33"), "{err}");
    // Strict mode accepts the strides that fit.
    assert_eq!(out_hw(&p.stride(2).strict(true), 7, 7).unwrap(), [3, 3]);
}

#[test]
fn seed_same_padding_preserves_size() {
    for (f, pad) in [(3, 1), (5, 2), (7, 3)] {
        let p = Conv2dParams::new(3, 4, [f, f]).padding(pad);
        assert_eq!(out_hw(&p, 32, 32).unwrap(), [32, 32], "F={f} P={pad}");
    }
}

#[test]
fn seed_volumes_shrink_without_padding() {
    // 32 -> 28 -> 24 with 5x5 filters and no padding.
    let p = Conv2dParams::new(3, 6, [5, 5]);
    assert_eq!(p.output_shape([1, 3, 32, 32]).unwrap(), [1, 6, 28, 28]);
    let p2 = Conv2dParams::new(6, 10, [5, 5]);
    assert_eq!(p2.output_shape([1, 6, 28, 28]).unwrap(), [1, 10, 24, 24]);
}

#[test]
fn seed_ten_5x5_filters_760_parameters() {
    let p = Conv2dParams::new(3, 10, [5, 5]).stride(1).padding(2);
    assert_eq!(p.output_shape([1, 3, 32, 32]).unwrap(), [1, 10, 32, 32]);
    assert_eq!(p.weight_shape(), [10, 3, 5, 5]);
    assert_eq!(p.param_count(), 10 * (5 * 5 * 3 + 1));
    assert_eq!(p.param_count(), 760);
    // 2 * N*K*OH*OW * C*FH*FW
    assert_eq!(p.flops([1, 3, 32, 32]).unwrap(), 2 * 10 * 32 * 32 * 75);
}

#[test]
fn hand_computed_convolutions() {
    // 3x3 input 1..9, 2x2 filter [[1,0],[0,-1]]: x[i][j] - x[i+1][j+1] = -4 everywhere.
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let p = Conv2dParams::new(1, 1, [2, 2]);
    let y = reference::conv2d(&x, [1, 1, 3, 3], &[1.0, 0.0, 0.0, -1.0], None, &p).unwrap();
    assert_eq!(y, [-4.0; 4]);
    // Same input, 3x3 ones filter, pad 1: sums of the 3x3 neighbourhoods.
    let p = Conv2dParams::new(1, 1, [3, 3]).padding(1);
    let y = reference::conv2d(&x, [1, 1, 3, 3], &[1.0; 9], None, &p).unwrap();
    assert_eq!(y, [12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0]);
    // Dilation 2 on a 5x5 ramp picks the corners and centre of each 5x5 patch.
    let x: Vec<f32> = (0..25).map(|v| v as f32).collect();
    let p = Conv2dParams::new(1, 1, [2, 2]).dilation(2);
    let y = reference::conv2d(&x, [1, 1, 5, 5], &[1.0; 4], None, &p).unwrap();
    // Output (0,0): x[0][0] + x[0][2] + x[2][0] + x[2][2] = 0 + 2 + 10 + 12.
    assert_eq!(y.len(), 9);
    assert_eq!(y[0], 24.0);
    assert_eq!(y[8], 12.0 + 14.0 + 22.0 + 24.0);
    // Two groups: each output channel sees only its own input channel.
    let x = [1.0, 2.0, 10.0, 20.0]; // 2 channels of 1x2
    let p = Conv2dParams::new(2, 2, [1, 2]).groups(2);
    let y = reference::conv2d(&x, [1, 2, 1, 2], &[1.0, 1.0, 0.5, 0.5], Some(&[0.0, 1.0]), &p).unwrap();
    assert_eq!(y, [3.0, 16.0]);
    // Asymmetric padding: one zero column on the left only.
    let p = Conv2dParams::new(1, 1, [1, 2]).padding_with(Padding::new(0, 0, 1, 0));
    let y = reference::conv2d(&[1.0, 2.0, 3.0], [1, 1, 1, 3], &[1.0, 10.0], None, &p).unwrap();
    assert_eq!(y, [10.0, 21.0, 32.0]);
}

#[test]
fn pytorch_ceil_mode_last_window_rule() {
    // Length 5, kernel 2, stride 2, pad 1, ceil_mode: 3 outputs, not 4,
    // because a 4th window would start in the right padding.
    let q = Pool2dParams::max([1, 2]).stride_hw([1, 2]).padding_with(Padding::new(0, 0, 1, 1)).ceil_mode(true);
    assert_eq!(q.output_shape([1, 1, 1, 5]).unwrap(), [1, 1, 1, 3]);
    let q = Pool2dParams::max([2, 2]).stride(2).padding(1).ceil_mode(true);
    assert_eq!(q.output_shape([1, 1, 5, 5]).unwrap(), [1, 1, 3, 3]);
    // Without ceil_mode: floor((5 + 2 - 2)/2) + 1 = 3 as well; with length 6 they differ.
    let q = Pool2dParams::max([1, 3]).stride_hw([1, 2]);
    assert_eq!(q.output_shape([1, 1, 1, 6]).unwrap(), [1, 1, 1, 2]);
    assert_eq!(q.ceil_mode(true).output_shape([1, 1, 1, 6]).unwrap(), [1, 1, 1, 3]);
}

#[test]
fn pytorch_avg_pool_ceil_mode_divisor() {
    let q = Pool2dParams::avg([1, 2]).ceil_mode(true);
    let y = reference::avg_pool2d(&[1.0, 2.0, 3.0, 4.0, 5.0], [1, 1, 1, 5], &q).unwrap();
    assert_eq!(y, [1.5, 3.5, 5.0]);
    // count_include_pad: a window half in the padding divides by 2 or by 1.
    let q = Pool2dParams::avg([1, 2]).padding_with(Padding::new(0, 0, 1, 1));
    let x = [4.0, 6.0, 8.0];
    assert_eq!(reference::avg_pool2d(&x, [1, 1, 1, 3], &q).unwrap(), [2.0, 7.0]);
    let y = reference::avg_pool2d(&x, [1, 1, 1, 3], &q.count_include_pad(false)).unwrap();
    assert_eq!(y, [4.0, 7.0]);
    let y = reference::avg_pool2d(&x, [1, 1, 1, 3], &q.divisor_override(Some(4))).unwrap();
    assert_eq!(y, [1.0, 3.5]);
}

#[test]
fn max_pool_nan_propagates_and_ties_keep_first() {
    let q = Pool2dParams::max([2, 2]);
    // Plane 2x4: window 0 = [1, 3; 3, 0] (tie on 3), window 1 = [NaN, 9; 2, 9].
    let x = [1.0, 3.0, f32::NAN, 9.0, 3.0, 0.0, 2.0, 9.0];
    let (y, idx) = reference::max_pool2d_with_indices(&x, [1, 1, 2, 4], &q).unwrap();
    assert_eq!(y[0], 3.0);
    assert_eq!(idx[0], 1, "the first 3 (row 0, column 1) wins the tie");
    assert!(y[1].is_nan());
    assert_eq!(idx[1], 2);
    // -inf everywhere still yields an in-window index.
    let (y, idx) = reference::max_pool2d_with_indices(&[f32::NEG_INFINITY; 4], [1, 1, 2, 2], &q).unwrap();
    assert_eq!((y[0], idx[0]), (f32::NEG_INFINITY, 0));
}

#[test]
fn global_pools() {
    let x = [1.0, 2.0, 3.0, 6.0, -1.0, -2.0, -3.0, -6.0];
    assert_eq!(reference::global_avg_pool2d(&x, [1, 2, 2, 2]).unwrap(), [3.0, -3.0]);
    assert_eq!(reference::global_max_pool2d(&x, [1, 2, 2, 2]).unwrap(), [6.0, -1.0]);
}
