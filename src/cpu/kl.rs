//! CPU twin of shaders/kl.wgsl: KL(N(μ, e^logvar) ‖ N(0, 1)) per row, and its gradient.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero, lit};
use crate::error::Result;

/// kl (rows) = -½ Σ_c (1 + logvar - μ² - e^logvar).
pub fn kl_forward<T: Float>(
    kl: &mut [T],
    mu: &[T],
    logvar: &[T],
    rows: usize,
    cols: usize,
) -> Result<()> {
    check_nonzero("kl_forward", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "kl_forward",
        &[
            ("kl", kl.len(), rows),
            ("mu", mu.len(), rows * cols),
            ("logvar", logvar.len(), rows * cols),
        ],
    )?;
    let half = lit::<T>(0.5);
    for (r, k) in kl.iter_mut().enumerate() {
        let span = r * cols..(r + 1) * cols;
        let sum = mu[span.clone()]
            .iter()
            .zip(&logvar[span])
            .fold(T::zero(), |s, (&m, &lv)| {
                s + T::one() + lv - m * m - lv.exp()
            });
        *k = -half * sum;
    }
    Ok(())
}

/// dmu = scale · μ, dlogvar = scale · ½ (e^logvar - 1); written, or added when `accumulate`.
pub fn kl_backward<T: Float>(
    dmu: &mut [T],
    dlogvar: &mut [T],
    mu: &[T],
    logvar: &[T],
    scale: T,
    accumulate: bool,
) -> Result<()> {
    let n = mu.len();
    check_nonzero("kl_backward", &[("n", n)])?;
    check_lens(
        "kl_backward",
        &[
            ("dmu", dmu.len(), n),
            ("dlogvar", dlogvar.len(), n),
            ("logvar", logvar.len(), n),
        ],
    )?;
    let half = lit::<T>(0.5);
    for i in 0..n {
        let d_mu = scale * mu[i];
        let d_logvar = scale * half * (logvar[i].exp() - T::one());
        dmu[i] = if accumulate { dmu[i] + d_mu } else { d_mu };
        dlogvar[i] = if accumulate {
            dlogvar[i] + d_logvar
        } else {
            d_logvar
        };
    }
    Ok(())
}
