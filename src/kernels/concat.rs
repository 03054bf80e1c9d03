//! Host side of shaders/concat.wgsl: matrices joined side by side, and the column slice that
//! is a concat's backward. CPU twin: src/cpu/concat.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::{shape_error, Result};
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "concat",
    source: include_str!("../../shaders/concat.wgsl"),
    includes: &[GRID_LIB],
};

const CONCAT: Kernel = Kernel {
    shader: &SHADER,
    entry: "concat_cols",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
    ],
};
const SLICE: Kernel = Kernel {
    shader: &SHADER,
    entry: "slice_cols",
    slots: &[(0, Slot::Uniform), (4, Slot::ReadWrite), (5, Slot::Read)],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols_a: u32,
    cols_b: u32,
    offset: u32,
}

/// y (rows, ca + cb) = [a (rows, ca) | b (rows, cb)].
pub fn concat_cols(
    ctx: &GpuContext,
    y: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    rows: usize,
    cols_a: usize,
    cols_b: usize,
) -> Result<Dispatch> {
    check_nonzero(
        "concat_cols",
        &[("rows", rows), ("cols_a", cols_a), ("cols_b", cols_b)],
    )?;
    check_len("concat_cols", "y", y, rows * (cols_a + cols_b))?;
    check_len("concat_cols", "a", a, rows * cols_a)?;
    check_len("concat_cols", "b", b, rows * cols_b)?;
    let params = Params {
        rows: rows as u32,
        cols_a: cols_a as u32,
        cols_b: cols_b as u32,
        offset: 0,
    };
    prepare(
        ctx,
        &CONCAT,
        &[],
        Some(bytes_of(&params)),
        &[y, a, b],
        grid_for_elements(ctx, rows * (cols_a + cols_b))?,
        Traffic::floats(rows * (cols_a + cols_b), rows * (cols_a + cols_b)),
    )
}

/// part (rows, cols) = whole (rows, width)\[:, offset..offset + cols\]; written, or added when
/// `accumulate`.
#[allow(clippy::too_many_arguments)]
pub fn slice_cols(
    ctx: &GpuContext,
    part: &GpuBuffer,
    whole: &GpuBuffer,
    rows: usize,
    cols: usize,
    width: usize,
    offset: usize,
    accumulate: bool,
) -> Result<Dispatch> {
    check_nonzero("slice_cols", &[("rows", rows), ("cols", cols)])?;
    if offset + cols > width {
        return Err(shape_error(
            "slice_cols",
            format!(
                "columns {offset}..{} of a matrix {width} wide",
                offset + cols
            ),
        ));
    }
    check_len("slice_cols", "part", part, rows * cols)?;
    check_len("slice_cols", "whole", whole, rows * width)?;
    let params = Params {
        rows: rows as u32,
        cols_a: cols as u32,
        cols_b: width as u32,
        offset: offset as u32,
    };
    let constants = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    prepare(
        ctx,
        &SLICE,
        &constants,
        Some(bytes_of(&params)),
        &[part, whole],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(rows * cols * (1 + usize::from(accumulate)), rows * cols),
    )
}
