//! Host side of shaders/vae_head.wgsl: the VAE head of a training step (reparameterization,
//! KL per row into running totals, the KL's gradient) in one dispatch; an IWAE's head draws K
//! samples a row and has no KL gradient. μ and logvar come as one tensor, stats (rows,
//! 2·cols): μ | logvar. CPU twin: src/cpu/vae_head.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_groups, prepare, row_reduction_threads, Dispatch, Kernel, Shader,
    Slot, Traffic, GRID_LIB, PHILOX_LIB,
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
    _pad: u32,
}

/// The buffers of the VAE head: outputs z, eps (rows · K, cols), the running KL totals (rows)
/// and, unless the KL has no gradient (an IWAE's, only reported), dstats (rows, 2·cols):
/// dμ | dlogvar; inputs stats (rows, 2·cols): μ | logvar, and the one-element step counter.
pub struct VaeHeadBuffers<'a> {
    pub z: &'a GpuBuffer,
    pub eps: &'a GpuBuffer,
    pub kl_totals: &'a GpuBuffer,
    pub dstats: Option<&'a GpuBuffer>,
    pub stats: &'a GpuBuffer,
    pub step: &'a GpuBuffer,
}

/// Threads per row: the latent width rounded up to a power of two, from 32 to the adapter's
/// row-reduction size (a workgroup mostly idle on a narrow latent costs barriers for nothing).
fn threads_per_row(ctx: &GpuContext, cols: usize) -> u32 {
    let most = row_reduction_threads(ctx);
    (cols.next_power_of_two() as u32).clamp(32.min(most), most)
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
    check_len(op, "z", b.z, rows * samples * cols)?;
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
        _pad: 0,
    };
    let constants = [
        ("WORKGROUP_SIZE", f64::from(threads_per_row(ctx, cols))),
        ("KL_GRAD", if b.dstats.is_some() { 1.0 } else { 0.0 }),
    ];
    // Without a KL gradient its binding, never written, holds the absent output's placeholder.
    let dstats = b.dstats.unwrap_or(&ctx.placeholder_out);
    let dstats_floats = if b.dstats.is_some() {
        2 * rows * cols
    } else {
        0
    };
    prepare(
        ctx,
        &FORWARD,
        &constants,
        Some(bytes_of(&params)),
        &[b.z, b.eps, b.kl_totals, dstats, b.stats, b.step],
        grid_for_groups(ctx, rows as u64)?,
        // Reads μ | logvar and the KL totals; writes z, ε, dμ | dlogvar and the totals.
        Traffic::floats(
            2 * rows * cols + rows,
            2 * rows * samples * cols + dstats_floats + rows,
        ),
    )
}
