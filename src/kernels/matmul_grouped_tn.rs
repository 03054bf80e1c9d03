//! Host side of shaders/matmul_grouped_tn.wgsl: the weight and bias gradients of up to
//! [`MAX_PROBLEMS`] linear layers in one dispatch (CPU twin: src/cpu/matmul_grouped_tn.rs).
//! For each layer, dweight (m, n) = dyᵀ·x and dbias (m) = Σ_rows dy, written at their
//! offsets in the step's flat gradient buffer ([`matmul_grouped_tn`]), or fed straight to
//! Adam at the same offsets of the flat parameters ([`matmul_grouped_tn_adam`], when a step's
//! grouped dispatches cover every parameter: no Adam dispatch, no stored gradients). The
//! tiles are the tiled matmul's ([`MatmulTiles`]), 4 × 4 or 8 × 8 a thread, with or without
//! prefetching, without K split. A training step uses it where the device's timing says it beats one
//! dispatch a layer (kernels::autotune, [`WeightGrads`]).

use std::fmt;
use std::str::FromStr;

use crate::error::{shape_error, Error, Result};
use crate::gpu::{GpuBuffer, GpuContext, VIEW_ALIGNMENT};
use crate::kernels::adam::{AdamConfig, ADAM_UPDATE_LIB};
use crate::kernels::matmul::MatmulTiles;
use crate::kernels::{
    binds_storage_buffers, check_len, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
};

pub const SHADER: Shader = Shader {
    name: "matmul_grouped_tn",
    source: include_str!("../../shaders/matmul_grouped_tn.wgsl"),
    includes: &[ADAM_UPDATE_LIB],
};

/// (uniform, grads, then dy and x of problems 0 to 3).
const KERNEL: Kernel = Kernel {
    shader: &SHADER,
    entry: "matmul_grouped_tn",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
        (5, Slot::Read),
        (6, Slot::Read),
        (7, Slot::Read),
        (8, Slot::Read),
        (9, Slot::Read),
    ],
};

/// The fused form: (uniform, parameters, m, v, step scalars, step state, then dy and x of
/// problems 0 to 3).
const ADAM_KERNEL: Kernel = Kernel {
    shader: &SHADER,
    entry: "matmul_grouped_tn_adam",
    slots: &[
        (0, Slot::Uniform),
        (10, Slot::ReadWrite),
        (11, Slot::ReadWrite),
        (12, Slot::ReadWrite),
        (13, Slot::Read),
        (14, Slot::Step),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
        (5, Slot::Read),
        (6, Slot::Read),
        (7, Slot::Read),
        (8, Slot::Read),
        (9, Slot::Read),
    ],
};

/// Layers one dispatch takes (the shader's operand bindings).
pub const MAX_PROBLEMS: usize = 4;

/// Storage buffers the kernel binds: 2 a problem, and the gradients, or in the fused form the
/// parameters, Adam's moments, its table and the step state.
const STORAGE_BINDINGS: u32 = 2 * MAX_PROBLEMS as u32 + 1;
const ADAM_STORAGE_BINDINGS: u32 = 2 * MAX_PROBLEMS as u32 + 5;

/// One layer's gradients: dy (k, m) and x (k, n), and the element offsets of dweight (m·n)
/// and dbias (m) in the gradient buffer.
#[derive(Clone, Copy)]
pub struct WeightGradProblem<'a> {
    pub m: usize,
    pub n: usize,
    pub dy: &'a GpuBuffer,
    pub x: &'a GpuBuffer,
    pub dweight: usize,
    pub dbias: usize,
}

/// How a training step computes its linear layers' weight gradients: one dispatch a layer
/// (the matmul with the bias gradient as its row sums), or up to [`MAX_PROBLEMS`] layers a
/// dispatch of shaders/matmul_grouped_tn.wgsl at these tiles. Written "separate" or
/// "grouped:64x64x16" (the tiles as [`MatmulTiles`] writes them), as LATENT_WEIGHT_GRADS
/// and the autotune cache spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightGrads {
    Separate,
    Grouped(MatmulTiles),
}

impl fmt::Display for WeightGrads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightGrads::Separate => f.write_str("separate"),
            WeightGrads::Grouped(tiles) => write!(f, "grouped:{tiles}"),
        }
    }
}

impl FromStr for WeightGrads {
    type Err = Error;

