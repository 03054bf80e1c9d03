//! The VAE head with its stats layer in front (dev/vae_head_linear.wgsl) in the dev harness:
//! stats = h·Wᵀ + b and the head (reparameterization, KL into running totals, the KL's
//! gradient) in one dispatch, where a training step runs two: the stats matmul (the device's
//! variant for that shape) and then vae_head_forward (shaders/vae_head.wgsl). Checked against
//! the twins (matmul, then the head's) at each lane count, with h, W and b on a grid that makes
//! every stats value exact in f32 in any order; then timed against the two dispatches. The
//! question for a GPU: does one workgroup a row, reading all of W, beat the matmul that shares
//! W's loads among a tile's rows by more than the dispatch it saves? (On lavapipe it does not:
//! a thread a column reads W's rows as 8-lane gathers, BENCHMARKS.md, session 11.)

use latent::cpu::matmul::{matmul as matmul_twin, MatmulShape};
use latent::cpu::reparameterize::NoiseKey;
use latent::cpu::vae_head::{vae_head_forward as head_twin, VaeHeadOut};
use latent::gpu::{time_gpu, GpuBuffer, GpuContext, VIEW_ALIGNMENT};
use latent::kernels::matmul::matmul_with_variant;
use latent::kernels::vae_head::{vae_head_forward, VaeHeadBuffers};
use latent::kernels::{
    bytes_of, grid_for_groups, prepare, row_reduction_threads, Dispatch, Kernel, Shader, Slot,
    Traffic, GRID_LIB, PHILOX_LIB,
};
use latent::validate::compare;
use rand::rngs::StdRng;
use rand::Rng;

/// The name `--only` takes.
pub const NAME: &str = "vae_head_linear";

static SHADER: Shader = Shader {
    name: "dev_vae_head_linear",
    source: include_str!("vae_head_linear.wgsl"),
    includes: &[PHILOX_LIB, GRID_LIB],
};

const KERNEL: Kernel = Kernel {
    shader: &SHADER,
    entry: "vae_head_linear_forward",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::ReadWrite),
        (3, Slot::ReadWrite),
        (4, Slot::ReadWrite),
        (5, Slot::ReadWrite),
        (6, Slot::Step),
        (7, Slot::Read),
        (8, Slot::Read),
    ],
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    scale: f32,
    inputs: u32,
    bias_offset: u32,
}

/// (rows, inputs, cols): one input and one column; inputs not a multiple of the lanes; 2·128
/// stats columns (the most the shader holds), several passes.
const CHECKS: [(usize, usize, usize); 4] = [(1, 1, 1), (5, 7, 3), (33, 100, 20), (3, 65, 128)];
/// The training steps' head layers: (name, rows, inputs, cols).
const TIMED: [(&str, usize, usize, usize); 2] = [
    ("VAE 784-400-20", 128, 400, 20),
    ("wide VAE", 1024, 2048, 64),
];
/// Threads a stats column: one (a thread takes a column whole), a CPU adapter's 8 lanes, a
/// GPU's 32.
const LANES: [u32; 3] = [1, 8, 32];

const KEY: NoiseKey = NoiseKey {
    seed: 0x11ea_5eed,
    step: 4,
    stream: 1,
};

/// A head layer's inputs on the host and the GPU, its outputs, and the twins' outputs.
struct Head {
    rows: usize,
    inputs: usize,
    cols: usize,
    scale: f32,
    bias_offset: usize,
    start_totals: Vec<f32>,
    /// stats, z, eps, kl totals, dstats from the twins.
    twin: [Vec<f32>; 5],
    h: GpuBuffer,
    /// W, padding to the view alignment, b: as a parameter buffer holds them.
    layer: GpuBuffer,
    step: GpuBuffer,
    outputs: [GpuBuffer; 5],
}

/// `n` values from U(lo, hi) on a grid of 2^-8: products are multiples of 2^-16, so sums of
/// them below 2^7 take at most 23 bits and are exact in f32 in any order (|h| ≤ 1, |W| ≤
/// 0.05, |b| ≤ 1 and at most 2500 inputs keep every stats value below 2^7).
fn on_grid(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.random_range(lo..hi) * 256.0).round() / 256.0)
        .collect()
}

