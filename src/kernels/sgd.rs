//! Host side of shaders/sgd.wgsl: one SGD-with-momentum update over a flat parameter buffer.
//! CPU twin: src/cpu/sgd.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
pub use crate::cpu::sgd::SgdConfig;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "sgd",
    source: include_str!("../../shaders/sgd.wgsl"),
    includes: &[GRID_LIB],
};

const STEP: Kernel = Kernel {
    shader: &SHADER,
    entry: "sgd_step",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::ReadWrite),
        (3, Slot::Read),
        (4, Slot::Read),
    ],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    nesterov: u32,
    _pad: [u32; 2],
}

/// Updates param and momentum_buffer (n) from grad (n) at the step held in `step`.
#[allow(clippy::too_many_arguments)]
pub fn sgd_step(
    ctx: &GpuContext,
    param: &GpuBuffer,
    momentum_buffer: &GpuBuffer,
    grad: &GpuBuffer,
    step: &GpuBuffer,
    n: usize,
    config: &SgdConfig,
) -> Result<Dispatch> {
    config.check()?;
    check_nonzero("sgd_step", &[("n", n)])?;
    for (name, buffer) in [
        ("param", param),
        ("momentum_buffer", momentum_buffer),
        ("grad", grad),
    ] {
        check_len("sgd_step", name, buffer, n)?;
    }
    check_len("sgd_step", "step", step, 1)?;
    let params = Params {
        n: n as u32,
        lr: config.lr,
        momentum: config.momentum,
        dampening: config.dampening,
        weight_decay: config.weight_decay,
        nesterov: u32::from(config.nesterov),
        _pad: [0; 2],
    };
    let buffers = [param, momentum_buffer, grad, step];
    prepare(
        ctx,
        &STEP,
        &[],
        Some(bytes_of(&params)),
        &buffers,
        grid_for_elements(ctx, n)?,
        // Reads param, momentum_buffer, grad; writes param, momentum_buffer.
        Traffic::floats(3 * n, 2 * n),
    )
}
