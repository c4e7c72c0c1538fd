//! Inputs the fuzz targets (fuzz/) found, one named test each. fuzz/README.md
//! lists them with the artifact that found them.

use std::sync::mpsc;
use std::time::Duration;

use receptive::{Conv2dParams, Error, Padding, Pool2dParams};

/// Runs `f` on its own thread and fails if it takes longer than `limit`
/// (the thread is left behind; the test process ends with the harness).
fn finishes_within(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(limit).expect("did not finish in time: the computation is not bounded");
}

/// fuzz `params`, timeout-2598ee63 (minimized): a 2^40-row window with 2^31
/// rows of bottom padding has 2^31 + 1 output rows, and the check that each
/// window covers an input element visits every one of them.
#[test]
fn pool_output_shape_with_two_billion_windows_is_quick() {
    let q = Pool2dParams::max([1 << 40, 1]).stride(1).padding_with(Padding::new(0, 1 << 31, 0, 0));
    finishes_within(Duration::from_secs(2), move || {
        let out = q.output_shape([1, 1, 1 << 40, 1]).unwrap();
        assert_eq!(out, [1, 1, (1 << 31) + 1, 1]);
    });
}

/// fuzz `params`, crash-26c29828 (CI run of session 2): with ceil_mode, the
/// start of the extra last window, (out - 1) * stride, overflowed for a
/// stride just over half of a near-usize input.
#[test]
fn pool_ceil_mode_last_window_start_past_usize_is_no_overflow() {
    let huge = usize::MAX - 10;
    let q = Pool2dParams::max([1, 1]).stride_hw([usize::MAX / 2 + 5, 1]).ceil_mode(true);
    // ceil((huge - 1) / stride) + 1 = 3 windows, the third would start past
    // usize::MAX: it is dropped, as any window starting past the input.
    assert_eq!(q.output_shape([1, 1, huge, 1]).unwrap(), [1, 1, 2, 1]);
}

/// Found while reducing the one above: one window whose first 2^39 taps lie
/// in the top padding; the same check walks the taps one by one.
#[test]
fn pool_output_shape_with_a_2_pow_40_tap_window_is_quick() {
    let q = Pool2dParams::max([1 << 40, 1]).stride_hw([1 << 40, 1]).padding_with(Padding::new(1 << 39, 1 << 39, 0, 0));
    finishes_within(Duration::from_secs(2), move || {
        assert_eq!(q.output_shape([1, 1, 1, 1]).unwrap(), [1, 1, 1, 1]);
    });
}

/// fuzz `params`, crash-42c88285: in strict mode a stride of `usize::MAX`
/// that does not tile the input is reported as `DoesNotFit`, and printing
/// that error computes `(input + padding - span) + stride`, which overflows
/// (a panic with overflow checks, a wrong ratio without).
#[test]
fn does_not_fit_message_with_a_huge_stride() {
    let p = Conv2dParams::new(8, 8, [3, 1]).stride_hw([usize::MAX, 2]).padding(2).strict(true);
    let e = p.output_shape([8, 8, 3, 1]).unwrap_err();
    assert!(matches!(e, Error::DoesNotFit { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("is not a whole number"), "{text}");
}
