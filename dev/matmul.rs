//! Matmul variants, checked against the CPU twin and then timed, on the chosen adapter: the
//! variants in shaders/ (every autotune candidate) and those still under development here.
//! Variants live in dev/ until they win; only winners move to shaders/ (issue 4). The rowtile
//! variant started here and now lives in shaders/matmul_rowtile.wgsl.
//! `cargo run --release --example dev_matmul` (LATENT_BACKEND / LATENT_ADAPTER pick the GPU).

use latent::cpu::matmul::{matmul as matmul_twin, MatmulShape};
use latent::gpu::{time_gpu, GpuBuffer, GpuContext, GpuOptions};
use latent::kernels::autotune::{candidates, describe, ShapeClass};
use latent::kernels::matmul::{matmul_with_variant, MatmulVariant};
use latent::kernels::{bytes_of, prepare, Dispatch, Kernel, Shader, Slot};
use latent::validate::{compare, UNIT_ROUNDOFF};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The variants under development: dev/matmul_rowtile_uniform.wgsl and
/// dev/matmul_rowtile_vec4.wgsl.
static ROWTILE_UNIFORM: Shader = Shader {
    name: "matmul_rowtile_uniform",
    source: include_str!("matmul_rowtile_uniform.wgsl"),
    includes: &[],
};
static ROWTILE_VEC4: Shader = Shader {
    name: "matmul_rowtile_vec4",
    source: include_str!("matmul_rowtile_vec4.wgsl"),
    includes: &[],
};
const SLOTS: &[(u32, Slot)] = &[
    (0, Slot::Uniform),
    (1, Slot::ReadWrite),
    (2, Slot::Read),
    (3, Slot::Read),
    (4, Slot::Read),
];
const ROWTILE_UNIFORM_KERNEL: Kernel = Kernel {
    shader: &ROWTILE_UNIFORM,
    entry: "matmul_rowtile_uniform",
    slots: SLOTS,
};
const ROWTILE_VEC4_KERNEL: Kernel = Kernel {
    shader: &ROWTILE_VEC4,
    entry: "matmul_rowtile_vec4",
    slots: SLOTS,
};

/// A dev variant: its name, kernel, and grid for a shape (None: the shape does not suit it).
struct DevVariant {
    name: &'static str,
    kernel: &'static Kernel,
    grid: fn(&MatmulShape) -> Option<[u32; 3]>,
}

const DEV_VARIANTS: &[DevVariant] = &[
    // Workgroups of 16 threads covering 64 columns × 8 rows.
    DevVariant {
        name: "rowtile_uniform",
        kernel: &ROWTILE_UNIFORM_KERNEL,
        grid: |s| Some([(s.n as u32).div_ceil(64), (s.m as u32).div_ceil(8), 1]),
    },
    // Workgroups of 16 × 4 threads covering 64 columns × 32 rows; loads along stored rows
    // need aligned shapes (see the shader's header).
    DevVariant {
        name: "rowtile_vec4",
        kernel: &ROWTILE_VEC4_KERNEL,
        grid: |s| {
            let fits = match (s.trans_a, s.trans_b) {
                (false, false) => s.k % 4 == 0 && s.n % 4 == 0,
                (false, true) => s.k % 4 == 0,
                (true, false) => s.m % 4 == 0 && s.n % 4 == 0,
                (true, true) => false,
            };
            fits.then(|| [(s.n as u32).div_ceil(64), (s.m as u32).div_ceil(32), 1])
        },
    },
];

