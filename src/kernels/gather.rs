//! Host side of shaders/gather.wgsl: a batch of rows gathered by index from a data set
//! resident on the GPU (bytes packed four to a word, or floats). CPU twin: src/cpu/gather.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "gather",
    source: include_str!("../../shaders/gather.wgsl"),
    includes: &[GRID_LIB],
};

const GATHER_U8: Kernel = Kernel {
    shader: &SHADER,
    entry: "gather_u8",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
    ],
};
const GATHER_F32: Kernel = Kernel {
    shader: &SHADER,
    entry: "gather_f32",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (4, Slot::Read),
    ],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    width: u32,
    data_rows: u32,
    _pad: u32,
}

fn check(
    op: &'static str,
    out: &GpuBuffer,
    indices: &GpuBuffer,
    rows: usize,
    width: usize,
) -> Result<Params> {
    check_nonzero(op, &[("rows", rows), ("width", width)])?;
    check_len(op, "out", out, rows * width)?;
    check_len(op, "indices", indices, rows)?;
    Ok(Params {
        rows: rows as u32,
        width: width as u32,
        data_rows: 0,
        _pad: 0,
    })
}

/// out (rows, width) = bytes of row indices[r] of `data` / 255; `data` holds `data_rows`
/// rows of `width` bytes packed four to a u32 word (see [`crate::gpu::pack_bytes`]).
pub fn gather_u8(
    ctx: &GpuContext,
    out: &GpuBuffer,
    indices: &GpuBuffer,
    data: &GpuBuffer,
    rows: usize,
    width: usize,
    data_rows: usize,
) -> Result<Dispatch> {
    let mut params = check("gather_u8", out, indices, rows, width)?;
    check_len("gather_u8", "data", data, (data_rows * width).div_ceil(4))?;
    params.data_rows = data_rows as u32;
    prepare(
        ctx,
        &GATHER_U8,
        &[],
        Some(bytes_of(&params)),
        &[&out.buffer, &indices.buffer, &data.buffer],
        grid_for_elements(ctx, rows * width)?,
    )
}

/// out (rows, width) = row indices[r] of `data` (data_rows, width).
pub fn gather_f32(
    ctx: &GpuContext,
    out: &GpuBuffer,
    indices: &GpuBuffer,
    data: &GpuBuffer,
    rows: usize,
    width: usize,
    data_rows: usize,
) -> Result<Dispatch> {
    let mut params = check("gather_f32", out, indices, rows, width)?;
    check_len("gather_f32", "data", data, data_rows * width)?;
    params.data_rows = data_rows as u32;
    prepare(
        ctx,
        &GATHER_F32,
        &[],
        Some(bytes_of(&params)),
        &[&out.buffer, &indices.buffer, &data.buffer],
        grid_for_elements(ctx, rows * width)?,
    )
}
