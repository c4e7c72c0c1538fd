//! What the kernels' unit tests share: a naive convolution to check the
//! convolution kernels against, and exact test data.

use crate::im2col::Geometry;

/// Direct convolution of `x` (one group) by `w` `[K, C*FH*FW]`.
pub(crate) fn naive_conv(x: &[f32], w: &[f32], k: usize, g: &Geometry) -> Vec<f32> {
    let mut y = vec![0.0; k * g.oh * g.ow];
    for o in 0..k {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut s = 0.0;
                for c in 0..g.c {
                    for fy in 0..g.fh {
                        for fx in 0..g.fw {
                            let iy = (oy * g.stride[0] + fy * g.dilation[0]) as isize - g.pad_top as isize;
                            let ix = (ox * g.stride[1] + fx * g.dilation[1]) as isize - g.pad_left as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                let xv = x[(c * g.h + iy as usize) * g.w + ix as usize];
                                s += w[((o * g.c + c) * g.fh + fy) * g.fw + fx] * xv;
                            }
                        }
                    }
                }
                y[(o * g.oh + oy) * g.ow + ox] = s;
            }
        }
    }
    y
}

/// Small integers, so every sum is exact in f32 whatever the order.
pub(crate) fn ints(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 + seed * 13) % 9) as f32 - 4.0).collect()
}
