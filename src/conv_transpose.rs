//! Transposed convolution (PyTorch's `conv_transpose2d`): the backward-data
//! pass of a convolution run forward, sharing its machinery.

use crate::conv_backward::Conv2dBackwardDataPlan;
use crate::error::{Error, Result, check_len, checked_product};
use crate::params::{Conv2dParams, Padding};

/// Parameters of a 2-D transposed convolution, NCHW, weights
/// `[C_in, C_out/groups, FH, FW]` (PyTorch's layout).
///
/// The output size per axis is
/// `(H-1)*stride - pad_before - pad_after + dilation*(F-1) + output_padding + 1`,
/// and `output_padding` must be smaller than the stride or the dilation.
///
/// ```
/// use receptive::ConvTranspose2dParams;
/// // Upsampling by 2: the inverse shape of a stride-2 3x3 conv with padding 1.
/// let tp = ConvTranspose2dParams::new(64, 32, [3, 3]).stride(2).padding(1).output_padding(1);
/// assert_eq!(tp.output_shape([1, 64, 28, 28])?, [1, 32, 56, 56]);
/// assert_eq!(tp.weight_shape(), [64, 32, 3, 3]);
/// # Ok::<(), receptive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTranspose2dParams {
    /// Input channels C_in.
    pub in_channels: usize,
    /// Output channels C_out.
    pub out_channels: usize,
    /// Filter size [FH, FW].
    pub kernel: [usize; 2],
    /// Stride [rows, columns].
    pub stride: [usize; 2],
    /// Dilation [rows, columns].
    pub dilation: [usize; 2],
    /// Padding removed from the full output, per side.
    pub padding: Padding,
    /// Extra rows and columns added at the bottom and right of the output.
    pub output_padding: [usize; 2],
    /// Groups: C_in and C_out are split into this many independent slices.
    pub groups: usize,
}

impl ConvTranspose2dParams {
    /// `in_channels` to `out_channels` with `[FH, FW]` filters, stride 1, no
    /// padding, no dilation, no output padding, one group.
    pub const fn new(in_channels: usize, out_channels: usize, kernel: [usize; 2]) -> Self {
        ConvTranspose2dParams {
            in_channels,
            out_channels,
            kernel,
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::uniform(0),
            output_padding: [0, 0],
            groups: 1,
        }
    }
    /// The same stride on both axes.
    pub const fn stride(self, s: usize) -> Self {
        ConvTranspose2dParams { stride: [s, s], ..self }
    }
    /// Stride per axis `[rows, columns]`.
    pub const fn stride_hw(self, s: [usize; 2]) -> Self {
        ConvTranspose2dParams { stride: s, ..self }
    }
    /// The same padding on all sides.
    pub const fn padding(self, p: usize) -> Self {
        ConvTranspose2dParams { padding: Padding::uniform(p), ..self }
    }
    /// Any padding, asymmetric included.
    pub const fn padding_with(self, p: Padding) -> Self {
        ConvTranspose2dParams { padding: p, ..self }
    }
    /// The same dilation on both axes.
    pub const fn dilation(self, d: usize) -> Self {
        ConvTranspose2dParams { dilation: [d, d], ..self }
    }
    /// Dilation per axis `[rows, columns]`.
    pub const fn dilation_hw(self, d: [usize; 2]) -> Self {
        ConvTranspose2dParams { dilation: d, ..self }
    }
    /// The same output padding on both axes.
    pub const fn output_padding(self, p: usize) -> Self {
        ConvTranspose2dParams { output_padding: [p, p], ..self }
    }
    /// Output padding per axis `[rows, columns]`.
    pub const fn output_padding_hw(self, p: [usize; 2]) -> Self {
        ConvTranspose2dParams { output_padding: p, ..self }
    }
    /// Number of groups.
    pub const fn groups(self, g: usize) -> Self {
        ConvTranspose2dParams { groups: g, ..self }
    }

    /// The convolution whose input gradient this transposed convolution
    /// computes: `C_out` in, `C_in` out, the same window.
    pub fn as_conv(&self) -> Conv2dParams {
        Conv2dParams {
            in_channels: self.out_channels,
            out_channels: self.in_channels,
            kernel: self.kernel,
            stride: self.stride,
            dilation: self.dilation,
            padding: self.padding,
            groups: self.groups,
            strict: false,
        }
    }

