//! CPU twin of shaders/corrupt.wgsl: the denoising autoencoder's input corruption (Gaussian
//! noise clipped to [0, 1], masking noise, salt and pepper), drawn from Philox4x32-10 keyed by
//! (seed, step, stream, element) so the GPU and the twin corrupt the same pixels.

use num_traits::Float;

use crate::cpu::philox::{box_muller, philox4x32_10, uniform_closed_open};
use crate::cpu::reparameterize::NoiseKey;
use crate::cpu::{check_lens, check_nonzero, lit};
use crate::error::{Error, Result};

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

/// y (n) = `noise` applied to the clean x (n), with the noise keyed by `key`.
pub fn corrupt<T: Float>(y: &mut [T], x: &[T], noise: Noise, key: NoiseKey) -> Result<()> {
    let n = x.len();
    check_nonzero("corrupt", &[("n", n)])?;
    check_lens("corrupt", &[("y", y.len(), n)])?;
    let (kind, amount) = noise.kind_and_amount();
    let amount = f64::from(amount);
    for g in 0..n.div_ceil(4) {
        let bits = philox4x32_10(
            [g as u32, key.step, key.stream, 0],
            [key.seed as u32, (key.seed >> 32) as u32],
        );
        let [n0, n1] = box_muller(bits[0], bits[1]);
        let [n2, n3] = box_muller(bits[2], bits[3]);
        let normals = [n0, n1, n2, n3];
        for j in 0..4 {
            let i = 4 * g + j;
            if i < n {
                let u = uniform_closed_open(bits[j]);
                y[i] = corrupt_one(x[i], kind, amount, normals[j], u);
            }
        }
    }
    Ok(())
}

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
