//! CPU twin of shaders/vae_head.wgsl: the reparameterization (K samples a row for an IWAE),
//! the KL per row added to running totals, and the KL's gradient, composed from their own
//! twins. μ and logvar come as one tensor, stats (rows, 2·cols): μ | logvar; dstats has the
//! same layout.

use crate::cpu::kl::{kl_backward, kl_forward};
use crate::cpu::reparameterize::{reparameterize_forward, NoiseKey};
use crate::cpu::repeat_rows::repeat_rows;
use crate::cpu::Real;
use crate::error::Result;

/// The outputs of the VAE head: z, eps (rows · K, cols), running KL totals (rows), and the
/// KL's gradient dstats (rows, 2·cols): dμ | dlogvar, where the KL has one. (The GPU's head
/// can also write z joined to a label: cpu/concat.rs's concat_cols of this z.)
pub struct VaeHeadOut<'a, T> {
    pub z: &'a mut [T],
    pub eps: &'a mut [T],
    pub kl_totals: &'a mut [T],
    pub dstats: Option<&'a mut [T]>,
}

/// z = μ + e^(½·logvar)·ε for `samples` (K) rows a row of stats (ε keyed like
/// reparameterize_forward on the stats repeated K times), kl_totals\[r\] += KL of row r,
/// dstats = [scale · μ | scale · ½ (e^logvar − 1)] (written, when given).
pub fn vae_head_forward<T: Real>(
    out: VaeHeadOut<T>,
    stats: &[T],
    (rows, cols, samples): (usize, usize, usize),
    key: NoiseKey,
    scale: T,
) -> Result<()> {
    let mut repeated = vec![T::zero(); rows * samples * 2 * cols];
    repeat_rows(&mut repeated, stats, rows, 2 * cols, samples)?;
    reparameterize_forward(out.z, out.eps, &repeated, rows * samples, cols, key)?;
    let mut kl = vec![T::zero(); out.kl_totals.len()];
    kl_forward(&mut kl, stats, rows, cols)?;
    if let Some(dstats) = out.dstats {
        kl_backward(dstats, stats, rows, cols, scale, false)?;
    }
    for (total, k) in out.kl_totals.iter_mut().zip(kl) {
        *total = *total + k;
    }
    Ok(())
}
