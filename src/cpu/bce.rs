//! CPU twin of shaders/bce.wgsl: binary cross-entropy from logits, per-row sums, and its
//! gradient. Stable for any finite logit. Rows (or elements) are split between threads
//! from 16k elements on; each result is its own, so the same bits on any thread count.
//! f32 runs in cpu/bce_lanes.rs (16 lanes, polynomial e^-|z| and ln(1 + e^-|z|)); f64 by
//! the formulas below, with std's exp and ln_1p.

use num_traits::Float;

use crate::cpu::activation::stable_sigmoid;
use crate::cpu::bce_lanes;
use crate::cpu::{check_lens, check_nonzero, flush_subnormal, Real};
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
        let span = rows.start * cols..rows.end * cols;
        let (logits, target) = (&logits[span.clone()], &target[span]);
        if let (Some(part), Some(logits), Some(target)) =
            (T::f32s_mut(part), T::f32s(logits), T::f32s(target))
        {
            return bce_lanes::forward(part, logits, target, cols);
        }
        let rows = logits.chunks_exact(cols).zip(target.chunks_exact(cols));
        for (l, (z, t)) in part.iter_mut().zip(rows) {
            *l = z
                .iter()
                .zip(t)
                .fold(T::zero(), |s, (&z, &t)| s + bce_with_logits(z, t));
        }
    });
    Ok(())
}

/// dlogits = scale · (σ(logits) - target), subnormal results flushed to 0
/// (as a GPU may; `cpu::flush_subnormal`); writes dlogits.
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
        let (logits, target) = (&logits[span.clone()], &target[span]);
        let f32_scale = T::f32s(std::slice::from_ref(&scale));
        if let (Some(part), Some(logits), Some(target), Some(&[scale])) = (
            T::f32s_mut(part),
            T::f32s(logits),
            T::f32s(target),
            f32_scale,
        ) {
            let cols = part.len();
            return bce_lanes::backward(part, logits, target, |_| scale, cols);
        }
        for ((d, &z), &t) in part.iter_mut().zip(logits).zip(target) {
            *d = flush_subnormal(scale * (stable_sigmoid(z) - t));
        }
    });
    Ok(())
}

/// dlogits = (scale + row_factor · row_grad\[r\]) · (σ(z) − t), subnormal results flushed to
/// 0 as in [`bce_backward`]: the backward when each row's loss also feeds another op. logits
/// and target are (rows, cols), rows = row_grad.len().
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
    let min_rows = MIN_ELEMENTS_PER_THREAD.div_ceil(cols);
    for_chunks_of_at_least(dlogits, cols, min_rows, |rows, part| {
        let row_grad = &row_grad[rows.clone()];
        let span = rows.start * cols..rows.end * cols;
        let (logits, target) = (&logits[span.clone()], &target[span]);
        let d_loss = |r: usize| scale + row_factor * row_grad[r];
        let f32_factors = T::f32s(&[scale, row_factor]).map(|f| [f[0], f[1]]);
        if let (Some(part), Some(logits), Some(target), Some(row_grad), Some([scale, factor])) = (
            T::f32s_mut(part),
            T::f32s(logits),
            T::f32s(target),
            T::f32s(row_grad),
            f32_factors,
        ) {
            let d_loss = |r: usize| scale + factor * row_grad[r];
            return bce_lanes::backward(part, logits, target, d_loss, cols);
        }
        let rows = logits.chunks_exact(cols).zip(target.chunks_exact(cols));
        for (r, (d, (z, t))) in part.chunks_exact_mut(cols).zip(rows).enumerate() {
            for ((d, &z), &t) in d.iter_mut().zip(z).zip(t) {
                *d = flush_subnormal(d_loss(r) * (stable_sigmoid(z) - t));
            }
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
