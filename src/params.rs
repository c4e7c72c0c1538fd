//! Layer parameters and the shape algebra: output sizes, parameter and FLOP
//! counts, and every validity rule, checked with overflow-safe arithmetic.

use crate::error::{Error, Result, checked_product};

/// Zero padding on each side of a plane.
///
/// ```
/// use receptive::{Conv2dParams, Padding};
/// // PyTorch's padding="same" for an even 4x4 filter: 1 before, 2 after.
/// let p = Conv2dParams::new(1, 1, [4, 4]).padding_with(Padding::new(1, 2, 1, 2));
/// assert_eq!(p.output_shape([1, 1, 8, 8])?, [1, 1, 8, 8]);
/// # Ok::<(), receptive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Padding {
    /// Rows added above.
    pub top: usize,
    /// Rows added below.
    pub bottom: usize,
    /// Columns added on the left.
    pub left: usize,
    /// Columns added on the right.
    pub right: usize,
}

impl Padding {
    /// The same padding on all four sides.
    ///
    /// ```
    /// assert_eq!(receptive::Padding::uniform(2).left, 2);
    /// ```
    pub const fn uniform(p: usize) -> Padding {
        Padding { top: p, bottom: p, left: p, right: p }
    }
    /// `ph` above and below, `pw` left and right.
    ///
    /// ```
    /// use receptive::{Conv2dParams, Padding};
    /// // A 3x5 filter keeps a 7x7 size with (F-1)/2 per axis: 1 row, 2 columns.
    /// let p = Conv2dParams::new(1, 1, [3, 5]).padding_with(Padding::symmetric(1, 2));
    /// assert_eq!(p.output_shape([1, 1, 7, 7])?, [1, 1, 7, 7]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn symmetric(ph: usize, pw: usize) -> Padding {
        Padding { top: ph, bottom: ph, left: pw, right: pw }
    }
    /// Each side given: top, bottom, left, right.
    ///
    /// ```
    /// use receptive::{Conv2dParams, Padding};
    /// // TensorFlow's "SAME" for a stride-2 3x3 filter on an even input pads only below and right.
    /// let p = Conv2dParams::new(1, 1, [3, 3]).stride(2).padding_with(Padding::new(0, 1, 0, 1));
    /// assert_eq!(p.output_shape([1, 1, 8, 8])?, [1, 1, 4, 4]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn new(top: usize, bottom: usize, left: usize, right: usize) -> Padding {
        Padding { top, bottom, left, right }
    }
    fn rows(&self) -> (usize, usize) {
        (self.top, self.bottom)
    }
    fn cols(&self) -> (usize, usize) {
        (self.left, self.right)
    }
}

/// One spatial axis of a sliding window: what the output-size rules need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Axis {
    pub name: &'static str,
    pub input: usize,
    pub pad_before: usize,
    pub pad_after: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
}

impl Axis {
    fn check_basic(&self, what: &str) -> Result<(usize, usize)> {
        if self.kernel == 0 {
            return Err(Error::invalid(format!("{what} kernel size ({})", self.name), 0, "must be at least 1"));
        }
        if self.stride == 0 {
            return Err(Error::invalid(format!("{what} stride ({})", self.name), 0, "must be at least 1"));
        }
        if self.dilation == 0 {
            return Err(Error::invalid(format!("{what} dilation ({})", self.name), 0, "must be at least 1"));
        }
        let span = (self.kernel - 1)
            .checked_mul(self.dilation)
            .and_then(|s| s.checked_add(1))
            .ok_or_else(|| Error::overflow(format!("the dilated kernel span ({})", self.name)))?;
        let padded = self
            .input
            .checked_add(self.pad_before)
            .and_then(|s| s.checked_add(self.pad_after))
            .ok_or_else(|| Error::overflow(format!("the padded input size ({})", self.name)))?;
        Ok((span, padded))
    }

