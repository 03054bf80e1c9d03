//! CPU twin of shaders/bce.wgsl: binary cross-entropy from logits, per-row sums, and its
//! gradient. Stable for any finite logit. Rows (or elements) are split between threads
//! from 16k elements on; each result is its own, so the same bits on any thread count.

use num_traits::Float;

use crate::cpu::activation::stable_sigmoid;
use crate::cpu::{check_lens, check_nonzero, Real};
use crate::error::Result;
use crate::parallel::{for_chunks_of_at_least, MIN_ELEMENTS_PER_THREAD};

/// BCE of one logit z against a target t in [0, 1]: max(z, 0) - z·t + ln(1 + e^-|z|).
pub fn bce_with_logits<T: Float>(z: T, t: T) -> T {
    z.max(T::zero()) - z * t + (-z.abs()).exp().ln_1p()
}

/// loss (rows) = Σ_c bce(logits\[r, c\], target\[r, c\]).
pub fn bce_forward<T: Real>(
    loss: &mut [T],
    logits: &[T],
    target: &[T],
    rows: usize,
    cols: usize,
) -> Result<()> {
    check_nonzero("bce_forward", &[("rows", rows), ("cols", cols)])?;
    check_lens(
        "bce_forward",
        &[
            ("loss", loss.len(), rows),
            ("logits", logits.len(), rows * cols),
            ("target", target.len(), rows * cols),
        ],
    )?;
    let min_rows = MIN_ELEMENTS_PER_THREAD.div_ceil(cols);
    for_chunks_of_at_least(loss, 1, min_rows, |rows, part| {
        for (r, l) in rows.zip(part) {
            let span = r * cols..(r + 1) * cols;
            *l = logits[span.clone()]
                .iter()
                .zip(&target[span])
                .fold(T::zero(), |s, (&z, &t)| s + bce_with_logits(z, t));
        }
    });
    Ok(())
}

/// dlogits = scale · (σ(logits) - target); writes dlogits.
pub fn bce_backward<T: Real>(
    dlogits: &mut [T],
    logits: &[T],
    target: &[T],
    scale: T,
) -> Result<()> {
    check_nonzero("bce_backward", &[("n", dlogits.len())])?;
    check_lens(
        "bce_backward",
        &[
            ("logits", logits.len(), dlogits.len()),
            ("target", target.len(), dlogits.len()),
        ],
    )?;
    for_chunks_of_at_least(dlogits, 1, MIN_ELEMENTS_PER_THREAD, |span, part| {
        for ((d, &z), &t) in part
            .iter_mut()
            .zip(&logits[span.clone()])
            .zip(&target[span])
        {
            *d = scale * (stable_sigmoid(z) - t);
        }
    });
    Ok(())
}

/// dlogits = (scale + row_factor · row_grad\[r\]) · (σ(z) − t): the backward when each row's
/// loss also feeds another op. logits and target are (rows, cols), rows = row_grad.len().
pub fn bce_backward_rows<T: Real>(
    dlogits: &mut [T],
    logits: &[T],
    target: &[T],
    row_grad: &[T],
    scale: T,
    row_factor: T,
) -> Result<()> {
    let cols = dlogits.len() / row_grad.len().max(1);
    check_nonzero(
        "bce_backward_rows",
        &[("rows", row_grad.len()), ("cols", cols)],
    )?;
    check_lens(
        "bce_backward_rows",
        &[
            ("dlogits", dlogits.len(), row_grad.len() * cols),
            ("logits", logits.len(), dlogits.len()),
            ("target", target.len(), dlogits.len()),
        ],
    )?;
    for_chunks_of_at_least(dlogits, 1, MIN_ELEMENTS_PER_THREAD, |span, part| {
        for (i, d) in span.zip(part) {
            let d_loss = scale + row_factor * row_grad[i / cols];
            *d = d_loss * (stable_sigmoid(logits[i]) - target[i]);
        }
    });
    Ok(())
}

/// The loss and its gradient in one pass (the twin of bce_forward_backward): totals (rows)
/// += Σ_c bce(logits, target), and dlogits = scale · (σ(logits) - target).
pub fn bce_forward_backward<T: Real>(
    totals: &mut [T],
    dlogits: &mut [T],
    logits: &[T],
    target: &[T],
    rows: usize,
    cols: usize,
    scale: T,
) -> Result<()> {
    let mut loss = vec![T::zero(); totals.len()];
    bce_forward(&mut loss, logits, target, rows, cols)?;
    bce_backward(dlogits, logits, target, scale)?;
    for (total, l) in totals.iter_mut().zip(loss) {
        *total = *total + l;
    }
    Ok(())
}
