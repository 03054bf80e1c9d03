//! Using a trained model: `eval`, `encode`, `decode`, `reconstruct`, `sample`, `denoise`,
//! `score`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use latent::data::{self, Dataset};
use latent::gpu::GpuContext;
use latent::graph::plan::Plan;
use latent::io::checkpoint::{self, RunRecord};
use latent::model::{Likelihood, ModelConfig, ModelKind, Noise};
use latent::train::{Device, TrainOptions, Trainer};

use crate::args::{DataArgs, UseArgs};
use crate::train::{load_data, load_rows, training_device, with_labels_file};

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: UseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Rows to evaluate instead of the run's test set: CSV or .npy as wide as the model's
    /// input, mapped to [0, 1] as the run's data was.
    pub file: Option<PathBuf>,
    /// VAEs: also the importance-weighted bound with K samples per test row (an upper bound
    /// on −log p(x), tighter than the ELBO), in nats per example and bits per dimension.
    #[arg(long, value_name = "K")]
    pub iw: Option<usize>,
    /// Seeds the noise of the importance samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub model: UseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Rows to encode, in their order: CSV or .npy as wide as the model's input, mapped to
    /// [0, 1] as the run's data was (e.g. the whole training file, for a code per row).
    /// Default: the run's test set.
    pub file: Option<PathBuf>,
    /// Output file: .npy, else CSV (default: <checkpoint>/codes.csv).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct PictureArgs {
    #[command(flatten)]
    pub model: UseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// How many images (or rows).
    #[arg(long)]
    pub n: Option<usize>,
    /// Seeds the prior samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// sample, conditional models: draw every sample for this class (default: a grid with
    /// one row per class, --n samples each).
    #[arg(long)]
    pub label: Option<u8>,
    /// Output PNG (default: <checkpoint>/reconstructions.png or samples.png), or rows as .csv
    /// or .npy in the units of the run's data, its recorded scaling undone (reconstruct:
    /// every test row unless --n).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct DecodeArgs {
    #[command(flatten)]
    pub model: UseArgs,
    /// The codes: CSV (a header line is allowed) or .npy, one row of latent values each.
    #[arg(long)]
    pub codes: PathBuf,
    /// Output: a .png grid (square images), else .csv or .npy rows in the units of the run's
    /// data, its recorded scaling undone (default: <checkpoint>/decoded.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The class every code is decoded as (conditional models).
    #[arg(long)]
    pub label: Option<u8>,
}