    /// Convolution output length: `floor((N + p0 + p1 - span) / S) + 1`, as
    /// PyTorch. In strict mode a stride that does not tile exactly is an
    /// error (the seed's "doesn't fit").
    pub fn conv_out(&self, strict: bool) -> Result<usize> {
        let (span, padded) = self.check_basic("convolution")?;
        if span > padded {
            return Err(Error::KernelTooLarge {
                axis: self.name,
                kernel: self.kernel,
                dilation: self.dilation,
                span,
                padded,
            });
        }
        let num = padded - span;
        if strict && num % self.stride != 0 {
            return Err(Error::DoesNotFit {
                axis: self.name,
                input: self.input,
                padding: self.pad_before + self.pad_after,
                span,
                stride: self.stride,
            });
        }
        Ok(num / self.stride + 1)
    }

    /// Pooling output length, as PyTorch's `pooling_output_shape`: floor or
    /// ceil of `(N + p0 + p1 - span) / S`, plus one, where in ceil mode the
    /// last window must start inside the input or the leading padding.
    /// Padding on each side is at most half the effective window, and every
    /// window must cover at least one input element.
    pub fn pool_out(&self, ceil_mode: bool) -> Result<usize> {
        let (span, padded) = self.check_basic("pooling")?;
        for (side, p) in [("before", self.pad_before), ("after", self.pad_after)] {
            if p > span / 2 {
                return Err(Error::invalid(
                    format!("pooling padding {side} ({})", self.name),
                    p,
                    format!(
                        "must be at most half the effective window: kernel {} with dilation {} spans {span}, half is {}",
                        self.kernel,
                        self.dilation,
                        span / 2
                    ),
                ));
            }
        }
        if span > padded {
            return Err(Error::KernelTooLarge {
                axis: self.name,
                kernel: self.kernel,
                dilation: self.dilation,
                span,
                padded,
            });
        }
        let num = padded - span;
        let mut out = if ceil_mode { num.div_ceil(self.stride) } else { num / self.stride } + 1;
        // The last window must start inside the input or its leading
        // padding (a start past usize is past both).
        if ceil_mode && (out - 1).checked_mul(self.stride).is_none_or(|start| start >= self.input + self.pad_before) {
            out -= 1;
        }
        // Dilated taps can step over a small input entirely; such a window
        // would have no value (PyTorch reads garbage there), so refuse it.
        // Every window overlaps the input (padding is at most half the span
        // and the last window starts inside the input), so one whose start
        // is inside always hits, and so does any window when taps are at
        // most `input` apart. Only windows starting in the leading padding
        // of an input shorter than the dilation need a look, each O(1).
        if self.input < self.dilation {
            let head = (self.pad_before / self.stride + 1).min(out);
            const MAX_CHECKED: usize = 1 << 22;
            if head > MAX_CHECKED {
                return Err(Error::Unsupported {
                    what: format!(
                        "pooling ({}) with dilation {} over an input of {} and {head} windows starting in the padding: \
                         too many to check that each covers an input element",
                        self.name, self.dilation, self.input
                    ),
                });
            }
            for o in 0..head {
                let start = (o * self.stride) as i128 - self.pad_before as i128;
                // The first tap at or after position 0 is the start's
                // residue modulo the dilation (if the window reaches 0).
                let first = start.rem_euclid(self.dilation as i128);
                let taps_before = (first - start) / self.dilation as i128;
                if taps_before >= self.kernel as i128 || first >= self.input as i128 {
                    return Err(Error::invalid(
                        format!("pooling window {o} ({})", self.name),
                        format!("starting at {start}"),
                        format!(
                            "covers no input element: every tap of the dilated window falls in the padding \
                             (the input has {})",
                            self.input
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn check_nonzero(name: &str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::invalid(name, 0, "must be at least 1"));
    }
    Ok(())
}

/// Parameters of a 2-D convolution (PyTorch's `conv2d`), NCHW.
///
/// ```
/// use receptive::Conv2dParams;
/// // The seed's worked example: 32x32x3 input, ten 5x5 filters, stride 1, pad 2.
/// let p = Conv2dParams::new(3, 10, [5, 5]).stride(1).padding(2);
/// assert_eq!(p.output_shape([1, 3, 32, 32])?, [1, 10, 32, 32]);
/// assert_eq!(p.param_count(), 760);
/// # Ok::<(), receptive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Input channels C.
    pub in_channels: usize,
    /// Output channels (filters) K.
    pub out_channels: usize,
    /// Filter size [FH, FW].
    pub kernel: [usize; 2],
    /// Stride [rows, columns].
    pub stride: [usize; 2],
    /// Dilation [rows, columns].
    pub dilation: [usize; 2],
    /// Zero padding.
    pub padding: Padding,
    /// Groups: C and K are split into this many independent slices.
    pub groups: usize,
    /// Strict mode: a stride that does not tile the padded input exactly is an error.
    pub strict: bool,
}

impl Conv2dParams {
    /// `in_channels` to `out_channels` with `[FH, FW]` filters, stride 1, no
    /// padding, no dilation, one group.
    ///
    /// ```
    /// use receptive::Conv2dParams;
    /// // Six 5x5 filters on a 32x32x3 image: each spans the full depth (5x5x3).
    /// let p = Conv2dParams::new(3, 6, [5, 5]);
    /// assert_eq!(p.weight_shape(), [6, 3, 5, 5]);
    /// assert_eq!(p.output_shape([1, 3, 32, 32])?, [1, 6, 28, 28]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn new(in_channels: usize, out_channels: usize, kernel: [usize; 2]) -> Conv2dParams {
        Conv2dParams {
            in_channels,
            out_channels,
            kernel,
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::uniform(0),
            groups: 1,
            strict: false,
        }
    }
    /// The same stride on both axes.
    ///
    /// ```
    /// // A 3x3 filter on a 7x7 input: stride 1 gives 5x5, stride 2 gives 3x3.
    /// let p = receptive::Conv2dParams::new(1, 1, [3, 3]);
    /// assert_eq!(p.stride(1).output_shape([1, 1, 7, 7])?, [1, 1, 5, 5]);
    /// assert_eq!(p.stride(2).output_shape([1, 1, 7, 7])?, [1, 1, 3, 3]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn stride(self, s: usize) -> Self {
        Conv2dParams { stride: [s, s], ..self }
    }
    /// Stride per axis `[rows, columns]`.
    ///
    /// ```
    /// // Stride 1 down the rows, 2 across the columns.
    /// let p = receptive::Conv2dParams::new(1, 1, [3, 3]).stride_hw([1, 2]);
    /// assert_eq!(p.output_shape([1, 1, 7, 7])?, [1, 1, 5, 3]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn stride_hw(self, s: [usize; 2]) -> Self {
        Conv2dParams { stride: s, ..self }
    }
    /// The same padding on all sides.
    ///
    /// ```
    /// // Padding (F-1)/2 with stride 1 keeps the size: F=3 -> P=1, F=5 -> P=2, F=7 -> P=3.
    /// for f in [3, 5, 7] {
    ///     let p = receptive::Conv2dParams::new(3, 8, [f, f]).padding((f - 1) / 2);
    ///     assert_eq!(p.output_shape([1, 3, 32, 32])?, [1, 8, 32, 32]);
    /// }
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn padding(self, p: usize) -> Self {
        Conv2dParams { padding: Padding::uniform(p), ..self }
    }
    /// Any padding, asymmetric included.
    ///
    /// ```
    /// use receptive::{Conv2dParams, Padding};
    /// // A causal 1x3 filter: 2 columns of padding on the left only keep the length.
    /// let p = Conv2dParams::new(1, 1, [1, 3]).padding_with(Padding::new(0, 0, 2, 0));
    /// assert_eq!(p.output_shape([1, 1, 1, 10])?, [1, 1, 1, 10]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn padding_with(self, p: Padding) -> Self {
        Conv2dParams { padding: p, ..self }
    }
    /// The same dilation on both axes.
    ///
    /// ```
    /// // Dilation 2 spreads a 3x3 filter over 5x5: a 7x7 input gives 3x3.
    /// let p = receptive::Conv2dParams::new(1, 1, [3, 3]).dilation(2);
    /// assert_eq!(p.output_shape([1, 1, 7, 7])?, [1, 1, 3, 3]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn dilation(self, d: usize) -> Self {
        Conv2dParams { dilation: [d, d], ..self }
    }
    /// Dilation per axis `[rows, columns]`.
    ///
    /// ```
    /// // Dilation 2 across the columns only: the filter spans 3 rows and 5 columns.
    /// let p = receptive::Conv2dParams::new(1, 1, [3, 3]).dilation_hw([1, 2]);
    /// assert_eq!(p.output_shape([1, 1, 7, 7])?, [1, 1, 5, 3]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn dilation_hw(self, d: [usize; 2]) -> Self {
        Conv2dParams { dilation: d, ..self }
    }
    /// Number of groups.
    ///
    /// ```
    /// use receptive::Conv2dParams;
    /// // Depthwise: 32 groups, one 3x3 filter per channel.
    /// assert_eq!(Conv2dParams::new(32, 32, [3, 3]).groups(32).weight_shape(), [32, 1, 3, 3]);
    /// assert!(Conv2dParams::new(32, 30, [3, 3]).groups(4).validate().is_err()); // 30 is not divisible by 4
    /// ```
    pub const fn groups(self, g: usize) -> Self {
        Conv2dParams { groups: g, ..self }
    }
    /// Turns the strict fit rule on or off.
    ///
    /// ```
    /// use receptive::{Conv2dParams, Error};
    /// // Stride 3 on a 7x7 input with a 3x3 filter: (7 - 3)/3 + 1 = 2.33 "doesn't fit".
    /// let p = Conv2dParams::new(1, 1, [3, 3]).stride(3);
    /// assert_eq!(p.output_shape([1, 1, 7, 7])?, [1, 1, 2, 2]); // floored, as PyTorch does
    /// assert!(matches!(p.strict(true).output_shape([1, 1, 7, 7]), Err(Error::DoesNotFit { .. })));
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub const fn strict(self, on: bool) -> Self {
        Conv2dParams { strict: on, ..self }
    }

    /// Checks everything that does not depend on the input size.
    ///
    /// ```
    /// use receptive::Conv2dParams;
    /// assert!(Conv2dParams::new(3, 8, [3, 3]).validate().is_ok());
    /// let err = Conv2dParams::new(3, 8, [3, 3]).stride(0).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "stride (rows) = 0 must be at least 1");
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_nonzero("in_channels", self.in_channels)?;
        check_nonzero("out_channels", self.out_channels)?;
        check_nonzero("groups", self.groups)?;
        for (name, v) in [("in_channels", self.in_channels), ("out_channels", self.out_channels)] {
            if v % self.groups != 0 {
                return Err(Error::invalid(name, v, format!("must be divisible by groups = {}", self.groups)));
            }
        }
        for (i, axis) in ["rows", "columns"].iter().enumerate() {
            check_nonzero(&format!("kernel ({axis})"), self.kernel[i])?;
            check_nonzero(&format!("stride ({axis})"), self.stride[i])?;
            check_nonzero(&format!("dilation ({axis})"), self.dilation[i])?;
        }
        checked_product(&self.weight_shape(), "the weight count")?;
        Ok(())
    }

    /// Weight shape `[K, C/groups, FH, FW]`.
    ///
    /// ```
    /// // [K, C/groups, FH, FW]: ten 5x5 filters over 3 channels.
    /// assert_eq!(receptive::Conv2dParams::new(3, 10, [5, 5]).weight_shape(), [10, 3, 5, 5]);
    /// ```
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.out_channels, self.in_channels / self.groups.max(1), self.kernel[0], self.kernel[1]]
    }

    /// Number of weights, `K * C/groups * FH * FW` (saturating on overflow;
    /// [`validate`](Self::validate) reports it).
    ///
    /// ```
    /// // Ten 5x5x3 filters: 10 * 75 weights.
    /// assert_eq!(receptive::Conv2dParams::new(3, 10, [5, 5]).weight_count(), 750);
    /// ```
    pub fn weight_count(&self) -> usize {
        self.weight_shape().iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// Learnable parameters: weights plus one bias per filter.
    ///
    /// ```
    /// // Each 5x5x3 filter has 5*5*3 + 1 = 76 parameters (+1 for its bias): 760 for ten.
    /// assert_eq!(receptive::Conv2dParams::new(3, 10, [5, 5]).param_count(), 760);
    /// ```
    pub fn param_count(&self) -> usize {
        self.weight_count().saturating_add(self.out_channels)
    }

    pub(crate) fn axes(&self, h: usize, w: usize) -> [Axis; 2] {
        let (pt, pb) = self.padding.rows();
        let (pl, pr) = self.padding.cols();
        [
            Axis {
                name: "rows",
                input: h,
                pad_before: pt,
                pad_after: pb,
                kernel: self.kernel[0],
                stride: self.stride[0],
                dilation: self.dilation[0],
            },
            Axis {
                name: "columns",
                input: w,
                pad_before: pl,
                pad_after: pr,
                kernel: self.kernel[1],
                stride: self.stride[1],
                dilation: self.dilation[1],
            },
        ]
    }

    /// Output shape `[N, K, OH, OW]` for an input `[N, C, H, W]`.
    ///
    /// ```
    /// // Without padding volumes shrink fast: 32 -> 28 -> 24.
    /// let p = receptive::Conv2dParams::new(6, 6, [5, 5]);
    /// assert_eq!(p.output_shape([1, 6, 32, 32])?, [1, 6, 28, 28]);
    /// assert_eq!(p.output_shape([1, 6, 28, 28])?, [1, 6, 24, 24]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4]> {
        self.validate()?;
        let [n, c, h, w] = input;
        check_nonzero("batch size", n)?;
        if c != self.in_channels {
            return Err(Error::ShapeMismatch { what: "input channels", expected: self.in_channels, got: c });
        }
        check_nonzero("input height", h)?;
        check_nonzero("input width", w)?;
        let [ah, aw] = self.axes(h, w);
        let out = [n, self.out_channels, ah.conv_out(self.strict)?, aw.conv_out(self.strict)?];
        checked_product(&input, "the input element count")?;
        checked_product(&out, "the output element count")?;
        Ok(out)
    }

    /// Floating-point operations of the forward pass, `2*N*K*OH*OW*(C/groups)*FH*FW`.
    ///
    /// ```
    /// // 2 * K*OH*OW * C*FH*FW: a multiply and an add per weight per output.
    /// let p = receptive::Conv2dParams::new(3, 10, [5, 5]).padding(2);
    /// assert_eq!(p.flops([1, 3, 32, 32])?, 2 * (10 * 32 * 32) * (3 * 5 * 5));
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn flops(&self, input: [usize; 4]) -> Result<u64> {
        let [n, k, oh, ow] = self.output_shape(input)?;
        let [_, cg, fh, fw] = self.weight_shape();
        [n, k, oh, ow, cg, fh, fw]
            .iter()
            .try_fold(2u64, |a, &d| a.checked_mul(d as u64))
            .ok_or_else(|| Error::overflow("the FLOP count"))
    }
}

