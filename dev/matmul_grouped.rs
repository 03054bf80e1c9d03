//! The grouped weight gradients of shaders/matmul_grouped_tn.wgsl in the dev harness: a training
//! step's weight gradients dW = dyᵀ·x and bias gradients Σ dy, one per linear layer, in one
//! dispatch instead of one each. Checked against the twin (with small odd layers too), then
//! timed against the same products as separate dispatches, back to back in one pass as a step
//! records them: at the same tiles (what grouping alone changes), and with the variant the
//! device's default choice gives each shape. The question for a GPU: does one dispatch beat
//! the separate ones by more than the dispatches it saves cost? (On lavapipe the tiled
//! kernel takes 4–7× the time of the subgroup one the defaults pick, so there the answer is
//! no whatever grouping saves.)

use latent::cpu::matmul::{matmul as matmul_twin, MatmulShape};
use latent::gpu::{time_gpu, GpuBuffer, GpuContext};
use latent::kernels::matmul::{matmul_with_extras, MatmulExtras, MatmulTiles, MatmulVariant};
use latent::kernels::matmul_grouped_tn::{flat_layout, matmul_grouped_tn, WeightGradProblem};
use latent::kernels::Dispatch;
use latent::validate::compare;

use super::{bound, Precision};
use rand::rngs::StdRng;
use rand::Rng;

/// The name `--only` takes.
pub const NAME: &str = "grouped_tn";

/// The layers whose gradients are grouped, (out, in) each, and the batch (K).
struct Group {
    name: &'static str,
    batch: usize,
    layers: &'static [(usize, usize)],
}

const CHECK_GROUPS: &[Group] = &[
    Group {
        name: "small odd layers",
        batch: 20,
        layers: &[(4, 8), (12, 20), (36, 44), (68, 4)],
    },
    Group {
        name: "one layer",
        batch: 4,
        layers: &[(132, 68)],
    },
];
const TIMED_GROUPS: &[Group] = &[
    Group {
        name: "VAE 784-400-20",
        batch: 128,
        layers: &[(400, 784), (40, 400), (400, 20), (784, 400)],
    },
    Group {
        name: "AE 784-256-784",
        batch: 128,
        layers: &[(256, 784), (784, 256)],
    },
];

fn tiles(tile_m: u32, tile_n: u32, tile_k: u32, thread: u32) -> MatmulTiles {
    MatmulTiles {
        tile_m,
        tile_n,
        tile_k,
        thread,
        split: 1,
        prefetch: false,
    }
}

/// One group's operands on the GPU, where each result lives in `grads`, and the twin's.
struct Operands {
    gpu_dy: Vec<GpuBuffer>,
    gpu_x: Vec<GpuBuffer>,
    /// (dW offset, db offset) of each layer in `grads`, multiples of VIEW_ALIGNMENT as in a
    /// plan's flat gradient buffer.
    offsets: Vec<(usize, usize)>,
    grads_len: usize,
    /// The twin's grads, and the bound of each element (the harness's f32 `bound`).
    expected: Vec<f32>,
    allowed: Vec<f32>,
}

impl Operands {
    fn new(ctx: &GpuContext, rng: &mut StdRng, group: &Group) -> latent::Result<Self> {
        let k = group.batch;
        let mut values =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let dy: Vec<Vec<f32>> = group.layers.iter().map(|&(m, _)| values(k * m)).collect();
        let x: Vec<Vec<f32>> = group.layers.iter().map(|&(_, n)| values(k * n)).collect();
        let (offsets, end) = flat_layout(group.layers);
        let mut expected = vec![f32::NAN; end];
        let mut allowed = vec![0.0; end];
        for (g, &(m, n)) in group.layers.iter().enumerate() {
            let shape = MatmulShape {
                trans_a: true,
                ..MatmulShape::new(m, n, k)
            };
            let (dw, db) = offsets[g];
            matmul_twin(&mut expected[dw..dw + m * n], &dy[g], &x[g], None, &shape)?;
            let abs = |v: &[f32]| -> Vec<f64> { v.iter().map(|e| f64::from(e.abs())).collect() };
            let mut magnitude = vec![0.0f64; m * n];
            matmul_twin(&mut magnitude, &abs(&dy[g]), &abs(&x[g]), None, &shape)?;
            for (i, &mag) in magnitude.iter().enumerate() {
                allowed[dw + i] = bound(Precision::F32, k, mag, None) as f32;
            }
            for row in 0..m {
                let column = (0..k).map(|b| dy[g][b * m + row]);
                expected[db + row] = column.clone().sum();
                let mag: f64 = column.map(|v| f64::from(v.abs())).sum();
                allowed[db + row] = bound(Precision::F32, k, mag, None) as f32;
            }
        }
        let upload = |v: &Vec<f32>| ctx.upload("grouped operand", v);
        Ok(Operands {
            gpu_dy: dy.iter().map(upload).collect::<latent::Result<_>>()?,
            gpu_x: x.iter().map(upload).collect::<latent::Result<_>>()?,
            offsets,
            grads_len: end,
            expected,
            allowed,
        })
    }

