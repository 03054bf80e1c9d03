//! CPU twin of shaders/vae_head.wgsl: the reparameterization, the KL per row added to running
//! totals, and the KL's gradient, composed from their own twins. μ and logvar come as one
//! tensor, stats (rows, 2·cols): μ | logvar; dstats has the same layout.

use crate::cpu::kl::{kl_backward, kl_forward};
use crate::cpu::reparameterize::{reparameterize_forward, NoiseKey};
use crate::cpu::Real;
use crate::error::Result;

/// The outputs of the VAE head: z, eps (rows, cols), running KL totals (rows), and the KL's
/// gradient dstats (rows, 2·cols): dμ | dlogvar.
pub struct VaeHeadOut<'a, T> {
    pub z: &'a mut [T],
    pub eps: &'a mut [T],
    pub kl_totals: &'a mut [T],
    pub dstats: &'a mut [T],
}

/// z = μ + e^(½·logvar)·ε (ε keyed like reparameterize_forward), kl_totals\[r\] += KL of row r,
/// dstats = [scale · μ | scale · ½ (e^logvar − 1)] (written).
pub fn vae_head_forward<T: Real>(
    out: VaeHeadOut<T>,
    stats: &[T],
    rows: usize,
    cols: usize,
    key: NoiseKey,
    scale: T,
) -> Result<()> {
    reparameterize_forward(out.z, out.eps, stats, rows, cols, key)?;
    let mut kl = vec![T::zero(); out.kl_totals.len()];
    kl_forward(&mut kl, stats, rows, cols)?;
    kl_backward(out.dstats, stats, rows, cols, scale, false)?;
    for (total, k) in out.kl_totals.iter_mut().zip(kl) {
        *total = *total + k;
    }
    Ok(())
}
