//! Host side of shaders/reduce.wgsl: row sums, column sums (the bias gradient) and the
//! whole-buffer sum. CPU twin: src/cpu/reduce.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_groups, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "reduce",
    source: include_str!("../../shaders/reduce.wgsl"),
    includes: &[GRID_LIB],
};

const SLOTS: &[(u32, Slot)] = &[(0, Slot::Uniform), (1, Slot::ReadWrite), (2, Slot::Read)];
const SUM_ROWS: Kernel = Kernel {
    shader: &SHADER,
    entry: "sum_rows",
    slots: SLOTS,
};
const SUM_COLS: Kernel = Kernel {
    shader: &SHADER,
    entry: "sum_cols",
    slots: SLOTS,
};
const SUM_ALL: Kernel = Kernel {
    shader: &SHADER,
    entry: "sum_all",
    slots: SLOTS,
};

/// Columns per workgroup of `sum_cols` (COL_LANES in the shader).
const COL_LANES: u64 = 64;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad: u32,
}

fn params(rows: usize, cols: usize) -> Params {
    Params {
        rows: rows as u32,
        cols: cols as u32,
        scale: 1.0,
        _pad: 0,
    }
}

/// out (rows) = Σ_c x\[r, c\].
pub fn sum_rows(
    ctx: &GpuContext,
    out: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
) -> Result<Dispatch> {
    check_nonzero("sum_rows", &[("rows", rows), ("cols", cols)])?;
    check_len("sum_rows", "out", out, rows)?;
    check_len("sum_rows", "x", x, rows * cols)?;
    let grid = grid_for_groups(ctx, rows as u64)?;
    prepare(
        ctx,
        &SUM_ROWS,
        &[],
        Some(bytes_of(&params(rows, cols))),
        &[out, x],
        grid,
        Traffic::floats(rows * cols, rows),
    )
}

/// out (cols) = Σ_r x\[r, c\]: the bias gradient.
pub fn sum_cols(
    ctx: &GpuContext,
    out: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
) -> Result<Dispatch> {
    check_nonzero("sum_cols", &[("rows", rows), ("cols", cols)])?;
    check_len("sum_cols", "out", out, cols)?;
    check_len("sum_cols", "x", x, rows * cols)?;
    let grid = grid_for_groups(ctx, (cols as u64).div_ceil(COL_LANES))?;
    prepare(
        ctx,
        &SUM_COLS,
        &[],
        Some(bytes_of(&params(rows, cols))),
        &[out, x],
        grid,
        Traffic::floats(rows * cols, cols),
    )
}

/// out (1) = scale · Σ_i x\[i\] over the first `n` elements of x, added to out when
/// `accumulate` (a running total kept on the GPU).
pub fn sum_all(
    ctx: &GpuContext,
    out: &GpuBuffer,
    x: &GpuBuffer,
    n: usize,
    scale: f32,
    accumulate: bool,
) -> Result<Dispatch> {
    check_nonzero("sum_all", &[("n", n)])?;
    check_len("sum_all", "out", out, 1)?;
    check_len("sum_all", "x", x, n)?;
    let params = Params {
        scale,
        ..params(n, 1)
    };
    let constants = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    prepare(
        ctx,
        &SUM_ALL,
        &constants,
        Some(bytes_of(&params)),
        &[out, x],
        [1, 1, 1],
        Traffic::floats(n + usize::from(accumulate), 1),
    )
}
