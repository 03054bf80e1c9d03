//! Host side of shaders/corrupt.wgsl: the denoising autoencoder's input corruption, drawn
//! from Philox on the GPU at every step. CPU twin: src/cpu/corrupt.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
pub use crate::cpu::corrupt::Noise;
use crate::cpu::reparameterize::NoiseKey;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    CORRUPT_LIB, GRID_LIB, PHILOX_LIB,
};

pub const SHADER: Shader = Shader {
    name: "corrupt",
    source: include_str!("../../shaders/corrupt.wgsl"),
    includes: &[PHILOX_LIB, GRID_LIB, CORRUPT_LIB],
};

const CORRUPT: Kernel = Kernel {
    shader: &SHADER,
    entry: "corrupt",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Step),
    ],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    kind: u32,
    amount: f32,
    _pad: [u32; 2],
}

/// y (n) = `noise` applied to the clean x (n), keyed by (`key.seed`, step\[0\], `key.stream`,
/// element); `key.step` is unused: the step is read from the one-element u32 buffer `step`.
pub fn corrupt(
    ctx: &GpuContext,
    y: &GpuBuffer,
    x: &GpuBuffer,
    step: &GpuBuffer,
    n: usize,
    noise: Noise,
    key: NoiseKey,
) -> Result<Dispatch> {
    check_nonzero("corrupt", &[("n", n)])?;
    noise.check()?;
    check_len("corrupt", "y", y, n)?;
    check_len("corrupt", "x", x, n)?;
    check_len("corrupt", "step", step, 1)?;
    let (kind, amount) = noise.kind_and_amount();
    let params = Params {
        n: n as u32,
        seed_lo: key.seed as u32,
        seed_hi: (key.seed >> 32) as u32,
        stream: key.stream,
        kind,
        amount,
        _pad: [0; 2],
    };
    prepare(
        ctx,
        &CORRUPT,
        &[],
        Some(bytes_of(&params)),
        &[y, x, step],
        grid_for_elements(ctx, n.div_ceil(4))?,
        Traffic::floats(n, n),
    )
}
