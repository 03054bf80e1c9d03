//! Host side of shaders/mse.wgsl: per-row squared error and its gradient.
//! CPU twin: src/cpu/mse.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, check_repeated, grid_for_elements, grid_for_groups, prepare,
    row_reduction_constants, Dispatch, Kernel, Shader, Slot, Traffic, GRID_LIB, LOSS_TARGET_LIB,
    ROW_LOSS_LIB,
};

pub const SHADER: Shader = Shader {
    name: "mse",
    source: include_str!("../../shaders/mse.wgsl"),
    includes: &[GRID_LIB, LOSS_TARGET_LIB, ROW_LOSS_LIB],
};

const FORWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "mse_forward",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (6, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
    ],
};
const BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "mse_backward",
    slots: &[
        (0, Slot::Uniform),
        (4, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
    ],
};
const FORWARD_BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "mse_forward_backward",
    slots: &[
        (0, Slot::Uniform),
        (6, Slot::ReadWrite),
        (4, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
    ],
};
const BACKWARD_ROWS: Kernel = Kernel {
    shader: &SHADER,
    entry: "mse_backward_rows",
    slots: &[
        (0, Slot::Uniform),
        (4, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (5, Slot::Read),
    ],
};

/// Uniforms shared by the per-row loss kernels (mse, bce, kl).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct RowLossParams {
    pub rows: u32,
    pub cols: u32,
    pub scale: f32,
    /// The row gradient's factor in mse/bce_backward_rows; 0 elsewhere.
    pub row_factor: f32,
}

impl RowLossParams {
    pub fn new(rows: usize, cols: usize, scale: f32) -> Self {
        RowLossParams {
            rows: rows as u32,
            cols: cols as u32,
            scale,
            row_factor: 0.0,
        }
    }
}

/// An error unless `target_repeat` ≥ 1 divides `rows` and `target` holds rows /
/// target_repeat rows of `cols`: each of its rows is the target of target_repeat consecutive
/// rows of the prediction (shaders/lib/loss_target.wgsl; 1 for a target as tall as the
/// prediction).
pub(crate) fn check_target(
    op: &'static str,
    target: &GpuBuffer,
    rows: usize,
    cols: usize,
    target_repeat: usize,
) -> Result<()> {
    check_repeated(op, "target", target, (rows, cols), target_repeat)
}

/// The pipeline constant of shaders/lib/loss_target.wgsl: prediction rows per target row.
pub(crate) fn target_repeat_constant(target_repeat: usize) -> (&'static str, f64) {
    ("TARGET_REPEAT", target_repeat as f64)
}

/// loss (rows) = Σ_c (x - target)², row r compared with the target's row r / target_repeat;
/// with `totals`, also totals (rows) += loss (a training step's loss whose rows other ops
/// read).
pub fn mse_forward(
    ctx: &GpuContext,
    (loss, totals): (&GpuBuffer, Option<&GpuBuffer>),
    x: &GpuBuffer,
    (target, target_repeat): (&GpuBuffer, usize),
    rows: usize,
    cols: usize,
) -> Result<Dispatch> {
    check_nonzero("mse_forward", &[("rows", rows), ("cols", cols)])?;
    check_len("mse_forward", "loss", loss, rows)?;
    if let Some(totals) = totals {
        check_len("mse_forward", "totals", totals, rows)?;
    }
    check_len("mse_forward", "x", x, rows * cols)?;
    check_target("mse_forward", target, rows, cols, target_repeat)?;
    let params = RowLossParams::new(rows, cols, 0.0);
    let [workgroup_size] = row_reduction_constants(ctx);
    prepare(
        ctx,
        &FORWARD,
        &[
            workgroup_size,
            target_repeat_constant(target_repeat),
            ("ADD_TO_TOTALS", if totals.is_some() { 1.0 } else { 0.0 }),
        ],
        Some(bytes_of(&params)),
        // Without totals their binding, never written, holds the absent output's placeholder.
        &[loss, totals.unwrap_or(&ctx.placeholder_out), x, target],
        grid_for_groups(ctx, rows as u64)?,
        Traffic::floats(
            rows * cols + rows / target_repeat * cols + totals.map_or(0, |_| rows),
            rows + totals.map_or(0, |_| rows),
        ),
    )
}