impl Head {
    fn new(
        ctx: &GpuContext,
        rng: &mut StdRng,
        (rows, inputs, cols): (usize, usize, usize),
    ) -> latent::Result<Self> {
        let h = on_grid(rng, rows * inputs, -1.0, 1.0);
        let weight = on_grid(rng, 2 * cols * inputs, -0.05, 0.05);
        let bias = on_grid(rng, 2 * cols, -1.0, 1.0);
        let start_totals: Vec<f32> = (0..rows).map(|_| rng.random_range(0.0..100.0)).collect();
        let scale = 0.5 / rows as f32;
        let (n, stats_len) = (rows * cols, rows * 2 * cols);
        let mut stats = vec![0.0; stats_len];
        let shape = MatmulShape {
            trans_b: true,
            ..MatmulShape::new(rows, 2 * cols, inputs)
        };
        matmul_twin(&mut stats, &h, &weight, Some(&bias), &shape)?;
        let (mut z, mut eps, mut totals) = (vec![0.0; n], vec![0.0; n], start_totals.clone());
        let mut dstats = vec![0.0; stats_len];
        let out = VaeHeadOut {
            z: &mut z,
            eps: &mut eps,
            kl_totals: &mut totals,
            dstats: Some(&mut dstats),
        };
        head_twin(out, &stats, (rows, cols, 1), KEY, scale)?;
        let bias_offset = (2 * cols * inputs).div_ceil(VIEW_ALIGNMENT) * VIEW_ALIGNMENT;
        let mut layer = weight;
        layer.resize(bias_offset, f32::NAN);
        layer.extend_from_slice(&bias);
        let outputs =
            [stats_len, n, n, rows, stats_len].map(|len| ctx.create_buffer("head output", len));
        let [a, b, c, d, e] = outputs;
        Ok(Head {
            rows,
            inputs,
            cols,
            scale,
            bias_offset,
            h: ctx.upload("h", &h)?,
            layer: ctx.upload("layer", &layer)?,
            step: ctx.upload("step", &[KEY.step])?,
            outputs: [a?, b?, c?, d?, e?],
            twin: [stats, z, eps, totals, dstats],
            start_totals,
        })
    }

    /// Poisons the outputs (NaN; the totals to their start) before a run.
    fn reset(&self, ctx: &GpuContext) -> latent::Result<()> {
        for (i, output) in self.outputs.iter().enumerate() {
            if i == 3 {
                ctx.write_buffer(output, &self.start_totals)?;
            } else {
                ctx.write_buffer(output, &vec![f32::NAN; output.len])?;
            }
        }
        Ok(())
    }

    fn buffers(&self) -> VaeHeadBuffers<'_> {
        let [stats, z, eps, kl_totals, dstats] = &self.outputs;
        VaeHeadBuffers {
            z,
            eps,
            kl_totals,
            dstats: Some(dstats),
            stats,
            step: &self.step,
            label: None,
        }
    }

    fn fused(&self, ctx: &GpuContext, lanes: u32) -> latent::Result<Dispatch> {
        let params = Params {
            rows: self.rows as u32,
            cols: self.cols as u32,
            seed_lo: KEY.seed as u32,
            seed_hi: (KEY.seed >> 32) as u32,
            stream: KEY.stream,
            scale: self.scale,
            inputs: self.inputs as u32,
            bias_offset: self.bias_offset as u32,
        };
        let [stats, z, eps, kl_totals, dstats] = &self.outputs;
        let constants = [
            (
                "WORKGROUP_SIZE",
                f64::from(row_reduction_threads(ctx).max(32)),
            ),
            ("LANES", f64::from(lanes)),
        ];
        let buffers = [
            z,
            eps,
            kl_totals,
            dstats,
            stats,
            &self.step,
            &self.h,
            &self.layer,
        ];
        let grid = grid_for_groups(ctx, self.rows as u64)?;
        prepare(
            ctx,
            &KERNEL,
            &constants,
            Some(bytes_of(&params)),
            &buffers,
            grid,
            // Reads h, the stats layer's weights and bias, the KL totals; writes μ | logvar,
            // z, ε, dμ | dlogvar and the totals.
            Traffic::floats(
                self.rows * self.inputs + 2 * self.cols * (self.inputs + 1) + self.rows,
                6 * self.rows * self.cols + self.rows,
            ),
        )
    }

    /// What a training step runs now: the stats matmul (the device's variant for the shape),
    /// then vae_head_forward.
    fn separate(&self, ctx: &GpuContext) -> latent::Result<Vec<Dispatch>> {
        let shape = MatmulShape {
            trans_b: true,
            ..MatmulShape::new(self.rows, 2 * self.cols, self.inputs)
        };
        let weight = self.layer.view(0, 2 * self.cols * self.inputs)?;
        let bias = self.layer.view(self.bias_offset, 2 * self.cols)?;
        let variant = ctx.matmul_variant(&shape)?;
        let stats = &self.outputs[0];
        let matmul =
            matmul_with_variant(ctx, stats, &self.h, &weight, Some(&bias), &shape, variant)?;
        let head = vae_head_forward(
            ctx,
            &self.buffers(),
            (self.rows, self.cols, 1),
            KEY.seed,
            KEY.stream,
            self.scale,
        )?;
        Ok(vec![matmul, head])
    }

    /// Runs the dispatches once and compares every output with the twins: stats exactly
    /// (see `on_grid`), the rest within 1e-3 (ε's Box-Muller and z) or 1e-4 (the totals,
    /// dstats) of 1 + |value|. The largest error, or why it fails.
    fn check(
        &self,
        ctx: &GpuContext,
        dispatches: &[&Dispatch],
    ) -> latent::Result<Result<f32, String>> {
        self.reset(ctx)?;
        latent::kernels::run(ctx, "dev head", dispatches)?;
        let names = ["stats", "z", "eps", "kl_totals", "dstats"];
        let tolerance = [0.0, 1e-3, 1e-3, 1e-4, 1e-4];
        let mut worst = 0.0f32;
        for (i, output) in self.outputs.iter().enumerate() {
            let gpu = ctx.read_buffer::<f32>(output)?;
            let allowed = |_, c: f32| tolerance[i] * (1.0 + c.abs());
            let result = compare(&gpu, &self.twin[i], &allowed);
            if result.failures > 0 {
                return Ok(Err(format!(
                    "{}: {} elements off, first (index, gpu, twin, allowed) {:?}",
                    names[i], result.failures, result.first_failure
                )));
            }
            worst = worst.max(result.max_abs_err);
        }
        Ok(Ok(worst))
    }
}

