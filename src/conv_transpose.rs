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
    ///
    /// ```
    /// use receptive::ConvTranspose2dParams;
    /// // 3x3 filters, stride 1: 5x5 grows to 7x7, undoing a conv's 7x7 -> 5x5.
    /// let tp = ConvTranspose2dParams::new(8, 4, [3, 3]);
    /// assert_eq!(tp.output_shape([1, 8, 5, 5])?, [1, 4, 7, 7]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
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
    ///
    /// ```
    /// // Stride 2 with a 2x2 filter doubles the size: each input becomes a 2x2 block.
    /// let tp = receptive::ConvTranspose2dParams::new(1, 1, [2, 2]).stride(2);
    /// assert_eq!(tp.output_shape([1, 1, 4, 4])?, [1, 1, 8, 8]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn stride(self, s: usize) -> Self {
        ConvTranspose2dParams { stride: [s, s], ..self }
    }
    /// Stride per axis `[rows, columns]`.
    ///
    /// ```
    /// // Double the rows only.
    /// let tp = receptive::ConvTranspose2dParams::new(1, 1, [2, 2]).stride_hw([2, 1]);
    /// assert_eq!(tp.output_shape([1, 1, 4, 4])?, [1, 1, 8, 5]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn stride_hw(self, s: [usize; 2]) -> Self {
        ConvTranspose2dParams { stride: s, ..self }
    }
    /// The same padding on all sides.
    ///
    /// ```
    /// // Padding removes rows and columns from the output: 3x3, stride 1, pad 1 keeps the size.
    /// let tp = receptive::ConvTranspose2dParams::new(1, 1, [3, 3]).padding(1);
    /// assert_eq!(tp.output_shape([1, 1, 5, 5])?, [1, 1, 5, 5]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn padding(self, p: usize) -> Self {
        ConvTranspose2dParams { padding: Padding::uniform(p), ..self }
    }
    /// Any padding, asymmetric included.
    ///
    /// ```
    /// use receptive::{ConvTranspose2dParams, Padding};
    /// // Drop only the first row and column of the full 7x7 output.
    /// let tp = ConvTranspose2dParams::new(1, 1, [3, 3]).padding_with(Padding::new(1, 0, 1, 0));
    /// assert_eq!(tp.output_shape([1, 1, 5, 5])?, [1, 1, 6, 6]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn padding_with(self, p: Padding) -> Self {
        ConvTranspose2dParams { padding: p, ..self }
    }
    /// The same dilation on both axes.
    ///
    /// ```
    /// // A 3x3 filter with dilation 2 spans 5x5: a 3x3 input grows to 2 + 4 + 1 = 7.
    /// let tp = receptive::ConvTranspose2dParams::new(1, 1, [3, 3]).dilation(2);
    /// assert_eq!(tp.output_shape([1, 1, 3, 3])?, [1, 1, 7, 7]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn dilation(self, d: usize) -> Self {
        ConvTranspose2dParams { dilation: [d, d], ..self }
    }
    /// Dilation per axis `[rows, columns]`.
    ///
    /// ```
    /// // Dilation 2 across the columns only.
    /// let tp = receptive::ConvTranspose2dParams::new(1, 1, [3, 3]).dilation_hw([1, 2]);
    /// assert_eq!(tp.output_shape([1, 1, 3, 3])?, [1, 1, 5, 7]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn dilation_hw(self, d: [usize; 2]) -> Self {
        ConvTranspose2dParams { dilation: d, ..self }
    }
    /// The same output padding on both axes.
    ///
    /// ```
    /// // A stride-2 3x3 conv with padding 1 maps both 7 and 8 to 4; output padding picks 8.
    /// let tp = receptive::ConvTranspose2dParams::new(1, 1, [3, 3]).stride(2).padding(1);
    /// assert_eq!(tp.output_shape([1, 1, 4, 4])?, [1, 1, 7, 7]);
    /// assert_eq!(tp.output_padding(1).output_shape([1, 1, 4, 4])?, [1, 1, 8, 8]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn output_padding(self, p: usize) -> Self {
        ConvTranspose2dParams { output_padding: [p, p], ..self }
    }
    /// Output padding per axis `[rows, columns]`.
    ///
    /// ```
    /// // One extra row, no extra column.
    /// let tp = receptive::ConvTranspose2dParams::new(1, 1, [3, 3]).stride(2).padding(1).output_padding_hw([1, 0]);
    /// assert_eq!(tp.output_shape([1, 1, 4, 4])?, [1, 1, 8, 7]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn output_padding_hw(self, p: [usize; 2]) -> Self {
        ConvTranspose2dParams { output_padding: p, ..self }
    }
    /// Number of groups.
    ///
    /// ```
    /// // Two groups: each input channel feeds only its group's 4 / 2 = 2 output channels.
    /// let tp = receptive::ConvTranspose2dParams::new(8, 4, [3, 3]).groups(2);
    /// assert_eq!(tp.weight_shape(), [8, 2, 3, 3]);
    /// ```
    pub const fn groups(self, g: usize) -> Self {
        ConvTranspose2dParams { groups: g, ..self }
    }

    /// The convolution whose input gradient this transposed convolution
    /// computes: `C_out` in, `C_in` out, the same window.
    ///
    /// ```
    /// use receptive::ConvTranspose2dParams;
    /// let tp = ConvTranspose2dParams::new(64, 32, [3, 3]).stride(2).padding(1);
    /// let conv = tp.as_conv();
    /// assert_eq!((conv.in_channels, conv.out_channels), (32, 64));
    /// // The conv takes the transposed output's shape back to the transposed input's.
    /// assert_eq!(tp.output_shape([1, 64, 28, 28])?, [1, 32, 55, 55]);
    /// assert_eq!(conv.output_shape([1, 32, 55, 55])?, [1, 64, 28, 28]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
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
    ///
    /// ```
    /// // Output padding must be smaller than the stride (or the dilation).
    /// let tp = receptive::ConvTranspose2dParams::new(1, 1, [3, 3]).stride(2);
    /// assert!(tp.output_padding(1).validate().is_ok());
    /// assert!(tp.output_padding(2).validate().is_err());
    /// ```
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
    ///
    /// ```
    /// // [C_in, C_out/groups, FH, FW]: the weights of the conv it transposes, as PyTorch stores them.
    /// let tp = receptive::ConvTranspose2dParams::new(64, 32, [3, 3]);
    /// assert_eq!(tp.weight_shape(), [64, 32, 3, 3]);
    /// assert_eq!(tp.as_conv().weight_shape(), tp.weight_shape());
    /// ```
    pub fn weight_shape(&self) -> [usize; 4] {
        self.as_conv().weight_shape()
    }

    /// Output shape `[N, C_out, OH, OW]` for an input `[N, C_in, H, W]`.
    ///
    /// ```
    /// // (H-1)*stride - padding + dilation*(F-1) + output_padding + 1 = 3*2 + 3 + 1 = 10.
    /// let tp = receptive::ConvTranspose2dParams::new(16, 8, [4, 4]).stride(2);
    /// assert_eq!(tp.output_shape([2, 16, 4, 4])?, [2, 8, 10, 10]);
    /// assert!(tp.output_shape([2, 15, 4, 4]).is_err()); // 15 input channels, the params say 16
    /// # Ok::<(), receptive::Error>(())
    /// ```
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
    ///
    /// ```
    /// // The same work as the convolution it transposes, run on the output's shape.
    /// let tp = receptive::ConvTranspose2dParams::new(16, 8, [4, 4]).stride(2);
    /// assert_eq!(tp.flops([1, 16, 4, 4])?, 2 * (16 * 4 * 4) * (8 * 4 * 4));
    /// assert_eq!(tp.flops([1, 16, 4, 4])?, tp.as_conv().flops([1, 8, 10, 10])?);
    /// # Ok::<(), receptive::Error>(())
    /// ```
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
}

