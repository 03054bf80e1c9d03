//! CPU twin of shaders/reparameterize.wgsl: z = μ + e^(½·logvar)·ε with ε drawn from
//! Philox4x32-10 keyed by (seed, step, stream, element), and its backward.

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

/// z (n) and the drawn ε (n, saved for backward) from μ and logvar (n).
pub fn reparameterize_forward<T: Float>(
    z: &mut [T],
    eps: &mut [T],
    mu: &[T],
    logvar: &[T],
    key: NoiseKey,
) -> Result<()> {
    let n = mu.len();
    check_nonzero("reparameterize_forward", &[("n", n)])?;
    check_lens(
        "reparameterize_forward",
        &[
            ("z", z.len(), n),
            ("eps", eps.len(), n),
            ("logvar", logvar.len(), n),
        ],
    )?;
    let half = lit::<T>(0.5);
    for g in 0..n.div_ceil(4) {
        let normals = normals_for_group(key.seed, key.step, key.stream, g as u32);
        for (j, &normal) in normals.iter().enumerate() {
            let i = 4 * g + j;
            if i < n {
                eps[i] = lit(normal);
                z[i] = mu[i] + (half * logvar[i]).exp() * eps[i];
            }
        }
    }
    Ok(())
}

/// dmu = dz, dlogvar = dz · ε · ½ e^(½·logvar); each written, or added when its flag is set.
pub fn reparameterize_backward<T: Float>(
    dmu: &mut [T],
    dlogvar: &mut [T],
    eps: &[T],
    logvar: &[T],
    dz: &[T],
    accumulate_mu: bool,
    accumulate_logvar: bool,
) -> Result<()> {
    let n = dz.len();
    check_nonzero("reparameterize_backward", &[("n", n)])?;
    check_lens(
        "reparameterize_backward",
        &[
            ("dmu", dmu.len(), n),
            ("dlogvar", dlogvar.len(), n),
            ("eps", eps.len(), n),
            ("logvar", logvar.len(), n),
        ],
    )?;
    let half = lit::<T>(0.5);
    for i in 0..n {
        let d_logvar = dz[i] * eps[i] * half * (half * logvar[i]).exp();
        dmu[i] = if accumulate_mu { dmu[i] + dz[i] } else { dz[i] };
        dlogvar[i] = if accumulate_logvar {
            dlogvar[i] + d_logvar
        } else {
            d_logvar
        };
    }
    Ok(())
}
