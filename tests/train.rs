//! Whole models: the graph executor on the GPU against the same plan on the CPU twins, and
//! whole-model gradients against finite differences (f64, CPU).

mod common;

use latent::gpu::GpuContext;
use latent::graph::autodiff::GradOp;
use latent::graph::cpu::CpuExecutor;
use latent::graph::gpu::GpuExecutor;
use latent::graph::plan::{Location, Plan, TrainingFusion};
use latent::graph::{LossKind, RunConfig, Samples, TrainData};
use latent::kernels::adam::AdamConfig;
use latent::model::{init_params, Likelihood, ModelConfig, ModelKind, Noise, Sparsity};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Smooth synthetic "images": each row a random blend of a few fixed patterns, as bytes.
fn synthetic_bytes(rows: usize, width: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let patterns: Vec<Vec<f32>> = (0..4)
        .map(|_| (0..width).map(|_| rng.random_range(0.0..1.0)).collect())
        .collect();
    (0..rows)
        .flat_map(|_| {
            let w: Vec<f32> = (0..4).map(|_| rng.random_range(0.0..1.0)).collect();
            let total: f32 = w.iter().sum();
            let patterns = &patterns;
            (0..width).map(move |c| {
                (255.0 * (0..4).map(|p| w[p] * patterns[p][c]).sum::<f32>() / total) as u8
            })
        })
        .collect()
}

fn small_models() -> Vec<(&'static str, ModelConfig)> {
    let ae = ModelConfig {
        encoder: vec![24],
        decoder: vec![24],
        ..ModelConfig::autoencoder(48, 12)
    };
    let vae = ModelConfig::vae(48, 32, 6);
    let vae_gaussian_tanh = ModelConfig {
        kind: ModelKind::Vae { beta: 0.5 },
        activation: latent::kernels::activation::Activation::Tanh,
        likelihood: Likelihood::Gaussian,
        ..ModelConfig::vae(48, 20, 4)
    };
    let denoising = ModelConfig {
        noise: Some(Noise::Gaussian { sigma: 0.3 }),
        ..ModelConfig::autoencoder(48, 12)
    };
    let sparse_kl = ModelConfig {
        encoder: vec![24],
        sparsity: Some(Sparsity::Kl {
            rho: 0.1,
            weight: 0.05,
        }),
        ..ModelConfig::autoencoder(48, 12)
    };
    let conditional = ModelConfig {
        classes: Some(3),
        ..ModelConfig::vae(48, 20, 4)
    };
    let iwae = ModelConfig {
        importance_samples: Some(3),
        ..ModelConfig::vae(48, 20, 4)
    };
    // A Gaussian likelihood: the fused bound's MSE rows and gradient.
    let iwae_gaussian = ModelConfig {
        importance_samples: Some(2),
        likelihood: Likelihood::Gaussian,
        ..ModelConfig::vae(48, 20, 4)
    };
    let linear_code = ModelConfig {
        encoder: vec![24],
        linear_code: true,
        sparsity: Some(Sparsity::L1 { weight: 0.01 }),
        ..ModelConfig::autoencoder(48, 6)
    };
    vec![
        ("autoencoder", ae),
        ("vae", vae),
        ("vae gaussian tanh β=0.5", vae_gaussian_tanh),
        ("denoising autoencoder", denoising),
        ("sparse autoencoder (kl)", sparse_kl),
        ("conditional vae", conditional),
        ("iwae k=3", iwae),
        ("iwae k=2 gaussian", iwae_gaussian),
        ("autoencoder, linear code, l1", linear_code),
    ]
}

/// A label in 0..3 for each of `rows` rows (the conditional models' classes; the others
/// ignore them).
fn three_classes(rows: usize) -> Vec<u8> {
    (0..rows).map(|r| (r % 3) as u8).collect()
}

/// The training plan of `config` at `batch` and its parameters initialised from `seed`.
fn plan_and_params(config: &ModelConfig, batch: usize, seed: u64) -> (Plan, Vec<f32>) {
    let plan = Plan::compile(config.build(batch).unwrap().0).unwrap();
    let params = init_params(&plan, seed).unwrap();
    (plan, params)
}

fn epoch_order(rows: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<u32> = (0..rows as u32).collect();
    for i in (1..rows).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    order
}

/// How far one step of the GPU executor may drift from the CPU twins' same step in
/// [`train_both`].
struct Drift {
    /// Each loss term of a step (and of the evaluation): |gpu − cpu| ≤ of_term·|cpu| +
    /// of_total·Σ|cpu| (all the step's terms) + absolute.
    loss_of_term: f64,
    loss_of_total: f64,
    loss_absolute: f64,
    /// The parameters after the step,
    params: Within,
    /// and Adam's two moments, each relative to the largest of its tensor.
    moments: Within,
}

/// How far each element of a flat vector may be off: every element within `each`, but at
/// most one in a thousand (at least one), which may be off by up to `outlier`; and their
/// mean difference within `mean` (a systematic error moves many elements a little).
struct Within {
    each: f32,
    outlier: f32,
    mean: f32,
}

/// The drift of the f32 GPU path in one step from the same parameters and moments. Losses:
/// sums over the batch of per-row sums, which both paths add in different orders: 1e-4.
/// Parameters: each Adam update is about lr = 1e-3 and Adam divides by √v, so a gradient
/// element near zero whose rounding differs can move its parameter by up to ~lr
/// differently, most of all in the first step (where the update is lr·sign(g)): 2e-4, and
/// up to 2·lr for a rare one. Moments: a ReLU whose input rounds to the other side of zero
/// for one sample (the noise of a denoising model is drawn with different roundings too)
/// changes a row of a weight's gradient by that sample's share, which Adam's moments keep
/// and its update, divided by √v, barely shows (LATENT_TEST_SEED=2071: the denoising
/// autoencoder's step 12 left a moment 8.6e-3 of its tensor's largest apart, their mean
/// 1.8e-4, the parameters within 1.8e-5): each moment within 0.25, their mean 1e-3, which a
/// first moment left unstored exceeds at the first step (β2 in β1's place moves the
/// parameters there already; a second moment 0.1 % off passes). Measured on lavapipe over 40 seeds
/// (3000-3039): a term at most 2.6e-7 of its step's total; the worst parameter 1.5e-6 off
/// (2.5e-5 with seed 1070), their mean 1.2e-9; the worst moment 1.1e-5, their mean 3.7e-7.
const F32_DRIFT: Drift = Drift {
    loss_of_term: 1e-4,
    loss_of_total: 0.0,
    loss_absolute: 1e-5,
    params: Within {
        each: 2e-4,
        outlier: 2e-3,
        mean: 2e-5,
    },
    moments: Within {
        each: 0.25,
        outlier: 0.25,
        mean: 1e-3,
    },
};

/// Dispatches a step when the weight gradients that the grouped kernel takes run as one
/// dispatch a set: the layers whose out and in are multiples of 4 (the kernel's vec4s), the
/// others a dispatch each. When every layer of every set groups, the grouped dispatches also
/// do Adam and the step has no Adam dispatch (every parameter of these models is a linear
/// layer's).
fn dispatches_with_grouped_weight_grads(plan: &Plan) -> usize {
    let mut dispatches = plan.dispatches_per_step();
    let mut every_layer = true;
    for set in plan.weight_grad_sets() {
        let suited = set
            .iter()
            .filter(|&&j| match plan.backward[j] {
                GradOp::Linear { dweight, .. } => {
                    let w = plan.graph.tensor(dweight);
                    w.rows.is_multiple_of(4) && w.cols.is_multiple_of(4)
                }
                _ => false,
            })
            .count();
        if suited > 0 {
            dispatches = dispatches - suited + 1;
        }
        every_layer &= suited == set.len();
    }
    if every_layer {
        dispatches -= 1;
    }
    dispatches
}

/// `gpu` against `cpu`, both flat like the parameters, `within`: each element of a
/// parameter tensor relative to `scale` of that tensor's CPU values (1 for the parameters,
/// the largest magnitude for Adam's moments). Returns the largest scaled difference, or what
/// is off.
fn flat_within(
    plan: &Plan,
    gpu: &[f32],
    cpu: &[f32],
    within: &Within,
    scale: fn(&[f32]) -> f32,
) -> Result<f32, String> {
    let mut scaled = vec![0.0f32; cpu.len()];
    for (t, location) in plan.location.iter().enumerate() {
        if let Location::Params(offset) = *location {
            let range = offset..offset + plan.graph.tensors[t].len();
            let s = scale(&cpu[range.clone()]).max(f32::MIN_POSITIVE);
            for i in range {
                scaled[i] = (gpu[i] - cpu[i]).abs() / s;
            }
        }
    }
    let outliers: Vec<usize> = (0..scaled.len())
        .filter(|&i| scaled[i] > within.each)
        .collect();
    if let Some(&i) = outliers.iter().find(|&&i| scaled[i] > within.outlier) {
        return Err(format!("element {i}: gpu {} cpu {}", gpu[i], cpu[i]));
    }
    if outliers.len() > (scaled.len() / 1000).max(1) {
        let first: Vec<_> = outliers
            .iter()
            .take(8)
            .map(|&i| (i, gpu[i], cpu[i]))
            .collect();
        return Err(format!(
            "{} elements beyond {} (element, gpu, cpu), the first: {first:?}",
            outliers.len(),
            within.each
        ));
    }
    let mean = scaled.iter().sum::<f32>() / scaled.len() as f32;
    if mean > within.mean {
        return Err(format!("mean difference {mean:e}"));
    }
    Ok(scaled.iter().fold(0.0, |a, &b| a.max(b)))
}

/// Starts the CPU's next step from the GPU's state (parameters, Adam's moments and step), so
/// that what follows compares one step of each, not two trajectories that rounding drives
/// apart (see [`train_both`]).
fn cpu_takes_gpu_state(cpu: &mut CpuExecutor<f32>, gpu: &GpuExecutor) {
    let adam = gpu.read_adam().unwrap();
    let params = gpu.read_params().unwrap();
    cpu.restore(&params, &adam, gpu.next_step()).unwrap();
}

