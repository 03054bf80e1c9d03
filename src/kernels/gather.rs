//! Host side of shaders/gather.wgsl: a batch of rows gathered by index from a data set
//! resident on the GPU (bytes packed four to a word, or floats), starting at the step
//! state's cursor in the epoch's index list. CPU twin: src/cpu/gather.rs.

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
        (5, Slot::Step),
    ],
};
/// gather_u8 with one thread per word of four bytes, for widths that are multiples of 4;
/// `out` is bound as vec4s (binding 6).
const GATHER_U8_WORDS: Kernel = Kernel {
    shader: &SHADER,
    entry: "gather_u8_words",
    slots: &[
        (0, Slot::Uniform),
        (6, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (5, Slot::Step),
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
        (5, Slot::Step),
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

/// Where a gathered batch comes from: the data set on the GPU and its shape, the epoch's
/// index list, and the step state whose cursor (word 1) says where the batch starts.
pub struct GatherSource<'a> {
    pub data: &'a GpuBuffer,
    pub data_rows: usize,
    pub width: usize,
    pub indices: &'a GpuBuffer,
    pub state: &'a GpuBuffer,
}

/// Prepares `kernel`, one thread per `per_thread` elements of out.
fn prepare_gather(
    ctx: &GpuContext,
    kernel: &Kernel,
    per_thread: usize,
    out: &GpuBuffer,
    source: &GatherSource,
    rows: usize,
    data_len: usize,
) -> Result<Dispatch> {
    let op = kernel.entry;
    check_nonzero(
        op,
        &[
            ("rows", rows),
            ("width", source.width),
            ("data_rows", source.data_rows),
        ],
    )?;
    check_len(op, "out", out, rows * source.width)?;
    check_len(op, "indices", source.indices, rows)?;
    check_len(op, "data", source.data, data_len)?;
    check_len(op, "state", source.state, 2)?;
    let params = Params {
        rows: rows as u32,
        width: source.width as u32,
        data_rows: source.data_rows as u32,
        _pad: 0,
    };
    let buffers = [out, source.indices, source.data, source.state];
    let threads = rows * source.width / per_thread;
    prepare(
        ctx,
        kernel,
        &[],
        Some(bytes_of(&params)),
        &buffers,
        grid_for_elements(ctx, threads)?,
    )
}

/// out (rows, width) = bytes of row indices\[cursor + r\] / 255; the data set holds
/// `data_rows` rows of `width` bytes packed four to a u32 word ([`crate::gpu::pack_bytes`]).
/// Widths that are multiples of 4 take one thread per word (gather_u8_words).
pub fn gather_u8(
    ctx: &GpuContext,
    out: &GpuBuffer,
    source: &GatherSource,
    rows: usize,
) -> Result<Dispatch> {
    // A word per thread when rows start on word boundaries (and out on 16 bytes).
    let (kernel, per_thread) = if source.width % 4 == 0 && out.offset % 16 == 0 {
        (&GATHER_U8_WORDS, 4)
    } else {
        (&GATHER_U8, 1)
    };
    prepare_gather(
        ctx,
        kernel,
        per_thread,
        out,
        source,
        rows,
        (source.data_rows * source.width).div_ceil(4),
    )
}

/// out (rows, width) = row indices\[cursor + r\] of the f32 data set (data_rows, width).
pub fn gather_f32(
    ctx: &GpuContext,
    out: &GpuBuffer,
    source: &GatherSource,
    rows: usize,
) -> Result<Dispatch> {
    prepare_gather(
        ctx,
        &GATHER_F32,
        1,
        out,
        source,
        rows,
        source.data_rows * source.width,
    )
}
