//! Using a trained model: encode rows to codes (the AE's code, the VAE's μ), decode codes to
//! pixel values in [0, 1], and reconstruct (decode ∘ encode), on the GPU or the CPU twins.
//! The encoder and decoder are forward-only graphs whose parameters load from a checkpoint
//! by name.

use std::path::Path;

use crate::error::{check_host_memory, host_vec, Error, Result};
use crate::graph::cpu::CpuExecutor;
use crate::graph::gpu::GpuExecutor;
use crate::graph::plan::Plan;
use crate::graph::{Graph, LossKind, RunConfig, Samples, TensorId, TrainData};
use crate::io::checkpoint;
use crate::model::ModelConfig;
use crate::train::Device;

/// Rows run through the forward graphs at a time.
pub const INFERENCE_BATCH: usize = 256;

/// Runs a forward-only graph over every row of `data` with the checkpoint's parameters and
/// returns `output` for each row.
fn run_graph(
    device: Device,
    checkpoint_dir: &Path,
    graph: Graph,
    output: TensorId,
    data: TrainData,
) -> Result<Vec<f32>> {
    Ok(run_graph_outputs(device, checkpoint_dir, graph, &[output], data)?.remove(0))
}

/// Several outputs of one forward pass of `graph` over `data`.
fn run_graph_outputs(
    device: Device,
    checkpoint_dir: &Path,
    graph: Graph,
    outputs: &[TensorId],
    data: TrainData,
) -> Result<Vec<Vec<f32>>> {
    // The outputs must fit the host: checked before the data goes to the device.
    let bytes: u128 = outputs
        .iter()
        .map(|&t| data.rows as u128 * graph.tensor(t).cols as u128 * 4)
        .sum();
    check_host_memory(bytes, &format!("the outputs of {} rows", data.rows))?;
    let plan = Plan::compile_inference(graph, outputs)?;
    let state = checkpoint::load_state(checkpoint_dir, &plan)?;
    let run = RunConfig {
        adam: Default::default(),
        seed: 0,
        total_steps: 1,
    };
    match device {
        Device::Gpu(ctx) => GpuExecutor::new(ctx, &plan, &state.params, data, Some(data), run)?
            .infer_outputs(outputs),
        Device::Cpu => CpuExecutor::<f32>::new(&plan, &state.params, data, Some(data), run)?
            .infer_outputs(outputs),
    }
}

/// An error unless `data`'s rows are as wide as the model's input.
fn check_width(model: &ModelConfig, data: &TrainData) -> Result<()> {
    if data.width != model.input {
        return Err(Error::InvalidArgument(format!(
            "the model takes {} values per row, the data has {}",
            model.input, data.width
        )));
    }
    Ok(())
}

fn batch_for(rows: usize) -> usize {
    rows.clamp(1, INFERENCE_BATCH)
}

/// The codes (rows, latent) of `data` (rows, input): the AE's code layer or the VAE's μ.
pub fn encode(
    device: Device,
    model: &ModelConfig,
    checkpoint_dir: &Path,
    data: TrainData,
) -> Result<Vec<f32>> {
    check_width(model, &data)?;
    let (graph, code) = model.build_encoder(batch_for(data.rows))?;
    run_graph(device, checkpoint_dir, graph, code, data)
}

/// Pixel values (rows, input) in [0, 1] for codes (rows, latent), row-major; a conditional
/// model also takes one label per code.
pub fn decode(
    device: Device,
    model: &ModelConfig,
    checkpoint_dir: &Path,
    codes: &[f32],
    labels: Option<&[u8]>,
) -> Result<Vec<f32>> {
    if codes.is_empty() || !codes.len().is_multiple_of(model.latent) {
        return Err(Error::InvalidArgument(format!(
            "{} code values do not make rows of {}",
            codes.len(),
            model.latent
        )));
    }
    if codes.iter().any(|c| !c.is_finite()) {
        return Err(Error::InvalidArgument(
            "a code value is NaN or infinite".into(),
        ));
    }
    let rows = codes.len() / model.latent;
    let (graph, pixels) = model.build_decoder(batch_for(rows))?;
    let data = TrainData {
        labels,
        ..TrainData::new(Samples::F32(codes), rows, model.latent)
    };
    run_graph(device, checkpoint_dir, graph, pixels, data)
}

