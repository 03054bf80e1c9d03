//! CPU twin of shaders/repeat_rows.wgsl: each row repeated k times in a row (an IWAE's
//! μ | logvar for its K samples), and the backward that sums each group of k rows.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero};
use crate::error::Result;

/// y (rows·k, cols): rows r·k .. r·k + k of y are row r of x (rows, cols).
pub fn repeat_rows<T: Float>(
    y: &mut [T],
    x: &[T],
    rows: usize,
    cols: usize,
    k: usize,
) -> Result<()> {
    check_nonzero("repeat_rows", &[("rows", rows), ("cols", cols), ("k", k)])?;
    check_lens(
        "repeat_rows",
        &[("y", y.len(), rows * k * cols), ("x", x.len(), rows * cols)],
    )?;
    for (i, out) in y.chunks_mut(cols).enumerate() {
        let r = i / k;
        out.copy_from_slice(&x[r * cols..(r + 1) * cols]);
    }
    Ok(())
}

/// dx (rows, cols) = Σ_{j<k} dy[r·k + j], summed in order of j from zero, then added to dx
/// when `accumulate`; dy (rows·k, cols). The backward of `repeat_rows`.
pub fn sum_row_groups<T: Float>(
    dx: &mut [T],
    dy: &[T],
    rows: usize,
    cols: usize,
    k: usize,
    accumulate: bool,
) -> Result<()> {
    check_nonzero(
        "sum_row_groups",
        &[("rows", rows), ("cols", cols), ("k", k)],
    )?;
    check_lens(
        "sum_row_groups",
        &[
            ("dx", dx.len(), rows * cols),
            ("dy", dy.len(), rows * k * cols),
        ],
    )?;
    for (r, out) in dx.chunks_mut(cols).enumerate() {
        let group = &dy[r * k * cols..(r + 1) * k * cols];
        for (c, o) in out.iter_mut().enumerate() {
            let mut sum = T::zero();
            for row in group.chunks(cols) {
                sum = sum + row[c];
            }
            *o = if accumulate { sum + *o } else { sum };
        }
    }
    Ok(())
}
