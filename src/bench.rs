//! `latent bench` and the criterion benches: per-kernel GPU time at the reference model shapes
//! (timestamp queries where the adapter has them, else the wall clock around submit-and-wait
//! over many repetitions) as GFLOP/s or GB/s, and per training config the step time split
//! into CPU encode, submit and GPU time, with dispatches per step and the epoch time, at one
//! and several steps per submit; optionally the CPU twins for comparison. Everything is
//! returned as a [`BenchReport`] that serialises to JSON.
//!
//! This module sits at the edge of the library: it reads the clock, runs `git` for the commit,
//! and is not meant for a wasm build.

use std::str::FromStr;
use std::time::Instant;

use serde::Serialize;

use crate::cpu::matmul::MatmulShape;
use crate::error::{Error, Result};
use crate::gpu::{mib, time_gpu_median, GpuBuffer, GpuContext};
use crate::graph::cpu::CpuExecutor;
use crate::graph::gpu::GpuExecutor;
use crate::graph::plan::Plan;
use crate::graph::step_parts::step_parts;
use crate::graph::{RunConfig, Samples, TrainData};
use crate::kernels::adam::AdamConfig;
use crate::kernels::autotune::{candidates, describe, ShapeClass};
use crate::kernels::gather::DataShards;
use crate::kernels::matmul::{matmul_with_variant, MatmulVariant};
use crate::kernels::{self, activation::Activation, Dispatch};
use crate::model::{init_params, ModelConfig, Noise, Sparsity};

/// The training configs of issue 4, and the IWAE beside them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainConfig {
    /// VAE 784-400-20 at batch 128 (the PyTorch examples' VAE).
    Vae,
    /// Autoencoder 784-256-784, MSE, at batch 128.
    Ae,
    /// VAE 784-2048-2048-64 at batch 1024, where compute dominates (~50 GFLOP per step).
    WideVae,
    /// The VAE 784-400-20 trained on the IWAE bound with K = 5 at batch 128 (640 samples a
    /// step): opt-in, `--configs iwae`.
    Iwae,
    /// The conditional VAE 784-400-20 on 10 classes (the one-hot label joined to the input
    /// and to z) at batch 128: opt-in, `--configs cvae`.
    Cvae,
    /// The denoising autoencoder 784-256-784 (`train --model dae`: Gaussian noise, σ = 0.5,
    /// the loss against the clean input) at batch 128: opt-in, `--configs dae`.
    Dae,
    /// The sparse autoencoder 784-256-784 (`train --model sparse`: an L1 penalty of weight
    /// 0.001 on its ReLU code) at batch 128: opt-in, `--configs sparse`.
    Sparse,
}

impl TrainConfig {
    /// The configs timed when none are named (the IWAE only on request).
    pub const DEFAULT: [TrainConfig; 3] = [TrainConfig::Vae, TrainConfig::Ae, TrainConfig::WideVae];

    pub fn name(self) -> &'static str {
        match self {
            TrainConfig::Vae => "vae-784-400-20",
            TrainConfig::Ae => "ae-784-256-784",
            TrainConfig::WideVae => "wide-vae-784-2048-2048-64",
            TrainConfig::Iwae => "iwae-784-400-20-k5",
            TrainConfig::Cvae => "cvae-784-400-20-c10",
            TrainConfig::Dae => "dae-784-256-784-g0.5",
            TrainConfig::Sparse => "sparse-784-256-784-l1",
        }
    }

    pub fn model(self) -> ModelConfig {
        match self {
            TrainConfig::Vae => ModelConfig::vae(784, 400, 20),
            TrainConfig::Ae => ModelConfig::autoencoder(784, 256),
            TrainConfig::WideVae => ModelConfig {
                encoder: vec![2048, 2048],
                decoder: vec![2048, 2048],
                ..ModelConfig::vae(784, 2048, 64)
            },
            TrainConfig::Iwae => ModelConfig {
                importance_samples: Some(5),
                ..ModelConfig::vae(784, 400, 20)
            },
            TrainConfig::Cvae => ModelConfig {
                classes: Some(10),
                ..ModelConfig::vae(784, 400, 20)
            },
            TrainConfig::Dae => ModelConfig {
                noise: Some(Noise::Gaussian { sigma: 0.5 }),
                ..ModelConfig::autoencoder(784, 256)
            },
            TrainConfig::Sparse => ModelConfig {
                sparsity: Some(Sparsity::L1 { weight: 0.001 }),
                ..ModelConfig::autoencoder(784, 256)
            },
        }
    }

    pub fn batch(self) -> usize {
        match self {
            TrainConfig::WideVae => 1024,
            _ => 128,
        }
    }
}

impl FromStr for TrainConfig {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vae" => Ok(TrainConfig::Vae),
            "ae" => Ok(TrainConfig::Ae),
            "wide" | "wide-vae" => Ok(TrainConfig::WideVae),
            "iwae" => Ok(TrainConfig::Iwae),
            "cvae" => Ok(TrainConfig::Cvae),
            "dae" => Ok(TrainConfig::Dae),
            "sparse" => Ok(TrainConfig::Sparse),
            other => Err(Error::InvalidArgument(format!(
                "bench config {other:?}: expected vae, ae, wide, iwae, cvae, dae or sparse"
            ))),
        }
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The per-kernel table.
    pub kernels: bool,
    /// Add the large matmuls (4096³, and the wide VAE's 1024×2048×2048) to the kernel table.
    pub large: bool,
    /// Training configs to time (None: vae and ae, plus the wide VAE unless the adapter is
    /// a CPU, where one of its steps takes about half a minute).
    pub configs: Option<Vec<TrainConfig>>,
    /// Timed steps per measurement (None: 256 on a GPU, 16 on a CPU adapter, 8 for the wide
    /// VAE there); rounded up to whole submits.
    pub steps: Option<usize>,
    /// Steps per submit to compare (e.g. 1 and 8).
    pub steps_per_submit: Vec<u32>,
    /// Also time each config on the CPU twins.
    pub cpu: bool,
    /// Also train one whole epoch per config (else the epoch time is steps × step time).
    pub epoch: bool,
    /// Also time each dispatch of one GPU training step on its own (where a step's time
    /// goes), and with `cpu` each part of the CPU step.
    pub breakdown: bool,
}

