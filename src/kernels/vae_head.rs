//! Host side of shaders/vae_head.wgsl: the VAE head of a training step (reparameterization,
//! KL per row into running totals, the KL's gradient) in one dispatch; an IWAE's head draws K
//! samples a row and has no KL gradient. μ and logvar come as one tensor, stats (rows,
//! 2·cols): μ | logvar. CPU twin: src/cpu/vae_head.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::{shape_error, Result};
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_groups, prepare, threads_for_row, Dispatch, Kernel, Shader, Slot,
    Traffic, GRID_LIB, PHILOX_LIB,
};

pub const SHADER: Shader = Shader {
    name: "vae_head",
    source: include_str!("../../shaders/vae_head.wgsl"),
    includes: &[PHILOX_LIB, GRID_LIB],
};

const FORWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "vae_head_forward",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::ReadWrite),
        (3, Slot::ReadWrite),
        (4, Slot::ReadWrite),
        (5, Slot::Read),
        (6, Slot::Step),
        (7, Slot::Read),
    ],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    scale: f32,
    samples: u32,
    z_stride: u32,
    label_cols: u32,
    _pad: [u32; 3],
}

/// The buffers of the VAE head: outputs z, eps (rows · K, cols), the running KL totals (rows)
/// and, unless the KL has no gradient (an IWAE's, only reported), dstats (rows, 2·cols):
/// dμ | dlogvar; inputs stats (rows, 2·cols): μ | logvar, and the one-element step counter.
/// With `label` (rows, label_cols) (a conditional VAE's, K = 1), z is written as z | label
/// (rows, cols + label_cols), the decoder's input.
pub struct VaeHeadBuffers<'a> {
    pub z: &'a GpuBuffer,
    pub eps: &'a GpuBuffer,
    pub kl_totals: &'a GpuBuffer,
    pub dstats: Option<&'a GpuBuffer>,
    pub stats: &'a GpuBuffer,
    pub step: &'a GpuBuffer,
    pub label: Option<(&'a GpuBuffer, usize)>,
}

/// For `rows` rows of stats and `samples` (K) z a row (1 for a VAE): z = μ + e^(½·logvar)·ε
/// for each sample row r·K + j, with ε keyed by (seed, step\[0\], stream, element) like
/// reparameterize_forward on the stats repeated K times; kl_totals\[r\] += KL of row r;
/// dstats (when given) = [scale · μ | scale · ½ (e^logvar − 1)], written.
pub fn vae_head_forward(
    ctx: &GpuContext,
    b: &VaeHeadBuffers,
    (rows, cols, samples): (usize, usize, usize),
    seed: u64,
    stream: u32,
    scale: f32,
) -> Result<Dispatch> {
    let op = "vae_head_forward";
    check_nonzero(op, &[("rows", rows), ("cols", cols), ("samples", samples)])?;
    let label_cols = b.label.map_or(0, |(_, label_cols)| label_cols);
    if let Some((label, _)) = b.label {
        check_nonzero(op, &[("label_cols", label_cols)])?;
        if samples != 1 {
            return Err(shape_error(
                op,
                format!("z | label is for one sample a row, not {samples}"),
            ));
        }
        check_len(op, "label", label, rows * label_cols)?;
    }
    let z_stride = cols + label_cols;
    check_len(op, "z", b.z, rows * samples * z_stride)?;
    check_len(op, "eps", b.eps, rows * samples * cols)?;
    if let Some(dstats) = b.dstats {
        check_len(op, "dstats", dstats, rows * 2 * cols)?;
    }
    check_len(op, "stats", b.stats, rows * 2 * cols)?;
    check_len(op, "kl_totals", b.kl_totals, rows)?;
    check_len(op, "step", b.step, 1)?;
    let params = Params {
        rows: rows as u32,
        cols: cols as u32,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        stream,
        scale,
        samples: samples as u32,
        z_stride: z_stride as u32,
        label_cols: label_cols as u32,
        _pad: [0; 3],
    };
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let constants = [
        ("WORKGROUP_SIZE", f64::from(threads_for_row(ctx, cols))),
        ("KL_GRAD", flag(b.dstats.is_some())),
        ("JOIN_LABEL", flag(b.label.is_some())),
    ];
    // Without a KL gradient or a label their bindings, never used, hold placeholders.
    let dstats = b.dstats.unwrap_or(&ctx.placeholder_out);
    let label = b.label.map_or(&ctx.placeholder, |(label, _)| label);
    let dstats_floats = if b.dstats.is_some() {
        2 * rows * cols
    } else {
        0
    };
    let label_floats = rows * label_cols;
    prepare(
        ctx,
        &FORWARD,
        &constants,
        Some(bytes_of(&params)),
        &[b.z, b.eps, b.kl_totals, dstats, b.stats, b.step, label],
        grid_for_groups(ctx, rows as u64)?,
        // Reads μ | logvar, the KL totals and the label; writes z (| label), ε, dμ | dlogvar
        // and the totals.
        Traffic::floats(
            2 * rows * cols + rows + label_floats,
            2 * rows * samples * cols + label_floats + dstats_floats + rows,
        ),
    )
}
