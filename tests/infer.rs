//! Inference with a checkpoint: encode, decode and reconstruct agree between the GPU and the
//! CPU twins, give the right shapes and ranges, and a trained model reconstructs better than
//! an untrained one.

mod common;

use latent::data::{load_digits, Dataset};
use latent::graph::plan::Plan;
use latent::infer;
use latent::io::checkpoint::{self, RunRecord, TrainingState};
use latent::model::{init_params, ModelConfig};
use latent::train::{Device, TrainOptions, Trainer};

fn save(dir: &std::path::Path, model: &ModelConfig, plan: &Plan, params: Vec<f32>) {
    let record = RunRecord {
        model: model.clone(),
        batch: 64,
        epochs: 1,
        adam: Default::default(),
        seed: 1,
        init_seed: 1,
        data: "digits".into(),
        epoch: 0,
        next_step: 1,
    };
    checkpoint::save(
        dir,
        plan,
        &record,
        &TrainingState {
            params,
            adam: None,
            epoch: 0,
            next_step: 1,
        },
    )
    .unwrap();
}

fn squared_error(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn encode_decode_and_reconstruct_with_a_checkpoint() {
    let seed = common::seed();
    let (train, test): (Dataset, Dataset) = load_digits().unwrap().split(0.1, seed).unwrap();
    let model = ModelConfig::vae(64, 64, 6);
    let plan = Plan::compile(model.build(64).unwrap().0).unwrap();
    let init = init_params(&plan, seed);
    let base = std::env::temp_dir().join(format!("latent-infer-{}-{seed}", std::process::id()));
    let (untrained, trained) = (base.join("untrained"), base.join("trained"));
    save(&untrained, &model, &plan, init.clone());
    let options = TrainOptions {
        batch: 64,
        epochs: 4,
        adam: Default::default(),
        seed,
    };
    let mut trainer = Trainer::new(
        Device::Cpu,
        &plan,
        &model,
        &init,
        (&train).into(),
        None,
        options,
    )
    .unwrap();
    for _ in 0..4 {
        trainer.run_epoch(0, &mut |_, _, _| {}).unwrap();
    }
    save(&trained, &model, &plan, trainer.params().unwrap());

    let pixels = test.to_f32();
    let codes = infer::encode(Device::Cpu, &model, &trained, (&test).into()).unwrap();
    assert_eq!(codes.len(), test.rows * 6);
    let rebuilt = infer::reconstruct(Device::Cpu, &model, &trained, (&test).into()).unwrap();
    assert_eq!(rebuilt.len(), pixels.len());
    assert!(
        rebuilt.iter().all(|p| (0.0..=1.0).contains(p)),
        "Bernoulli means lie in [0, 1]"
    );
    let before = squared_error(
        &infer::reconstruct(Device::Cpu, &model, &untrained, (&test).into()).unwrap(),
        &pixels,
    );
    let after = squared_error(&rebuilt, &pixels);
    assert!(
        after < 0.7 * before,
        "reconstruction error {before} untrained -> {after} trained (LATENT_TEST_SEED={seed})"
    );
    let samples = infer::decode(
        Device::Cpu,
        &model,
        &trained,
        &infer::prior_codes(&model, 10, seed),
    )
    .unwrap();
    assert_eq!(samples.len(), 10 * 64);

    if let Some(ctx) = common::gpu("encode_decode_and_reconstruct_with_a_checkpoint (GPU part)") {
        let gpu_codes = infer::encode(Device::Gpu(ctx), &model, &trained, (&test).into()).unwrap();
        let gpu_rebuilt =
            infer::reconstruct(Device::Gpu(ctx), &model, &trained, (&test).into()).unwrap();
        // Two or three matmuls of width ≤ 64 in f32: 1e-5 relative plus 1e-6.
        for (g, c) in gpu_codes
            .iter()
            .zip(&codes)
            .chain(gpu_rebuilt.iter().zip(&rebuilt))
        {
            assert!(
                (g - c).abs() <= 1e-6 + 1e-5 * c.abs(),
                "gpu {g} cpu {c} (LATENT_TEST_SEED={seed})"
            );
        }
    }
    assert!(
        infer::decode(Device::Cpu, &model, &trained, &[0.0; 7]).is_err(),
        "7 values are not rows of 6"
    );
    let _ = std::fs::remove_dir_all(&base);
}
