//! The `latent` command line: a thin layer over the library. Parses arguments, calls the
//! library, prints. Exit codes: 0 success, 1 a check, the GPU or training failed, 2 bad input.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod args;
mod codes;
mod gpu;
mod train;
mod use_model;

use args::GpuArgs;
use codes::{
    interpolate, probe, scatter, traverse, InterpolateArgs, ProbeArgs, ScatterArgs, TraverseArgs,
};
use gpu::{bench, info, validate, BenchArgs, ValidateArgs};
use train::{train, TrainArgs};
use use_model::{
    decode, denoise, encode, eval, reconstruct, sample, score, DecodeArgs, DenoiseArgs, EncodeArgs,
    EvalArgs, PictureArgs, ScoreArgs,
};

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
    /// Train a model of the family: VAE, autoencoder, denoising, sparse, conditional VAE, IWAE
    /// (default: the VAE of the PyTorch examples on MNIST when it is found, else on the
    /// embedded UCI digits).
    Train(Box<TrainArgs>),
    /// The loss of a checkpoint on the test set, per example (or per pixel), like train prints it.
    Eval(Box<EvalArgs>),
    /// Encode rows (default: the test set) to latent codes (the VAE's means) as CSV or .npy.
    Encode(Box<EncodeArgs>),
    /// A PNG grid of test images (top row) above their reconstructions (or the
    /// reconstructions of the test rows as .csv / .npy, in the data's units).
    Reconstruct(Box<PictureArgs>),
    /// A PNG grid of samples decoded from the prior N(0, I) (or their rows as .csv / .npy, in
    /// the data's units).
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

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // A bad LATENT_THREADS is refused before any work, not ignored.
    let result = latent::cpu::threads().and_then(|_| run(cli, &matches));
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

/// Runs the command `cli` names.
fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<ExitCode, latent::Error> {
    match cli.command {
        Command::Info(args) => info(&args),
        Command::Validate(args) => validate(&args),
        Command::Train(mut args) => {
            if let Some(train_matches) = matches.subcommand_matches("train") {
                args.given = train::run_flags_given(train_matches);
            }
            train(&args)
        }
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
    }
}