    /// Checks everything that does not depend on the input size.
    pub fn validate(&self) -> Result<()> {
        // Channel rules under this type's own names; the conv it transposes
        // has them swapped.
        for (name, v) in
            [("in_channels", self.in_channels), ("out_channels", self.out_channels), ("groups", self.groups)]
        {
            if v == 0 {
                return Err(Error::invalid(name, 0, "must be at least 1"));
            }
        }
        for (name, v) in [("in_channels", self.in_channels), ("out_channels", self.out_channels)] {
            if v % self.groups != 0 {
                return Err(Error::invalid(name, v, format!("must be divisible by groups = {}", self.groups)));
            }
        }
        self.as_conv().validate()?;
        for (i, axis) in ["rows", "columns"].iter().enumerate() {
            let op = self.output_padding[i];
            if op >= self.stride[i] && op >= self.dilation[i] {
                return Err(Error::invalid(
                    format!("output_padding ({axis})"),
                    op,
                    format!(
                        "must be smaller than the stride ({}) or the dilation ({})",
                        self.stride[i], self.dilation[i]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Weight shape `[C_in, C_out/groups, FH, FW]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        self.as_conv().weight_shape()
    }

    /// Output shape `[N, C_out, OH, OW]` for an input `[N, C_in, H, W]`.
    pub fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4]> {
        self.validate()?;
        let [n, c, h, w] = input;
        for (name, v) in [("batch size", n), ("input height", h), ("input width", w)] {
            if v == 0 {
                return Err(Error::invalid(name, 0, "must be at least 1"));
            }
        }
        if c != self.in_channels {
            return Err(Error::ShapeMismatch { what: "input channels", expected: self.in_channels, got: c });
        }
        let p = &self.padding;
        let axes = [("rows", h, p.top, p.bottom), ("columns", w, p.left, p.right)];
        let mut out = [n, self.out_channels, 0, 0];
        for (i, (axis, len, before, after)) in axes.into_iter().enumerate() {
            let overflow = || Error::overflow(format!("the transposed convolution output size ({axis})"));
            let full = (len - 1)
                .checked_mul(self.stride[i])
                .and_then(|v| v.checked_add((self.kernel[i] - 1).checked_mul(self.dilation[i])?))
                .and_then(|v| v.checked_add(self.output_padding[i]))
                .and_then(|v| v.checked_add(1))
                .ok_or_else(overflow)?;
            let pad = before.checked_add(after).ok_or_else(overflow)?;
            out[2 + i] = match full.checked_sub(pad) {
                Some(o) if o > 0 => o,
                _ => {
                    return Err(Error::invalid(
                        format!("padding ({axis})"),
                        pad,
                        format!("must be smaller than the unpadded transposed output size {full}"),
                    ));
                }
            };
        }
        checked_product(&input, "the input element count")?;
        checked_product(&out, "the output element count")?;
        Ok(out)
    }

    /// Floating-point operations, `2*N*C_in*H*W*(C_out/groups)*FH*FW`: those
    /// of the convolution it transposes.
    pub fn flops(&self, input: [usize; 4]) -> Result<u64> {
        self.output_shape(input)?;
        let [n, _, h, w] = input;
        let [ci, cog, fh, fw] = self.weight_shape();
        [n, ci, h, w, cog, fh, fw]
            .iter()
            .try_fold(2u64, |a, &d| a.checked_mul(d as u64))
            .ok_or_else(|| Error::overflow("the FLOP count"))
    }
}

/// A transposed convolution with its weights packed once: build it once per
/// layer, run it on every batch.
///
/// ```
/// use receptive::{ConvTranspose2dParams, ConvTranspose2dPlan};
/// let tp = ConvTranspose2dParams::new(1, 1, [2, 2]).stride(2);
/// let plan = ConvTranspose2dPlan::new(&tp, &[1.0; 4], Some(&[0.5]))?;
/// let mut y = vec![0.0; 8];
/// plan.run(&[1.0, 2.0], [1, 1, 1, 2], &mut y)?;
/// assert_eq!(y, [1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 2.5, 2.5]);
/// # Ok::<(), receptive::Error>(())
/// ```
#[derive(Debug)]
pub struct ConvTranspose2dPlan {
    params: ConvTranspose2dParams,
    data: Conv2dBackwardDataPlan,
    bias: Option<Vec<f32>>,
}

impl ConvTranspose2dPlan {
    /// Validates the parameters, the weights `[C_in, C_out/groups, FH, FW]`
    /// and the bias (`C_out` values), and packs the weights.
    pub fn new(params: &ConvTranspose2dParams, w: &[f32], bias: Option<&[f32]>) -> Result<Self> {
        params.validate()?;
        if let Some(b) = bias {
            check_len("bias", b.len(), &[params.out_channels])?;
        }
        let data = Conv2dBackwardDataPlan::new(&params.as_conv(), w)?;
        Ok(ConvTranspose2dPlan { params: *params, data, bias: bias.map(<[f32]>::to_vec) })
    }

    /// The parameters the plan was built for.
    pub fn params(&self) -> &ConvTranspose2dParams {
        &self.params
    }

    /// Writes the transposed convolution of `x` (shape `x_shape`) into `y`,
    /// which must hold the output shape's element count.
    pub fn run(&self, x: &[f32], x_shape: [usize; 4], y: &mut [f32]) -> Result<()> {
        let [_, _, oh, ow] = self.params.output_shape(x_shape)?;
        check_len("input", x.len(), &x_shape)?;
        check_len("output", y.len(), &[x_shape[0], self.params.out_channels, oh, ow])?;
        self.data.run_unchecked(x, x_shape, [oh, ow], y, self.bias.as_deref());
        Ok(())
    }
}

/// Transposed convolution (PyTorch's `conv_transpose2d`) of `x` (`[N, C_in,
/// H, W]`) with weights `[C_in, C_out/groups, FH, FW]` and an optional bias.
/// For repeated calls build a [`ConvTranspose2dPlan`].
///
/// ```
/// use receptive::{conv_transpose2d, ConvTranspose2dParams};
/// let tp = ConvTranspose2dParams::new(1, 1, [2, 2]);
/// let y = conv_transpose2d(&[1.0, 2.0], [1, 1, 1, 2], &[1.0; 4], None, &tp)?;
/// assert_eq!(y, [1.0, 3.0, 2.0, 1.0, 3.0, 2.0]);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv_transpose2d(
    x: &[f32],
    x_shape: [usize; 4],
    w: &[f32],
    bias: Option<&[f32]>,
    params: &ConvTranspose2dParams,
) -> Result<Vec<f32>> {
    let [n, co, oh, ow] = params.output_shape(x_shape)?;
    check_len("input", x.len(), &x_shape)?;
    let plan = ConvTranspose2dPlan::new(params, w, bias)?;
    let mut y = vec![0.0; n * co * oh * ow];
    plan.run(x, x_shape, &mut y)?;
    Ok(y)
}
