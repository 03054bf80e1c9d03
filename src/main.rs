//! The `latent` command line: a thin layer over the library. Parses arguments, calls the
//! library, prints. Exit codes: 0 success, 1 a check, the GPU or training failed, 2 bad input.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use latent::data::{self, CsvOptions, Dataset};
use latent::gpu::{list_adapters, Backend, GpuContext, GpuOptions};
use latent::graph::plan::Plan;
use latent::io::checkpoint::{self, RunRecord};
use latent::io::loss_log::append_epoch;
use latent::kernels::activation::Activation;
use latent::kernels::adam::AdamConfig;
use latent::kernels::autotune::{self, ChoiceSource, MatmulPolicy};
use latent::model::{init_params, Likelihood, ModelConfig, ModelKind, Noise, Sparsity};
use latent::train::{Device, TrainOptions, Trainer};
use latent::validate::{validate_all, CheckResult, ShapeSet};

#[derive(Parser)]
#[command(
    name = "latent",
    version,
    about = "Train the autoencoder family on any GPU with hand-written WGSL kernels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List GPU adapters with their backend, features and limits.
    Info(GpuArgs),
    /// Run every kernel on the GPU and on its CPU twin and compare them.
    Validate(ValidateArgs),
    /// Train an autoencoder or a VAE (default: the VAE of the PyTorch examples on MNIST when
    /// it is found, else on the embedded UCI digits).
    Train(Box<TrainArgs>),
    /// The loss of a checkpoint on the test set, per example (or per pixel), like train prints it.
    Eval(Box<EvalArgs>),
    /// Encode rows (default: the test set) to latent codes (the VAE's means) as CSV or .npy.
    Encode(Box<EncodeArgs>),
    /// A PNG grid of test images (top row) above their reconstructions.
    Reconstruct(Box<PictureArgs>),
    /// A PNG grid of samples decoded from the prior N(0, I).
    Sample(Box<PictureArgs>),
    /// Corrupt test images, denoise them with the model, and report both errors against the
    /// clean images; writes a PNG grid: noisy (top), denoised, clean (bottom).
    Denoise(Box<DenoiseArgs>),
    /// A PNG grid of paths through the latent space between pairs of test images: each row
    /// starts and ends with the two images, decoded codes between them.
    Interpolate(Box<InterpolateArgs>),
    /// A PNG grid sweeping one latent dimension per row, the others fixed at a test image's
    /// code.
    Traverse(Box<TraverseArgs>),
    /// How much the codes tell about the data: kNN and linear-probe accuracy, k-means NMI and
    /// ARI against the labels (unsupervised figures without labels), beside PCA of the raw
    /// pixels at the same width.
    Probe(Box<ProbeArgs>),
    /// A 2-D scatter PNG of the test codes coloured by label (the first two principal
    /// components when the code is wider than 2).
    Scatter(Box<ScatterArgs>),
    /// Anomaly scores: each row's reconstruction error (and negative ELBO for a VAE) to CSV,
    /// flagged above a percentile of the training rows' scores.
    Score(Box<ScoreArgs>),
    /// Decode codes from a CSV or .npy file (one code per row) to images (.png) or rows
    /// (.csv, .npy).
    Decode(Box<DecodeArgs>),
    /// Time the kernels and the training step (encode, submit, GPU time, epoch) on this GPU.
    Bench(Box<BenchArgs>),
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    gpu: GpuArgs,
    /// Training configs, comma-separated: vae (784-400-20), ae (784-256-784), wide
    /// (784-2048-2048-64 at batch 1024). Default: all three, but wide only on a real GPU.
    #[arg(long, value_delimiter = ',')]
    configs: Option<Vec<String>>,
    /// Add the large matmuls (4096³ and 1024×2048×2048) to the kernel table.
    #[arg(long)]
    large: bool,
    /// Skip the kernel table.
    #[arg(long)]
    no_kernels: bool,
    /// Timed training steps per measurement (default: 256 on a GPU, 16 on a CPU adapter).
    #[arg(long)]
    steps: Option<usize>,
    /// Steps per submit to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    steps_per_submit: Vec<u32>,
    /// Also time the CPU twins (the only path when no GPU adapter is found).
    #[arg(long)]
    cpu: bool,
    /// Also train one whole epoch per config (else epoch = steps per epoch × step time).
    #[arg(long)]
    epoch: bool,
    /// Write every figure, with device, driver, date and commit, to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Directory holding the MNIST IDX files (else 60,000 synthetic rows of 784 bytes).
    #[arg(long, env = "LATENT_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct InterpolateArgs {
    #[command(flatten)]
    model: UseArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Pairs of test images (rows 0-1, 2-3, ...).
    #[arg(long, default_value_t = 8)]
    pairs: usize,
    /// Decoded codes per path, ends included.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// linear or spherical (default: spherical for a VAE, whose codes are Gaussian; linear
    /// for an autoencoder).
    #[arg(long)]
    path: Option<String>,
    /// Output PNG (default: <checkpoint>/interpolation.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct TraverseArgs {
    #[command(flatten)]
    model: UseArgs,
    #[command(flatten)]
    data: DataArgs,
    /// The test row whose code the other dimensions keep.
    #[arg(long, default_value_t = 0)]
    row: usize,
    /// Latent dimensions to sweep, comma-separated (default: the first 10).
    #[arg(long)]
    dims: Option<String>,
    /// Values per dimension.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// A VAE's dimensions sweep −range..range (its prior's σ is 1); an autoencoder's sweep
    /// their range over the test codes.
    #[arg(long, default_value_t = 3.0)]
    range: f32,
    /// Output PNG (default: <checkpoint>/traversal.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct ScatterArgs {
    #[command(flatten)]
    model: UseArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Output PNG (default: <checkpoint>/scatter.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct ProbeArgs {
    #[command(flatten)]
    model: UseArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Also probe the raw pixels (slow for wide data: kNN and k-means scale with the width).
    #[arg(long)]
    raw: bool,
    /// Seeds k-means and the silhouette's sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the table as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct ScoreArgs {
    #[command(flatten)]
    model: UseArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Rows to score: CSV or .npy, as wide as the model's input, scaled as `train` scales
    /// data (default: the run's test set).
    file: Option<PathBuf>,
    /// Rows scoring above this percentile of the training rows' scores are flagged.
    #[arg(long, default_value_t = 99.0)]
    percentile: f64,
    /// Output CSV (default: <checkpoint>/scores.csv).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct DenoiseArgs {
    #[command(flatten)]
    model: UseArgs,
    #[command(flatten)]
    data: DataArgs,
    /// gaussian:σ, masking:p or salt-pepper:p (default: the noise the model trained with).
    #[arg(long)]
    noise: Option<String>,
    /// Images in the grid.
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Seeds the noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output PNG (default: <checkpoint>/denoised.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct DecodeArgs {
    #[command(flatten)]
    model: UseArgs,
    /// The codes: CSV (a header line is allowed) or .npy, one row of latent values each.
    #[arg(long)]
    codes: PathBuf,
    /// Output: a .png grid (square images), else .csv or .npy rows (default:
    /// <checkpoint>/decoded.png).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The class every code is decoded as (conditional models).
    #[arg(long)]
    label: Option<u8>,
}

#[derive(Args)]
struct GpuArgs {
    /// Graphics API: auto, vulkan, metal, dx12 or gl.
    #[arg(long, env = "LATENT_BACKEND", default_value = "auto")]
    backend: String,
    /// Adapter index (as `latent info` lists them) or part of its name.
    #[arg(long, env = "LATENT_ADAPTER")]
    adapter: Option<String>,
    /// Matmul kernel: auto (tuned once per device, cached in $LATENT_CACHE_DIR or
    /// ~/.cache/latent), default (rowtile on CPU adapters, tiled elsewhere; nothing timed),
    /// rowtile, tiled or tiled:MxNxK.
    #[arg(long, env = "LATENT_MATMUL", default_value = "auto")]
    matmul: String,
}

impl GpuArgs {
    fn options(&self) -> Result<GpuOptions, latent::Error> {
        Ok(GpuOptions {
            backend: self.backend.parse()?,
            adapter: self.adapter.clone(),
        })
    }

    /// Chooses the matmul variants of `ctx` by --matmul (tuning them on first use of an
    /// adapter), printing cache warnings and a line when it tuned.
    fn choose_matmul(&self, ctx: &GpuContext) -> Result<(), latent::Error> {
        let policy: MatmulPolicy = self.matmul.parse()?;
        let cache = autotune::default_cache_path();
        if policy == MatmulPolicy::Auto && cache.is_none() {
            eprintln!("warning: no cache directory (set LATENT_CACHE_DIR): the matmul autotune runs every time");
        }
        let started = std::time::Instant::now();
        let selection = autotune::select_matmul(ctx, policy, cache.as_deref())?;
        for warning in &selection.warnings {
            eprintln!("warning: {warning}");
        }
        if selection.source == ChoiceSource::Tuned {
            eprintln!(
                "matmul tuned for {} in {:.1} s: {} (general), {} (skinny)",
                ctx.info.name,
                started.elapsed().as_secs_f64(),
                selection.choice.general,
                selection.choice.skinny
            );
        }
        ctx.set_matmul_choice(selection.choice);
        Ok(())
    }
}

#[derive(Args)]
struct ValidateArgs {
    #[command(flatten)]
    gpu: GpuArgs,
    /// Also check the full model shapes (batch 128, 784 inputs, 400 hidden units).
    #[arg(long)]
    full: bool,
    /// Seed of the random inputs (default: from the clock; printed so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Timed repetitions per kernel (0: do not time).
    #[arg(long, default_value_t = 10)]
    repeats: u32,
}

/// Which data set, for train, encode and reconstruct.
#[derive(Args)]
struct DataArgs {
    /// mnist, digits, or a .csv / .npy file (rows are samples). Default: MNIST when found
    /// (--data-dir, LATENT_DATA_DIR, ../shared/data/mnist, data/mnist), else digits.
    #[arg(long)]
    data: Option<String>,
    /// Directory holding the MNIST IDX files.
    #[arg(long, env = "LATENT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// CSV column (from 0) holding integer labels, left out of the features.
    #[arg(long)]
    label_column: Option<usize>,
    /// Share of a data set without its own test set held out for testing.
    #[arg(long, default_value_t = 0.1)]
    test_fraction: f64,
}

/// A trained model to use.
#[derive(Args)]
struct UseArgs {
    #[command(flatten)]
    gpu: GpuArgs,
    /// Run on the CPU twins even when a GPU is present.
    #[arg(long)]
    cpu: bool,
    /// The run directory holding model.safetensors and config.json.
    #[arg(long)]
    checkpoint: PathBuf,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    model: UseArgs,
    #[command(flatten)]
    data: DataArgs,
    /// VAEs: also the importance-weighted bound with K samples per test row (an upper bound
    /// on −log p(x), tighter than the ELBO), in nats per example and bits per dimension.
    #[arg(long, value_name = "K")]
    iw: Option<usize>,
    /// Seeds the noise of the importance samples.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
struct EncodeArgs {
    #[command(flatten)]
    model: UseArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Output file: .npy, else CSV (default: <checkpoint>/codes.csv).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct PictureArgs {
    #[command(flatten)]
    model: UseArgs,
    #[command(flatten)]
    data: DataArgs,
    /// How many images.
    #[arg(long)]
    n: Option<usize>,
    /// Seeds the prior samples.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// sample, conditional models: draw every sample for this class (default: a grid with
    /// one row per class, --n samples each).
    #[arg(long)]
    label: Option<u8>,
    /// Output PNG (default: <checkpoint>/reconstructions.png or samples.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    gpu: GpuArgs,
    /// Train on the CPU twins even when a GPU is present.
    #[arg(long)]
    cpu: bool,
    /// vae, cvae (conditional VAE: a one-hot label joined to the encoder's input and to z),
    /// ae (autoencoder), dae (denoising autoencoder: --noise, default gaussian:0.5) or sparse
    /// (sparse autoencoder: --sparsity, default l1:0.001).
    #[arg(long, default_value = "vae")]
    model: String,
    /// Corrupt the input at every step, the loss against the clean input: gaussian:σ,
    /// masking:p or salt-pepper:p. Any model may take it; dae defaults to gaussian:0.5.
    #[arg(long)]
    noise: Option<String>,
    /// The sparse autoencoder's code penalty: l1:λ, or kl:ρ:λ (a sigmoid code whose mean
    /// activations are pulled toward ρ).
    #[arg(long)]
    sparsity: Option<String>,
    /// Classes of a conditional VAE (default: the largest label in the data + 1).
    #[arg(long)]
    classes: Option<usize>,
    /// VAEs: elbo, or iwae (the importance-weighted bound with --k samples per row).
    #[arg(long, default_value = "elbo")]
    objective: String,
    /// Samples per row of the IWAE objective.
    #[arg(long, default_value_t = 5)]
    k: usize,
    #[command(flatten)]
    data: DataArgs,
    /// Hidden widths of the encoder, comma-separated (the decoder mirrors them); "none" for
    /// none. Default: 400 for the VAE, none for the autoencoder.
    #[arg(long)]
    hidden: Option<String>,
    /// Size of the code. Default: 20 for the VAE, 256 for the autoencoder.
    #[arg(long)]
    latent: Option<usize>,
    /// Weight of the KL term (VAE); 1 is the plain VAE.
    #[arg(long, default_value_t = 1.0)]
    beta: f32,
    /// bernoulli (BCE) or gaussian (MSE). Default: bernoulli for the VAE, gaussian for the
    /// autoencoder.
    #[arg(long)]
    likelihood: Option<String>,
    /// relu, sigmoid or tanh.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Epochs in all (default 10; with --resume, the run's own count unless given).
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Seeds initialisation, shuffling and noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory (default: runs/<model>-<data>-<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run whose checkpoint is in this directory (its outputs go there too).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Training steps recorded into one GPU submit (the result is the same for any value).
    #[arg(long, default_value_t = latent::train::DEFAULT_STEPS_PER_SUBMIT)]
    steps_per_submit: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info(&args),
        Command::Validate(args) => validate(&args),
        Command::Train(args) => train(&args),
        Command::Eval(args) => eval(&args),
        Command::Encode(args) => encode(&args),
        Command::Reconstruct(args) => reconstruct(&args),
        Command::Sample(args) => sample(&args),
        Command::Decode(args) => decode(&args),
        Command::Denoise(args) => denoise(&args),
        Command::Score(args) => score(&args),
        Command::Interpolate(args) => interpolate(&args),
        Command::Probe(args) => probe(&args),
        Command::Scatter(args) => scatter(&args),
        Command::Traverse(args) => traverse(&args),
        Command::Bench(args) => bench(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                latent::Error::InvalidArgument(_)
                | latent::Error::Shape { .. }
                | latent::Error::Data { .. }
                | latent::Error::Io { .. }
                | latent::Error::AdapterNotFound { .. } => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

fn info(args: &GpuArgs) -> Result<ExitCode, latent::Error> {
    let backend: Backend = args.backend.parse()?;
    let adapters = list_adapters(backend);
    if adapters.is_empty() {
        println!("No GPU adapter for backend {backend}.");
        println!("Install a Vulkan driver (without a GPU: `apt-get install -y mesa-vulkan-drivers libvulkan1` for lavapipe).");
        return Ok(ExitCode::from(1));
    }
    for a in &adapters {
        let i = &a.info;
        println!(
            "[{}] {} ({:?}, {:?})",
            a.index, i.name, i.backend, i.device_type
        );
        println!("    driver: {} {}", i.driver, i.driver_info);
        let f = &a.features;
        println!(
            "    features: f16 {}, subgroups {}, timestamp queries {} (inside passes {}), cooperative matrix {}",
            yes(f.shader_f16),
            yes(f.subgroups),
            yes(f.timestamp_query),
            yes(f.timestamp_query_inside_passes),
            if f.cooperative_matrix.is_empty() { "no".to_string() } else { f.cooperative_matrix.join(", ") }
        );
        let l = &a.limits;
        println!(
            "    limits: max buffer {} MiB, max storage binding {} MiB, workgroup storage {} KiB, invocations/workgroup {}, workgroups/dim {}",
            l.max_buffer_size >> 20,
            l.max_storage_buffer_binding_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn yes(on: bool) -> &'static str {
    if on {
        "yes"
    } else {
        "no"
    }
}

fn validate(args: &ValidateArgs) -> Result<ExitCode, latent::Error> {
    let ctx = GpuContext::new(&args.gpu.options()?)?;
    let seed = args.seed.unwrap_or_else(clock_seed);
    println!("latent validate on {}", ctx.describe());
    println!(
        "seed {seed} (repeat with --seed {seed}); GPU times from {}",
        if ctx.features.timestamp_query {
            "timestamp queries"
        } else {
            "the wall clock"
        }
    );
    let shapes = if args.full {
        ShapeSet::Full
    } else {
        ShapeSet::Quick
    };
    let results = validate_all(&ctx, seed, shapes, args.repeats);
    print_table(&results);
    let failed = results.iter().filter(|r| !r.passed).count();
    println!(
        "{} checks, {} passed, {} failed",
        results.len(),
        results.len() - failed,
        failed
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

fn print_table(results: &[CheckResult]) {
    println!(
        "{:<24} {:<30} {:>12} {:>12} {:>10}  verdict",
        "kernel", "shape", "max abs err", "max rel err", "GPU us"
    );
    for r in results {
        let us = r.gpu_us.map_or("-".to_string(), |us| format!("{us:.1}"));
        let verdict = if r.passed {
            "ok".to_string()
        } else {
            format!("FAIL {}", r.detail)
        };
        println!(
            "{:<24} {:<30} {:>12.3e} {:>12.3e} {:>10}  {}",
            r.kernel, r.shape, r.max_abs_err, r.max_rel_err, us, verdict
        );
    }
}

/// The GPU to train on, or None for the CPU twins: with --cpu, without any adapter, or when
/// the only adapter is a software rasterizer and no backend was asked for (the CPU twins are
/// faster than lavapipe today).
fn training_device(gpu: &GpuArgs, cpu: bool) -> Result<Option<GpuContext>, latent::Error> {
    if cpu {
        return Ok(None);
    }
    let (ctx, note) = latent::train::pick_device(&gpu.options()?)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    if let Some(ctx) = &ctx {
        gpu.choose_matmul(ctx)?;
    }
    Ok(ctx)
}

/// The training and test sets the arguments name, and a short name for them.
fn load_data(args: &DataArgs, seed: u64) -> Result<(Dataset, Dataset, String), latent::Error> {
    let choice = match &args.data {
        Some(d) => d.clone(),
        None if data::mnist_dir(args.data_dir.as_deref()).is_some() => "mnist".into(),
        None => "digits".into(),
    };
    let split = |all: Dataset| all.split(args.test_fraction, seed);
    let (train, test) = match choice.as_str() {
        "mnist" => {
            let dir = data::mnist_dir(args.data_dir.as_deref()).ok_or_else(|| {
                latent::Error::InvalidArgument(
                    "MNIST not found: give --data-dir (or LATENT_DATA_DIR) with the four IDX files"
                        .into(),
                )
            })?;
            data::load_mnist(&dir)?
        }
        "digits" => split(data::load_digits()?)?,
        path if path.ends_with(".npy") => split(data::load_npy(Path::new(path))?)?,
        path => split(data::load_csv(
            Path::new(path),
            &CsvOptions {
                label_column: args.label_column,
            },
        )?)?,
    };
    let name = Path::new(&choice)
        .file_stem()
        .map_or(choice.clone(), |s| s.to_string_lossy().into_owned());
    Ok((train, test, name))
}

fn model_config(args: &TrainArgs, data: &Dataset) -> Result<ModelConfig, latent::Error> {
    let input = data.width;
    let (vae, default_noise, default_sparsity) = match args.model.as_str() {
        "vae" | "cvae" => (true, None, None),
        "ae" | "autoencoder" => (false, None, None),
        "dae" => (false, Some("gaussian:0.5"), None),
        "sparse" => (false, None, Some("l1:0.001")),
        other => {
            return Err(latent::Error::InvalidArgument(format!(
                "unknown model {other:?}: expected vae, cvae, ae, dae or sparse"
            )))
        }
    };
    let classes = if args.model == "cvae" {
        let labels = data.labels.as_deref().ok_or_else(|| {
            latent::Error::InvalidArgument(format!(
                "a conditional VAE needs labels, and {} has none (CSV: --label-column)",
                data.name
            ))
        })?;
        let seen = labels
            .iter()
            .map(|&l| usize::from(l) + 1)
            .max()
            .unwrap_or(1);
        Some(args.classes.unwrap_or(seen))
    } else {
        None
    };
    let noise = args
        .noise
        .as_deref()
        .or(default_noise)
        .map(Noise::parse)
        .transpose()?;
    let sparsity = args
        .sparsity
        .as_deref()
        .or(default_sparsity)
        .map(Sparsity::parse)
        .transpose()?;
    let hidden = match args.hidden.as_deref() {
        None => {
            if vae {
                vec![400]
            } else {
                Vec::new()
            }
        }
        Some("none") | Some("") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|w| {
                w.trim().parse::<usize>().map_err(|_| {
                    latent::Error::InvalidArgument(format!(
                        "--hidden {list:?}: expected widths like 400 or 256,256"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let likelihood = match args.likelihood.as_deref() {
        None => {
            if vae {
                Likelihood::Bernoulli
            } else {
                Likelihood::Gaussian
            }
        }
        Some("bernoulli") | Some("bce") => Likelihood::Bernoulli,
        Some("gaussian") | Some("mse") => Likelihood::Gaussian,
        Some(other) => {
            return Err(latent::Error::InvalidArgument(format!(
                "unknown likelihood {other:?}: expected bernoulli or gaussian"
            )))
        }
    };
    let config = ModelConfig {
        kind: if vae {
            ModelKind::Vae { beta: args.beta }
        } else {
            ModelKind::Autoencoder
        },
        input,
        decoder: hidden.iter().rev().copied().collect(),
        encoder: hidden,
        latent: args.latent.unwrap_or(if vae { 20 } else { 256 }),
        activation: args.activation.parse::<Activation>()?,
        likelihood,
        noise,
        sparsity,
        classes,
        importance_samples: match args.objective.as_str() {
            "elbo" => None,
            "iwae" => Some(args.k),
            other => {
                return Err(latent::Error::InvalidArgument(format!(
                    "--objective {other:?}: expected elbo or iwae"
                )))
            }
        },
    };
    config.check()?;
    Ok(config)
}

fn train(args: &TrainArgs) -> Result<ExitCode, latent::Error> {
    let (train_set, test_set, data_name) = load_data(&args.data, args.seed)?;
    let resumed = args
        .resume
        .as_deref()
        .map(checkpoint::load_record)
        .transpose()?;
    let record = match resumed {
        Some(record) => {
            if record.model.input != train_set.width {
                return Err(latent::Error::InvalidArgument(format!(
                    "the checkpoint's model takes {} values per sample, the data has {}",
                    record.model.input, train_set.width
                )));
            }
            RunRecord {
                epochs: args.epochs.unwrap_or(record.epochs),
                ..record
            }
        }
        None => RunRecord {
            model: model_config(args, &train_set)?,
            batch: args.batch,
            epochs: args.epochs.unwrap_or(10),
            adam: AdamConfig {
                lr: args.lr,
                ..Default::default()
            },
            seed: args.seed,
            init_seed: args.seed,
            data: format!(
                "{} ({} train, {} test rows)",
                data_name, train_set.rows, test_set.rows
            ),
            epoch: 0,
            next_step: 1,
        },
    };
    let out = match (&args.resume, &args.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => dir.clone(),
        (None, None) => {
            PathBuf::from("runs").join(format!("{}-{data_name}-{}", args.model, unix_seconds()))
        }
    };
    let device = training_device(&args.gpu, args.cpu)?;
    let (graph, _) = record.model.build(record.batch)?;
    let plan = Plan::compile(graph)?;
    let options = TrainOptions {
        batch: record.batch,
        epochs: record.epochs,
        adam: record.adam,
        seed: record.seed,
    };
    let init = init_params(&plan, record.init_seed);
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let mut trainer = Trainer::new(
        device_arg,
        &plan,
        &record.model,
        &init,
        (&train_set).into(),
        Some((&test_set).into()),
        options,
    )?;
    trainer.set_steps_per_submit(args.steps_per_submit)?;
    if args.resume.is_some() {
        trainer.restore(&checkpoint::load_state(&out, &plan)?)?;
    }
    let on = device
        .as_ref()
        .map_or("the CPU twins".to_string(), GpuContext::describe);
    println!(
        "training {} on {} with {on}",
        describe_model(&record.model),
        record.data
    );
    let dispatches = trainer.dispatches_per_step().map_or(String::new(), |d| {
        format!(", {d} dispatches in one submit per step")
    });
    println!(
        "{} steps per epoch of {} rows{dispatches}; writing to {}",
        trainer.steps_per_epoch(),
        record.batch,
        out.display()
    );
    let unit = if record.model.kind == ModelKind::Autoencoder
        && record.model.likelihood == Likelihood::Gaussian
    {
        "MSE per pixel"
    } else {
        "nats per example"
    };
    let interactive = std::io::stderr().is_terminal();
    while trainer.epoch() < record.epochs {
        let epoch = trainer.epoch() + 1;
        let started = std::time::Instant::now();
        let mut progress = |step: usize, steps: usize, loss: f64| {
            if interactive {
                let rate = (step * record.batch) as f64 / started.elapsed().as_secs_f64();
                let bar: String = (0..30)
                    .map(|i| if i * steps < 30 * step { '#' } else { '.' })
                    .collect();
                eprint!(
                    "\repoch {epoch}/{} [{bar}] {step}/{steps} loss {loss:.4} {rate:.0} samples/s ",
                    record.epochs
                );
                let _ = std::io::stderr().flush();
            }
        };
        // The loss is read back from the GPU only for the progress line: about 30 times an
        // epoch on a terminal, never otherwise.
        let progress_every = if interactive {
            (trainer.steps_per_epoch() / 30).max(1)
        } else {
            0
        };
        let report = trainer.run_epoch(progress_every, &mut progress)?;
        if interactive {
            eprint!("\r{:100}\r", "");
        }
        let terms: Vec<String> = report
            .train_terms
            .iter()
            .map(|(n, v)| format!("{n} {v:.4}"))
            .collect();
        println!(
            "epoch {epoch}/{}: train {:.4}  test {}  {unit}  ({})  {:.1} s, {:.0} samples/s",
            record.epochs,
            report.train_loss,
            report.test_loss.map_or("-".into(), |t| format!("{t:.4}")),
            terms.join(", "),
            report.seconds,
            report.samples_per_second
        );
        checkpoint::save(&out, &plan, &record, &trainer.state()?)?;
        append_epoch(&out.join("loss.csv"), &report)?;
        let (train_curve, test_curve) = latent::io::loss_log::read_losses(&out.join("loss.csv"))?;
        latent::io::plot::write_loss_plot(&out.join("loss.png"), &train_curve, &test_curve)?;
    }
    println!(
        "done: checkpoint, loss.csv and loss.png in {}",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn describe_model(model: &ModelConfig) -> String {
    let mut widths = vec![model.input];
    widths.extend(&model.encoder);
    widths.push(model.latent);
    widths.extend(&model.decoder);
    widths.push(model.input);
    let shape = widths
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("-");
    match model.kind {
        ModelKind::Vae { beta } => format!(
            "a VAE {shape} (β = {beta}, {:?}, {:?})",
            model.likelihood, model.activation
        ),
        ModelKind::Autoencoder => format!(
            "an autoencoder {shape} ({:?}, {:?})",
            model.likelihood, model.activation
        ),
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The checkpoint's record, its device, and the test set of the data it names (split with
/// the run's seed, so digits, CSV and .npy give the run's own test rows).
fn open_model(
    model: &UseArgs,
    data: &DataArgs,
) -> Result<(RunRecord, Option<GpuContext>, Dataset), latent::Error> {
    let record = checkpoint::load_record(&model.checkpoint)?;
    let (_, test, _) = load_data(data, record.seed)?;
    if test.width != record.model.input {
        return Err(latent::Error::InvalidArgument(format!(
            "the model takes {} values per row, the data has {} (give the run's --data)",
            record.model.input, test.width
        )));
    }
    Ok((record, training_device(&model.gpu, model.cpu)?, test))
}

fn encode(args: &EncodeArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let codes = latent::infer::encode(
        device_arg,
        &record.model,
        &args.model.checkpoint,
        (&test).into(),
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.checkpoint.join("codes.csv"));
    latent::io::codes::write_rows(&out, &codes, record.model.latent)?;
    println!(
        "{} codes of {} values ({}) in {}",
        test.rows,
        record.model.latent,
        test.name,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// (height, width) to draw rows of the data as, or an error.
fn picture_shape(data: &Dataset) -> Result<(usize, usize), latent::Error> {
    data.image_shape.ok_or_else(|| {
        latent::Error::InvalidArgument(format!(
            "{} is not images: no (height, width) to draw",
            data.name
        ))
    })
}

fn reconstruct(args: &PictureArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    let shape = picture_shape(&test)?;
    let n = args.n.unwrap_or(10).clamp(1, test.rows);
    let originals = test.subset(&(0..n).collect::<Vec<_>>());
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let rebuilt = latent::infer::reconstruct(
        device_arg,
        &record.model,
        &args.model.checkpoint,
        (&originals).into(),
    )?;
    let mut images = originals.to_f32();
    images.extend(rebuilt);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.checkpoint.join("reconstructions.png"));
    latent::io::image::write_grid_png(&out, &images, shape, n)?;
    println!(
        "{n} test images and their reconstructions in {}",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn sample(args: &PictureArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    if !matches!(record.model.kind, ModelKind::Vae { .. }) {
        return Err(latent::Error::InvalidArgument(
            "sampling needs a VAE: an autoencoder has no prior".into(),
        ));
    }
    let shape = picture_shape(&test)?;
    let (labels, columns) = match (record.model.classes, args.label) {
        (None, None) => {
            let n = args.n.unwrap_or(64).max(1);
            (None, (n as f64).sqrt().ceil() as usize)
        }
        (Some(_), Some(_)) | (None, Some(_)) => {
            let label = check_label(&record.model, args.label)?;
            let n = args.n.unwrap_or(64).max(1);
            (
                Some(vec![label.unwrap_or(0); n]),
                (n as f64).sqrt().ceil() as usize,
            )
        }
        (Some(classes), None) => {
            let per_class = args.n.unwrap_or(8).max(1);
            let labels = (0..classes).flat_map(|c| std::iter::repeat_n(c as u8, per_class));
            (Some(labels.collect()), per_class)
        }
    };
    let n = labels
        .as_ref()
        .map_or(args.n.unwrap_or(64).max(1), Vec::len);
    let codes = latent::infer::prior_codes(&record.model, n, args.seed);
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let images = latent::infer::decode(
        device_arg,
        &record.model,
        &args.model.checkpoint,
        &codes,
        labels.as_deref(),
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.checkpoint.join("samples.png"));
    latent::io::image::write_grid_png(&out, &images, shape, columns)?;
    match (record.model.classes, args.label) {
        (Some(classes), None) => println!(
            "{n} samples from the prior, one row per class 0..{}, in {}",
            classes - 1,
            out.display()
        ),
        (_, Some(label)) => println!(
            "{n} samples from the prior for class {label} in {}",
            out.display()
        ),
        _ => println!("{n} samples from the prior in {}", out.display()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The label to decode with: required by a conditional model (below its class count),
/// refused by the others.
fn check_label(model: &ModelConfig, label: Option<u8>) -> Result<Option<u8>, latent::Error> {
    match (model.classes, label) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(latent::Error::InvalidArgument(
            "--label is for conditional models (train with --model cvae)".into(),
        )),
        (Some(classes), None) => Err(latent::Error::InvalidArgument(format!(
            "a conditional model needs --label, a class in 0..{}",
            classes - 1
        ))),
        (Some(classes), Some(label)) if usize::from(label) >= classes => {
            Err(latent::Error::InvalidArgument(format!(
                "--label {label}: the model knows classes 0..{}",
                classes - 1
            )))
        }
        (Some(_), Some(label)) => Ok(Some(label)),
    }
}

fn probe(args: &ProbeArgs) -> Result<ExitCode, latent::Error> {
    use latent::probe::{pca_baseline, Features, ProbeOptions, ProbeReport};
    let record = checkpoint::load_record(&args.model.checkpoint)?;
    let (train, test, _) = load_data(&args.data, record.seed)?;
    let model = &record.model;
    if train.width != model.input {
        return Err(latent::Error::InvalidArgument(format!(
            "the model takes {} values per row, the data has {} (give the run's --data)",
            model.input, train.width
        )));
    }
    let device = training_device(&args.model.gpu, args.model.cpu)?;
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let checkpoint = &args.model.checkpoint;
    let codes = |set: &Dataset| -> Result<Features, latent::Error> {
        let values = latent::infer::encode(device_arg, model, checkpoint, set.into())?;
        Features::new(values, model.latent, set.labels.clone())
    };
    let (train_codes, test_codes) = (codes(&train)?, codes(&test)?);
    let (train_pixels, test_pixels) = (
        Features::from_dataset(&train)?,
        Features::from_dataset(&test)?,
    );
    let options = ProbeOptions {
        seed: args.seed,
        ..Default::default()
    };
    let code_name = match model.kind {
        ModelKind::Vae { .. } => "codes (VAE μ)",
        ModelKind::Autoencoder => "codes",
    };
    let mut report = ProbeReport { rows: Vec::new() };
    report.rows.push(latent::probe::probe(
        code_name,
        &train_codes,
        &test_codes,
        &options,
    )?);
    let (train_pca, test_pca) = pca_baseline(&train_pixels, &test_pixels, model.latent)?;
    let pca_name = format!("pca-{} of pixels", model.latent);
    report.rows.push(latent::probe::probe(
        &pca_name, &train_pca, &test_pca, &options,
    )?);
    if args.raw {
        report.rows.push(latent::probe::probe(
            "raw pixels",
            &train_pixels,
            &test_pixels,
            &options,
        )?);
    }
    print!("{report}");
    if let Some(path) = &args.json {
        latent::io::write_atomic(path, report.to_json()?.as_bytes())?;
        println!("JSON in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn scatter(args: &ScatterArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let codes = latent::infer::encode(
        device_arg,
        &record.model,
        &args.model.checkpoint,
        (&test).into(),
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.checkpoint.join("scatter.png"));
    latent::io::scatter::scatter_codes(&out, &codes, record.model.latent, test.labels.as_deref())?;
    let how = if record.model.latent > 2 {
        "on their first two principal components"
    } else {
        "directly"
    };
    println!(
        "{} test codes {how}, coloured by label, in {}",
        test.rows,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn interpolate(args: &InterpolateArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    let shape = picture_shape(&test)?;
    let vae = matches!(record.model.kind, ModelKind::Vae { .. });
    let spherical = match args.path.as_deref() {
        None => vae,
        Some("spherical") | Some("slerp") => true,
        Some("linear") | Some("lerp") => false,
        Some(other) => {
            return Err(latent::Error::InvalidArgument(format!(
                "--path {other:?}: expected linear or spherical"
            )))
        }
    };
    let pairs = args.pairs.clamp(1, test.rows / 2);
    if test.rows < 2 || args.steps < 2 {
        return Err(latent::Error::InvalidArgument(format!(
            "interpolation needs 2 test rows and 2 steps (have {} rows, --steps {})",
            test.rows, args.steps
        )));
    }
    let ends = test.subset(&(0..2 * pairs).collect::<Vec<_>>());
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let (model, checkpoint) = (&record.model, &args.model.checkpoint);
    let codes = latent::infer::encode(device_arg, model, checkpoint, (&ends).into())?;
    let pair_rows: Vec<(usize, usize)> = (0..pairs).map(|p| (2 * p, 2 * p + 1)).collect();
    let path = latent::explore::interpolation_codes(
        &codes,
        model.latent,
        &pair_rows,
        args.steps,
        spherical,
    )?;
    // A conditional model decodes each path with its first image's label.
    let labels = ends.labels.as_ref().map(|labels| {
        (0..pairs)
            .flat_map(|p| std::iter::repeat_n(labels[2 * p], args.steps))
            .collect::<Vec<u8>>()
    });
    let labels = labels.filter(|_| model.classes.is_some());
    let decoded = latent::infer::decode(device_arg, model, checkpoint, &path, labels.as_deref())?;
    let (pixels, size) = (ends.to_f32(), test.width);
    let mut images = Vec::new();
    for p in 0..pairs {
        images.extend_from_slice(&pixels[2 * p * size..(2 * p + 1) * size]);
        images.extend_from_slice(&decoded[p * args.steps * size..(p + 1) * args.steps * size]);
        images.extend_from_slice(&pixels[(2 * p + 1) * size..(2 * p + 2) * size]);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| checkpoint.join("interpolation.png"));
    latent::io::image::write_grid_png(&out, &images, shape, args.steps + 2)?;
    println!(
        "{pairs} {} paths of {} codes between test images in {}",
        if spherical { "spherical" } else { "linear" },
        args.steps,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn traverse(args: &TraverseArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    let shape = picture_shape(&test)?;
    let model = &record.model;
    let dims: Vec<usize> = match args.dims.as_deref() {
        None => (0..model.latent.min(10)).collect(),
        Some(list) => list
            .split(',')
            .map(|d| {
                d.trim().parse::<usize>().map_err(|_| {
                    latent::Error::InvalidArgument(format!(
                        "--dims {list:?}: expected dimensions like 0,1,2"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if args.row >= test.rows || !(args.range.is_finite() && args.range > 0.0) {
        return Err(latent::Error::InvalidArgument(format!(
            "--row {} of {} test rows, --range {}: the row must exist and the range be > 0",
            args.row, test.rows, args.range
        )));
    }
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let checkpoint = &args.model.checkpoint;
    let codes = latent::infer::encode(device_arg, model, checkpoint, (&test).into())?;
    let ranges = match model.kind {
        ModelKind::Vae { .. } => vec![(-args.range, args.range); model.latent],
        ModelKind::Autoencoder => latent::explore::code_ranges(&codes, model.latent)?,
    };
    let base = &codes[args.row * model.latent..(args.row + 1) * model.latent];
    let sweep = latent::explore::traversal_codes(base, &dims, &ranges, args.steps)?;
    let labels = match (model.classes, &test.labels) {
        (Some(_), Some(labels)) => Some(vec![labels[args.row]; sweep.len() / model.latent]),
        _ => None,
    };
    let images = latent::infer::decode(device_arg, model, checkpoint, &sweep, labels.as_deref())?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| checkpoint.join("traversal.png"));
    latent::io::image::write_grid_png(&out, &images, shape, args.steps)?;
    println!(
        "dimensions {dims:?} swept in {} steps from test row {}'s code in {}",
        args.steps,
        args.row,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn score(args: &ScoreArgs) -> Result<ExitCode, latent::Error> {
    let record = checkpoint::load_record(&args.model.checkpoint)?;
    let (train, test, _) = load_data(&args.data, record.seed)?;
    let rows = match &args.file {
        None => test,
        Some(path) if path.extension().is_some_and(|e| e == "npy") => data::load_npy(path)?,
        Some(path) => data::load_csv(
            path,
            &CsvOptions {
                label_column: args.data.label_column,
            },
        )?,
    };
    for (set, name) in [(&train, "the training data"), (&rows, "the rows to score")] {
        if set.width != record.model.input {
            return Err(latent::Error::InvalidArgument(format!(
                "the model takes {} values per row, {name} has {}",
                record.model.input, set.width
            )));
        }
    }
    let device = training_device(&args.model.gpu, args.model.cpu)?;
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let checkpoint = &args.model.checkpoint;
    let reference = latent::infer::score(device_arg, &record.model, checkpoint, (&train).into())?;
    let threshold = latent::infer::percentile(reference.primary(), args.percentile)?;
    let scores = latent::infer::score(device_arg, &record.model, checkpoint, (&rows).into())?;
    let flagged: Vec<bool> = scores.primary().iter().map(|&s| s > threshold).collect();
    let mut csv = String::from("row,reconstruction_mse");
    if scores.negative_elbo.is_some() {
        csv.push_str(",negative_elbo");
    }
    csv.push_str(",flagged\n");
    for (row, &error) in scores.reconstruction.iter().enumerate() {
        csv.push_str(&format!("{row},{error}"));
        if let Some(elbo) = &scores.negative_elbo {
            csv.push_str(&format!(",{}", elbo[row]));
        }
        csv.push_str(&format!(",{}\n", u8::from(flagged[row])));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| checkpoint.join("scores.csv"));
    latent::io::write_atomic(&out, csv.as_bytes())?;
    let what = if scores.negative_elbo.is_some() {
        "negative ELBO (nats)"
    } else {
        "reconstruction MSE"
    };
    println!(
        "{} rows of {} scored by {what}; threshold {threshold:.5} = percentile {} of {} training rows; {} rows above it; scores in {}",
        rows.rows,
        rows.name,
        args.percentile,
        train.rows,
        flagged.iter().filter(|&&f| f).count(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn denoise(args: &DenoiseArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    let noise = match (&args.noise, record.model.noise) {
        (Some(text), _) => Noise::parse(text)?,
        (None, Some(noise)) => noise,
        (None, None) => {
            return Err(latent::Error::InvalidArgument(
                "the model was trained without noise: give --noise (e.g. gaussian:0.5)".into(),
            ))
        }
    };
    let shape = picture_shape(&test)?;
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let result = latent::infer::denoise(
        device_arg,
        &record.model,
        &args.model.checkpoint,
        (&test).into(),
        noise,
        args.seed,
    )?;
    let n = args.n.clamp(1, test.rows);
    let width = test.width;
    let mut images = result.noisy[..n * width].to_vec();
    images.extend_from_slice(&result.denoised[..n * width]);
    images.extend_from_slice(&test.subset(&(0..n).collect::<Vec<_>>()).to_f32());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.checkpoint.join("denoised.png"));
    latent::io::image::write_grid_png(&out, &images, shape, n)?;
    println!(
        "{noise} on {} test rows of {}: noisy MSE {:.5}, denoised MSE {:.5} (per value, against the clean rows)",
        test.rows, test.name, result.noisy_mse, result.denoised_mse
    );
    println!("{n} noisy | denoised | clean images in {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn eval(args: &EvalArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    if args.iw.is_some() && !matches!(record.model.kind, ModelKind::Vae { .. }) {
        return Err(latent::Error::InvalidArgument(
            "--iw is for VAEs: an autoencoder has no likelihood".into(),
        ));
    }
    if args.iw == Some(0) {
        return Err(latent::Error::InvalidArgument(
            "--iw 0: K must be at least 1".into(),
        ));
    }
    let batch = record.batch.min(test.rows);
    let plan = Plan::compile(record.model.build(batch)?.0)?;
    let state = checkpoint::load_state(&args.model.checkpoint, &plan)?;
    let options = TrainOptions {
        batch,
        epochs: 1,
        adam: record.adam,
        seed: record.seed,
    };
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let mut trainer = Trainer::new(
        device_arg,
        &plan,
        &record.model,
        &state.params,
        (&test).into(),
        Some((&test).into()),
        options,
    )?;
    let (loss, terms) = trainer
        .test_report()?
        .ok_or_else(|| latent::Error::InvalidArgument("no test rows".into()))?;
    let terms: Vec<String> = terms.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
    let unit = if record.model.kind == ModelKind::Autoencoder
        && record.model.likelihood == Likelihood::Gaussian
    {
        "MSE per pixel"
    } else {
        "nats per example"
    };
    println!(
        "{}: test loss {loss:.4} {unit} ({}) on {} rows of {}",
        args.model.checkpoint.display(),
        terms.join(", "),
        test.rows,
        test.name
    );
    if let Some(k) = args.iw {
        let bound = latent::infer::importance_weighted(
            device_arg,
            &record.model,
            &args.model.checkpoint,
            (&test).into(),
            k,
            args.seed,
        )?;
        println!(
            "importance-weighted bound, K = {k}: {:.4} nats per example ({:.5} bits/dim); ELBO from the same draws: {:.4} nats ({:.5} bits/dim)",
            bound.iw_nats, bound.iw_bits_per_dim, bound.elbo_nats, bound.elbo_bits_per_dim
        );
    }
    if record.model.kind == ModelKind::Autoencoder {
        let codes = latent::infer::encode(
            device_arg,
            &record.model,
            &args.model.checkpoint,
            (&test).into(),
        )?;
        let s = latent::infer::code_sparsity(&codes, record.model.latent)?;
        println!(
            "code: mean activation {:.4}, {:.1} % of values near zero (|h| < {}), {:.1} % of {} units always near zero",
            s.mean_activation,
            100.0 * s.near_zero,
            latent::infer::NEAR_ZERO,
            100.0 * s.dead_units,
            record.model.latent
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn decode(args: &DecodeArgs) -> Result<ExitCode, latent::Error> {
    let record = checkpoint::load_record(&args.model.checkpoint)?;
    let (codes, width) = data::load_raw_rows(&args.codes)?;
    if width != record.model.latent {
        return Err(latent::Error::InvalidArgument(format!(
            "{}: rows of {width} values, the model's codes have {}",
            args.codes.display(),
            record.model.latent
        )));
    }
    let label = check_label(&record.model, args.label)?;
    let labels = label.map(|l| vec![l; codes.len() / width]);
    let device = training_device(&args.model.gpu, args.model.cpu)?;
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let decoded = latent::infer::decode(
        device_arg,
        &record.model,
        &args.model.checkpoint,
        &codes,
        labels.as_deref(),
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.checkpoint.join("decoded.png"));
    let rows = codes.len() / width;
    if out.extension().is_some_and(|e| e == "png") {
        let side = (record.model.input as f64).sqrt().round() as usize;
        if side * side != record.model.input {
            return Err(latent::Error::InvalidArgument(format!(
                "{} values per row are not a square image: write .csv or .npy",
                record.model.input
            )));
        }
        latent::io::image::write_grid_png(
            &out,
            &decoded,
            (side, side),
            (rows as f64).sqrt().ceil() as usize,
        )?;
    } else {
        latent::io::codes::write_rows(&out, &decoded, record.model.input)?;
    }
    println!("{rows} decoded rows in {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn bench(args: &BenchArgs) -> Result<ExitCode, latent::Error> {
    use latent::bench;
    if args.steps_per_submit.contains(&0) || args.steps == Some(0) {
        return Err(latent::Error::InvalidArgument(
            "--steps and --steps-per-submit must be at least 1".into(),
        ));
    }
    // Bad input before opening the GPU.
    args.gpu.matmul.parse::<MatmulPolicy>()?;
    let configs = args
        .configs
        .as_ref()
        .map(|names| {
            names
                .iter()
                .map(|n| n.parse())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let ctx = match GpuContext::new(&args.gpu.options()?) {
        Ok(ctx) => {
            args.gpu.choose_matmul(&ctx)?;
            Some(ctx)
        }
        Err(e) if args.cpu => {
            eprintln!("{e}\nTiming the CPU twins only.");
            None
        }
        Err(e) => return Err(e),
    };
    let mnist = data::mnist_dir(args.data_dir.as_deref())
        .map(|dir| data::load_mnist(&dir))
        .transpose()?
        .map(|(train, _)| train);
    let synthetic;
    let (data, data_name) = match &mnist {
        Some(train) => (train.into(), "mnist"),
        None => {
            synthetic = bench::synthetic_rows();
            let (bytes, rows, width) = &synthetic;
            (bench::byte_data(bytes, *rows, *width), "synthetic")
        }
    };
    let options = bench::BenchOptions {
        kernels: !args.no_kernels,
        large: args.large,
        configs,
        steps: args.steps,
        steps_per_submit: args.steps_per_submit.clone(),
        cpu: args.cpu,
        epoch: args.epoch,
    };
    if let Some(ctx) = &ctx {
        println!("latent bench on {}", ctx.describe());
        let choice = ctx.matmul_choice();
        println!(
            "matmul: {} (general), {} (skinny); GPU times from {}",
            choice.general,
            choice.skinny,
            if ctx.features.timestamp_query {
                "timestamp queries"
            } else {
                "the wall clock"
            }
        );
    }
    let report = bench::run(ctx.as_ref(), &options, data, data_name, &mut |line| {
        eprintln!("  {line}")
    })?;
    print_bench(&report);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| latent::Error::InvalidArgument(format!("bench report: {e}")))?;
        latent::io::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_bench(report: &latent::bench::BenchReport) {
    let load = report
        .load_average
        .map_or("-".into(), |l| format!("{l:.2}"));
    println!(
        "date {}, commit {}, data {}, load average {load}",
        report.date, report.commit, report.data
    );
    if !report.kernels.is_empty() {
        println!(
            "{:<24} {:<22} {:<16} {:>12} {:>10}",
            "kernel", "shape", "variant", "GPU us", "rate"
        );
    }
    for k in &report.kernels {
        let rate = match (k.gflop_per_s, k.gbyte_per_s) {
            (Some(f), _) => format!("{f:.2} GFLOP/s"),
            (_, Some(b)) => format!("{b:.2} GB/s"),
            _ => "-".into(),
        };
        println!(
            "{:<24} {:<22} {:<16} {:>12.1} {:>10}",
            k.kernel,
            k.shape,
            k.variant.as_deref().unwrap_or("-"),
            k.gpu_us,
            rate
        );
    }
    for f in &report.steps {
        println!("{}", latent::bench::describe_step(f));
    }
    for note in &report.notes {
        println!("note: {note}");
    }
}
