//! The autoencoder family as graphs: the autoencoder (MSE or BCE reconstruction) and the VAE
//! (Gaussian latent, reparameterization, KL weighted by β). Parameters are initialised as
//! PyTorch's nn.Linear does, U(±1/√fan_in) for weights and biases, so runs compare with it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use crate::cpu::corrupt::Noise;
use crate::error::{host_vec, Error, Result};
use crate::graph::plan::{Location, Plan};
use crate::graph::{Graph, LossKind, Penalty, Role, TensorId};
use crate::kernels::activation::Activation;

/// The Philox stream of the denoising autoencoder's input noise (the VAE's ε uses stream 0).
pub const NOISE_STREAM: u32 = 1;

/// The decoder's output distribution, which sets the reconstruction loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Likelihood {
    /// Pixels as Bernoulli probabilities: BCE from logits.
    Bernoulli,
    /// Pixels as Gaussian means: squared error.
    Gaussian,
}

/// Which member of the family.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Deterministic code; loss = reconstruction (MSE as a mean over pixels, or BCE in nats
    /// per example).
    Autoencoder,
    /// Gaussian code with μ and logvar heads; loss = Σ reconstruction + β·Σ KL per batch, as
    /// the PyTorch VAE example sums it. β = 1 is the plain VAE.
    Vae { beta: f32 },
}

/// A sparse autoencoder's penalty on its code, with its weight λ.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Sparsity {
    /// λ · Σ_c |code| per example, averaged over the batch.
    L1 { weight: f32 },
    /// λ · Σ_c KL(ρ ‖ ρ̂_c), ρ̂_c the batch mean of code unit c; the code becomes a sigmoid.
    Kl { rho: f32, weight: f32 },
}

impl Sparsity {
    /// Parses `l1:λ` or `kl:ρ:λ` (e.g. l1:1e-3, kl:0.05:3).
    pub fn parse(text: &str) -> Result<Sparsity> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "sparsity {text:?}: {why} (expected l1:λ or kl:ρ:λ, e.g. l1:0.001 or kl:0.05:3)"
            ))
        };
        let parts: Vec<&str> = text.split(':').map(str::trim).collect();
        let number = |s: &str| s.parse::<f32>().map_err(|_| bad("not a number"));
        let sparsity = match parts[..] {
            ["l1", weight] => Sparsity::L1 {
                weight: number(weight)?,
            },
            ["kl", rho, weight] => Sparsity::Kl {
                rho: number(rho)?,
                weight: number(weight)?,
            },
            _ => return Err(bad("unknown form")),
        };
        sparsity.check()?;
        Ok(sparsity)
    }

    /// λ must be finite and ≥ 0; ρ strictly between 0 and 1.
    pub fn check(&self) -> Result<()> {
        if !(self.weight().is_finite() && self.weight() >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "sparsity weight λ = {}: it must be finite and ≥ 0",
                self.weight()
            )));
        }
        if let Sparsity::Kl { rho, .. } = *self {
            crate::cpu::kl_sparsity::check_rho(rho)?;
        }
        Ok(())
    }

    pub fn weight(&self) -> f32 {
        match *self {
            Sparsity::L1 { weight } | Sparsity::Kl { weight, .. } => weight,
        }
    }

    /// The graph's penalty op.
    pub fn penalty(&self) -> Penalty {
        match *self {
            Sparsity::L1 { .. } => Penalty::L1,
            Sparsity::Kl { rho, .. } => Penalty::KlSparsity { rho },
        }
    }
}

impl std::fmt::Display for Sparsity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Sparsity::L1 { weight } => write!(f, "l1:{weight}"),
            Sparsity::Kl { rho, weight } => write!(f, "kl:{rho}:{weight}"),
        }
    }
}

/// The shape of a model: input → encoder widths → latent → decoder widths → input.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    pub kind: ModelKind,
    pub input: usize,
    pub encoder: Vec<usize>,
    pub latent: usize,
    pub decoder: Vec<usize>,
    pub activation: Activation,
    pub likelihood: Likelihood,
    /// Corrupts the input at every training step, the loss taken against the clean input:
    /// a denoising autoencoder (or VAE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<Noise>,
    /// A penalty on the code: a sparse autoencoder (autoencoders only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparsity: Option<Sparsity>,
    /// Conditioned on a class label, one-hot, joined to the encoder's input and to the code
    /// (a conditional VAE or autoencoder): the number of classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Train a VAE with the importance-weighted bound of this many samples per row (IWAE,
    /// Burda et al. 2016) instead of the ELBO. The BCE and KL terms are still reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance_samples: Option<usize>,
    /// The autoencoder's code layer without an activation: a linear bottleneck, whose codes
    /// take any sign and cannot die as a ReLU code's can (autoencoders only; the VAE's μ is
    /// linear already).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub linear_code: bool,
}

