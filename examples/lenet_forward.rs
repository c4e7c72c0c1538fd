//! A LeNet-style forward pass with plans: conv 5x5 -> ReLU -> max pool ->
//! conv 5x5 -> ReLU -> max pool, on a batch of 32x32 images, timed.
//! Plans validate and pack the weights once; `run` is then all compute.
//!
//! Run: `cargo run --release --example lenet_forward`

use std::time::Instant;

use receptive::{Activation, Conv2dParams, Conv2dPlan, Pool2dParams, reference};

use receptive::reference::pseudo_random as noise;

fn main() -> Result<(), receptive::Error> {
    let n = 16;
    let x_shape = [n, 1, 32, 32];
    let x = noise(x_shape.iter().product(), 1);
    let c1 = Conv2dParams::new(1, 6, [5, 5]);
    let c2 = Conv2dParams::new(6, 16, [5, 5]);
    let (w1, b1) = (noise(c1.weight_count(), 2), noise(6, 3));
    let (w2, b2) = (noise(c2.weight_count(), 4), noise(16, 5));
    let pool = Pool2dParams::max([2, 2]);

    let conv1 = Conv2dPlan::new(&c1, &w1, Some(&b1), Activation::Relu)?;
    let conv2 = Conv2dPlan::new(&c2, &w2, Some(&b2), Activation::Relu)?;
    let s1 = conv1.output_shape(x_shape)?; // 16x6x28x28
    let s2 = pool.output_shape(s1)?; // 16x6x14x14
    let s3 = conv2.output_shape(s2)?; // 16x16x10x10
    let s4 = pool.output_shape(s3)?; // 16x16x5x5
    let mut a1 = vec![0.0; s1.iter().product()];
    let mut a3 = vec![0.0; s3.iter().product()];

    let forward = |a1: &mut Vec<f32>, a3: &mut Vec<f32>| -> Result<Vec<f32>, receptive::Error> {
        conv1.run(&x, x_shape, a1)?;
        let a2 = receptive::max_pool2d(a1, s1, &pool)?;
        conv2.run(&a2, s2, a3)?;
        receptive::max_pool2d(a3, s3, &pool)
    };

    let y = forward(&mut a1, &mut a3)?;
    // The same network through the naive references.
    let relu = |v: Vec<f32>| v.into_iter().map(|x| Activation::Relu.apply(x)).collect::<Vec<_>>();
    let r1 = relu(reference::conv2d(&x, x_shape, &w1, Some(&b1), &c1)?);
    let r2 = reference::max_pool2d(&r1, s1, &pool)?;
    let r3 = relu(reference::conv2d(&r2, s2, &w2, Some(&b2), &c2)?);
    let want = reference::max_pool2d(&r3, s3, &pool)?;
    let err = y.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(err < 1e-3, "network output differs from the reference by {err}");

    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        std::hint::black_box(forward(&mut a1, &mut a3)?);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let flops = c1.flops(x_shape)? + c2.flops(s2)?;
    let ms = times[times.len() / 2];
    println!("LeNet forward, batch {n}: {:?} -> {:?}", x_shape, s4);
    println!("  conv1 path: {}\n  conv2 path: {}", conv1.path_for(x_shape), conv2.path_for(s2));
    println!(
        "  median {ms:.3} ms over {} runs, {:.1} GFLOP/s, max abs err vs reference {err:.2e}",
        times.len(),
        flops as f64 / ms / 1e6
    );
    Ok(())
}
