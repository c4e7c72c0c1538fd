//! criterion group `conv2d`: the public layer suite of issue 4, throughput in
//! FLOPs (`2*N*K*OH*OW*(C/groups)*FH*FW`, reported as elements), at 1 and 2
//! threads on a local rayon pool.
//!
//! Baselines in the same run: the textbook lowering, a whole im2col matrix
//! built per call and one `sgemm` over it (single thread), which is what the
//! tiled gather replaces; and, with `--features candle`, candle-core's
//! `Tensor::conv2d` (no bias or activation; it has no fused ones) at 1 and 2
//! threads. Each layer's workspace is printed once. The timing loops run
//! inside the pool: a `pool.install` per call would time rayon's hand-over
//! to a worker and back (~40 µs on the 2-core VM), not the convolution.
//!
//! `cargo bench --bench conv2d -- --test` runs every case once as a smoke test;
//! `cargo bench --features candle --bench conv2d` adds the candle peer.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use receptive::{Activation, Bias, Conv2dParams, Conv2dPlan, MatMut, MatRef, sgemm};

/// One layer of the suite: `name n c h w k kh kw stride pad groups`.
struct Layer(&'static str, [usize; 4], usize, usize, usize, usize, usize);

const SUITE: &[Layer] = &[
    Layer("seed_5x5", [1, 3, 32, 32], 10, 5, 1, 2, 1),
    Layer("seed_28x28x6", [1, 3, 32, 32], 6, 5, 1, 0, 1),
    Layer("r50_stem", [1, 3, 224, 224], 64, 7, 2, 3, 1),
    Layer("r50_3x3_64", [1, 64, 56, 56], 64, 3, 1, 1, 1),
    Layer("r50_1x1_256_64", [1, 256, 56, 56], 64, 1, 1, 0, 1),
    Layer("r50_3x3_128", [1, 128, 28, 28], 128, 3, 1, 1, 1),
    Layer("r50_3x3_512", [1, 512, 7, 7], 512, 3, 1, 1, 1),
    Layer("vgg_conv1_2", [1, 64, 224, 224], 64, 3, 1, 1, 1),
    Layer("mbv2_dw", [1, 144, 56, 56], 144, 3, 1, 1, 144),
    Layer("r50_3x3_64_b8", [8, 64, 56, 56], 64, 3, 1, 1, 1),
];

fn fill(len: usize, seed: u32) -> Vec<f32> {
    (0..len).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 9) as f32 / 8388608.0 - 1.0).collect()
}

/// The whole im2col matrix `[C*FH*FW, OH*OW]` of image `img` (groups = 1).
fn full_im2col(x: &[f32], shape: [usize; 4], p: &Conv2dParams, oh: usize, ow: usize, img: usize) -> Vec<f32> {
    let [_, c, h, w] = shape;
    let [fh, fw] = p.kernel;
    let mut m = vec![0.0f32; c * fh * fw * oh * ow];
    for ci in 0..c {
        for ky in 0..fh {
            for kx in 0..fw {
                let row = ((ci * fh + ky) * fw + kx) * oh * ow;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let iy = (oy * p.stride[0] + ky * p.dilation[0]).wrapping_sub(p.padding.top);
                        let ix = (ox * p.stride[1] + kx * p.dilation[1]).wrapping_sub(p.padding.left);
                        if iy < h && ix < w {
                            m[row + oy * ow + ox] = x[((img * c + ci) * h + iy) * w + ix];
                        }
                    }
                }
            }
        }
    }
    m
}

fn conv2d(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d");
    g.sample_size(10).warm_up_time(std::time::Duration::from_millis(300));
    g.measurement_time(std::time::Duration::from_secs(2));
    let pools: Vec<_> =
        [1, 2].iter().map(|&t| (t, rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap())).collect();
    for Layer(name, shape, k, f, s, pad, groups) in SUITE {
        let (shape, name) = (*shape, *name);
        let p = Conv2dParams::new(shape[1], *k, [*f, *f]).stride(*s).padding(*pad).groups(*groups);
        let x = fill(shape.iter().product(), 1);
        let w = fill(p.weight_count(), 2);
        let bias = fill(*k, 3);
        let plan = Conv2dPlan::new(&p, &w, Some(&bias), Activation::Relu).unwrap();
        let out = plan.output_shape(shape).unwrap();
        let mut y = vec![0.0f32; out.iter().product()];
        g.throughput(Throughput::Elements(p.flops(shape).unwrap()));
        for (threads, pool) in &pools {
            let ws = pool.install(|| plan.workspace_bytes(shape));
            println!(
                "{name}: path {}, {threads} thread(s): workspace {:.1} KiB, packed weights {:.1} KiB",
                plan.path_for(shape),
                ws as f64 / 1024.0,
                plan.packed_bytes() as f64 / 1024.0
            );
            g.bench_with_input(BenchmarkId::new(format!("receptive_{threads}t"), name), &shape, |b, &shape| {
                pool.install(|| b.iter(|| plan.run(&x, shape, &mut y).unwrap()))
            });
        }
        #[cfg(feature = "candle")]
        candle_peer(&mut g, &pools, name, shape, &x, &w, &p);
        if *groups == 1 {
            let [n, kk, oh, ow] = out;
            let kred = shape[1] * f * f;
            let wm = MatRef::new(&w, kk, kred, kred, 1).unwrap();
            g.bench_with_input(BenchmarkId::new("full_im2col_sgemm_1t", name), &shape, |b, &shape| {
                pools[0].1.install(|| {
                    b.iter(|| {
                        for img in 0..n {
                            let cols = full_im2col(&x, shape, &p, oh, ow, img);
                            let bm = MatRef::new(&cols, kred, oh * ow, oh * ow, 1).unwrap();
                            let yi = &mut y[img * kk * oh * ow..(img + 1) * kk * oh * ow];
                            let cm = MatMut::new(yi, kk, oh * ow, oh * ow, 1).unwrap();
                            sgemm(1.0, wm, bm, 0.0, cm, Bias::PerRow(&bias), Activation::Relu).unwrap();
                        }
                    })
                })
            });
        }
    }
    g.finish();
}

/// candle-core's `Tensor::conv2d` on the same layer, at 1 and 2 threads.
#[cfg(feature = "candle")]
fn candle_peer(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    pools: &[(usize, rayon::ThreadPool)],
    name: &str,
    shape: [usize; 4],
    x: &[f32],
    w: &[f32],
    p: &Conv2dParams,
) {
    use candle_core::{Device, Tensor};
    let xt = Tensor::from_slice(x, &shape, &Device::Cpu).unwrap();
    let wt = Tensor::from_slice(w, &p.weight_shape(), &Device::Cpu).unwrap();
    for (threads, pool) in pools {
        g.bench_with_input(BenchmarkId::new(format!("candle_{threads}t"), name), &shape, |b, _| {
            pool.install(|| b.iter(|| xt.conv2d(&wt, p.padding.top, p.stride[0], p.dilation[0], p.groups).unwrap()))
        });
    }
}

criterion_group!(benches, conv2d);
criterion_main!(benches);
