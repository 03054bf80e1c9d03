//! CPU twin of shaders/adam.wgsl: Adam with PyTorch's semantics and defaults.

use num_traits::Float;
use rayon::prelude::*;

use crate::cpu::{check_lens, check_nonzero, lit, Real};
use crate::error::{Error, Result};
use crate::parallel::{threads_for, MIN_ELEMENTS_PER_THREAD};

/// Adam's hyper-parameters; the defaults are PyTorch's (lr 1e-3, β (0.9, 0.999), ε 1e-8).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// L2 penalty added to the gradient (torch.optim.Adam's weight_decay).
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// Rejects a learning rate ≤ 0, betas outside [0, 1), ε ≤ 0 or a negative weight decay.
    pub fn check(&self) -> Result<()> {
        let ok = self.lr > 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.eps > 0.0
            && self.weight_decay >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "Adam: need lr > 0, betas in [0, 1), eps > 0, weight_decay >= 0; got {self:?}"
            )))
        }
    }
}

impl AdamConfig {
    /// The per-step scalars the update needs, computed in f64 as PyTorch does:
    /// [lr / (1 - β1^t), sqrt(1 - β2^t)] for step t (1 for the first update).
    pub fn step_scalars(&self, step: u32) -> [f32; 2] {
        let t = f64::from(step);
        let bias_correction1 = 1.0 - f64::from(self.beta1).powf(t);
        let bias_correction2 = 1.0 - f64::from(self.beta2).powf(t);
        [
            (f64::from(self.lr) / bias_correction1) as f32,
            bias_correction2.sqrt() as f32,
        ]
    }

    /// [`Self::step_scalars`] for steps 1..=steps, flattened: the table `adam_step` reads.
    pub fn step_scalar_table(&self, steps: u32) -> Vec<f32> {
        (1..=steps).flat_map(|t| self.step_scalars(t)).collect()
    }
}

/// One Adam update of `param` at step `step` (1 for the first), updating `m` and `v` (each
/// stored as 0 where subnormal, as shaders/lib/adam_update.wgsl stores it: a moment whose
/// gradients are all 0 decays by β each step, and subnormals are slow on CPUs).
pub fn adam_step<T: Real>(
    param: &mut [T],
    m: &mut [T],
    v: &mut [T],
    grad: &[T],
    step: u32,
    config: &AdamConfig,
) -> Result<()> {
    config.check()?;
    let n = param.len();
    check_nonzero("adam_step", &[("n", n), ("step", step as usize)])?;
    check_lens(
        "adam_step",
        &[
            ("m", m.len(), n),
            ("v", v.len(), n),
            ("grad", grad.len(), n),
        ],
    )?;
    let [beta1, beta2, eps, weight_decay] =
        [config.beta1, config.beta2, config.eps, config.weight_decay]
            .map(|x| lit::<T>(f64::from(x)));
    let [step_size, bias_correction2_sqrt] =
        config.step_scalars(step).map(|x| lit::<T>(f64::from(x)));
    let update = |param: &mut [T], m: &mut [T], v: &mut [T], grad: &[T]| {
        let elements = param.iter_mut().zip(m).zip(v).zip(grad);
        for (((param, m), v), &grad) in elements {
            let g = grad + weight_decay * *param;
            *m = flush_subnormal(beta1 * *m + (T::one() - beta1) * g);
            *v = flush_subnormal(beta2 * *v + (T::one() - beta2) * g * g);
            let denom = v.sqrt() / bias_correction2_sqrt + eps;
            *param = *param - step_size * *m / denom;
        }
    };
    // Contiguous parts on threads: each element's update is its own, so the same bits.
    let threads = threads_for(n, MIN_ELEMENTS_PER_THREAD);
    if threads == 1 {
        update(param, m, v, grad);
        return Ok(());
    }
    let chunk = n.div_ceil(threads);
    param
        .par_chunks_mut(chunk)
        .zip(m.par_chunks_mut(chunk))
        .zip(v.par_chunks_mut(chunk))
        .zip(grad.par_chunks(chunk))
        .for_each(|(((param, m), v), grad)| update(param, m, v, grad));
    Ok(())
}

/// x, or 0 where x is subnormal (|x| below the smallest normal float), as
/// shaders/lib/adam_update.wgsl's flush_subnormal: a moment whose gradients are all 0 decays
/// by β each step, and every operation on a subnormal costs a microcode assist on x86 (the
/// AE's epoch went 1.7, 2.3, 2.5, 2.7 s over four epochs; kept at 0: 1.6–1.8 s each).
fn flush_subnormal<T: Float>(x: T) -> T {
    if x.abs() < T::min_positive_value() {
        T::zero()
    } else {
        x
    }
}
