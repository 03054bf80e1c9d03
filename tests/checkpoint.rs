//! Checkpoints: safetensors + JSON round trip, clear errors for files that do not fit, atomic
//! writes, and a run resumed from a checkpoint equal to an uninterrupted one.

mod common;

use std::path::PathBuf;

use latent::graph::gpu::GpuExecutor;
use latent::graph::plan::Plan;
use latent::graph::{RunConfig, Samples, TrainData};
use latent::io::checkpoint::{self, RunRecord, TrainingState};
use latent::kernels::adam::AdamConfig;
use latent::model::{init_params, ModelConfig};
use latent::Error;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "latent-test-{name}-{}-{}",
        std::process::id(),
        common::seed()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn record(model: &ModelConfig) -> RunRecord {
    RunRecord {
        model: model.clone(),
        batch: 4,
        epochs: 2,
        adam: AdamConfig::default(),
        seed: 9,
        init_seed: 3,
        data: "synthetic".into(),
        epoch: 0,
        next_step: 1,
        trained_on: "a test (Vulkan), matmul subgroup".into(),
        data_source: None,
        scaling: None,
        columns: None,
    }
}

#[test]
fn checkpoints_round_trip_and_reject_what_does_not_fit() {
    let model = ModelConfig::vae(12, 8, 3);
    let plan = Plan::compile(model.build(4).unwrap().0).unwrap();
    let params = init_params(&plan, 3).unwrap();
    let m: Vec<f32> = params.iter().map(|p| p * 0.5).collect();
    let v: Vec<f32> = params.iter().map(|p| p * p).collect();
    let state = TrainingState {
        params: params.clone(),
        adam: Some((m.clone(), v.clone())),
        epoch: 1,
        next_step: 7,
    };
    let dir = temp_dir("round-trip");
    checkpoint::save(&dir, &plan, &record(&model), &state).unwrap();

    let loaded = checkpoint::load_state(&dir, &plan).unwrap();
    assert_eq!(loaded.params, params);
    assert_eq!(loaded.adam, Some((m, v)));
    assert_eq!((loaded.epoch, loaded.next_step), (1, 7));
    let rec = checkpoint::load_record(&dir).unwrap();
    assert_eq!(rec.model, model);
    assert_eq!((rec.epoch, rec.next_step), (1, 7));
    assert_eq!(rec.trained_on, record(&model).trained_on);
    // A config.json from before `trained_on` was recorded still loads.
    let config = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("trained_on").unwrap();
    std::fs::write(&config, serde_json::to_vec(&json).unwrap()).unwrap();
    let old = checkpoint::load_record(&dir).unwrap();
    assert_eq!((old.model, old.trained_on), (model.clone(), String::new()));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");

    // A model of another width does not fit: the error names the tensor and both shapes.
    let other = Plan::compile(ModelConfig::vae(12, 9, 3).build(4).unwrap().0).unwrap();
    match checkpoint::load_state(&dir, &other) {
        Err(Error::Data { origin, message }) => {
            assert!(origin.ends_with("model.safetensors"), "{origin}");
            assert!(
                message.contains("encoder.0.weight") && message.contains("[9, 12]"),
                "{message}"
            );
        }
        other => panic!("expected a data error, got {other:?}"),
    }
    // A truncated weights file and a broken config are errors, not panics.
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        checkpoint::load_state(&dir, &plan),
        Err(Error::Data { .. })
    ));
    std::fs::write(dir.join("config.json"), b"{ \"model\": 3 }").unwrap();
    assert!(matches!(
        checkpoint::load_record(&dir),
        Err(Error::Data { .. })
    ));
    assert!(matches!(
        checkpoint::load_record(&temp_dir("missing")),
        Err(Error::Io { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same state saves to the same bytes every time (the metadata's order included, which
/// safetensors takes from a HashMap), with the header padded to 8 bytes and read back.
#[test]
fn a_checkpoint_is_the_same_bytes_every_time() {
    let model = ModelConfig::vae(12, 8, 3);
    let plan = Plan::compile(model.build(4).unwrap().0).unwrap();
    let state = TrainingState {
        params: init_params(&plan, 5).unwrap(),
        adam: None,
        epoch: 2,
        next_step: 11,
    };
    let dir = temp_dir("same-bytes");
    let saves: Vec<Vec<u8>> = (0..8)
        .map(|_| {
            checkpoint::save(&dir, &plan, &record(&model), &state).unwrap();
            std::fs::read(dir.join("model.safetensors")).unwrap()
        })
        .collect();
    assert!(saves.iter().all(|s| s == &saves[0]), "the saves differ");
    let header_len = u64::from_le_bytes(saves[0][..8].try_into().unwrap()) as usize;
    assert_eq!(
        header_len % 8,
        0,
        "the tensors' data must start 8-byte aligned"
    );
    let header = std::str::from_utf8(&saves[0][8..8 + header_len]).unwrap();
    assert!(
        header
            .starts_with(r#"{"__metadata__":{"epoch":"2","format":"latent-1","next_step":"11"},"#),
        "{header}"
    );
    let loaded = checkpoint::load_state(&dir, &plan).unwrap();
    assert_eq!(
        (loaded.params, loaded.epoch, loaded.next_step),
        (state.params, 2, 11)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The VAE trains μ and logvar as one stacked layer (one matmul); its checkpoint stores them
/// as the two layers PyTorch's VAE has, and the encoder alone (μ only) loads μ's rows.
#[test]
fn a_vae_checkpoint_stores_mu_and_logvar_as_layers_of_their_own() {
    let (input, hidden, latent) = (12, 8, 3);
    let model = ModelConfig::vae(input, hidden, latent);
    let plan = Plan::compile(model.build(4).unwrap().0).unwrap();
    let params = init_params(&plan, 5).unwrap();
    let state = TrainingState {
        params: params.clone(),
        adam: None,
        epoch: 0,
        next_step: 1,
    };
    let dir = temp_dir("stacked");
    checkpoint::save(&dir, &plan, &record(&model), &state).unwrap();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert!(!names.iter().any(|n| n.contains('+')), "{names:?}");
    let stacked = |name: &str| {
        let t = (0..plan.graph.tensors.len())
            .map(latent::graph::TensorId)
            .find(|&t| plan.graph.tensor(t).name == name)
            .unwrap();
        let latent::graph::plan::Location::Params(offset) = plan.location[t.0] else {
            panic!("{name} is not a parameter");
        };
        &params[offset..offset + plan.graph.tensor(t).len()]
    };
    let floats = |name: &str| -> (Vec<usize>, Vec<f32>) {
        let view = file.tensor(name).unwrap();
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (view.shape().to_vec(), values)
    };
    let (weight, bias) = (stacked("mu+logvar.weight"), stacked("mu+logvar.bias"));
    let half = latent * hidden;
    assert_eq!(
        floats("mu.weight"),
        (vec![latent, hidden], weight[..half].to_vec())
    );
    assert_eq!(
        floats("logvar.weight"),
        (vec![latent, hidden], weight[half..].to_vec())
    );
    assert_eq!(floats("mu.bias"), (vec![latent], bias[..latent].to_vec()));
    assert_eq!(
        floats("logvar.bias"),
        (vec![latent], bias[latent..].to_vec())
    );

    // The encoder's μ layer gets μ's rows of the stacked layer.
    let (encoder, _) = model.build_encoder(2).unwrap();
    let encoder_plan = Plan::compile_inference(encoder, &[]).unwrap();
    let loaded = checkpoint::load_state(&dir, &encoder_plan).unwrap();
    let mu = (0..encoder_plan.graph.tensors.len())
        .map(latent::graph::TensorId)
        .find(|&t| encoder_plan.graph.tensor(t).name == "mu.weight")
        .unwrap();
    let latent::graph::plan::Location::Params(offset) = encoder_plan.location[mu.0] else {
        panic!("mu.weight is not a parameter");
    };
    assert_eq!(&loaded.params[offset..offset + half], &weight[..half]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resumed_gpu_run_equals_an_uninterrupted_one() {
    let Some(ctx) = common::gpu("a_resumed_gpu_run_equals_an_uninterrupted_one") else {
        return;
    };
    let (rows, width, batch) = (24, 12, 4);
    let bytes: Vec<u8> = (0..rows * width).map(|i| (i * 97 % 256) as u8).collect();
    let data = TrainData::new(Samples::U8(&bytes), rows, width);
    let model = ModelConfig::vae(width, 8, 3);
    let plan = Plan::compile(model.build(batch).unwrap().0).unwrap();
    let params = init_params(&plan, 3).unwrap();
    let steps = rows / batch;
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed: 11,
        total_steps: (2 * steps) as u32,
    };
    let order = |epoch: u32| -> Vec<u32> {
        (0..rows as u32)
            .map(|i| (i * 7 + epoch * 5) % rows as u32)
            .collect()
    };
    let train_epoch = |e: &mut GpuExecutor, epoch: u32| {
        e.begin_epoch(&order(epoch)).unwrap();
        for _ in 0..steps {
            e.step().unwrap();
        }
    };

    let mut straight = GpuExecutor::new(ctx, &plan, &params, data, None, run).unwrap();
    train_epoch(&mut straight, 0);
    train_epoch(&mut straight, 1);
    let expected = straight.read_params().unwrap();

    let mut first = GpuExecutor::new(ctx, &plan, &params, data, None, run).unwrap();
    train_epoch(&mut first, 0);
    let state = TrainingState {
        params: first.read_params().unwrap(),
        adam: Some(first.read_adam().unwrap()),
        epoch: 1,
        next_step: first.next_step(),
    };
    let dir = temp_dir("resume");
    checkpoint::save(&dir, &plan, &record(&model), &state).unwrap();
    drop(first);

    let loaded = checkpoint::load_state(&dir, &plan).unwrap();
    let mut resumed = GpuExecutor::new(ctx, &plan, &loaded.params, data, None, run).unwrap();
    resumed
        .restore(
            &loaded.params,
            loaded.adam.as_ref().unwrap(),
            loaded.next_step,
        )
        .unwrap();
    train_epoch(&mut resumed, 1);
    assert_eq!(
        resumed.read_params().unwrap(),
        expected,
        "resumed run differs from the uninterrupted one"
    );
    assert_ne!(expected, params);
    let _ = std::fs::remove_dir_all(&dir);
}
