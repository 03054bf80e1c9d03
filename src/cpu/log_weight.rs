//! CPU twin of shaders/log_weight.wgsl: the log importance weight of a VAE sample,
//! log w = −recon_weight · recon − ½ Σ_c (z² − ε² − logvar).

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero, lit};
use crate::error::Result;

/// logw (rows) from the per-row reconstruction loss recon (rows) and z, ε, logvar (rows, cols).
pub fn log_weight<T: Float>(
    logw: &mut [T],
    recon: &[T],
    z: &[T],
    eps: &[T],
    logvar: &[T],
    cols: usize,
    recon_weight: f32,
) -> Result<()> {
    let rows = logw.len();
    check_nonzero("log_weight", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "log_weight",
        &[
            ("recon", recon.len(), rows),
            ("z", z.len(), rows * cols),
            ("eps", eps.len(), rows * cols),
            ("logvar", logvar.len(), rows * cols),
        ],
    )?;
    let (half, weight) = (lit::<T>(0.5), lit::<T>(f64::from(recon_weight)));
    for (r, out) in logw.iter_mut().enumerate() {
        let sum = (r * cols..(r + 1) * cols).fold(T::zero(), |s, i| {
            s + z[i] * z[i] - eps[i] * eps[i] - logvar[i]
        });
        *out = -weight * recon[r] - half * sum;
    }
    Ok(())
}

/// From dlogw (rows): dz (+)= −dlogw[r] · z and dlogvar (+)= ½ dlogw[r], (rows, cols); each
/// written, or added when its flag is set.
pub fn log_weight_backward<T: Float>(
    dz: &mut [T],
    dlogvar: &mut [T],
    dlogw: &[T],
    z: &[T],
    accumulate_z: bool,
    accumulate_logvar: bool,
) -> Result<()> {
    let rows = dlogw.len();
    let cols = z.len() / rows.max(1);
    check_nonzero("log_weight_backward", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "log_weight_backward",
        &[
            ("z", z.len(), rows * cols),
            ("dz", dz.len(), rows * cols),
            ("dlogvar", dlogvar.len(), rows * cols),
        ],
    )?;
    let half = lit::<T>(0.5);
    for i in 0..rows * cols {
        let d = dlogw[i / cols];
        let (d_z, d_logvar) = (-d * z[i], half * d);
        dz[i] = if accumulate_z { dz[i] + d_z } else { d_z };
        dlogvar[i] = if accumulate_logvar {
            dlogvar[i] + d_logvar
        } else {
            d_logvar
        };
    }
    Ok(())
}
