//! Host side of shaders/l1.wgsl: the L1 penalty per row and its gradient.
//! CPU twin: src/cpu/l1.rs.

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::mse::RowLossParams;
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, grid_for_groups, prepare, row_reduction_constants,
    Dispatch, Kernel, Shader, Slot, Traffic, GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "l1",
    source: include_str!("../../shaders/l1.wgsl"),
    includes: &[GRID_LIB],
};

const FORWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "l1_forward",
    slots: &[(0, Slot::Uniform), (1, Slot::ReadWrite), (2, Slot::Read)],
};
const BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "l1_backward",
    slots: &[(0, Slot::Uniform), (3, Slot::ReadWrite), (2, Slot::Read)],
};

const FORWARD_BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "l1_forward_backward",
    slots: &[
        (0, Slot::Uniform),
        (4, Slot::ReadWrite),
        (3, Slot::ReadWrite),
        (2, Slot::Read),
    ],
};

/// loss (rows) = Σ_c |x\[r, c\]|.
pub fn l1_forward(
    ctx: &GpuContext,
    loss: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
) -> Result<Dispatch> {
    check_nonzero("l1_forward", &[("rows", rows), ("cols", cols)])?;
    check_len("l1_forward", "loss", loss, rows)?;
    check_len("l1_forward", "x", x, rows * cols)?;
    let params = RowLossParams::new(rows, cols, 0.0);
    prepare(
        ctx,
        &FORWARD,
        &row_reduction_constants(ctx),
        Some(bytes_of(&params)),
        &[loss, x],
        grid_for_groups(ctx, rows as u64)?,
        Traffic::floats(rows * cols, rows),
    )
}

/// dx (rows, cols) = scale · sign(x); written, or added when `accumulate`.
pub fn l1_backward(
    ctx: &GpuContext,
    dx: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
    scale: f32,
    accumulate: bool,
) -> Result<Dispatch> {
    check_nonzero("l1_backward", &[("rows", rows), ("cols", cols)])?;
    check_len("l1_backward", "dx", dx, rows * cols)?;
    check_len("l1_backward", "x", x, rows * cols)?;
    let params = RowLossParams::new(rows, cols, scale);
    let constants = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    prepare(
        ctx,
        &BACKWARD,
        &constants,
        Some(bytes_of(&params)),
        &[dx, x],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(rows * cols * (1 + usize::from(accumulate)), rows * cols),
    )
}

/// totals (rows) += Σ_c |x\[r, c\]| and dx (rows, cols) = scale · sign(x), written, in one
/// dispatch: a training step's penalty whose rows are only summed.
pub fn l1_forward_backward(
    ctx: &GpuContext,
    totals: &GpuBuffer,
    dx: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
    scale: f32,
) -> Result<Dispatch> {
    let op = "l1_forward_backward";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    check_len(op, "totals", totals, rows)?;
    check_len(op, "dx", dx, rows * cols)?;
    check_len(op, "x", x, rows * cols)?;
    let params = RowLossParams::new(rows, cols, scale);
    prepare(
        ctx,
        &FORWARD_BACKWARD,
        &row_reduction_constants(ctx),
        Some(bytes_of(&params)),
        &[totals, dx, x],
        grid_for_groups(ctx, rows as u64)?,
        Traffic::floats(rows * cols + rows, rows * cols + rows),
    )
}