/// The tensors of a built model that callers read.
#[derive(Clone, Copy, Debug)]
pub struct ModelTensors {
    pub input: TensorId,
    /// The code: the AE's code layer; the VAE's μ | logvar (μ in its first latent columns).
    pub code: TensorId,
    /// The decoder's output: logits (Bernoulli) or means (Gaussian).
    pub output: TensorId,
    /// The reconstruction loss of each row (BCE, or Σ squared error).
    pub recon: TensorId,
}

impl ModelConfig {
    /// The VAE of the PyTorch examples: input-hidden-latent, ReLU, Bernoulli likelihood.
    pub fn vae(input: usize, hidden: usize, latent: usize) -> Self {
        ModelConfig {
            kind: ModelKind::Vae { beta: 1.0 },
            input,
            encoder: vec![hidden],
            latent,
            decoder: vec![hidden],
            activation: Activation::Relu,
            likelihood: Likelihood::Bernoulli,
            noise: None,
            sparsity: None,
            classes: None,
            importance_samples: None,
            linear_code: false,
        }
    }

    /// An autoencoder input → code → input with ReLU and MSE (784-256-784 and the like).
    pub fn autoencoder(input: usize, code: usize) -> Self {
        ModelConfig {
            kind: ModelKind::Autoencoder,
            input,
            encoder: Vec::new(),
            latent: code,
            decoder: Vec::new(),
            activation: Activation::Relu,
            likelihood: Likelihood::Gaussian,
            noise: None,
            sparsity: None,
            classes: None,
            importance_samples: None,
            linear_code: false,
        }
    }