/// Every small model trained for 24 steps (4 epochs of 6 batches of 16) on `ctx` with the
/// matmul choice it has (and its weight-gradient policy: `grouped` when it forces grouping),
/// and beside it on the CPU twins in lockstep: before each step the CPU takes the GPU's
/// parameters, Adam's moments and step number, so each comparison is of one step from the
/// same state (two f32 paths that round differently drift apart over many steps as training
/// amplifies a ReLU or a gradient sign that rounds the other way: LATENT_TEST_SEED=1002 moved
/// 49 of the IWAE's parameters apart at step 8 and its KL term 1e-3 apart at step 9). Each
/// step's loss terms, parameters and moments, and the held-out evaluation from the same
/// parameters, compared within `drift`. Returns (model, dispatch names of its step, largest
/// parameter difference after a step).
fn train_both(
    ctx: &GpuContext,
    seed: u64,
    drift: &Drift,
    grouped: bool,
) -> Vec<(String, Vec<String>, f32)> {
    let (rows, width, batch, epochs) = (96, 48, 16, 4);
    let bytes = synthetic_bytes(rows, width, seed);
    // Labels for the conditional model (the others ignore them).
    let labels = three_classes(rows);
    let data = TrainData {
        labels: Some(&labels),
        ..TrainData::new(Samples::U8(&bytes), rows, width)
    };
    // 90 held-out rows: five full batches and a partial one of 10.
    let held_out = synthetic_bytes(90, width, seed + 1);
    let held_out_labels = three_classes(90);
    let eval = TrainData {
        labels: Some(&held_out_labels),
        ..TrainData::new(Samples::U8(&held_out), 90, width)
    };
    // Every term of gpu `g` within the drift of the cpu's `c`, or the first that is not.
    let far_term = |g: &[f64], c: &[f64]| {
        let total: f64 = c.iter().map(|c| c.abs()).sum();
        g.iter().zip(c).position(|(g, c)| {
            (g - c).abs()
                > drift.loss_of_term * c.abs() + drift.loss_of_total * total + drift.loss_absolute
        })
    };
    let largest = |v: &[f32]| v.iter().fold(0.0f32, |a, &b| a.max(b.abs()));
    let mut results = Vec::new();
    for (name, config) in small_models() {
        let (plan, params) = plan_and_params(&config, batch, seed);
        let steps_per_epoch = rows / batch;
        let run = RunConfig {
            adam: AdamConfig::default(),
            seed,
            total_steps: (epochs * steps_per_epoch) as u32,
        };
        let mut gpu = GpuExecutor::new(ctx, &plan, &params, data, Some(eval), run).unwrap();
        let mut cpu = CpuExecutor::<f32>::new(&plan, &params, data, Some(eval), run).unwrap();
        let expected = if grouped {
            dispatches_with_grouped_weight_grads(&plan)
        } else {
            plan.dispatches_per_step()
        };
        assert_eq!(gpu.dispatches_per_step(), expected, "{name}");
        let mut worst = 0.0f32;
        for epoch in 0..epochs {
            let order = epoch_order(rows, seed + epoch as u64);
            gpu.begin_epoch(&order).unwrap();
            cpu.begin_epoch(&order).unwrap();
            for _ in 0..steps_per_epoch {
                cpu_takes_gpu_state(&mut cpu, &gpu);
                gpu.step().unwrap();
                cpu.step().unwrap();
                let step = cpu.next_step() - 1;
                assert_eq!(gpu.next_step(), cpu.next_step(), "{name}");
                let (g, c) = (gpu.loss_totals().unwrap(), cpu.loss_totals());
                gpu.reset_losses().unwrap();
                cpu.reset_losses();
                if let Some(term) = far_term(&g, &c) {
                    panic!(
                        "{name} step {step} term {term}: gpu {g:?} cpu {c:?} (LATENT_TEST_SEED={seed})"
                    );
                }
                let g = gpu.read_params().unwrap();
                let off = flat_within(&plan, &g, &cpu.params, &drift.params, |_| 1.0);
                let off = off.unwrap_or_else(|e| {
                    panic!("{name} step {step} parameters: {e} (LATENT_TEST_SEED={seed})")
                });
                worst = worst.max(off);
                let (m, v) = gpu.read_adam().unwrap();
                for (what, g, c) in [("m", &m, &cpu.adam_m), ("v", &v, &cpu.adam_v)] {
                    if let Err(e) = flat_within(&plan, g, c, &drift.moments, largest) {
                        panic!("{name} step {step} Adam's {what}: {e} (LATENT_TEST_SEED={seed})");
                    }
                }
            }
        }
        // Evaluation over the 90 held-out rows, the last batch partial, from the GPU's
        // parameters.
        let final_params = gpu.read_params().unwrap();
        cpu_takes_gpu_state(&mut cpu, &gpu);
        let (g, c) = (gpu.evaluate().unwrap(), cpu.evaluate().unwrap());
        assert_eq!(
            far_term(&g, &c),
            None,
            "{name} evaluation: gpu {g:?} cpu {c:?} (LATENT_TEST_SEED={seed})"
        );
        assert_eq!(
            gpu.evaluate().unwrap(),
            g,
            "{name}: evaluation is deterministic"
        );
        let moved = final_params
            .iter()
            .zip(&params)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            moved > 5e-3,
            "{name}: training moved no parameter (max change {moved})"
        );
        let names = gpu
            .step_dispatches()
            .iter()
            .map(|d| d.name.to_string())
            .collect();
        results.push((name.to_string(), names, worst));
    }
    results
}

#[test]
fn gpu_and_cpu_training_agree_over_24_steps() {
    let Some(ctx) = common::gpu("gpu_and_cpu_training_agree_over_24_steps") else {
        return;
    };
    let seed = common::seed();
    let drift = F32_DRIFT;
    for (name, dispatches, worst) in train_both(ctx, seed, &drift, false) {
        eprintln!(
            "{name}: {} dispatches per step, max parameter difference {worst:e}",
            dispatches.len()
        );
    }
}

/// The same on wgpu's GL backend (llvmpipe in CI): every small model, with the training
/// step's fused dispatches (the VAE head, the losses in matmul stores, the joined and
/// corrupting gathers, the IWAE's bound), trains as the CPU twins do. GL has misplaced stores
/// that Vulkan got right (session 21's z | label), so the whole step is checked there too.
#[test]
fn gpu_and_cpu_training_agree_on_gl() {
    let Some(ctx) = common::gl("gpu_and_cpu_training_agree_on_gl") else {
        return;
    };
    let seed = common::seed();
    for (name, dispatches, worst) in train_both(&ctx, seed, &F32_DRIFT, false) {
        eprintln!(
            "GL {name}: {} dispatches per step, max parameter difference {worst:e}",
            dispatches.len()
        );
    }
}

/// The grouped weight gradients end to end: every small model with each set of weight
/// gradients the grouped kernel takes in one dispatch (forced, at 4 × 4 and at 8 × 8 a
/// thread, and prefetching; Adam fused where every set groups), trained beside the CPU twins within the same
/// drift as the separate dispatches; with Adam fused, no gradient is stored to read.
#[test]
fn grouped_weight_gradients_train_like_the_cpu_twins() {
    use latent::gpu::GpuOptions;
    use latent::kernels::matmul::MatmulTiles;
    use latent::kernels::matmul_grouped_tn::{WeightGrads, WeightGradsPolicy};

    let test = "grouped_weight_gradients_train_like_the_cpu_twins";
    if common::gpu(test).is_none() {
        return;
    }
    let ctx = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    let seed = common::seed();
    let drift = F32_DRIFT;
    for tiles in [
        MatmulTiles::default(),
        MatmulTiles {
            tile_m: 32,
            tile_n: 32,
            thread: 8,
            ..MatmulTiles::default()
        },
        MatmulTiles {
            thread: 8,
            prefetch: true,
            ..MatmulTiles::default()
        },
    ] {
        ctx.set_weight_grads_policy(WeightGradsPolicy::Force(WeightGrads::Grouped(tiles)));
        let runs = train_both(&ctx, seed, &drift, true);
        // The autoencoders (48-24-12) and the VAEs with widths of 4s group, with Adam fused
        // (no adam_step dispatch); the VAE with a 6-wide code and the conditional one (51
        // inputs, 4 + 3 into the decoder) group their other layers and keep separate
        // dispatches for those and their Adam dispatch.
        for (name, names, _) in &runs {
            let fused = names.iter().any(|n| n == "matmul_grouped_tn_adam");
            let adam = names.iter().any(|n| n.starts_with("adam_step"));
            assert!(fused != adam, "{name} at {tiles}: {names:?}");
            if ["vae", "conditional vae"].contains(&name.as_str()) {
                assert!(
                    names.iter().any(|n| n == "matmul_grouped_tn"),
                    "{name} at {tiles}: {names:?}"
                );
            }
        }
        let grouped = runs
            .iter()
            .filter(|(_, names, _)| names.iter().any(|n| n == "matmul_grouped_tn_adam"))
            .count();
        assert!(grouped >= 4, "{grouped} models grouped at {tiles}");
    }
    // With Adam fused the step stores no gradients: reading one is a clear error.
    let (name, config) = &small_models()[0];
    let plan = Plan::compile(config.build(16).unwrap().0).unwrap();
    let rows = 32;
    let bytes = synthetic_bytes(rows, 48, seed);
    let data = TrainData::new(Samples::U8(&bytes), rows, 48);
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed,
        total_steps: 2,
    };
    let gpu = GpuExecutor::new(
        &ctx,
        &plan,
        &init_params(&plan, seed).unwrap(),
        data,
        None,
        run,
    )
    .unwrap();
    assert!(
        gpu.step_dispatches()
            .iter()
            .all(|d| !d.name.starts_with("adam_step")),
        "{name}"
    );
    let gradient = (0..plan.graph.tensors.len())
        .map(latent::graph::TensorId)
        .find(|&t| matches!(plan.location[t.0], Location::Grads(_)))
        .unwrap();
    let error = gpu.read_tensor(gradient).unwrap_err().to_string();
    assert!(error.contains("stores no gradients"), "{error}");
    assert_eq!(gpu.weight_grads_form(), "grouped, Adam fused");
    // The conditional VAE (51 inputs, 4 + 3 into the decoder): its other layers group.
    let (name, config) = &small_models()[5];
    let plan = Plan::compile(config.build(16).unwrap().0).unwrap();
    let labels = three_classes(rows);
    let data = TrainData {
        labels: Some(&labels),
        ..data
    };
    let params = init_params(&plan, seed).unwrap();
    let gpu = GpuExecutor::new(&ctx, &plan, &params, data, None, run).unwrap();
    assert_eq!(gpu.weight_grads_form(), "partly grouped", "{name}");
}

/// The executor's device memory is its buffers: the gradient buffer only where a dispatch
/// writes it, and a pool that keeps the grouped layers' dy and x.
#[test]
fn device_memory_counts_the_executors_buffers() {
    use latent::gpu::GpuOptions;
    use latent::kernels::matmul_grouped_tn::{WeightGrads, WeightGradsPolicy};

    let test = "device_memory_counts_the_executors_buffers";
    if common::gpu(test).is_none() {
        return;
    }
    let ctx = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    let seed = common::seed();
    let (name, config) = &small_models()[0];
    let plan = Plan::compile(config.build(16).unwrap().0).unwrap();
    let (rows, width) = (32, 48);
    let bytes = synthetic_bytes(rows, width, seed);
    let params = init_params(&plan, seed).unwrap();
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed,
        total_steps: 2,
    };
    let input = plan.graph.tensor(plan.input).len();
    let separate_pool = plan.gpu_pool(&[]).0;
    let grouped_pool = plan.gpu_pool(&plan.weight_grad_sets().concat()).0;
    let forms = [
        (WeightGrads::Separate, &separate_pool, plan.param_len),
        (WeightGrads::Grouped(Default::default()), &grouped_pool, 0),
    ];
    for (form, pool, gradients) in forms {
        ctx.set_weight_grads_policy(WeightGradsPolicy::Force(form));
        let data = TrainData::new(Samples::U8(&bytes), rows, width);
        let gpu = GpuExecutor::new(&ctx, &plan, &params, data, None, run).unwrap();
        let memory = gpu.device_memory();
        let bytes_of = |elements: usize| 4 * elements as u64;
        assert_eq!(
            memory.parameters,
            bytes_of(3 * plan.param_len),
            "{name} {form}"
        );
        assert_eq!(memory.gradients, bytes_of(gradients), "{name} {form}");
        assert_eq!(
            memory.activations,
            bytes_of(pool.iter().sum::<usize>() + input),
            "{name} {form}"
        );
        // The bytes four to a word, and the epoch's order.
        assert_eq!(
            memory.data,
            bytes_of(rows * width / 4 + rows),
            "{name} {form}"
        );
        assert!(memory.other > 0 && memory.total() > memory.data + memory.parameters);
    }
    // A forward-only plan holds only the data it runs on (its evaluation set), once, and the
    // parameters without Adam's moments.
    let inference = Plan::compile_inference(config.build(16).unwrap().0, &[]).unwrap();
    let data = TrainData::new(Samples::U8(&bytes), rows, width);
    let mut gpu = GpuExecutor::new(&ctx, &inference, &params, data, Some(data), run).unwrap();
    let set = (rows * width) as u64;
    let memory = gpu.device_memory();
    assert!(
        set < memory.data && memory.data < 2 * set,
        "{} bytes for a set of {set}",
        memory.data
    );
    assert_eq!(memory.parameters, 4 * (plan.param_len as u64 + 8));
    let order: Vec<u32> = (0..rows as u32).collect();
    let error = gpu.begin_epoch(&order).unwrap_err().to_string();
    assert!(error.contains("forward-only"), "{error}");
}

/// The opt-in f16 path end to end: every matmul of every small model on coop-f16 (A and B
/// rounded to f16), trained beside the f32 CPU twins, on an adapter with cooperative matrices
/// (or on the lavapipe of LATENT_COOP_LAVAPIPE, see tests/common).
#[test]
fn coop_f16_training_stays_near_the_cpu_twins() {
    use latent::kernels::autotune::{select_matmul, MatmulPolicy};
    use latent::kernels::matmul::{MatmulChoice, MatmulVariant};

    let test = "coop_f16_training_stays_near_the_cpu_twins";
    let Some((ctx, runs)) = common::coop_device(test) else {
        return;
    };
    if let Err(e) = runs {
        common::coop_elsewhere(test, &ctx, &e);
        return;
    }
    let forced = MatmulPolicy::Force(MatmulVariant::CoopF16);
    let selection = select_matmul(&ctx, forced, None).expect("coop-f16 admitted");
    assert_eq!(
        selection.choice,
        MatmulChoice::uniform(MatmulVariant::CoopF16)
    );
    selection.apply(&ctx);
    let seed = common::seed();
    // f16 operands carry 2⁻¹¹ relative rounding into every product (more where a gradient
    // element nears f16's subnormals): a rounding that flips a gradient element near zero
    // moves its parameter up to ~lr = 1e-3 a step the other way, and a small element of
    // Adam's moments can be far off its CPU twin's while the update it makes, divided by
    // √v, stays near. Measured on lavapipe's cooperative matrices over 20 seeds (101-120)
    // and the 8 models before the Gaussian IWAE (which passes these bounds on the same
    // seeds), a step at a time: a term's difference at most 1.0e-4 of its step's
    // total loss (the small KL terms are measured against the total), 1e-3 allowed; the worst
    // parameter 2.0e-3 off (several in a step), 2.5e-3 allowed, their mean 8.4e-6, 1e-4
    // allowed; the worst moment 0.24 of its tensor's largest, 0.5 allowed, their mean
    // 3.1e-3, 1e-2 allowed. A wrong product or epilogue moves far more.
    let drift = Drift {
        loss_of_term: 0.0,
        loss_of_total: 1e-3,
        loss_absolute: 1e-4,
        params: Within {
            each: 2.5e-3,
            outlier: 2.5e-3,
            mean: 1e-4,
        },
        moments: Within {
            each: 0.5,
            outlier: 0.5,
            mean: 1e-2,
        },
    };
    for (name, dispatches, worst) in train_both(&ctx, seed, &drift, false) {
        assert!(
            dispatches.iter().any(|d| d == "matmul_coop_f16"),
            "{name}: no coop-f16 matmul in the step: {dispatches:?}"
        );
        eprintln!("{name} on coop-f16: max parameter difference {worst:e}");
    }
}

