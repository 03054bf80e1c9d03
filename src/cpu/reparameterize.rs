//! CPU twin of shaders/reparameterize.wgsl: z = μ + e^(½·logvar)·ε with ε drawn from
//! Philox4x32-10 keyed by (seed, step, stream, element), and its backward. μ and logvar come
//! as one tensor, stats (rows, 2·cols): row r holds μ in columns [0, cols) and logvar in
//! [cols, 2·cols).

use num_traits::Float;

use crate::cpu::philox::{normals_for_groups, BLOCK_GROUPS, MIN_GROUPS_PER_THREAD};
use crate::cpu::{check_lens, check_nonzero, lit, Real};
use crate::error::Result;
use crate::parallel::{for_each_part, threads_for};

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
/// Philox group g gives the flat elements 4g..4g+3, which may straddle rows. The groups are
/// split over threads; each element is drawn as on one thread.
pub fn reparameterize_forward<T: Real>(
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
    let groups = n.div_ceil(4);
    let part_len = 4 * groups.div_ceil(threads_for(groups, MIN_GROUPS_PER_THREAD));
    let parts: Vec<_> = z
        .chunks_mut(part_len)
        .zip(eps.chunks_mut(part_len))
        .enumerate()
        .collect();
    for_each_part(parts, |(part, (z, eps))| {
        draw(z, eps, stats, part * part_len, cols, key)
    });
    Ok(())
}

/// z and ε of the flat elements first.. (first a multiple of 4): the groups from first / 4 on,
/// a block of groups at a time.
fn draw<T: Float>(
    z: &mut [T],
    eps: &mut [T],
    stats: &[T],
    first: usize,
    cols: usize,
    key: NoiseKey,
) {
    let half = lit::<T>(0.5);
    let mut words = [0u32; 4 * BLOCK_GROUPS];
    let mut normals = [0f64; 4 * BLOCK_GROUPS];
    let blocks = z
        .chunks_mut(4 * BLOCK_GROUPS)
        .zip(eps.chunks_mut(4 * BLOCK_GROUPS));
    for (b, (z, eps)) in blocks.enumerate() {
        let len = 4 * z.len().div_ceil(4);
        let start = first + b * 4 * BLOCK_GROUPS;
        normals_for_groups(&mut normals[..len], &mut words[..len], start / 4, key);
        for (j, ((z, eps), &normal)) in z.iter_mut().zip(eps).zip(&normals).enumerate() {
            let m = mu_index(start + j, cols);
            *eps = lit(normal);
            *z = stats[m] + (half * stats[m + cols]).exp() * *eps;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::philox::normals_for_group;

    /// Split over threads (groups straddling rows of 7, a last group of 3 elements), the
    /// forward draws each element as one serial loop over the groups does.
    #[test]
    fn threaded_draws_give_the_serial_loops_bits() {
        let (rows, cols) = (301usize, 7);
        let n = rows * cols;
        assert!(n.div_ceil(4) >= 2 * MIN_GROUPS_PER_THREAD && n % 4 != 0);
        let stats: Vec<f32> = (0..2 * n).map(|i| ((i % 13) as f32 - 6.0) / 4.0).collect();
        let key = NoiseKey {
            seed: 7,
            step: 3,
            stream: 1,
        };
        let (mut z, mut eps) = (vec![f32::NAN; n], vec![f32::NAN; n]);
        reparameterize_forward(&mut z, &mut eps, &stats, rows, cols, key).unwrap();
        let (mut z1, mut eps1) = (vec![f32::NAN; n], vec![f32::NAN; n]);
        for g in 0..n.div_ceil(4) {
            let normals = normals_for_group(key.seed, key.step, key.stream, g as u32);
            for (j, &normal) in normals.iter().enumerate().filter(|(j, _)| 4 * g + j < n) {
                let (i, m) = (4 * g + j, mu_index(4 * g + j, cols));
                eps1[i] = normal as f32;
                z1[i] = stats[m] + (0.5 * stats[m + cols]).exp() * eps1[i];
            }
        }
        assert_eq!(crate::cpu::bits(&z), crate::cpu::bits(&z1), "z");
        assert_eq!(crate::cpu::bits(&eps), crate::cpu::bits(&eps1), "ε");
    }
}
