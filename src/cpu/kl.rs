//! CPU twin of shaders/kl.wgsl: KL(N(μ, e^logvar) ‖ N(0, 1)) per row, and its gradient. μ and
//! logvar come as one tensor, stats (rows, 2·cols): row r holds μ in columns [0, cols) and
//! logvar in [cols, 2·cols); the gradient dstats has the same layout.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero, lit};
use crate::error::Result;

/// kl (rows) = -½ Σ_c (1 + logvar - μ² - e^logvar), from stats (rows, 2·cols).
pub fn kl_forward<T: Float>(kl: &mut [T], stats: &[T], rows: usize, cols: usize) -> Result<()> {
    check_nonzero("kl_forward", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "kl_forward",
        &[
            ("kl", kl.len(), rows),
            ("stats", stats.len(), rows * 2 * cols),
        ],
    )?;
    let half = lit::<T>(0.5);
    for (r, k) in kl.iter_mut().enumerate() {
        let row = &stats[r * 2 * cols..(r + 1) * 2 * cols];
        let (mu, logvar) = row.split_at(cols);
        let sum = mu.iter().zip(logvar).fold(T::zero(), |s, (&m, &lv)| {
            s + T::one() + lv - m * m - lv.exp()
        });
        *k = -half * sum;
    }
    Ok(())
}

/// dstats (rows, 2·cols) = [scale · μ | scale · ½ (e^logvar - 1)]; both halves written, or
/// added to when `accumulate`.
pub fn kl_backward<T: Float>(
    dstats: &mut [T],
    stats: &[T],
    rows: usize,
    cols: usize,
    scale: T,
    accumulate: bool,
) -> Result<()> {
    check_nonzero("kl_backward", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "kl_backward",
        &[
            ("dstats", dstats.len(), rows * 2 * cols),
            ("stats", stats.len(), rows * 2 * cols),
        ],
    )?;
    let half = lit::<T>(0.5);
    for r in 0..rows {
        for c in 0..cols {
            let (m, lv) = (r * 2 * cols + c, r * 2 * cols + cols + c);
            let d_mu = scale * stats[m];
            let d_logvar = scale * half * (stats[lv].exp() - T::one());
            dstats[m] = if accumulate { dstats[m] + d_mu } else { d_mu };
            dstats[lv] = if accumulate {
                dstats[lv] + d_logvar
            } else {
                d_logvar
            };
        }
    }
    Ok(())
}