#[test]
fn whole_model_gradients_match_finite_differences() {
    let seed = common::seed();
    let (rows, width, batch) = (8, 12, 4);
    let bytes = synthetic_bytes(rows, width, seed);
    let labels: Vec<u8> = (0..rows).map(|r| (r % 2) as u8).collect();
    let data = TrainData {
        labels: Some(&labels),
        ..TrainData::new(Samples::U8(&bytes), rows, width)
    };
    let configs = [
        (
            "iwae k=4, gaussian",
            ModelConfig {
                importance_samples: Some(4),
                likelihood: Likelihood::Gaussian,
                ..ModelConfig::vae(width, 6, 3)
            },
        ),
        (
            "conditional vae",
            ModelConfig {
                classes: Some(2),
                ..ModelConfig::vae(width, 6, 3)
            },
        ),
        (
            "conditional iwae k=3",
            ModelConfig {
                classes: Some(2),
                importance_samples: Some(3),
                ..ModelConfig::vae(width, 6, 3)
            },
        ),
        (
            "autoencoder mse",
            ModelConfig {
                encoder: vec![7],
                ..ModelConfig::autoencoder(width, 5)
            },
        ),
        ("vae bce", ModelConfig::vae(width, 6, 3)),
        (
            "denoising vae (masking)",
            ModelConfig {
                noise: Some(Noise::Masking { p: 0.3 }),
                ..ModelConfig::vae(width, 6, 3)
            },
        ),
        (
            "sparse autoencoder l1, tanh",
            ModelConfig {
                activation: latent::kernels::activation::Activation::Tanh,
                sparsity: Some(Sparsity::L1 { weight: 0.1 }),
                ..ModelConfig::autoencoder(width, 5)
            },
        ),
        (
            "sparse autoencoder kl",
            ModelConfig {
                encoder: vec![7],
                sparsity: Some(Sparsity::Kl {
                    rho: 0.2,
                    weight: 0.5,
                }),
                ..ModelConfig::autoencoder(width, 5)
            },
        ),
        (
            "autoencoder, linear code",
            ModelConfig {
                encoder: vec![7],
                linear_code: true,
                sparsity: Some(Sparsity::L1 { weight: 0.1 }),
                ..ModelConfig::autoencoder(width, 5)
            },
        ),
        (
            "vae gaussian sigmoid",
            ModelConfig {
                likelihood: Likelihood::Gaussian,
                activation: latent::kernels::activation::Activation::Sigmoid,
                ..ModelConfig::vae(width, 6, 3)
            },
        ),
    ];
    for (name, config) in configs {
        let (plan, params) = plan_and_params(&config, batch, seed);
        let run = RunConfig {
            adam: AdamConfig::default(),
            seed,
            total_steps: 1,
        };
        let mut exec = CpuExecutor::<f64>::new(&plan, &params, data, None, run).unwrap();
        exec.forward().unwrap();
        exec.backward().unwrap();
        let analytic = exec.grads.clone();
        let base = exec.params.clone();
        let loss_at = |exec: &mut CpuExecutor<f64>, p: &[f64]| {
            exec.params.copy_from_slice(p);
            exec.forward().unwrap();
            exec.last_loss()
        };
        // Every parameter tensor, a few elements each. The noise is keyed by the step, which
        // forward() does not advance, so the loss is a deterministic function of θ.
        let h = 1e-6;
        let mut checked = 0;
        for t in plan.graph.parameters() {
            let Location::Params(offset) = plan.location[t.0] else {
                unreachable!()
            };
            let len = plan.graph.tensor(t).len();
            for i in (offset..offset + len).step_by((len / 3).max(1)) {
                let mut p = base.clone();
                p[i] += h;
                let plus = loss_at(&mut exec, &p);
                p[i] -= 2.0 * h;
                let minus = loss_at(&mut exec, &p);
                let numeric = (plus - minus) / (2.0 * h);
                // ReLU kinks can sit within h of a pre-activation; none do at these sizes in
                // practice, and the bound is central differences' own (see gradcheck.rs).
                assert!(
                    (numeric - analytic[i]).abs() <= 1e-5 + 1e-5 * numeric.abs(),
                    "{name}: {}[{}] analytic {} numeric {numeric} (LATENT_TEST_SEED={seed})",
                    plan.graph.tensor(t).name,
                    i - offset,
                    analytic[i]
                );
                checked += 1;
            }
        }
        assert!(
            checked >= 3 * plan.graph.parameters().len(),
            "{name}: too few elements checked"
        );
    }
}

/// An IWAE's loss compares each of a data row's K samples with that row: on the GPU its
/// loss kernels read the gathered batch by row group, so the data rows repeated K times are
/// neither computed nor stored (one dispatch and a (batch·K, 784) buffer fewer), in
/// training and in the evaluation of the bound. Its μ | logvar, repeated for the
/// reparameterization, are read the same way by the reparameterization, its backward and
/// the log weights; in training the VAE head draws the K samples of each row and adds the
/// KL of the data rows (only reported) to its totals, in one dispatch. The gradient's group
/// sums are done by the reparameterization's backward. (The GPU training tests check the
/// values.)
#[test]
fn an_iwae_reads_the_data_rows_and_their_stats_in_place_of_their_repeats() {
    let iwae = ModelConfig {
        importance_samples: Some(5),
        ..ModelConfig::vae(784, 400, 20)
    };
    let training = Plan::compile(iwae.build(128).unwrap().0).unwrap();
    let evaluation =
        Plan::compile_evaluation(iwae.build_importance_weighted(32, 5).unwrap()).unwrap();
    for plan in [&training, &evaluation] {
        let repeats: Vec<_> = plan
            .graph
            .ops
            .iter()
            .zip(&plan.fused)
            .filter_map(|(op, &fused)| match *op {
                latent::graph::Op::RepeatRows { y, x, k } => Some((y, x, k, fused)),
                _ => None,
            })
            .collect();
        let [(stats_repeat, stats, 5, true), (data_repeat, data, 5, true)] = repeats[..] else {
            panic!("{repeats:?}")
        };
        assert_eq!(data, plan.input);
        // The KL is of the data rows' stats.
        assert!(plan
            .graph
            .ops
            .iter()
            .any(|op| matches!(*op, latent::graph::Op::Kl { stats: s, .. } if s == stats)));
        let target = plan
            .graph
            .ops
            .iter()
            .find_map(|op| match *op {
                latent::graph::Op::Loss { b, .. } => Some(b),
                _ => None,
            })
            .unwrap();
        assert_eq!(target, data_repeat);
        assert_eq!(plan.repeat_source(target), (plan.input, 5));
        assert_eq!(plan.repeat_source(stats_repeat), (stats, 5));
        let unstored = plan.unstored_on_gpu();
        assert!(unstored[data_repeat.0] && unstored[stats_repeat.0]);
        let pool = plan.gpu_pool(&[]).1;
        assert!(pool[data_repeat.0].is_none() && pool[stats_repeat.0].is_none());
    }
    // The head: the reparameterization of the repeated stats with the KL, which has no
    // gradient (its weight is 0).
    let heads: Vec<_> = training
        .graph
        .ops
        .iter()
        .zip(&training.training_fusion)
        .filter(|(_, f)| matches!(f, TrainingFusion::VaeHead { .. }))
        .collect();
    assert!(
        matches!(
            heads[..],
            [(
                latent::graph::Op::Reparameterize { .. },
                TrainingFusion::VaeHead { grad: None, .. }
            )]
        ),
        "{heads:?}"
    );
    // The reparameterization's backward sums its samples' groups in the same dispatch
    // (onto what the log weights' backward wrote of the samples' gradient).
    let fused: Vec<_> = training
        .backward
        .iter()
        .zip(&training.reparameterize_group_sum)
        .filter_map(|(op, group_sum)| group_sum.map(|g| (op, &training.backward[g])))
        .collect();
    assert!(
        matches!(
            fused[..],
            [(
                GradOp::Reparameterize {
                    accumulate: true,
                    ..
                },
                GradOp::SumRowGroups { k: 5, .. }
            )]
        ),
        "{fused:?}"
    );
    // The log weights' dispatch does the BCE rows they read (rows to totals), the bound
    // (rows to totals), its gradient, the log weights' backward and the BCE's gradient,
    // which takes dlogw (kernels::iwae_bound::iwae_bound_with_recon).
    let position_of = |matches: fn(&latent::graph::Op) -> bool| {
        training.graph.ops.iter().position(matches).unwrap()
    };
    let loss = position_of(|op| matches!(op, latent::graph::Op::Loss { .. }));
    assert_eq!(training.training_fusion[loss], TrainingFusion::InBound);
    let weights = position_of(|op| matches!(op, latent::graph::Op::LogWeight { .. }));
    let bound = position_of(|op| matches!(op, latent::graph::Op::NegLogMeanExp { .. }));
    let TrainingFusion::IwaeBound {
        bound: b,
        bound_grad,
        grad,
        recon: Some((recon, recon_grad)),
    } = training.training_fusion[weights]
    else {
        panic!("the log weights do not do the bound and the BCE")
    };
    assert_eq!((b, recon), (bound, loss));
    assert_eq!(training.training_fusion[bound], TrainingFusion::InBound);
    assert!(matches!(
        training.backward[recon_grad],
        GradOp::Loss {
            kind: LossKind::Bce,
            row_grad: Some(_),
            ..
        }
    ));
    assert!(training.done_elsewhere[recon_grad]);
    let recon_term = training.losses.iter().find(|t| t.op == loss).unwrap();
    assert!(training.running_totals(recon_term));
    assert!(matches!(
        training.backward[bound_grad],
        GradOp::NegLogMeanExp { .. }
    ));
    assert!(matches!(
        training.backward[grad],
        GradOp::LogWeight {
            accumulate_z: false,
            accumulate_stats: false,
            ..
        }
    ));
    assert!(training.done_elsewhere[bound_grad] && training.done_elsewhere[grad]);
    // The bound's running totals are one a sample row.
    let term = training.losses.iter().find(|t| t.op == bound).unwrap();
    assert!(training.running_totals(term));
    // Gather, 4 linear (ReLUs fused), the head (reparameterize, KL), the importance
    // weighting (BCE, log weights, −log mean exp, their gradients and the BCE's); no loss
    // sums; backward: 4 linear (7 matmuls), reparameterize with the group sums of
    // dμ | dlogvar; Adam.
    assert_eq!(training.dispatches_per_step(), 1 + 4 + 1 + 1 + 7 + 1 + 1);
}

/// An IWAE of more samples than one thread a group sums (ALONE_MAX_K) keeps its log
/// weights, bound and backward in dispatches of their own, as one whose log weights another
/// op reads would.
#[test]
fn an_iwae_of_many_samples_keeps_its_bound_apart() {
    let many = latent::kernels::log_mean_exp::ALONE_MAX_K + 1;
    let iwae = ModelConfig {
        importance_samples: Some(many),
        ..ModelConfig::vae(24, 16, 4)
    };
    let plan = Plan::compile(iwae.build(8).unwrap().0).unwrap();
    assert!(!plan.training_fusion.iter().any(|f| matches!(
        f,
        TrainingFusion::IwaeBound { .. } | TrainingFusion::InBound
    )));
    let bound = plan
        .graph
        .ops
        .iter()
        .position(|op| matches!(op, latent::graph::Op::NegLogMeanExp { .. }))
        .unwrap();
    assert!(matches!(
        plan.training_fusion[bound],
        TrainingFusion::LossWithGrad { .. }
    ));
    // Gather, 4 linear, the head, BCE (rows to totals), log weights, the bound with its
    // gradient; backward: log weights, BCE, 4 linear (7 matmuls), reparameterize; Adam.
    assert_eq!(plan.dispatches_per_step(), 1 + 4 + 1 + 3 + 2 + 7 + 1 + 1);
}

