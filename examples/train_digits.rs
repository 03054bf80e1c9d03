//! Embedding latent: train the VAE on the embedded UCI digits with the library API, on the
//! GPU latent creates (or the CPU path when there is none), then save a checkpoint.
//! `cargo run --release --example train_digits`

use latent::data;
use latent::gpu::{GpuContext, GpuOptions};
use latent::graph::plan::Plan;
use latent::io::checkpoint::{self, DataSource, RunRecord};
use latent::model::{init_params, ModelConfig};
use latent::train::{Device, TrainOptions, Trainer};

fn main() -> latent::Result<()> {
    // A host application with its own wgpu device would use GpuContext::from_device.
    let ctx = GpuContext::new(&GpuOptions::from_env()?).ok();
    let device = ctx.as_ref().map_or(Device::Cpu, Device::Gpu);

    let digits = data::load_digits()?;
    let (train, test) = digits.split(0.1, 1)?;
    let model = ModelConfig::vae(digits.width, 400, 20);
    let plan = Plan::compile(model.build(128)?.0)?;
    let params = init_params(&plan, 1)?;
    let options = TrainOptions {
        batch: 128,
        epochs: 10,
        adam: Default::default(),
        seed: 1,
    };
    let mut trainer = Trainer::new(
        device,
        &plan,
        &model,
        &params,
        (&train).into(),
        Some((&test).into()),
        options,
    )?;
    for _ in 0..options.epochs {
        let report = trainer.run_epoch(0, &mut |_, _, _| {})?;
        println!(
            "epoch {}: train {:.3}, test {:.3} nats per example",
            report.epoch,
            report.train_loss,
            report.test_loss.unwrap_or(f64::NAN)
        );
    }
    let record = RunRecord {
        model,
        batch: options.batch,
        epochs: options.epochs,
        adam: options.adam,
        seed: options.seed,
        init_seed: 1,
        data: "digits".into(),
        epoch: 0,
        next_step: 1,
        trained_on: String::new(),
        // The commands on a checkpoint load the run's data again from this, mapped by its
        // scaling.
        data_source: Some(DataSource {
            data: "digits".into(),
            label_column: None,
            labels: None,
            test_fraction: 0.1,
        }),
        scaling: Some(digits.scaling.clone()),
        columns: None,
    };
    let out = std::env::temp_dir().join("latent-example-digits");
    checkpoint::save(&out, &plan, &record, &trainer.state()?)?;
    println!("checkpoint in {}", out.display());
    Ok(())
}