/// decode(encode(data)): the model's reconstruction of each row (the VAE decodes its mean),
/// in one forward pass of encoder and decoder.
pub fn reconstruct(
    device: Device,
    model: &ModelConfig,
    checkpoint_dir: &Path,
    data: TrainData,
) -> Result<Vec<f32>> {
    check_width(model, &data)?;
    let (graph, pixels) = model.build_reconstruction(batch_for(data.rows))?;
    run_graph(device, checkpoint_dir, graph, pixels, data)
}

/// `rows` codes drawn from the prior N(0, 1) with Philox keyed by `seed` (as the GPU draws);
/// an error when Philox's 2³² groups of 4 cannot key them all or the host cannot hold them.
pub fn prior_codes(model: &ModelConfig, rows: usize, seed: u64) -> Result<Vec<f32>> {
    let n = rows
        .checked_mul(model.latent)
        .filter(|&n| n.div_ceil(4) <= u32::MAX as usize)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{rows} codes of {} values: more than Philox's 2^32 groups of 4 draws",
                model.latent
            ))
        })?;
    let mut codes = host_vec(0.0f32, n, &format!("{rows} prior codes"))?;
    let normals = (0..n.div_ceil(4) as u32)
        .flat_map(|g| crate::cpu::philox::normals_for_group(seed, 0, 0, g));
    for (code, z) in codes.iter_mut().zip(normals) {
        *code = z as f32;
    }
    Ok(codes)
}

/// A denoising run over a data set: the corrupted rows, the model's reconstructions of them,
/// and the mean squared error per value of each against the clean rows.
#[derive(Clone, Debug)]
pub struct Denoised {
    pub noisy: Vec<f32>,
    pub denoised: Vec<f32>,
    pub noisy_mse: f64,
    pub denoised_mse: f64,
}

/// Corrupts every row of `data` with `noise` (Philox keyed by `seed`, as in training) and
/// reconstructs the corrupted rows: what a denoising autoencoder is for. Works with any
/// model of the right width, so a plain autoencoder can be compared on the same noise.
pub fn denoise(
    device: Device,
    model: &ModelConfig,
    checkpoint_dir: &Path,
    data: TrainData,
    noise: crate::cpu::corrupt::Noise,
    seed: u64,
) -> Result<Denoised> {
    data.check()?;
    let clean = data.samples.to_f32();
    let mut noisy = vec![0.0; clean.len()];
    let key = crate::cpu::reparameterize::NoiseKey {
        seed,
        step: 0,
        stream: crate::model::NOISE_STREAM,
    };
    crate::cpu::corrupt::corrupt(&mut noisy, &clean, noise, key)?;
    let noisy_data = TrainData {
        samples: Samples::F32(&noisy),
        ..data
    };
    let denoised = reconstruct(device, model, checkpoint_dir, noisy_data)?;
    Ok(Denoised {
        noisy_mse: mean_squared_error(&noisy, &clean),
        denoised_mse: mean_squared_error(&denoised, &clean),
        noisy,
        denoised,
    })
}

/// Mean of (a − b)² over every value, in f64.
pub fn mean_squared_error(a: &[f32], b: &[f32]) -> f64 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    sum / a.len().max(1) as f64
}

/// Below this magnitude a code value counts as near zero.
pub const NEAR_ZERO: f32 = 0.01;

/// How sparse a set of codes is: what a sparse autoencoder is judged by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CodeSparsity {
    /// Mean of the code values.
    pub mean_activation: f64,
    /// Share of code values with |value| < NEAR_ZERO.
    pub near_zero: f64,
    /// Share of code units that are near zero for every row.
    pub dead_units: f64,
}

