//! Per-kernel GPU time at the reference model shapes (VAE 784-400-20 and AE 784-256-784 at
//! batch 128): `cargo bench --bench kernels`. Each sample is GPU time from timestamp queries
//! around one compute pass of back-to-back dispatches where the adapter has them (else the
//! wall clock around submit-and-wait). Throughput: FLOP/s for matmul, bytes moved for the
//! memory-bound kernels. Under `cargo test` each benchmark runs once, as a smoke test.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use latent::cpu::matmul::MatmulShape;
use latent::gpu::{time_gpu, GpuBuffer, GpuContext, GpuOptions};
use latent::kernels::{self, activation::Activation, adam::AdamConfig, Dispatch};

fn buffer(ctx: &GpuContext, n: usize, value: f32) -> GpuBuffer {
    ctx.upload("bench", &vec![value; n]).expect("upload")
}

fn bench_dispatch(
    c: &mut Criterion,
    ctx: &GpuContext,
    name: &str,
    throughput: Throughput,
    dispatch: &Dispatch,
) {
    let mut group = c.benchmark_group("kernels");
    group.throughput(throughput);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let repeats = iters.clamp(1, u64::from(u32::MAX)) as u32;
            let (us, _) = time_gpu(ctx, repeats, &|pass| dispatch.record(pass)).expect("time_gpu");
            Duration::from_secs_f64(us * 1e-6 * iters as f64)
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
    let (batch, pixels, hidden, latent) = (128, 784, 400, 20);
    let x = buffer(&ctx, batch * pixels, 0.5);
    let w1 = buffer(&ctx, pixels * hidden, 0.01);
    let b1 = buffer(&ctx, hidden, 0.0);
    let h = buffer(&ctx, batch * hidden, 0.0);
    let dw1 = buffer(&ctx, pixels * hidden, 0.0);

    // Encoder layer forward, and the two matmuls of its backward.
    let forward = MatmulShape::new(batch, hidden, pixels);
    let dx = MatmulShape {
        trans_b: true,
        ..MatmulShape::new(batch, pixels, hidden)
    };
    let dw = MatmulShape {
        trans_a: true,
        ..MatmulShape::new(pixels, hidden, batch)
    };
    let dxb = buffer(&ctx, batch * pixels, 0.0);
    for (name, shape, dispatch) in [
        (
            "matmul_128x784x400_NN_bias",
            forward,
            kernels::matmul::matmul(&ctx, &h, &x, &w1, Some(&b1), &forward),
        ),
        (
            "matmul_128x400x784_NT",
            dx,
            kernels::matmul::matmul(&ctx, &dxb, &h, &w1, None, &dx),
        ),
        (
            "matmul_784x128x400_TN",
            dw,
            kernels::matmul::matmul(&ctx, &dw1, &x, &h, None, &dw),
        ),
    ] {
        bench_dispatch(
            c,
            &ctx,
            name,
            Throughput::Elements(shape.flops() as u64),
            &dispatch.expect("matmul"),
        );
    }

    let n = batch * hidden;
    let h2 = buffer(&ctx, n, 0.0);
    let relu = Activation::Relu.forward(&ctx, &h2, &h, n).expect("relu");
    bench_dispatch(
        c,
        &ctx,
        "relu_forward_51200",
        Throughput::Bytes(8 * n as u64),
        &relu,
    );

    let loss = buffer(&ctx, batch, 0.0);
    let bce = kernels::bce::bce_forward(&ctx, &loss, &dxb, &x, batch, pixels).expect("bce");
    bench_dispatch(
        c,
        &ctx,
        "bce_forward_128x784",
        Throughput::Bytes(8 * (batch * pixels) as u64),
        &bce,
    );
    let dlogits = buffer(&ctx, batch * pixels, 0.0);
    let dbce =
        kernels::bce::bce_backward(&ctx, &dlogits, &dxb, &x, batch, pixels, 1.0 / batch as f32);
    bench_dispatch(
        c,
        &ctx,
        "bce_backward_128x784",
        Throughput::Bytes(12 * (batch * pixels) as u64),
        &dbce.expect("bce"),
    );

    let (mu, logvar, z, eps) = (
        buffer(&ctx, batch * latent, 0.0),
        buffer(&ctx, batch * latent, 0.0),
        buffer(&ctx, batch * latent, 0.0),
        buffer(&ctx, batch * latent, 0.0),
    );
    let step = ctx.upload("step", &[1u32]).expect("step");
    let reparam = kernels::reparameterize::reparameterize_forward(
        &ctx,
        &z,
        &eps,
        &mu,
        &logvar,
        &step,
        batch * latent,
        1,
        0,
    )
    .expect("reparam");
    bench_dispatch(
        c,
        &ctx,
        "reparameterize_forward_128x20",
        Throughput::Bytes(16 * (batch * latent) as u64),
        &reparam,
    );

    // Adam over every parameter of the VAE 784-400-20 in one dispatch.
    let params = pixels * hidden
        + hidden
        + 2 * (hidden * latent + latent)
        + latent * hidden
        + hidden
        + hidden * pixels
        + pixels;
    let (p, m, v, g) = (
        buffer(&ctx, params, 0.1),
        buffer(&ctx, params, 0.0),
        buffer(&ctx, params, 0.0),
        buffer(&ctx, params, 0.01),
    );
    let config = AdamConfig::default();
    let scalars = ctx
        .upload("scalars", &config.step_scalar_table(1))
        .expect("scalars");
    let state = ctx.upload("state", &[1u32, 0]).expect("state");
    let adam = kernels::adam::adam_step(&ctx, &p, &m, &v, &g, &scalars, &state, params, &config)
        .expect("adam");
    bench_dispatch(
        c,
        &ctx,
        "adam_step_vae_params",
        Throughput::Bytes(28 * params as u64),
        &adam,
    );

    let data = ctx
        .upload("data", &vec![0x8040_2010u32; 10_000 * pixels / 4])
        .expect("data");
    let indices = ctx
        .upload(
            "indices",
            &(0..batch as u32).map(|i| i * 37).collect::<Vec<_>>(),
        )
        .expect("indices");
    let gathered = buffer(&ctx, batch * pixels, 0.0);
    let gather_state = ctx.upload("state", &[1u32, 0]).expect("state");
    let source = kernels::gather::GatherSource {
        data: &data,
        data_rows: 10_000,
        width: pixels,
        indices: &indices,
        state: &gather_state,
    };
    let gather = kernels::gather::gather_u8(&ctx, &gathered, &source, batch).expect("gather");
    bench_dispatch(
        c,
        &ctx,
        "gather_u8_128x784",
        Throughput::Bytes(5 * (batch * pixels) as u64),
        &gather,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = kernels
}
criterion_main!(benches);