/// One part of a config's CPU training step (the gather, an op, the loss sums, Adam):
/// its mean time over the timed steps.
#[derive(Clone, Debug, Serialize)]
pub struct CpuPartFigure {
    pub config: String,
    /// Position in the step.
    pub index: usize,
    /// What runs and the tensor it writes (graph::step_parts).
    pub part: String,
    pub us: f64,
    /// The part's multiplies' FLOPs over `us` (linear parts; None elsewhere).
    pub gflop_per_s: Option<f64>,
}

/// One dispatch of a config's GPU training step, timed on its own.
#[derive(Clone, Debug, Serialize)]
pub struct DispatchFigure {
    pub config: String,
    /// Position in the step.
    pub index: usize,
    /// The kernel's entry point.
    pub kernel: String,
    /// The tensor a matmul writes ("encoder.0", "dencoder.0.weight"; several for a grouped
    /// one, "+ loss" where the loss is in its store); empty for the other kernels.
    pub role: String,
    pub workgroups: [u32; 3],
    /// GPU time of the dispatch alone, in microseconds (median of three runs).
    pub gpu_us: f64,
    /// Bytes the dispatch reads and writes at least (`kernels::Traffic`).
    pub bytes: u64,
    /// `bytes` over `gpu_us`.
    pub gbyte_per_s: f64,
    /// The products' FLOPs over `gpu_us` (matmuls; None elsewhere).
    pub gflop_per_s: Option<f64>,
}

/// The device a report was measured on.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceFigure {
    pub adapter: String,
    pub device_type: String,
    pub backend: String,
    pub driver: String,
    pub driver_info: String,
    pub timestamp_queries: bool,
    /// Whether the kernels kept wgpu's runtime checks (off with `--unchecked-kernels`).
    pub runtime_checks: bool,
    /// The storage buffers a shader stage the device binds (fewer than the adapter's with
    /// `--max-storage-buffers`): which fused forms the step could take.
    pub storage_buffers_per_stage: u32,
}

/// One kernel at one shape.
#[derive(Clone, Debug, Serialize)]
pub struct KernelFigure {
    pub kernel: String,
    pub shape: String,
    /// The matmul variant, for matmuls.
    pub variant: Option<String>,
    /// GPU time per run in microseconds.
    pub gpu_us: f64,
    pub gflop_per_s: Option<f64>,
    pub gbyte_per_s: Option<f64>,
}

/// One training config on one executor at one number of steps per submit.
#[derive(Clone, Debug, Serialize)]
pub struct StepFigure {
    pub config: String,
    /// "gpu" or "cpu" (the CPU twins).
    pub executor: String,
    pub batch: usize,
    pub steps_per_submit: Option<u32>,
    /// Steps timed.
    pub steps: usize,
    /// Wall-clock time per step, from the first encode to the end of the last step.
    pub step_ms: f64,
    /// CPU time recording the dispatches, per step, while the GPU runs the submit before
    /// (on a CPU adapter the GPU's work competes for the same cores).
    pub encode_us: Option<f64>,
    /// The same with the queue idle, per step (median of seven encodes, each after the
    /// submit before it finished): the CPU cost alone. On a CPU adapter it also pays for
    /// the CPU caches the adapter's own work emptied.
    pub idle_encode_us: Option<f64>,
    /// Recording alone with the CPU's caches warm, per step (median of 21 encodes one after
    /// another, none submitted): what the recording itself costs, where a GPU leaves the
    /// host's caches to it.
    pub warm_encode_us: Option<f64>,
    /// CPU time in queue.submit, per step, submitting back to back (on lavapipe a submit
    /// waits for the one before it to finish, so this holds GPU time too).
    pub submit_us: Option<f64>,
    /// CPU time in queue.submit with the queue idle, per step (median of seven submits).
    pub idle_submit_us: Option<f64>,
    /// GPU time per step (timestamps at the ends of each submit's pass).
    pub gpu_us: Option<f64>,
    pub dispatches_per_step: Option<usize>,
    /// Bytes one step's dispatches read and write at least (`kernels::Traffic`), in MB
    /// (10⁶ bytes), and that over the GPU time: the bandwidth the step reaches.
    pub mbyte_per_step: Option<f64>,
    pub gbyte_per_s: Option<f64>,
    /// Device memory the GPU executor's buffers hold, in MiB (data set included; see
    /// `DeviceMemory`), and of that the activations' (the batch and the pool).
    pub device_mib: Option<f64>,
    pub activations_mib: Option<f64>,
    /// Matmul work of one step (forward and backward).
    pub gflop_per_step: f64,
    pub steps_per_epoch: usize,
    /// Epoch time: measured when `epoch_measured`, else steps per epoch × step time.
    pub epoch_s: f64,
    pub epoch_measured: bool,
}

/// Everything `latent bench` measured, with where and when.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub device: Option<DeviceFigure>,
    /// UTC, YYYY-MM-DD.
    pub date: String,
    /// `git rev-parse` of the source tree the binary was built from ("-dirty" with local
    /// changes), or "unknown".
    pub commit: String,
    /// The matmul variants the executors used: (general, skinny).
    pub matmul: Option<(String, String)>,
    /// Shapes tuned on their own (GPUs with `auto`), ahead of their class: (shape, variant).
    pub matmul_shapes: Vec<(String, String)>,
    /// How the training steps computed their weight gradients, per set of layers that one
    /// grouped dispatch takes (tuned on GPUs with `auto`): (set, "separate" or
    /// "grouped:tiles"). Sets that were not tuned ran separate unless forced.
    pub weight_grads: Vec<(String, String)>,
    /// The training data: "mnist" or "synthetic".
    pub data: String,
    /// The CPU twins' matmul form and threads, where their steps were timed (`cpu`).
    pub cpu_path: Option<String>,
    /// The 1-minute load average when the run ended (Linux), to flag a machine shared with
    /// other work: on a CPU adapter, other processes slow every figure.
    pub load_average: Option<f64>,
    pub kernels: Vec<KernelFigure>,
    pub steps: Vec<StepFigure>,
    /// Per-dispatch GPU times of one training step per config (with `breakdown`).
    pub breakdown: Vec<DispatchFigure>,
    /// Per-part times of the CPU training step per config (with `breakdown` and `cpu`).
    pub cpu_breakdown: Vec<CpuPartFigure>,
    /// What was skipped and why.
    pub notes: Vec<String>,
}

