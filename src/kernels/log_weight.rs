//! Host side of shaders/log_weight.wgsl: the log importance weight of each VAE sample.
//! CPU twin: src/cpu/log_weight.rs.

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::mse::RowLossParams;
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, grid_for_groups, prepare, row_reduction_constants,
    Dispatch, Kernel, Shader, Slot, GRID_LIB,
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

/// logw (rows) = −recon_weight · recon − ½ Σ_c (z² − ε² − logvar), z/ε/logvar (rows, cols).
#[allow(clippy::too_many_arguments)]
pub fn log_weight(
    ctx: &GpuContext,
    logw: &GpuBuffer,
    recon: &GpuBuffer,
    z: &GpuBuffer,
    eps: &GpuBuffer,
    logvar: &GpuBuffer,
    rows: usize,
    cols: usize,
    recon_weight: f32,
) -> Result<Dispatch> {
    check_nonzero("log_weight", &[("rows", rows), ("cols", cols)])?;
    check_len("log_weight", "logw", logw, rows)?;
    check_len("log_weight", "recon", recon, rows)?;
    for (name, buffer) in [("z", z), ("eps", eps), ("logvar", logvar)] {
        check_len("log_weight", name, buffer, rows * cols)?;
    }
    let params = RowLossParams::new(rows, cols, recon_weight);
    prepare(
        ctx,
        &LOG_WEIGHT,
        &row_reduction_constants(ctx),
        Some(bytes_of(&params)),
        &[logw, recon, z, eps, logvar],
        grid_for_groups(ctx, rows as u64)?,
    )
}

/// From dlogw (rows): dz (+)= −dlogw[r] · z and dlogvar (+)= ½ dlogw[r], (rows, cols);
/// each written, or added when its flag is set.
#[allow(clippy::too_many_arguments)]
pub fn log_weight_backward(
    ctx: &GpuContext,
    dz: &GpuBuffer,
    dlogvar: &GpuBuffer,
    dlogw: &GpuBuffer,
    z: &GpuBuffer,
    rows: usize,
    cols: usize,
    accumulate_z: bool,
    accumulate_logvar: bool,
) -> Result<Dispatch> {
    check_nonzero("log_weight_backward", &[("rows", rows), ("cols", cols)])?;
    for (name, buffer) in [("dz", dz), ("dlogvar", dlogvar), ("z", z)] {
        check_len("log_weight_backward", name, buffer, rows * cols)?;
    }
    check_len("log_weight_backward", "dlogw", dlogw, rows)?;
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let constants = [
        ("ACCUMULATE_Z", flag(accumulate_z)),
        ("ACCUMULATE_LOGVAR", flag(accumulate_logvar)),
    ];
    let params = RowLossParams::new(rows, cols, 0.0);
    prepare(
        ctx,
        &BACKWARD,
        &constants,
        Some(bytes_of(&params)),
        &[dz, dlogvar, dlogw, z],
        grid_for_elements(ctx, rows * cols)?,
    )
}
