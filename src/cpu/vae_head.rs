//! CPU twin of shaders/vae_head.wgsl: the reparameterization, the KL per row added to running
//! totals, and the KL's gradient, composed from their own twins.

use num_traits::Float;

use crate::cpu::kl::{kl_backward, kl_forward};
use crate::cpu::reparameterize::{reparameterize_forward, NoiseKey};
use crate::error::Result;

/// The outputs of the VAE head: z, eps (rows, cols), running KL totals (rows), and the KL's
/// gradient dmu, dlogvar (rows, cols).
pub struct VaeHeadOut<'a, T> {
    pub z: &'a mut [T],
    pub eps: &'a mut [T],
    pub kl_totals: &'a mut [T],
    pub dmu: &'a mut [T],
    pub dlogvar: &'a mut [T],
}

/// z = μ + e^(½·logvar)·ε (ε keyed like reparameterize_forward), kl_totals[r] += KL of row r,
/// dmu = scale · μ, dlogvar = scale · ½ (e^logvar − 1) (written).
pub fn vae_head_forward<T: Float>(
    out: VaeHeadOut<T>,
    mu: &[T],
    logvar: &[T],
    rows: usize,
    cols: usize,
    key: NoiseKey,
    scale: T,
) -> Result<()> {
    reparameterize_forward(out.z, out.eps, mu, logvar, key)?;
    let mut kl = vec![T::zero(); out.kl_totals.len()];
    kl_forward(&mut kl, mu, logvar, rows, cols)?;
    kl_backward(out.dmu, out.dlogvar, mu, logvar, scale, false)?;
    for (total, k) in out.kl_totals.iter_mut().zip(kl) {
        *total = *total + k;
    }
    Ok(())
}
