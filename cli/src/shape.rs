//! `receptive shape`: the output volume, parameter count and FLOPs of a layer.

use receptive::PoolKind;

use crate::case::{Case, Op};

fn dims(d: &[usize]) -> String {
    d.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("x")
}

/// Describes the layer `args` (op word, then key=value tokens and `--strict`).
pub fn run(args: &[String]) -> Result<String, String> {
    let strict = args.iter().any(|a| a == "--strict");
    let words: Vec<&str> = args.iter().filter(|a| *a != "--strict").map(String::as_str).collect();
    let Some((op, tokens)) = words.split_first() else {
        return Err(
            "usage: receptive shape conv|maxpool|avgpool|globalavgpool|globalmaxpool key=value ... [--strict]".into()
        );
    };
    let case = Case::parse(op, tokens)?;
    match case.op {
        Op::Conv => {
            let (p, shape) = case.conv()?;
            let p = p.strict(strict);
            let out = p.output_shape(shape).map_err(|e| e.to_string())?;
            let flops = p.flops(shape).map_err(|e| e.to_string())?;
            let w = p.weight_shape();
            Ok(format!(
                "input   {} (NCHW)\noutput  {} (NCHW)\nweights {} = {} + bias {} = {} parameters\nFLOPs   {} ({:.3} GFLOP)",
                dims(&shape),
                dims(&out),
                dims(&w),
                p.weight_count(),
                p.out_channels,
                p.param_count(),
                flops,
                flops as f64 / 1e9,
            ))
        }
        Op::MaxPool | Op::AvgPool | Op::GlobalAvgPool | Op::GlobalMaxPool => {
            let (q, shape) = case.pool()?;
            let out = q.output_shape(shape).map_err(|e| e.to_string())?;
            let kind = if q.kind == PoolKind::Max { "max" } else { "average" };
            Ok(format!(
                "input   {} (NCHW)\noutput  {} (NCHW), {kind} pooling over {} windows\nparameters 0",
                dims(&shape),
                dims(&out),
                dims(&q.kernel),
            ))
        }
        other => Err(format!(
            "shape does not describe '{}' yet; use conv, maxpool, avgpool, globalavgpool or globalmaxpool",
            other.word()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(line: &str) -> Result<String, String> {
        run(&line.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn seed_worked_example() {
        let out = shape("conv n=1 c=3 h=32 w=32 k=10 kh=5 kw=5 stride=1 pad=2").unwrap();
        assert!(out.contains("output  1x10x32x32"), "{out}");
        assert!(out.contains("760 parameters"), "{out}");
    }

    #[test]
    fn strict_stride_three_does_not_fit() {
        let err = shape("conv n=1 c=1 h=7 w=7 k=1 kh=3 kw=3 stride=3 --strict").unwrap_err();
        assert!(err.contains("(7 - 3)/3 + 1 = 2.33"), "{err}");
        assert!(shape("conv n=1 c=1 h=7 w=7 k=1 kh=3 kw=3 stride=3").unwrap().contains("1x1x2x2"));
    }

    #[test]
    fn pooling_shapes() {
        let out = shape("maxpool c=64 h=112 w=112 kh=3 kw=3 stride=2 pad=1").unwrap();
        assert!(out.contains("output  1x64x56x56"), "{out}");
        let err = shape("maxpool c=1 h=5 w=5 kh=2 kw=2 pad=2").unwrap_err();
        assert!(err.contains("at most half"), "{err}");
    }
}
