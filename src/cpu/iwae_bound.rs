//! CPU twin of shaders/iwae_bound.wgsl: an IWAE training step's log weights, bound (added to
//! running totals) and their gradients down to z and μ | logvar, composed from their own
//! twins (cpu/log_weight.rs, cpu/log_mean_exp.rs); with the reconstruction loss around it,
//! from cpu/bce.rs's or cpu/mse.rs's. μ and logvar come as one tensor, stats (rows, 2·cols):
//! μ | logvar; dstats has the same layout.

use num_traits::Float;

use crate::cpu::bce::{bce_backward_rows, bce_forward};
use crate::cpu::log_mean_exp::{neg_log_mean_exp, neg_log_mean_exp_backward};
use crate::cpu::log_weight::{log_weight, log_weight_backward};
use crate::cpu::mse::{mse_backward_rows, mse_forward};
use crate::cpu::{check_lens, lit, Real};
use crate::error::Result;
use crate::kernels::iwae_bound::ReconLoss;

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

/// The reconstruction loss's outputs in [`iwae_bound_with_recon`]: running totals (rows) of
/// the loss rows and dout (rows, recon cols).
pub struct ReconOut<'a, T> {
    pub recon_totals: &'a mut [T],
    pub dout: &'a mut [T],
}

/// [`iwae_bound_forward_backward`] with the reconstruction loss around it, as
/// shaders/iwae_bound.wgsl's iwae_bound_with_recon does in one dispatch: recon (rows) = Σ_c
/// loss(out, target) (BCE from logits, or MSE with `loss.mse`), recon_totals += recon; the
/// bound and its gradients from those rows; dout = (loss.scale + loss.factor · dlogw\[r\]) ·
/// ∂loss/∂out. `target` has out's rows (the CPU path repeats the data rows).
pub fn iwae_bound_with_recon<T: Real>(
    (out, recon_out): (IwaeBoundOut<T>, ReconOut<T>),
    (predicted, target): (&[T], &[T]),
    (z, eps, stats): (&[T], &[T], &[T]),
    (cols, k): (usize, usize),
    (recon_weight, scale): (f32, T),
    loss: ReconLoss,
) -> Result<()> {
    let rows = recon_out.recon_totals.len();
    let mut recon = vec![T::zero(); rows];
    if loss.mse {
        mse_forward(&mut recon, predicted, target, rows, loss.cols)?;
    } else {
        bce_forward(&mut recon, predicted, target, rows, loss.cols)?;
    }
    for (total, &r) in recon_out.recon_totals.iter_mut().zip(&recon) {
        *total = *total + r;
    }
    let IwaeBoundOut {
        totals,
        dlogw,
        dz,
        dstats,
    } = out;
    let bound_out = IwaeBoundOut {
        totals,
        dlogw: &mut *dlogw,
        dz,
        dstats,
    };
    let inputs = (&recon[..], z, eps, stats);
    iwae_bound_forward_backward(bound_out, inputs, (cols, k), (recon_weight, scale))?;
    let (d, f) = (
        lit::<T>(f64::from(loss.scale)),
        lit::<T>(f64::from(loss.factor)),
    );
    if loss.mse {
        mse_backward_rows(recon_out.dout, predicted, target, dlogw, d, f)
    } else {
        bce_backward_rows(recon_out.dout, predicted, target, dlogw, d, f)
    }
}
