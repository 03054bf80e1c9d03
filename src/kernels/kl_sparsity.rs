//! Host side of shaders/kl_sparsity.wgsl: the sparse autoencoder's KL sparsity penalty
//! toward a target mean activation ρ, and its gradient. CPU twin: src/cpu/kl_sparsity.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
pub use crate::cpu::kl_sparsity::check_rho;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "kl_sparsity",
    source: include_str!("../../shaders/kl_sparsity.wgsl"),
    includes: &[GRID_LIB],
};

const FORWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "kl_sparsity_forward",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::ReadWrite),
        (3, Slot::Read),
    ],
};
const BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "kl_sparsity_backward",
    slots: &[(0, Slot::Uniform), (4, Slot::ReadWrite), (5, Slot::Read)],
};

const FORWARD_BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "kl_sparsity_forward_backward",
    slots: &[
        (0, Slot::Uniform),
        (6, Slot::ReadWrite),
        (2, Slot::ReadWrite),
        (4, Slot::ReadWrite),
        (3, Slot::Read),
    ],
};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    rho: f32,
}

fn params(rows: usize, cols: usize, scale: f32, rho: f32) -> Params {
    Params {
        rows: rows as u32,
        cols: cols as u32,
        scale,
        rho,
    }
}

/// rho_hat (cols) = clamped column means of x (rows, cols); loss (rows) = Σ_c KL(ρ ‖ ρ̂_c)
/// in every row. One workgroup.
pub fn kl_sparsity_forward(
    ctx: &GpuContext,
    loss: &GpuBuffer,
    rho_hat: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
    rho: f32,
) -> Result<Dispatch> {
    check_nonzero("kl_sparsity_forward", &[("rows", rows), ("cols", cols)])?;
    check_rho(rho)?;
    check_len("kl_sparsity_forward", "loss", loss, rows)?;
    check_len("kl_sparsity_forward", "rho_hat", rho_hat, cols)?;
    check_len("kl_sparsity_forward", "x", x, rows * cols)?;
    let params = params(rows, cols, 0.0, rho);
    prepare(
        ctx,
        &FORWARD,
        &[],
        Some(bytes_of(&params)),
        &[loss, rho_hat, x],
        [1, 1, 1],
        Traffic::floats(rows * cols, cols + rows),
    )
}

/// dx (rows, cols) = scale · (−ρ/ρ̂_c + (1 − ρ)/(1 − ρ̂_c)); written, or added when
/// `accumulate`.
#[allow(clippy::too_many_arguments)]
pub fn kl_sparsity_backward(
    ctx: &GpuContext,
    dx: &GpuBuffer,
    rho_hat: &GpuBuffer,
    rows: usize,
    cols: usize,
    rho: f32,
    scale: f32,
    accumulate: bool,
) -> Result<Dispatch> {
    check_nonzero("kl_sparsity_backward", &[("rows", rows), ("cols", cols)])?;
    check_rho(rho)?;
    check_len("kl_sparsity_backward", "dx", dx, rows * cols)?;
    check_len("kl_sparsity_backward", "rho_hat", rho_hat, cols)?;
    let params = params(rows, cols, scale, rho);
    let constants = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    prepare(
        ctx,
        &BACKWARD,
        &constants,
        Some(bytes_of(&params)),
        &[dx, rho_hat],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(cols + rows * cols * usize::from(accumulate), rows * cols),
    )
}

/// rho_hat (cols) as [`kl_sparsity_forward`], totals (rows) += Σ_c KL(ρ ‖ ρ̂_c) and dx (rows,
/// cols) as [`kl_sparsity_backward`] (written), in one dispatch of one workgroup: a
/// training step's penalty whose rows are only summed.
#[allow(clippy::too_many_arguments)]
pub fn kl_sparsity_forward_backward(
    ctx: &GpuContext,
    totals: &GpuBuffer,
    rho_hat: &GpuBuffer,
    dx: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
    rho: f32,
    scale: f32,
) -> Result<Dispatch> {
    let op = "kl_sparsity_forward_backward";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    check_rho(rho)?;
    check_len(op, "totals", totals, rows)?;
    check_len(op, "rho_hat", rho_hat, cols)?;
    check_len(op, "dx", dx, rows * cols)?;
    check_len(op, "x", x, rows * cols)?;
    let params = params(rows, cols, scale, rho);
    prepare(
        ctx,
        &FORWARD_BACKWARD,
        &[],
        Some(bytes_of(&params)),
        &[totals, rho_hat, dx, x],
        [1, 1, 1],
        Traffic::floats(rows * cols + rows, cols + rows * cols + rows),
    )
}
