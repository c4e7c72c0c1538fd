//! candle adapters (feature `candle`): receptive's kernels as candle custom
//! ops, with backward passes through receptive's gradients, and a [`Conv2d`]
//! module shaped like `candle_nn::Conv2d`, so a model can swap its conv
//! layers for receptive's.
//!
//! Inputs may have any strided layout (they are made contiguous first);
//! dtypes other than f32 are an error.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use receptive::Conv2dParams;
//! let dev = Device::Cpu;
//! let x = Tensor::ones((1, 3, 8, 8), candle_core::DType::F32, &dev)?;
//! let w = Tensor::full(0.5f32, (4, 3, 3, 3), &dev)?;
//! let conv = receptive::candle::Conv2d::new(w, None, Conv2dParams::new(3, 4, [3, 3]).padding(1))?;
//! let y = candle_core::Module::forward(&conv, &x)?;
//! assert_eq!(y.dims(), &[1, 4, 8, 8]);
//! assert_eq!(y.get(0)?.get(0)?.get(4)?.get(4)?.to_scalar::<f32>()?, 13.5);
//! # Ok::<(), candle_core::Error>(())
//! ```

use std::borrow::Cow;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Module, Shape, Tensor};

use crate::{Activation, Conv2dParams, Conv2dPlan, Pool2dParams, PoolKind};

type CResult<T> = candle_core::Result<T>;

fn err(e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("receptive: {e}"))
}

/// The f32 data of a storage in logical (contiguous row-major) order:
/// borrowed when the layout already is, gathered otherwise.
fn contiguous<'a>(op: &str, s: &'a CpuStorage, l: &Layout) -> CResult<Cow<'a, [f32]>> {
    let CpuStorage::F32(v) = s else {
        return Err(err(format!("{op} supports f32 tensors only, got {:?}", s.dtype())));
    };
    Ok(match l.contiguous_offsets() {
        Some((a, b)) => Cow::Borrowed(&v[a..b]),
        None => Cow::Owned(gather(v, l)),
    })
}

/// Copies a strided view into row-major order, odometer style.
fn gather(v: &[f32], l: &Layout) -> Vec<f32> {
    let (dims, strides) = (l.dims(), l.stride());
    let mut out = Vec::with_capacity(l.shape().elem_count());
    let mut pos = vec![0usize; dims.len()];
    if dims.contains(&0) {
        return out;
    }
    loop {
        out.push(v[l.start_offset() + pos.iter().zip(strides).map(|(p, s)| p * s).sum::<usize>()]);
        // Advance the last axis, carrying into earlier ones.
        let mut axis = dims.len();
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            pos[axis] += 1;
            if pos[axis] < dims[axis] {
                break;
            }
            pos[axis] = 0;
        }
    }
}

fn dims4(op: &str, l: &Layout) -> CResult<[usize; 4]> {
    match l.shape().dims() {
        &[n, c, h, w] => Ok([n, c, h, w]),
        d => Err(err(format!("{op} needs a 4-D NCHW tensor, got shape {d:?}"))),
    }
}

fn to_vec(t: &Tensor) -> CResult<(Vec<f32>, [usize; 4])> {
    let d = t.dims4()?;
    Ok((t.flatten_all()?.to_vec1::<f32>()?, [d.0, d.1, d.2, d.3]))
}

fn tensor(v: Vec<f32>, shape: [usize; 4], like: &Tensor) -> CResult<Tensor> {
    Tensor::from_vec(v, (shape[0], shape[1], shape[2], shape[3]), like.device())
}

/// Convolution as a candle op: `x.apply_op2(&w, op)` without bias,
/// `x.apply_op3(&w, &b, op)` with. Gradients flow to x, w and b.
#[derive(Clone, Copy, Debug)]
pub struct Conv2dOp {
    /// The layer geometry (its channel counts must match the tensors).
    pub params: Conv2dParams,
}

impl Conv2dOp {
    fn forward(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
        b: Option<&[f32]>,
    ) -> CResult<(CpuStorage, Shape)> {
        let xs = dims4("conv2d input", xl)?;
        dims4("conv2d weight", wl)?;
        let x = contiguous("conv2d", x, xl)?;
        let w = contiguous("conv2d", w, wl)?;
        let plan = Conv2dPlan::new(&self.params, &w, b, Activation::None).map_err(err)?;
        let ys = plan.output_shape(xs).map_err(err)?;
        let mut y = vec![0.0; ys.iter().product()];
        plan.run(&x, xs, &mut y).map_err(err)?;
        Ok((CpuStorage::F32(y), Shape::from(ys.to_vec())))
    }

