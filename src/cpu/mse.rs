//! CPU twin of shaders/mse.wgsl: per-row summed squared error and its gradient.

use num_traits::Float;

use crate::cpu::{check_lens, check_nonzero, flush_subnormal, lit};
use crate::error::Result;

/// loss (rows) = Σ_c (x\[r, c\] - target\[r, c\])².
pub fn mse_forward<T: Float>(
    loss: &mut [T],
    x: &[T],
    target: &[T],
    rows: usize,
    cols: usize,
) -> Result<()> {
    check_nonzero("mse_forward", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "mse_forward",
        &[
            ("loss", loss.len(), rows),
            ("x", x.len(), rows * cols),
            ("target", target.len(), rows * cols),
        ],
    )?;
    for (r, l) in loss.iter_mut().enumerate() {
        let span = r * cols..(r + 1) * cols;
        *l = x[span.clone()]
            .iter()
            .zip(&target[span])
            .fold(T::zero(), |s, (&x, &t)| s + (x - t) * (x - t));
    }
    Ok(())
}

/// dx (rows, cols) = scale · 2 · (x - target), subnormal results flushed to 0
/// (as a GPU may; `cpu::flush_subnormal`); writes dx.
pub fn mse_backward<T: Float>(dx: &mut [T], x: &[T], target: &[T], scale: T) -> Result<()> {
    check_nonzero("mse_backward", &[("n", dx.len())])?;
    check_lens(
        "mse_backward",
        &[("x", x.len(), dx.len()), ("target", target.len(), dx.len())],
    )?;
    let two = lit::<T>(2.0);
    for ((d, &x), &t) in dx.iter_mut().zip(x).zip(target) {
        *d = flush_subnormal(scale * two * (x - t));
    }
    Ok(())
}

/// dx = (scale + row_factor · row_grad\[r\]) · 2 · (x − target), subnormal results flushed to
/// 0 as in [`mse_backward`]: the backward when each row's loss also feeds another op. x and
/// target are (rows, cols) with rows = row_grad.len().
pub fn mse_backward_rows<T: Float>(
    dx: &mut [T],
    x: &[T],
    target: &[T],
    row_grad: &[T],
    scale: T,
    row_factor: T,
) -> Result<()> {
    let cols = dx.len() / row_grad.len().max(1);
    check_nonzero(
        "mse_backward_rows",
        &[("rows", row_grad.len()), ("cols", cols)],
    )?;
    check_lens(
        "mse_backward_rows",
        &[
            ("dx", dx.len(), row_grad.len() * cols),
            ("x", x.len(), dx.len()),
            ("target", target.len(), dx.len()),
        ],
    )?;
    let two = lit::<T>(2.0);
    for (i, d) in dx.iter_mut().enumerate() {
        let d_loss = scale + row_factor * row_grad[i / cols];
        *d = flush_subnormal(d_loss * (two * (x[i] - target[i])));
    }
    Ok(())
}

/// The loss and its gradient in one pass (the twin of mse_forward_backward): totals (rows)
/// += Σ_c mse(x, target), and dx = scale · 2 · (x - target).
pub fn mse_forward_backward<T: Float>(
    totals: &mut [T],
    dx: &mut [T],
    x: &[T],
    target: &[T],
    rows: usize,
    cols: usize,
    scale: T,
) -> Result<()> {
    let mut loss = vec![T::zero(); totals.len()];
    mse_forward(&mut loss, x, target, rows, cols)?;
    mse_backward(dx, x, target, scale)?;
    for (total, l) in totals.iter_mut().zip(loss) {
        *total = *total + l;
    }
    Ok(())
}
