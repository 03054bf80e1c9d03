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
        trained_on: "test".into(),
        data_source: None,
        scaling: None,
        columns: None,
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
    let init = init_params(&plan, seed).unwrap();
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
    // One pass of encoder and decoder: the decoded codes, exactly (the same ops in order).
    let decoded = infer::decode(Device::Cpu, &model, &trained, &codes, None).unwrap();
    assert_eq!(rebuilt, decoded);
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
        &infer::prior_codes(&model, 10, seed).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(samples.len(), 10 * 64);
    // Beyond Philox's 2^32 groups of 4 draws: an error, not codes repeated or cut short.
    let error = infer::prior_codes(&model, (1usize << 34) / model.latent + 1, seed).unwrap_err();
    assert!(error.to_string().contains("2^32 groups"), "{error}");
    assert!(infer::prior_codes(&model, usize::MAX, seed).is_err());
    // More host memory than the host has: an error before any allocation, naming the need
    // and (where the host says, as Linux does) what is available.
    let error = latent::error::host_capacity::<f32>(usize::MAX / 4, "codes").unwrap_err();
    assert!(matches!(error, latent::Error::HostMemory { .. }), "{error}");
    if let Some(available) = latent::error::host_memory_available() {
        let error = latent::error::check_host_memory(1 << 100, "codes").unwrap_err();
        assert!(error.to_string().contains("available"), "{error}");
        assert!(latent::error::check_host_memory(u128::from(available) / 2, "codes").is_ok());
    }

    // Anomaly scores: rows of uniform noise score far above the test digits, above the
    // 99th percentile of the training digits' scores.
    let train_scores = infer::score(Device::Cpu, &model, &trained, (&train).into()).unwrap();
    let threshold = infer::percentile(train_scores.primary(), 99.0).unwrap();
    let test_scores = infer::score(Device::Cpu, &model, &trained, (&test).into()).unwrap();
    let elbo = test_scores.negative_elbo.as_ref().unwrap();
    assert_eq!(
        (elbo.len(), test_scores.reconstruction.len()),
        (test.rows, test.rows)
    );
    let noise: Vec<f32> = (0..20 * 64)
        .map(|i| ((i * 7919) % 101) as f32 / 100.0)
        .collect();
    let noise_data = latent::graph::TrainData::new(latent::graph::Samples::F32(&noise), 20, 64);
    let noise_scores = infer::score(Device::Cpu, &model, &trained, noise_data).unwrap();
    let flagged = noise_scores
        .primary()
        .iter()
        .filter(|&&s| s > threshold)
        .count();
    let test_flagged = elbo.iter().filter(|&&s| s > threshold).count();
    assert_eq!(flagged, 20, "noise rows flagged (LATENT_TEST_SEED={seed})");
    assert!(
        test_flagged <= test.rows / 10,
        "{test_flagged} of {} test digits flagged (LATENT_TEST_SEED={seed})",
        test.rows
    );

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
        // The negative ELBO: both loss terms read from one forward pass, with the same
        // evaluation noise on both paths. Sums of 64 BCE terms and a KL: 1e-4 relative.
        let gpu_scores = infer::score(Device::Gpu(ctx), &model, &trained, (&test).into()).unwrap();
        for (g, c) in gpu_scores.negative_elbo.unwrap().iter().zip(elbo) {
            assert!(
                (g - c).abs() <= 1e-4 * c.abs(),
                "negative ELBO: gpu {g} cpu {c} (LATENT_TEST_SEED={seed})"
            );
        }
    }
    assert!(
        infer::decode(Device::Cpu, &model, &trained, &[0.0; 7], None).is_err(),
        "7 values are not rows of 6"
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_conditional_vae_draws_different_digits_for_different_labels() {
    let seed = common::seed();
    let (train, test): (Dataset, Dataset) = load_digits().unwrap().split(0.1, seed).unwrap();
    let model = ModelConfig {
        classes: Some(10),
        ..ModelConfig::vae(64, 64, 4)
    };
    let plan = Plan::compile(model.build(64).unwrap().0).unwrap();
    let init = init_params(&plan, seed).unwrap();
    let dir = std::env::temp_dir().join(format!("latent-cvae-{}-{seed}", std::process::id()));
    let epochs = 20;
    let options = TrainOptions {
        batch: 64,
        epochs,
        adam: Default::default(),
        seed,
    };
    let mut trainer = Trainer::new(
        Device::Cpu,
        &plan,
        &model,
        &init,
        (&train).into(),
        Some((&test).into()),
        options,
    )
    .unwrap();
    for _ in 0..epochs {
        trainer.run_epoch(0, &mut |_, _, _| {}).unwrap();
    }
    save(&dir, &model, &plan, trainer.params().unwrap());

    // The same prior draws decoded as each class.
    let per_class = 20;
    let codes = infer::prior_codes(&model, per_class, seed).unwrap();
    let mut means = Vec::new();
    for label in 0..10u8 {
        let images = infer::decode(
            Device::Cpu,
            &model,
            &dir,
            &codes,
            Some(&vec![label; per_class]),
        )
        .unwrap();
        let mut mean = vec![0.0f32; 64];
        for image in images.chunks(64) {
            for (m, &p) in mean.iter_mut().zip(image) {
                *m += p / per_class as f32;
            }
        }
        means.push(mean);
    }
    // The real digits' mean image per class, from the training rows.
    let pixels = train.to_f32();
    let labels = train.labels.clone().unwrap();
    let mut real = vec![vec![0.0f32; 64]; 10];
    let mut counts = [0usize; 10];
    for (image, &label) in pixels.chunks(64).zip(&labels) {
        counts[label as usize] += 1;
        for (m, &p) in real[label as usize].iter_mut().zip(image) {
            *m += p;
        }
    }
    for (mean, &count) in real.iter_mut().zip(&counts) {
        mean.iter_mut().for_each(|m| *m /= count as f32);
    }
    // Each label's samples should look like that digit: their mean is nearest to the real
    // mean of the same class. An unconditioned decoder gives the same mean for every label,
    // so it could match at most one class. Seen: 10 of 10 after 20 epochs.
    let nearest = |image: &[f32]| {
        (0..10)
            .min_by(|&a, &b| {
                squared_error(image, &real[a]).total_cmp(&squared_error(image, &real[b]))
            })
            .unwrap()
    };
    let matched = (0..10).filter(|&c| nearest(&means[c]) == c).count();
    assert!(
        matched >= 8,
        "only {matched} of 10 labels decode to their own digit (LATENT_TEST_SEED={seed})"
    );
    // Labels are required and checked.
    assert!(infer::decode(Device::Cpu, &model, &dir, &codes, None).is_err());
    assert!(infer::decode(
        Device::Cpu,
        &model,
        &dir,
        &codes,
        Some(&vec![10; per_class])
    )
    .is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// More rows than one readback chunk holds (latent::graph::gpu::READBACK_CHUNK_BYTES): the
/// GPU reads them back in chunks, every row in its place. The rows repeat with period 7, so
/// each reconstruction must equal that of its row modulo 7, across the chunk's edge.
#[test]
fn inference_reads_back_more_rows_than_a_chunk_holds() {
    let Some(ctx) = common::gpu("inference_reads_back_more_rows_than_a_chunk_holds") else {
        return;
    };
    let width = 64;
    let chunk_rows = latent::graph::gpu::READBACK_CHUNK_BYTES / (4 * width);
    let rows = chunk_rows + 300;
    let bytes: Vec<u8> = (0..rows * width)
        .map(|i| ((i / width % 7) * 31 + i % width * 3) as u8)
        .collect();
    let data = latent::graph::TrainData::new(latent::graph::Samples::U8(&bytes), rows, width);
    let model = ModelConfig::autoencoder(width, 16);
    let plan = Plan::compile(model.build(64).unwrap().0).unwrap();
    let dir = std::env::temp_dir().join(format!("latent-chunks-{}", std::process::id()));
    save(&dir, &model, &plan, init_params(&plan, 1).unwrap());
    let rebuilt = infer::reconstruct(Device::Gpu(ctx), &model, &dir, data).unwrap();
    assert_eq!(rebuilt.len(), rows * width);
    let row = |r: usize| &rebuilt[r * width..(r + 1) * width];
    for r in [
        0,
        6,
        7,
        chunk_rows - 1,
        chunk_rows,
        chunk_rows + 1,
        rows - 1,
    ] {
        assert_eq!(
            row(r),
            row(r % 7),
            "row {r} of {rows} ({chunk_rows} a chunk)"
        );
    }
    assert_ne!(row(0), row(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn percentile_takes_the_nearest_rank() {
    let values = [5.0, 1.0, 4.0, 2.0, 3.0];
    assert_eq!(infer::percentile(&values, 100.0).unwrap(), 5.0);
    assert_eq!(infer::percentile(&values, 50.0).unwrap(), 3.0);
    assert_eq!(infer::percentile(&values, 0.0).unwrap(), 1.0);
    assert_eq!(infer::percentile(&values, 41.0).unwrap(), 3.0);
    assert!(infer::percentile(&values, 101.0).is_err());
    assert!(infer::percentile(&[], 50.0).is_err());
}

#[test]
fn code_sparsity_counts_near_zero_values_and_dead_units() {
    // Two rows of three units: unit 2 is near zero in both rows.
    let codes = [0.5, 0.0, 0.001, 0.0, 2.0, -0.005];
    let s = infer::code_sparsity(&codes, 3).unwrap();
    assert!((s.mean_activation - (0.5 + 2.0 + 0.001 - 0.005) / 6.0).abs() < 1e-7);
    assert!((s.near_zero - 4.0 / 6.0).abs() < 1e-12);
    assert!((s.dead_units - 1.0 / 3.0).abs() < 1e-12);
    assert!(infer::code_sparsity(&codes, 4).is_err());
}

#[test]
fn the_importance_weighted_bound_is_the_elbo_at_k_1_and_tighter_beyond() {
    let seed = common::seed();
    let (train, test): (Dataset, Dataset) = load_digits().unwrap().split(0.1, seed).unwrap();
    let model = ModelConfig::vae(64, 64, 6);
    let plan = Plan::compile(model.build(64).unwrap().0).unwrap();
    let init = init_params(&plan, seed).unwrap();
    let dir = std::env::temp_dir().join(format!("latent-iw-{}-{seed}", std::process::id()));
    let options = TrainOptions {
        batch: 64,
        epochs: 8,
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
    for _ in 0..8 {
        trainer.run_epoch(0, &mut |_, _, _| {}).unwrap();
    }
    save(&dir, &model, &plan, trainer.params().unwrap());

    // K = 1 in one batch of the test rows, in f64: the bound is log p(x|z) + log N(z; 0, I)
    // − log N(z; μ, σ²) of the single draw, which this test computes from μ, σ and z (the
    // kernels use ε).
    let graph = model.build_importance_weighted(test.rows, 1).unwrap();
    let eval_plan = Plan::compile_evaluation(graph).unwrap();
    let state = checkpoint::load_state(&dir, &eval_plan).unwrap();
    let run = latent::graph::RunConfig {
        adam: Default::default(),
        seed,
        total_steps: 1,
    };
    let mut exec = latent::graph::cpu::CpuExecutor::<f64>::new(
        &eval_plan,
        &state.params,
        (&test).into(),
        Some((&test).into()),
        run,
    )
    .unwrap();
    let totals = exec.evaluate().unwrap();
    let named = |name: &str| {
        let t = (0..eval_plan.graph.tensors.len())
            .map(latent::graph::TensorId)
            .find(|&t| eval_plan.graph.tensor(t).name == name)
            .unwrap();
        exec.tensor(t).to_vec()
    };
    // μ | logvar side by side in one (rows, 2·6) tensor.
    let (stats, z, bce) = (named("mu+logvar"), named("z"), named("bce"));
    let mut elbo_sum = 0.0;
    for (r, recon) in bce.iter().enumerate() {
        let mut log_ratio = 0.0;
        for c in r * 6..(r + 1) * 6 {
            let (mu, logvar) = (stats[c + r * 6], stats[c + r * 6 + 6]);
            let sigma = (0.5 * logvar).exp();
            let log_q = -0.5 * ((z[c] - mu) / sigma).powi(2) - 0.5 * logvar;
            let log_p = -0.5 * z[c] * z[c];
            log_ratio += log_q - log_p;
        }
        elbo_sum += -recon - log_ratio;
    }
    let iw_index = eval_plan
        .losses
        .iter()
        .position(|t| t.kind == latent::graph::LossKind::Iw);
    let iw_sum = totals[iw_index.unwrap()];
    assert!(
        (iw_sum + elbo_sum).abs() <= 1e-9 * elbo_sum.abs(),
        "K = 1: −bound {iw_sum} vs single-draw ELBO {elbo_sum} (LATENT_TEST_SEED={seed})"
    );

    // K = 1 against K = 50 and the ELBO through the library call: more samples tighten the
    // bound, which stays above the ELBO (as a loss: below it).
    // Progress comes as (rows done, rows in all), rising to all the rows.
    let rises_to_every_row = |calls: &[(usize, usize)]| {
        calls.windows(2).all(|w| w[0].0 < w[1].0)
            && calls.iter().all(|&(_, rows)| rows == test.rows)
            && calls.last() == Some(&(test.rows, test.rows))
    };
    let at = |k| {
        let mut calls = Vec::new();
        let bound = infer::importance_weighted(
            Device::Cpu,
            &model,
            &dir,
            (&test).into(),
            (k, seed),
            &mut |done, rows| calls.push((done, rows)),
        );
        assert!(bound.is_err() || rises_to_every_row(&calls), "{calls:?}");
        bound
    };
    let (one, fifty) = (at(1).unwrap(), at(50).unwrap());
    assert!(
        fifty.iw_nats < one.iw_nats && fifty.iw_nats < fifty.elbo_nats,
        "K=1 {one:?}, K=50 {fifty:?} (LATENT_TEST_SEED={seed})"
    );
    let bits = fifty.iw_nats / (64.0 * std::f64::consts::LN_2);
    assert!((fifty.iw_bits_per_dim - bits).abs() < 1e-12);
    assert!(at(0).is_err(), "K = 0");
    if let Some(ctx) = common::gpu("the_importance_weighted_bound (GPU part)") {
        let mut calls = Vec::new();
        let gpu = infer::importance_weighted(
            Device::Gpu(ctx),
            &model,
            &dir,
            (&test).into(),
            (50, seed),
            &mut |done, rows| calls.push((done, rows)),
        )
        .unwrap();
        assert!(rises_to_every_row(&calls), "{calls:?}");
        // Sums over 9000 rows in f32 of terms ~30 nats: 1e-4 relative.
        assert!(
            (gpu.iw_nats - fifty.iw_nats).abs() <= 1e-4 * fifty.iw_nats.abs()
                && (gpu.elbo_nats - fifty.elbo_nats).abs() <= 1e-4 * fifty.elbo_nats.abs(),
            "gpu {gpu:?} cpu {fifty:?} (LATENT_TEST_SEED={seed})"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
