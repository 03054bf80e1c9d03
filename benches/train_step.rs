//! Training-step time for the reference configs at batch 128: the VAE of the PyTorch
//! examples (784-400-20) and the 784-256-784 autoencoder, on the GPU executor (one submit per
//! step, timed as submit + wait) and on the CPU twins. `cargo bench --bench train_step`.
//! Under `cargo test` each benchmark runs once, as a smoke test.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use latent::gpu::{GpuContext, GpuOptions};
use latent::graph::cpu::CpuExecutor;
use latent::graph::gpu::GpuExecutor;
use latent::graph::plan::Plan;
use latent::graph::{RunConfig, Samples, TrainData};
use latent::kernels::adam::AdamConfig;
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
    if let Err(e) = &ctx {
        eprintln!("train_step bench: no GPU adapter ({e}); CPU only");
    }
    for (name, config) in models() {
        let (graph, _) = config.build(BATCH).expect("model");
        let plan = Plan::compile(graph).expect("plan");
        let params = init_params(&plan, 1);
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
            c.bench_function(&format!("gpu_step/{name}"), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters {
                        if i % steps_per_epoch == 0 {
                            gpu.begin_epoch(&order).expect("epoch");
                        }
                        gpu.step().expect("step");
                    }
                    gpu.finish().expect("wait");
                    start.elapsed()
                })
            });
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
