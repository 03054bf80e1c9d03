//! CPU twin of shaders/concat.wgsl: matrices joined side by side, and the slice of columns
//! that carries a concat's gradient back to one side.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero};
use crate::error::{shape_error, Result};

/// y (rows, ca + cb) = [a (rows, ca) | b (rows, cb)].
pub fn concat_cols<T: Float>(
    y: &mut [T],
    a: &[T],
    b: &[T],
    rows: usize,
    cols_a: usize,
    cols_b: usize,
) -> Result<()> {
    check_nonzero(
        "concat_cols",
        &[("rows", rows), ("cols_a", cols_a), ("cols_b", cols_b)],
    )?;
    check_lens(
        "concat_cols",
        &[
            ("y", y.len(), rows * (cols_a + cols_b)),
            ("a", a.len(), rows * cols_a),
            ("b", b.len(), rows * cols_b),
        ],
    )?;
    for (r, out) in y.chunks_mut(cols_a + cols_b).enumerate() {
        out[..cols_a].copy_from_slice(&a[r * cols_a..(r + 1) * cols_a]);
        out[cols_a..].copy_from_slice(&b[r * cols_b..(r + 1) * cols_b]);
    }
    Ok(())
}

/// part (rows, cols) = whole (rows, width)\[:, offset..offset + cols\]; written, or added when
/// `accumulate`.
pub fn slice_cols<T: Float>(
    part: &mut [T],
    whole: &[T],
    rows: usize,
    width: usize,
    offset: usize,
    accumulate: bool,
) -> Result<()> {
    let cols = part.len() / rows.max(1);
    check_nonzero("slice_cols", &[("rows", rows), ("cols", cols)])?;
    if offset + cols > width {
        return Err(shape_error(
            "slice_cols",
            format!(
                "columns {offset}..{} of a matrix {width} wide",
                offset + cols
            ),
        ));
    }
    check_lens(
        "slice_cols",
        &[
            ("part", part.len(), rows * cols),
            ("whole", whole.len(), rows * width),
        ],
    )?;
    for (r, out) in part.chunks_mut(cols).enumerate() {
        let source = &whole[r * width + offset..r * width + offset + cols];
        for (o, &v) in out.iter_mut().zip(source) {
            *o = if accumulate { *o + v } else { v };
        }
    }
    Ok(())
}
