//! A walk through the seed's worked examples (CS231n's convolution notes),
//! each checked with a real convolution: output sizes, zero padding, the 760
//! parameters of ten 5x5 filters, and the stride that does not fit.
//!
//! Run: `cargo run --release --example seed_tour`

use receptive::{Activation, Conv2dParams, Conv2dPlan, Pool2dParams, reference};

use receptive::reference::pseudo_random as noise;

/// Runs a real convolution on random data, checks it against the reference
/// and returns the output shape.
fn run(p: &Conv2dParams, x_shape: [usize; 4]) -> Result<[usize; 4], receptive::Error> {
    let x = noise(x_shape.iter().product(), 1);
    let w = noise(p.weight_count(), 2);
    let b = noise(p.out_channels, 3);
    let plan = Conv2dPlan::new(p, &w, Some(&b), Activation::None)?;
    let shape = plan.output_shape(x_shape)?;
    let mut y = vec![0.0; shape.iter().product()];
    plan.run(&x, x_shape, &mut y)?;
    let want = reference::conv2d(&x, x_shape, &w, Some(&b), p)?;
    let err = y.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(err < 1e-3, "fast path disagrees with the reference by {err}");
    Ok(shape)
}

fn hw(s: [usize; 4]) -> String {
    format!("{}x{}x{}", s[2], s[3], s[1])
}

fn main() -> Result<(), receptive::Error> {
    println!("1. Output size (N - F)/stride + 1, for a 7x7 input and a 3x3 filter:");
    for stride in 1..=3 {
        let p = Conv2dParams::new(1, 1, [3, 3]).stride(stride).strict(true);
        match run(&p, [1, 1, 7, 7]) {
            Ok(s) => println!("   stride {stride}: {}x{} output", s[2], s[3]),
            Err(e) => println!("   stride {stride}: {e}"),
        }
    }
    let lenient = Conv2dParams::new(1, 1, [3, 3]).stride(3);
    let s = run(&lenient, [1, 1, 7, 7])?;
    println!("   (PyTorch floors instead: stride 3 gives {}x{}, dropping the last column)", s[2], s[3]);

    println!("\n2. Zero padding (F-1)/2 with stride 1 preserves the size:");
    for f in [3, 5, 7] {
        let p = Conv2dParams::new(3, 4, [f, f]).padding((f - 1) / 2);
        println!("   F={f}, P={}: 32x32x3 -> {}", (f - 1) / 2, hw(run(&p, [1, 3, 32, 32])?));
    }
    let p = Conv2dParams::new(3, 6, [5, 5]);
    let s1 = run(&p, [1, 3, 32, 32])?;
    let s2 = run(&Conv2dParams::new(6, 6, [5, 5]), s1)?;
    println!("   without padding volumes shrink: 32 -> {} -> {}", s1[2], s2[2]);

    println!("\n3. Input 32x32x3, ten 5x5 filters, stride 1, pad 2:");
    let p = Conv2dParams::new(3, 10, [5, 5]).stride(1).padding(2);
    println!("   output {}", hw(run(&p, [1, 3, 32, 32])?));
    println!(
        "   each filter has 5*5*3 + 1 = {} parameters (+1 for bias), the layer {}",
        p.param_count() / p.out_channels,
        p.param_count()
    );

    println!("\n4. Six 5x5 filters on 32x32x3 make six activation maps:");
    println!("   output {}", hw(run(&Conv2dParams::new(3, 6, [5, 5]), [1, 3, 32, 32])?));

    println!("\n5. Pooling keeps the depth and downsamples each map on its own:");
    let q = Pool2dParams::max([2, 2]).stride(2);
    let x = noise(64 * 224 * 224, 4);
    let y = receptive::max_pool2d(&x, [1, 64, 224, 224], &q)?;
    assert_eq!(y, reference::max_pool2d(&x, [1, 64, 224, 224], &q)?);
    println!("   2x2 max pool, stride 2: 224x224x64 -> {}", hw(q.output_shape([1, 64, 224, 224])?));
    Ok(())
}