/// Sparsity figures of codes (rows, width), row-major.
pub fn code_sparsity(codes: &[f32], width: usize) -> Result<CodeSparsity> {
    if width == 0 || codes.is_empty() || !codes.len().is_multiple_of(width) {
        return Err(Error::InvalidArgument(format!(
            "{} code values do not make rows of {width}",
            codes.len()
        )));
    }
    let near = |v: f32| v.abs() < NEAR_ZERO;
    let mut unit_alive = vec![false; width];
    for row in codes.chunks(width) {
        for (alive, &v) in unit_alive.iter_mut().zip(row) {
            *alive |= !near(v);
        }
    }
    let n = codes.len() as f64;
    Ok(CodeSparsity {
        mean_activation: codes.iter().map(|&v| f64::from(v)).sum::<f64>() / n,
        near_zero: codes.iter().filter(|&&v| near(v)).count() as f64 / n,
        dead_units: unit_alive.iter().filter(|&&a| !a).count() as f64 / width as f64,
    })
}

/// Anomaly scores of rows: how badly the model explains each one.
#[derive(Clone, Debug)]
pub struct Scores {
    /// Mean squared error per value of each row's reconstruction (the VAE decodes its mean).
    pub reconstruction: Vec<f64>,
    /// The VAE's negative ELBO per row in nats (one sample of z, the evaluation noise):
    /// reconstruction term + KL. None for autoencoders.
    pub negative_elbo: Option<Vec<f64>>,
}

impl Scores {
    /// The score rows are flagged by: the negative ELBO for a VAE, else the reconstruction
    /// error.
    pub fn primary(&self) -> &[f64] {
        self.negative_elbo
            .as_deref()
            .unwrap_or(&self.reconstruction)
    }
}

/// Scores every row of `data`. Training-time input noise is not applied.
pub fn score(
    device: Device,
    model: &ModelConfig,
    checkpoint_dir: &Path,
    data: TrainData,
) -> Result<Scores> {
    data.check()?;
    let clean = data.samples.to_f32();
    let rebuilt = reconstruct(device, model, checkpoint_dir, data)?;
    let reconstruction = clean
        .chunks(data.width)
        .zip(rebuilt.chunks(data.width))
        .map(|(x, y)| mean_squared_error(x, y))
        .collect();
    let negative_elbo = match model.kind {
        crate::model::ModelKind::Vae { .. } => {
            Some(negative_elbo(device, model, checkpoint_dir, data)?)
        }
        crate::model::ModelKind::Autoencoder => None,
    };
    Ok(Scores {
        reconstruction,
        negative_elbo,
    })
}

/// Per row: the reconstruction term + KL of the VAE's loss (β = 1), in nats.
fn negative_elbo(
    device: Device,
    model: &ModelConfig,
    checkpoint_dir: &Path,
    data: TrainData,
) -> Result<Vec<f64>> {
    let plain = ModelConfig {
        kind: crate::model::ModelKind::Vae { beta: 1.0 },
        noise: None,
        importance_samples: None,
        ..model.clone()
    };
    let (graph, _) = plain.build(batch_for(data.rows))?;
    // (per-row tensor, its weight in the loss): the Gaussian likelihood's term is
    // ½ Σ (x − μ)², as in training; BCE and KL count once.
    let terms: Vec<(TensorId, f64)> = graph
        .ops
        .iter()
        .filter_map(|op| match *op {
            crate::graph::Op::Loss { per_row, kind, .. } => {
                Some((per_row, if kind == LossKind::Mse { 0.5 } else { 1.0 }))
            }
            crate::graph::Op::Kl { per_row, .. } => Some((per_row, 1.0)),
            _ => None,
        })
        .collect();
    let outputs: Vec<TensorId> = terms.iter().map(|&(term, _)| term).collect();
    let values = run_graph_outputs(device, checkpoint_dir, graph, &outputs, data)?;
    let mut total = vec![0.0f64; data.rows];
    for ((_, weight), values) in terms.iter().zip(values) {
        for (t, v) in total.iter_mut().zip(values) {
            *t += weight * f64::from(v);
        }
    }
    Ok(total)
}