    /// "separate", "grouped" (64x64x16 tiles) or "grouped:MxNxK\[x8\]\[p\]".
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "weight gradients {s:?}: expected separate, grouped or grouped:MxNxK[x8][p] (such as grouped:64x64x16 or grouped:64x64x16x8p)"
            ))
        };
        let grouped = match s {
            "separate" => return Ok(WeightGrads::Separate),
            "grouped" => MatmulTiles::default(),
            _ => {
                let tiles = s.strip_prefix("grouped:").ok_or_else(bad)?;
                let variant = format!("tiled:{tiles}").parse().map_err(|_| bad())?;
                match variant {
                    crate::kernels::matmul::MatmulVariant::Tiled(t) => t,
                    _ => return Err(bad()),
                }
            }
        };
        if grouped.split != 1 {
            return Err(bad());
        }
        Ok(WeightGrads::Grouped(grouped))
    }
}

/// How a training step's weight gradients are chosen, as LATENT_WEIGHT_GRADS (the CLI's
/// --weight-grads) writes it: "auto" (the default) times grouped against separate dispatches
/// for each set of layers on GPUs where the matmul is tuned (`--matmul auto`), caching the
/// winner, and keeps separate dispatches elsewhere (on CPU adapters the subgroup kernel,
/// which has no grouped form, wins every weight gradient); "separate" or "grouped\[:tiles\]"
/// force one form (a layer whose shapes [`can_group_shapes`] refuses stays separate, the
/// rest of its set grouped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightGradsPolicy {
    Auto,
    Force(WeightGrads),
}

impl FromStr for WeightGradsPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(WeightGradsPolicy::Auto),
            other => other.parse().map(WeightGradsPolicy::Force).map_err(|_| {
                Error::InvalidArgument(format!(
                    "weight gradients {s:?}: expected auto, separate, grouped or grouped:MxNxK[x8][p] (such as grouped:64x64x16 or grouped:64x64x16x8p)"
                ))
            }),
        }
    }
}

impl WeightGradsPolicy {
    /// The policy LATENT_WEIGHT_GRADS names, else auto.
    pub fn from_env() -> Result<Self> {
        match std::env::var("LATENT_WEIGHT_GRADS") {
            Ok(text) if !text.trim().is_empty() => text.parse(),
            _ => Ok(WeightGradsPolicy::Auto),
        }
    }
}

/// The layers of one grouped dispatch as the device's choice tells them apart: the batch
/// and each layer's (out, in), in the order of the step's backward pass, and whether they
/// are the model's only set and hold every parameter, so that grouped they would run Adam
/// too (the tuning then times the separate form with its Adam dispatch against the fused
/// one). Written "k128: 400x784, 40x400" (" with Adam").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub k: usize,
    pub layers: Vec<(usize, usize)>,
    pub adam: bool,
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layers: Vec<String> = self
            .layers
            .iter()
            .map(|(m, n)| format!("{m}x{n}"))
            .collect();
        write!(f, "k{}: {}", self.k, layers.join(", "))?;
        if self.adam {
            f.write_str(" with Adam")?;
        }
        Ok(())
    }
}

/// Offsets for the dW and db of `layers` ((out, in) each) in flat buffers laid out as a
/// plan lays out its parameters (weight, then bias, each part at a multiple of
/// VIEW_ALIGNMENT elements), and the buffers' length: for checks and tuning.
pub fn flat_layout(layers: &[(usize, usize)]) -> (Vec<(usize, usize)>, usize) {
    let mut offsets = Vec::new();
    let mut end = 0;
    for &(m, n) in layers {
        let dweight = end;
        let dbias = (dweight + m * n).next_multiple_of(VIEW_ALIGNMENT);
        end = (dbias + m).next_multiple_of(VIEW_ALIGNMENT);
        offsets.push((dweight, dbias));
    }
    (offsets, end)
}

/// The grouped kernel's tiles nearest to a tiled matmul's: the same block sizes and
/// prefetching, without K split (which it has not).
pub fn grouped_tiles(tiles: MatmulTiles) -> MatmulTiles {
    MatmulTiles { split: 1, ..tiles }
}

/// Whether `ctx`'s adapter binds the kernel's 9 storage buffers (WebGPU's default limit is 8).
pub fn runs_on(ctx: &GpuContext) -> bool {
    binds_storage_buffers(ctx, STORAGE_BINDINGS)
}

/// Whether `ctx`'s adapter runs the kernel ([`runs_on`]) and layers of these (out, in)
/// sizes suit it: each a multiple of 4 (a vec4 of dy, x or dweight lies in one stored row).
/// A plan's offsets and buffer views always suit it too (see [`can_group`]).
pub fn can_group_shapes(ctx: &GpuContext, layers: &[(usize, usize)]) -> bool {
    runs_on(ctx) && layers.iter().all(|&(m, n)| m % 4 == 0 && n % 4 == 0)
}

