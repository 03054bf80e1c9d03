//! CPU twin of shaders/log_weight.wgsl: the log importance weight of a VAE sample,
//! log w = −recon_weight · recon − ½ Σ_c (z² − ε² − logvar). μ and logvar come as one tensor,
//! stats (rows, 2·cols): row r holds μ in columns [0, cols) and logvar in [cols, 2·cols);
//! dstats has the same layout.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero, lit};
use crate::error::Result;

/// logw (rows) from the per-row reconstruction loss recon (rows), z, ε (rows, cols) and the
/// logvar half of stats (rows, 2·cols).
pub fn log_weight<T: Float>(
    logw: &mut [T],
    recon: &[T],
    z: &[T],
    eps: &[T],
    stats: &[T],
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
            ("stats", stats.len(), rows * 2 * cols),
        ],
    )?;
    let (half, weight) = (lit::<T>(0.5), lit::<T>(f64::from(recon_weight)));
    for (r, out) in logw.iter_mut().enumerate() {
        let mut sum = T::zero();
        for c in 0..cols {
            let i = r * cols + c;
            let logvar = stats[r * 2 * cols + cols + c];
            sum = sum + z[i] * z[i] - eps[i] * eps[i] - logvar;
        }
        *out = -weight * recon[r] - half * sum;
    }
    Ok(())
}

/// From dlogw (rows): dz (+)= −dlogw\[r\] · z (rows, cols), written or added when
/// `accumulate_z`; dstats (rows, 2·cols) (+)= [0 | ½ dlogw\[r\]]: both halves written (the μ
/// half with zeros), or the logvar half added to and the μ half left as it is when
/// `accumulate_stats`.
pub fn log_weight_backward<T: Float>(
    dz: &mut [T],
    dstats: &mut [T],
    dlogw: &[T],
    z: &[T],
    accumulate_z: bool,
    accumulate_stats: bool,
) -> Result<()> {
    let rows = dlogw.len();
    let cols = z.len() / rows.max(1);
    check_nonzero("log_weight_backward", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "log_weight_backward",
        &[
            ("z", z.len(), rows * cols),
            ("dz", dz.len(), rows * cols),
            ("dstats", dstats.len(), rows * 2 * cols),
        ],
    )?;
    let half = lit::<T>(0.5);
    for (r, &d) in dlogw.iter().enumerate() {
        for c in 0..cols {
            let i = r * cols + c;
            let (m, lv) = (r * 2 * cols + c, r * 2 * cols + cols + c);
            let (d_z, d_logvar) = (-d * z[i], half * d);
            dz[i] = if accumulate_z { dz[i] + d_z } else { d_z };
            if accumulate_stats {
                dstats[lv] = dstats[lv] + d_logvar;
            } else {
                dstats[m] = T::zero();
                dstats[lv] = d_logvar;
            }
        }
    }
    Ok(())
}
