//! Host side of shaders/repeat_rows.wgsl: each row repeated k times in a row, and the
//! backward that sums each group of k rows. CPU twin: src/cpu/repeat_rows.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "repeat_rows",
    source: include_str!("../../shaders/repeat_rows.wgsl"),
    includes: &[GRID_LIB],
};

const REPEAT: Kernel = Kernel {
    shader: &SHADER,
    entry: "repeat_rows",
    slots: &[(0, Slot::Uniform), (1, Slot::ReadWrite), (2, Slot::Read)],
};
const SUM_GROUPS: Kernel = Kernel {
    shader: &SHADER,
    entry: "sum_row_groups",
    slots: &[(0, Slot::Uniform), (3, Slot::ReadWrite), (4, Slot::Read)],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    k: u32,
    pad: u32,
}

fn params(op: &'static str, rows: usize, cols: usize, k: usize) -> Result<Params> {
    check_nonzero(op, &[("rows", rows), ("cols", cols), ("k", k)])?;
    Ok(Params {
        rows: rows as u32,
        cols: cols as u32,
        k: k as u32,
        pad: 0,
    })
}

/// y (rows·k, cols): rows r·k .. r·k + k of y are row r of x (rows, cols).
pub fn repeat_rows(
    ctx: &GpuContext,
    y: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
    k: usize,
) -> Result<Dispatch> {
    let params = params("repeat_rows", rows, cols, k)?;
    check_len("repeat_rows", "y", y, rows * k * cols)?;
    check_len("repeat_rows", "x", x, rows * cols)?;
    prepare(
        ctx,
        &REPEAT,
        &[],
        Some(bytes_of(&params)),
        &[y, x],
        grid_for_elements(ctx, rows * k * cols)?,
        Traffic::floats(rows * cols, rows * k * cols),
    )
}

/// dx (rows, cols) = Σ_{j<k} dy[r·k + j] (in order of j), written, or added when
/// `accumulate`; dy (rows·k, cols).
pub fn sum_row_groups(
    ctx: &GpuContext,
    dx: &GpuBuffer,
    dy: &GpuBuffer,
    rows: usize,
    cols: usize,
    k: usize,
    accumulate: bool,
) -> Result<Dispatch> {
    let params = params("sum_row_groups", rows, cols, k)?;
    check_len("sum_row_groups", "dx", dx, rows * cols)?;
    check_len("sum_row_groups", "dy", dy, rows * k * cols)?;
    let constants = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    prepare(
        ctx,
        &SUM_GROUPS,
        &constants,
        Some(bytes_of(&params)),
        &[dx, dy],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(rows * cols * (k + usize::from(accumulate)), rows * cols),
    )
}