#[derive(Args)]
pub struct DenoiseArgs {
    #[command(flatten)]
    pub model: UseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// gaussian:σ, masking:p or salt-pepper:p (default: the noise the model trained with).
    #[arg(long)]
    pub noise: Option<String>,
    /// Images in the grid.
    #[arg(long, default_value_t = 10)]
    pub n: usize,
    /// Seeds the noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output PNG (default: <checkpoint>/denoised.png), or the denoised test rows as .csv or
    /// .npy in the data's units.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: UseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Rows to score: CSV or .npy, as wide as the model's input, scaled as `train` scales
    /// data (default: the run's test set).
    pub file: Option<PathBuf>,
    /// Rows scoring above this percentile of the training rows' scores are flagged.
    #[arg(long, default_value_t = 99.0)]
    pub percentile: f64,
    /// Output CSV (default: <checkpoint>/scores.csv).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The checkpoint's record, its device, and the test set of the data it names (split with
/// the run's seed, so digits, CSV and .npy give the run's own test rows).
pub fn open_model(
    model: &UseArgs,
    data: &DataArgs,
) -> Result<(RunRecord, Option<GpuContext>, Dataset), latent::Error> {
    let record = checkpoint::load_record(&model.checkpoint)?;
    let (_, test, ..) = load_data(data, record.seed, Some(&record))?;
    if test.width != record.model.input {
        return Err(latent::Error::InvalidArgument(format!(
            "the model takes {} values per row, the data has {} (give the run's --data)",
            record.model.input, test.width
        )));
    }
    Ok((record, training_device(&model.gpu, model.cpu)?, test))
}

/// [`open_model`] with the rows of `file` (see [`new_rows`]) in place of the test set, where
/// given.
fn open_model_on(
    model: &UseArgs,
    data: &DataArgs,
    file: Option<&Path>,
) -> Result<(RunRecord, Option<GpuContext>, Dataset), latent::Error> {
    let Some(path) = file else {
        return open_model(model, data);
    };
    let record = checkpoint::load_record(&model.checkpoint)?;
    let rows = new_rows(path, &record, data)?;
    Ok((record, training_device(&model.gpu, model.cpu)?, rows))
}

/// The rows of a CSV or .npy file given to a run's model: mapped to [0, 1] as the run's data
/// was (its recorded scaling; for older checkpoints, the run's data is loaded again for it),
/// with the run's label column unless --label-column names another, or --labels' file (the
/// run's own labels file for the run's own data file).
fn new_rows(path: &Path, record: &RunRecord, data: &DataArgs) -> Result<Dataset, latent::Error> {
    let scaling = match &record.scaling {
        Some(scaling) => scaling.clone(),
        None => load_data(data, record.seed, Some(record))?.0.scaling,
    };
    let recorded_labels = record.data_source.as_ref().and_then(|d| d.label_column);
    let label_column = data.label_column.or(recorded_labels);
    let rows = load_rows(path, label_column, Some(&scaling))?;
    // The run's own labels file goes with the run's own data file.
    let source = record.data_source.as_ref();
    let is_run_data = std::fs::canonicalize(path)
        .is_ok_and(|p| source.is_some_and(|s| s.data == p.display().to_string()));
    let labels = match &data.labels {
        Some(labels) => Some(labels.as_path()),
        None if is_run_data => source.and_then(|s| s.labels.as_deref()).map(Path::new),
        None => None,
    };
    let rows = with_labels_file(rows, labels)?;
    if rows.width != record.model.input {
        return Err(latent::Error::InvalidArgument(format!(
            "{}: rows of {} values; the model takes {}",
            path.display(),
            rows.width,
            record.model.input
        )));
    }
    if record.model.classes.is_some() && rows.labels.is_none() {
        return Err(latent::Error::InvalidArgument(format!(
            "{}: a conditional model needs a label for every row: give --labels FILE (or \
             --label-column for a CSV holding them)",
            path.display()
        )));
    }
    Ok(rows)
}

/// Maps the model's rows (values in [0, 1]) back to the units of the run's data, where the
/// checkpoint records how they were scaled; says which the rows are in.
fn in_data_units(
    rows: &mut [f32],
    scaling: Option<&data::Scaling>,
    width: usize,
) -> Result<&'static str, latent::Error> {
    match scaling {
        Some(scaling) => {
            scaling.invert(rows, width)?;
            Ok("in the data's units")
        }
        None => Ok("in [0, 1] (the checkpoint records no scaling)"),
    }
}

/// Whether `out` asks for rows (.csv or .npy) rather than a picture.
pub fn writes_rows(out: &Path) -> bool {
    out.extension().is_some_and(|e| e == "csv" || e == "npy")
}

/// Where a picture command writes: `out`, else `default` in the checkpoint. A picture (not
/// .csv / .npy rows) of data that are not images is refused here, before any work.
pub fn picture_or_rows_out(
    out: Option<&Path>,
    checkpoint: &Path,
    default: &str,
    test: &Dataset,
) -> Result<PathBuf, latent::Error> {
    let out = out.map_or_else(|| checkpoint.join(default), Path::to_path_buf);
    if !writes_rows(&out) {
        picture_shape(test)?;
    }
    Ok(out)
}

