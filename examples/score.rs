//! Anomaly scores, measured: a VAE trained on the digits scores held-out digits and the same
//! digits damaged (a quarter of the pixels set to 0 or 1, and the images inverted); rows above
//! the 99th percentile of the training scores are flagged. Prints the share flagged per set.
//! `cargo run --release --example score [epochs]` (MNIST from LATENT_DATA_DIR or
//! ../shared/data/mnist when found, else the embedded digits).

use latent::cpu::corrupt::{corrupt, Noise};
use latent::cpu::reparameterize::NoiseKey;
use latent::data::{self, Dataset};
use latent::gpu::GpuOptions;
use latent::graph::{Samples, TrainData};
use latent::infer::{percentile, score};
use latent::model::ModelConfig;
use latent::train::{pick_device, train_to_checkpoint, Device, TrainOptions};

fn main() -> latent::Result<()> {
    let (train, test): (Dataset, Dataset) = match data::mnist_dir(None) {
        Some(dir) => data::load_mnist(&dir)?,
        None => data::load_digits()?.split(0.1, 1)?,
    };
    let default_epochs = if train.width == 784 { 5 } else { 50 };
    let epochs = std::env::args()
        .nth(1)
        .and_then(|e| e.parse().ok())
        .unwrap_or(default_epochs);
    let (ctx, note) = pick_device(&GpuOptions::from_env()?)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    let device = ctx.as_ref().map_or(Device::Cpu, Device::Gpu);
    let model = ModelConfig::vae(train.width, 400, 20);
    let options = TrainOptions {
        batch: 128,
        epochs,
        adam: Default::default(),
        seed: 1,
    };
    let dir = std::env::temp_dir().join("latent-example-score");
    train_to_checkpoint(
        device,
        &model,
        &train,
        Some(&test),
        options,
        &dir,
        &mut |r| {
            println!(
                "epoch {}: test loss {:.3} nats",
                r.epoch,
                r.test_loss.unwrap_or(f64::NAN)
            )
        },
    )?;

    let threshold = percentile(
        score(device, &model, &dir, (&train).into())?.primary(),
        99.0,
    )?;
    let clean = test.to_f32();
    let mut salted = vec![0.0; clean.len()];
    let key = NoiseKey {
        seed: 2,
        step: 0,
        stream: 0,
    };
    corrupt(&mut salted, &clean, Noise::SaltAndPepper { p: 0.25 }, key)?;
    let inverted: Vec<f32> = clean.iter().map(|v| 1.0 - v).collect();
    println!(
        "\nthreshold: {threshold:.2} nats (99th percentile of the {} training rows' negative ELBO)",
        train.rows
    );
    for (name, rows) in [
        ("held-out digits", &clean),
        ("salt and pepper p = 0.25", &salted),
        ("inverted digits", &inverted),
    ] {
        let data = TrainData::new(Samples::F32(rows), test.rows, test.width);
        let scores = score(device, &model, &dir, data)?;
        let flagged = scores.primary().iter().filter(|&&s| s > threshold).count();
        let mean = scores.primary().iter().sum::<f64>() / test.rows as f64;
        println!(
            "  {name:<26} mean {mean:>8.2} nats, flagged {flagged:>5} of {} ({:.1} %)",
            test.rows,
            100.0 * flagged as f64 / test.rows as f64
        );
    }
    Ok(())
}