/// dx (rows, cols) = scale · 2 · (x - target); writes dx. Row r is compared with the
/// target's row r / target_repeat.
pub fn mse_backward(
    ctx: &GpuContext,
    dx: &GpuBuffer,
    x: &GpuBuffer,
    (target, target_repeat): (&GpuBuffer, usize),
    rows: usize,
    cols: usize,
    scale: f32,
) -> Result<Dispatch> {
    check_nonzero("mse_backward", &[("rows", rows), ("cols", cols)])?;
    for (name, buffer) in [("dx", dx), ("x", x)] {
        check_len("mse_backward", name, buffer, rows * cols)?;
    }
    check_target("mse_backward", target, rows, cols, target_repeat)?;
    let params = RowLossParams::new(rows, cols, scale);
    prepare(
        ctx,
        &BACKWARD,
        &[target_repeat_constant(target_repeat)],
        Some(bytes_of(&params)),
        &[dx, x, target],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(rows * cols + rows / target_repeat * cols, rows * cols),
    )
}

/// The backward when each row's loss also feeds another op: dx = (scale + row_factor ·
/// row_grad\[r\]) · ∂loss\[r\]/∂x. Row r is compared with the target's row r / target_repeat.
#[allow(clippy::too_many_arguments)]
pub fn mse_backward_rows(
    ctx: &GpuContext,
    dx: &GpuBuffer,
    x: &GpuBuffer,
    (target, target_repeat): (&GpuBuffer, usize),
    row_grad: &GpuBuffer,
    rows: usize,
    cols: usize,
    scale: f32,
    row_factor: f32,
) -> Result<Dispatch> {
    check_nonzero("mse_backward_rows", &[("rows", rows), ("cols", cols)])?;
    for (name, buffer) in [("dx", dx), ("x", x)] {
        check_len("mse_backward_rows", name, buffer, rows * cols)?;
    }
    check_target("mse_backward_rows", target, rows, cols, target_repeat)?;
    check_len("mse_backward_rows", "row_grad", row_grad, rows)?;
    let params = RowLossParams {
        row_factor,
        ..RowLossParams::new(rows, cols, scale)
    };
    prepare(
        ctx,
        &BACKWARD_ROWS,
        &[target_repeat_constant(target_repeat)],
        Some(bytes_of(&params)),
        &[dx, x, target, row_grad],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(
            rows * cols + rows / target_repeat * cols + rows,
            rows * cols,
        ),
    )
}

/// The loss and its gradient in one dispatch: totals (rows) += Σ_c mse(x, target) and
/// dx (rows, cols) = scale · 2 · (x - target); for a training step whose loss rows are only summed.
#[allow(clippy::too_many_arguments)]
pub fn mse_forward_backward(
    ctx: &GpuContext,
    totals: &GpuBuffer,
    dx: &GpuBuffer,
    x: &GpuBuffer,
    target: &GpuBuffer,
    rows: usize,
    cols: usize,
    scale: f32,
) -> Result<Dispatch> {
    let op = "mse_forward_backward";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    check_len(op, "totals", totals, rows)?;
    for (name, buffer) in [("dx", dx), ("x", x), ("target", target)] {
        check_len(op, name, buffer, rows * cols)?;
    }
    let params = RowLossParams::new(rows, cols, scale);
    prepare(
        ctx,
        &FORWARD_BACKWARD,
        &row_reduction_constants(ctx),
        Some(bytes_of(&params)),
        // totals are read and written (a running sum).
        &[totals, dx, x, target],
        grid_for_groups(ctx, rows as u64)?,
        Traffic::floats(2 * rows * cols + rows, rows * cols + rows),
    )
}