/// Writes the model's `rows` (values in [0, 1]) to `out`: .csv / .npy rows in the units of
/// the run's data (`test`'s scaling where the checkpoint records none) under its column
/// names, else a PNG grid of `columns` images a row (`test` must be images). Returns what
/// the rows are in, for the message ("" for a picture).
pub fn write_rows_or_grid(
    out: &Path,
    rows: Vec<f32>,
    record: &RunRecord,
    test: &Dataset,
    columns: usize,
) -> Result<&'static str, latent::Error> {
    if !writes_rows(out) {
        let shape = picture_shape(test)?;
        latent::io::image::write_grid_png(out, &rows, shape, columns)?;
        return Ok("");
    }
    write_model_rows(out, rows, record, Some(&test.scaling))
}

/// Writes the model's `rows` (values in [0, 1]) to `out` as .csv / .npy rows in the units of
/// the run's data (its recorded scaling, else `fallback`: the run's data's, loaded again),
/// under its column names; says what the rows are in.
pub fn write_model_rows(
    out: &Path,
    mut rows: Vec<f32>,
    record: &RunRecord,
    fallback: Option<&data::Scaling>,
) -> Result<&'static str, latent::Error> {
    let scaling = record.scaling.as_ref().or(fallback);
    let units = in_data_units(&mut rows, scaling, record.model.input)?;
    let names = record.columns.as_deref();
    latent::io::codes::write_rows_named(out, &rows, record.model.input, names)?;
    Ok(units)
}

/// (height, width) to draw rows of the data as, or an error.
pub fn picture_shape(data: &Dataset) -> Result<(usize, usize), latent::Error> {
    data.image_shape.ok_or_else(|| {
        latent::Error::InvalidArgument(format!(
            "{} is not images: no (height, width) to draw (--out FILE.csv or .npy writes rows)",
            data.name
        ))
    })
}

