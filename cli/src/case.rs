//! One layer case in the suite vocabulary of DESIGN.md §8: an op word and
//! `key=value` tokens. Shared by `receptive shape` and `receptive bench`.

use std::collections::BTreeMap;

use receptive::{Conv2dParams, ConvTranspose2dParams, Padding, Pool2dParams};

/// The operation a case runs, named exactly as in a suite file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Conv,
    ConvBwdData,
    ConvBwdWeights,
    ConvTranspose,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    GlobalMaxPool,
    Sgemm,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::Conv,
        Op::ConvBwdData,
        Op::ConvBwdWeights,
        Op::ConvTranspose,
        Op::MaxPool,
        Op::AvgPool,
        Op::GlobalAvgPool,
        Op::GlobalMaxPool,
        Op::Sgemm,
    ];

    pub fn word(self) -> &'static str {
        match self {
            Op::Conv => "conv",
            Op::ConvBwdData => "conv_bwd_data",
            Op::ConvBwdWeights => "conv_bwd_weights",
            Op::ConvTranspose => "conv_transpose",
            Op::MaxPool => "maxpool",
            Op::AvgPool => "avgpool",
            Op::GlobalAvgPool => "globalavgpool",
            Op::GlobalMaxPool => "globalmaxpool",
            Op::Sgemm => "sgemm",
        }
    }

    pub fn parse(word: &str) -> Result<Op, String> {
        Op::ALL.into_iter().find(|o| o.word() == word).ok_or_else(|| {
            let known: Vec<_> = Op::ALL.iter().map(|o| o.word()).collect();
            format!("unknown op '{word}' (known: {})", known.join(", "))
        })
    }

    /// The integer keys this op accepts (besides `name`).
    fn keys(self) -> &'static [&'static str] {
        const GEOM: &[&str] = &[
            "n", "c", "h", "w", "kh", "kw", "stride", "sh", "sw", "pad", "ph", "pw", "pt", "pb", "pl", "pr",
            "dilation", "dh", "dw",
        ];
        const CONV: &[&str] = &[
            "n", "c", "h", "w", "k", "kh", "kw", "stride", "sh", "sw", "pad", "ph", "pw", "pt", "pb", "pl", "pr",
            "dilation", "dh", "dw", "groups",
        ];
        const TRANSPOSE: &[&str] = &[
            "n",
            "c",
            "h",
            "w",
            "k",
            "kh",
            "kw",
            "stride",
            "sh",
            "sw",
            "pad",
            "ph",
            "pw",
            "pt",
            "pb",
            "pl",
            "pr",
            "dilation",
            "dh",
            "dw",
            "groups",
            "output_padding",
        ];
        const POOL: &[&str] = &[
            "n",
            "c",
            "h",
            "w",
            "kh",
            "kw",
            "stride",
            "sh",
            "sw",
            "pad",
            "ph",
            "pw",
            "pt",
            "pb",
            "pl",
            "pr",
            "dilation",
            "dh",
            "dw",
            "ceil",
            "count_include_pad",
            "divisor_override",
        ];
        match self {
            Op::Conv | Op::ConvBwdData | Op::ConvBwdWeights => CONV,
            Op::ConvTranspose => TRANSPOSE,
            Op::MaxPool | Op::AvgPool => POOL,
            Op::GlobalAvgPool | Op::GlobalMaxPool => &GEOM[..4],
            Op::Sgemm => &["m", "n", "k"],
        }
    }
}

/// A parsed case.
#[derive(Clone, Debug)]
pub struct Case {
    pub op: Op,
    pub name: String,
    kv: BTreeMap<String, usize>,
}

impl Case {
    /// Parses `op key=value ...`; unknown keys and bad values are errors
    /// naming the token.
    pub fn parse(op: &str, tokens: &[&str]) -> Result<Case, String> {
        let op = Op::parse(op)?;
        let mut name = None;
        let mut kv = BTreeMap::new();
        for tok in tokens {
            let (key, value) = tok.split_once('=').ok_or_else(|| format!("'{tok}' is not key=value"))?;
            if key == "name" {
                name = Some(value.to_string());
                continue;
            }
            if !op.keys().contains(&key) {
                return Err(format!("unknown key '{key}' for {} (known: name, {})", op.word(), op.keys().join(", ")));
            }
            let v: usize =
                value.parse().map_err(|_| format!("key '{key}': '{value}' is not a non-negative integer"))?;
            if kv.insert(key.to_string(), v).is_some() {
                return Err(format!("key '{key}' given twice"));
            }
        }
        let name = name.unwrap_or_else(|| op.word().to_string());
        Ok(Case { op, name, kv })
    }

    /// Parses one suite line (comments already stripped): `op key=value ...`.
    pub fn parse_line(line: &str) -> Result<Option<Case>, String> {
        let mut words = line.split_whitespace();
        match words.next() {
            None => Ok(None),
            Some(op) => Case::parse(op, &words.collect::<Vec<_>>()).map(Some),
        }
    }

    pub fn get(&self, key: &str) -> Option<usize> {
        self.kv.get(key).copied()
    }

