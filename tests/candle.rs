//! receptive's candle ops against candle's own conv2d and pooling, forward
//! and through autograd.
#![cfg(feature = "candle")]

use candle_core::{DType, Device, Module, Tensor, Var};
use receptive::candle::{Conv2d, Pool2dOp};
use receptive::{Conv2dParams, Pool2dParams, reference};

use receptive::reference::pseudo_random as noise;

fn t(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(noise(shape.iter().product(), seed), shape, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Largest difference, checked against a bound derived from the reduction
/// length (|values| <= 1, so each output's absolute sum is at most `k`).
fn assert_close(got: &Tensor, want: &Tensor, k: usize, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    let tol = 2.0 * reference::tolerance(k, k as f32);
    for (i, (g, w)) in flat(got).iter().zip(flat(want)).enumerate() {
        assert!((g - w).abs() <= tol, "{what} at {i}: {g} vs {w} (tol {tol})");
    }
}

#[test]
fn conv2d_matches_candle_forward_and_gradients() {
    // (C, K, kernel, pad, stride, dilation, groups), shapes candle supports.
    for &(c, k, f, pad, stride, dil, groups) in
        &[(3, 8, 3, 1, 1, 1, 1), (4, 6, 5, 2, 2, 1, 2), (6, 6, 3, 1, 1, 2, 6), (8, 4, 1, 0, 1, 1, 1)]
    {
        let p = Conv2dParams::new(c, k, [f, f]).padding(pad).stride(stride).dilation(dil).groups(groups);
        let x = Var::from_tensor(&t(&[2, c, 11, 9], 1)).unwrap();
        let w = Var::from_tensor(&t(&p.weight_shape(), 2)).unwrap();
        let b = Var::from_tensor(&t(&[k], 3)).unwrap();
        let layer = Conv2d::new(w.as_tensor().clone(), Some(b.as_tensor().clone()), p).unwrap();
        let ours = layer.forward(x.as_tensor()).unwrap();
        let theirs = x
            .conv2d(w.as_tensor(), pad, stride, dil, groups)
            .unwrap()
            .broadcast_add(&b.reshape((1, k, 1, 1)).unwrap())
            .unwrap();
        let red = c / groups * f * f;
        assert_close(&ours, &theirs, red + 1, "forward");

        // Gradients of <y, r> for a random r, through each implementation.
        let r = t(ours.dims(), 4);
        let g_ours = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g_theirs = (&theirs * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let [oh, ow] = [ours.dims()[2], ours.dims()[3]];
        for (var, what, red) in [(&x, "dx", k / groups * f * f), (&w, "dw", 2 * oh * ow), (&b, "db", 2 * oh * ow)] {
            let got = g_ours.get(var.as_tensor()).expect("gradient through receptive");
            let want = g_theirs.get(var.as_tensor()).expect("gradient through candle");
            assert_close(got, want, red, what);
        }
    }
}

#[test]
fn strided_inputs_are_made_contiguous() {
    let p = Conv2dParams::new(3, 4, [3, 3]).padding(1);
    let x = t(&[1, 3, 7, 5], 5).transpose(2, 3).unwrap(); // a 1x3x5x7 view, not contiguous
    assert!(!x.is_contiguous());
    let w = t(&p.weight_shape(), 6);
    let layer = Conv2d::new(w.clone(), None, p).unwrap();
    let ours = layer.forward(&x).unwrap();
    let theirs = x.conv2d(&w, 1, 1, 1, 1).unwrap();
    assert_close(&ours, &theirs, 27, "transposed input");
}

#[test]
fn pooling_matches_candle() {
    let x = t(&[2, 3, 10, 12], 7);
    let max = x.apply_op1(Pool2dOp { params: Pool2dParams::max([2, 2]) }).unwrap();
    assert_eq!(flat(&max), flat(&x.max_pool2d(2).unwrap()));
    let avg = x.apply_op1(Pool2dOp { params: Pool2dParams::avg([3, 2]).stride_hw([2, 2]) }).unwrap();
    assert_close(&avg, &x.avg_pool2d_with_stride((3, 2), (2, 2)).unwrap(), 6, "avg pool");
}

#[test]
fn pooling_gradients_match_candle_and_the_definition() {
    let x = Var::from_tensor(&t(&[2, 3, 8, 10], 11)).unwrap();
    let grad = |y: &Tensor| {
        let r = t(y.dims(), 12);
        (y * &r).unwrap().sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap().clone()
    };
    // Average pooling: the same gradient as candle's autograd.
    let avg = Pool2dParams::avg([2, 2]);
    assert_close(&grad(&x.apply_op1(Pool2dOp { params: avg }).unwrap()), &grad(&x.avg_pool2d(2).unwrap()), 4, "avg dx");
    // Max pooling: the gradient goes to the argmax, as in PyTorch; the
    // reference (checked by finite differences) says so.
    let max = Pool2dParams::max([2, 2]);
    let ours = grad(&x.apply_op1(Pool2dOp { params: max }).unwrap());
    let (xv, xs) = (flat(x.as_tensor()), [2, 3, 8, 10]);
    let (_, idx) = reference::max_pool2d_with_indices(&xv, xs, &max).unwrap();
    let want = reference::max_pool2d_backward(&flat(&t(&[2, 3, 4, 5], 12)), &idx, xs, &max).unwrap();
    assert_eq!(flat(&ours), want);
    // candle 0.9's own max-pool backward scales that by (number of maxima) /
    // (window size), i.e. by 1/4 here (random data has no ties).
    let theirs = grad(&x.max_pool2d(2).unwrap());
    for (o, c) in flat(&ours).iter().zip(flat(&theirs)) {
        assert_eq!(o / 4.0, c);
    }
}

#[test]
fn other_dtypes_and_shapes_are_clear_errors() {
    let p = Conv2dParams::new(3, 4, [3, 3]);
    let w = t(&p.weight_shape(), 8);
    let layer = Conv2d::new(w, None, p).unwrap();
    let x64 = Tensor::zeros((1, 3, 5, 5), DType::F64, &Device::Cpu).unwrap();
    let e = layer.forward(&x64).unwrap_err().to_string();
    assert!(e.contains("f32"), "{e}");
    let e = Conv2d::new(t(&[4, 3, 3, 2], 9), None, p).unwrap_err().to_string();
    assert!(e.contains("weight shape [4, 3, 3, 2]"), "{e}");
    let e = layer.forward(&t(&[1, 2, 5, 5], 10)).unwrap_err().to_string();
    assert!(e.contains("input channels"), "{e}");
}