/// A sparse autoencoder's KL sparsity penalty adds its rows to running totals and writes its
/// gradient in one forward dispatch, as a loss fused with its gradient does: the sum and
/// the penalty's backward need no dispatch of their own (one dispatch more than the plain
/// autoencoder's, not three); the decoder's dx, applied later, adds to that gradient. An
/// L1 penalty needs no dispatch at all: the decoder's dx matmul adds its gradient to the
/// product and its rows to the totals as it stores (before a ReLU's derivative, or alone
/// for a linear code). (The GPU training tests check the values.)
#[test]
fn a_sparse_penalty_writes_its_gradient_in_its_forward_dispatch_or_the_decoders_store() {
    let plain = ModelConfig {
        encoder: vec![24],
        ..ModelConfig::autoencoder(48, 12)
    };
    let base = Plan::compile(plain.build(16).unwrap().0).unwrap();
    let l1 = Sparsity::L1 { weight: 0.01 };
    let kl = Sparsity::Kl {
        rho: 0.1,
        weight: 0.05,
    };
    for (sparsity, linear_code) in [(l1, false), (l1, true), (kl, false)] {
        let config = ModelConfig {
            sparsity: Some(sparsity),
            linear_code,
            ..plain.clone()
        };
        let plan = Plan::compile(config.build(16).unwrap().0).unwrap();
        let penalty = plan
            .graph
            .ops
            .iter()
            .position(|op| matches!(op, latent::graph::Op::Penalty { .. }))
            .unwrap();
        let (grad, extra) = match (sparsity, plan.training_fusion[penalty]) {
            (Sparsity::Kl { .. }, TrainingFusion::LossWithGrad { grad }) => (grad, 1),
            (Sparsity::L1 { .. }, TrainingFusion::InDx { grad }) => (grad, 0),
            (_, other) => panic!("{sparsity:?}: {other:?}"),
        };
        let GradOp::Penalty(ref penalty_grad) = plan.backward[grad] else {
            panic!("{sparsity:?}: {:?}", plan.backward[grad])
        };
        assert!(!penalty_grad.accumulate, "{sparsity:?}");
        assert!(plan.done_elsewhere[grad]);
        // The L1 penalty's store: the decoder's dx matmul, whose dx the penalty wrote first.
        let in_store: Vec<usize> = (0..plan.backward.len())
            .filter(|&j| plan.dx_penalty[j] == Some(penalty))
            .collect();
        match (sparsity, &in_store[..]) {
            (Sparsity::Kl { .. }, []) => {}
            (Sparsity::L1 { .. }, &[j]) => {
                let GradOp::Linear {
                    dx: Some(dx),
                    accumulate_dx: true,
                    ..
                } = plan.backward[j]
                else {
                    panic!("{:?}", plan.backward[j])
                };
                assert_eq!(dx, penalty_grad.dx);
                assert!(!plan.adds_to_dx(j));
                // With a ReLU code, the matmul writes the ReLU's dx: the code's never stored.
                assert_eq!(plan.unstored_on_gpu()[dx.0], !linear_code);
            }
            (_, other) => panic!("{sparsity:?}: {other:?}"),
        }
        // (A linear code drops the ReLU, which the plain model does in its stores.)
        assert_eq!(
            plan.dispatches_per_step(),
            base.dispatches_per_step() + extra,
            "{sparsity:?} linear code {linear_code}"
        );
    }
}

/// A conditional VAE's decoder takes z | label, so its dx matmul's product is d(z | label):
/// the reparameterization's backward takes dz as the first columns of its rows, with no
/// slice dispatch, in that matmul's store (the label's columns dropped), and neither dz nor
/// d(z | label) is ever stored on the GPU. In training, the VAE head writes z | label
/// itself, with no concat dispatch. (The GPU training tests check the values.)
#[test]
fn a_conditional_vae_reads_dz_in_place_of_a_slice_and_its_head_joins_the_label() {
    let cvae = ModelConfig {
        classes: Some(10),
        ..ModelConfig::vae(784, 400, 20)
    };
    let plan = Plan::compile(cvae.build(128).unwrap().0).unwrap();
    let folded: Vec<_> = plan
        .backward
        .iter()
        .zip(&plan.folded_slices)
        .filter(|(_, &folded)| folded)
        .map(|(op, _)| op)
        .collect();
    let [&GradOp::Slice {
        da: dz,
        dy,
        offset: 0,
        ..
    }] = folded[..]
    else {
        panic!("{folded:?}")
    };
    assert_eq!(plan.graph.tensor(dz).cols, 20);
    assert_eq!(plan.reparameterize_dz(dz), (dy, 30));
    assert!(plan.unstored_on_gpu()[dz.0]);
    // The decoder's dx matmul, which writes d(z | label), does the reparameterization's
    // backward of its first 20 columns.
    let in_store: Vec<_> = plan
        .backward
        .iter()
        .zip(&plan.dx_reparameterize)
        .filter_map(|(op, r)| r.map(|r| (op, &plan.backward[r])))
        .collect();
    let [(&GradOp::Linear { dx: Some(dx), .. }, &GradOp::Reparameterize { dz: read, .. })] =
        in_store[..]
    else {
        panic!("{in_store:?}")
    };
    assert_eq!((dx, read), (dy, dz));
    assert!(plan.unstored_on_gpu()[dy.0]);
    // The head joins the label to z: the concat that alone reads z is done in its dispatch.
    let concat_of_z = |z: latent::graph::TensorId| {
        plan.graph
            .ops
            .iter()
            .position(|op| matches!(*op, latent::graph::Op::Concat { a, .. } if a == z))
    };
    let (head, joined) = plan
        .training_fusion
        .iter()
        .enumerate()
        .find_map(|(i, f)| match *f {
            TrainingFusion::VaeHead { join, .. } => Some((i, join)),
            _ => None,
        })
        .unwrap();
    let latent::graph::Op::Reparameterize { z, .. } = plan.graph.ops[head] else {
        panic!("the head is not a reparameterization")
    };
    assert_eq!(joined, concat_of_z(z));
    let concat = joined.unwrap();
    assert_eq!(plan.training_fusion[concat], TrainingFusion::InHead);
    // The gather of the data, the labels and x | label (gather_join), 4 linear (ReLUs
    // fused; the BCE in the output layer's store), the VAE head (with z | label); backward:
    // 4 linear (7 matmuls, the reparameterization's backward in one's store); Adam.
    assert_eq!(plan.dispatches_per_step(), 1 + 4 + 1 + 7 + 1);
}

#[test]
fn plans_reuse_buffers_and_count_dispatches() {
    let (graph, _) = ModelConfig::vae(784, 400, 20).build(128).unwrap();
    let tensors = graph.tensors.len();
    let plan = Plan::compile(graph).unwrap();
    let pooled = plan
        .location
        .iter()
        .filter(|l| matches!(l, Location::Pool(_)))
        .count();
    assert!(
        plan.pool.len() < pooled,
        "{} pooled tensors in {} buffers: no reuse",
        pooled,
        plan.pool.len()
    );
    // Forward: gather + 4 linear (μ and logvar stacked into one; the 2 ReLUs fused into
    // their stores; BCE and its gradient in the output layer's store) + the VAE head
    // (reparameterize, KL and its gradient); no loss sums (running totals). Backward: 4 linear (dW with the bias
    // gradient as its row sums, and dx except for fc1: 7), with both ReLU backwards in dx
    // stores (the decoder's in fc4's, the encoder's in the μ | logvar layer's) and the
    // reparameterization's backward in fc3's (dz). Then Adam; the step state is a row of a
    // table, no dispatch.
    assert_eq!(plan.fused.iter().filter(|&&f| f).count(), 2);
    let fusions: Vec<_> = plan
        .training_fusion
        .iter()
        .filter(|&&f| f != TrainingFusion::None)
        .collect();
    assert!(
        matches!(
            fusions[..],
            [
                TrainingFusion::VaeHead { .. },
                TrainingFusion::LinearWithLoss { .. },
                TrainingFusion::InLinear,
                TrainingFusion::InHead
            ]
        ),
        "{fusions:?}"
    );
    assert_eq!(plan.done_elsewhere.iter().filter(|&&d| d).count(), 5);
    assert_eq!(plan.dx_activation.iter().flatten().count(), 2);
    assert_eq!(plan.dx_reparameterize.iter().flatten().count(), 1);
    assert_eq!(plan.dispatches_per_step(), 1 + 5 + 7 + 1);
    // The autoencoder: gather, encoder (ReLU fused), decoder (MSE and its gradient fused);
    // backward: decoder (dW, and dx with the ReLU backward), encoder (dW); Adam.
    let ae = Plan::compile(ModelConfig::autoencoder(784, 256).build(128).unwrap().0).unwrap();
    assert_eq!(ae.dispatches_per_step(), 1 + 2 + (2 + 1) + 1);
    // Forward-only plans move nothing into their forward pass.
    let eval =
        Plan::compile_evaluation(ModelConfig::vae(784, 400, 20).build(128).unwrap().0).unwrap();
    assert!(eval
        .training_fusion
        .iter()
        .all(|&f| f == TrainingFusion::None));
    assert!(
        tensors < plan.graph.tensors.len(),
        "autodiff added gradient tensors"
    );
}

/// The GPU's pool leaves out the tensors no dispatch stores, and keeps a linear layer's dy
/// and x to the step's end only for the layers whose weight gradients a grouped dispatch
/// computes after the backward pass. (The GPU training tests check the rest: binding an
/// unstored tensor is an error, and a kept tensor overwritten early would change the
/// weight gradients.)
#[test]
fn the_gpu_pool_leaves_out_unstored_tensors_and_keeps_grouped_operands() {
    let wide = ModelConfig {
        encoder: vec![2048, 2048],
        decoder: vec![2048, 2048],
        ..ModelConfig::vae(784, 2048, 64)
    };
    let plan = Plan::compile(wide.build(1024).unwrap().0).unwrap();
    let elements = |pool: &[usize]| pool.iter().sum::<usize>();
    let (separate, location) = plan.gpu_pool(&[]);
    let unstored = plan.unstored_on_gpu();
    for (t, l) in location.iter().enumerate() {
        match (l, plan.location[t]) {
            (None, _) => assert!(unstored[t]),
            (Some(Location::Pool(_)), Location::Pool(_)) => {}
            (Some(gpu), cpu) => assert_eq!(*gpu, cpu, "{}", plan.graph.tensors[t].name),
        }
    }
    // The four ReLUs' inputs (their linear layers store the ReLU's output), and the dx of
    // the layers whose dx matmul applies ReLU' or the reparameterization's backward.
    for (i, op) in plan.graph.ops.iter().enumerate() {
        if let (true, latent::graph::Op::Activation { x, .. }) = (plan.fused[i], op) {
            assert!(location[x.0].is_none(), "{}", plan.graph.tensor(*x).name);
        }
    }
    assert_eq!(plan.fused.iter().filter(|&&f| f).count(), 4);
    assert!(
        elements(&separate) < elements(&plan.pool),
        "pool elements: GPU {}, CPU {}",
        elements(&separate),
        elements(&plan.pool)
    );
    let sets = plan.weight_grad_sets();
    // 6 linear layers, in backward order: the decoder's 3 and the μ | logvar layer, then
    // the encoder's 2, whose dy and x are read last anyway.
    assert_eq!(sets.len(), 2);
    let first_set = plan.gpu_pool(&sets[0]).0;
    let every_set = plan.gpu_pool(&sets.concat()).0;
    assert!(
        elements(&separate) < elements(&first_set) && elements(&first_set) <= elements(&every_set),
        "pool elements: separate {}, first set grouped {}, every set grouped {}",
        elements(&separate),
        elements(&first_set),
        elements(&every_set)
    );
}