/// Prepares C = op(A)·op(B) + bias with a dev variant (None: the shape does not suit it).
fn prepare_dev(
    ctx: &GpuContext,
    variant: &DevVariant,
    c: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: &GpuBuffer,
    shape: &MatmulShape,
) -> latent::Result<Option<Dispatch>> {
    let Some(groups) = (variant.grid)(shape) else {
        return Ok(None);
    };
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let constants = [
        ("TRANS_A", flag(shape.trans_a)),
        ("TRANS_B", flag(shape.trans_b)),
        ("HAS_BIAS", 1.0),
        ("ACCUMULATE", flag(shape.accumulate)),
    ];
    let params: [u32; 4] = [shape.m as u32, shape.n as u32, shape.k as u32, 0];
    let dispatch = prepare(
        ctx,
        variant.kernel,
        &constants,
        Some(bytes_of(&params)),
        &[c, a, b, bias],
        groups,
    )?;
    Ok(Some(dispatch))
}

/// Every shipped variant the autotune tries, each once.
fn shipped_variants() -> Vec<MatmulVariant> {
    let mut variants = candidates(ShapeClass::General);
    for v in candidates(ShapeClass::Skinny) {
        if !variants.contains(&v) {
            variants.push(v);
        }
    }
    variants
}

fn main() -> latent::Result<()> {
    let ctx = GpuContext::new(&GpuOptions::from_env()?)?;
    println!("matmul variants on {}", ctx.describe());
    println!(
        "{:<18} {:<18} {:>12} {:>10} {:>10}",
        "shape", "variant", "max abs err", "us", "GFLOP/s"
    );
    let mut rng = StdRng::seed_from_u64(7);
    let shapes = [
        (128, 400, 784, false, true),
        (784, 400, 128, true, false),
        (128, 784, 400, false, false),
        (128, 20, 400, false, true),
        (20, 400, 128, true, false),
        (127, 33, 785, false, false),
        (127, 33, 784, false, true),
        (512, 512, 512, false, false),
    ];
    for (m, n, k, trans_a, trans_b) in shapes {
        let shape = MatmulShape {
            m,
            n,
            k,
            trans_a,
            trans_b,
            ..Default::default()
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
        for variant in shipped_variants() {
            let gc = ctx.upload("c", &vec![f32::NAN; m * n])?;
            let dispatch = matmul_with_variant(&ctx, &gc, &ga, &gb, Some(&gbias), &shape, variant)?;
            report(
                &ctx,
                &shape,
                &variant.to_string(),
                &gc,
                &dispatch,
                &expected,
            )?;
        }
        for variant in DEV_VARIANTS {
            let gc = ctx.upload("c", &vec![f32::NAN; m * n])?;
            let name = format!("dev {}", variant.name);
            match prepare_dev(&ctx, variant, &gc, &ga, &gb, &gbias, &shape)? {
                Some(dispatch) => report(&ctx, &shape, &name, &gc, &dispatch, &expected)?,
                None => println!("{:<18} {name:<18} (shape not supported)", describe(&shape)),
            }
        }
    }
    Ok(())
}

/// Runs once, checks against the twin (the `latent validate` bound for K products of values
/// in [-1, 1] plus a bias), then times; a variant that fails is reported and not a candidate.
fn report(
    ctx: &GpuContext,
    shape: &MatmulShape,
    name: &str,
    c: &GpuBuffer,
    dispatch: &Dispatch,
    expected: &[f32],
) -> latent::Result<()> {
    latent::kernels::run(ctx, name, &[dispatch])?;
    let got: Vec<f32> = ctx.read_buffer(c)?;
    let k = shape.k;
    let bound = 2.0 * (k + 2) as f32 * UNIT_ROUNDOFF * (k as f32 + 1.0);
    let cmp = compare(&got, expected, &|_, _| bound);
    if cmp.failures > 0 {
        println!(
            "{:<18} {name:<18} {:>12.3e}  FAILS the check: not a candidate",
            describe(shape),
            cmp.max_abs_err
        );
        return Ok(());
    }
    let (us, _) = time_gpu(ctx, 3, &|pass| dispatch.record(pass))?;
    println!(
        "{:<18} {name:<18} {:>12.3e} {us:>10.0} {:>10.2}",
        describe(shape),
        cmp.max_abs_err,
        shape.flops() / us / 1e3
    );
    Ok(())
}
