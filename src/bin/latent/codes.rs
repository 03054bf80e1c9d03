//! The latent space made visible and put to work: `probe`, `scatter`, `interpolate`,
//! `traverse`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use latent::data::Dataset;
use latent::io::checkpoint::{self};
use latent::model::ModelKind;
use latent::train::Device;

use crate::args::{DataArgs, UseArgs};
use crate::train::{load_data, training_device};
use crate::use_model::{open_model, picture_or_rows_out, write_rows_or_grid};

#[derive(Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub model: UseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Also probe the raw pixels (slow for wide data: kNN and k-means scale with the width).
    #[arg(long)]
    pub raw: bool,
    /// Seeds k-means and the silhouette's sample.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the table as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Args)]
pub struct ScatterArgs {
    #[command(flatten)]
    pub model: UseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output PNG (default: <checkpoint>/scatter.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub model: UseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Pairs of test images (rows 0-1, 2-3, ...).
    #[arg(long, default_value_t = 8)]
    pub pairs: usize,
    /// Decoded codes per path, ends included.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// linear or spherical (default: spherical for a VAE, whose codes are Gaussian; linear
    /// for an autoencoder).
    #[arg(long)]
    pub path: Option<String>,
    /// Output PNG (default: <checkpoint>/interpolation.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct TraverseArgs {
    #[command(flatten)]
    pub model: UseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The test row whose code the other dimensions keep.
    #[arg(long, default_value_t = 0)]
    pub row: usize,
    /// Latent dimensions to sweep, comma-separated (default: the first 10).
    #[arg(long)]
    pub dims: Option<String>,
    /// Values per dimension.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// A VAE's dimensions sweep −range..range (its prior's σ is 1); an autoencoder's sweep
    /// their range over the test codes.
    #[arg(long, default_value_t = 3.0)]
    pub range: f32,
    /// Output PNG (default: <checkpoint>/traversal.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn probe(args: &ProbeArgs) -> Result<ExitCode, latent::Error> {
    use latent::probe::{pca_baseline, Features, ProbeOptions, ProbeReport};
    let record = checkpoint::load_record(&args.model.checkpoint)?;
    let (train, test, ..) = load_data(&args.data, record.seed, Some(&record))?;
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
    // On a terminal, which representation and stage the probes are at (--raw takes a
    // minute or more on MNIST).
    let interactive = std::io::stderr().is_terminal();
    let show = |what: &str| {
        if interactive {
            eprint!("\r{:80}\rprobe: {what} ", "");
        }
    };
    let probe_one = |name: &str, train: &Features, test: &Features| {
        latent::probe::probe_with_progress(name, train, test, &options, &mut |stage| {
            show(&format!("{name}, {stage}"))
        })
    };
    let mut report = ProbeReport { rows: Vec::new() };
    report
        .rows
        .push(probe_one(code_name, &train_codes, &test_codes)?);
    // As many components as the code has values, or every pixel's when the code is wider.
    let pca_width = model.latent.min(model.input);
    show(&format!("PCA of the pixels to {pca_width} components"));
    let (train_pca, test_pca) = pca_baseline(&train_pixels, &test_pixels, pca_width)?;
    let pca_name = format!("pca-{pca_width} of pixels");
    report
        .rows
        .push(probe_one(&pca_name, &train_pca, &test_pca)?);
    if args.raw {
        report
            .rows
            .push(probe_one("raw pixels", &train_pixels, &test_pixels)?);
    }
    if interactive {
        eprint!("\r{:80}\r", "");
    }
    print!("{report}");
    if let Some(path) = &args.json {
        latent::io::write_atomic(path, report.to_json()?.as_bytes())?;
        println!("JSON in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn scatter(args: &ScatterArgs) -> Result<ExitCode, latent::Error> {
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
    let colour = if test.labels.is_some() {
        ", coloured by label"
    } else {
        " (the data has no labels to colour them by)"
    };
    println!(
        "{} test codes {how}{colour}, in {}",
        test.rows,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn interpolate(args: &InterpolateArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    let checkpoint = &args.model.checkpoint;
    let out = picture_or_rows_out(args.out.as_deref(), checkpoint, "interpolation.png", &test)?;
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
    let model = &record.model;
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
    let units = write_rows_or_grid(&out, images, &record, &test, args.steps + 2)?;
    let rows = if units.is_empty() {
        String::new()
    } else {
        format!(" as rows (each pair's start, decoded path and end) {units}")
    };
    println!(
        "{pairs} {} paths of {} codes between test rows{rows} in {}",
        if spherical { "spherical" } else { "linear" },
        args.steps,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn traverse(args: &TraverseArgs) -> Result<ExitCode, latent::Error> {
    let (record, device, test) = open_model(&args.model, &args.data)?;
    let checkpoint = &args.model.checkpoint;
    let out = picture_or_rows_out(args.out.as_deref(), checkpoint, "traversal.png", &test)?;
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
    let units = write_rows_or_grid(&out, images, &record, &test, args.steps)?;
    let rows = if units.is_empty() {
        String::new()
    } else {
        format!(" as rows {units}")
    };
    println!(
        "dimensions {dims:?} swept in {} steps from test row {}'s code{rows} in {}",
        args.steps,
        args.row,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