    fn grads(&self, x: &Tensor, w: &Tensor, grad: &Tensor) -> CResult<(Tensor, Tensor, Vec<f32>, [usize; 4])> {
        let (xv, xs) = to_vec(x)?;
        let (wv, _) = to_vec(w)?;
        let (dy, dys) = to_vec(grad)?;
        let dx = crate::conv2d_backward_data(&dy, dys, &wv, &self.params, xs).map_err(err)?;
        let dw = crate::conv2d_backward_weights(&xv, xs, &dy, &self.params).map_err(err)?;
        Ok((tensor(dx, xs, x)?, tensor(dw, self.params.weight_shape(), w)?, dy, dys))
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "receptive-conv2d"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> CResult<(CpuStorage, Shape)> {
        self.forward(s1, l1, s2, l2, None)
    }
    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _, _) = self.grads(x, w, grad)?;
        Ok((Some(dx), Some(dw)))
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "receptive-conv2d-bias"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let b = contiguous("conv2d bias", s3, l3)?;
        self.forward(s1, l1, s2, l2, Some(&b))
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, dy, dys) = self.grads(x, w, grad)?;
        let db = crate::conv2d_backward_bias(&dy, dys).map_err(err)?;
        Ok((Some(dx), Some(dw), Some(Tensor::from_vec(db, b.dims(), b.device())?)))
    }
}

/// Max or average pooling as a candle op: `x.apply_op1(op)`; gradients flow to x.
#[derive(Clone, Copy, Debug)]
pub struct Pool2dOp {
    /// The pooling geometry; `params.kind` picks max or average.
    pub params: Pool2dParams,
}

impl CustomOp1 for Pool2dOp {
    fn name(&self) -> &'static str {
        "receptive-pool2d"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let xs = dims4("pool2d input", l)?;
        let x = contiguous("pool2d", s, l)?;
        let q = &self.params;
        let y = match q.kind {
            PoolKind::Max => crate::max_pool2d(&x, xs, q),
            PoolKind::Avg => crate::avg_pool2d(&x, xs, q),
        }
        .map_err(err)?;
        Ok((CpuStorage::F32(y), Shape::from(q.output_shape(xs).map_err(err)?.to_vec())))
    }
    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> CResult<Option<Tensor>> {
        let (xv, xs) = to_vec(x)?;
        let (dy, _) = to_vec(grad)?;
        let q = &self.params;
        let dx = match q.kind {
            PoolKind::Max => {
                let (_, idx) = crate::max_pool2d_with_indices(&xv, xs, q).map_err(err)?;
                crate::max_pool2d_backward(&dy, &idx, xs, q).map_err(err)?
            }
            PoolKind::Avg => crate::avg_pool2d_backward(&dy, xs, q).map_err(err)?,
        };
        Ok(Some(tensor(dx, xs, x)?))
    }
}

/// A convolution layer with `candle_nn::Conv2d`'s tensors: `weight`
/// `[K, C/groups, FH, FW]` and an optional `bias` `[K]`, run by receptive.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    params: Conv2dParams,
}

impl Conv2d {
    /// A layer from its tensors (e.g. loaded as `candle_nn::conv2d` would) and geometry.
    pub fn new(weight: Tensor, bias: Option<Tensor>, params: Conv2dParams) -> CResult<Conv2d> {
        params.validate().map_err(err)?;
        if weight.dims() != params.weight_shape() {
            return Err(err(format!("weight shape {:?}, the layer needs {:?}", weight.dims(), params.weight_shape())));
        }
        if let Some(b) = bias.as_ref().filter(|b| b.dims() != [params.out_channels]) {
            return Err(err(format!("bias shape {:?}, the layer needs [{}]", b.dims(), params.out_channels)));
        }
        Ok(Conv2d { weight, bias, params })
    }
    /// The filters, `[K, C/groups, FH, FW]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The bias, `[K]`.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    /// The geometry.
    pub fn params(&self) -> &Conv2dParams {
        &self.params
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let op = Conv2dOp { params: self.params };
        match &self.bias {
            Some(b) => x.apply_op3(&self.weight, b, op),
            None => x.apply_op2(&self.weight, op),
        }
    }
}
