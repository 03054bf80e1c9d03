//! Denoising, measured: a denoising autoencoder (784-256-784 on MNIST, or 64-256-64 on the
//! embedded digits without it) trained on images corrupted with Gaussian noise σ = 0.5, beside
//! a plain autoencoder of the same shape; both then denoise the same noisy test images.
//! Prints the noisy images' MSE against the clean ones and each model's denoised MSE, and
//! writes a noisy | denoised | clean grid.
//! `cargo run --release --example denoise [epochs]` (MNIST from LATENT_DATA_DIR or
//! ../shared/data/mnist; LATENT_BACKEND picks a GPU).

use latent::data::{self, Dataset};
use latent::gpu::GpuOptions;
use latent::infer;
use latent::model::{ModelConfig, Noise};
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
    let noise = Noise::Gaussian { sigma: 0.5 };
    let plain = ModelConfig::autoencoder(train.width, 256);
    let denoising = ModelConfig {
        noise: Some(noise),
        ..plain.clone()
    };
    let options = TrainOptions {
        batch: 128,
        epochs,
        adam: Default::default(),
        seed: 1,
    };
    let root = std::env::temp_dir().join("latent-example-denoise");
    println!(
        "{} ({} train, {} test rows), {epochs} epochs",
        train.name, train.rows, test.rows
    );
    let mut results = Vec::new();
    for (name, model) in [
        ("denoising autoencoder", &denoising),
        ("plain autoencoder", &plain),
    ] {
        let dir = root.join(name.replace(' ', "-"));
        let started = std::time::Instant::now();
        let last = train_to_checkpoint(
            device,
            model,
            &train,
            Some(&test),
            options,
            &dir,
            &mut |r| {
                println!(
                    "  {name} epoch {}: test loss {:.5}",
                    r.epoch,
                    r.test_loss.unwrap_or(f64::NAN)
                )
            },
        )?;
        let result = infer::denoise(device, model, &dir, (&test).into(), noise, 1)?;
        println!(
            "{name}: trained in {:.1} s (last test loss {:.5}); denoised MSE {:.5}",
            started.elapsed().as_secs_f64(),
            last.test_loss.unwrap_or(f64::NAN),
            result.denoised_mse
        );
        results.push((name, dir, result));
    }
    let noisy_mse = results[0].2.noisy_mse;
    println!(
        "\n{noise} on {} test rows: per-pixel MSE against the clean images",
        test.rows
    );
    println!("  noisy images            {noisy_mse:.5}");
    for (name, _, result) in &results {
        println!("  {name:<24}{:.5}", result.denoised_mse);
    }
    let side = (train.width as f64).sqrt() as usize;
    let (n, width) = (10, train.width);
    let (_, dir, result) = &results[0];
    let mut images = result.noisy[..n * width].to_vec();
    images.extend_from_slice(&result.denoised[..n * width]);
    images.extend_from_slice(&test.subset(&(0..n).collect::<Vec<_>>()).to_f32());
    let png = dir.join("denoised.png");
    latent::io::image::write_grid_png(&png, &images, (side, side), n)?;
    println!("noisy | denoised | clean in {}", png.display());
    Ok(())
}