impl ConvTranspose2dPlan {
    /// Validates the parameters, the weights `[C_in, C_out/groups, FH, FW]`
    /// and the bias (`C_out` values), and packs the weights.
    ///
    /// ```
    /// use receptive::{ConvTranspose2dParams, ConvTranspose2dPlan};
    /// let tp = ConvTranspose2dParams::new(4, 2, [3, 3]);
    /// assert!(ConvTranspose2dPlan::new(&tp, &[0.0; 4 * 2 * 9], Some(&[0.0; 2])).is_ok());
    /// assert!(ConvTranspose2dPlan::new(&tp, &[0.0; 4 * 2 * 9], Some(&[0.0; 4])).is_err()); // C_out = 2 biases
    /// ```
    pub fn new(params: &ConvTranspose2dParams, w: &[f32], bias: Option<&[f32]>) -> Result<Self> {
        params.validate()?;
        if let Some(b) = bias {
            check_len("bias", b.len(), &[params.out_channels])?;
        }
        let data = Conv2dBackwardDataPlan::with_bias(&params.as_conv(), w, bias, params.output_padding)?;
        Ok(ConvTranspose2dPlan { params: *params, data })
    }

    /// The parameters the plan was built for.
    ///
    /// ```
    /// use receptive::{ConvTranspose2dParams, ConvTranspose2dPlan};
    /// let plan = ConvTranspose2dPlan::new(&ConvTranspose2dParams::new(4, 2, [3, 3]), &[0.0; 72], None)?;
    /// assert_eq!(plan.params().output_shape([1, 4, 5, 5])?, [1, 2, 7, 7]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn params(&self) -> &ConvTranspose2dParams {
        &self.params
    }

    /// Writes the transposed convolution of `x` (shape `x_shape`) into `y`,
    /// which must hold the output shape's element count.
    ///
    /// ```
    /// use receptive::{ConvTranspose2dParams, ConvTranspose2dPlan};
    /// // A single input value stamps the whole filter, scaled, onto the output.
    /// let w: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    /// let plan = ConvTranspose2dPlan::new(&ConvTranspose2dParams::new(1, 1, [3, 3]), &w, None)?;
    /// let mut y = vec![0.0; 9];
    /// plan.run(&[2.0], [1, 1, 1, 1], &mut y)?;
    /// assert_eq!(y, w.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn run(&self, x: &[f32], x_shape: [usize; 4], y: &mut [f32]) -> Result<()> {
        let [_, _, oh, ow] = self.params.output_shape(x_shape)?;
        check_len("input", x.len(), &x_shape)?;
        check_len("output", y.len(), &[x_shape[0], self.params.out_channels, oh, ow])?;
        self.data.run_unchecked(x, x_shape, [oh, ow], y);
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