/// What a training step moves (`GpuExecutor::step_traffic`, what `latent bench` reports):
/// the 784-256-784 autoencoder's step at batch 128 against a count by hand of what each of
/// its dispatches reads and writes; with the weight gradients grouped and Adam fused, the
/// same less the gradient's write and Adam's read of it (and the flat buffer's padding). The
/// matmul dispatches' FLOPs add up to the plan's, and each names the tensor it writes.
#[test]
fn a_training_steps_traffic_is_what_its_dispatches_read_and_write() {
    use latent::gpu::GpuOptions;
    use latent::kernels::matmul_grouped_tn::{WeightGrads, WeightGradsPolicy};

    let test = "a_training_steps_traffic_is_what_its_dispatches_read_and_write";
    if common::gpu(test).is_none() {
        return;
    }
    let (b, d, h) = (128, 784, 256);
    let plan = Plan::compile(ModelConfig::autoencoder(d, h).build(b).unwrap().0).unwrap();
    let params = init_params(&plan, 1).unwrap();
    let bytes = synthetic_bytes(b, d, 1);
    let data = TrainData::new(Samples::U8(&bytes), b, d);
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed: 1,
        total_steps: 1,
    };
    // The parameters; Adam runs over the flat buffer, each tensor padded to a view.
    let p = h * d + h + d * h + d;
    let padded = plan.param_len;
    assert!(p <= padded && padded < p + 4 * latent::gpu::VIEW_ALIGNMENT);
    // (name, floats read, floats written); the gather reads bytes.
    let expected: Vec<(&str, usize, usize)> = vec![
        // ReLU(x·W1ᵀ + b1).
        ("matmul", b * d + h * d + h, b * h),
        // The MSE and its gradient in the decoder's store: reads h, W2, b2, the target and
        // the loss totals (a slot a row); writes dlogits and the totals.
        ("matmul", b * h + d * h + d + b * d + b, b * d + b),
        // dW2 = dyᵀ·h with db2 as its row sums.
        ("matmul", b * d + b * h, d * h + d),
        // dh = dy·W2 · ReLU'(h).
        ("matmul", b * d + d * h + b * h, b * h),
        // dW1 = dhᵀ·x with db1.
        ("matmul", b * h + b * d, h * d + h),
        ("adam_step_vec4", 4 * padded, 3 * padded),
    ];
    let ctx = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    ctx.set_weight_grads_policy(WeightGradsPolicy::Force(WeightGrads::Separate));
    let separate = GpuExecutor::new(&ctx, &plan, &params, data, None, run).unwrap();
    let dispatches = separate.step_dispatches();
    assert_eq!(dispatches.len(), 1 + expected.len());
    // The gather: the batch's indices, its bytes, the floats it writes.
    assert_eq!(
        dispatches[0].traffic().total_bytes(),
        (4 * b + b * d + 4 * b * d) as u64
    );
    let mut counted = 4 * b + b * d + 4 * b * d;
    for (dispatch, (name, read, written)) in dispatches[1..].iter().zip(&expected) {
        assert!(
            dispatch.name.starts_with(name),
            "{} for {name}",
            dispatch.name
        );
        let traffic = dispatch.traffic();
        assert_eq!(
            (traffic.read_bytes, traffic.written_bytes),
            (4 * *read as u64, 4 * *written as u64),
            "{name}"
        );
        counted += 4 * (read + written);
    }
    assert_eq!(separate.step_traffic().total_bytes(), counted as u64);
    // Each matmul names the tensor it writes (bench --breakdown prints it).
    let roles: Vec<&str> = dispatches.iter().map(|d| d.role()).collect();
    assert_eq!(
        roles,
        [
            "",
            "code",
            "output + loss",
            "doutput.weight",
            "dcode",
            "dcode.weight",
            ""
        ]
    );
    // The matmuls' FLOPs are the step's (forward, dW and dx but the first layer's).
    let flops: f64 = dispatches.iter().map(|d| d.flops()).sum();
    assert_eq!(flops, plan.step_matmul_flops());

    ctx.set_weight_grads_policy(WeightGradsPolicy::Force(WeightGrads::Grouped(
        Default::default(),
    )));
    let fused = GpuExecutor::new(&ctx, &plan, &params, data, None, run).unwrap();
    assert_eq!(fused.weight_grads_form(), "grouped, Adam fused");
    let grouped = fused.step_dispatches().last().unwrap();
    assert_eq!(grouped.role(), "doutput.weight, dcode.weight");
    let flops: f64 = fused.step_dispatches().iter().map(|d| d.flops()).sum();
    assert_eq!(flops, plan.step_matmul_flops());
    // No Adam dispatch (7 floats a padded parameter); the grouped dispatch reads and
    // writes the parameter and moments (6 a parameter) and stores no gradient (1).
    assert_eq!(
        fused.step_traffic().total_bytes(),
        (counted - 4 * 7 * padded + 4 * 5 * p) as u64
    );
}

#[test]
fn a_short_run_on_the_embedded_digits_lowers_the_test_loss() {
    let Some(ctx) = common::gpu("a_short_run_on_the_embedded_digits_lowers_the_test_loss") else {
        return;
    };
    let seed = common::seed();
    let digits = latent::data::load_digits().unwrap();
    let (train, test) = digits.split(0.2, seed).unwrap();
    let model = ModelConfig::vae(64, 128, 8);
    let plan = Plan::compile(model.build(64).unwrap().0).unwrap();
    let params = init_params(&plan, seed).unwrap();
    let options = latent::train::TrainOptions {
        batch: 64,
        epochs: 5,
        adam: AdamConfig::default(),
        seed,
    };
    let mut trainer = latent::train::Trainer::new(
        latent::train::Device::Gpu(ctx),
        &plan,
        &model,
        &params,
        (&train).into(),
        Some((&test).into()),
        options,
    )
    .unwrap();
    let before = trainer.test_loss().unwrap().unwrap();
    let mut last = None;
    for _ in 0..5 {
        last = Some(trainer.run_epoch(0, &mut |_, _, _| {}).unwrap());
    }
    let after = last.unwrap().test_loss.unwrap();
    // An untrained VAE on 64 pixels scores about 45 nats; five epochs bring the test loss
    // under 75 % of that (seen: about 60 %).
    assert!(
        after < 0.75 * before,
        "test loss {before} -> {after} (LATENT_TEST_SEED={seed})"
    );
}

/// A device on the adapter `ctx` uses, its storage bindings capped at `cap` bytes, the way a
/// host application may open one for latent (`GpuContext::from_adapter_and_device`).
fn device_with_binding_cap(ctx: &GpuContext, cap: u64) -> GpuContext {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .find(|a| a.get_info().name == ctx.info.name && a.get_info().backend == ctx.info.backend)
        .expect("the adapter of the test context");
    let desc = wgpu::DeviceDescriptor {
        required_features: ctx.device.features(),
        required_limits: wgpu::Limits {
            max_storage_buffer_binding_size: cap,
            ..adapter.limits()
        },
        ..Default::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc)).unwrap();
    GpuContext::from_adapter_and_device(&adapter, device, queue)
}

/// A data set larger than a storage binding lies in shards on the GPU, and one larger than
/// four bindings takes a gather per four shards: a few steps over rows from every shard of
/// ten (bindings capped at 1 MiB) train as the CPU twins do.
#[test]
fn a_data_set_of_many_bindings_trains_from_shards() {
    let test = "a_data_set_of_many_bindings_trains_from_shards";
    let Some(ctx) = common::gpu(test) else {
        return;
    };
    let cap: u64 = 1 << 20;
    let ctx = &device_with_binding_cap(ctx, cap);
    let (width, batch) = (784, 64);
    let rows_per_shard = cap as usize / width;
    let rows = 9 * rows_per_shard + 500;
    let seed = common::seed();
    let bytes = synthetic_bytes(rows, width, seed);
    let data = TrainData::new(Samples::U8(&bytes), rows, width);
    let model = ModelConfig::autoencoder(width, 8);
    let plan = Plan::compile(model.build(batch).unwrap().0).unwrap();
    let params = init_params(&plan, seed).unwrap();
    let steps = 4;
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed,
        total_steps: steps,
    };
    let mut gpu = GpuExecutor::new(ctx, &plan, &params, data, None, run).unwrap();
    let mut cpu = CpuExecutor::<f32>::new(&plan, &params, data, None, run).unwrap();
    // Ten shards: three gathers, where a set of one binding takes one.
    let first_rows = TrainData::new(Samples::U8(&bytes[..100 * width]), 100, width);
    let one_binding = GpuExecutor::new(ctx, &plan, &params, first_rows, None, run);
    assert_eq!(
        gpu.dispatches_per_step(),
        one_binding.unwrap().dispatches_per_step() + 2
    );
    // Every batch takes rows from all over the set: every shard, each step.
    let order: Vec<u32> = (0..rows as u64)
        .map(|i| (i * 7919 % rows as u64) as u32)
        .collect();
    gpu.begin_epoch(&order).unwrap();
    cpu.begin_epoch(&order).unwrap();
    for step in 1..=steps {
        cpu_takes_gpu_state(&mut cpu, &gpu);
        gpu.step().unwrap();
        cpu.step().unwrap();
        let (g, c) = (gpu.loss_totals().unwrap(), cpu.loss_totals());
        assert!(
            (g[0] - c[0]).abs() <= 1e-4 * c[0].abs(),
            "step {step}: gpu {g:?} cpu {c:?} (LATENT_TEST_SEED={seed})"
        );
    }
    assert!(gpu.device_memory().data >= (rows * width) as u64);
}

/// A conditional model's batch, its labels and x | label (the encoder's input) come from
/// one gather (gather_join) when the set lies in at most two bindings, and from a gather of
/// each and a concat when it lies in more (bindings capped at 1 MiB: three shards): both
/// train as the CPU twins do.
#[test]
fn a_conditional_batch_is_gathered_joined_or_apart() {
    let test = "a_conditional_batch_is_gathered_joined_or_apart";
    let Some(ctx) = common::gpu(test) else {
        return;
    };
    let cap: u64 = 1 << 20;
    let ctx = &device_with_binding_cap(ctx, cap);
    let (width, batch) = (784, 32);
    let rows_per_shard = cap as usize / width;
    let seed = common::seed();
    let model = ModelConfig {
        classes: Some(3),
        ..ModelConfig::vae(width, 16, 4)
    };
    let plan = Plan::compile(model.build(batch).unwrap().0).unwrap();
    assert!(plan.input_join().is_some_and(|c| plan.fused[c]));
    let params = init_params(&plan, seed).unwrap();
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed,
        total_steps: 3,
    };
    for (rows, joined) in [(200, true), (2 * rows_per_shard + 100, false)] {
        let bytes = synthetic_bytes(rows, width, seed);
        let labels = three_classes(rows);
        let data = TrainData {
            labels: Some(&labels),
            ..TrainData::new(Samples::U8(&bytes), rows, width)
        };
        let mut gpu = GpuExecutor::new(ctx, &plan, &params, data, None, run).unwrap();
        let mut cpu = CpuExecutor::<f32>::new(&plan, &params, data, None, run).unwrap();
        let names: Vec<&str> = gpu.step_dispatches().iter().map(|d| d.name).collect();
        // The plan counts the joined gather; apart, a gather of the labels and the concat.
        let apart = 2 * usize::from(!joined);
        assert_eq!(
            gpu.dispatches_per_step(),
            plan.dispatches_per_step() + apart,
            "{names:?}"
        );
        assert_eq!(names.contains(&"gather_join"), joined, "{names:?}");
        assert_eq!(names.contains(&"concat_cols"), !joined, "{names:?}");
        let order: Vec<u32> = (0..rows as u64)
            .map(|i| (i * 7919 % rows as u64) as u32)
            .collect();
        gpu.begin_epoch(&order).unwrap();
        cpu.begin_epoch(&order).unwrap();
        for step in 1..=3 {
            cpu_takes_gpu_state(&mut cpu, &gpu);
            gpu.step().unwrap();
            cpu.step().unwrap();
            let (g, c) = (gpu.loss_totals().unwrap(), cpu.loss_totals());
            gpu.reset_losses().unwrap();
            cpu.reset_losses();
            for (g, c) in g.iter().zip(&c) {
                assert!(
                    (g - c).abs() <= 1e-4 * c.abs() + 1e-5,
                    "{rows} rows, step {step}: gpu {g} cpu {c} (LATENT_TEST_SEED={seed})"
                );
            }
        }
    }
}

