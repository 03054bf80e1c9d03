//! Host side of shaders/iwae_bound.wgsl: an IWAE training step's log weights, bound (into
//! running totals) and their gradients down to z and μ | logvar, in one dispatch. CPU twin:
//! src/cpu/iwae_bound.rs (on repeated stats: src/cpu/repeat_rows.rs first).

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::log_mean_exp::check_groups;
use crate::kernels::reparameterize::check_stats;
use crate::kernels::{
    bytes_of, check_len, grid_for_groups, prepare, threads_for_row, Dispatch, Kernel, Shader, Slot,
    Traffic, GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "iwae_bound",
    source: include_str!("../../shaders/iwae_bound.wgsl"),
    includes: &[GRID_LIB],
};

const FORWARD_BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "iwae_bound_forward_backward",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::ReadWrite),
        (3, Slot::ReadWrite),
        (4, Slot::ReadWrite),
        (5, Slot::Read),
        (6, Slot::Read),
        (7, Slot::Read),
        (8, Slot::Read),
    ],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    groups: u32,
    k: u32,
    cols: u32,
    recon_weight: f32,
    scale: f32,
    _pad: [u32; 3],
}

/// The buffers of the fused bound, for rows = data rows · K sample rows: outputs totals
/// (rows, running sums of the bound), dlogw (rows), dz (rows, cols) and dstats (rows,
/// 2·cols): dμ | dlogvar; inputs recon (rows, the reconstruction loss rows), z and eps
/// (rows, cols), and stats (rows / repeat, 2·cols): μ | logvar, row r of z reading row
/// r / repeat (1, or K when stats are the data rows').
pub struct IwaeBoundBuffers<'a> {
    pub totals: &'a GpuBuffer,
    pub dlogw: &'a GpuBuffer,
    pub dz: &'a GpuBuffer,
    pub dstats: &'a GpuBuffer,
    pub recon: &'a GpuBuffer,
    pub z: &'a GpuBuffer,
    pub eps: &'a GpuBuffer,
    pub stats: (&'a GpuBuffer, usize),
}

/// For each group of `k` sample rows: logw = −recon_weight · recon − ½ Σ_c (z² − ε² −
/// logvar); totals += −log (1/k Σ e^logw) in each of the group's rows; dlogw = −scale · k ·
/// softmax(logw); dz = −dlogw · z and dstats = [0 | ½ dlogw], written. One workgroup a
/// group, each of whose threads sums the group's k exps: for the small k of training.
pub fn iwae_bound_forward_backward(
    ctx: &GpuContext,
    b: &IwaeBoundBuffers,
    (rows, cols, k): (usize, usize, usize),
    (recon_weight, scale): (f32, f32),
) -> Result<Dispatch> {
    let op = "iwae_bound_forward_backward";
    check_nonzero(op, &[("cols", cols)])?;
    check_groups(op, rows, k)?;
    for (name, buffer, len) in [
        ("totals", b.totals, rows),
        ("dlogw", b.dlogw, rows),
        ("dz", b.dz, rows * cols),
        ("dstats", b.dstats, rows * 2 * cols),
        ("recon", b.recon, rows),
        ("z", b.z, rows * cols),
        ("eps", b.eps, rows * cols),
    ] {
        check_len(op, name, buffer, len)?;
    }
    let (stats, repeat) = b.stats;
    check_stats(op, stats, rows, cols, repeat)?;
    let params = Params {
        groups: (rows / k) as u32,
        k: k as u32,
        cols: cols as u32,
        recon_weight,
        scale,
        _pad: [0; 3],
    };
    // A thread a sample, then a thread an element of the group's K rows of dz.
    let threads = threads_for_row(ctx, k * cols);
    let constants = [
        ("WORKGROUP_SIZE", f64::from(threads)),
        ("STATS_REPEAT", repeat as f64),
    ];
    let n = rows * cols;
    prepare(
        ctx,
        &FORWARD_BACKWARD,
        &constants,
        Some(bytes_of(&params)),
        &[
            b.totals, b.dlogw, b.dz, b.dstats, b.recon, b.z, b.eps, stats,
        ],
        grid_for_groups(ctx, (rows / k) as u64)?,
        // Reads totals, recon, z (twice), ε and the logvar half of stats; writes totals,
        // dlogw (twice: the log weights, then their gradient), dz and dstats.
        Traffic::floats(2 * rows + 3 * n + rows / repeat * cols, 3 * rows + 3 * n),
    )
}
