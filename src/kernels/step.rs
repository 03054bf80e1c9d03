//! Host side of shaders/step.wgsl: the two-word step state [step, cursor] on the GPU and
//! the dispatch that advances it. CPU twin: src/cpu/step.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{bytes_of, check_len, prepare, Dispatch, Kernel, Shader, Slot};

pub const SHADER: Shader = Shader {
    name: "step",
    source: include_str!("../../shaders/step.wgsl"),
    includes: &[],
};

const ADVANCE: Kernel = Kernel {
    shader: &SHADER,
    entry: "advance_step",
    slots: &[(0, Slot::Uniform), (1, Slot::ReadWrite)],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    batch: u32,
    _pad: [u32; 3],
}

/// state (2) = [step + 1, cursor + batch].
pub fn advance_step(ctx: &GpuContext, state: &GpuBuffer, batch: usize) -> Result<Dispatch> {
    check_nonzero("advance_step", &[("batch", batch)])?;
    check_len("advance_step", "state", state, 2)?;
    let params = Params {
        batch: batch as u32,
        _pad: [0; 3],
    };
    prepare(
        ctx,
        &ADVANCE,
        &[],
        Some(bytes_of(&params)),
        &[state],
        [1, 1, 1],
    )
}