impl DeviceFigure {
    pub fn of(ctx: &GpuContext) -> Self {
        DeviceFigure {
            adapter: ctx.info.name.clone(),
            device_type: format!("{:?}", ctx.info.device_type),
            backend: format!("{:?}", ctx.info.backend),
            driver: ctx.info.driver.clone(),
            driver_info: ctx.info.driver_info.clone(),
            timestamp_queries: ctx.features.timestamp_query,
            runtime_checks: ctx.runtime_checks(),
            storage_buffers_per_stage: ctx.limits.max_storage_buffers_per_shader_stage,
        }
    }
}

/// One prepared kernel run with its work: one dispatch, or several recorded together and
/// timed per dispatch (the dispatch-cost cases).
pub struct KernelCase {
    pub kernel: String,
    pub shape: String,
    pub variant: Option<MatmulVariant>,
    pub flops: Option<f64>,
    /// Bytes the kernel must read and write at least.
    pub bytes: Option<f64>,
    pub dispatches: Vec<Dispatch>,
}

impl KernelCase {
    /// Records one run of the case (each of its dispatches once).
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        self.dispatches.iter().for_each(|d| d.record(pass));
    }

    /// GPU time per dispatch, in microseconds, from the GPU time of one run.
    pub fn per_dispatch_us(&self, us_per_run: f64) -> f64 {
        us_per_run / self.dispatches.len().max(1) as f64
    }
}

/// The kernel table's cases and the buffers their dispatches bind.
pub struct KernelCases {
    pub cases: Vec<KernelCase>,
    _buffers: Vec<GpuBuffer>,
}

impl KernelCases {
    /// Keeps a buffer alive as long as the cases that bind it.
    fn hold(&mut self, buffer: GpuBuffer) {
        self._buffers.push(buffer);
    }
}

/// The matmuls of the reference models at batch 128, (m, n, k, trans_a, trans_b, bias):
/// the VAE's 784→400 layer forward, input and weight gradients, its 400→20 heads forward and
/// weight gradient, and the AE's 784→256 forward.
const REFERENCE_MATMULS: [(usize, usize, usize, bool, bool, bool); 6] = [
    (128, 400, 784, false, true, true),
    (128, 784, 400, false, false, false),
    (400, 784, 128, true, false, false),
    (128, 20, 400, false, true, true),
    (20, 400, 128, true, false, false),
    (128, 256, 784, false, true, true),
];

/// With `large`: 4096³, and the wide VAE's 2048→2048 layer forward at batch 1024.
const LARGE_MATMULS: [(usize, usize, usize, bool, bool, bool); 2] = [
    (4096, 4096, 4096, false, false, false),
    (1024, 2048, 2048, false, true, true),
];

/// Every shipped matmul variant the autotune tries, each once, and the opt-in coop-f16
/// (which runs only on a device created with cooperative matrices: `--matmul coop-f16`).
pub fn matmul_variants() -> Vec<MatmulVariant> {
    let mut variants = candidates(ShapeClass::General);
    for v in candidates(ShapeClass::Skinny) {
        if !variants.contains(&v) {
            variants.push(v);
        }
    }
    variants.push(MatmulVariant::CoopF16);
    variants
}

fn filled(ctx: &GpuContext, label: &str, n: usize, value: f32) -> Result<GpuBuffer> {
    ctx.upload(label, &vec![value; n])
}

/// The kernel table's cases: every matmul variant at the reference shapes (and the large
/// ones if asked; those the adapter cannot fit are skipped), then the reductions,
/// element-wise kernels, gather and Adam at the VAE's shapes.
pub fn kernel_cases(ctx: &GpuContext, large: bool) -> Result<KernelCases> {
    let mut all = KernelCases {
        cases: Vec::new(),
        _buffers: Vec::new(),
    };
    let mut shapes = REFERENCE_MATMULS.to_vec();
    if large {
        shapes.extend(LARGE_MATMULS);
    }
    for (m, n, k, trans_a, trans_b, bias) in shapes {
        let shape = MatmulShape {
            m,
            n,
            k,
            trans_a,
            trans_b,
            ..Default::default()
        };
        let a = filled(ctx, "bench a", m * k, 0.5)?;
        let b = filled(ctx, "bench b", k * n, 0.01)?;
        let c = filled(ctx, "bench c", m * n, 0.0)?;
        let bias_buffer = bias
            .then(|| filled(ctx, "bench bias", n, 0.1))
            .transpose()?;
        for variant in matmul_variants() {
            // Variants this adapter cannot run (tiles beyond its limits, the subgroup kernel
            // without 8-lane subgroups) are not candidates here either.
            let Ok(dispatch) =
                matmul_with_variant(ctx, &c, &a, &b, bias_buffer.as_ref(), &shape, variant)
            else {
                continue;
            };
            all.cases.push(KernelCase {
                kernel: "matmul".into(),
                shape: format!("{}{}", describe(&shape), if bias { " +bias" } else { "" }),
                variant: Some(variant),
                flops: Some(shape.flops()),
                bytes: None,
                dispatches: vec![dispatch],
            });
        }
        [a, b, c]
            .into_iter()
            .chain(bias_buffer)
            .for_each(|buffer| all.hold(buffer));
    }
    vae_kernel_cases(ctx, &mut all)?;
    Ok(all)
}

