//! Host side of shaders/reparameterize.wgsl: z = μ + e^(½·logvar)·ε with ε from Philox on the
//! GPU, and its backward. μ and logvar come as one tensor, stats (rows, 2·cols): μ | logvar,
//! given as `(stats, repeat)`: each row of stats stands for `repeat` rows of z (1, or an
//! IWAE's K samples of a data row, read without repeating the stats). CPU twin:
//! src/cpu/reparameterize.rs (on the repeated stats: src/cpu/repeat_rows.rs first).

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
pub use crate::cpu::reparameterize::NoiseKey;
use crate::error::{shape_error, Result};
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, check_repeated, grid_for_elements, prepare, Dispatch, Kernel, Shader,
    Slot, Traffic, GRID_LIB, PHILOX_LIB,
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

const BACKWARD_GROUPS: Kernel = Kernel {
    shader: &SHADER,
    entry: "reparameterize_backward_groups",
    slots: &[
        (0, Slot::Uniform),
        (5, Slot::ReadWrite),
        (6, Slot::Read),
        (3, Slot::Read),
        (7, Slot::Read),
        (8, Slot::Read),
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
    /// reparameterize_backward_groups: samples a data row.
    k: u32,
    /// The backwards: the width of dz's rows, cols or more.
    dz_cols: u32,
    /// Rows of z a row of stats stands for.
    stats_repeat: u32,
}

impl Params {
    fn new(rows: usize, cols: usize, seed: u64, stream: u32) -> Self {
        Params {
            rows: rows as u32,
            cols: cols as u32,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            stream,
            k: 0,
            dz_cols: cols as u32,
            stats_repeat: 1,
        }
    }
}

/// An error unless `stats` holds a row of μ | logvar for each `repeat` of the `rows` rows
/// of z (repeat ≥ 1 dividing rows). Also log_weight's.
pub(crate) fn check_stats(
    op: &'static str,
    stats: &GpuBuffer,
    rows: usize,
    cols: usize,
    repeat: usize,
) -> Result<()> {
    check_repeated(op, "stats", stats, (rows, 2 * cols), repeat)
}

/// z, eps (rows, cols) from stats (rows / repeat, 2·cols): μ | logvar, row r of z from row
/// r / repeat of stats; ε keyed by (seed, step\[0\], stream, element r·cols + c). `step` is a
/// u32 buffer read at the recorded dynamic offset (a step state, kernels/step.rs), so each
/// step reads its own without rebuilding the dispatch.
#[allow(clippy::too_many_arguments)]
pub fn reparameterize_forward(
    ctx: &GpuContext,
    z: &GpuBuffer,
    eps: &GpuBuffer,
    (stats, repeat): (&GpuBuffer, usize),
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
    check_stats(op, stats, rows, cols, repeat)?;
    check_len(op, "step", step, 1)?;
    let params = Params {
        stats_repeat: repeat as u32,
        ..Params::new(rows, cols, seed, stream)
    };
    prepare(
        ctx,
        &FORWARD,
        &[],
        Some(bytes_of(&params)),
        &[z, eps, stats, step],
        grid_for_elements(ctx, (rows * cols).div_ceil(4))?,
        Traffic::floats(2 * rows * cols / repeat, 2 * rows * cols),
    )
}

/// An error unless dz's rows are at least `cols` wide and `dz` holds `rows` of them.
fn check_dz(
    op: &'static str,
    dz: &GpuBuffer,
    rows: usize,
    cols: usize,
    dz_cols: usize,
) -> Result<()> {
    if dz_cols < cols {
        return Err(shape_error(
            op,
            format!("dz's rows of {dz_cols} values are narrower than the {cols} latent columns"),
        ));
    }
    check_len(op, "dz", dz, rows * dz_cols)
}

/// dstats (rows, 2·cols) = [dz | dz · ε · ½ e^(½·logvar)]; both halves written, or both added
/// to when `accumulate`. logvar of row r is read from row r / repeat of stats. dz's rows are
/// `dz_cols` wide, of which the first `cols` are read: cols, or more where dz is the first
/// columns of a wider gradient (a conditional VAE's d(z | label)).
#[allow(clippy::too_many_arguments)]
pub fn reparameterize_backward(
    ctx: &GpuContext,
    dstats: &GpuBuffer,
    eps: &GpuBuffer,
    (stats, repeat): (&GpuBuffer, usize),
    (dz, dz_cols): (&GpuBuffer, usize),
    rows: usize,
    cols: usize,
    accumulate: bool,
) -> Result<Dispatch> {
    let op = "reparameterize_backward";
    check_nonzero(op, &[("rows", rows), ("cols", cols)])?;
    check_len(op, "dstats", dstats, rows * 2 * cols)?;
    check_len(op, "eps", eps, rows * cols)?;
    check_stats(op, stats, rows, cols, repeat)?;
    check_dz(op, dz, rows, cols, dz_cols)?;
    let params = Params {
        dz_cols: dz_cols as u32,
        stats_repeat: repeat as u32,
        ..Params::new(rows, cols, 0, 0)
    };
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
            2 * rows * cols + rows / repeat * cols + 2 * rows * cols * usize::from(accumulate),
            2 * rows * cols,
        ),
    )
}