/// A denoising model's gather draws its corruption too (gather_corrupt, or
/// gather_u8_words_corrupt for bytes in whole words): one dispatch fewer
/// than a gather and a corrupt, in training and in evaluation passes (tests/kernels.rs checks
/// the bits against the twins; `train_both` trains the model against the CPU). A conditional
/// model that corrupts its input joins the corrupted rows to the label in a concat, and its
/// gather only corrupts.
#[test]
fn a_denoising_gather_corrupts_its_batch() {
    let denoising = ModelConfig {
        noise: Some(Noise::Masking { p: 0.25 }),
        ..ModelConfig::autoencoder(48, 12)
    };
    let plan = Plan::compile(denoising.build(16).unwrap().0).unwrap();
    let corrupt = plan.input_corruption().unwrap();
    assert!(matches!(
        plan.graph.ops[corrupt],
        latent::graph::Op::Corrupt { .. }
    ));
    assert!(plan.fused[corrupt] && plan.input_join().is_none());
    // The gather (with the corruption), 2 linear (the MSE in the output layer's store);
    // backward: 2 linear (3 matmuls); Adam.
    assert_eq!(plan.dispatches_per_step(), 1 + 2 + 3 + 1);
    let conditional = ModelConfig {
        classes: Some(3),
        noise: Some(Noise::Masking { p: 0.25 }),
        ..ModelConfig::vae(48, 16, 4)
    };
    let plan = Plan::compile(conditional.build(16).unwrap().0).unwrap();
    let corrupt = plan.input_corruption().unwrap();
    assert!(plan.fused[corrupt] && plan.input_join().is_none());
    let Some(ctx) = common::gpu("a_denoising_gather_corrupts_its_batch") else {
        return;
    };
    let (rows, width) = (64, 48);
    let bytes = synthetic_bytes(rows, width, 1);
    let labels = three_classes(rows);
    let data = TrainData {
        labels: Some(&labels),
        ..TrainData::new(Samples::U8(&bytes), rows, width)
    };
    let params = init_params(&plan, 1).unwrap();
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed: 1,
        total_steps: 1,
    };
    let gpu = GpuExecutor::new(ctx, &plan, &params, data, Some(data), run).unwrap();
    let names: Vec<&str> = gpu.step_dispatches().iter().map(|d| d.name).collect();
    assert_eq!(
        gpu.dispatches_per_step(),
        plan.dispatches_per_step(),
        "{names:?}"
    );
    // Bytes 48 wide: a word a thread.
    assert!(
        names.contains(&"gather_u8_words_corrupt") && names.contains(&"concat_cols"),
        "{names:?}"
    );
    assert!(!names.contains(&"corrupt"), "{names:?}");
}

/// Evaluation and inference passes gather their rows in order, with no index list: a set
/// of more rows than one binding of u32 indices holds (bindings capped at 64 KiB: 16,384
/// indices; the set in five shards) evaluates and infers as the CPU twins do, its last
/// batch partial; in one submit or in a submit a batch alike.
#[test]
fn evaluation_needs_no_index_list_however_many_rows() {
    let test = "evaluation_needs_no_index_list_however_many_rows";
    let Some(ctx) = common::gpu(test) else {
        return;
    };
    let cap: u64 = 64 << 10;
    let ctx = &device_with_binding_cap(ctx, cap);
    let (rows, width, batch) = (20_000, 4, 64);
    assert!(rows * 4 > cap as usize && rows % batch != 0);
    let values: Vec<f32> = (0..rows * width)
        .map(|i| (i * 37 % 101) as f32 / 100.0)
        .collect();
    let eval = TrainData::new(Samples::F32(&values), rows, width);
    let train = TrainData::new(Samples::F32(&values[..128 * width]), 128, width);
    let model = ModelConfig {
        encoder: vec![8],
        decoder: vec![8],
        ..ModelConfig::autoencoder(width, 3)
    };
    let (graph, tensors) = model.build(batch).unwrap();
    let plan = Plan::compile(graph).unwrap();
    let seed = common::seed();
    let params = init_params(&plan, seed).unwrap();
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed,
        total_steps: 1,
    };
    let mut gpu = GpuExecutor::new(ctx, &plan, &params, train, Some(eval), run).unwrap();
    let mut cpu = CpuExecutor::<f32>::new(&plan, &params, train, Some(eval), run).unwrap();
    let (g, c) = (gpu.evaluate().unwrap(), cpu.evaluate().unwrap());
    assert!(
        (g[0] - c[0]).abs() <= 1e-4 * c[0].abs(),
        "gpu {g:?} cpu {c:?} (LATENT_TEST_SEED={seed})"
    );
    let codes = gpu.infer(tensors.code).unwrap();
    // A submit a batch (313 of them, the last batch partial), as a pass far longer than a
    // wait's timeout takes: the same sums and codes, bit for bit.
    gpu.set_flops_per_submit(1.0);
    assert_eq!(gpu.evaluate().unwrap(), g);
    assert_eq!(gpu.infer(tensors.code).unwrap(), codes);
    let (g, c) = (codes, cpu.infer(tensors.code).unwrap());
    assert_eq!((g.len(), c.len()), (rows * 3, rows * 3));
    for (i, (g, c)) in g.iter().zip(&c).enumerate() {
        assert!(
            (g - c).abs() <= 1e-5 * (1.0 + c.abs()),
            "code element {i}: gpu {g} cpu {c}"
        );
    }
}

/// Training leaves at most two submits in flight (each wait then covers two submits' work,
/// never an epoch's), and a submit records at most FLOPS_PER_SUBMIT of steps: one step of a
/// very large model is a submit of its own.
#[test]
fn training_bounds_the_work_each_wait_covers() {
    use latent::graph::gpu::{steps_within_submit_budget, FLOPS_PER_SUBMIT, SUBMITS_IN_FLIGHT};
    assert_eq!(steps_within_submit_budget(8, 0.5e9), 8);
    assert_eq!(steps_within_submit_budget(8, 74e9), 8);
    assert_eq!(steps_within_submit_budget(8, FLOPS_PER_SUBMIT / 5.0), 5);
    assert_eq!(steps_within_submit_budget(8, 0.9e12), 1);
    assert_eq!(steps_within_submit_budget(8, 1e15), 1);
    assert_eq!(steps_within_submit_budget(8, 0.0), 8);
    let test = "training_bounds_the_work_each_wait_covers";
    let Some(ctx) = common::gpu(test) else {
        return;
    };
    let seed = common::seed();
    let (rows, width, batch) = (96, 48, 16);
    let bytes = synthetic_bytes(rows, width, seed);
    let data = TrainData::new(Samples::U8(&bytes), rows, width);
    let plan = Plan::compile(ModelConfig::vae(width, 24, 4).build(batch).unwrap().0).unwrap();
    let params = init_params(&plan, seed).unwrap();
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed,
        total_steps: 6,
    };
    let mut gpu = GpuExecutor::new(ctx, &plan, &params, data, None, run).unwrap();
    gpu.begin_epoch(&epoch_order(rows, seed)).unwrap();
    for submit in 1..=6 {
        gpu.steps_per_submit(1).unwrap();
        assert_eq!(gpu.submits_in_flight(), submit.min(SUBMITS_IN_FLIGHT));
    }
    gpu.finish().unwrap();
    assert_eq!(gpu.submits_in_flight(), 0);
}

/// Progress reports come every `progress_every` steps, none sooner than the progress
/// interval after the last, and always at the epoch's end (CPU twins: the same logic runs
/// for the GPU, where each report waits for the GPU).
#[test]
fn progress_reports_respect_the_interval_and_end_the_epoch() {
    let seed = common::seed();
    let digits = latent::data::load_digits().unwrap();
    let (train, _) = digits.split(0.2, seed).unwrap();
    let model = ModelConfig::vae(64, 32, 4);
    let plan = Plan::compile(model.build(16).unwrap().0).unwrap();
    let params = init_params(&plan, seed).unwrap();
    let options = latent::train::TrainOptions {
        batch: 16,
        epochs: 2,
        adam: AdamConfig::default(),
        seed,
    };
    let mut trainer = latent::train::Trainer::new(
        latent::train::Device::Cpu,
        &plan,
        &model,
        &params,
        (&train).into(),
        None,
        options,
    )
    .unwrap();
    trainer.set_steps_per_submit(1).unwrap();
    let steps = trainer.steps_per_epoch();
    assert!(steps >= 20, "{steps} steps an epoch");
    let mut reports = Vec::new();
    trainer
        .run_epoch(5, &mut |done, _, loss| reports.push((done, loss)))
        .unwrap();
    let every_five: Vec<usize> = (5..steps).step_by(5).chain([steps]).collect();
    let done: Vec<usize> = reports.iter().map(|&(d, _)| d).collect();
    assert_eq!(done, every_five);
    assert!(reports
        .iter()
        .all(|&(_, loss)| loss.is_finite() && loss > 0.0));
    // An interval longer than the epoch leaves only the report at its end.
    trainer.set_progress_interval(std::time::Duration::from_secs(3600));
    let mut ends = Vec::new();
    let report = trainer
        .run_epoch(5, &mut |done, _, loss| ends.push((done, loss)))
        .unwrap();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].0, steps);
    assert!((ends[0].1 - report.train_loss).abs() <= 1e-9 * report.train_loss.abs());
}

#[test]
fn a_short_denoising_run_on_the_digits_learns_to_denoise() {
    let Some(ctx) = common::gpu("a_short_denoising_run_on_the_digits_learns_to_denoise") else {
        return;
    };
    let seed = common::seed();
    let digits = latent::data::load_digits().unwrap();
    let (train, test) = digits.split(0.2, seed).unwrap();
    let noise = Noise::Gaussian { sigma: 0.5 };
    let model = ModelConfig {
        encoder: vec![64],
        decoder: vec![64],
        noise: Some(noise),
        ..ModelConfig::autoencoder(64, 32)
    };
    let plan = Plan::compile(model.build(64).unwrap().0).unwrap();
    let params = init_params(&plan, seed).unwrap();
    let epochs = 8;
    let options = latent::train::TrainOptions {
        batch: 64,
        epochs,
        adam: AdamConfig::default(),
        seed,
    };
    let mut trainer = latent::train::Trainer::new(
        latent::train::Device::Gpu(ctx),
        &plan,
        &model,
        &params,
        (&train).into(),
        Some((&test).into()),
        options,
    )
    .unwrap();
    let before = trainer.test_loss().unwrap().unwrap();
    let mut last = None;
    for _ in 0..epochs {
        last = Some(trainer.run_epoch(0, &mut |_, _, _| {}).unwrap());
    }
    let after = last.unwrap().test_loss.unwrap();
    // The test loss is the MSE of the denoised noisy test images against the clean ones. An
    // untrained model scores about 0.2 per pixel; eight epochs bring it under half of that.
    assert!(
        after < 0.5 * before,
        "denoising test loss {before} -> {after} (LATENT_TEST_SEED={seed})"
    );
    // Through a checkpoint and `infer::denoise`: the denoised images are closer to the clean
    // ones than the noisy images are.
    let dir = std::env::temp_dir().join(format!("latent-denoise-{}-{seed}", std::process::id()));
    let state = trainer.state().unwrap();
    let record = latent::io::checkpoint::RunRecord {
        model: model.clone(),
        batch: 64,
        epochs,
        adam: AdamConfig::default(),
        seed,
        init_seed: seed,
        data: "digits".into(),
        epoch: epochs,
        next_step: state.next_step,
        trained_on: String::new(),
        data_source: None,
        scaling: None,
        columns: None,
    };
    latent::io::checkpoint::save(&dir, &plan, &record, &state).unwrap();
    let result = latent::infer::denoise(
        latent::train::Device::Gpu(ctx),
        &model,
        &dir,
        (&test).into(),
        noise,
        seed,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        result.denoised_mse < 0.7 * result.noisy_mse,
        "denoised MSE {} vs noisy {} (LATENT_TEST_SEED={seed})",
        result.denoised_mse,
        result.noisy_mse
    );
}

/// Several steps in one submit run the same dispatches in the same order as one submit per
/// step (each step reads its row of the epoch's step states on the GPU), so parameters,
/// Adam's moments and the loss sums come out bit-identical, across an epoch boundary too.
#[test]
fn several_steps_per_submit_equal_single_submits() {
    let Some(ctx) = common::gpu("several_steps_per_submit_equal_single_submits") else {
        return;
    };
    steps_per_submit_match_single_submits(ctx);
}

/// The same with the grouped weight gradients forced (Adam fused where every set groups):
/// each step of a submit binds its own row of step states, whose step number the fused Adam
/// reads.
#[test]
fn several_steps_per_submit_equal_single_submits_with_grouped_weight_gradients() {
    use latent::gpu::GpuOptions;
    use latent::kernels::matmul_grouped_tn::{WeightGrads, WeightGradsPolicy};

    let test = "several_steps_per_submit_equal_single_submits_with_grouped_weight_gradients";
    if common::gpu(test).is_none() {
        return;
    }
    let ctx = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    let grouped = WeightGrads::Grouped(Default::default());
    ctx.set_weight_grads_policy(WeightGradsPolicy::Force(grouped));
    steps_per_submit_match_single_submits(&ctx);
}