/// A memory-bound case: the bytes its dispatch moves (`kernels::Traffic`), no FLOP count.
fn memory_case(kernel: &str, shape: String, dispatch: Dispatch) -> KernelCase {
    KernelCase {
        kernel: kernel.into(),
        shape,
        variant: None,
        flops: None,
        bytes: Some(dispatch.traffic().total_bytes() as f64),
        dispatches: vec![dispatch],
    }
}

/// The VAE 784-400-20's other kernels at batch 128.
fn vae_kernel_cases(ctx: &GpuContext, all: &mut KernelCases) -> Result<()> {
    let (batch, pixels, hidden, latent) = (128, 784, 400, 20);
    let (n_hidden, n_pixels, n_latent) = (batch * hidden, batch * pixels, batch * latent);
    let h = filled(ctx, "h", n_hidden, 0.3)?;
    let h2 = filled(ctx, "h2", n_hidden, 0.0)?;
    let dh = filled(ctx, "dh", n_hidden, 0.1)?;
    let x = filled(ctx, "x", n_pixels, 0.5)?;
    let logits = filled(ctx, "logits", n_pixels, 0.2)?;
    let dlogits = filled(ctx, "dlogits", n_pixels, 0.0)?;
    let per_row = filled(ctx, "per row", batch, 0.0)?;
    let bias_grad = filled(ctx, "bias grad", hidden, 0.0)?;
    let total = filled(ctx, "total", 1, 0.0)?;
    // μ | logvar side by side (batch, 2·latent), as the VAE's stacked layer stores them.
    let stats = filled(ctx, "stats", 2 * n_latent, 0.1)?;
    let (z, eps) = (
        filled(ctx, "z", n_latent, 0.0)?,
        filled(ctx, "eps", n_latent, 0.0)?,
    );
    let state = ctx.upload("state", &[1u32, 0])?;
    all.cases.extend([
        memory_case(
            "relu_forward",
            format!("{batch}x{hidden}"),
            Activation::Relu.forward(ctx, &h2, &h, n_hidden)?,
        ),
        memory_case(
            "relu_backward",
            format!("{batch}x{hidden}"),
            Activation::Relu.backward(ctx, &h2, &h, &dh, n_hidden)?,
        ),
        memory_case(
            "bce_forward",
            format!("{batch}x{pixels}"),
            kernels::bce::bce_forward(ctx, (&per_row, None), &logits, (&x, 1), batch, pixels)?,
        ),
        memory_case(
            "bce_backward",
            format!("{batch}x{pixels}"),
            kernels::bce::bce_backward(ctx, &dlogits, &logits, (&x, 1), batch, pixels, 1.0)?,
        ),
        memory_case(
            "bce_forward_backward",
            format!("{batch}x{pixels}"),
            kernels::bce::bce_forward_backward(
                ctx, &per_row, &dlogits, &logits, &x, batch, pixels, 1.0,
            )?,
        ),
        memory_case(
            "sum_cols",
            format!("{batch}x{hidden}"),
            kernels::reduce::sum_cols(ctx, &bias_grad, &dh, batch, hidden)?,
        ),
        memory_case(
            "sum_all",
            format!("{batch}"),
            kernels::reduce::sum_all(ctx, &total, &per_row, batch, 1.0, true)?,
        ),
        memory_case(
            "kl_forward",
            format!("{batch}x{latent}"),
            kernels::kl::kl_forward(ctx, &per_row, &stats, batch, latent)?,
        ),
        memory_case(
            "reparameterize_forward",
            format!("{batch}x{latent}"),
            kernels::reparameterize::reparameterize_forward(
                ctx,
                &z,
                &eps,
                (&stats, 1),
                &state,
                batch,
                latent,
                1,
                0,
            )?,
        ),
    ]);
    let dstats = filled(ctx, "dstats", 2 * n_latent, 0.0)?;
    let head = kernels::vae_head::VaeHeadBuffers {
        z: &z,
        eps: &eps,
        kl_totals: &per_row,
        dstats: Some(&dstats),
        stats: &stats,
        step: &state,
        label: None,
    };
    all.cases.push(memory_case(
        "vae_head",
        format!("{batch}x{latent}"),
        kernels::vae_head::vae_head_forward(
            ctx,
            &head,
            (batch, latent, 1),
            1,
            0,
            1.0 / batch as f32,
        )?,
    ));
    for buffer in [h, h2, dh, x, logits, dlogits, per_row, bias_grad, total] {
        all.hold(buffer);
    }
    for buffer in [stats, z, eps, state, dstats] {
        all.hold(buffer);
    }
    gather_case(ctx, all, batch, pixels)?;
    adam_case(ctx, all, &TrainConfig::Vae.model(), batch)?;
    dispatch_cost_cases(ctx, all)
}

/// What a dispatch costs beyond its work: ReLU on 64 floats (one workgroup), recorded
/// back to back in one pass. "dispatch_chained": each reads what the one before wrote, so
/// wgpu puts a barrier between them (a training step's dispatches are such a chain).
/// "dispatch_apart": 16 in a row write 16 buffers from one, with no barrier among them.
fn dispatch_cost_cases(ctx: &GpuContext, all: &mut KernelCases) -> Result<()> {
    const FLOATS: usize = 64;
    const APART: usize = 16;
    let relu = Activation::Relu;
    let (a, b) = (
        filled(ctx, "a", FLOATS, 0.5)?,
        filled(ctx, "b", FLOATS, 0.0)?,
    );
    all.cases.push(KernelCase {
        kernel: "dispatch_chained".into(),
        shape: format!("relu {FLOATS}, a->b->a"),
        variant: None,
        flops: None,
        bytes: None,
        dispatches: vec![
            relu.forward(ctx, &b, &a, FLOATS)?,
            relu.forward(ctx, &a, &b, FLOATS)?,
        ],
    });
    let outputs = (0..APART)
        .map(|i| filled(ctx, &format!("out {i}"), FLOATS, 0.0))
        .collect::<Result<Vec<_>>>()?;
    all.cases.push(KernelCase {
        kernel: "dispatch_apart".into(),
        shape: format!("relu {FLOATS}, a->{APART} outputs"),
        variant: None,
        flops: None,
        bytes: None,
        dispatches: outputs
            .iter()
            .map(|out| relu.forward(ctx, out, &a, FLOATS))
            .collect::<Result<Vec<_>>>()?,
    });
    [a, b]
        .into_iter()
        .chain(outputs)
        .for_each(|buffer| all.hold(buffer));
    Ok(())
}

