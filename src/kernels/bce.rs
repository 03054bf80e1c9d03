//! Host side of shaders/bce.wgsl: binary cross-entropy from logits, per row, and its
//! gradient. CPU twin: src/cpu/bce.rs.

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::mse::{check_target, target_repeat_constant, RowLossParams};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, grid_for_groups, prepare, row_reduction_constants,
    Dispatch, Kernel, Shader, Slot, Traffic, GRID_LIB, LOSS_TARGET_LIB, ROW_LOSS_LIB,
};

pub const SHADER: Shader = Shader {
    name: "bce",
    source: include_str!("../../shaders/bce.wgsl"),
    includes: &[GRID_LIB, LOSS_TARGET_LIB, ROW_LOSS_LIB],
};

const FORWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "bce_forward",
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
    entry: "bce_backward",
    slots: &[
        (0, Slot::Uniform),
        (4, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
    ],
};
const FORWARD_BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "bce_forward_backward",
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
    entry: "bce_backward_rows",
    slots: &[
        (0, Slot::Uniform),
        (4, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (5, Slot::Read),
    ],
};

/// loss (rows) = Σ_c bce(logits, target), row r compared with the target's row r /
/// target_repeat; with `totals`, also totals (rows) += loss (a training step's loss whose
/// rows other ops read).
pub fn bce_forward(
    ctx: &GpuContext,
    (loss, totals): (&GpuBuffer, Option<&GpuBuffer>),
    logits: &GpuBuffer,
    (target, target_repeat): (&GpuBuffer, usize),
    rows: usize,
    cols: usize,
) -> Result<Dispatch> {
    check_nonzero("bce_forward", &[("rows", rows), ("cols", cols)])?;
    check_len("bce_forward", "loss", loss, rows)?;
    if let Some(totals) = totals {
        check_len("bce_forward", "totals", totals, rows)?;
    }
    check_len("bce_forward", "logits", logits, rows * cols)?;
    check_target("bce_forward", target, rows, cols, target_repeat)?;
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
        &[loss, totals.unwrap_or(&ctx.placeholder_out), logits, target],
        grid_for_groups(ctx, rows as u64)?,
        Traffic::floats(
            rows * cols + rows / target_repeat * cols + totals.map_or(0, |_| rows),
            rows + totals.map_or(0, |_| rows),
        ),
    )
}

/// dlogits (rows, cols) = scale · (σ(logits) - target); writes dlogits. Row r is compared
/// with the target's row r / target_repeat.
pub fn bce_backward(
    ctx: &GpuContext,
    dlogits: &GpuBuffer,
    logits: &GpuBuffer,
    (target, target_repeat): (&GpuBuffer, usize),
    rows: usize,
    cols: usize,
    scale: f32,
) -> Result<Dispatch> {
    check_nonzero("bce_backward", &[("rows", rows), ("cols", cols)])?;
    for (name, buffer) in [("dlogits", dlogits), ("logits", logits)] {
        check_len("bce_backward", name, buffer, rows * cols)?;
    }
    check_target("bce_backward", target, rows, cols, target_repeat)?;
    let params = RowLossParams::new(rows, cols, scale);
    prepare(
        ctx,
        &BACKWARD,
        &[target_repeat_constant(target_repeat)],
        Some(bytes_of(&params)),
        &[dlogits, logits, target],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(rows * cols + rows / target_repeat * cols, rows * cols),
    )
}

/// The backward when each row's loss also feeds another op: dlogits = (scale + row_factor ·
/// row_grad\[r\]) · ∂loss\[r\]/∂logits. Row r is compared with the target's row r /
/// target_repeat.
#[allow(clippy::too_many_arguments)]
pub fn bce_backward_rows(
    ctx: &GpuContext,
    dlogits: &GpuBuffer,
    logits: &GpuBuffer,
    (target, target_repeat): (&GpuBuffer, usize),
    row_grad: &GpuBuffer,
    rows: usize,
    cols: usize,
    scale: f32,
    row_factor: f32,
) -> Result<Dispatch> {
    check_nonzero("bce_backward_rows", &[("rows", rows), ("cols", cols)])?;
    for (name, buffer) in [("dlogits", dlogits), ("logits", logits)] {
        check_len("bce_backward_rows", name, buffer, rows * cols)?;
    }
    check_target("bce_backward_rows", target, rows, cols, target_repeat)?;
    check_len("bce_backward_rows", "row_grad", row_grad, rows)?;
    let params = RowLossParams {
        row_factor,
        ..RowLossParams::new(rows, cols, scale)
    };
    prepare(
        ctx,
        &BACKWARD_ROWS,
        &[target_repeat_constant(target_repeat)],
        Some(bytes_of(&params)),
        &[dlogits, logits, target, row_grad],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(
            rows * cols + rows / target_repeat * cols + rows,
            rows * cols,
        ),
    )
}

/// The loss and its gradient in one dispatch: totals (rows) += Σ_c bce(logits, target) and
/// dlogits (rows, cols) = scale · (σ(logits) - target); for a training step whose loss rows are only summed.
#[allow(clippy::too_many_arguments)]
pub fn bce_forward_backward(
    ctx: &GpuContext,
    totals: &GpuBuffer,
    dlogits: &GpuBuffer,
    logits: &GpuBuffer,
    target: &GpuBuffer,
    rows: usize,
    cols: usize,
    scale: f32,
) -> Result<Dispatch> {
    let op = "bce_forward_backward";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    check_len(op, "totals", totals, rows)?;
    for (name, buffer) in [("dlogits", dlogits), ("logits", logits), ("target", target)] {
        check_len(op, name, buffer, rows * cols)?;
    }
    let params = RowLossParams::new(rows, cols, scale);
    prepare(
        ctx,
        &FORWARD_BACKWARD,
        &row_reduction_constants(ctx),
        Some(bytes_of(&params)),
        // totals are read and written (a running sum).
        &[totals, dlogits, logits, target],
        grid_for_groups(ctx, rows as u64)?,
        Traffic::floats(2 * rows * cols + rows, rows * cols + rows),
    )
}
