//! The seed's pictures, made with receptive: a first conv layer of
//! hand-made edge and blob filters runs over a photograph, then max pooling,
//! and every filter and activation map is written as a PNG, white where the
//! activation is high and black where it is low.
//!
//! Run: `cargo run --release --example activation_maps [OUT_DIR]`
//! (default `target/activation_maps`).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use receptive::{Activation, Conv2dParams, Conv2dPlan, Pool2dParams};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The first-layer filters, 5x5: oriented edges and blobs, like the ones a
/// trained network learns first.
fn filters() -> Vec<(&'static str, [f32; 25])> {
    let mut bank = Vec::new();
    let at = |f: &dyn Fn(f32, f32) -> f32| {
        let mut k = [0.0f32; 25];
        for (i, v) in k.iter_mut().enumerate() {
            *v = f((i / 5) as f32 - 2.0, (i % 5) as f32 - 2.0);
        }
        // Zero mean, unit L1 norm: flat regions give 0, edges stand out.
        let mean = k.iter().sum::<f32>() / 25.0;
        k.iter_mut().for_each(|v| *v -= mean);
        let norm: f32 = k.iter().map(|v| v.abs()).sum();
        k.iter_mut().for_each(|v| *v /= norm);
        k
    };
    bank.push(("edge_vertical", at(&|_, x| x)));
    bank.push(("edge_horizontal", at(&|y, _| y)));
    bank.push(("edge_diagonal", at(&|y, x| x + y)));
    bank.push(("edge_antidiagonal", at(&|y, x| x - y)));
    bank.push(("blob_bright", at(&|y, x| (-(x * x + y * y) / 2.0).exp())));
    bank.push(("blob_dark", at(&|y, x| -(-(x * x + y * y) / 2.0).exp())));
    bank
}

fn read_gray(path: &Path) -> AnyResult<(Vec<f32>, usize, usize)> {
    let decoder = png::Decoder::new(std::io::BufReader::new(File::open(path)?));
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    if info.color_type != png::ColorType::Grayscale || info.bit_depth != png::BitDepth::Eight {
        return Err(format!("{}: expected 8-bit grayscale", path.display()).into());
    }
    let (w, h) = (info.width as usize, info.height as usize);
    Ok((buf[..w * h].iter().map(|&v| v as f32 / 255.0).collect(), h, w))
}

/// Writes a plane as an 8-bit grayscale PNG, scaled so its minimum is black
/// and its maximum white, each pixel repeated `scale` times per axis.
fn write_gray(path: &Path, plane: &[f32], h: usize, w: usize, scale: usize) -> AnyResult<()> {
    let (lo, hi) = plane.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut px = Vec::with_capacity(h * w * scale * scale);
    for y in 0..h * scale {
        for x in 0..w * scale {
            px.push(((plane[(y / scale) * w + x / scale] - lo) / span * 255.0).round() as u8);
        }
    }
    let mut enc = png::Encoder::new(BufWriter::new(File::create(path)?), (w * scale) as u32, (h * scale) as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&px)?;
    Ok(())
}

/// The vertical-edge map must light up where the photo changes from left to
/// right: its mean over the 5% of pixels with the steepest horizontal
/// gradient must far exceed its mean over the flattest half.
fn check_edges(img: &[f32], map: &[f32], h: usize, w: usize) -> AnyResult<()> {
    let mut by_gradient: Vec<(f32, f32)> =
        (0..h * w).filter(|i| i % w > 0 && i % w < w - 1).map(|i| ((img[i + 1] - img[i - 1]).abs(), map[i])).collect();
    by_gradient.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mean = |s: &[(f32, f32)]| s.iter().map(|p| p.1).sum::<f32>() / s.len() as f32;
    let n = by_gradient.len();
    let (steep, flat) = (mean(&by_gradient[..n / 20]), mean(&by_gradient[n / 2..]));
    println!("vertical-edge map: mean {steep:.4} on the steepest 5% of pixels, {flat:.4} on the flattest half");
    if steep < 5.0 * flat.max(1e-6) {
        return Err(format!("the edge map does not follow the image's edges ({steep} vs {flat})").into());
    }
    Ok(())
}

fn main() -> AnyResult<()> {
    let out: PathBuf = std::env::args().nth(1).unwrap_or_else(|| "target/activation_maps".into()).into();
    std::fs::create_dir_all(&out)?;
    let (img, h, w) = read_gray(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/camera.png"))?;
    // Halve the photo with 2x2 average pooling: receptive's pooling at work.
    let half = receptive::avg_pool2d(&img, [1, 1, h, w], &Pool2dParams::avg([2, 2]))?;
    let (h, w) = (h / 2, w / 2);
    write_gray(&out.join("input.png"), &half, h, w, 1)?;

    let bank = filters();
    let k = bank.len();
    let weights: Vec<f32> = bank.iter().flat_map(|(_, f)| f.iter().copied()).collect();
    // Pad 2 keeps the size; ReLU keeps the positive responses, as a ConvNet does.
    let p = Conv2dParams::new(1, k, [5, 5]).padding(2);
    let plan = Conv2dPlan::new(&p, &weights, None, Activation::Relu)?;
    let shape = plan.output_shape([1, 1, h, w])?;
    let mut maps = vec![0.0; shape.iter().product()];
    plan.run(&half, [1, 1, h, w], &mut maps)?;
    let pooled_shape = Pool2dParams::max([2, 2]).output_shape(shape)?;
    let pooled = receptive::max_pool2d(&maps, shape, &Pool2dParams::max([2, 2]))?;

    let (ph, pw) = (pooled_shape[2], pooled_shape[3]);
    for (i, (name, f)) in bank.iter().enumerate() {
        write_gray(&out.join(format!("filter_{i}_{name}.png")), f, 5, 5, 16)?;
        write_gray(&out.join(format!("map_{i}_{name}.png")), &maps[i * h * w..(i + 1) * h * w], h, w, 1)?;
        let pooled_map = &pooled[i * ph * pw..(i + 1) * ph * pw];
        write_gray(&out.join(format!("pooled_{i}_{name}.png")), pooled_map, ph, pw, 2)?;
        let mean = maps[i * h * w..(i + 1) * h * w].iter().sum::<f32>() / (h * w) as f32;
        println!("{name:>18}: mean activation {mean:.4}");
    }
    check_edges(&half, &maps[..h * w], h, w)?;
    println!("wrote {} filters and {} activation maps ({}x{}, pooled {}x{}) to {}", k, k, h, w, ph, pw, out.display());
    Ok(())
}
