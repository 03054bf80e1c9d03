//! Host side of shaders/philox.wgsl: raw Philox4x32-10 words, for known-answer tests and
//! random bits. CPU twin: src/cpu/philox.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB, PHILOX_LIB,
};

pub const SHADER: Shader = Shader {
    name: "philox",
    source: include_str!("../../shaders/philox.wgsl"),
    includes: &[PHILOX_LIB, GRID_LIB],
};

const FILL: Kernel = Kernel {
    shader: &SHADER,
    entry: "philox_fill",
    slots: &[(0, Slot::Uniform), (1, Slot::ReadWrite)],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n_words: u32,
    key: [u32; 2],
    _pad: u32,
    counter: [u32; 4],
}

/// out (n_words) u32: word 4g+j is word j of philox4x32_10((counter\[0\] + g, counter\[1..\]), key).
pub fn philox_fill(
    ctx: &GpuContext,
    out: &GpuBuffer,
    n_words: usize,
    counter: [u32; 4],
    key: [u32; 2],
) -> Result<Dispatch> {
    check_nonzero("philox_fill", &[("n_words", n_words)])?;
    check_len("philox_fill", "out", out, n_words)?;
    let params = Params {
        n_words: n_words as u32,
        key,
        _pad: 0,
        counter,
    };
    prepare(
        ctx,
        &FILL,
        &[],
        Some(bytes_of(&params)),
        &[out],
        grid_for_elements(ctx, n_words.div_ceil(4))?,
        Traffic::floats(0, n_words),
    )
}
