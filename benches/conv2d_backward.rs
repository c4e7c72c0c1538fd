//! Convolution backward passes on large layers of the public suite, at 1
//! and 2 threads. Throughput is in FLOPs (`2*N*K*OH*OW*(C/groups)*FH*FW`,
//! the forward count), so criterion's "elem/s" reads as FLOP/s. Beside them,
//! `forward` times the layer's forward pass through its plan, and
//! `gemm_equiv` times the plain SGEMM of the forward's shape (K x CFF times
//! CFF x OH*OW): the ceiling of an im2col forward pass. The weight gradient
//! runs into a buffer kept across runs, as a training loop keeps its own.
//! The timing loops run inside the pool (a `pool.install` per call would
//! time rayon's hand-over, ~40 µs here).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use receptive::{
    Activation, Bias, Conv2dBackwardDataPlan, Conv2dParams, Conv2dPlan, MatMut, MatRef, conv2d_backward_weights_into,
    sgemm,
};

use receptive::reference::pseudo_random as fill;

/// (name, params, input shape)
fn layers() -> Vec<(&'static str, Conv2dParams, [usize; 4])> {
    vec![
        ("r50_3x3_64", Conv2dParams::new(64, 64, [3, 3]).padding(1), [1, 64, 56, 56]),
        ("r50_3x3_128", Conv2dParams::new(128, 128, [3, 3]).padding(1), [1, 128, 28, 28]),
        ("r50_1x1_256_64", Conv2dParams::new(256, 64, [1, 1]), [1, 256, 56, 56]),
        ("r50_stem", Conv2dParams::new(3, 64, [7, 7]).stride(2).padding(3), [1, 3, 224, 224]),
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d_backward");
    group.sample_size(20);
    for (name, p, xs) in layers() {
        let ys = p.output_shape(xs).unwrap();
        group.throughput(Throughput::Elements(p.flops(xs).unwrap()));
        let (x, w, dy) = (fill(xs.iter().product(), 1), fill(p.weight_count(), 2), fill(ys.iter().product(), 3));
        let plan = Conv2dBackwardDataPlan::new(&p, &w).unwrap();
        let forward = Conv2dPlan::new(&p, &w, None, Activation::None).unwrap();
        let mut fwd_out = vec![0.0; dy.len()];
        let mut dx = vec![0.0; x.len()];
        let mut dwv = vec![0.0; w.len()];
        let [k, cg, fh, fw] = p.weight_shape();
        let (cff, pixels) = (cg * fh * fw, ys[2] * ys[3]);
        let b = fill(cff * pixels, 4);
        let mut y = vec![0.0; k * pixels];
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let id = |op: &str| BenchmarkId::new(op, format!("{name}/t{threads}"));
            group.bench_function(id("forward"), |bch| {
                pool.install(|| bch.iter(|| forward.run(black_box(&x), xs, &mut fwd_out).unwrap()))
            });
            group.bench_function(id("data"), |bch| {
                pool.install(|| bch.iter(|| plan.run(black_box(&dy), ys, xs, &mut dx).unwrap()))
            });
            group.bench_function(id("weights"), |bch| {
                pool.install(|| {
                    bch.iter(|| conv2d_backward_weights_into(black_box(&x), xs, &dy, &p, &mut dwv).unwrap())
                })
            });
            if p.groups == 1 && ys[0] == 1 && threads == 1 {
                group.bench_function(id("gemm_equiv"), |bch| {
                    bch.iter(|| {
                        let a = MatRef::new(&w, k, cff, cff, 1).unwrap();
                        let bm = MatRef::new(black_box(&b), cff, pixels, pixels, 1).unwrap();
                        let c = MatMut::new(&mut y, k, pixels, pixels, 1).unwrap();
                        sgemm(1.0, a, bm, 0.0, c, Bias::None, Activation::None).unwrap()
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