/// The byte gather of one batch from a 10,000-row byte data set.
fn gather_case(ctx: &GpuContext, all: &mut KernelCases, batch: usize, width: usize) -> Result<()> {
    let data_rows = 10_000;
    let bytes: Vec<u8> = (0..data_rows * width).map(|i| (i % 251) as u8).collect();
    let shape = (data_rows, width);
    let data = DataShards::upload_u8(ctx, "data", &bytes, shape, ctx.max_binding_bytes())?;
    let order: Vec<u32> = (0..data_rows as u32).map(|i| i * 37 % 10_000).collect();
    let indices = ctx.upload("indices", &order)?;
    let out = filled(ctx, "gathered", batch * width, 0.0)?;
    let state = ctx.upload("state", &[1u32, 0])?;
    let source = kernels::gather::GatherSource {
        data: &data,
        indices: Some(&indices),
        state: &state,
    };
    // Rows of a multiple of 4 bytes take gather_u8_words, a word of four bytes a thread.
    // One shard: one dispatch.
    let dispatch = kernels::gather::gather_u8(ctx, &out, &source, batch)?.remove(0);
    all.cases.push(memory_case(
        dispatch.name,
        format!("{batch}x{width}"),
        dispatch,
    ));
    [indices, out, state]
        .into_iter()
        .chain(data.shards)
        .for_each(|b| all.hold(b));
    Ok(())
}

/// One Adam step over every parameter of `model` (one dispatch, as training runs it).
fn adam_case(
    ctx: &GpuContext,
    all: &mut KernelCases,
    model: &ModelConfig,
    batch: usize,
) -> Result<()> {
    let (graph, _) = model.build(batch)?;
    let n = Plan::compile(graph)?.param_len;
    let (p, m, v, g) = (
        filled(ctx, "params", n, 0.1)?,
        filled(ctx, "m", n, 0.0)?,
        filled(ctx, "v", n, 0.0)?,
        filled(ctx, "grads", n, 0.01)?,
    );
    let config = AdamConfig::default();
    let scalars = ctx.upload("scalars", &config.step_scalar_table(1))?;
    let state = ctx.upload("state", &[1u32, 0])?;
    let dispatch = kernels::adam::adam_step(ctx, &p, &m, &v, &g, &scalars, &state, n, &config)?;
    all.cases.push(memory_case(
        "adam_step",
        format!("{n} parameters"),
        dispatch,
    ));
    [p, m, v, g, scalars, state]
        .into_iter()
        .for_each(|b| all.hold(b));
    Ok(())
}

/// Times every kernel case.
pub fn bench_kernels(ctx: &GpuContext, large: bool) -> Result<Vec<KernelFigure>> {
    kernel_cases(ctx, large)?
        .cases
        .iter()
        .map(|case| {
            let (us, _) = time_gpu_median(ctx, &|pass| case.record(pass))?;
            let us = case.per_dispatch_us(us);
            Ok(KernelFigure {
                kernel: case.kernel.clone(),
                shape: case.shape.clone(),
                variant: case.variant.map(|v| v.to_string()),
                gpu_us: us,
                gflop_per_s: case.flops.map(|f| f / us / 1e3),
                gbyte_per_s: case.bytes.map(|b| b / us / 1e3),
            })
        })
        .collect()
}

/// A config's model compiled, its initial parameters, and the data and epoch order to run.
pub struct ConfigRun<'a> {
    pub config: TrainConfig,
    pub plan: Plan,
    pub params: Vec<f32>,
    pub data: TrainData<'a>,
    pub order: Vec<u32>,
}

impl<'a> ConfigRun<'a> {
    pub fn new(config: TrainConfig, data: TrainData<'a>) -> Result<Self> {
        let (graph, _) = config.model().build(config.batch())?;
        let plan = Plan::compile(graph)?;
        let params = init_params(&plan, 1)?;
        let order = crate::data::epoch_order(data.rows, 1, 0);
        Ok(ConfigRun {
            config,
            plan,
            params,
            data,
            order,
        })
    }

    fn steps_per_epoch(&self) -> usize {
        self.data.rows / self.config.batch()
    }

    /// A run of `steps` steps (the Adam table holds one entry per step).
    fn run_config(&self, steps: usize) -> Result<RunConfig> {
        let total_steps = u32::try_from(steps)
            .map_err(|_| Error::InvalidArgument(format!("{steps} bench steps is too many")))?;
        Ok(RunConfig {
            adam: AdamConfig::default(),
            seed: 1,
            total_steps,
        })
    }

    fn figure(&self, executor: &str, steps: usize, step_ms: f64) -> StepFigure {
        StepFigure {
            config: self.config.name().into(),
            executor: executor.into(),
            batch: self.config.batch(),
            steps_per_submit: None,
            steps,
            step_ms,
            encode_us: None,
            submit_us: None,
            idle_encode_us: None,
            warm_encode_us: None,
            idle_submit_us: None,
            gpu_us: None,
            dispatches_per_step: None,
            mbyte_per_step: None,
            gbyte_per_s: None,
            device_mib: None,
            activations_mib: None,
            gflop_per_step: self.plan.step_matmul_flops() / 1e9,
            steps_per_epoch: self.steps_per_epoch(),
            epoch_s: step_ms * self.steps_per_epoch() as f64 / 1e3,
            epoch_measured: false,
        }
    }

