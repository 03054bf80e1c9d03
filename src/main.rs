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
use latent::model::{init_params, Likelihood, ModelConfig, ModelKind};
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
    Eval(Box<EncodeArgs>),
    /// Encode rows (default: the test set) to latent codes (the VAE's means) as CSV or .npy.
    Encode(Box<EncodeArgs>),
    /// A PNG grid of test images (top row) above their reconstructions.
    Reconstruct(Box<PictureArgs>),
    /// A PNG grid of samples decoded from the prior N(0, I).
    Sample(Box<PictureArgs>),
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
    /// vae or ae.
    #[arg(long, default_value = "vae")]
    model: String,
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
    let options = gpu.options()?;
    let asked = options.backend != Backend::Auto || options.adapter.is_some();
    match GpuContext::new(&options) {
        Ok(ctx) if ctx.info.device_type == wgpu::DeviceType::Cpu && !asked => {
            eprintln!("{} is a software rasterizer: using the CPU path, which is faster here (--backend vulkan to use it anyway)", ctx.info.name);
            Ok(None)
        }
        Ok(ctx) => {
            gpu.choose_matmul(&ctx)?;
            Ok(Some(ctx))
        }
        Err(e @ latent::Error::NoAdapter { .. }) if !asked => {
            eprintln!("{e}\nUsing the CPU path instead.");
            Ok(None)
        }
        Err(e) => Err(e),
    }
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

fn model_config(args: &TrainArgs, input: usize) -> Result<ModelConfig, latent::Error> {
    let vae = match args.model.as_str() {
        "vae" => true,
        "ae" | "autoencoder" => false,
        other => {
            return Err(latent::Error::InvalidArgument(format!(
                "unknown model {other:?}: expected vae or ae"
            )))
        }
    };
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
            model: model_config(args, train_set.width)?,
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
    let n = args.n.unwrap_or(64).max(1);
    let codes = latent::infer::prior_codes(&record.model, n, args.seed);
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let images = latent::infer::decode(device_arg, &record.model, &args.model.checkpoint, &codes)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.checkpoint.join("samples.png"));
    latent::io::image::write_grid_png(&out, &images, shape, (n as f64).sqrt().ceil() as usize)?;
    println!("{n} samples from the prior in {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn eval(args: &EncodeArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
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
    let device = training_device(&args.model.gpu, args.model.cpu)?;
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let decoded = latent::infer::decode(device_arg, &record.model, &args.model.checkpoint, &codes)?;
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
