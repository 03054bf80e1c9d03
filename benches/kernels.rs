//! Per-kernel GPU time at the reference model shapes (VAE 784-400-20 and AE 784-256-784 at
//! batch 128): `cargo bench --bench kernels`. The cases are `latent bench`'s kernel table
//! (latent::bench::kernel_cases): every shipped matmul variant at the model's matmul shapes
//! (LATENT_BENCH_LARGE=1 adds 4096³ and 1024×2048×2048), then the reductions, element-wise
//! kernels, gather, Adam, and what a tiny dispatch costs (chained or apart). Each sample is
//! GPU time per dispatch from timestamp queries around one compute pass of back-to-back
//! dispatches where the adapter has them (else the wall clock around submit-and-wait).
//! Throughput: FLOPs for matmul, bytes moved for the memory-bound kernels. Under `cargo
//! test` each benchmark runs once, as a smoke test.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use latent::bench::{kernel_cases, KernelCase};
use latent::cpu::matmul::matmul;
use latent::gpu::{time_gpu, GpuContext, GpuOptions};
use latent::graph::LinearShapes;

fn bench_case(c: &mut Criterion, ctx: &GpuContext, case: &KernelCase) {
    let mut group = c.benchmark_group("kernels");
    if let Some(flops) = case.flops {
        group.throughput(Throughput::Elements(flops as u64));
    } else if let Some(bytes) = case.bytes {
        group.throughput(Throughput::Bytes(bytes as u64));
    }
    let variant = case.variant.map_or(String::new(), |v| format!("_{v}"));
    let name = format!("{}_{}{variant}", case.kernel, case.shape).replace([' ', ':'], "_");
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let repeats = iters.clamp(1, u64::from(u32::MAX)) as u32;
            let (us, _) = time_gpu(ctx, repeats, &|pass| case.record(pass)).expect("time_gpu");
            Duration::from_secs_f64(case.per_dispatch_us(us) * 1e-6 * iters as f64)
        })
    });
    group.finish();
}

fn kernels(c: &mut Criterion) {
    let ctx = match GpuOptions::from_env().and_then(|o| GpuContext::new(&o)) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("kernels bench: no GPU adapter ({e}); nothing to measure");
            return;
        }
    };
    eprintln!("kernels bench on {}", ctx.describe());
    let large = std::env::var("LATENT_BENCH_LARGE").is_ok_and(|v| v == "1");
    let cases = kernel_cases(&ctx, large).expect("kernel cases");
    for case in &cases.cases {
        bench_case(c, &ctx, case);
    }
}

/// The CPU twin's matmul (cpu/matmul.rs), the CPU path's hot loop, in a layer's three forms:
/// forward (B transposed, with the bias as the layer adds it), weight gradient (A
/// transposed) and dx. The layers: the VAE's first (784 → 400) and last (400 → 784) at
/// batch 128, and the last at 640, the IWAE's decoder (K = 5 samples a row).
fn cpu_matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu_matmul");
    for (batch, input, output) in [(128, 784, 400), (128, 400, 784), (640, 400, 784)] {
        let shapes = LinearShapes::new(batch, input, output, false);
        for (form, shape) in [
            ("forward", shapes.forward),
            ("dweight", shapes.dweight),
            ("dx", shapes.dx),
        ] {
            let a: Vec<f32> = (0..shape.m * shape.k)
                .map(|i| (i % 7) as f32 * 0.1)
                .collect();
            let b: Vec<f32> = (0..shape.k * shape.n)
                .map(|i| (i % 5) as f32 * 0.1)
                .collect();
            let mut out = vec![0f32; shape.m * shape.n];
            let bias: Vec<f32> = (0..shape.n).map(|i| (i % 3) as f32 * 0.1).collect();
            let bias = (form == "forward").then_some(&bias[..]);
            group.throughput(Throughput::Elements(shape.flops() as u64));
            let name = format!("{form}_{}x{}x{}", shape.m, shape.n, shape.k);
            group.bench_function(name, |bench| {
                bench.iter(|| matmul(&mut out, &a, &b, bias, &shape).expect("matmul"))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = kernels, cpu_matmul
}
criterion_main!(benches);
