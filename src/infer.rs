//! Using a trained model: encode rows to codes (the AE's code, the VAE's μ), decode codes to
//! pixel values in [0, 1], and reconstruct (decode ∘ encode), on the GPU or the CPU twins.
//! The encoder and decoder are forward-only graphs whose parameters load from a checkpoint
//! by name.

use std::path::Path;

use crate::error::{Error, Result};
use crate::graph::cpu::CpuExecutor;
use crate::graph::gpu::GpuExecutor;
use crate::graph::plan::Plan;
use crate::graph::{Graph, RunConfig, Samples, TensorId, TrainData};
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
    let plan = Plan::compile_inference(graph)?;
    let state = checkpoint::load_state(checkpoint_dir, &plan)?;
    let run = RunConfig {
        adam: Default::default(),
        seed: 0,
        total_steps: 1,
    };
    match device {
        Device::Gpu(ctx) => {
            GpuExecutor::new(ctx, &plan, &state.params, data, Some(data), run)?.infer(output)
        }
        Device::Cpu => {
            CpuExecutor::<f32>::new(&plan, &state.params, data, Some(data), run)?.infer(output)
        }
    }
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
    if data.width != model.input {
        return Err(Error::InvalidArgument(format!(
            "the model takes {} values per row, the data has {}",
            model.input, data.width
        )));
    }
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
    if codes.is_empty() || codes.len() % model.latent != 0 {
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

/// decode(encode(data)): the model's reconstruction of each row (the VAE decodes its mean).
pub fn reconstruct(
    device: Device,
    model: &ModelConfig,
    checkpoint_dir: &Path,
    data: TrainData,
) -> Result<Vec<f32>> {
    let codes = encode(device, model, checkpoint_dir, data)?;
    decode(device, model, checkpoint_dir, &codes, data.labels)
}

/// `rows` codes drawn from the prior N(0, 1) with Philox keyed by `seed` (as the GPU draws).
pub fn prior_codes(model: &ModelConfig, rows: usize, seed: u64) -> Vec<f32> {
    let n = rows * model.latent;
    (0..n.div_ceil(4) as u32)
        .flat_map(|g| crate::cpu::philox::normals_for_group(seed, 0, 0, g))
        .take(n)
        .map(|z| z as f32)
        .collect()
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
    let clean: Vec<f32> = match data.samples {
        Samples::U8(bytes) => bytes.iter().map(|&b| f32::from(b) / 255.0).collect(),
        Samples::F32(values) => values.to_vec(),
    };
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
    if width == 0 || codes.is_empty() || codes.len() % width != 0 {
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