/// The value at percentile `p` (0..=100) of `values`, by the nearest-rank rule.
pub fn percentile(values: &[f64], p: f64) -> Result<f64> {
    if values.is_empty() || !(0.0..=100.0).contains(&p) {
        return Err(Error::InvalidArgument(format!(
            "percentile {p} of {} values: it needs values and p in [0, 100]",
            values.len()
        )));
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Ok(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A VAE's importance-weighted bound on a data set beside its ELBO, both from the same draws.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct ImportanceWeighted {
    pub k: usize,
    pub rows: usize,
    /// −IWAE bound: an upper bound on −log p(x), in nats per example.
    pub iw_nats: f64,
    /// −ELBO (reconstruction + analytic KL), in nats per example, averaged over the k draws.
    pub elbo_nats: f64,
    /// Both in bits per dimension: nats / (input · ln 2).
    pub iw_bits_per_dim: f64,
    pub elbo_bits_per_dim: f64,
}

/// Data rows per evaluation batch for k samples each: about 1024 batch rows.
fn groups_for(k: usize, rows: usize) -> usize {
    (1024 / k).clamp(1, rows.max(1))
}

/// The importance-weighted bound (Burda et al. 2016) with `k` samples per row, and the ELBO
/// from the same draws (noise keyed by `seed`), over every row of `data`. For a Gaussian
/// likelihood both leave out the constant D/2·log 2π, as the training loss does.
/// `progress` gets (rows done, rows in all) as the passes go (a long K takes minutes on a
/// slow adapter).
pub fn importance_weighted(
    device: Device,
    model: &ModelConfig,
    checkpoint_dir: &Path,
    data: TrainData,
    (k, seed): (usize, u64),
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImportanceWeighted> {
    data.check()?;
    if data.width != model.input {
        return Err(Error::InvalidArgument(format!(
            "the model takes {} values per row, the data has {}",
            model.input, data.width
        )));
    }
    if k == 0 {
        return Err(Error::InvalidArgument(
            "K = 0 samples: the importance-weighted bound needs at least 1".into(),
        ));
    }
    let graph = model.build_importance_weighted(groups_for(k, data.rows), k)?;
    let plan = Plan::compile_evaluation(graph)?;
    let state = checkpoint::load_state(checkpoint_dir, &plan)?;
    let run = RunConfig {
        adam: Default::default(),
        seed,
        total_steps: 1,
    };
    let totals = match device {
        Device::Gpu(ctx) => GpuExecutor::new(ctx, &plan, &state.params, data, Some(data), run)?
            .evaluate_with_progress(progress)?,
        Device::Cpu => CpuExecutor::<f32>::new(&plan, &state.params, data, Some(data), run)?
            .evaluate_with_progress(progress)?,
    };
    // Per example: BCE and KL count once (β = 1 here), Σ squared error ½; each term is
    // summed over its rows, K a data row.
    let (mut iw, mut elbo) = (0.0, 0.0);
    for (term, total) in plan.losses.iter().zip(totals) {
        let visits = data.rows * plan.graph.rows_per_data_row(term.per_row);
        let per_example = total / visits as f64;
        match term.kind {
            LossKind::Iw => iw = per_example,
            LossKind::Mse => elbo += 0.5 * per_example,
            _ => elbo += per_example,
        }
    }
    let bits = (model.input as f64) * std::f64::consts::LN_2;
    Ok(ImportanceWeighted {
        k,
        rows: data.rows,
        iw_nats: iw,
        elbo_nats: elbo,
        iw_bits_per_dim: iw / bits,
        elbo_bits_per_dim: elbo / bits,
    })
}