    /// `steps` training steps on the GPU executor, `per_submit` at a time, after one warm-up
    /// submit, then seven submits each on an idle queue, then 21 encodes submitted never;
    /// epochs restart (same order) whenever the next submit would run past one.
    pub fn time_gpu_steps(
        &self,
        ctx: &GpuContext,
        per_submit: u32,
        steps: usize,
    ) -> Result<StepFigure> {
        let per_submit = per_submit.clamp(1, self.steps_per_epoch() as u32);
        let submits = steps.div_ceil(per_submit as usize).max(1);
        const IDLE_SUBMITS: usize = 7;
        const WARM_ENCODES: usize = 21;
        let run = self.run_config((submits + 1 + IDLE_SUBMITS) * per_submit as usize)?;
        let mut executor = GpuExecutor::new(ctx, &self.plan, &self.params, self.data, None, run)?;
        let timer = PassTimer::new(ctx, submits)?;
        executor.begin_epoch(&self.order)?;
        executor.steps_per_submit(per_submit)?;
        executor.finish()?;
        let mut in_epoch = per_submit as usize;
        let (mut encode, mut submit) = (0.0, 0.0);
        let started = Instant::now();
        for i in 0..submits {
            if in_epoch + per_submit as usize > self.steps_per_epoch() {
                executor.begin_epoch(&self.order)?;
                in_epoch = 0;
            }
            let t0 = Instant::now();
            let commands =
                executor.encode_steps(per_submit, timer.as_ref().map(|t| t.writes(i)))?;
            let t1 = Instant::now();
            executor.submit_steps(commands, per_submit)?;
            encode += (t1 - t0).as_secs_f64();
            submit += t1.elapsed().as_secs_f64();
            in_epoch += per_submit as usize;
        }
        executor.finish()?;
        let wall = started.elapsed().as_secs_f64();
        let (mut idle_encodes, mut idle_submits) = (Vec::new(), Vec::new());
        for _ in 0..IDLE_SUBMITS {
            if in_epoch + per_submit as usize > self.steps_per_epoch() {
                executor.begin_epoch(&self.order)?;
                in_epoch = 0;
            }
            let t0 = Instant::now();
            let commands = executor.encode_steps(per_submit, None)?;
            let t1 = Instant::now();
            executor.submit_steps(commands, per_submit)?;
            idle_encodes.push((t1 - t0).as_secs_f64());
            idle_submits.push(t1.elapsed().as_secs_f64());
            executor.finish()?;
            in_epoch += per_submit as usize;
        }
        if in_epoch + per_submit as usize > self.steps_per_epoch() {
            executor.begin_epoch(&self.order)?;
        }
        let mut warm_encodes = Vec::new();
        for _ in 0..WARM_ENCODES {
            let t0 = Instant::now();
            let commands = executor.encode_steps(per_submit, None)?;
            warm_encodes.push(t0.elapsed().as_secs_f64());
            drop(commands);
        }
        idle_encodes.sort_by(f64::total_cmp);
        idle_submits.sort_by(f64::total_cmp);
        warm_encodes.sort_by(f64::total_cmp);
        let total = (submits * per_submit as usize) as f64;
        let gpu_us = match &timer {
            Some(t) => Some(t.total_us(ctx)? / total),
            None => None,
        };
        let mut figure = self.figure("gpu", total as usize, wall * 1e3 / total);
        figure.steps_per_submit = Some(per_submit);
        figure.encode_us = Some(encode * 1e6 / total);
        figure.submit_us = Some(submit * 1e6 / total);
        figure.idle_encode_us = Some(idle_encodes[IDLE_SUBMITS / 2] * 1e6 / f64::from(per_submit));
        figure.idle_submit_us = Some(idle_submits[IDLE_SUBMITS / 2] * 1e6 / f64::from(per_submit));
        figure.warm_encode_us = Some(warm_encodes[WARM_ENCODES / 2] * 1e6 / f64::from(per_submit));
        figure.gpu_us = gpu_us;
        figure.dispatches_per_step = Some(executor.dispatches_per_step());
        let bytes = executor.step_traffic().total_bytes() as f64;
        figure.mbyte_per_step = Some(bytes / 1e6);
        figure.gbyte_per_s = gpu_us.map(|us| bytes / us / 1e3);
        let memory = executor.device_memory();
        figure.device_mib = Some(mib(memory.total()));
        figure.activations_mib = Some(mib(memory.activations));
        Ok(figure)
    }

    /// Each dispatch of one GPU training step timed on its own, after one warm-up step
    /// (alone, a dispatch misses the overlap a real step may have, so the sum is an upper
    /// bound of the step's GPU time).
    pub fn time_dispatches(&self, ctx: &GpuContext) -> Result<Vec<DispatchFigure>> {
        let mut executor = GpuExecutor::new(
            ctx,
            &self.plan,
            &self.params,
            self.data,
            None,
            self.run_config(1)?,
        )?;
        executor.begin_epoch(&self.order)?;
        executor.step()?;
        executor.finish()?;
        executor
            .step_dispatches()
            .iter()
            .enumerate()
            .map(|(index, dispatch)| {
                let (gpu_us, _) = time_gpu_median(ctx, &|pass| dispatch.record(pass))?;
                let bytes = dispatch.traffic().total_bytes();
                Ok(DispatchFigure {
                    config: self.config.name().into(),
                    index,
                    kernel: dispatch.name.into(),
                    role: dispatch.role().into(),
                    workgroups: dispatch.workgroups(),
                    gpu_us,
                    bytes,
                    gbyte_per_s: bytes as f64 / gpu_us / 1e3,
                    gflop_per_s: (dispatch.flops() > 0.0).then(|| dispatch.flops() / gpu_us / 1e3),
                })
            })
            .collect()
    }

    /// `steps` training steps on the CPU twins after one warm-up step.
    pub fn time_cpu_steps(&self, steps: usize) -> Result<StepFigure> {
        let seconds = self.run_cpu_steps(steps, |executor| executor.step())?;
        let step_ms = seconds * 1e3 / steps as f64;
        Ok(self.figure("cpu", steps, step_ms))
    }