/// The label to decode with: required by a conditional model (below its class count),
/// refused by the others.
pub fn check_label(model: &ModelConfig, label: Option<u8>) -> Result<Option<u8>, latent::Error> {
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

pub fn eval(args: &EvalArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model_on(&args.model, &args.data, args.file.as_deref())?;
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
    let what = if args.file.is_some() {
        "loss"
    } else {
        "test loss"
    };
    println!(
        "{}: {what} {loss:.4} {unit} ({}) on {} rows of {}",
        args.model.checkpoint.display(),
        terms.join(", "),
        test.rows,
        test.name
    );
    if let Some(k) = args.iw {
        // On a terminal, how far the passes are (K samples a row can take minutes).
        let interactive = std::io::stderr().is_terminal();
        let mut last_line = std::time::Instant::now();
        let mut progress = |done: usize, rows: usize| {
            if interactive && last_line.elapsed() >= std::time::Duration::from_millis(250) {
                eprint!("\rimportance-weighted bound, K = {k}: {done} of {rows} rows ");
                last_line = std::time::Instant::now();
            }
        };
        let bound = latent::infer::importance_weighted(
            device_arg,
            &record.model,
            &args.model.checkpoint,
            (&test).into(),
            (k, args.seed),
            &mut progress,
        )?;
        if interactive {
            eprint!("\r{:80}\r", "");
        }
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

pub fn encode(args: &EncodeArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, rows) = open_model_on(&args.model, &args.data, args.file.as_deref())?;
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let codes = latent::infer::encode(
        device_arg,
        &record.model,
        &args.model.checkpoint,
        (&rows).into(),
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.checkpoint.join("codes.csv"));
    latent::io::codes::write_rows(&out, &codes, record.model.latent)?;
    println!(
        "{} codes of {} values ({}) in {}",
        rows.rows,
        record.model.latent,
        rows.name,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn decode(args: &DecodeArgs) -> Result<ExitCode, latent::Error> {
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
        println!("{rows} decoded rows in {}", out.display());
    } else {
        let units = write_model_rows(&out, decoded, &record, None)?;
        println!("{rows} decoded rows {units} in {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reconstruct(args: &PictureArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.checkpoint.join("reconstructions.png"));
    let as_rows = writes_rows(&out);
    // Rows: every test row unless --n; a picture: 10 unless --n.
    let shape = if as_rows {
        None
    } else {
        Some(picture_shape(&test)?)
    };
    let n = args
        .n
        .unwrap_or(if as_rows { test.rows } else { 10 })
        .clamp(1, test.rows);
    let originals = test.subset(&(0..n).collect::<Vec<_>>());
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let rebuilt = latent::infer::reconstruct(
        device_arg,
        &record.model,
        &args.model.checkpoint,
        (&originals).into(),
    )?;
    let Some(shape) = shape else {
        let units = write_model_rows(&out, rebuilt, &record, Some(&test.scaling))?;
        println!(
            "reconstructions of {n} test rows {units} in {}",
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let mut images = originals.to_f32();
    images.extend(rebuilt);
    latent::io::image::write_grid_png(&out, &images, shape, n)?;
    println!(
        "{n} test images and their reconstructions in {}",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn sample(args: &PictureArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    if !matches!(record.model.kind, ModelKind::Vae { .. }) {
        return Err(latent::Error::InvalidArgument(
            "sampling needs a VAE: an autoencoder has no prior".into(),
        ));
    }
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
    // The codes and the samples must fit the host: checked before drawing any.
    let width = (record.model.latent + record.model.input) as u128;
    latent::error::check_host_memory(n as u128 * width * 4, &format!("{n} samples"))?;
    let codes = latent::infer::prior_codes(&record.model, n, args.seed)?;
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
    // Older checkpoints record no scaling: the run's data, loaded again, has it.
    let units = match write_rows_or_grid(&out, images, &record, &test, columns)? {
        "" => String::new(),
        units => format!(" {units}"),
    };
    match (record.model.classes, args.label) {
        (Some(classes), None) => println!(
            "{n} samples from the prior, one row per class 0..{}{units}, in {}",
            classes - 1,
            out.display()
        ),
        (_, Some(label)) => println!(
            "{n} samples from the prior for class {label}{units} in {}",
            out.display()
        ),
        _ => println!("{n} samples from the prior{units} in {}", out.display()),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn denoise(args: &DenoiseArgs) -> Result<ExitCode, latent::Error> {
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
    let as_rows = args.out.as_deref().is_some_and(writes_rows);
    // A picture needs images: refused before any work when one is asked for.
    if args.out.is_some() && !as_rows {
        picture_shape(&test)?;
    }
    let device_arg = device.as_ref().map_or(Device::Cpu, Device::Gpu);
    let result = latent::infer::denoise(
        device_arg,
        &record.model,
        &args.model.checkpoint,
        (&test).into(),
        noise,
        args.seed,
    )?;
    println!(
        "{noise} on {} test rows of {}: noisy MSE {:.5}, denoised MSE {:.5} (per value, against the clean rows)",
        test.rows, test.name, result.noisy_mse, result.denoised_mse
    );
    if as_rows {
        let out = args.out.clone().unwrap_or_default();
        let units = write_model_rows(&out, result.denoised, &record, Some(&test.scaling))?;
        println!(
            "{} denoised test rows {units} in {}",
            test.rows,
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(shape) = test.image_shape else {
        println!(
            "no picture: {} is not images (--out FILE.csv or .npy writes the denoised rows)",
            test.name
        );
        return Ok(ExitCode::SUCCESS);
    };
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
    println!("{n} noisy | denoised | clean images in {}", out.display());
    Ok(ExitCode::SUCCESS)
}

pub fn score(args: &ScoreArgs) -> Result<ExitCode, latent::Error> {
    let record = checkpoint::load_record(&args.model.checkpoint)?;
    let (train, test, ..) = load_data(&args.data, record.seed, Some(&record))?;
    let rows = match &args.file {
        None => test,
        Some(path) => new_rows(path, &record, &args.data)?,
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
