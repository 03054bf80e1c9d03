//! Host side of shaders/log_mean_exp.wgsl: the importance-weighted bound per group of k
//! samples, as a per-row loss. CPU twin: src/cpu/log_mean_exp.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::{shape_error, Result};
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, grid_for_groups, prepare, Dispatch, Kernel, Shader,
    Slot, Traffic, GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "log_mean_exp",
    source: include_str!("../../shaders/log_mean_exp.wgsl"),
    includes: &[GRID_LIB],
};

const NEG_LOG_MEAN_EXP: Kernel = Kernel {
    shader: &SHADER,
    entry: "neg_log_mean_exp",
    slots: &[(0, Slot::Uniform), (1, Slot::ReadWrite), (2, Slot::Read)],
};

const BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "neg_log_mean_exp_backward",
    slots: &[(0, Slot::Uniform), (3, Slot::ReadWrite), (2, Slot::Read)],
};

/// The same, one thread a group: for groups of up to ALONE_MAX_K.
const ALONE: Kernel = Kernel {
    entry: "neg_log_mean_exp_alone",
    ..NEG_LOG_MEAN_EXP
};
const ALONE_BACKWARD: Kernel = Kernel {
    entry: "neg_log_mean_exp_alone_backward",
    ..BACKWARD
};

const FORWARD_BACKWARD: Kernel = Kernel {
    shader: &SHADER,
    entry: "neg_log_mean_exp_forward_backward",
    slots: &[
        (0, Slot::Uniform),
        (4, Slot::ReadWrite),
        (3, Slot::ReadWrite),
        (2, Slot::Read),
    ],
};

const ALONE_FORWARD_BACKWARD: Kernel = Kernel {
    entry: "neg_log_mean_exp_alone_forward_backward",
    ..FORWARD_BACKWARD
};

/// Groups of up to this many rows take a thread each, larger ones a workgroup each.
pub const ALONE_MAX_K: usize = 64;

/// (kernel, grid): a thread a group for small groups, else a workgroup a group.
fn kernel_and_grid(
    ctx: &GpuContext,
    rows: usize,
    k: usize,
    (alone, per_workgroup): (&'static Kernel, &'static Kernel),
) -> Result<(&'static Kernel, [u32; 3])> {
    let groups = rows / k;
    Ok(if k <= ALONE_MAX_K {
        (alone, grid_for_elements(ctx, groups)?)
    } else {
        (per_workgroup, grid_for_groups(ctx, groups as u64)?)
    })
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    groups: u32,
    k: u32,
    scale: f32,
    _pad: u32,
}

pub(crate) fn check_groups(op: &'static str, rows: usize, k: usize) -> Result<()> {
    check_nonzero(op, &[("rows", rows), ("k", k)])?;
    if !rows.is_multiple_of(k) {
        return Err(shape_error(
            op,
            format!("{rows} rows are not groups of {k}"),
        ));
    }
    Ok(())
}

/// out (rows) = −log(1/k Σ e^logw) over each row's group of k consecutive rows.
pub fn neg_log_mean_exp(
    ctx: &GpuContext,
    out: &GpuBuffer,
    logw: &GpuBuffer,
    rows: usize,
    k: usize,
) -> Result<Dispatch> {
    check_groups("neg_log_mean_exp", rows, k)?;
    check_len("neg_log_mean_exp", "out", out, rows)?;
    check_len("neg_log_mean_exp", "logw", logw, rows)?;
    let params = Params {
        groups: (rows / k) as u32,
        k: k as u32,
        scale: 0.0,
        _pad: 0,
    };
    let (kernel, grid) = kernel_and_grid(ctx, rows, k, (&ALONE, &NEG_LOG_MEAN_EXP))?;
    prepare(
        ctx,
        kernel,
        &[],
        Some(bytes_of(&params)),
        &[out, logw],
        grid,
        Traffic::floats(rows, rows),
    )
}

/// dlogw (rows) = −scale · k · softmax(logw) within each group of k consecutive rows.
pub fn neg_log_mean_exp_backward(
    ctx: &GpuContext,
    dlogw: &GpuBuffer,
    logw: &GpuBuffer,
    rows: usize,
    k: usize,
    scale: f32,
) -> Result<Dispatch> {
    check_groups("neg_log_mean_exp_backward", rows, k)?;
    check_len("neg_log_mean_exp_backward", "dlogw", dlogw, rows)?;
    check_len("neg_log_mean_exp_backward", "logw", logw, rows)?;
    let params = Params {
        groups: (rows / k) as u32,
        k: k as u32,
        scale,
        _pad: 0,
    };
    let (kernel, grid) = kernel_and_grid(ctx, rows, k, (&ALONE_BACKWARD, &BACKWARD))?;
    prepare(
        ctx,
        kernel,
        &[],
        Some(bytes_of(&params)),
        &[dlogw, logw],
        grid,
        Traffic::floats(rows, rows),
    )
}

/// totals (rows) += −log(1/k Σ e^logw) of each row's group, and dlogw (rows) = −scale · k ·
/// softmax(logw) within each group (written), in one dispatch: a training step's bound
/// whose rows are only summed.
pub fn neg_log_mean_exp_forward_backward(
    ctx: &GpuContext,
    totals: &GpuBuffer,
    dlogw: &GpuBuffer,
    logw: &GpuBuffer,
    (rows, k): (usize, usize),
    scale: f32,
) -> Result<Dispatch> {
    let op = "neg_log_mean_exp_forward_backward";
    check_groups(op, rows, k)?;
    check_len(op, "totals", totals, rows)?;
    check_len(op, "dlogw", dlogw, rows)?;
    check_len(op, "logw", logw, rows)?;
    let params = Params {
        groups: (rows / k) as u32,
        k: k as u32,
        scale,
        _pad: 0,
    };
    let kernels = (&ALONE_FORWARD_BACKWARD, &FORWARD_BACKWARD);
    let (kernel, grid) = kernel_and_grid(ctx, rows, k, kernels)?;
    prepare(
        ctx,
        kernel,
        &[],
        Some(bytes_of(&params)),
        &[totals, dlogw, logw],
        grid,
        Traffic::floats(2 * rows, 2 * rows),
    )
}