/// Which reduction a pooling window computes.
///
/// ```
/// use receptive::{Pool2dParams, PoolKind};
/// assert_eq!(Pool2dParams::max([2, 2]).kind, PoolKind::Max);
/// assert_eq!(Pool2dParams::avg([2, 2]).kind, PoolKind::Avg);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Maximum (NaN wins, first index on ties).
    Max,
    /// Average.
    Avg,
}

/// Parameters of 2-D pooling (PyTorch's `max_pool2d` / `avg_pool2d`), NCHW.
///
/// ```
/// use receptive::Pool2dParams;
/// let q = Pool2dParams::max([3, 3]).stride(2).padding(1);
/// assert_eq!(q.output_shape([1, 64, 112, 112])?, [1, 64, 56, 56]);
/// # Ok::<(), receptive::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    /// Max or average.
    pub kind: PoolKind,
    /// Window [rows, columns].
    pub kernel: [usize; 2],
    /// Stride [rows, columns]; defaults to the window, as PyTorch.
    pub stride: [usize; 2],
    /// Dilation [rows, columns] (max pooling only, as PyTorch).
    pub dilation: [usize; 2],
    /// Implicit padding (`-inf` for max, zeros for average).
    pub padding: Padding,
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
    /// Average pooling: count padded positions in the divisor (PyTorch default: true).
    pub count_include_pad: bool,
    /// Average pooling: divide by this instead of the window size.
    pub divisor_override: Option<usize>,
}

