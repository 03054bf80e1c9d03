//! Host side of shaders/adam.wgsl: one Adam update over a flat parameter buffer.
//! CPU twin: src/cpu/adam.rs.

use bytemuck::{Pod, Zeroable};

pub use crate::cpu::adam::AdamConfig;
use crate::cpu::check_nonzero;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "adam",
    source: include_str!("../../shaders/adam.wgsl"),
    includes: &[GRID_LIB, ADAM_UPDATE_LIB],
};

/// shaders/lib/adam_update.wgsl: the update of four parameters, shared with the grouped
/// weight gradients' fused form.
pub const ADAM_UPDATE_LIB: &str = include_str!("../../shaders/lib/adam_update.wgsl");

const STEP: Kernel = Kernel {
    shader: &SHADER,
    entry: "adam_step",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::ReadWrite),
        (3, Slot::ReadWrite),
        (4, Slot::Read),
        (5, Slot::Read),
        (6, Slot::Step),
    ],
};

const STEP_VEC4: Kernel = Kernel {
    shader: &SHADER,
    entry: "adam_step_vec4",
    slots: &[
        (0, Slot::Uniform),
        (7, Slot::ReadWrite),
        (8, Slot::ReadWrite),
        (9, Slot::ReadWrite),
        (10, Slot::Read),
        (5, Slot::Read),
        (6, Slot::Step),
    ],
};

/// Threads of an Adam dispatch on a CPU adapter, each looping over its share of the
/// parameters. On lavapipe a thread per four parameters (638 workgroups for the VAE's 653k)
/// took 2.0–2.1 ms; 1024 to 16384 threads took 1.47–1.57 ms (4096 to 16384 the fastest),
/// 512 threads 1.78 ms (BENCHMARKS.md, session 14).
pub const CPU_ADAPTER_THREADS: usize = 8192;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    _pad: [u32; 3],
}

/// Updates param, m, v (n) from grad (n) at the step t = state\[0\], four parameters at a
/// time when n is a multiple of 4, a thread for each (at most [`CPU_ADAPTER_THREADS`] on a CPU
/// adapter, each looping) (state: the two-word u32 step state, see kernels::step). `step_scalars` holds [`AdamConfig::step_scalar_table`]
/// for every step the run will take.
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    ctx: &GpuContext,
    param: &GpuBuffer,
    m: &GpuBuffer,
    v: &GpuBuffer,
    grad: &GpuBuffer,
    step_scalars: &GpuBuffer,
    state: &GpuBuffer,
    n: usize,
    config: &AdamConfig,
) -> Result<Dispatch> {
    config.check()?;
    check_nonzero("adam_step", &[("n", n)])?;
    for (name, buffer) in [("param", param), ("m", m), ("v", v), ("grad", grad)] {
        check_len("adam_step", name, buffer, n)?;
    }
    check_len("adam_step", "step_scalars", step_scalars, 2)?;
    check_len("adam_step", "state", state, 2)?;
    let params = Params {
        n: n as u32,
        beta1: config.beta1,
        beta2: config.beta2,
        eps: config.eps,
        weight_decay: config.weight_decay,
        _pad: [0; 3],
    };
    let buffers = [param, m, v, grad, step_scalars, state];
    // Four parameters at a time where n allows (a plan's flat buffer always does).
    let (kernel, units) = if n.is_multiple_of(4) {
        (&STEP_VEC4, n / 4)
    } else {
        (&STEP, n)
    };
    let threads = if ctx.info.device_type == wgpu::DeviceType::Cpu {
        units.min(CPU_ADAPTER_THREADS)
    } else {
        units
    };
    prepare(
        ctx,
        kernel,
        &[],
        Some(bytes_of(&params)),
        &buffers,
        grid_for_elements(ctx, threads)?,
        // Reads param, m, v, grad; writes param, m, v.
        Traffic::floats(4 * n, 3 * n),
    )
}
