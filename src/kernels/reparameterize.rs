//! Host side of shaders/reparameterize.wgsl: z = μ + e^(½·logvar)·ε with ε from Philox on the
//! GPU, and its backward. μ and logvar come as one tensor, stats (rows, 2·cols): μ | logvar.
//! CPU twin: src/cpu/reparameterize.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
pub use crate::cpu::reparameterize::NoiseKey;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB, PHILOX_LIB,
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
        (4, Slot::Step),
    ],
};
const BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "reparameterize_backward",
    slots: &[
        (0, Slot::Uniform),
        (5, Slot::ReadWrite),
        (6, Slot::Read),
        (3, Slot::Read),
        (7, Slot::Read),
    ],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    _pad: [u32; 3],
}

impl Params {
    fn new(rows: usize, cols: usize, seed: u64, stream: u32) -> Self {
        Params {
            rows: rows as u32,
            cols: cols as u32,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            stream,
            _pad: [0; 3],
        }
    }
}

/// z, eps (rows, cols) from stats (rows, 2·cols): μ | logvar; ε keyed by (seed, step\[0\],
/// stream, element r·cols + c). `step` is a u32 buffer read at the recorded dynamic offset (a
/// step state, kernels/step.rs), so each step reads its own without rebuilding the dispatch.
#[allow(clippy::too_many_arguments)]
pub fn reparameterize_forward(
    ctx: &GpuContext,
    z: &GpuBuffer,
    eps: &GpuBuffer,
    stats: &GpuBuffer,
    step: &GpuBuffer,
    rows: usize,
    cols: usize,
    seed: u64,
    stream: u32,
) -> Result<Dispatch> {
    let op = "reparameterize_forward";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    check_len(op, "z", z, rows * cols)?;
    check_len(op, "eps", eps, rows * cols)?;
    check_len(op, "stats", stats, rows * 2 * cols)?;
    check_len(op, "step", step, 1)?;
    let params = Params::new(rows, cols, seed, stream);
    prepare(
        ctx,
        &FORWARD,
        &[],
        Some(bytes_of(&params)),
        &[z, eps, stats, step],
        grid_for_elements(ctx, (rows * cols).div_ceil(4))?,
        Traffic::floats(2 * rows * cols, 2 * rows * cols),
    )
}

/// dstats (rows, 2·cols) = [dz | dz · ε · ½ e^(½·logvar)]; both halves written, or both added
/// to when `accumulate`.
#[allow(clippy::too_many_arguments)]
pub fn reparameterize_backward(
    ctx: &GpuContext,
    dstats: &GpuBuffer,
    eps: &GpuBuffer,
    stats: &GpuBuffer,
    dz: &GpuBuffer,
    rows: usize,
    cols: usize,
    accumulate: bool,
) -> Result<Dispatch> {
    let op = "reparameterize_backward";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    check_len(op, "dstats", dstats, rows * 2 * cols)?;
    check_len(op, "eps", eps, rows * cols)?;
    check_len(op, "stats", stats, rows * 2 * cols)?;
    check_len(op, "dz", dz, rows * cols)?;
    let params = Params::new(rows, cols, 0, 0);
    let constants = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    prepare(
        ctx,
        &BACKWARD,
        &constants,
        Some(bytes_of(&params)),
        &[dstats, eps, stats, dz],
        grid_for_elements(ctx, rows * cols)?,
        // Reads ε, the logvar half of stats and dz (and dstats when adding).
        Traffic::floats(
            3 * rows * cols + 2 * rows * cols * usize::from(accumulate),
            2 * rows * cols,
        ),
    )
}
