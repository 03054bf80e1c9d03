//! CPU twin of shaders/sgd.wgsl: SGD with momentum, PyTorch's semantics.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero, lit};
use crate::error::{Error, Result};

/// SGD's hyper-parameters, as torch.optim.SGD names them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-2,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

impl SgdConfig {
    /// Rejects lr ≤ 0, negative momentum or weight decay, and Nesterov without momentum or
    /// with dampening (as PyTorch does).
    pub fn check(&self) -> Result<()> {
        let ok = self.lr > 0.0
            && self.momentum >= 0.0
            && self.weight_decay >= 0.0
            && (!self.nesterov || (self.momentum > 0.0 && self.dampening == 0.0));
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "SGD: need lr > 0, momentum >= 0, weight_decay >= 0, and Nesterov only with \
                 momentum and no dampening; got {self:?}"
            )))
        }
    }
}

/// One SGD update of `param` at step `step` (1 for the first), updating `momentum_buffer`.
pub fn sgd_step<T: Float>(
    param: &mut [T],
    momentum_buffer: &mut [T],
    grad: &[T],
    step: u32,
    config: &SgdConfig,
) -> Result<()> {
    config.check()?;
    let n = param.len();
    check_nonzero("sgd_step", &[("n", n), ("step", step as usize)])?;
    check_lens(
        "sgd_step",
        &[
            ("momentum_buffer", momentum_buffer.len(), n),
            ("grad", grad.len(), n),
        ],
    )?;
    let [lr, momentum, dampening, weight_decay] = [
        config.lr,
        config.momentum,
        config.dampening,
        config.weight_decay,
    ]
    .map(|x| lit::<T>(f64::from(x)));
    for i in 0..n {
        let mut g = grad[i] + weight_decay * param[i];
        if momentum != T::zero() {
            let buf = if step > 1 {
                momentum * momentum_buffer[i] + (T::one() - dampening) * g
            } else {
                g
            };
            momentum_buffer[i] = buf;
            g = if config.nesterov {
                g + momentum * buf
            } else {
                buf
            };
        }
        param[i] = param[i] - lr * g;
    }
    Ok(())
}
