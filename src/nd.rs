//! `ndarray` adapters (feature `ndarray`): the same operations over
//! `ArrayView4<f32>` in NCHW order. Arrays must be in standard (row-major,
//! contiguous) layout; anything else is an error, never a silent copy.
//!
//! ```
//! use ndarray::Array4;
//! use receptive::{Activation, Conv2dParams, Conv2dPlan};
//! let x = Array4::<f32>::ones((1, 3, 8, 8));
//! let p = Conv2dParams::new(3, 4, [3, 3]).padding(1);
//! let plan = Conv2dPlan::new(&p, &vec![0.5; p.weight_count()], None, Activation::None)?;
//! let y = receptive::nd::conv2d_plan(&plan, x.view())?;
//! assert_eq!(y.dim(), (1, 4, 8, 8));
//! assert_eq!(y[[0, 0, 4, 4]], 0.5 * 27.0);
//! # Ok::<(), receptive::Error>(())
//! ```

use ndarray::{Array4, ArrayView1, ArrayView4, ArrayViewMut4};

use crate::error::{Error, Result};
use crate::{Activation, Conv2dParams, Conv2dPlan, Pool2dParams};

fn slice<'a>(what: &str, a: &'a ArrayView4<'_, f32>) -> Result<&'a [f32]> {
    a.as_slice().ok_or_else(|| Error::Unsupported {
        what: format!("{what} array with strides {:?}: receptive needs standard (C-contiguous) layout", a.strides()),
    })
}

fn shape(a: &ArrayView4<'_, f32>) -> [usize; 4] {
    let (n, c, h, w) = a.dim();
    [n, c, h, w]
}

fn array(s: [usize; 4], v: Vec<f32>) -> Result<Array4<f32>> {
    Array4::from_shape_vec((s[0], s[1], s[2], s[3]), v)
        .map_err(|e| Error::Unsupported { what: format!("building the output array: {e}") })
}

/// Runs a plan on `x`, returning a new array.
///
/// ```
/// # use receptive::{Activation, Conv2dParams, Conv2dPlan};
/// let p = Conv2dParams::new(1, 1, [2, 2]);
/// let plan = Conv2dPlan::new(&p, &[1.0; 4], Some(&[0.5]), Activation::None)?;
/// let x = ndarray::Array4::from_shape_vec((1, 1, 2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
/// assert_eq!(receptive::nd::conv2d_plan(&plan, x.view())?[[0, 0, 0, 0]], 10.5);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d_plan(plan: &Conv2dPlan, x: ArrayView4<'_, f32>) -> Result<Array4<f32>> {
    let xs = shape(&x);
    let ys = plan.output_shape(xs)?;
    let mut y = vec![0.0; ys.iter().product()];
    plan.run(slice("input", &x)?, xs, &mut y)?;
    array(ys, y)
}

/// Runs a plan on `x`, writing into `y` (standard layout, output-shaped).
///
/// ```
/// # use receptive::{Activation, Conv2dParams, Conv2dPlan};
/// let p = Conv2dParams::new(1, 2, [1, 1]);
/// let plan = Conv2dPlan::new(&p, &[2.0, -1.0], None, Activation::Relu)?;
/// let x = ndarray::Array4::<f32>::ones((1, 1, 3, 3));
/// let mut y = ndarray::Array4::<f32>::zeros((1, 2, 3, 3));
/// receptive::nd::conv2d_plan_into(&plan, x.view(), y.view_mut())?;
/// assert_eq!((y[[0, 0, 1, 1]], y[[0, 1, 1, 1]]), (2.0, 0.0));
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d_plan_into(plan: &Conv2dPlan, x: ArrayView4<'_, f32>, mut y: ArrayViewMut4<'_, f32>) -> Result<()> {
    let xs = shape(&x);
    let ys = plan.output_shape(xs)?;
    let (n, c, h, w) = y.dim();
    if [n, c, h, w] != ys {
        return Err(Error::Unsupported {
            what: format!("output array shape {:?}, the layer produces {:?}", [n, c, h, w], ys),
        });
    }
    let strides = y.strides().to_vec();
    let out = y.as_slice_mut().ok_or_else(|| Error::Unsupported {
        what: format!("output array with strides {strides:?}: receptive needs standard (C-contiguous) layout"),
    })?;
    plan.run(slice("input", &x)?, xs, out)
}

/// One-shot convolution: weights `[K, C/groups, FH, FW]`, optional bias `[K]`.
///
/// ```
/// use ndarray::{Array1, Array4};
/// use receptive::{Activation, Conv2dParams};
/// let x = Array4::<f32>::ones((2, 3, 32, 32));
/// let w = Array4::<f32>::from_elem((10, 3, 5, 5), 0.01);
/// let b = Array1::<f32>::zeros(10);
/// let p = Conv2dParams::new(3, 10, [5, 5]).padding(2);
/// let y = receptive::nd::conv2d(x.view(), w.view(), Some(b.view()), &p, Activation::None)?;
/// assert_eq!(y.dim(), (2, 10, 32, 32));
/// // A transposed view is not in standard layout: an error, not a silent copy.
/// let xt = x.view().permuted_axes([0, 1, 3, 2]);
/// assert!(receptive::nd::conv2d(xt, w.view(), None, &p, Activation::None).is_err());
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn conv2d(
    x: ArrayView4<'_, f32>,
    w: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    p: &Conv2dParams,
    act: Activation,
) -> Result<Array4<f32>> {
    let b = bias.map(|b| b.to_vec());
    let plan = Conv2dPlan::new(p, slice("weight", &w)?, b.as_deref(), act)?;
    conv2d_plan(&plan, x)
}

/// Max pooling.
///
/// ```
/// let x = ndarray::Array4::from_shape_vec((1, 1, 2, 2), vec![1.0, 4.0, 3.0, 2.0]).unwrap();
/// let y = receptive::nd::max_pool2d(x.view(), &receptive::Pool2dParams::max([2, 2]))?;
/// assert_eq!(y[[0, 0, 0, 0]], 4.0);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn max_pool2d(x: ArrayView4<'_, f32>, q: &Pool2dParams) -> Result<Array4<f32>> {
    let xs = shape(&x);
    array(q.output_shape(xs)?, crate::max_pool2d(slice("input", &x)?, xs, q)?)
}

/// Average pooling.
///
/// ```
/// let x = ndarray::Array4::from_shape_vec((1, 1, 2, 2), vec![1.0, 4.0, 3.0, 2.0]).unwrap();
/// let y = receptive::nd::avg_pool2d(x.view(), &receptive::Pool2dParams::avg([2, 2]))?;
/// assert_eq!(y[[0, 0, 0, 0]], 2.5);
/// # Ok::<(), receptive::Error>(())
/// ```
pub fn avg_pool2d(x: ArrayView4<'_, f32>, q: &Pool2dParams) -> Result<Array4<f32>> {
    let xs = shape(&x);
    array(q.output_shape(xs)?, crate::avg_pool2d(slice("input", &x)?, xs, q)?)
}
