//! CPU twin of shaders/kl_sparsity.wgsl: the sparse autoencoder's KL sparsity penalty,
//! Σ_c KL(ρ ‖ ρ̂_c) with ρ̂_c the batch mean of code unit c, and its gradient.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero, lit};
use crate::error::{Error, Result};

/// ρ̂ is kept in [ε, 1 − ε] so the logarithms stay finite when a sigmoid saturates.
pub const RHO_HAT_EPSILON: f64 = 1e-6;

/// Checks a target mean activation: 0 < ρ < 1.
pub fn check_rho(rho: f32) -> Result<()> {
    if rho > 0.0 && rho < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "sparsity target ρ = {rho}: it must lie strictly between 0 and 1"
        )))
    }
}

/// rho_hat (cols) = clamped column means of x (rows, cols); loss (rows) = Σ_c KL(ρ ‖ ρ̂_c) in
/// every row.
pub fn kl_sparsity_forward<T: Float>(
    loss: &mut [T],
    rho_hat: &mut [T],
    x: &[T],
    rows: usize,
    cols: usize,
    rho: f32,
) -> Result<()> {
    check_nonzero("kl_sparsity_forward", &[("rows", rows), ("cols", cols)])?;
    check_rho(rho)?;
    check_lens(
        "kl_sparsity_forward",
        &[
            ("loss", loss.len(), rows),
            ("rho_hat", rho_hat.len(), cols),
            ("x", x.len(), rows * cols),
        ],
    )?;
    let (rho, one) = (lit::<T>(f64::from(rho)), T::one());
    let (low, high) = (lit::<T>(RHO_HAT_EPSILON), one - lit(RHO_HAT_EPSILON));
    let mut total = T::zero();
    for (c, mean) in rho_hat.iter_mut().enumerate() {
        let column = (0..rows).fold(T::zero(), |s, r| s + x[r * cols + c]);
        *mean = (column / lit(rows as f64)).max(low).min(high);
        total = total + rho * (rho / *mean).ln() + (one - rho) * ((one - rho) / (one - *mean)).ln();
    }
    loss.iter_mut().for_each(|l| *l = total);
    Ok(())
}

/// dx (rows, cols) = scale · (−ρ/ρ̂_c + (1 − ρ)/(1 − ρ̂_c)); written, or added when
/// `accumulate`.
pub fn kl_sparsity_backward<T: Float>(
    dx: &mut [T],
    rho_hat: &[T],
    rows: usize,
    rho: f32,
    scale: T,
    accumulate: bool,
) -> Result<()> {
    let cols = rho_hat.len();
    check_nonzero("kl_sparsity_backward", &[("rows", rows), ("cols", cols)])?;
    check_rho(rho)?;
    check_lens("kl_sparsity_backward", &[("dx", dx.len(), rows * cols)])?;
    let (rho, one) = (lit::<T>(f64::from(rho)), T::one());
    for (i, d) in dx.iter_mut().enumerate() {
        let mean = rho_hat[i % cols];
        let grad = scale * (-rho / mean + (one - rho) / (one - mean));
        *d = if accumulate { *d + grad } else { grad };
    }
    Ok(())
}