    /// A fresh gradient buffer, NaN everywhere (the padding between parts stays NaN).
    fn grads(&self, ctx: &GpuContext) -> latent::Result<GpuBuffer> {
        ctx.upload("grads", &vec![f32::NAN; self.grads_len])
    }

    /// The largest error of `grads` read back against the twin, over the parts (the padding
    /// between them is NaN on both sides and not compared), or why it fails.
    fn check(&self, ctx: &GpuContext, grads: &GpuBuffer) -> latent::Result<Result<f32, String>> {
        let got: Vec<f32> = ctx.read_buffer(grads)?;
        let index: Vec<usize> = (0..got.len())
            .filter(|&i| !self.expected[i].is_nan())
            .collect();
        let got_parts: Vec<f32> = index.iter().map(|&i| got[i]).collect();
        let expected: Vec<f32> = index.iter().map(|&i| self.expected[i]).collect();
        let cmp = compare(&got_parts, &expected, &|j, _| self.allowed[index[j]]);
        if cmp.failures > 0 {
            let (j, g, e, allowed) = cmp.first_failure.expect("failures counted");
            return Ok(Err(format!(
                "{} of {} elements beyond the bound; first at {}: gpu {g}, twin {e}, allowed {allowed:.3e}",
                cmp.failures,
                got_parts.len(),
                index[j]
            )));
        }
        Ok(Ok(cmp.max_abs_err))
    }
}

/// The grouped dispatch of `group`'s gradients into `grads`, at `tiles` (thread 4 or 8).
fn grouped_dispatch(
    ctx: &GpuContext,
    group: &Group,
    ops: &Operands,
    grads: &GpuBuffer,
    tiles: MatmulTiles,
) -> latent::Result<Dispatch> {
    let problems: Vec<WeightGradProblem> = group
        .layers
        .iter()
        .enumerate()
        .map(|(g, &(m, n))| WeightGradProblem {
            m,
            n,
            dy: &ops.gpu_dy[g],
            x: &ops.gpu_x[g],
            dweight: ops.offsets[g].0,
            dbias: ops.offsets[g].1,
        })
        .collect();
    matmul_grouped_tn(ctx, grads, group.batch, &problems, tiles)
}

/// The same products as separate dispatches (dW with the bias gradient as row sums, as a
/// training step runs them), each with `variant`, or with the device's default choice for
/// its shape when None.
fn separate_dispatches(
    ctx: &GpuContext,
    group: &Group,
    ops: &Operands,
    grads: &GpuBuffer,
    variant: Option<MatmulVariant>,
) -> latent::Result<Vec<Dispatch>> {
    let mut dispatches = Vec::new();
    for (g, &(m, n)) in group.layers.iter().enumerate() {
        let shape = MatmulShape {
            trans_a: true,
            row_sums: true,
            ..MatmulShape::new(m, n, group.batch)
        };
        let (dw, db) = ops.offsets[g];
        let (c, sums) = (grads.view(dw, m * n)?, grads.view(db, m)?);
        let variant = match variant {
            Some(v) => v,
            None => ctx.matmul_variant(&shape)?,
        };
        let extras = MatmulExtras {
            row_sums: Some(&sums),
            ..MatmulExtras::default()
        };
        dispatches.push(matmul_with_extras(
            ctx,
            &c,
            &ops.gpu_dy[g],
            &ops.gpu_x[g],
            None,
            extras,
            &shape,
            variant,
        )?);
    }
    Ok(dispatches)
}

