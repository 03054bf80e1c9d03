//! `latent train`: the model from the arguments, the data, the device, the epochs.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use latent::data::{self, CsvOptions, Dataset};
use latent::gpu::GpuContext;
use latent::graph::plan::Plan;
use latent::io::checkpoint::{self, DataSource, RunRecord};
use latent::io::loss_log::append_epoch;
use latent::kernels::activation::Activation;
use latent::kernels::adam::AdamConfig;
use latent::model::{init_params, Likelihood, ModelConfig, ModelKind, Noise, Sparsity};
use latent::train::{Device, TrainOptions, Trainer};

use crate::args::{DataArgs, GpuArgs};

/// The least time between two progress lines inside an epoch: each reads the loss back,
/// leaving the GPU idle for a moment (Trainer::set_progress_interval).
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Train on the CPU twins even when a GPU is present.
    #[arg(long)]
    pub cpu: bool,
    /// vae, cvae (conditional VAE: a one-hot label joined to the encoder's input and to z),
    /// ae (autoencoder), dae (denoising autoencoder: --noise, default gaussian:0.5) or sparse
    /// (sparse autoencoder: --sparsity, default l1:0.001).
    #[arg(long, default_value = "vae")]
    pub model: String,
    /// Corrupt the input at every step, the loss against the clean input: gaussian:σ,
    /// masking:p or salt-pepper:p. Any model may take it; dae defaults to gaussian:0.5.
    #[arg(long)]
    pub noise: Option<String>,
    /// The sparse autoencoder's code penalty: l1:λ, or kl:ρ:λ (a sigmoid code whose mean
    /// activations are pulled toward ρ).
    #[arg(long)]
    pub sparsity: Option<String>,
    /// Classes of a conditional VAE (default: the largest label in the data + 1).
    #[arg(long)]
    pub classes: Option<usize>,
    /// VAEs: elbo, or iwae (the importance-weighted bound with --k samples per row).
    #[arg(long, default_value = "elbo")]
    pub objective: String,
    /// Samples per row of the IWAE objective.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden widths of the encoder, comma-separated (the decoder mirrors them); "none" for
    /// none. Default: 400 for the VAE, none for the autoencoder.
    #[arg(long)]
    pub hidden: Option<String>,
    /// Size of the code. Default: 20 for the VAE, 256 for the autoencoder.
    #[arg(long)]
    pub latent: Option<usize>,
    /// Weight of the KL term (VAE); 1 is the plain VAE.
    #[arg(long, default_value_t = 1.0)]
    pub beta: f32,
    /// bernoulli (BCE) or gaussian (MSE). Default: bernoulli for the VAE, gaussian for the
    /// autoencoder.
    #[arg(long)]
    pub likelihood: Option<String>,
    /// relu, sigmoid or tanh.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// Autoencoders: the code layer without an activation (a linear bottleneck: codes of
    /// any sign, none dead), for codes used as features or for plots. Default: the
    /// --activation, as in the 784-256-784 ReLU autoencoder.
    #[arg(long)]
    pub linear_code: bool,
    /// Epochs in all (default 10; with --resume, the run's own count unless given).
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// Seeds initialisation, shuffling and noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (default: runs/<model>-<data>-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run whose checkpoint is in this directory (its outputs go there too).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Training steps recorded into one GPU submit (the result is the same for any value).
    #[arg(long, default_value_t = latent::train::DEFAULT_STEPS_PER_SUBMIT)]
    pub steps_per_submit: u32,
    /// The flags of RUN_FLAGS given on the command line (filled by main from clap's
    /// matches): a resumed run refuses those that shape a new run, and takes --lr.
    #[arg(skip)]
    pub given: Vec<String>,
}

/// The flags that shape a run: its model, batch, seed and learning rate. A resumed run keeps
/// its own, so giving one but --lr with another value than the run's is an error rather
/// than a flag silently ignored; --lr (say, lower for fine-tuning) and --epochs apply to a
/// resumed run.
const RUN_FLAGS: &[&str] = &[
    "model",
    "noise",
    "sparsity",
    "classes",
    "objective",
    "k",
    "hidden",
    "latent",
    "beta",
    "likelihood",
    "activation",
    "linear_code",
    "batch",
    "seed",
    "lr",
];