    /// The mean time of each part of a CPU training step over `steps` steps, after one
    /// warm-up step.
    pub fn time_cpu_parts(&self, steps: usize) -> Result<Vec<CpuPartFigure>> {
        let parts = step_parts(&self.plan);
        let mut seconds = vec![0.0; parts.len()];
        self.run_cpu_steps(steps, |executor| executor.step_timed(&mut seconds))?;
        Ok(parts
            .into_iter()
            .zip(seconds)
            .enumerate()
            .map(|(index, (part, total))| {
                let us = total * 1e6 / steps.max(1) as f64;
                CpuPartFigure {
                    config: self.config.name().into(),
                    index,
                    part: part.label,
                    us,
                    gflop_per_s: (part.flops > 0.0 && us > 0.0).then(|| part.flops / us / 1e3),
                }
            })
            .collect())
    }

    /// One warm-up step on the CPU twins, then `steps` steps each taken by `step` (the
    /// epoch begun again whenever it runs out of batches); returns the seconds those took.
    fn run_cpu_steps(
        &self,
        steps: usize,
        mut step: impl FnMut(&mut CpuExecutor<f32>) -> Result<()>,
    ) -> Result<f64> {
        let run = self.run_config(steps + 1)?;
        let mut executor = CpuExecutor::<f32>::new(&self.plan, &self.params, self.data, None, run)?;
        executor.begin_epoch(&self.order)?;
        executor.step()?;
        let mut in_epoch = 1;
        let started = Instant::now();
        for _ in 0..steps {
            if in_epoch == self.steps_per_epoch() {
                executor.begin_epoch(&self.order)?;
                in_epoch = 0;
            }
            step(&mut executor)?;
            in_epoch += 1;
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// One whole training epoch through the Trainer (shuffle, `per_submit` steps per
    /// submit, losses read at its end), on the GPU or, with None, the CPU twins.
    pub fn time_epoch(&self, ctx: Option<&GpuContext>, per_submit: u32) -> Result<f64> {
        let device = ctx.map_or(crate::train::Device::Cpu, crate::train::Device::Gpu);
        let options = crate::train::TrainOptions {
            batch: self.config.batch(),
            epochs: 1,
            adam: AdamConfig::default(),
            seed: 1,
        };
        let model = self.config.model();
        let mut trainer = crate::train::Trainer::new(
            device,
            &self.plan,
            &model,
            &self.params,
            self.data,
            None,
            options,
        )?;
        trainer.set_steps_per_submit(per_submit)?;
        Ok(trainer.run_epoch(0, &mut |_, _, _| {})?.seconds)
    }
}

/// Timestamps at the beginning and end of one pass per submit, resolved at the end.
struct PassTimer {
    queries: wgpu::QuerySet,
    resolved: GpuBuffer,
    passes: usize,
}

impl PassTimer {
    /// None when the device has no timestamp queries.
    fn new(ctx: &GpuContext, passes: usize) -> Result<Option<Self>> {
        if !ctx.features.timestamp_query {
            return Ok(None);
        }
        let count = 2 * passes as u32;
        let queries = ctx.scoped("bench timestamps", || {
            ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("bench timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            })
        })?;
        let buffer = ctx.scoped("bench timestamps", || {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bench timestamps"),
                size: 8 * u64::from(count),
                usage: wgpu::BufferUsages::QUERY_RESOLVE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        })?;
        let resolved = GpuBuffer {
            buffer,
            len: 2 * count as usize,
            offset: 0,
        };
        Ok(Some(PassTimer {
            queries,
            resolved,
            passes,
        }))
    }

    fn writes(&self, pass: usize) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(2 * pass as u32),
            end_of_pass_write_index: Some(2 * pass as u32 + 1),
        }
    }

    /// Σ over the passes of (end − beginning), in microseconds (waits for the GPU).
    fn total_us(&self, ctx: &GpuContext) -> Result<f64> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        encoder.resolve_query_set(
            &self.queries,
            0..2 * self.passes as u32,
            &self.resolved.buffer,
            0,
        );
        ctx.submit_and_wait("bench timestamps", encoder.finish())?;
        let words: Vec<u32> = ctx.read_buffer(&self.resolved)?;
        let ticks = |i: usize| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
        let total: u64 = (0..self.passes)
            .map(|p| ticks(2 * p + 1).saturating_sub(ticks(2 * p)))
            .sum();
        Ok(total as f64 * f64::from(ctx.queue.get_timestamp_period()) / 1e3)
    }
}