    pub fn req(&self, key: &str) -> Result<usize, String> {
        self.get(key).ok_or_else(|| format!("missing key '{key}' for {}", self.op.word()))
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(format!("key '{key}': {v} must be 0 or 1")),
        }
    }

    /// `[N, C, H, W]`; N defaults to 1.
    pub fn input_shape(&self) -> Result<[usize; 4], String> {
        Ok([self.get("n").unwrap_or(1), self.req("c")?, self.req("h")?, self.req("w")?])
    }

    /// Per-axis value from `both` or the `row`/`col` keys, else `default`.
    fn pair(&self, both: &str, row: &str, col: &str, default: [usize; 2]) -> [usize; 2] {
        let b = self.get(both);
        [self.get(row).or(b).unwrap_or(default[0]), self.get(col).or(b).unwrap_or(default[1])]
    }

    fn padding(&self) -> Padding {
        let p = self.get("pad").unwrap_or(0);
        let (ph, pw) = (self.get("ph").unwrap_or(p), self.get("pw").unwrap_or(p));
        Padding::new(
            self.get("pt").unwrap_or(ph),
            self.get("pb").unwrap_or(ph),
            self.get("pl").unwrap_or(pw),
            self.get("pr").unwrap_or(pw),
        )
    }

    /// Convolution parameters and input shape.
    pub fn conv(&self) -> Result<(Conv2dParams, [usize; 4]), String> {
        let shape = self.input_shape()?;
        let kernel = [self.req("kh")?, self.req("kw")?];
        let p = Conv2dParams::new(shape[1], self.req("k")?, kernel)
            .stride_hw(self.pair("stride", "sh", "sw", [1, 1]))
            .dilation_hw(self.pair("dilation", "dh", "dw", [1, 1]))
            .padding_with(self.padding())
            .groups(self.get("groups").unwrap_or(1));
        Ok((p, shape))
    }

    /// Transposed-convolution parameters (`c` in, `k` out) and input shape.
    pub fn conv_transpose(&self) -> Result<(ConvTranspose2dParams, [usize; 4]), String> {
        let (p, shape) = self.conv()?;
        let op = self.get("output_padding").unwrap_or(0);
        let tp = ConvTranspose2dParams::new(p.in_channels, p.out_channels, p.kernel)
            .stride_hw(p.stride)
            .dilation_hw(p.dilation)
            .padding_with(p.padding)
            .output_padding(op)
            .groups(p.groups);
        Ok((tp, shape))
    }

    /// Pooling parameters (window, stride defaulting to the window) and input shape.
    pub fn pool(&self) -> Result<(Pool2dParams, [usize; 4]), String> {
        let shape = self.input_shape()?;
        let kernel = match self.op {
            Op::GlobalAvgPool | Op::GlobalMaxPool => [shape[2], shape[3]],
            _ => [self.req("kh")?, self.req("kw")?],
        };
        let base = if self.op == Op::AvgPool || self.op == Op::GlobalAvgPool {
            Pool2dParams::avg(kernel)
        } else {
            Pool2dParams::max(kernel)
        };
        let q = base
            .stride_hw(self.pair("stride", "sh", "sw", kernel))
            .dilation_hw(self.pair("dilation", "dh", "dw", [1, 1]))
            .padding_with(self.padding())
            .ceil_mode(self.flag("ceil", false)?)
            .count_include_pad(self.flag("count_include_pad", true)?)
            .divisor_override(self.get("divisor_override"));
        Ok((q, shape))
    }

    /// `(m, n, k)` of an sgemm case.
    pub fn gemm_dims(&self) -> Result<[usize; 3], String> {
        Ok([self.req("m")?, self.req("n")?, self.req("k")?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_design_examples() {
        let c = Case::parse_line("conv name=asym n=2 c=8 h=19 w=23 k=12 kh=3 kw=5 sh=1 sw=2 pt=0 pb=2 pl=1 pr=3")
            .unwrap()
            .unwrap();
        let (p, shape) = c.conv().unwrap();
        assert_eq!(c.name, "asym");
        assert_eq!(shape, [2, 8, 19, 23]);
        assert_eq!(p.stride, [1, 2]);
        assert_eq!(p.padding, Padding::new(0, 2, 1, 3));
        let c = Case::parse_line("maxpool name=stem_pool n=1 c=64 h=112 w=112 kh=3 kw=3 stride=2 pad=1 ceil=0")
            .unwrap()
            .unwrap();
        assert_eq!(c.pool().unwrap().0.stride, [2, 2]);
        let c = Case::parse_line("avgpool c=1 h=4 w=4 kh=2 kw=2").unwrap().unwrap();
        assert_eq!(c.pool().unwrap().0.stride, [2, 2], "pool stride defaults to the window");
        assert_eq!(Case::parse_line("   ").unwrap().map(|c| c.name), None);
    }

    #[test]
    fn rejects_bad_tokens() {
        let err = |l: &str| Case::parse_line(l).unwrap_err();
        assert!(err("conv c=3 foo=1").contains("unknown key 'foo'"));
        assert!(err("conv c=-3").contains("'-3' is not a non-negative integer"));
        assert!(err("conv c").contains("not key=value"));
        assert!(err("blur c=3").contains("unknown op 'blur'"));
        assert!(err("conv c=3 c=4").contains("given twice"));
        let c = Case::parse_line("conv c=3 h=4 w=4 kh=3 kw=3").unwrap().unwrap();
        assert!(c.conv().unwrap_err().contains("missing key 'k'"));
        let c = Case::parse_line("maxpool c=3 h=4 w=4 kh=3 kw=3 ceil=2").unwrap().unwrap();
        assert!(c.pool().unwrap_err().contains("must be 0 or 1"));
    }
}