/// Whether `ctx`'s adapter runs the kernel on these layers ([`can_group_shapes`]), and
/// their offsets suit it: multiples of 4 elements, dy and x starting at 16-byte offsets.
pub fn can_group(ctx: &GpuContext, problems: &[WeightGradProblem]) -> bool {
    let shapes: Vec<(usize, usize)> = problems.iter().map(|p| (p.m, p.n)).collect();
    can_group_shapes(ctx, &shapes)
        && problems.iter().all(|p| {
            p.dweight % 4 == 0 && p.dbias % 4 == 0 && p.dy.offset % 16 == 0 && p.x.offset % 16 == 0
        })
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Problem {
    m: u32,
    n: u32,
    c_offset: u32,
    sums_offset: u32,
    first_group: u32,
    tiles_x: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    k: u32,
    problems: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    _pad: [u32; 2],
    problem: [Problem; MAX_PROBLEMS],
}

/// The buffers Adam updates in the fused form, each the whole flat buffer (the plan's
/// parameter layout): parameters, moments m and v, the host's per-step scalar table, and
/// the step states (a training run's table, each step binding its row).
#[derive(Clone, Copy)]
pub struct AdamBuffers<'a> {
    pub param: &'a GpuBuffer,
    pub m: &'a GpuBuffer,
    pub v: &'a GpuBuffer,
    pub step_scalars: &'a GpuBuffer,
    pub state: &'a GpuBuffer,
}

/// Whether `ctx`'s adapter binds the fused form's 13 storage buffers.
pub fn runs_fused_on(ctx: &GpuContext) -> bool {
    binds_storage_buffers(ctx, ADAM_STORAGE_BINDINGS)
}

/// Prepares the gradients of 1 to [`MAX_PROBLEMS`] layers with batch `k` into `grads` (the
/// whole flat gradient buffer), at `tiles` (4 × 4 or 8 × 8 a thread, with or without
/// prefetching, no K split). Errors: a shape or offset [`can_group`] refuses, lengths that disagree, or
/// tiles the adapter cannot run.
pub fn matmul_grouped_tn(
    ctx: &GpuContext,
    grads: &GpuBuffer,
    k: usize,
    problems: &[WeightGradProblem],
    tiles: MatmulTiles,
) -> Result<Dispatch> {
    let (params, grid) = grouped_params(ctx, grads.len, k, problems, tiles)?;
    if !grads.offset.is_multiple_of(16) {
        return Err(shape_error(
            "matmul_grouped_tn",
            "the gradients must start at a 16-byte offset",
        ));
    }
    let mut buffers = vec![grads];
    buffers.extend(operands(problems));
    prepare(
        ctx,
        &KERNEL,
        &constants(tiles),
        Some(bytemuck::bytes_of(&params)),
        &buffers,
        grid,
        // Reads each layer's dy and x; writes its dW and db.
        Traffic::floats(operand_elements(k, problems), gradient_elements(problems)),
    )
    .map(|d| d.with_flops(product_flops(k, problems)))
}

/// [`matmul_grouped_tn`] with Adam fused: each gradient element updates the parameter and
/// moments at its offset (shaders/adam.wgsl's update, `config`'s hyperparameters, the
/// step's scalars from the table at the step the bound state row holds) and is not stored.
/// Errors as [`matmul_grouped_tn`], and for an adapter without 13 storage buffers.
pub fn matmul_grouped_tn_adam(
    ctx: &GpuContext,
    adam: AdamBuffers,
    config: &AdamConfig,
    k: usize,
    problems: &[WeightGradProblem],
    tiles: MatmulTiles,
) -> Result<Dispatch> {
    let op = "matmul_grouped_tn_adam";
    config.check()?;
    if !runs_fused_on(ctx) {
        return Err(shape_error(op, "needs 13 storage buffers a shader"));
    }
    let n = adam.param.len;
    let (mut params, grid) = grouped_params(ctx, n, k, problems, tiles)?;
    params.beta1 = config.beta1;
    params.beta2 = config.beta2;
    params.eps = config.eps;
    params.weight_decay = config.weight_decay;
    for (name, buffer) in [("m", adam.m), ("v", adam.v)] {
        check_len(op, name, buffer, n)?;
    }
    check_len(op, "step_scalars", adam.step_scalars, 2)?;
    check_len(op, "state", adam.state, 2)?;
    if [adam.param, adam.m, adam.v]
        .iter()
        .any(|b| b.offset % 16 != 0)
    {
        return Err(shape_error(
            op,
            "the parameters and moments must start at 16-byte offsets",
        ));
    }
    let mut buffers = vec![adam.param, adam.m, adam.v, adam.step_scalars, adam.state];
    buffers.extend(operands(problems));
    prepare(
        ctx,
        &ADAM_KERNEL,
        &constants(tiles),
        Some(bytemuck::bytes_of(&params)),
        &buffers,
        grid,
        // Reads each layer's dy and x, and the parameter and moments at each gradient
        // element (the gradient itself is never stored); writes the parameter and moments.
        Traffic::floats(
            operand_elements(k, problems) + 3 * gradient_elements(problems),
            3 * gradient_elements(problems),
        ),
    )
    .map(|d| d.with_flops(product_flops(k, problems)))
}

