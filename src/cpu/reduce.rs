//! CPU twins of shaders/reduce.wgsl: row, column (bias gradient) and whole-buffer sums of a
//! row-major (rows, cols) matrix. All write their output.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero};
use crate::error::Result;

/// out (rows) = Σ_c x\[r, c\].
pub fn sum_rows<T: Float>(out: &mut [T], x: &[T], rows: usize, cols: usize) -> Result<()> {
    check_nonzero("sum_rows", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "sum_rows",
        &[("out", out.len(), rows), ("x", x.len(), rows * cols)],
    )?;
    for (r, o) in out.iter_mut().enumerate() {
        *o = x[r * cols..(r + 1) * cols]
            .iter()
            .fold(T::zero(), |s, &v| s + v);
    }
    Ok(())
}

/// out (cols) = Σ_r x\[r, c\]: the gradient of a bias broadcast over rows.
pub fn sum_cols<T: Float>(out: &mut [T], x: &[T], rows: usize, cols: usize) -> Result<()> {
    check_nonzero("sum_cols", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "sum_cols",
        &[("out", out.len(), cols), ("x", x.len(), rows * cols)],
    )?;
    out.iter_mut().for_each(|o| *o = T::zero());
    for row in x.chunks(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o = *o + v;
        }
    }
    Ok(())
}

/// out (1) = scale · Σ_i x\[i\], added to out\[0\] when `accumulate`.
pub fn sum_all<T: Float>(out: &mut [T], x: &[T], scale: T, accumulate: bool) -> Result<()> {
    check_nonzero("sum_all", &[("n", x.len())])?;
    check_lens("sum_all", &[("out", out.len(), 1)])?;
    let total = scale * x.iter().fold(T::zero(), |s, &v| s + v);
    out[0] = if accumulate { out[0] + total } else { total };
    Ok(())
}
