//! CPU twin of shaders/corrupt.wgsl: the denoising autoencoder's input corruption (Gaussian
//! noise clipped to [0, 1], masking noise, salt and pepper), drawn from Philox4x32-10 keyed by
//! (seed, step, stream, element) so the GPU and the twin corrupt the same pixels.

use num_traits::Float;

use crate::cpu::philox::{
    normals_for_groups, words_for_groups, BLOCK_GROUPS, MIN_GROUPS_PER_THREAD,
};
use crate::cpu::reparameterize::NoiseKey;
use crate::cpu::{check_lens, check_nonzero, lit, Real};
use crate::error::{Error, Result};
use crate::parallel::{for_each_part, threads_for};

/// How the input of a denoising autoencoder is corrupted.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Noise {
    /// x + σ·ε, ε ~ N(0, 1), clipped to the data range [0, 1].
    Gaussian { sigma: f32 },
    /// Each value set to 0 with probability p.
    Masking { p: f32 },
    /// Each value set to 0 or 1 (half each) with probability p.
    SaltAndPepper { p: f32 },
}

impl Noise {
    /// Parses `gaussian:σ`, `masking:p` (or `mask:p`) and `salt-pepper:p` (or `sp:p`).
    pub fn parse(text: &str) -> Result<Noise> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "noise {text:?}: {why} (expected gaussian:σ, masking:p or salt-pepper:p, e.g. gaussian:0.5)"
            ))
        };
        let (kind, amount) = text.split_once(':').ok_or_else(|| bad("no amount"))?;
        let amount: f32 = amount
            .trim()
            .parse()
            .map_err(|_| bad("the amount is not a number"))?;
        let noise = match kind.trim() {
            "gaussian" => Noise::Gaussian { sigma: amount },
            "masking" | "mask" => Noise::Masking { p: amount },
            "salt-pepper" | "salt-and-pepper" | "sp" => Noise::SaltAndPepper { p: amount },
            _ => return Err(bad("unknown kind")),
        };
        noise.check()?;
        Ok(noise)
    }

    /// σ must be finite and ≥ 0; p must be in [0, 1].
    pub fn check(&self) -> Result<()> {
        let ok = match *self {
            Noise::Gaussian { sigma } => sigma.is_finite() && sigma >= 0.0,
            Noise::Masking { p } | Noise::SaltAndPepper { p } => (0.0..=1.0).contains(&p),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "noise {self}: σ must be finite and ≥ 0, a probability p in [0, 1]"
            )))
        }
    }

    /// The shader's `kind` and `amount`.
    pub fn kind_and_amount(&self) -> (u32, f32) {
        match *self {
            Noise::Gaussian { sigma } => (0, sigma),
            Noise::Masking { p } => (1, p),
            Noise::SaltAndPepper { p } => (2, p),
        }
    }
}

impl std::fmt::Display for Noise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Noise::Gaussian { sigma } => write!(f, "gaussian:{sigma}"),
            Noise::Masking { p } => write!(f, "masking:{p}"),
            Noise::SaltAndPepper { p } => write!(f, "salt-pepper:{p}"),
        }
    }
}

/// y (n) = `noise` applied to the clean x (n), with the noise keyed by `key`. The Philox
/// groups are split over threads; each element is corrupted as on one thread.
pub fn corrupt<T: Real>(y: &mut [T], x: &[T], noise: Noise, key: NoiseKey) -> Result<()> {
    let n = x.len();
    check_nonzero("corrupt", &[("n", n)])?;
    check_lens("corrupt", &[("y", y.len(), n)])?;
    let groups = n.div_ceil(4);
    let part_len = 4 * groups.div_ceil(threads_for(groups, MIN_GROUPS_PER_THREAD));
    let parts: Vec<_> = y.chunks_mut(part_len).enumerate().collect();
    for_each_part(parts, |(part, y)| {
        let first = part * part_len;
        corrupt_groups(y, &x[first..first + y.len()], first / 4, noise, key)
    });
    Ok(())
}

/// y = x corrupted, for the elements of the groups from `first_group` on, a block of groups
/// at a time: the block's Philox words, then (for Gaussian noise alone) their normals, then
/// each element.
fn corrupt_groups<T: Float>(y: &mut [T], x: &[T], first_group: usize, noise: Noise, key: NoiseKey) {
    let mut words = [0u32; 4 * BLOCK_GROUPS];
    let mut normals = [0f64; 4 * BLOCK_GROUPS];
    let blocks = y
        .chunks_mut(4 * BLOCK_GROUPS)
        .zip(x.chunks(4 * BLOCK_GROUPS));
    for (b, (y, x)) in blocks.enumerate() {
        let len = 4 * y.len().div_ceil(4);
        let (words, normals) = (&mut words[..len], &mut normals[..len]);
        let first = first_group + b * BLOCK_GROUPS;
        match noise {
            Noise::Gaussian { sigma } => {
                normals_for_groups(normals, words, first, key);
                add_gaussian(y, x, f64::from(sigma), normals);
            }
            Noise::Masking { p } => {
                words_for_groups(words, first, key);
                mask(y, x, below(f64::from(p)), words)
            }
            Noise::SaltAndPepper { p } => {
                words_for_groups(words, first, key);
                let p = f64::from(p);
                salt_and_pepper(y, x, below(0.5 * p), below(p), words)
            }
        }
    }
}