    /// Rejects zero widths and a negative or non-finite β.
    pub fn check(&self) -> Result<()> {
        if self.input == 0
            || self.latent == 0
            || self.encoder.iter().chain(&self.decoder).any(|&w| w == 0)
        {
            return Err(Error::InvalidArgument(format!(
                "model widths must be at least 1 (input {}, encoder {:?}, latent {}, decoder {:?})",
                self.input, self.encoder, self.latent, self.decoder
            )));
        }
        if let ModelKind::Vae { beta } = self.kind {
            if !(beta.is_finite() && beta >= 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "β must be finite and ≥ 0, got {beta}"
                )));
            }
        }
        if let Some(noise) = self.noise {
            noise.check()?;
        }
        if let Some(k) = self.importance_samples {
            if k == 0 || !matches!(self.kind, ModelKind::Vae { .. }) {
                return Err(Error::InvalidArgument(format!(
                    "the IWAE objective needs a VAE and K ≥ 1 samples (K = {k})"
                )));
            }
        }
        if self.classes == Some(0) {
            return Err(Error::InvalidArgument(
                "a conditional model needs at least one class".into(),
            ));
        }
        if self.linear_code && self.kind != ModelKind::Autoencoder {
            return Err(Error::InvalidArgument(
                "a linear code is for autoencoders (the VAE's μ is linear already)".into(),
            ));
        }
        if self.linear_code && matches!(self.sparsity, Some(Sparsity::Kl { .. })) {
            return Err(Error::InvalidArgument(
                "the KL sparsity penalty needs a sigmoid code, not a linear one (use l1:λ)".into(),
            ));
        }
        if let Some(sparsity) = self.sparsity {
            sparsity.check()?;
            if self.kind != ModelKind::Autoencoder {
                return Err(Error::InvalidArgument(
                    "a sparsity penalty is for autoencoders (the VAE's KL already shapes its code)"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// The activation of the autoencoder's code layer: a sigmoid for the KL sparsity penalty
    /// (its code must lie in (0, 1)), none for a linear code, else the model's activation.
    pub fn code_activation(&self) -> Option<Activation> {
        match self.sparsity {
            Some(Sparsity::Kl { .. }) => Some(Activation::Sigmoid),
            _ if self.linear_code => None,
            _ => Some(self.activation),
        }
    }

    /// The autoencoder's code from its code layer's output `y`.
    fn code_of(&self, g: &mut Graph, y: TensorId) -> TensorId {
        match self.code_activation() {
            Some(activation) => g.activation(activation, y),
            None => y,
        }
    }

    /// The forward graph for batches of `batch` rows.
    /// With `importance_samples` = K the encoder runs on the `batch` data rows once, and
    /// its μ | logvar is repeated for K samples of each (batch · K rows from z on, the data
    /// and labels repeated beside them); the loss is the IWAE bound.
    pub fn build(&self, batch: usize) -> Result<(Graph, ModelTensors)> {
        self.check()?;
        let k = self.importance_samples.unwrap_or(1);
        let mut g = Graph::new(batch)?;
        let input = g.input("x", self.input)?;
        let label = self.classes.map(|c| g.condition(c)).transpose()?;
        let mut h = match self.noise {
            Some(noise) => g.corrupt(input, noise, NOISE_STREAM)?,
            None => input,
        };
        h = join_label(&mut g, h, label)?;
        for (i, &width) in self.encoder.iter().enumerate() {
            let y = g.linear(&format!("encoder.{i}"), h, width)?;
            h = g.activation(self.activation, y);
        }
        let (code, z, kl) = match self.kind {
            ModelKind::Autoencoder => {
                let y = g.linear("code", h, self.latent)?;
                let code = self.code_of(&mut g, y);
                (code, code, None)
            }
            ModelKind::Vae { beta } => {
                // μ and logvar side by side: one matmul, forward and backward.
                let latent = self.latent;
                let stats = g.linear_stacked(&[("mu", latent), ("logvar", latent)], h)?;
                // IWAE: μ | logvar of each data row for each of its K samples.
                let samples = match self.importance_samples {
                    Some(k) => g.repeat_rows(stats, k)?,
                    None => stats,
                };
                let z = g.reparameterize(samples, 0)?;
                (stats, z, Some((stats, samples, beta)))
            }
        };
        // The decoder's rows: the batch's, or K samples of each row (IWAE).
        let (target, label) = match self.importance_samples {
            Some(k) => (
                g.repeat_rows(input, k)?,
                label.map(|l| g.repeat_rows(l, k)).transpose()?,
            ),
            None => (input, label),
        };
        h = join_label(&mut g, z, label)?;
        for (i, &width) in self.decoder.iter().enumerate() {
            let y = g.linear(&format!("decoder.{i}"), h, width)?;
            h = g.activation(self.activation, y);
        }
        let output = g.linear("output", h, self.input)?;
        let weight = self.reconstruction_weight(batch);
        let kind = match self.likelihood {
            Likelihood::Bernoulli => LossKind::Bce,
            Likelihood::Gaussian => LossKind::Mse,
        };
        // IWAE: the ELBO's terms are only reported; the bound is the loss, summed over the
        // batch's data rows like the VAE's (each row's bound counts in its K rows: 1/K).
        let iwae = self.importance_samples.is_some();
        let elbo_weight = |w: f32| if iwae { 0.0 } else { w };
        let recon = g.loss(kind, output, target, elbo_weight(weight))?;
        // The KL of each data row (an IWAE's K samples of a row share its μ | logvar); the
        // log weights read μ | logvar for each sample.
        if let Some((stats, samples, beta)) = kl {
            g.kl(stats, elbo_weight(beta))?;
            if iwae {
                let eps = reparameterize_noise(&g, z)?;
                g.importance_weighted(recon, weight, z, eps, samples, k, 1.0 / k as f32)?;
            }
        }
        if let Some(sparsity) = self.sparsity {
            g.penalty(sparsity.penalty(), code, sparsity.weight() / batch as f32)?;
        }
        Ok((
            g,
            ModelTensors {
                input,
                code,
                output,
                recon,
            },
        ))
    }

    /// A VAE's evaluation graph for the importance-weighted bound with `k` samples per data
    /// row, `groups` data rows per batch: the VAE (β = 1, no input noise) on each row
    /// repeated k times, its per-row BCE (or ½ Σ squared error) and KL, and the bound
    /// −log(1/k Σ w) as the loss term "iw". Parameter names match [`Self::build`]'s.
    pub fn build_importance_weighted(&self, groups: usize, k: usize) -> Result<Graph> {
        if !matches!(self.kind, ModelKind::Vae { .. }) {
            return Err(Error::InvalidArgument(
                "the importance-weighted bound is for VAEs: an autoencoder has no likelihood"
                    .into(),
            ));
        }
        if k == 0 {
            return Err(Error::InvalidArgument(
                "K = 0 samples: the importance-weighted bound needs at least 1".into(),
            ));
        }
        let plain = ModelConfig {
            kind: ModelKind::Vae { beta: 1.0 },
            noise: None,
            importance_samples: Some(k),
            ..self.clone()
        };
        Ok(plain.build(groups)?.0)
    }

    /// The encoder alone, for inference: x → the code (the AE's code layer, the VAE's μ).
    /// Parameter names match [`Self::build`]'s, so a checkpoint loads into it by name.
    pub fn build_encoder(&self, batch: usize) -> Result<(Graph, TensorId)> {
        self.check()?;
        let mut g = Graph::new(batch)?;
        let x = g.input("x", self.input)?;
        let label = self.classes.map(|c| g.condition(c)).transpose()?;
        let code = self.encode_into(&mut g, x, label)?;
        Ok((g, code))
    }

    /// The decoder alone, for inference: a code → pixel values in [0, 1] (sigmoid of the
    /// logits for a Bernoulli likelihood, the means for a Gaussian one).
    pub fn build_decoder(&self, batch: usize) -> Result<(Graph, TensorId)> {
        self.check()?;
        let mut g = Graph::new(batch)?;
        let z = g.input("z", self.latent)?;
        let label = self.classes.map(|c| g.condition(c)).transpose()?;
        let pixels = self.decode_into(&mut g, z, label)?;
        Ok((g, pixels))
    }

    /// Encoder and decoder in one graph, for inference: x → the code → its decoded pixel
    /// values (the VAE decodes μ), one pass with no codes read back between them.
    pub fn build_reconstruction(&self, batch: usize) -> Result<(Graph, TensorId)> {
        self.check()?;
        let mut g = Graph::new(batch)?;
        let x = g.input("x", self.input)?;
        let label = self.classes.map(|c| g.condition(c)).transpose()?;
        let code = self.encode_into(&mut g, x, label)?;
        let pixels = self.decode_into(&mut g, code, label)?;
        Ok((g, pixels))
    }

    /// The encoder's ops on `x` (joined to `label`): the code.
    fn encode_into(&self, g: &mut Graph, x: TensorId, label: Option<TensorId>) -> Result<TensorId> {
        let mut h = join_label(g, x, label)?;
        for (i, &width) in self.encoder.iter().enumerate() {
            let y = g.linear(&format!("encoder.{i}"), h, width)?;
            h = g.activation(self.activation, y);
        }
        Ok(match self.kind {
            ModelKind::Autoencoder => {
                let y = g.linear("code", h, self.latent)?;
                self.code_of(g, y)
            }
            ModelKind::Vae { .. } => g.linear("mu", h, self.latent)?,
        })
    }

    /// The decoder's ops on the code `z` (joined to `label`): pixel values in [0, 1] for a
    /// Bernoulli likelihood (the sigmoid of the logits), the means for a Gaussian one.
    fn decode_into(&self, g: &mut Graph, z: TensorId, label: Option<TensorId>) -> Result<TensorId> {
        let mut h = join_label(g, z, label)?;
        for (i, &width) in self.decoder.iter().enumerate() {
            let y = g.linear(&format!("decoder.{i}"), h, width)?;
            h = g.activation(self.activation, y);
        }
        let output = g.linear("output", h, self.input)?;
        Ok(match self.likelihood {
            Likelihood::Bernoulli => g.activation(Activation::Sigmoid, output),
            Likelihood::Gaussian => output,
        })
    }

    /// The weight of Σ per-row reconstruction loss in the training loss.
    fn reconstruction_weight(&self, batch: usize) -> f32 {
        match (self.kind, self.likelihood) {
            // nn.MSELoss(): the mean over every element.
            (ModelKind::Autoencoder, Likelihood::Gaussian) => 1.0 / (batch * self.input) as f32,
            // BCE summed over pixels, averaged over the batch: nats per example.
            (ModelKind::Autoencoder, Likelihood::Bernoulli) => 1.0 / batch as f32,
            // Unit-variance Gaussian: -log p = ½ Σ (x - μ)² + const; summed like PyTorch's VAE.
            (ModelKind::Vae { .. }, Likelihood::Gaussian) => 0.5,
            (ModelKind::Vae { .. }, Likelihood::Bernoulli) => 1.0,
        }
    }
}

/// The ε tensor the reparameterization of z saved.
fn reparameterize_noise(g: &Graph, z: TensorId) -> Result<TensorId> {
    g.ops
        .iter()
        .find_map(|op| match *op {
            crate::graph::Op::Reparameterize { z: out, eps, .. } if out == z => Some(eps),
            _ => None,
        })
        .ok_or_else(|| Error::InvalidArgument("z comes from no reparameterization".into()))
}

/// [h | label] for a conditional model, else h.
fn join_label(g: &mut Graph, h: TensorId, label: Option<TensorId>) -> Result<TensorId> {
    match label {
        Some(label) => g.concat(h, label),
        None => Ok(h),
    }
}

/// The flat parameter vector of a plan, initialised as PyTorch's nn.Linear: every parameter
/// U(±1/√fan_in), drawn in the plan's parameter order from `seed`; padding is zero. An error
/// when the host cannot hold them.
pub fn init_params(plan: &Plan, seed: u64) -> Result<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let what = format!("the model's {} parameters", plan.param_len);
    let mut params = host_vec(0.0, plan.param_len, &what)?;
    for t in plan.graph.parameters() {
        let tensor = plan.graph.tensor(t);
        let (Role::Parameter { init_bound }, Location::Params(offset)) =
            (&tensor.role, plan.location[t.0])
        else {
            continue;
        };
        for p in &mut params[offset..offset + tensor.len()] {
            *p = rng.random_range(-init_bound..=*init_bound);
        }
    }
    Ok(params)
}