impl Pool2dParams {
    fn with_kind(kind: PoolKind, kernel: [usize; 2]) -> Self {
        Pool2dParams {
            kind,
            kernel,
            stride: kernel,
            dilation: [1, 1],
            padding: Padding::uniform(0),
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }
    /// Max pooling with a `[rows, columns]` window, stride = window.
    ///
    /// ```
    /// // 2x2 max pooling (stride = window) halves each map and keeps the depth.
    /// let q = receptive::Pool2dParams::max([2, 2]);
    /// assert_eq!(q.output_shape([1, 64, 224, 224])?, [1, 64, 112, 112]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn max(kernel: [usize; 2]) -> Self {
        Self::with_kind(PoolKind::Max, kernel)
    }
    /// Average pooling with a `[rows, columns]` window, stride = window.
    ///
    /// ```
    /// let q = receptive::Pool2dParams::avg([2, 2]);
    /// assert_eq!(receptive::avg_pool2d(&[1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], &q)?, [2.5]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn avg(kernel: [usize; 2]) -> Self {
        Self::with_kind(PoolKind::Avg, kernel)
    }
    /// The same stride on both axes.
    ///
    /// ```
    /// // Overlapping pooling (AlexNet): 3x3 windows with stride 2, 55 -> 27.
    /// let q = receptive::Pool2dParams::max([3, 3]).stride(2);
    /// assert_eq!(q.output_shape([1, 96, 55, 55])?, [1, 96, 27, 27]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn stride(self, s: usize) -> Self {
        Pool2dParams { stride: [s, s], ..self }
    }
    /// Stride per axis.
    ///
    /// ```
    /// // Halve the rows only: 2x2 windows moving 2 down, 1 across.
    /// let q = receptive::Pool2dParams::max([2, 2]).stride_hw([2, 1]);
    /// assert_eq!(q.output_shape([1, 1, 8, 8])?, [1, 1, 4, 7]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn stride_hw(self, s: [usize; 2]) -> Self {
        Pool2dParams { stride: s, ..self }
    }
    /// The same padding on all sides.
    ///
    /// ```
    /// // PyTorch's rule: padding is at most half the window, so a 3x3 window allows 1, not 2.
    /// let q = receptive::Pool2dParams::max([3, 3]).stride(2);
    /// assert_eq!(q.padding(1).output_shape([1, 1, 8, 8])?, [1, 1, 4, 4]);
    /// assert!(q.padding(2).output_shape([1, 1, 8, 8]).is_err());
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn padding(self, p: usize) -> Self {
        Pool2dParams { padding: Padding::uniform(p), ..self }
    }
    /// Any padding, asymmetric included.
    ///
    /// ```
    /// use receptive::{Padding, Pool2dParams};
    /// // Pad below and right so 2x2 windows cover the odd last row and column.
    /// let q = Pool2dParams::max([2, 2]).padding_with(Padding::new(0, 1, 0, 1));
    /// assert_eq!(q.output_shape([1, 1, 5, 5])?, [1, 1, 3, 3]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn padding_with(self, p: Padding) -> Self {
        Pool2dParams { padding: p, ..self }
    }
    /// The same dilation on both axes (max pooling).
    ///
    /// ```
    /// use receptive::Pool2dParams;
    /// // A 2x2 window with dilation 2 takes every other element over a 3x3 span.
    /// assert_eq!(Pool2dParams::max([2, 2]).stride(1).dilation(2).output_shape([1, 1, 5, 5])?, [1, 1, 3, 3]);
    /// assert!(Pool2dParams::avg([2, 2]).dilation(2).validate().is_err()); // avg_pool2d has no dilation
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn dilation(self, d: usize) -> Self {
        Pool2dParams { dilation: [d, d], ..self }
    }
    /// Dilation per axis (max pooling).
    ///
    /// ```
    /// // Dilation 2 across the columns only: each window spans 2 rows and 3 columns.
    /// let q = receptive::Pool2dParams::max([2, 2]).stride(1).dilation_hw([1, 2]);
    /// assert_eq!(q.output_shape([1, 1, 5, 5])?, [1, 1, 4, 3]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn dilation_hw(self, d: [usize; 2]) -> Self {
        Pool2dParams { dilation: d, ..self }
    }
    /// Ceil mode on or off.
    ///
    /// ```
    /// use receptive::Pool2dParams;
    /// // 2x2 windows over 5 columns: floor drops the last column, ceil keeps a partial window.
    /// assert_eq!(Pool2dParams::max([2, 2]).output_shape([1, 1, 5, 5])?, [1, 1, 2, 2]);
    /// assert_eq!(Pool2dParams::max([2, 2]).ceil_mode(true).output_shape([1, 1, 5, 5])?, [1, 1, 3, 3]);
    /// // PyTorch's trap: a window may not start past the input, so ceil gives 2 here, not 3.
    /// assert_eq!(Pool2dParams::max([2, 2]).stride(3).ceil_mode(true).output_shape([1, 1, 6, 6])?, [1, 1, 2, 2]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn ceil_mode(self, on: bool) -> Self {
        Pool2dParams { ceil_mode: on, ..self }
    }
    /// Whether average pooling counts padding in the divisor.
    ///
    /// ```
    /// use receptive::{avg_pool2d, Pool2dParams};
    /// // Each window sees one input value and three padded zeros. PyTorch's default
    /// // divides by 4 (the zeros count); turning it off divides by 1.
    /// let q = Pool2dParams::avg([2, 2]).padding(1);
    /// let x = [4.0, 8.0, 12.0, 16.0];
    /// assert_eq!(avg_pool2d(&x, [1, 1, 2, 2], &q)?, [1.0, 2.0, 3.0, 4.0]);
    /// assert_eq!(avg_pool2d(&x, [1, 1, 2, 2], &q.count_include_pad(false))?, x);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn count_include_pad(self, on: bool) -> Self {
        Pool2dParams { count_include_pad: on, ..self }
    }
    /// Average pooling divides by `d` instead.
    ///
    /// ```
    /// // Divisor 1 turns average pooling into sum pooling.
    /// let q = receptive::Pool2dParams::avg([2, 2]).divisor_override(Some(1));
    /// assert_eq!(receptive::avg_pool2d(&[1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], &q)?, [10.0]);
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn divisor_override(self, d: Option<usize>) -> Self {
        Pool2dParams { divisor_override: d, ..self }
    }

    pub(crate) fn axes(&self, h: usize, w: usize) -> [Axis; 2] {
        let p = &self.padding;
        [
            Axis {
                name: "rows",
                input: h,
                pad_before: p.top,
                pad_after: p.bottom,
                kernel: self.kernel[0],
                stride: self.stride[0],
                dilation: self.dilation[0],
            },
            Axis {
                name: "columns",
                input: w,
                pad_before: p.left,
                pad_after: p.right,
                kernel: self.kernel[1],
                stride: self.stride[1],
                dilation: self.dilation[1],
            },
        ]
    }

    /// Checks the options that do not depend on the input size.
    ///
    /// ```
    /// use receptive::Pool2dParams;
    /// assert!(Pool2dParams::avg([2, 2]).validate().is_ok());
    /// let err = Pool2dParams::max([2, 2]).divisor_override(Some(4)).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "divisor_override = 4 only applies to average pooling");
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.kind == PoolKind::Avg && self.dilation != [1, 1] {
            return Err(Error::invalid(
                "average pooling dilation",
                format!("{:?}", self.dilation),
                "must be [1, 1]: PyTorch's avg_pool2d has no dilation",
            ));
        }
        if self.divisor_override == Some(0) {
            return Err(Error::invalid("divisor_override", 0, "must be at least 1"));
        }
        if self.kind == PoolKind::Max && self.divisor_override.is_some() {
            return Err(Error::invalid(
                "divisor_override",
                self.divisor_override.unwrap_or(0),
                "only applies to average pooling",
            ));
        }
        Ok(())
    }

    /// Output shape `[N, C, OH, OW]` for an input `[N, C, H, W]`.
    ///
    /// ```
    /// // 2x2 windows on a 7x7 map: the floor drops the 7th row and column.
    /// let q = receptive::Pool2dParams::max([2, 2]);
    /// assert_eq!(q.output_shape([8, 16, 7, 7])?, [8, 16, 3, 3]);
    /// assert!(q.output_shape([1, 16, 1, 1]).is_err()); // the window is larger than the input
    /// # Ok::<(), receptive::Error>(())
    /// ```
    pub fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4]> {
        self.validate()?;
        let [n, c, h, w] = input;
        check_nonzero("batch size", n)?;
        check_nonzero("channels", c)?;
        check_nonzero("input height", h)?;
        check_nonzero("input width", w)?;
        checked_product(&input, "the input element count")?;
        let [ah, aw] = self.axes(h, w);
        Ok([n, c, ah.pool_out(self.ceil_mode)?, aw.pool_out(self.ceil_mode)?])
    }
}