/// Every small model for two epochs of 12 steps, one step a submit and 8 + 4 a submit: the
/// same parameters, moments and losses to the bit.
fn steps_per_submit_match_single_submits(ctx: &GpuContext) {
    let seed = common::seed();
    let (rows, width, batch) = (96, 48, 8);
    let bytes = synthetic_bytes(rows, width, seed);
    let labels = three_classes(rows);
    let data = TrainData {
        labels: Some(&labels),
        ..TrainData::new(Samples::U8(&bytes), rows, width)
    };
    let steps_per_epoch = (rows / batch) as u32;
    for (name, config) in small_models() {
        let (plan, params) = plan_and_params(&config, batch, seed);
        let run = RunConfig {
            adam: AdamConfig::default(),
            seed,
            total_steps: 2 * steps_per_epoch,
        };
        let run_of = |total_steps| RunConfig { total_steps, ..run };
        let mut single = GpuExecutor::new(ctx, &plan, &params, data, None, run).unwrap();
        let mut grouped =
            GpuExecutor::new(ctx, &plan, &params, data, None, run_of(3 * steps_per_epoch)).unwrap();
        for epoch in 0..2 {
            let order = epoch_order(rows, seed + epoch);
            single.begin_epoch(&order).unwrap();
            grouped.begin_epoch(&order).unwrap();
            for _ in 0..steps_per_epoch {
                single.step().unwrap();
            }
            // 12 steps as 8 + 4.
            grouped.steps_per_submit(8).unwrap();
            assert_eq!(grouped.steps_left_in_epoch(), steps_per_epoch as usize - 8);
            grouped.steps_per_submit(steps_per_epoch - 8).unwrap();
            // The epoch's table of step states is used up: one more step without a new
            // epoch is refused, not run on a stale state.
            let error = grouped.steps_per_submit(1).unwrap_err().to_string();
            assert!(error.contains("begin the next epoch"), "{error}");
        }
        assert_eq!(single.next_step(), grouped.next_step());
        assert!(
            common::bits(&single.read_params().unwrap())
                == common::bits(&grouped.read_params().unwrap()),
            "{name}: parameters differ (LATENT_TEST_SEED={seed})"
        );
        let ((m1, v1), (m2, v2)) = (single.read_adam().unwrap(), grouped.read_adam().unwrap());
        assert!(
            common::bits(&m1) == common::bits(&m2) && common::bits(&v1) == common::bits(&v2),
            "{name}: Adam moments differ"
        );
        assert_eq!(
            single.loss_totals().unwrap(),
            grouped.loss_totals().unwrap(),
            "{name}: loss sums differ"
        );
        // Past the run's last step is an error, not a silent overrun.
        single.begin_epoch(&epoch_order(rows, seed + 2)).unwrap();
        let error = single.steps_per_submit(1).unwrap_err().to_string();
        assert!(error.contains("in a run of"), "{error}");
    }
}

/// Kernels built without wgpu's runtime checks (index clamps, loop counters) compute what
/// the checked ones do: every small model trains 12 steps (evaluation included) to the same
/// parameters, Adam moments and losses, to the bit.
#[test]
fn kernels_without_runtime_checks_train_to_the_same_bits() {
    use latent::gpu::GpuOptions;

    let test = "kernels_without_runtime_checks_train_to_the_same_bits";
    let Some(checked) = common::gpu(test) else {
        return;
    };
    let unchecked = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    assert!(unchecked.runtime_checks());
    // SAFETY: only latent's own kernels run on this device.
    unsafe { unchecked.set_runtime_checks(false) };
    assert!(!unchecked.runtime_checks() && checked.runtime_checks());
    let seed = common::seed();
    let (rows, width, batch) = (96, 48, 8);
    let bytes = synthetic_bytes(rows, width, seed);
    let labels = three_classes(rows);
    let data = TrainData {
        labels: Some(&labels),
        ..TrainData::new(Samples::U8(&bytes), rows, width)
    };
    let steps = (rows / batch) as u32;
    for (name, config) in small_models() {
        let (plan, params) = plan_and_params(&config, batch, seed);
        let run = RunConfig {
            adam: AdamConfig::default(),
            seed,
            total_steps: steps,
        };
        let train = |ctx: &GpuContext| {
            let mut gpu = GpuExecutor::new(ctx, &plan, &params, data, Some(data), run).unwrap();
            gpu.begin_epoch(&epoch_order(rows, seed)).unwrap();
            gpu.steps_per_submit(steps).unwrap();
            let losses = gpu.loss_totals().unwrap();
            let evaluation = gpu.evaluate().unwrap();
            let (m, v) = gpu.read_adam().unwrap();
            (gpu.read_params().unwrap(), m, v, losses, evaluation)
        };
        let (p1, m1, v1, losses1, eval1) = train(checked);
        let (p2, m2, v2, losses2, eval2) = train(&unchecked);
        assert!(
            common::bits(&p1) == common::bits(&p2),
            "{name}: parameters differ (LATENT_TEST_SEED={seed})"
        );
        assert!(
            common::bits(&m1) == common::bits(&m2) && common::bits(&v1) == common::bits(&v2),
            "{name}: Adam moments differ (LATENT_TEST_SEED={seed})"
        );
        assert_eq!(losses1, losses2, "{name}: loss sums");
        assert_eq!(eval1, eval2, "{name}: evaluation");
        assert!(p1 != params, "{name}: training moved no parameter");
    }
    // Every module of the unchecked device was built unchecked, none of the shared one.
    let built = unchecked.pipelines().unchecked_modules();
    assert!(built >= 5, "{built} unchecked modules");
    assert_eq!(checked.pipelines().unchecked_modules(), 0);
}

/// An activation runs in its linear layer's matmul store unless something else reads the
/// layer's own output.
/// A linear code is the code layer's own output (no activation op after it), and only
/// autoencoders without the KL sparsity penalty (which needs a sigmoid code) take it.
#[test]
fn a_linear_code_has_no_activation_and_is_for_autoencoders() {
    let activations = |model: &ModelConfig| {
        let (graph, tensors) = model.build(4).unwrap();
        let count = graph
            .ops
            .iter()
            .filter(|op| matches!(op, latent::graph::Op::Activation { .. }))
            .count();
        let code_is_activated = graph
            .ops
            .iter()
            .any(|op| matches!(op, latent::graph::Op::Activation { y, .. } if *y == tensors.code));
        (count, code_is_activated)
    };
    let relu = ModelConfig {
        encoder: vec![8],
        decoder: vec![8],
        ..ModelConfig::autoencoder(16, 3)
    };
    let linear = ModelConfig {
        linear_code: true,
        ..relu.clone()
    };
    assert_eq!(activations(&relu), (3, true));
    assert_eq!(activations(&linear), (2, false));
    let (encoder, code) = linear.build_encoder(4).unwrap();
    assert!(!encoder
        .ops
        .iter()
        .any(|op| matches!(op, latent::graph::Op::Activation { y, .. } if *y == code)));
    let vae = ModelConfig {
        linear_code: true,
        ..ModelConfig::vae(16, 8, 3)
    };
    assert!(vae.build(4).is_err());
    let sparse_kl = ModelConfig {
        sparsity: Some(Sparsity::Kl {
            rho: 0.1,
            weight: 0.1,
        }),
        ..linear
    };
    let error = sparse_kl.build(4).unwrap_err();
    assert!(error.to_string().contains("sigmoid code"), "{error}");
}

#[test]
fn activations_fuse_into_their_linear_layer_unless_its_output_is_read() {
    let model = ModelConfig::autoencoder(12, 5);
    let (graph, code) = model.build_encoder(4).unwrap();
    let pre = match graph.ops[0] {
        latent::graph::Op::Linear { y, .. } => y,
        _ => unreachable!("the encoder starts with its linear layer"),
    };
    let plan = Plan::compile_inference(graph.clone(), &[code]).unwrap();
    assert_eq!(plan.fused, vec![false, true]);
    let plan = Plan::compile_inference(graph, &[pre]).unwrap();
    assert_eq!(
        plan.fused,
        vec![false, false],
        "the pre-activation is an output"
    );
}

/// A loss on an activation's output cannot go into a matmul's store: it keeps a dispatch of
/// its own that also writes its gradient (LossWithGrad), and GPU and CPU still agree.
#[test]
fn a_loss_after_an_activation_keeps_its_own_dispatch() {
    let Some(ctx) = common::gpu("a_loss_after_an_activation_keeps_its_own_dispatch") else {
        return;
    };
    let seed = common::seed();
    let (rows, width, batch) = (64, 48, 16);
    let mut graph = latent::graph::Graph::new(batch).unwrap();
    let x = graph.input("x", width).unwrap();
    let code = graph.linear("code", x, 12).unwrap();
    let code = graph.activation(latent::kernels::activation::Activation::Relu, code);
    let out = graph.linear("output", code, width).unwrap();
    let out = graph.activation(latent::kernels::activation::Activation::Sigmoid, out);
    graph
        .loss(latent::graph::LossKind::Mse, out, x, 1.0 / batch as f32)
        .unwrap();
    let plan = Plan::compile(graph).unwrap();
    let fusions: Vec<_> = plan
        .training_fusion
        .iter()
        .filter(|&&f| f != TrainingFusion::None)
        .collect();
    assert!(
        matches!(fusions[..], [TrainingFusion::LossWithGrad { .. }]),
        "{fusions:?}"
    );
    let bytes = synthetic_bytes(rows, width, seed);
    let data = TrainData::new(Samples::U8(&bytes), rows, width);
    let params = init_params(&plan, seed).unwrap();
    let steps = (rows / batch) as u32;
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed,
        total_steps: steps,
    };
    let mut gpu = GpuExecutor::new(ctx, &plan, &params, data, None, run).unwrap();
    let mut cpu = CpuExecutor::<f32>::new(&plan, &params, data, None, run).unwrap();
    let order = epoch_order(rows, seed);
    gpu.begin_epoch(&order).unwrap();
    cpu.begin_epoch(&order).unwrap();
    for _ in 0..steps {
        gpu.step().unwrap();
        cpu.step().unwrap();
    }
    let (g, c) = (gpu.loss_totals().unwrap(), cpu.loss_totals());
    assert!(
        (g[0] - c[0]).abs() <= 1e-4 * c[0].abs() + 1e-5,
        "loss: gpu {} cpu {} (LATENT_TEST_SEED={seed})",
        g[0],
        c[0]
    );
    // Four steps apart: within the f32 drift of a step (a rare parameter whose gradient
    // rounds to the other sign may be 2·lr apart).
    let gpu_params = gpu.read_params().unwrap();
    if let Err(e) = flat_within(&plan, &gpu_params, &cpu.params, &F32_DRIFT.params, |_| 1.0) {
        panic!("parameters: {e} (LATENT_TEST_SEED={seed})");
    }
}

