//! `cargo bench --bench sgemm`: receptive's sgemm beside matrixmultiply and
//! the `gemm` crate, on square sizes and convolution-shaped products, one
//! and two threads. Throughput is 2*M*N*K elements, so criterion's
//! "elements/s" reads as FLOP/s; the peak probe printed first says what
//! share of this core's FMA peak that is.
//!
//! Each measurement loop runs inside its rayon pool (`install` around
//! `iter`, not inside it), so an iteration times the product alone and not
//! the hand-off from the bench thread to a sleeping pool worker: that
//! wake-up costs tens of microseconds, a quarter of a 256^3 product.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use receptive::{Activation, Bias, MatMut, MatRef, sgemm};
use std::hint::black_box;
use std::time::Duration;

/// (M, N, K): square sizes, then ResNet-50-like convolutions as GEMMs
/// (output channels x pixels x C*FH*FW).
const SHAPES: &[(usize, usize, usize)] = &[
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (64, 3136, 576),
    (64, 3136, 256),
    (512, 49, 4608),
    (128, 784, 1152),
];

fn fill(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn bench(c: &mut Criterion) {
    let isa = receptive::active_isa();
    let info = receptive::sgemm_kernel_info();
    let peak = receptive::peak_gflops(isa).unwrap_or(f64::NAN);
    eprintln!(
        "receptive sgemm: {} (MC {} KC {} NC {}); peak probe {isa}: {peak:.1} GFLOP/s per core",
        info.name, info.mc, info.kc, info.nc
    );
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();

    let mut g = c.benchmark_group("sgemm");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for &(m, n, k) in SHAPES {
        let id = format!("{m}x{n}x{k}");
        g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        let (a, b) = (fill(m * k), fill(k * n));
        let mut cbuf = vec![0.0f32; m * n];
        for (threads, pool) in [(1, &one), (2, &two)] {
            g.bench_function(BenchmarkId::new(format!("receptive/{threads}t"), &id), |bch| {
                pool.install(|| {
                    bch.iter(|| {
                        sgemm(
                            1.0,
                            MatRef::new(&a, m, k, k, 1).unwrap(),
                            MatRef::new(&b, k, n, n, 1).unwrap(),
                            0.0,
                            MatMut::new(&mut cbuf, m, n, n, 1).unwrap(),
                            Bias::None,
                            Activation::None,
                        )
                        .unwrap();
                        black_box(&mut cbuf);
                    })
                })
            });
        }
        g.bench_function(BenchmarkId::new("matrixmultiply/1t", &id), |bch| {
            bch.iter(|| {
                receptive_kernels::peers::matrixmultiply_sgemm(
                    1.0,
                    MatRef::new(&a, m, k, k, 1).unwrap(),
                    MatRef::new(&b, k, n, n, 1).unwrap(),
                    0.0,
                    MatMut::new(&mut cbuf, m, n, n, 1).unwrap(),
                );
                black_box(&mut cbuf);
            })
        });
        for threads in [1, 2] {
            g.bench_function(BenchmarkId::new(format!("gemm/{threads}t"), &id), |bch| {
                two.install(|| {
                    bch.iter(|| {
                        receptive_kernels::peers::gemm_crate_sgemm(
                            MatRef::new(&a, m, k, k, 1).unwrap(),
                            MatRef::new(&b, k, n, n, 1).unwrap(),
                            MatMut::new(&mut cbuf, m, n, n, 1).unwrap(),
                            threads,
                        );
                        black_box(&mut cbuf);
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
