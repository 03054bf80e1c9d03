//! Matmul variants, checked against the CPU twin and then timed against the production
//! kernel (shaders/matmul.wgsl) on the chosen adapter. Variants live in dev/ until they win;
//! only winners move to shaders/ (issue 4).
//! `cargo run --release --example dev_matmul` (LATENT_BACKEND / LATENT_ADAPTER pick the GPU).

use latent::cpu::matmul::{matmul as matmul_twin, MatmulShape};
use latent::gpu::{time_gpu, GpuBuffer, GpuContext, GpuOptions};
use latent::kernels::{bytes_of, matmul::matmul, prepare, Dispatch, Kernel, Shader, Slot};
use latent::validate::{compare, UNIT_ROUNDOFF};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

static ROWTILE: Shader = Shader {
    name: "matmul_rowtile",
    source: include_str!("matmul_rowtile.wgsl"),
    includes: &[],
};
const ROWTILE_KERNEL: Kernel = Kernel {
    shader: &ROWTILE,
    entry: "matmul",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
    ],
};
/// Rows per thread in the rowtile shader (ROWS) and its workgroup size (16, 4).
const ROWTILE_ROWS: u32 = 8;

fn rowtile(
    ctx: &GpuContext,
    c: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: &GpuBuffer,
    shape: &MatmulShape,
) -> latent::Result<Dispatch> {
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let constants = [
        ("TRANS_A", flag(shape.trans_a)),
        ("TRANS_B", flag(shape.trans_b)),
        ("HAS_BIAS", 1.0),
        ("ACCUMULATE", flag(shape.accumulate)),
    ];
    let params: [u32; 4] = [shape.m as u32, shape.n as u32, shape.k as u32, 0];
    let groups = [
        (shape.n as u32).div_ceil(4 * 16),
        (shape.m as u32).div_ceil(ROWTILE_ROWS * 4),
        1,
    ];
    prepare(
        ctx,
        &ROWTILE_KERNEL,
        &constants,
        Some(bytes_of(&params)),
        &[c, a, b, bias],
        groups,
    )
}

fn main() -> latent::Result<()> {
    let ctx = GpuContext::new(&GpuOptions::from_env()?)?;
    println!("matmul variants on {}", ctx.describe());
    println!(
        "{:<22} {:<10} {:>12} {:>10} {:>10}",
        "shape", "variant", "max abs err", "us", "GFLOP/s"
    );
    let mut rng = StdRng::seed_from_u64(7);
    let shapes = [
        (128, 400, 784, false, true),
        (784, 400, 128, true, false),
        (128, 784, 400, false, false),
        (127, 33, 785, false, false),
        (512, 512, 512, false, false),
    ];
    for (m, n, k, trans_a, trans_b) in shapes {
        let shape = MatmulShape {
            m,
            n,
            k,
            trans_a,
            trans_b,
            accumulate: false,
        };
        let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut expected = vec![0.0; m * n];
        matmul_twin(&mut expected, &a, &b, Some(&bias), &shape)?;
        let (ga, gb, gbias) = (
            ctx.upload("a", &a)?,
            ctx.upload("b", &b)?,
            ctx.upload("bias", &bias)?,
        );
        let label = format!(
            "{m}x{k}x{n} {}{}",
            if trans_a { 'T' } else { 'N' },
            if trans_b { 'T' } else { 'N' }
        );
        for variant in ["tiled", "rowtile"] {
            let gc = ctx.upload("c", &vec![f32::NAN; m * n])?;
            let dispatch = match variant {
                "tiled" => matmul(&ctx, &gc, &ga, &gb, Some(&gbias), &shape)?,
                _ => rowtile(&ctx, &gc, &ga, &gb, &gbias, &shape)?,
            };
            latent::kernels::run(&ctx, variant, &[&dispatch])?;
            // Check first (the validate bound for K products of values in [-1, 1]), then time.
            let got: Vec<f32> = ctx.read_buffer(&gc)?;
            let bound = 2.0 * (k + 2) as f32 * UNIT_ROUNDOFF * (k as f32 + 1.0);
            let cmp = compare(&got, &expected, &|_, _| bound);
            let (us, _) = time_gpu(&ctx, 3, &|pass| dispatch.record(pass))?;
            let verdict = if cmp.failures == 0 {
                ""
            } else {
                "  FAILS the check: not a candidate"
            };
            println!(
                "{label:<22} {variant:<10} {:>12.3e} {us:>10.0} {:>10.2}{verdict}",
                cmp.max_abs_err,
                shape.flops() / us / 1e3
            );
        }
    }
    Ok(())
}