/// 2 · m · n · k for every layer's dW.
fn product_flops(k: usize, problems: &[WeightGradProblem]) -> f64 {
    problems.iter().map(|p| 2.0 * (p.m * p.n * k) as f64).sum()
}

/// Elements of every layer's dy (k, m) and x (k, n).
fn operand_elements(k: usize, problems: &[WeightGradProblem]) -> usize {
    problems.iter().map(|p| k * (p.m + p.n)).sum()
}

/// Elements of every layer's dW (m, n) and db (m).
fn gradient_elements(problems: &[WeightGradProblem]) -> usize {
    problems.iter().map(|p| p.m * p.n + p.m).sum()
}

/// dy and x of problems 0 to 3; the bindings of absent problems hold the first problem's
/// (never read).
fn operands<'a>(problems: &[WeightGradProblem<'a>]) -> Vec<&'a GpuBuffer> {
    let mut buffers = Vec::new();
    for g in 0..MAX_PROBLEMS {
        let p = problems.get(g).unwrap_or(&problems[0]);
        buffers.push(p.dy);
        buffers.push(p.x);
    }
    buffers
}

fn constants(tiles: MatmulTiles) -> [(&'static str, f64); 5] {
    [
        ("TILE_M", f64::from(tiles.tile_m)),
        ("TILE_N", f64::from(tiles.tile_n)),
        ("TILE_K", f64::from(tiles.tile_k)),
        ("THREAD_QUADS", f64::from(tiles.thread / 4)),
        ("PREFETCH", if tiles.prefetch { 1.0 } else { 0.0 }),
    ]
}

/// The uniform (Adam's fields zero) and the grid, after checking the problems against a
/// flat buffer of `flat_len` elements and the tiles.
fn grouped_params(
    ctx: &GpuContext,
    flat_len: usize,
    k: usize,
    problems: &[WeightGradProblem],
    tiles: MatmulTiles,
) -> Result<(Params, [u32; 3])> {
    let op = "matmul_grouped_tn";
    if !(1..=MAX_PROBLEMS).contains(&problems.len()) {
        return Err(shape_error(
            op,
            format!(
                "{} layers: a dispatch takes 1 to {MAX_PROBLEMS}",
                problems.len()
            ),
        ));
    }
    if tiles.split != 1 {
        return Err(shape_error(
            op,
            format!("tiles {tiles}: the grouped kernel has no K split"),
        ));
    }
    tiles.check(ctx)?;
    if !can_group(ctx, problems) || k == 0 {
        return Err(shape_error(
            op,
            "needs 9 storage buffers a shader, a batch of at least 1, every layer's width \
             and offsets multiples of 4, and buffers at 16-byte offsets",
        ));
    }
    let mut params: Params = bytemuck::Zeroable::zeroed();
    params.k = k as u32;
    params.problems = problems.len() as u32;
    let mut groups = 0u64;
    for (g, p) in problems.iter().enumerate() {
        check_len(op, "dy", p.dy, k * p.m)?;
        check_len(op, "x", p.x, k * p.n)?;
        let end = (p.dweight + p.m * p.n).max(p.dbias + p.m);
        let overlap = p.dbias < p.dweight + p.m * p.n && p.dweight < p.dbias + p.m;
        if end > flat_len || overlap || p.m == 0 || p.n == 0 {
            return Err(shape_error(
                op,
                format!(
                    "layer {g}: dweight at {} ({} elements) and dbias at {} ({}) must be \
                     nonempty, apart, and inside the flat buffer's {} elements",
                    p.dweight,
                    p.m * p.n,
                    p.dbias,
                    p.m,
                    flat_len
                ),
            ));
        }
        let tiles_x = (p.n as u64).div_ceil(u64::from(tiles.tile_n));
        let tiles_y = (p.m as u64).div_ceil(u64::from(tiles.tile_m));
        let as_u32 = |v: u64| {
            u32::try_from(v).map_err(|_| shape_error(op, "more than 2³² elements or workgroups"))
        };
        params.problem[g] = Problem {
            m: as_u32(p.m as u64)?,
            n: as_u32(p.n as u64)?,
            c_offset: as_u32(p.dweight as u64)?,
            sums_offset: as_u32(p.dbias as u64)?,
            first_group: as_u32(groups)?,
            tiles_x: as_u32(tiles_x)?,
            _pad: [0; 2],
        };
        groups += tiles_x * tiles_y;
    }
    Ok((params, crate::kernels::grid_for_groups(ctx, groups)?))
}
