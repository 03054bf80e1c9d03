//! Training-step time for the reference configs at batch 128: the VAE of the PyTorch
//! examples (784-400-20) and the 784-256-784 autoencoder, on the GPU executor (one submit per
//! step, and 8 steps per submit; timed as submits + wait) with the matmul variants chosen as
//! `latent train` chooses them (LATENT_MATMUL, default auto: tuned once per device, cached),
//! and on the CPU twins. `cargo bench --bench train_step`. `latent bench` splits the same
//! step into encode, submit and GPU time. Under `cargo test` each benchmark runs once, as a
//! smoke test.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use latent::gpu::{GpuContext, GpuOptions};
use latent::graph::cpu::CpuExecutor;
use latent::graph::gpu::GpuExecutor;
use latent::graph::plan::Plan;
use latent::graph::{RunConfig, Samples, TrainData};
use latent::kernels::adam::AdamConfig;
use latent::kernels::autotune::{default_cache_path, select_matmul, MatmulPolicy};
use latent::model::{init_params, ModelConfig};

const BATCH: usize = 128;
const ROWS: usize = 1024;
const WIDTH: usize = 784;

fn models() -> [(&'static str, ModelConfig); 2] {
    [
        ("vae_784_400_20", ModelConfig::vae(WIDTH, 400, 20)),
        ("ae_784_256_784", ModelConfig::autoencoder(WIDTH, 256)),
    ]
}

fn train_step(c: &mut Criterion) {
    let bytes: Vec<u8> = (0..ROWS * WIDTH).map(|i| (i * 37 % 251) as u8).collect();
    let data = TrainData::new(Samples::U8(&bytes), ROWS, WIDTH);
    let order: Vec<u32> = (0..ROWS as u32).collect();
    let ctx = GpuOptions::from_env().and_then(|o| GpuContext::new(&o));
    match &ctx {
        Ok(ctx) => {
            let policy = MatmulPolicy::from_env(MatmulPolicy::Auto).expect("LATENT_MATMUL");
            let selection =
                select_matmul(ctx, policy, default_cache_path().as_deref()).expect("matmul");
            selection
                .warnings
                .iter()
                .for_each(|w| eprintln!("warning: {w}"));
            selection.apply(ctx);
        }
        Err(e) => eprintln!("train_step bench: no GPU adapter ({e}); CPU only"),
    }
    for (name, config) in models() {
        let (graph, _) = config.build(BATCH).expect("model");
        let plan = Plan::compile(graph).expect("plan");
        let params = init_params(&plan, 1).unwrap();
        let run = RunConfig {
            adam: AdamConfig::default(),
            seed: 1,
            total_steps: 1_000_000,
        };
        let steps_per_epoch = (ROWS / BATCH) as u64;
        if let Ok(ctx) = &ctx {
            let mut gpu = GpuExecutor::new(ctx, &plan, &params, data, None, run).expect("executor");
            eprintln!(
                "{name}: {} dispatches per step on {}",
                gpu.dispatches_per_step(),
                ctx.describe()
            );
            // CPU encode alone (the target: encode + submit <= 30 us a step):
            // `per_submit` steps recorded into one command buffer, dropped unsubmitted.
            for per_submit in [1u64, 8] {
                c.bench_function(&format!("encode_x{per_submit}/{name}"), |b| {
                    gpu.begin_epoch(&order).expect("epoch");
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters.div_ceil(per_submit) {
                            let commands =
                                gpu.encode_steps(per_submit as u32, None).expect("encode");
                            std::hint::black_box(commands);
                        }
                        start.elapsed().mul_f64(
                            iters as f64 / (iters.div_ceil(per_submit) * per_submit) as f64,
                        )
                    })
                });
            }
            for per_submit in [1u64, 8] {
                c.bench_function(&format!("gpu_step_x{per_submit}/{name}"), |b| {
                    b.iter_custom(|iters| {
                        // Whole submits only: iters rounded up to a multiple of per_submit,
                        // the time scaled back to iters steps.
                        let submits = iters.div_ceil(per_submit);
                        let start = Instant::now();
                        for i in 0..submits {
                            if (i * per_submit) % steps_per_epoch == 0 {
                                gpu.begin_epoch(&order).expect("epoch");
                            }
                            gpu.steps_per_submit(per_submit as u32).expect("steps");
                        }
                        gpu.finish().expect("wait");
                        start
                            .elapsed()
                            .mul_f64(iters as f64 / (submits * per_submit) as f64)
                    })
                });
            }
        }
        let mut cpu = CpuExecutor::<f32>::new(&plan, &params, data, None, run).expect("executor");
        c.bench_function(&format!("cpu_step/{name}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    if i % steps_per_epoch == 0 {
                        cpu.begin_epoch(&order).expect("epoch");
                    }
                    cpu.step().expect("step");
                }
                start.elapsed()
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = train_step
}
criterion_main!(benches);
