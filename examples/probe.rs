//! Codes put to work: train a small VAE on the embedded UCI digits on the CPU path, encode
//! the train and test rows (the VAE's μ), and probe the codes against PCA of the raw pixels
//! at the same width (and the raw pixels themselves): kNN and linear-probe accuracy, k-means
//! NMI/ARI, silhouette. Writes a scatter of the test codes beside the checkpoint.
//! `cargo run --release --example probe`

use std::time::Instant;

use latent::data;
use latent::infer;
use latent::io::scatter::scatter_codes;
use latent::model::ModelConfig;
use latent::probe::{pca_baseline, probe, Features, ProbeOptions, ProbeReport};
use latent::train::{train_to_checkpoint, Device, TrainOptions};

const LATENT: usize = 10;
const EPOCHS: usize = 150;

fn main() -> latent::Result<()> {
    let start = Instant::now();
    let digits = data::load_digits()?;
    let (train, test) = digits.split(0.1, 1)?;

    let model = ModelConfig::vae(digits.width, 400, LATENT);
    let options = TrainOptions {
        batch: 128,
        epochs: EPOCHS,
        adam: Default::default(),
        seed: 1,
    };
    let dir = std::env::temp_dir().join("latent-example-probe");
    train_to_checkpoint(
        Device::Cpu,
        &model,
        &train,
        Some(&test),
        options,
        &dir,
        &mut |report| {
            if report.epoch % 50 == 0 {
                println!(
                    "epoch {}: train {:.3}, test {:.3} nats per example",
                    report.epoch,
                    report.train_loss,
                    report.test_loss.unwrap_or(f64::NAN)
                );
            }
        },
    )?;
    println!("trained in {:.1} s", start.elapsed().as_secs_f64());

    // The codes of both sets, with the data sets' labels.
    let train_codes = infer::encode(Device::Cpu, &model, &dir, (&train).into())?;
    let test_codes = infer::encode(Device::Cpu, &model, &dir, (&test).into())?;
    let train_codes = Features::new(train_codes, LATENT, train.labels.clone())?;
    let test_codes = Features::new(test_codes, LATENT, test.labels.clone())?;
    let (train_pixels, test_pixels) = (
        Features::from_dataset(&train)?,
        Features::from_dataset(&test)?,
    );
    let (train_pca, test_pca) = pca_baseline(&train_pixels, &test_pixels, LATENT)?;

    let probing = Instant::now();
    let options = ProbeOptions::default();
    let report = ProbeReport {
        rows: vec![
            probe("vae codes (μ)", &train_codes, &test_codes, &options)?,
            probe(
                &format!("pca-{LATENT} of pixels"),
                &train_pca,
                &test_pca,
                &options,
            )?,
            probe("raw pixels", &train_pixels, &test_pixels, &options)?,
        ],
    };
    println!(
        "\n{} train rows, {} test rows; probed in {:.1} s\n",
        train.rows,
        test.rows,
        probing.elapsed().as_secs_f64()
    );
    print!("{report}");

    let scatter = dir.join("test-codes.png");
    scatter_codes(&scatter, test_codes.values(), LATENT, test_codes.labels())?;
    println!(
        "\nscatter of the test codes (first two principal components) in {}",
        scatter.display()
    );
    println!("total {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