/// y = clamp(x + σ·z, 0, 1).
fn add_gaussian<T: Float>(y: &mut [T], x: &[T], sigma: f64, normals: &[f64]) {
    for ((y, &x), &z) in y.iter_mut().zip(x).zip(normals) {
        *y = (x + lit::<T>(sigma * z)).max(T::zero()).min(T::one());
    }
}

/// y = 0 where the word's uniform is below the probability, else x.
fn mask<T: Float>(y: &mut [T], x: &[T], below_p: u32, words: &[u32]) {
    for ((y, &x), &w) in y.iter_mut().zip(x).zip(words) {
        *y = if w >> 8 < below_p { T::zero() } else { x };
    }
}

/// y = 0 where the word's uniform u < p/2, 1 where p/2 ≤ u < p, else x.
fn salt_and_pepper<T: Float>(y: &mut [T], x: &[T], below_half_p: u32, below_p: u32, words: &[u32]) {
    for ((y, &x), &w) in y.iter_mut().zip(x).zip(words) {
        let top = w >> 8;
        let salt_or_clean = if top < below_p { T::one() } else { x };
        *y = if top < below_half_p {
            T::zero()
        } else {
            salt_or_clean
        };
    }
}

/// The count of 24-bit tops m whose uniform m / 2^24
/// ([`philox::uniform_closed_open`](crate::cpu::philox::uniform_closed_open)) is below p in
/// [0, 1]: u < p ⇔ m < ⌈p·2^24⌉ (p·2^24 is exact in f64), an integer compare per element.
fn below(p: f64) -> u32 {
    (p * 16_777_216.0).ceil() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::philox::{box_muller, philox4x32_10, uniform_closed_open};

    /// One element corrupted as the shader's formula reads: the uniform compared in f64.
    fn corrupt_one<T: Float>(clean: T, kind: u32, amount: f64, normal: f64, u: f64) -> T {
        match kind {
            0 => (clean + lit::<T>(amount * normal))
                .max(T::zero())
                .min(T::one()),
            1 if u < amount => T::zero(),
            1 => clean,
            _ if u < 0.5 * amount => T::zero(),
            _ if u < amount => T::one(),
            _ => clean,
        }
    }

    /// The integer compare of `below` is the f64 compare u < p at and around each boundary,
    /// for p whose p·2^24 is an integer, or has a fraction below ½, or of ½.
    #[test]
    fn below_counts_the_tops_whose_uniform_is_below_p() {
        for p in [
            0.0f32,
            1e-7,
            0.01,
            0.15,
            0.25,
            0.3,
            0.5,
            0.7,
            1.0 - f32::EPSILON,
            1.0,
        ] {
            let p = f64::from(p);
            let edge = (p * 16_777_216.0).floor() as i64;
            for top in (edge - 2..=edge + 2).filter(|m| (0..1 << 24).contains(m)) {
                let u = uniform_closed_open((top as u32) << 8);
                assert_eq!((top as u32) < below(p), u < p, "p {p}, top {top}");
            }
        }
    }

    /// Split over threads (a last group of 3 elements), each kind corrupts each element as
    /// one serial loop over the groups does.
    #[test]
    fn threaded_corruption_gives_the_serial_loops_bits() {
        let n = 8 * MIN_GROUPS_PER_THREAD * 4 + 3;
        let x: Vec<f32> = (0..n).map(|i| (i % 17) as f32 / 16.0).collect();
        let key = NoiseKey {
            seed: 11,
            step: 4,
            stream: 2,
        };
        for noise in [
            Noise::Gaussian { sigma: 0.5 },
            Noise::Masking { p: 0.3 },
            Noise::SaltAndPepper { p: 0.2 },
        ] {
            let mut y = vec![f32::NAN; n];
            corrupt(&mut y, &x, noise, key).unwrap();
            let (kind, amount) = noise.kind_and_amount();
            let serial: Vec<f32> = (0..n)
                .map(|i| {
                    let g = (i / 4) as u32;
                    let bits = philox4x32_10(
                        [g, key.step, key.stream, 0],
                        [key.seed as u32, (key.seed >> 32) as u32],
                    );
                    let pair = box_muller(bits[i % 4 / 2 * 2], bits[i % 4 / 2 * 2 + 1]);
                    let u = uniform_closed_open(bits[i % 4]);
                    corrupt_one(x[i], kind, f64::from(amount), pair[i % 2], u)
                })
                .collect();
            assert_eq!(crate::cpu::bits(&y), crate::cpu::bits(&serial), "{noise}");
            assert!(
                y.iter().zip(&x).any(|(y, x)| y != x),
                "{noise} changed nothing"
            );
        }
    }
}
