//! CPU twin of shaders/iwae_bound.wgsl: an IWAE training step's log weights, bound (added to
//! running totals) and their gradients down to z and μ | logvar, composed from their own
//! twins (cpu/log_weight.rs, cpu/log_mean_exp.rs). μ and logvar come as one tensor, stats
//! (rows, 2·cols): μ | logvar; dstats has the same layout.

use num_traits::Float;

use crate::cpu::check_lens;
use crate::cpu::log_mean_exp::{neg_log_mean_exp, neg_log_mean_exp_backward};
use crate::cpu::log_weight::{log_weight, log_weight_backward};
use crate::error::Result;

/// The outputs of the fused bound: running totals (rows) of −bound, dlogw (rows), dz (rows,
/// cols) and dstats (rows, 2·cols): dμ | dlogvar.
pub struct IwaeBoundOut<'a, T> {
    pub totals: &'a mut [T],
    pub dlogw: &'a mut [T],
    pub dz: &'a mut [T],
    pub dstats: &'a mut [T],
}

/// For rows in groups of `k` samples: logw from recon (rows), z, ε (rows, cols) and stats
/// (rows, 2·cols); totals += −log (1/k Σ e^logw) in each of a group's rows; dlogw = −scale · k
/// · softmax(logw); dz = −dlogw · z and dstats = [0 | ½ dlogw], written.
pub fn iwae_bound_forward_backward<T: Float>(
    out: IwaeBoundOut<T>,
    (recon, z, eps, stats): (&[T], &[T], &[T], &[T]),
    (cols, k): (usize, usize),
    (recon_weight, scale): (f32, T),
) -> Result<()> {
    let op = "iwae_bound_forward_backward";
    check_lens(op, &[("totals", out.totals.len(), recon.len())])?;
    let mut logw = vec![T::zero(); recon.len()];
    log_weight(&mut logw, recon, z, eps, stats, cols, recon_weight)?;
    let mut bound = vec![T::zero(); logw.len()];
    neg_log_mean_exp(&mut bound, &logw, k)?;
    neg_log_mean_exp_backward(out.dlogw, &logw, k, scale)?;
    log_weight_backward(out.dz, out.dstats, out.dlogw, z, false, false)?;
    for (total, b) in out.totals.iter_mut().zip(bound) {
        *total = *total + b;
    }
    Ok(())
}
