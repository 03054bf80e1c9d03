//! CPU twin of shaders/log_mean_exp.wgsl: per group of k consecutive log weights, minus the
//! log of their mean weight (the importance-weighted bound as a loss), computed stably.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero, lit};
use crate::error::Result;

/// out (groups·k) = −log(1/k Σ_k e^logw) of each row's group, in each of its k rows.
pub fn neg_log_mean_exp<T: Float>(out: &mut [T], logw: &[T], k: usize) -> Result<()> {
    check_nonzero("neg_log_mean_exp", &[("k", k), ("rows", logw.len())])?;
    check_lens("neg_log_mean_exp", &[("out", out.len(), logw.len())])?;
    if !logw.len().is_multiple_of(k) {
        return check_lens(
            "neg_log_mean_exp",
            &[("logw", logw.len(), logw.len().div_ceil(k) * k)],
        );
    }
    for (group, result) in logw.chunks(k).zip(out.chunks_mut(k)) {
        let m = group.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
        let sum = group.iter().fold(T::zero(), |s, &l| s + (l - m).exp());
        let bound = m + (sum / lit(k as f64)).ln();
        result.iter_mut().for_each(|o| *o = -bound);
    }
    Ok(())
}

/// dlogw = −scale · k · softmax(logw) within each group of k: the gradient of
/// scale · Σ_rows neg_log_mean_exp(logw).
pub fn neg_log_mean_exp_backward<T: Float>(
    dlogw: &mut [T],
    logw: &[T],
    k: usize,
    scale: T,
) -> Result<()> {
    check_nonzero(
        "neg_log_mean_exp_backward",
        &[("k", k), ("rows", logw.len())],
    )?;
    check_lens(
        "neg_log_mean_exp_backward",
        &[
            ("dlogw", dlogw.len(), logw.len()),
            ("logw", logw.len(), logw.len().div_ceil(k) * k),
        ],
    )?;
    for (group, d) in logw.chunks(k).zip(dlogw.chunks_mut(k)) {
        let m = group.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
        let sum = group.iter().fold(T::zero(), |s, &l| s + (l - m).exp());
        let factor = -scale * lit(k as f64) / sum;
        for (out, &l) in d.iter_mut().zip(group) {
            *out = factor * (l - m).exp();
        }
    }
    Ok(())
}