/// Per-shape matmul tuning (on by default only on GPUs that are not CPUs; switched on here on
/// a device of its own) in a trainer's build: every matmul shape of the plan is tuned once,
/// a second trainer on the same device tunes nothing, and the run matches the CPU twins.
#[test]
fn per_shape_tuning_tunes_a_training_plan_once_and_trains_like_the_cpu_path() {
    use latent::gpu::GpuOptions;
    use latent::kernels::autotune::ShapeTuning;
    use latent::train::{Device, TrainOptions, Trainer};

    let test = "per_shape_tuning_tunes_a_training_plan_once_and_trains_like_the_cpu_path";
    if common::gpu(test).is_none() {
        return;
    }
    let ctx = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    ctx.set_shape_tuning(Some(ShapeTuning::new(&ctx, None)));
    let seed = common::seed();
    let digits = latent::data::load_digits().unwrap();
    let (train, test_set) = digits.split(0.2, seed).unwrap();
    let model = ModelConfig::vae(64, 128, 8);
    let plan = Plan::compile(model.build(64).unwrap().0).unwrap();
    let params = init_params(&plan, seed).unwrap();
    let options = TrainOptions {
        batch: 64,
        epochs: 1,
        adam: AdamConfig::default(),
        seed,
    };
    let trainer = |device| {
        Trainer::new(
            device,
            &plan,
            &model,
            &params,
            (&train).into(),
            Some((&test_set).into()),
            options,
        )
        .unwrap()
    };
    let mut gpu = trainer(Device::Gpu(&ctx));
    let mut tuned: Vec<String> = ctx.take_matmul_notes();
    let gpu_report = gpu.run_epoch(0, &mut |_, _, _| {}).unwrap();
    tuned.extend(ctx.take_matmul_notes());
    // One line for the weight gradients' set (grouped or separate, timed with Adam: the
    // model's only set): "weight gradients tuned for k64: 64x128, 128x8, 16x128, 128x64 with
    // Adam in ... s: separate (...)".
    let (weight_grads, tuned): (Vec<String>, Vec<String>) = tuned
        .into_iter()
        .partition(|note| note.starts_with("weight gradients tuned for "));
    assert_eq!(weight_grads.len(), 1, "{weight_grads:?}");
    assert!(
        weight_grads[0].starts_with(
            "weight gradients tuned for k64: 64x128, 128x8, 16x128, 128x64 with Adam in "
        ),
        "{weight_grads:?}"
    );
    assert_eq!(ctx.matmul_choice().weight_grads.len(), 1);
    // A line per shape: "matmul tuned for 64x64x128 NT in ...", no shape twice.
    let shapes: Vec<&str> = tuned
        .iter()
        .map(|note| {
            let shape = note
                .strip_prefix("matmul tuned for ")
                .unwrap_or_else(|| panic!("{note}"));
            shape.split(" in ").next().unwrap()
        })
        .collect();
    let mut distinct = shapes.clone();
    distinct.sort();
    distinct.dedup();
    assert!(shapes.len() >= 6, "{tuned:?}");
    assert_eq!(distinct.len(), shapes.len(), "{tuned:?}");
    assert_eq!(ctx.matmul_choice().shapes.len(), shapes.len());
    // The same plan again: every shape is known.
    drop(trainer(Device::Gpu(&ctx)));
    assert!(ctx.take_matmul_notes().is_empty());

    let cpu_report = trainer(Device::Cpu)
        .run_epoch(0, &mut |_, _, _| {})
        .unwrap();
    let (g, c) = (gpu_report.test_loss.unwrap(), cpu_report.test_loss.unwrap());
    assert!(
        (g - c).abs() <= 1e-4 * c.abs(),
        "test loss: GPU {g}, CPU {c} (LATENT_TEST_SEED={seed})"
    );
}

/// The IWAE graph that encodes each data row once and repeats its μ | logvar trains
/// exactly as the graph it replaced, which took K copies of each row from the gather and
/// encoded each copy (built here by hand): the same losses every step (per row of each
/// term: the KL is of the data rows, not of their K copies) and the same parameters after
/// two epochs, in f64 on the CPU twins (only sums run in other orders).
#[test]
fn iwae_encoding_each_row_once_trains_like_k_encoded_copies() {
    let seed = common::seed();
    let (rows, width, batch, k, latent) = (48, 12, 8, 3, 4);
    let config = ModelConfig {
        importance_samples: Some(k),
        ..ModelConfig::vae(width, 10, latent)
    };
    let (graph, tensors) = config.build(batch).unwrap();
    // The encoder runs on the data rows, the decoder on K samples of each.
    let rows_of = |name: &str| {
        let t = graph.tensors.iter().find(|t| t.name == name).unwrap();
        t.rows
    };
    assert_eq!(rows_of("encoder.0"), batch);
    assert_eq!(rows_of("mu+logvar"), batch);
    assert_eq!(graph.tensor(tensors.code).rows, batch);
    assert_eq!(graph.tensor(tensors.output).rows, batch * k);

    // The graph of K encoded copies: batch · K rows throughout.
    let mut copies = latent::graph::Graph::new(batch * k).unwrap();
    let x = copies.input("x", width).unwrap();
    let y = copies.linear("encoder.0", x, 10).unwrap();
    let h = copies.activation(config.activation, y);
    let stats = copies
        .linear_stacked(&[("mu", latent), ("logvar", latent)], h)
        .unwrap();
    let z = copies.reparameterize(stats, 0).unwrap();
    let eps = copies.tensors.iter().position(|t| t.name == "eps").unwrap();
    let y = copies.linear("decoder.0", z, 10).unwrap();
    let h = copies.activation(config.activation, y);
    let output = copies.linear("output", h, width).unwrap();
    let recon = copies.loss(LossKind::Bce, output, x, 0.0).unwrap();
    copies.kl(stats, 0.0).unwrap();
    let eps = latent::graph::TensorId(eps);
    copies
        .importance_weighted(recon, 1.0, z, eps, stats, k, 1.0 / k as f32)
        .unwrap();

    let (once, copies) = (
        Plan::compile(graph).unwrap(),
        Plan::compile(copies).unwrap(),
    );
    let term_rows = |plan: &Plan| -> Vec<f64> {
        let rows = |t: &latent::graph::plan::LossTerm| plan.graph.tensor(t.per_row).rows;
        plan.losses.iter().map(|t| rows(t) as f64).collect()
    };
    let (once_rows, copies_rows) = (term_rows(&once), term_rows(&copies));
    let params = init_params(&once, seed).unwrap();
    assert_eq!(once.param_len, copies.param_len);
    let bytes = synthetic_bytes(rows, width, seed);
    let data = TrainData::new(Samples::U8(&bytes), rows, width);
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed,
        total_steps: 12,
    };
    let mut once = CpuExecutor::<f64>::new(&once, &params, data, None, run).unwrap();
    let mut copies = CpuExecutor::<f64>::new(&copies, &params, data, None, run).unwrap();
    for epoch in 0..2 {
        let order = epoch_order(rows, seed + epoch);
        once.begin_epoch(&order).unwrap();
        let repeated: Vec<u32> = order
            .iter()
            .flat_map(|&r| std::iter::repeat_n(r, k))
            .collect();
        copies.begin_epoch(&repeated).unwrap();
        for step in 0..rows / batch {
            once.step().unwrap();
            copies.step().unwrap();
            let (a, b) = (once.loss_totals(), copies.loss_totals());
            once.reset_losses();
            copies.reset_losses();
            for (term, (a, b)) in a.iter().zip(&b).enumerate() {
                let (a, b) = (a / once_rows[term], b / copies_rows[term]);
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    "epoch {epoch} step {step} term {term}: {a} once, {b} from copies \
                     (LATENT_TEST_SEED={seed})"
                );
            }
        }
    }
    for (i, (a, b)) in once.params.iter().zip(&copies.params).enumerate() {
        assert!(
            (a - b).abs() <= 1e-9,
            "parameter {i}: {a} once, {b} from copies (LATENT_TEST_SEED={seed})"
        );
    }
}

/// A timed CPU step lists its parts in the order it runs them, named by what runs and the
/// tensor it writes, with the multiplies' FLOPs on the linear parts (summing to the
/// step's); it trains exactly as an untimed step, and refuses a wrong number of slots.
#[test]
fn a_timed_cpu_step_names_and_times_each_part() {
    let (rows, width, batch) = (64, 16, 16);
    let bytes = synthetic_bytes(rows, width, 5);
    let data = TrainData::new(Samples::U8(&bytes), rows, width);
    let plan = Plan::compile(ModelConfig::vae(width, 12, 3).build(batch).unwrap().0).unwrap();
    let parts = latent::graph::step_parts::step_parts(&plan);
    let labels: Vec<&str> = parts.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "gather",
            "linear encoder.0",
            "relu encoder.0.relu",
            "linear mu+logvar",
            "reparameterize z",
            "linear decoder.0",
            "relu decoder.0.relu",
            "linear output",
            "bce bce",
            "kl kl",
            "loss sums",
            "kl backward dmu+logvar",
            "bce backward doutput",
            "linear backward doutput.weight",
            "relu backward ddecoder.0",
            "linear backward ddecoder.0.weight",
            "reparameterize backward dmu+logvar",
            "linear backward dmu+logvar.weight",
            "relu backward dencoder.0",
            "linear backward dencoder.0.weight",
            "adam",
        ]
    );
    let flops: f64 = parts.iter().map(|p| p.flops).sum();
    assert_eq!(flops, plan.step_matmul_flops());
    assert!(parts
        .iter()
        .all(|p| (p.flops > 0.0) == p.label.starts_with("linear")));

    let params = init_params(&plan, 3).unwrap();
    let run = RunConfig {
        adam: AdamConfig::default(),
        seed: 3,
        total_steps: 4,
    };
    let order = epoch_order(rows, 3);
    let mut timed = CpuExecutor::<f32>::new(&plan, &params, data, None, run).unwrap();
    let mut plain = CpuExecutor::<f32>::new(&plan, &params, data, None, run).unwrap();
    timed.begin_epoch(&order).unwrap();
    plain.begin_epoch(&order).unwrap();
    let mut seconds = vec![0.0; parts.len()];
    for _ in 0..4 {
        timed.step_timed(&mut seconds).unwrap();
        plain.step().unwrap();
    }
    assert!(seconds.iter().all(|&s| s > 0.0), "{seconds:?}");
    assert_eq!(common::bits(&timed.params), common::bits(&plain.params));
    let error = timed.step_timed(&mut [0.0; 3]).unwrap_err().to_string();
    assert!(error.contains("21 parts; got 3 slots"), "{error}");
}

/// An IWAE's reconstruction loss (BCE, or MSE for a Gaussian likelihood) joins its bound's
/// dispatch where the adapter binds that kernel's 11 storage buffers; on a device with
/// WebGPU's default limits (8, as a host application's own device may have) the GPU
/// executor runs the loss's rows, the bound and the loss's gradient as three dispatches, to
/// the same bits: the fused kernel sums each row as bce_forward (mse_forward) does and
/// shares their elements' forms (shaders/lib/row_loss.wgsl).
#[test]
fn an_iwae_on_a_device_of_default_limits_runs_its_loss_apart_to_the_same_bits() {
    use latent::kernels::iwae_bound::runs_with_recon_on;

    let test = "an_iwae_on_a_device_of_default_limits_runs_its_loss_apart_to_the_same_bits";
    if common::gpu(test).is_none() {
        return;
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .unwrap();
    let device_with = |required_limits: wgpu::Limits| {
        let desc = wgpu::DeviceDescriptor {
            required_limits,
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).unwrap();
        GpuContext::from_device(device, queue, adapter.get_info())
    };
    let (fused_ctx, apart_ctx) = (
        device_with(adapter.limits()),
        device_with(wgpu::Limits::default()),
    );
    assert!(runs_with_recon_on(&fused_ctx), "{}", fused_ctx.describe());
    // With default limits a CPU adapter's params stay a uniform buffer, so the bound's 8
    // storage buffers fit.
    assert!(!runs_with_recon_on(&apart_ctx) && !apart_ctx.params_in_storage());
    let seed = common::seed();
    let (rows, width, batch) = (48, 48, 16);
    let bytes = synthetic_bytes(rows, width, seed);
    let data = TrainData::new(Samples::U8(&bytes), rows, width);
    for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian] {
        let config = ModelConfig {
            importance_samples: Some(3),
            likelihood,
            ..ModelConfig::vae(48, 20, 4)
        };
        let (plan, params) = plan_and_params(&config, batch, seed);
        let run = RunConfig {
            adam: AdamConfig::default(),
            seed,
            total_steps: 6,
        };
        let mut trained = Vec::new();
        for ctx in [&fused_ctx, &apart_ctx] {
            let mut gpu = GpuExecutor::new(ctx, &plan, &params, data, None, run).unwrap();
            let mut losses = Vec::new();
            for epoch in 0..2 {
                gpu.begin_epoch(&epoch_order(rows, seed + epoch)).unwrap();
                for _ in 0..rows / batch {
                    gpu.step().unwrap();
                    losses.push(gpu.loss_totals().unwrap());
                    gpu.reset_losses().unwrap();
                }
            }
            let names: Vec<String> = gpu
                .step_dispatches()
                .iter()
                .map(|d| d.name.to_string())
                .collect();
            trained.push((names, losses, gpu.read_params().unwrap()));
        }
        let [(fused, fused_losses, fused_params), (apart, apart_losses, apart_params)] =
            &trained[..]
        else {
            unreachable!()
        };
        let loss = match likelihood {
            Likelihood::Bernoulli => "bce",
            _ => "mse",
        };
        assert_eq!(fused.len(), plan.dispatches_per_step(), "{fused:?}");
        assert!(
            fused.iter().any(|n| n == "iwae_bound_with_recon"),
            "{fused:?}"
        );
        assert_eq!(apart.len(), plan.dispatches_per_step() + 2, "{apart:?}");
        for name in [
            format!("{loss}_forward"),
            "iwae_bound_forward_backward".into(),
            format!("{loss}_backward_rows"),
        ] {
            assert!(apart.contains(&name), "{name} not in {apart:?}");
        }
        assert_eq!(
            fused_losses, apart_losses,
            "{loss} (LATENT_TEST_SEED={seed})"
        );
        assert!(
            fused_params == apart_params,
            "{loss}: the parameters differ (LATENT_TEST_SEED={seed})"
        );
    }
}
