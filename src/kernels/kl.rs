//! Host side of shaders/kl.wgsl: KL(N(μ, σ²) ‖ N(0, 1)) per row, and its gradient. μ and
//! logvar come as one tensor, stats (rows, 2·cols): μ | logvar. CPU twin: src/cpu/kl.rs.

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::mse::RowLossParams;
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, grid_for_groups, prepare, row_reduction_constants,
    Dispatch, Kernel, Shader, Slot, Traffic, GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "kl",
    source: include_str!("../../shaders/kl.wgsl"),
    includes: &[GRID_LIB],
};

const FORWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "kl_forward",
    slots: &[(0, Slot::Uniform), (1, Slot::ReadWrite), (2, Slot::Read)],
};
const BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "kl_backward",
    slots: &[(0, Slot::Uniform), (3, Slot::ReadWrite), (2, Slot::Read)],
};

/// kl (rows) = -½ Σ_c (1 + logvar - μ² - e^logvar), from stats (rows, 2·cols): μ | logvar.
pub fn kl_forward(
    ctx: &GpuContext,
    kl: &GpuBuffer,
    stats: &GpuBuffer,
    rows: usize,
    cols: usize,
) -> Result<Dispatch> {
    check_nonzero("kl_forward", &[("rows", rows), ("cols", cols)])?;
    check_len("kl_forward", "kl", kl, rows)?;
    check_len("kl_forward", "stats", stats, rows * 2 * cols)?;
    let params = RowLossParams::new(rows, cols, 0.0);
    prepare(
        ctx,
        &FORWARD,
        &row_reduction_constants(ctx),
        Some(bytes_of(&params)),
        &[kl, stats],
        grid_for_groups(ctx, rows as u64)?,
        Traffic::floats(2 * rows * cols, rows),
    )
}

/// dstats (rows, 2·cols) = [scale · μ | scale · ½ (e^logvar - 1)]; both halves written, or
/// added to when `accumulate`.
pub fn kl_backward(
    ctx: &GpuContext,
    dstats: &GpuBuffer,
    stats: &GpuBuffer,
    rows: usize,
    cols: usize,
    scale: f32,
    accumulate: bool,
) -> Result<Dispatch> {
    check_nonzero("kl_backward", &[("rows", rows), ("cols", cols)])?;
    check_len("kl_backward", "dstats", dstats, rows * 2 * cols)?;
    check_len("kl_backward", "stats", stats, rows * 2 * cols)?;
    let params = RowLossParams::new(rows, cols, scale);
    let constants = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    prepare(
        ctx,
        &BACKWARD,
        &constants,
        Some(bytes_of(&params)),
        &[dstats, stats],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(
            2 * rows * cols * (1 + usize::from(accumulate)),
            2 * rows * cols,
        ),
    )
}
