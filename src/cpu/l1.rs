//! CPU twin of shaders/l1.wgsl: the L1 penalty Σ_c |x| per row, and its gradient.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero};
use crate::error::Result;

/// loss (rows) = Σ_c |x\[r, c\]|.
pub fn l1_forward<T: Float>(loss: &mut [T], x: &[T], rows: usize, cols: usize) -> Result<()> {
    check_nonzero("l1_forward", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "l1_forward",
        &[("loss", loss.len(), rows), ("x", x.len(), rows * cols)],
    )?;
    for (r, l) in loss.iter_mut().enumerate() {
        *l = x[r * cols..(r + 1) * cols]
            .iter()
            .fold(T::zero(), |s, &v| s + v.abs());
    }
    Ok(())
}

/// dx = scale · sign(x) (sign(0) = 0, as WGSL's sign); written, or added when `accumulate`.
pub fn l1_backward<T: Float>(dx: &mut [T], x: &[T], scale: T, accumulate: bool) -> Result<()> {
    let n = x.len();
    check_nonzero("l1_backward", &[("n", n)])?;
    check_lens("l1_backward", &[("dx", dx.len(), n)])?;
    for (d, &v) in dx.iter_mut().zip(x) {
        let sign = if v > T::zero() {
            T::one()
        } else if v < T::zero() {
            -T::one()
        } else {
            T::zero()
        };
        *d = if accumulate {
            *d + scale * sign
        } else {
            scale * sign
        };
    }
    Ok(())
}