/// Runs what `options` asks for on `ctx` (None: the CPU twins only), training on `data`
/// (named `data_name` in the report); `log` gets a line as each measurement finishes.
pub fn run(
    ctx: Option<&GpuContext>,
    options: &BenchOptions,
    data: TrainData,
    data_name: &str,
    log: &mut dyn FnMut(String),
) -> Result<BenchReport> {
    let mut report = BenchReport {
        device: ctx.map(DeviceFigure::of),
        date: utc_date(),
        commit: git_commit(),
        matmul: ctx.map(|c| {
            let choice = c.matmul_choice();
            (choice.general.to_string(), choice.skinny.to_string())
        }),
        matmul_shapes: Vec::new(),
        weight_grads: Vec::new(),
        data: data_name.into(),
        cpu_path: options.cpu.then(|| crate::train::Device::Cpu.describe()),
        load_average: None,
        kernels: Vec::new(),
        steps: Vec::new(),
        breakdown: Vec::new(),
        cpu_breakdown: Vec::new(),
        notes: Vec::new(),
    };
    if let (Some(ctx), true) = (ctx, options.kernels) {
        report.kernels = bench_kernels(ctx, options.large)?;
        log(format!("{} kernel figures", report.kernels.len()));
    }
    let cpu_adapter = ctx.is_some_and(|c| c.info.device_type == wgpu::DeviceType::Cpu);
    let configs = match &options.configs {
        Some(configs) => configs.clone(),
        None if cpu_adapter => {
            report.notes.push(
                "wide VAE skipped on a CPU adapter (about 50 GFLOP a step); ask with --configs wide"
                    .into(),
            );
            vec![TrainConfig::Vae, TrainConfig::Ae]
        }
        None => TrainConfig::DEFAULT.to_vec(),
    };
    for config in configs {
        let run = ConfigRun::new(config, data)?;
        let steps = options.steps.unwrap_or_else(|| default_steps(ctx, config));
        if let Some(ctx) = ctx {
            for &per_submit in &options.steps_per_submit {
                let figure = run.time_gpu_steps(ctx, per_submit, steps)?;
                log(describe_step(&figure));
                report.steps.push(figure);
            }
            for note in ctx.take_matmul_notes() {
                log(note.clone());
                report.notes.push(note);
            }
            if options.breakdown {
                let figures = run.time_dispatches(ctx)?;
                let total: f64 = figures.iter().map(|f| f.gpu_us).sum();
                log(format!(
                    "{} breakdown: {} dispatches, {:.0} us alone in all",
                    config.name(),
                    figures.len(),
                    total
                ));
                report.breakdown.extend(figures);
            }
            if options.epoch {
                let per_submit = options.steps_per_submit.iter().copied().max().unwrap_or(1);
                let seconds = run.time_epoch(Some(ctx), per_submit)?;
                mark_epoch(&mut report.steps, config, "gpu", Some(per_submit), seconds);
                log(format!("{} gpu epoch {seconds:.2} s", config.name()));
            }
        }
        if options.cpu {
            let cpu_steps = options.steps.unwrap_or(default_steps(None, config));
            let figure = run.time_cpu_steps(cpu_steps)?;
            log(describe_step(&figure));
            report.steps.push(figure);
            if options.breakdown {
                let figures = run.time_cpu_parts(cpu_steps)?;
                let total: f64 = figures.iter().map(|f| f.us).sum();
                log(format!(
                    "{} cpu breakdown: {} parts, {total:.0} us a step",
                    config.name(),
                    figures.len()
                ));
                report.cpu_breakdown.extend(figures);
            }
            if options.epoch {
                let seconds = run.time_epoch(None, 1)?;
                mark_epoch(&mut report.steps, config, "cpu", None, seconds);
                log(format!("{} cpu epoch {seconds:.2} s", config.name()));
            }
        }
    }
    if let Some(ctx) = ctx {
        report.matmul_shapes = ctx
            .matmul_choice()
            .shapes
            .iter()
            .map(|(key, variant)| (key.to_string(), variant.to_string()))
            .collect();
        report.weight_grads = ctx
            .matmul_choice()
            .weight_grads
            .iter()
            .map(|(key, form)| (key.to_string(), form.to_string()))
            .collect();
    }
    report.load_average = load_average();
    Ok(report)
}

/// The 1-minute load average from /proc/loadavg (None elsewhere).
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Records a measured epoch on the figure of the same config, executor and steps per submit.
fn mark_epoch(
    steps: &mut [StepFigure],
    config: TrainConfig,
    executor: &str,
    per_submit: Option<u32>,
    seconds: f64,
) {
    if let Some(figure) = steps.iter_mut().rev().find(|f| {
        f.config == config.name() && f.executor == executor && f.steps_per_submit == per_submit
    }) {
        figure.epoch_s = seconds;
        figure.epoch_measured = true;
    }
}

/// One line for a step figure.
pub fn describe_step(f: &StepFigure) -> String {
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let memory = match (f.device_mib, f.activations_mib) {
        (Some(all), Some(activations)) => {
            format!(", device memory {all:.1} MiB (activations {activations:.1})")
        }
        _ => String::new(),
    };
    let traffic = match (f.mbyte_per_step, f.gbyte_per_s) {
        (Some(mb), Some(rate)) => format!(", {mb:.2} MB moved ({rate:.1} GB/s)"),
        (Some(mb), None) => format!(", {mb:.2} MB moved"),
        _ => String::new(),
    };
    format!(
        "{} {} batch {} x{}: {:.2} ms/step (encode {} us, submit {} us, idle encode {} us, idle submit {} us, warm encode {} us, GPU {} us), {} dispatches{traffic}{memory}, epoch {:.1} s{}",
        f.config,
        f.executor,
        f.batch,
        f.steps_per_submit.map_or("-".to_string(), |n| n.to_string()),
        f.step_ms,
        us(f.encode_us),
        us(f.submit_us),
        us(f.idle_encode_us),
        us(f.idle_submit_us),
        us(f.warm_encode_us),
        us(f.gpu_us),
        f.dispatches_per_step.map_or("-".to_string(), |n| n.to_string()),
        f.epoch_s,
        if f.epoch_measured { " (measured)" } else { " (estimated)" }
    )
}

/// 60,000 rows of 784 synthetic bytes (MNIST's training-set size), for when MNIST is absent,
/// and a label in 0..10 for each (the conditional config's): speed does not depend on the
/// values.
pub fn synthetic_rows() -> (Vec<u8>, Vec<u8>, usize, usize) {
    let (rows, width) = (60_000, 784);
    let bytes = (0..rows * width).map(|i| (i * 37 % 251) as u8).collect();
    let labels = (0..rows).map(|r| (r % 10) as u8).collect();
    (bytes, labels, rows, width)
}

/// Wraps bytes and their labels as training data.
pub fn byte_data<'a>(
    bytes: &'a [u8],
    labels: &'a [u8],
    rows: usize,
    width: usize,
) -> TrainData<'a> {
    TrainData {
        labels: Some(labels),
        ..TrainData::new(Samples::U8(bytes), rows, width)
    }
}

/// The default timed steps per measurement: fewer on a CPU adapter.
pub fn default_steps(ctx: Option<&GpuContext>, config: TrainConfig) -> usize {
    let cpu_adapter = ctx.is_none_or(|c| c.info.device_type == wgpu::DeviceType::Cpu);
    match (cpu_adapter, config) {
        (false, _) => 256,
        (true, TrainConfig::WideVae) => 8,
        (true, _) => 16,
    }
}

/// Today's date in UTC, YYYY-MM-DD.
pub fn utc_date() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The commit of the source tree this binary was built from, "-dirty" when tracked files
/// differ from it, or "unknown" without git.
pub fn git_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) if !commit.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        _ => "unknown".into(),
    }
}
