//! Host side of shaders/log_weight.wgsl: the log importance weight of each VAE sample. μ and
//! logvar come as one tensor, stats (rows, 2·cols): μ | logvar, or an IWAE's data rows in
//! place of their K repeats. CPU twin: src/cpu/log_weight.rs (on repeated stats:
//! src/cpu/repeat_rows.rs first).

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::mse::RowLossParams;
use crate::kernels::reparameterize::check_stats;
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, grid_for_groups, prepare, row_reduction_constants,
    Dispatch, Kernel, Shader, Slot, Traffic, GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "log_weight",
    source: include_str!("../../shaders/log_weight.wgsl"),
    includes: &[GRID_LIB],
};

const LOG_WEIGHT: Kernel = Kernel {
    shader: &SHADER,
    entry: "log_weight",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
        (5, Slot::Read),
    ],
};

const BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "log_weight_backward",
    slots: &[
        (0, Slot::Uniform),
        (6, Slot::ReadWrite),
        (7, Slot::ReadWrite),
        (8, Slot::Read),
        (3, Slot::Read),
    ],
};

/// logw (rows) = −recon_weight · recon − ½ Σ_c (z² − ε² − logvar), z/ε (rows, cols), logvar
/// the second half of each row of stats (rows / repeat, 2·cols): row r of z reads row
/// r / repeat (1, or an IWAE's K when stats are its data rows, never repeated).
#[allow(clippy::too_many_arguments)]
pub fn log_weight(
    ctx: &GpuContext,
    logw: &GpuBuffer,
    recon: &GpuBuffer,
    z: &GpuBuffer,
    eps: &GpuBuffer,
    (stats, repeat): (&GpuBuffer, usize),
    rows: usize,
    cols: usize,
    recon_weight: f32,
) -> Result<Dispatch> {
    let op = "log_weight";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    check_len(op, "logw", logw, rows)?;
    check_len(op, "recon", recon, rows)?;
    check_len(op, "z", z, rows * cols)?;
    check_len(op, "eps", eps, rows * cols)?;
    check_stats(op, stats, rows, cols, repeat)?;
    let params = RowLossParams::new(rows, cols, recon_weight);
    let [threads] = row_reduction_constants(ctx);
    let constants = [threads, ("STATS_REPEAT", repeat as f64)];
    prepare(
        ctx,
        &LOG_WEIGHT,
        &constants,
        Some(bytes_of(&params)),
        &[logw, recon, z, eps, stats],
        grid_for_groups(ctx, rows as u64)?,
        // Reads recon, z, ε and the logvar half of stats.
        Traffic::floats(rows + 2 * rows * cols + rows / repeat * cols, rows),
    )
}

/// From dlogw (rows): dz (+)= −dlogw\[r\] · z (rows, cols), written or added when
/// `accumulate_z`; dstats (rows, 2·cols) (+)= [0 | ½ dlogw\[r\]]: both halves written (the μ
/// half with zeros), or the logvar half added to and the μ half left as it is when
/// `accumulate_stats`.
#[allow(clippy::too_many_arguments)]
pub fn log_weight_backward(
    ctx: &GpuContext,
    dz: &GpuBuffer,
    dstats: &GpuBuffer,
    dlogw: &GpuBuffer,
    z: &GpuBuffer,
    rows: usize,
    cols: usize,
    accumulate_z: bool,
    accumulate_stats: bool,
) -> Result<Dispatch> {
    check_nonzero("log_weight_backward", &[("rows", rows), ("cols", cols)])?;
    check_len("log_weight_backward", "dz", dz, rows * cols)?;
    check_len("log_weight_backward", "dstats", dstats, rows * 2 * cols)?;
    check_len("log_weight_backward", "dlogw", dlogw, rows)?;
    check_len("log_weight_backward", "z", z, rows * cols)?;
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let constants = [
        ("ACCUMULATE_Z", flag(accumulate_z)),
        ("ACCUMULATE_STATS", flag(accumulate_stats)),
    ];
    let params = RowLossParams::new(rows, cols, 0.0);
    let n = rows * cols;
    let added = usize::from(accumulate_z) + usize::from(accumulate_stats);
    let stats_written = if accumulate_stats { n } else { 2 * n };
    prepare(
        ctx,
        &BACKWARD,
        &constants,
        Some(bytes_of(&params)),
        &[dz, dstats, dlogw, z],
        grid_for_elements(ctx, n)?,
        Traffic::floats(rows + n + added * n, n + stats_written),
    )
}
