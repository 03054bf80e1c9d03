//! CPU twins of shaders/relu.wgsl, sigmoid.wgsl and tanh.wgsl. Forward: y = f(x).
//! Backward from the saved output y: dx = dy · f'(x) written as a function of y.

use num_traits::Float;

use crate::cpu::{check_lens, lit, tanh_lanes, Real};
use crate::error::Result;
use crate::parallel::{for_chunks_of_at_least, MIN_ELEMENTS_PER_THREAD};

fn check(op: &'static str, out: usize, a: usize, b: Option<usize>) -> Result<()> {
    check_lens(op, &[("input", a, out)])?;
    if let Some(b) = b {
        check_lens(op, &[("dy", b, out)])?;
    }
    Ok(())
}

/// y = max(x, 0), split over threads.
pub fn relu_forward<T: Real>(y: &mut [T], x: &[T]) -> Result<()> {
    check("relu_forward", y.len(), x.len(), None)?;
    for_chunks_of_at_least(y, 1, MIN_ELEMENTS_PER_THREAD, |span, y| {
        y.iter_mut()
            .zip(&x[span])
            .for_each(|(y, &x)| *y = x.max(T::zero()));
    });
    Ok(())
}

/// dx = dy where y > 0, else 0.
pub fn relu_backward<T: Real>(dx: &mut [T], y: &[T], dy: &[T]) -> Result<()> {
    check("relu_backward", dx.len(), y.len(), Some(dy.len()))?;
    backward(
        dx,
        y,
        dy,
        |y, dy| if y > T::zero() { dy } else { T::zero() },
    );
    Ok(())
}

/// dx = derivative(y, dy) element by element, split over threads: a backward reads and
/// writes memory, a few operations an element (the IWAE's 640 × 400 ReLU took 149 µs on
/// one core).
fn backward<T: Real>(dx: &mut [T], y: &[T], dy: &[T], derivative: impl Fn(T, T) -> T + Sync) {
    for_chunks_of_at_least(dx, 1, MIN_ELEMENTS_PER_THREAD, |span, dx| {
        let (y, dy) = (&y[span.clone()], &dy[span]);
        for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
            *dx = derivative(y, dy);
        }
    });
}

/// σ(v) without overflow: 1/(1+e^-v) for v ≥ 0, e^v/(1+e^v) for v < 0.
pub fn stable_sigmoid<T: Float>(v: T) -> T {
    if v >= T::zero() {
        T::one() / (T::one() + (-v).exp())
    } else {
        let e = v.exp();
        e / (T::one() + e)
    }
}

/// Elements a thread gets at least in the activations with an exponential (σ, tanh): about
/// 10–20 ns an element, where ReLU's element is a load and a store (split from
/// MIN_ELEMENTS_PER_THREAD, as the backwards are).
const MIN_TRANSCENDENTALS_PER_THREAD: usize = 4096;

/// y = σ(x), split over threads.
pub fn sigmoid_forward<T: Real>(y: &mut [T], x: &[T]) -> Result<()> {
    check("sigmoid_forward", y.len(), x.len(), None)?;
    for_chunks_of_at_least(y, 1, MIN_TRANSCENDENTALS_PER_THREAD, |span, y| {
        y.iter_mut()
            .zip(&x[span])
            .for_each(|(y, &x)| *y = stable_sigmoid(x));
    });
    Ok(())
}

/// dx = dy · y · (1 - y), split over threads.
pub fn sigmoid_backward<T: Real>(dx: &mut [T], y: &[T], dy: &[T]) -> Result<()> {
    check("sigmoid_backward", dx.len(), y.len(), Some(dy.len()))?;
    backward(dx, y, dy, |y, dy| dy * y * (T::one() - y));
    Ok(())
}

/// y = tanh(x), with x clamped to ±15 as the shader does (tanh(15) is 1 in f32), split over
/// threads; f32 in vector lanes (cpu/tanh_lanes.rs, within 1 ulp), f64 by std's tanh.
pub fn tanh_forward<T: Real>(y: &mut [T], x: &[T]) -> Result<()> {
    check("tanh_forward", y.len(), x.len(), None)?;
    let limit = lit::<T>(15.0);
    for_chunks_of_at_least(y, 1, MIN_TRANSCENDENTALS_PER_THREAD, |span, y| {
        let x = &x[span];
        if let (Some(y), Some(x)) = (T::f32s_mut(y), T::f32s(x)) {
            return tanh_lanes::forward(y, x);
        }
        y.iter_mut()
            .zip(x)
            .for_each(|(y, &x)| *y = x.max(-limit).min(limit).tanh());
    });
    Ok(())
}

/// dx = dy · (1 - y²), split over threads.
pub fn tanh_backward<T: Real>(dx: &mut [T], y: &[T], dy: &[T]) -> Result<()> {
    check("tanh_backward", dx.len(), y.len(), Some(dy.len()))?;
    backward(dx, y, dy, |y, dy| dy * (T::one() - y * y));
    Ok(())
}