/// Runs `dispatches` once into a fresh `grads` and checks it: the largest error or why not.
fn run_and_check(
    ctx: &GpuContext,
    ops: &Operands,
    grads: &GpuBuffer,
    dispatches: &[&Dispatch],
) -> latent::Result<Result<f32, String>> {
    latent::kernels::run(ctx, "grouped weight gradients", dispatches)?;
    ops.check(ctx, grads)
}

fn time_us(ctx: &GpuContext, dispatches: &[&Dispatch]) -> latent::Result<f64> {
    let (us, _) = time_gpu(ctx, 3, &|pass| {
        for d in dispatches {
            d.record(pass);
        }
    })?;
    Ok(us)
}

const TILE_CHOICES: [(u32, u32, u32, u32); 3] = [(64, 64, 16, 4), (32, 32, 16, 4), (64, 64, 16, 8)];

/// Checks the grouped kernel at every tile choice on the check groups, then times each
/// reference model's group against its separate dispatches. Returns whether every check
/// passed.
pub fn run(ctx: &GpuContext, rng: &mut StdRng) -> latent::Result<bool> {
    println!("grouped weight gradients (shaders/matmul_grouped_tn.wgsl): dW = dyᵀ·x and db = Σ dy of several layers in one dispatch");
    let mut all_passed = true;
    for group in CHECK_GROUPS.iter().chain(TIMED_GROUPS) {
        let ops = Operands::new(ctx, rng, group)?;
        for (tile_m, tile_n, tile_k, thread) in TILE_CHOICES {
            let tiles = tiles(tile_m, tile_n, tile_k, thread);
            let grads = ops.grads(ctx)?;
            let grouped = grouped_dispatch(ctx, group, &ops, &grads, tiles)?;
            match run_and_check(ctx, &ops, &grads, &[&grouped])? {
                Ok(err) => println!(
                    "  check {:<18} tiles {tiles:<12} passes, max abs err {err:.3e}",
                    group.name
                ),
                Err(why) => {
                    all_passed = false;
                    println!("  check {:<18} tiles {tiles:<12} FAILS: {why}", group.name);
                }
            }
        }
    }
    if !all_passed {
        println!("  not timed: a check failed");
        return Ok(false);
    }
    println!(
        "{:<16} {:<22} {:>10} {:>10} {:>10}",
        "layers", "tiles", "separate", "grouped", "dispatches"
    );
    for group in TIMED_GROUPS {
        let ops = Operands::new(ctx, rng, group)?;
        let layers = group.layers.len();
        for (tile_m, tile_n, tile_k, thread) in TILE_CHOICES {
            let tiles = tiles(tile_m, tile_n, tile_k, thread);
            let grads = ops.grads(ctx)?;
            let grouped = grouped_dispatch(ctx, group, &ops, &grads, tiles)?;
            let separate =
                separate_dispatches(ctx, group, &ops, &grads, Some(MatmulVariant::Tiled(tiles)))?;
            let separate: Vec<&Dispatch> = separate.iter().collect();
            println!(
                "{:<16} {:<22} {:>8.0}us {:>8.0}us {:>5} -> 1",
                group.name,
                format!("tiled:{tiles}"),
                time_us(ctx, &separate)?,
                time_us(ctx, &[&grouped])?,
                layers
            );
        }
        let grads = ops.grads(ctx)?;
        let defaults = separate_dispatches(ctx, group, &ops, &grads, None)?;
        let defaults: Vec<&Dispatch> = defaults.iter().collect();
        if let Err(why) = run_and_check(ctx, &ops, &grads, &defaults)? {
            println!("{:<16} the default variants FAIL: {why}", group.name);
            continue;
        }
        println!(
            "{:<16} {:<22} {:>8.0}us {:>10} {:>5}",
            group.name,
            "each shape's default",
            time_us(ctx, &defaults)?,
            "-",
            layers
        );
    }
    Ok(true)
}