/// The flags of RUN_FLAGS that `matches` (train's) got from the command line, as typed.
pub fn run_flags_given(matches: &clap::ArgMatches) -> Vec<String> {
    RUN_FLAGS
        .iter()
        .filter(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect()
}

/// The GPU to train on, or None for the CPU twins: with --cpu, without any adapter, or when
/// the only adapter is a software rasterizer and no backend or adapter was asked for (the
/// CPU twins are faster there; latent::train::pick_device).
/// `--matmul coop-f16` runs only on a GPU: without one it is an error, not f32 on the CPU.
pub fn training_device(gpu: &GpuArgs, cpu: bool) -> Result<Option<GpuContext>, latent::Error> {
    let options = gpu.options()?;
    let coop_refused = |why: &str| {
        latent::Error::InvalidArgument(format!(
            "--matmul coop-f16 runs on a GPU with cooperative matrices, and {why}; the CPU path \
             computes in f32 (leave out --matmul coop-f16 to use it)"
        ))
    };
    if cpu {
        if options.cooperative_matrix {
            return Err(coop_refused("--cpu asks for the CPU path"));
        }
        return Ok(None);
    }
    let (ctx, note) = latent::train::pick_device(&options)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    match &ctx {
        Some(ctx) => gpu.choose_matmul(ctx)?,
        None if options.cooperative_matrix => {
            return Err(coop_refused("no GPU adapter is used here"))
        }
        None => {}
    }
    Ok(ctx)
}

/// Refuses, before any training, an output directory the run could not end in: a path that
/// is a file, or (without --resume) a directory holding another run, which the new
/// checkpoint would overwrite.
fn check_out_dir(out: &Path, resuming: bool) -> Result<(), latent::Error> {
    if out.exists() && !out.is_dir() {
        return Err(latent::Error::Io {
            path: out.display().to_string(),
            message: "exists and is not a directory; --out takes a directory".into(),
        });
    }
    if !resuming && out.join("config.json").exists() {
        return Err(latent::Error::InvalidArgument(format!(
            "{} already holds a run: `--resume {}` continues it; another --out starts a new one",
            out.display(),
            out.display()
        )));
    }
    Ok(())
}

/// The share of rows held out for testing when neither --test-fraction nor a checkpoint says.
const DEFAULT_TEST_FRACTION: f64 = 0.1;

/// The data set `args` name. Where they leave it open: the data `run` (a checkpoint's
/// record) was trained on, with its label column and test share (checkpoints from before
/// those were recorded: their data when it is mnist or digits); else MNIST when found, else
/// the digits. A file's path is made absolute, for commands run from elsewhere.
pub fn data_source(args: &DataArgs, run: Option<&RunRecord>) -> DataSource {
    // A record's data reads "mnist (60000 train, 10000 test rows)".
    let recorded = run.and_then(|r| {
        r.data_source.clone().or_else(|| {
            let name = r.data.split(" (").next()?;
            ["mnist", "digits"].contains(&name).then(|| DataSource {
                data: name.into(),
                label_column: None,
                labels: None,
                test_fraction: DEFAULT_TEST_FRACTION,
            })
        })
    });
    let fraction = |recorded: f64| args.test_fraction.unwrap_or(recorded);
    // A labels file's path made absolute like the data's.
    let labels_arg = args.labels.as_ref().map(|path| {
        std::fs::canonicalize(path)
            .unwrap_or(path.clone())
            .display()
            .to_string()
    });
    let source = match (&args.data, recorded) {
        (Some(data), _) => DataSource {
            data: data.clone(),
            label_column: args.label_column,
            labels: labels_arg.clone(),
            test_fraction: fraction(DEFAULT_TEST_FRACTION),
        },
        (None, Some(run)) => DataSource {
            label_column: args.label_column.or(run.label_column),
            labels: labels_arg.clone().or(run.labels.clone()),
            test_fraction: fraction(run.test_fraction),
            ..run
        },
        (None, None) => DataSource {
            data: if data::mnist_dir(args.data_dir.as_deref()).is_some() {
                "mnist".into()
            } else {
                "digits".into()
            },
            label_column: args.label_column,
            labels: labels_arg,
            test_fraction: fraction(DEFAULT_TEST_FRACTION),
        },
    };
    match source.data.as_str() {
        "mnist" | "digits" => source,
        path => DataSource {
            data: std::fs::canonicalize(path)
                .map_or(source.data.clone(), |p| p.display().to_string()),
            ..source
        },
    }
}

/// The training and test sets `args` name (see [`data_source`]), the set's short name, and
/// the source, for the run's record.
pub fn load_data(
    args: &DataArgs,
    seed: u64,
    run: Option<&RunRecord>,
) -> Result<(Dataset, Dataset, String, DataSource), latent::Error> {
    let source = data_source(args, run);
    if source.labels.is_some() && ["mnist", "digits"].contains(&source.data.as_str()) {
        return Err(latent::Error::InvalidArgument(format!(
            "--labels is for CSV and .npy data; {} has labels of its own",
            source.data
        )));
    }
    let split = |all: Dataset| all.split(source.test_fraction, seed);
    let (train, test) = match source.data.as_str() {
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
        path => {
            let rows = load_rows(
                Path::new(path),
                source.label_column,
                run.and_then(|r| r.scaling.as_ref()),
            )?;
            split(with_labels_file(
                rows,
                source.labels.as_deref().map(Path::new),
            )?)?
        }
    };
    let name = Path::new(&source.data)
        .file_stem()
        .map_or(source.data.clone(), |s| s.to_string_lossy().into_owned());
    Ok((train, test, name, source))
}

/// `rows` with the labels of `labels` (a file of them, one a row), where given.
pub fn with_labels_file(rows: Dataset, labels: Option<&Path>) -> Result<Dataset, latent::Error> {
    match labels {
        Some(path) => rows.with_labels(data::load_labels(path)?, &path.display().to_string()),
        None => Ok(rows),
    }
}

/// The rows of a .npy file, else CSV (with its label column), mapped to [0, 1] by `scaling`
/// where given (a run's: new rows map as its data did), else by the loaders' rule.
pub fn load_rows(
    path: &Path,
    label_column: Option<usize>,
    scaling: Option<&data::Scaling>,
) -> Result<Dataset, latent::Error> {
    let rows = if path.extension().is_some_and(|e| e == "npy") {
        data::load_npy_scaled(path, scaling)?
    } else {
        data::load_csv_scaled(path, &CsvOptions { label_column }, scaling)?
    };
    if let Some(data::Scaling::Divide(divisor)) = scaling.filter(|&s| *s != rows.scaling) {
        eprintln!(
            "{}: values already in [0, 1], taken as they are (the run's data was divided by {divisor})",
            path.display()
        );
    }
    Ok(rows)
}

/// --model: (a VAE?, its default noise, its default sparsity).
fn model_kind(
    model: &str,
) -> Result<(bool, Option<&'static str>, Option<&'static str>), latent::Error> {
    Ok(match model {
        "vae" | "cvae" => (true, None, None),
        "ae" | "autoencoder" => (false, None, None),
        "dae" => (false, Some("gaussian:0.5"), None),
        "sparse" => (false, None, Some("l1:0.001")),
        other => {
            return Err(latent::Error::InvalidArgument(format!(
                "unknown model {other:?}: expected vae, cvae, ae, dae or sparse"
            )))
        }
    })
}

/// --hidden: the encoder's widths (the default for a VAE or not when not given).
fn hidden_widths(hidden: Option<&str>, vae: bool) -> Result<Vec<usize>, latent::Error> {
    Ok(match hidden {
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
    })
}

/// --likelihood (the default for a VAE or not when not given).
fn likelihood(likelihood: Option<&str>, vae: bool) -> Result<Likelihood, latent::Error> {
    Ok(match likelihood {
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
    })
}

/// The flags among args.given that ask a resumed run for something other than what it has,
/// each compared with what it sets in the run's record (a flag repeating the run's own
/// value is no change). --lr is never one: a resumed run takes it.
fn flags_changing_the_run(
    args: &TrainArgs,
    record: &RunRecord,
) -> Result<Vec<String>, latent::Error> {
    let run = &record.model;
    let run_vae = matches!(run.kind, ModelKind::Vae { .. });
    let mut changed = Vec::new();
    for flag in &args.given {
        let changes = match flag.as_str() {
            "--model" => {
                let (vae, noise, sparsity) = model_kind(&args.model)?;
                vae != run_vae
                    || (args.model == "cvae") != run.classes.is_some()
                    || (noise.is_some() && run.noise.is_none())
                    || (sparsity.is_some() && run.sparsity.is_none())
            }
            "--noise" => args.noise.as_deref().map(Noise::parse).transpose()? != run.noise,
            "--sparsity" => {
                args.sparsity.as_deref().map(Sparsity::parse).transpose()? != run.sparsity
            }
            "--classes" => args.classes != run.classes,
            "--objective" => (args.objective == "iwae") != run.importance_samples.is_some(),
            "--k" => run.importance_samples.is_some_and(|k| k != args.k),
            "--hidden" => hidden_widths(args.hidden.as_deref(), run_vae)? != run.encoder,
            "--latent" => args.latent != Some(run.latent),
            "--beta" => matches!(run.kind, ModelKind::Vae { beta } if beta != args.beta),
            "--likelihood" => likelihood(args.likelihood.as_deref(), run_vae)? != run.likelihood,
            "--activation" => args.activation.parse::<Activation>()? != run.activation,
            "--linear-code" => args.linear_code != run.linear_code,
            "--batch" => args.batch != record.batch,
            "--seed" => args.seed != record.seed,
            _ => false,
        };
        if changes {
            changed.push(flag.clone());
        }
    }
    Ok(changed)
}

pub fn model_config(args: &TrainArgs, data: &Dataset) -> Result<ModelConfig, latent::Error> {
    let input = data.width;
    let (vae, default_noise, default_sparsity) = model_kind(&args.model)?;
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
    let hidden = hidden_widths(args.hidden.as_deref(), vae)?;
    let likelihood = likelihood(args.likelihood.as_deref(), vae)?;
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
        linear_code: args.linear_code,
    };
    config.check()?;
    Ok(config)
}

