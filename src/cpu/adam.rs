//! CPU twin of shaders/adam.wgsl: Adam with PyTorch's semantics and defaults.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero, flush_subnormal, lit, Real};
use crate::error::{Error, Result};
use crate::parallel::{for_each_part, threads_for, MIN_ELEMENTS_PER_THREAD};

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
    let constants = StepConstants {
        beta1,
        beta2,
        eps,
        weight_decay,
        step_size,
        bias_correction2_sqrt,
    };
    // Contiguous parts on threads: each element's update is its own, so the same bits.
    let threads = threads_for(n, MIN_ELEMENTS_PER_THREAD);
    if threads == 1 {
        update_widest(param, m, v, grad, constants);
        return Ok(());
    }
    let chunk = n.div_ceil(threads);
    let parts: Vec<_> = param
        .chunks_mut(chunk)
        .zip(m.chunks_mut(chunk))
        .zip(v.chunks_mut(chunk))
        .zip(grad.chunks(chunk))
        .collect();
    for_each_part(parts, |(((param, m), v), grad)| {
        update_widest(param, m, v, grad, constants)
    });
    Ok(())
}

/// A step's constants, the same for every element.
#[derive(Clone, Copy)]
struct StepConstants<T> {
    beta1: T,
    beta2: T,
    eps: T,
    weight_decay: T,
    step_size: T,
    bias_correction2_sqrt: T,
}

/// Adam's update of each element, in the widest vectors this CPU has (AVX-512, AVX2, else
/// the target's own): the same operations on each element whatever the width, so the
/// same bits (unit test every_width_gives_the_same_bits). In SSE2's 4 lanes, the update's
/// two divisions made Adam 9 % of a VAE step on the CPU path.
fn update_widest<T: Float>(
    param: &mut [T],
    m: &mut [T],
    v: &mut [T],
    grad: &[T],
    c: StepConstants<T>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: this CPU has AVX-512F, just checked.
            return unsafe { update_avx512(param, m, v, grad, c) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2, just checked.
            return unsafe { update_avx2(param, m, v, grad, c) };
        }
    }
    update(param, m, v, grad, c)
}

/// [`update`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn update_avx512<T: Float>(
    param: &mut [T],
    m: &mut [T],
    v: &mut [T],
    grad: &[T],
    c: StepConstants<T>,
) {
    update(param, m, v, grad, c)
}

/// [`update`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn update_avx2<T: Float>(
    param: &mut [T],
    m: &mut [T],
    v: &mut [T],
    grad: &[T],
    c: StepConstants<T>,
) {
    update(param, m, v, grad, c)
}

/// Adam's update of each element (shaders/lib/adam_update.wgsl's formulas).
#[inline(always)]
fn update<T: Float>(param: &mut [T], m: &mut [T], v: &mut [T], grad: &[T], c: StepConstants<T>) {
    let elements = param.iter_mut().zip(m).zip(v).zip(grad);
    for (((param, m), v), &grad) in elements {
        let g = grad + c.weight_decay * *param;
        *m = flush_subnormal(c.beta1 * *m + (T::one() - c.beta1) * g);
        *v = flush_subnormal(c.beta2 * *v + (T::one() - c.beta2) * g * g);
        let denom = v.sqrt() / c.bias_correction2_sqrt + c.eps;
        *param = *param - c.step_size * *m / denom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each vector width this CPU has gives the baseline's bits: on gradients and moments
    /// spread over many magnitudes, moments near the subnormal bound among them, and with
    /// a length that leaves a remainder past the last whole vector.
    #[test]
    fn every_width_gives_the_same_bits() {
        let n = 1000 + 13;
        let value = |i: usize, scale: f32| ((i * 7919 % 263) as f32 - 131.0) / 97.0 * scale;
        // Every fifth element: no gradient, no weight, moments near the subnormal bound.
        let quiet = |i: usize| i.is_multiple_of(5);
        let grad: Vec<f32> = (0..n)
            .map(|i| {
                if quiet(i) {
                    0.0
                } else {
                    value(i, 10f32.powi(i as i32 % 9 - 6))
                }
            })
            .collect();
        let start: Vec<[f32; 3]> = (0..n)
            .map(|i| {
                if quiet(i) {
                    [0.0, value(i + 7, 1.2e-38), value(i + 11, 1.2e-38).abs()]
                } else {
                    [
                        value(i + 3, 0.1),
                        value(i + 7, 1e-3),
                        value(i + 11, 1e-4).abs(),
                    ]
                }
            })
            .collect();
        let c = StepConstants {
            beta1: 0.9f32,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            step_size: 1e-3 / 0.1,
            bias_correction2_sqrt: 0.0316,
        };
        // A form's update of (param, m, v), in place.
        type Form<'a> = &'a dyn Fn(&mut [f32], &mut [f32], &mut [f32]);
        let run = |form: Form| {
            let mut param: Vec<f32> = start.iter().map(|s| s[0]).collect();
            let mut m: Vec<f32> = start.iter().map(|s| s[1]).collect();
            let mut v: Vec<f32> = start.iter().map(|s| s[2]).collect();
            form(&mut param, &mut m, &mut v);
            [param, m, v].map(|x| crate::cpu::bits(&x))
        };
        let baseline = run(&|p, m, v| update(p, m, v, &grad, c));
        assert!(baseline[1].contains(&0), "no moment flushed to 0");
        // Only x86-64 has wider forms to push.
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut forms: Vec<(&str, [Vec<u32>; 3])> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: this CPU has AVX2, just checked.
                forms.push((
                    "avx2",
                    run(&|p, m, v| unsafe { update_avx2(p, m, v, &grad, c) }),
                ));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: this CPU has AVX-512F, just checked.
                let avx512 = run(&|p, m, v| unsafe { update_avx512(p, m, v, &grad, c) });
                forms.push(("avx512", avx512));
            }
        }
        for (form, got) in forms {
            for (name, got, expected) in [
                ("param", &got[0], &baseline[0]),
                ("m", &got[1], &baseline[1]),
                ("v", &got[2], &baseline[2]),
            ] {
                assert_eq!(got, expected, "{form}: {name}");
            }
        }
    }
}
