//! Pooling throughput in GB/s ((input + output bytes) / time) on the pooling
//! layers of `receptive bench`'s default suite, at 1 and 2 threads, with two
//! baselines measured beside each: a copy of the same number of bytes (what
//! the memory system allows) and the naive reference (1 thread).
//!
//! Each measurement loop runs inside a local rayon pool of the given size, so
//! the op sees that thread count and no per-iteration hand-off is timed.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use receptive::{Pool2dParams, Pool2dPlan, reference};

/// The pooling layers of the default suite.
fn layers() -> Vec<(&'static str, [usize; 4], Pool2dParams)> {
    vec![
        ("r50_maxpool", [1, 64, 112, 112], Pool2dParams::max([3, 3]).stride(2).padding(1)),
        ("vgg_maxpool", [1, 64, 224, 224], Pool2dParams::max([2, 2]).stride(2)),
        ("global_avg", [1, 2048, 7, 7], Pool2dParams::avg([7, 7])),
        ("incep_avg", [1, 192, 35, 35], Pool2dParams::avg([3, 3]).stride(1).padding(1).count_include_pad(false)),
        ("batch_max", [32, 64, 56, 56], Pool2dParams::max([2, 2]).stride(2)),
    ]
}

fn fill(len: usize) -> Vec<f32> {
    let mut s = 0x9e3779b97f4a7c15u64;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn pool2d(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool2d");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for (name, shape, q) in layers() {
        let plan = Pool2dPlan::new(&q, shape).unwrap();
        let x = fill(shape.iter().product());
        let n_out: usize = plan.output_shape().iter().product();
        let mut y = vec![0.0f32; n_out];
        let bytes = (x.len() + n_out) * 4;
        g.throughput(Throughput::Bytes(bytes as u64));
        // The copy baseline moves the same bytes: half read, half written.
        let half = (x.len() + n_out) / 2;
        let src = fill(half);
        let mut dst = vec![0.0f32; half];
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let id = |what: &str| BenchmarkId::new(format!("{name}/{what}"), format!("{threads}t"));
            g.bench_function(id(&plan.path()), |b| {
                pool.install(|| b.iter(|| plan.run(black_box(&x), &mut y).unwrap()))
            });
            g.bench_function(id("copy"), |b| {
                pool.install(|| {
                    b.iter(|| {
                        let chunk = half.div_ceil(threads);
                        dst.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| d.copy_from_slice(s))
                    })
                })
            });
        }
        if matches!(name, "global_avg" | "incep_avg" | "r50_maxpool") {
            g.bench_function(BenchmarkId::new(format!("{name}/reference"), "1t"), |b| {
                b.iter(|| match q.kind {
                    receptive::PoolKind::Max => reference::max_pool2d(black_box(&x), shape, &q).unwrap(),
                    receptive::PoolKind::Avg => reference::avg_pool2d(black_box(&x), shape, &q).unwrap(),
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, pool2d);
criterion_main!(benches);
