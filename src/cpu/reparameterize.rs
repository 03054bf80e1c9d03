//! CPU twin of shaders/reparameterize.wgsl: z = μ + e^(½·logvar)·ε with ε drawn from
//! Philox4x32-10 keyed by (seed, step, stream, element), and its backward. μ and logvar come
//! as one tensor, stats (rows, 2·cols): row r holds μ in columns [0, cols) and logvar in
//! [cols, 2·cols).

use num_traits::Float;

use crate::cpu::philox::normals_for_group;
use crate::cpu::{check_lens, check_nonzero, lit};
use crate::error::Result;

/// Where the noise of one reparameterization comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoiseKey {
    pub seed: u64,
    /// The training step (the GPU reads it from a buffer).
    pub step: u32,
    /// Separates random ops that share a seed and a step.
    pub stream: u32,
}

/// Where μ of latent element i = r·cols + c sits in stats (rows, 2·cols); logvar is at
/// `mu_index(i, cols) + cols`.
pub(crate) fn mu_index(i: usize, cols: usize) -> usize {
    (i / cols) * 2 * cols + i % cols
}

/// z (rows, cols) and the drawn ε (rows, cols, saved for backward) from stats (rows, 2·cols).
/// Philox group g gives the flat elements 4g..4g+3, which may straddle rows.
pub fn reparameterize_forward<T: Float>(
    z: &mut [T],
    eps: &mut [T],
    stats: &[T],
    rows: usize,
    cols: usize,
    key: NoiseKey,
) -> Result<()> {
    let op = "reparameterize_forward";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    let n = rows * cols;
    check_lens(
        op,
        &[
            ("z", z.len(), n),
            ("eps", eps.len(), n),
            ("stats", stats.len(), 2 * n),
        ],
    )?;
    let half = lit::<T>(0.5);
    for g in 0..n.div_ceil(4) {
        let normals = normals_for_group(key.seed, key.step, key.stream, g as u32);
        for (j, &normal) in normals.iter().enumerate() {
            let i = 4 * g + j;
            if i < n {
                let m = mu_index(i, cols);
                eps[i] = lit(normal);
                z[i] = stats[m] + (half * stats[m + cols]).exp() * eps[i];
            }
        }
    }
    Ok(())
}

/// dstats (rows, 2·cols) = [dz | dz · ε · ½ e^(½·logvar)]; both halves written, or both added
/// to when `accumulate`.
pub fn reparameterize_backward<T: Float>(
    dstats: &mut [T],
    eps: &[T],
    stats: &[T],
    dz: &[T],
    rows: usize,
    cols: usize,
    accumulate: bool,
) -> Result<()> {
    let op = "reparameterize_backward";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    let n = rows * cols;
    check_lens(
        op,
        &[
            ("dstats", dstats.len(), 2 * n),
            ("eps", eps.len(), n),
            ("stats", stats.len(), 2 * n),
            ("dz", dz.len(), n),
        ],
    )?;
    let half = lit::<T>(0.5);
    for i in 0..n {
        let (m, lv) = (mu_index(i, cols), mu_index(i, cols) + cols);
        let d_mu = dz[i];
        let d_logvar = dz[i] * eps[i] * half * (half * stats[lv]).exp();
        dstats[m] = if accumulate { dstats[m] + d_mu } else { d_mu };
        dstats[lv] = if accumulate {
            dstats[lv] + d_logvar
        } else {
            d_logvar
        };
    }
    Ok(())
}