pub fn train(args: &TrainArgs) -> Result<ExitCode, latent::Error> {
    let resumed = args
        .resume
        .as_deref()
        .map(checkpoint::load_record)
        .transpose()?;
    // A resumed run takes its own data set (unless --data says otherwise), split with its
    // own seed, so that its test rows stay out of training.
    let split_seed = resumed.as_ref().map_or(args.seed, |r| r.seed);
    let (train_set, test_set, data_name, source) =
        load_data(&args.data, split_seed, resumed.as_ref())?;
    let record = match resumed {
        Some(record) => {
            let refused = flags_changing_the_run(args, &record)?;
            if !refused.is_empty() {
                return Err(latent::Error::InvalidArgument(format!(
                    "{} would change the run; a resumed run keeps its own: {}, batch {}, seed \
                     {}. Leave {} out, or start a new run with --out (--lr and --epochs do \
                     apply when resuming)",
                    refused.join(", "),
                    describe_model(&record.model),
                    record.batch,
                    record.seed,
                    if refused.len() == 1 { "it" } else { "them" },
                )));
            }
            let lr = match args.given.iter().any(|flag| flag == "--lr") {
                true => args.lr,
                false => record.adam.lr,
            };
            if record.model.input != train_set.width {
                return Err(latent::Error::InvalidArgument(format!(
                    "the checkpoint's model takes {} values per sample, the data has {}",
                    record.model.input, train_set.width
                )));
            }
            RunRecord {
                epochs: args.epochs.unwrap_or(record.epochs),
                adam: AdamConfig { lr, ..record.adam },
                trained_on: String::new(),
                data_source: Some(source),
                // The run's mapping stays; older records take the data's.
                scaling: record.scaling.clone().or(Some(train_set.scaling.clone())),
                columns: record.columns.clone().or(train_set.columns.clone()),
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
            trained_on: String::new(),
            data_source: Some(source),
            scaling: Some(train_set.scaling.clone()),
            columns: train_set.columns.clone(),
        },
    };
    if let (Some(dir), true) = (&args.resume, record.epoch >= record.epochs) {
        println!(
            "{} has trained {} epochs, and --epochs asks for {} in all: nothing to train \
             (--epochs {} or more continues it)",
            dir.display(),
            record.epoch,
            record.epochs,
            record.epoch + 1
        );
        return Ok(ExitCode::SUCCESS);
    }
    let out = match (&args.resume, &args.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => dir.clone(),
        (None, None) => {
            PathBuf::from("runs").join(format!("{}-{data_name}-{}", args.model, unix_seconds()))
        }
    };
    check_out_dir(&out, args.resume.is_some())?;
    let device = training_device(&args.gpu, args.cpu)?;
    let (graph, _) = record.model.build(record.batch)?;
    let plan = Plan::compile(graph)?;
    let options = TrainOptions {
        batch: record.batch,
        epochs: record.epochs,
        adam: record.adam,
        seed: record.seed,
    };
    let init = init_params(&plan, record.init_seed)?;
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let mut trainer = Trainer::new(
        device_arg,
        &plan,
        &record.model,
        &init,
        (&train_set).into(),
        Some((&test_set).into()),
        options,
    )
    .map_err(|e| with_size_hint(e, &record))?;
    // Built: the plan's matmul shapes are tuned (on GPUs with --matmul auto).
    print_matmul_notes(device.as_ref());
    let record = RunRecord {
        trained_on: device_arg.describe(),
        ..record
    };
    trainer.set_steps_per_submit(args.steps_per_submit)?;
    if args.resume.is_some() {
        trainer.restore(&checkpoint::load_state(&out, &plan)?)?;
    }
    let on = device.as_ref().map_or_else(
        || format!("the {}", Device::Cpu.describe()),
        GpuContext::describe,
    );
    println!(
        "training {} on {} with {on}",
        describe_model(&record.model),
        record.data
    );
    let dispatches = trainer.dispatches_per_step().map_or(String::new(), |d| {
        format!(
            ", {d} dispatches a step (weight gradients {}), up to {} steps a submit",
            trainer.weight_grads_form().unwrap_or("separate"),
            trainer.effective_steps_per_submit()
        )
    });
    println!(
        "{} steps per epoch of {} rows{dispatches}; writing to {}",
        trainer.steps_per_epoch(),
        record.batch,
        out.display()
    );
    if let Some(memory) = trainer.device_memory() {
        println!("device memory {memory}");
    }
    let unit = if record.model.kind == ModelKind::Autoencoder
        && record.model.likelihood == Likelihood::Gaussian
    {
        "MSE per pixel"
    } else {
        "nats per example"
    };
    let interactive = std::io::stderr().is_terminal();
    trainer.set_progress_interval(PROGRESS_INTERVAL);
    let mut last_kl = None;
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
        // epoch on a terminal, at most 4 times a second, never otherwise.
        let progress_every = if interactive {
            (trainer.steps_per_epoch() / 30).max(1)
        } else {
            0
        };
        let report = trainer.run_epoch(progress_every, &mut progress)?;
        last_kl = kl_per_example(&record.model, &report);
        if interactive {
            eprint!("\r{:100}\r", "");
        }
        print_matmul_notes(device.as_ref());
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
    if let Some(kl) = last_kl.filter(|&kl| kl < COLLAPSED_KL) {
        eprintln!(
            "note: the KL is {kl:.4} nats an example: the code tells the decoder almost nothing \
             about its input (posterior collapse), and codes, reconstructions and samples \
             show it. A smaller --beta (say 0.1) or --latent keeps more in the code"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A tensor of the training step (in the executor's pool) past the adapter's binding limit:
/// the error, with what makes the step's tensors smaller.
fn with_size_hint(e: latent::Error, record: &RunRecord) -> latent::Error {
    match e {
        latent::Error::TooLarge { ref what, .. } if what.starts_with("pool") => {
            let (samples, or_k) = match record.model.importance_samples {
                Some(k) => (format!(", {k} samples each"), " or --k"),
                None => (String::new(), ""),
            };
            latent::Error::InvalidArgument(format!(
                "{e}: a tensor of the training step ({} rows a batch{samples}) is larger \
                 than this GPU binds; a smaller --batch{or_k} fits (or --cpu)",
                record.batch
            ))
        }
        e => e,
    }
}

/// A VAE whose KL per example ends below this many nats has a code that carries almost
/// nothing (about 0.01 nats: a hundredth of what telling two values apart takes).
const COLLAPSED_KL: f64 = 0.01;

/// The KL per example (without β) of a VAE's epoch, from its reported terms.
fn kl_per_example(model: &ModelConfig, report: &latent::train::EpochReport) -> Option<f64> {
    let ModelKind::Vae { beta } = model.kind else {
        return None;
    };
    let (_, kl) = report.train_terms.iter().find(|(name, _)| name == "kl")?;
    (beta > 0.0).then(|| kl / f64::from(beta))
}

/// Prints what per-shape matmul tuning did since the last call (a line per shape tuned, cache
/// warnings), on stderr like the class tuning's line.
pub fn print_matmul_notes(ctx: Option<&GpuContext>) {
    for note in ctx.map(GpuContext::take_matmul_notes).unwrap_or_default() {
        eprintln!("{note}");
    }
}

pub fn describe_model(model: &ModelConfig) -> String {
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
    let mut traits = vec![
        format!("{:?}", model.likelihood),
        format!("{:?}", model.activation),
    ];
    if let ModelKind::Vae { beta } = model.kind {
        traits.insert(0, format!("β = {beta}"));
    }
    if model.linear_code {
        traits.push("linear code".into());
    }
    if let Some(k) = model.importance_samples {
        traits.push(format!("IWAE, K = {k}"));
    }
    if let Some(noise) = model.noise {
        traits.push(format!("input noise {noise}"));
    }
    if let Some(sparsity) = model.sparsity {
        traits.push(format!("sparsity {sparsity}"));
    }
    let kind = match (model.kind, model.classes) {
        (ModelKind::Vae { .. }, Some(c)) => format!("a conditional VAE ({c} classes)"),
        (ModelKind::Vae { .. }, None) => "a VAE".into(),
        (ModelKind::Autoencoder, Some(c)) => format!("a conditional autoencoder ({c} classes)"),
        (ModelKind::Autoencoder, None) => "an autoencoder".into(),
    };
    format!("{kind} {shape} ({})", traits.join(", "))
}

pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