fn time_us(ctx: &GpuContext, dispatches: &[&Dispatch]) -> latent::Result<f64> {
    let (us, _) = time_gpu(ctx, 5, &|pass| {
        dispatches.iter().for_each(|d| d.record(pass))
    })?;
    Ok(us)
}

/// Checks at every shape and lane count, then times the training steps' head layers fused at
/// each lane count against the two dispatches. False when a check failed (nothing is timed).
pub fn run(ctx: &GpuContext, rng: &mut StdRng) -> latent::Result<bool> {
    println!("VAE head with its stats layer in front (dev/vae_head_linear.wgsl): one dispatch for the stats matmul and vae_head_forward");
    let mut all_passed = true;
    let timed_shapes = TIMED.map(|(_, rows, inputs, cols)| (rows, inputs, cols));
    for shape in CHECKS.into_iter().chain(timed_shapes) {
        let head = Head::new(ctx, rng, shape)?;
        let separate = head.separate(ctx)?;
        let mut forms = vec![("separate".to_string(), separate)];
        for lanes in LANES {
            forms.push((format!("fused/{lanes}"), vec![head.fused(ctx, lanes)?]));
        }
        for (name, dispatches) in &forms {
            let dispatches: Vec<&Dispatch> = dispatches.iter().collect();
            let (rows, inputs, cols) = shape;
            match head.check(ctx, &dispatches)? {
                Ok(err) => println!(
                    "  check {rows}x{inputs}x{cols} {name:<10} passes, max abs err {err:.3e}"
                ),
                Err(why) => {
                    all_passed = false;
                    println!("  check {rows}x{inputs}x{cols} {name:<10} FAILS: {why}");
                }
            }
        }
    }
    if !all_passed {
        println!("  not timed: a check failed");
        return Ok(false);
    }
    println!(
        "{:<16} {:>14} {:>10} {:>10} {:>10}",
        "head layer", "separate (2)", "fused/1", "fused/8", "fused/32"
    );
    for (name, rows, inputs, cols) in TIMED {
        let head = Head::new(ctx, rng, (rows, inputs, cols))?;
        let separate = head.separate(ctx)?;
        let mut line = format!(
            "{name:<16} {:>12.0}us",
            time_us(ctx, &separate.iter().collect::<Vec<_>>())?
        );
        for lanes in LANES {
            let fused = head.fused(ctx, lanes)?;
            line += &format!(" {:>8.0}us", time_us(ctx, &[&fused])?);
        }
        println!("{line}");
    }
    Ok(true)
}