/// The backward of a reparameterization of stats repeated `k` times (an IWAE's K samples of
/// each of `rows` data rows; eps and dz have rows · k rows), summed over each group: dstats
/// (rows, 2·cols) (+)= Σ_j [dz | dz · ε · ½ e^(½·logvar)] of sample row r·k + j ("+=" when
/// `accumulate`), each term first added to `partial` (rows · k, 2·cols) where other ops wrote
/// part of the samples' gradient. What reparameterize_backward (adding to partial) and
/// repeat_rows::sum_row_groups compute, in one dispatch. `(stats, repeat)`: the repeated
/// stats (rows · k rows, repeat 1), or the data rows' (repeat k). dz's rows are `dz_cols`
/// wide, as in [`reparameterize_backward`].
#[allow(clippy::too_many_arguments)]
pub fn reparameterize_backward_groups(
    ctx: &GpuContext,
    dstats: &GpuBuffer,
    partial: Option<&GpuBuffer>,
    eps: &GpuBuffer,
    (stats, repeat): (&GpuBuffer, usize),
    (dz, dz_cols): (&GpuBuffer, usize),
    (rows, cols, k): (usize, usize, usize),
    accumulate: bool,
) -> Result<Dispatch> {
    let op = "reparameterize_backward_groups";
    check_nonzero(op, &[("rows", rows), ("cols", cols), ("k", k)])?;
    let samples_rows = rows * k;
    check_len(op, "dstats", dstats, rows * 2 * cols)?;
    check_len(op, "eps", eps, samples_rows * cols)?;
    check_stats(op, stats, samples_rows, cols, repeat)?;
    check_dz(op, dz, samples_rows, cols, dz_cols)?;
    if let Some(partial) = partial {
        check_len(op, "partial", partial, samples_rows * 2 * cols)?;
    }
    let params = Params {
        k: k as u32,
        dz_cols: dz_cols as u32,
        stats_repeat: repeat as u32,
        ..Params::new(rows, cols, 0, 0)
    };
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let constants = [
        ("ACCUMULATE", flag(accumulate)),
        ("ADD_PARTIAL", flag(partial.is_some())),
    ];
    // Without a partial gradient its binding, never read, holds ε.
    let partial_or_eps = partial.unwrap_or(eps);
    let partial_reads = if partial.is_some() { 2 } else { 0 };
    prepare(
        ctx,
        &BACKWARD_GROUPS,
        &constants,
        Some(bytes_of(&params)),
        &[dstats, eps, stats, dz, partial_or_eps],
        grid_for_elements(ctx, rows * cols)?,
        Traffic::floats(
            samples_rows * cols * (2 + partial_reads)
                + samples_rows / repeat * cols
                + 2 * rows * cols * usize::from(accumulate),
            2 * rows * cols,
        ),
    )
}
