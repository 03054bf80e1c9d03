//! Host side of shaders/reparameterize.wgsl: z = μ + e^(½·logvar)·ε with ε from Philox on the
//! GPU, and its backward. CPU twin: src/cpu/reparameterize.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
pub use crate::cpu::reparameterize::NoiseKey;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, GRID_LIB,
    PHILOX_LIB,
};

pub const SHADER: Shader = Shader {
    name: "reparameterize",
    source: include_str!("../../shaders/reparameterize.wgsl"),
    includes: &[PHILOX_LIB, GRID_LIB],
};

const FORWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "reparameterize_forward",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::ReadWrite),
        (3, Slot::Read),
        (4, Slot::Read),
        (5, Slot::Step),
    ],
};
const BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "reparameterize_backward",
    slots: &[
        (0, Slot::Uniform),
        (6, Slot::ReadWrite),
        (7, Slot::ReadWrite),
        (8, Slot::Read),
        (4, Slot::Read),
        (9, Slot::Read),
    ],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
}

/// z, eps (n) from mu, logvar (n); ε keyed by (seed, step[0], stream, element). `step` is a
/// u32 buffer read at the recorded dynamic offset (a step state, kernels/step.rs), so each
/// step reads its own without rebuilding the dispatch.
#[allow(clippy::too_many_arguments)]
pub fn reparameterize_forward(
    ctx: &GpuContext,
    z: &GpuBuffer,
    eps: &GpuBuffer,
    mu: &GpuBuffer,
    logvar: &GpuBuffer,
    step: &GpuBuffer,
    n: usize,
    seed: u64,
    stream: u32,
) -> Result<Dispatch> {
    check_nonzero("reparameterize_forward", &[("n", n)])?;
    for (name, buffer) in [("z", z), ("eps", eps), ("mu", mu), ("logvar", logvar)] {
        check_len("reparameterize_forward", name, buffer, n)?;
    }
    check_len("reparameterize_forward", "step", step, 1)?;
    let params = Params {
        n: n as u32,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        stream,
    };
    let buffers = [z, eps, mu, logvar, step];
    prepare(
        ctx,
        &FORWARD,
        &[],
        Some(bytes_of(&params)),
        &buffers,
        grid_for_elements(ctx, n.div_ceil(4))?,
    )
}

/// dmu = dz, dlogvar = dz · ε · ½ e^(½·logvar); each written, or added when its flag is set.
#[allow(clippy::too_many_arguments)]
pub fn reparameterize_backward(
    ctx: &GpuContext,
    dmu: &GpuBuffer,
    dlogvar: &GpuBuffer,
    eps: &GpuBuffer,
    logvar: &GpuBuffer,
    dz: &GpuBuffer,
    n: usize,
    accumulate_mu: bool,
    accumulate_logvar: bool,
) -> Result<Dispatch> {
    check_nonzero("reparameterize_backward", &[("n", n)])?;
    for (name, buffer) in [
        ("dmu", dmu),
        ("dlogvar", dlogvar),
        ("eps", eps),
        ("logvar", logvar),
        ("dz", dz),
    ] {
        check_len("reparameterize_backward", name, buffer, n)?;
    }
    let params = Params {
        n: n as u32,
        seed_lo: 0,
        seed_hi: 0,
        stream: 0,
    };
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let constants = [
        ("ACCUMULATE_MU", flag(accumulate_mu)),
        ("ACCUMULATE_LOGVAR", flag(accumulate_logvar)),
    ];
    let buffers = [dmu, dlogvar, eps, logvar, dz];
    prepare(
        ctx,
        &BACKWARD,
        &constants,
        Some(bytes_of(&params)),
        &buffers,
        grid_for_elements(ctx, n)?,
    )
}
