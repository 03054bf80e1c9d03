//! Host side of shaders/reduce.wgsl: row sums, column sums (the bias gradient), the
//! whole-buffer sum, and the sums of up to 3 loss terms in one dispatch. CPU twin:
//! src/cpu/reduce.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::{shape_error, Result};
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_groups, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB,
};

pub const SHADER: Shader = Shader {
    name: "reduce",
    source: include_str!("../../shaders/reduce.wgsl"),
    includes: &[GRID_LIB],
};

const SLOTS: &[(u32, Slot)] = &[(0, Slot::Uniform), (1, Slot::ReadWrite), (2, Slot::Read)];
const SUM_ROWS: Kernel = Kernel {
    shader: &SHADER,
    entry: "sum_rows",
    slots: SLOTS,
};
const SUM_COLS: Kernel = Kernel {
    shader: &SHADER,
    entry: "sum_cols",
    slots: SLOTS,
};
const SUM_ALL: Kernel = Kernel {
    shader: &SHADER,
    entry: "sum_all",
    slots: SLOTS,
};
const SUM_TERMS: Kernel = Kernel {
    shader: &SHADER,
    entry: "sum_terms",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::ReadWrite),
        (4, Slot::Read),
        (5, Slot::ReadWrite),
        (6, Slot::Read),
    ],
};

/// The most terms one `sum_terms` dispatch sums.
pub const MAX_SUM_TERMS: usize = 3;

/// Columns per workgroup of `sum_cols` (COL_LANES in the shader).
const COL_LANES: u64 = 64;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    /// sum_terms: n_0.
    rows: u32,
    cols: u32,
    scale: f32,
    _pad: u32,
    /// sum_terms: the lengths of terms 1 and 2.
    n_1: u32,
    n_2: u32,
    _pad_1: [u32; 2],
}

fn params(rows: usize, cols: usize) -> Params {
    Params {
        rows: rows as u32,
        cols: cols as u32,
        scale: 1.0,
        ..Zeroable::zeroed()
    }
}

/// out (rows) = Σ_c x\[r, c\].
pub fn sum_rows(
    ctx: &GpuContext,
    out: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
) -> Result<Dispatch> {
    check_nonzero("sum_rows", &[("rows", rows), ("cols", cols)])?;
    check_len("sum_rows", "out", out, rows)?;
    check_len("sum_rows", "x", x, rows * cols)?;
    let grid = grid_for_groups(ctx, rows as u64)?;
    prepare(
        ctx,
        &SUM_ROWS,
        &[],
        Some(bytes_of(&params(rows, cols))),
        &[out, x],
        grid,
        Traffic::floats(rows * cols, rows),
    )
}

/// out (cols) = Σ_r x\[r, c\]: the bias gradient.
pub fn sum_cols(
    ctx: &GpuContext,
    out: &GpuBuffer,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
) -> Result<Dispatch> {
    check_nonzero("sum_cols", &[("rows", rows), ("cols", cols)])?;
    check_len("sum_cols", "out", out, cols)?;
    check_len("sum_cols", "x", x, rows * cols)?;
    let grid = grid_for_groups(ctx, (cols as u64).div_ceil(COL_LANES))?;
    prepare(
        ctx,
        &SUM_COLS,
        &[],
        Some(bytes_of(&params(rows, cols))),
        &[out, x],
        grid,
        Traffic::floats(rows * cols, cols),
    )
}

/// out (1) = scale · Σ_i x\[i\] over the first `n` elements of x, added to out when
/// `accumulate` (a running total kept on the GPU).
pub fn sum_all(
    ctx: &GpuContext,
    out: &GpuBuffer,
    x: &GpuBuffer,
    n: usize,
    scale: f32,
    accumulate: bool,
) -> Result<Dispatch> {
    check_nonzero("sum_all", &[("n", n)])?;
    check_len("sum_all", "out", out, 1)?;
    check_len("sum_all", "x", x, n)?;
    let params = Params {
        scale,
        ..params(n, 1)
    };
    let constants = [("ACCUMULATE", if accumulate { 1.0 } else { 0.0 })];
    prepare(
        ctx,
        &SUM_ALL,
        &constants,
        Some(bytes_of(&params)),
        &[out, x],
        [1, 1, 1],
        Traffic::floats(n + usize::from(accumulate), 1),
    )
}

/// total_t (1) += Σ_i x_t\[i\] over the first n_t elements of x_t, for each of 1 to
/// [`MAX_SUM_TERMS`] terms (total_t, x_t, n_t) in one dispatch: sum_all with scale 1 and
/// accumulate for each, with its bits (the same loop and workgroup sum). The running loss
/// totals of a pass's terms. No total may be bound twice.
pub fn sum_terms(ctx: &GpuContext, terms: &[(&GpuBuffer, &GpuBuffer, usize)]) -> Result<Dispatch> {
    if terms.is_empty() || terms.len() > MAX_SUM_TERMS {
        return Err(shape_error(
            "sum_terms",
            format!("{} terms: 1 to {MAX_SUM_TERMS} a dispatch", terms.len()),
        ));
    }
    for &(total, x, n) in terms {
        check_nonzero("sum_terms", &[("n", n)])?;
        check_len("sum_terms", "total", total, 1)?;
        check_len("sum_terms", "x", x, n)?;
    }
    // Slots past the terms are never touched (one workgroup a term); they are bound to the
    // first term's x and to totals of their own (a written buffer may be bound once).
    let unused = (terms.len()..MAX_SUM_TERMS)
        .map(|_| ctx.create_buffer("sum_terms unused total", 1))
        .collect::<Result<Vec<_>>>()?;
    let (_, first_x, _) = terms[0];
    let slot = |t: usize| match terms.get(t) {
        Some(&term) => term,
        None => (&unused[t - terms.len()], first_x, 0),
    };
    let ((t0, x0, n0), (t1, x1, n1), (t2, x2, n2)) = (slot(0), slot(1), slot(2));
    let params = Params {
        n_1: n1 as u32,
        n_2: n2 as u32,
        ..params(n0, 1)
    };
    let reads: usize = terms.iter().map(|&(_, _, n)| n + 1).sum();
    prepare(
        ctx,
        &SUM_TERMS,
        &[],
        Some(bytes_of(&params)),
        &[t0, x0, t1, x1, t2, x2],
        [terms.len() as u32, 1, 1],
        Traffic::floats(reads, terms.len()),
    )
}
