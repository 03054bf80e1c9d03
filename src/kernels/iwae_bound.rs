//! Host side of shaders/iwae_bound.wgsl: an IWAE training step's log weights, bound (into
//! running totals) and their gradients down to z and μ | logvar, in one dispatch; with the
//! reconstruction loss's rows and gradient too where the device binds 11 storage buffers.
//! CPU twin: src/cpu/iwae_bound.rs (on repeated stats: src/cpu/repeat_rows.rs first).

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::{Error, Result};
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::log_mean_exp::check_groups;
use crate::kernels::mse::{check_target, target_repeat_constant};
use crate::kernels::reparameterize::check_stats;
use crate::kernels::{
    binds_storage_buffers, bytes_of, check_len, grid_for_groups, prepare, row_reduction_threads,
    threads_for_row, Dispatch, Kernel, Shader, Slot, Traffic, GRID_LIB, ROW_LOSS_LIB,
};

pub const SHADER: Shader = Shader {
    name: "iwae_bound",
    source: include_str!("../../shaders/iwae_bound.wgsl"),
    includes: &[GRID_LIB, ROW_LOSS_LIB],
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

const WITH_RECON: Kernel = Kernel {
    shader: &SHADER,
    entry: "iwae_bound_with_recon",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::ReadWrite),
        (3, Slot::ReadWrite),
        (4, Slot::ReadWrite),
        (6, Slot::Read),
        (7, Slot::Read),
        (8, Slot::Read),
        (9, Slot::ReadWrite),
        (10, Slot::Read),
        (11, Slot::Read),
        (12, Slot::ReadWrite),
    ],
};

/// Storage buffers iwae_bound_with_recon binds.
const WITH_RECON_STORAGE_BINDINGS: u32 = 11;

/// Whether `ctx`'s device binds iwae_bound_with_recon's 11 storage buffers (and its params,
/// see [`binds_storage_buffers`]).
pub fn runs_with_recon_on(ctx: &GpuContext) -> bool {
    binds_storage_buffers(ctx, WITH_RECON_STORAGE_BINDINGS)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    groups: u32,
    k: u32,
    cols: u32,
    recon_weight: f32,
    scale: f32,
    recon_cols: u32,
    recon_scale: f32,
    recon_factor: f32,
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
        recon_cols: 0,
        recon_scale: 0.0,
        recon_factor: 0.0,
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

/// The reconstruction loss whose rows the bound reads, done in the bound's dispatch:
/// recon_totals (rows, running sums of the loss rows) and dout (rows, recon_cols), written;
/// out (rows, recon_cols), the logits (BCE) or the prediction (MSE); the target (rows /
/// repeat, recon_cols), row r of out compared with its row r / repeat.
pub struct ReconBuffers<'a> {
    pub recon_totals: &'a GpuBuffer,
    pub dout: &'a GpuBuffer,
    pub out: &'a GpuBuffer,
    pub target: (&'a GpuBuffer, usize),
}

/// The reconstruction loss of [`ReconBuffers`]: its kind, columns, its own scale (the
/// derivative of the training loss with respect to Σ recon) and its rows' factor into the
/// log weights' gradient (−recon_weight).
#[derive(Clone, Copy, Debug)]
pub struct ReconLoss {
    pub mse: bool,
    pub cols: usize,
    pub scale: f32,
    pub factor: f32,
}

/// [`iwae_bound_forward_backward`] with the reconstruction loss around it, in one dispatch:
/// recon = Σ_c loss(out, target) per row (summed as bce_forward or mse_forward sums it),
/// recon_totals += recon; the bound and its gradients from those rows (`b.recon` is not
/// read); dout = (loss.scale + loss.factor · dlogw\[r\]) · ∂loss/∂out, as
/// bce_backward_rows (mse_backward_rows) writes it. Errors: lengths that disagree, or a
/// device that binds fewer than 11 storage buffers ([`runs_with_recon_on`]).
pub fn iwae_bound_with_recon(
    ctx: &GpuContext,
    b: &IwaeBoundBuffers,
    r: &ReconBuffers,
    (rows, cols, k): (usize, usize, usize),
    (recon_weight, scale): (f32, f32),
    loss: ReconLoss,
) -> Result<Dispatch> {
    let op = "iwae_bound_with_recon";
    if !runs_with_recon_on(ctx) {
        return Err(Error::InvalidArgument(format!(
            "{op}: the device binds {} storage buffers a stage, the kernel {} and its params",
            ctx.limits.max_storage_buffers_per_shader_stage, WITH_RECON_STORAGE_BINDINGS
        )));
    }
    check_nonzero(op, &[("cols", cols), ("recon cols", loss.cols)])?;
    check_groups(op, rows, k)?;
    for (name, buffer, len) in [
        ("totals", b.totals, rows),
        ("dlogw", b.dlogw, rows),
        ("dz", b.dz, rows * cols),
        ("dstats", b.dstats, rows * 2 * cols),
        ("z", b.z, rows * cols),
        ("eps", b.eps, rows * cols),
        ("recon_totals", r.recon_totals, rows),
        ("dout", r.dout, rows * loss.cols),
        ("out", r.out, rows * loss.cols),
    ] {
        check_len(op, name, buffer, len)?;
    }
    let (stats, repeat) = b.stats;
    check_stats(op, stats, rows, cols, repeat)?;
    let (target, target_repeat) = r.target;
    check_target(op, target, rows, loss.cols, target_repeat)?;
    let params = Params {
        groups: (rows / k) as u32,
        k: k as u32,
        cols: cols as u32,
        recon_weight,
        scale,
        recon_cols: loss.cols as u32,
        recon_scale: loss.scale,
        recon_factor: loss.factor,
    };
    // The loss rows' sums take bce_forward's workgroup, so they are its sums, bit for bit.
    let constants = [
        ("WORKGROUP_SIZE", f64::from(row_reduction_threads(ctx))),
        ("STATS_REPEAT", repeat as f64),
        target_repeat_constant(target_repeat),
        ("RECON_MSE", if loss.mse { 1.0 } else { 0.0 }),
    ];
    let (n, recon_n) = (rows * cols, rows * loss.cols);
    prepare(
        ctx,
        &WITH_RECON,
        &constants,
        Some(bytes_of(&params)),
        &[
            b.totals,
            b.dlogw,
            b.dz,
            b.dstats,
            b.z,
            b.eps,
            stats,
            r.recon_totals,
            r.out,
            target,
            r.dout,
        ],
        grid_for_groups(ctx, (rows / k) as u64)?,
        // Reads out twice, the target twice, recon_totals, totals, z (twice), ε and the logvar
        // half of stats; writes recon_totals, totals, dlogw (three times: the loss rows, the
        // log weights, their gradient), dz, dstats and dout.
        Traffic::floats(
            2 * recon_n
                + 2 * rows / target_repeat * loss.cols
                + 2 * rows
                + 3 * n
                + rows / repeat * cols,
            5 * rows + 3 * n + recon_n,
        ),
    )
}
