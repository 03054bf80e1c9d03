//! CPU twins of the WGSL kernels: plain loops with the same arguments and semantics as the
//! shaders, generic over f32 (the reference the GPU is compared with) and f64 (for
//! finite-difference gradient checks). Each file pairs by name with `shaders/<op>.wgsl` and
//! `src/kernels/<op>.rs`. Every twin checks its slice lengths and returns an error, never
//! panics, on a mismatch.

pub mod activation;
pub mod adam;
pub mod bce;
pub(crate) mod bce_lanes;
pub(crate) mod box_muller_lanes;
pub mod concat;
pub mod corrupt;
pub mod gather;
pub mod iwae_bound;
pub mod kl;
pub mod kl_sparsity;
pub mod l1;
pub mod log_mean_exp;
pub mod log_weight;
pub mod matmul;
pub mod matmul_grouped_tn;
pub mod matmul_tiles;
pub mod mse;
pub mod philox;
pub mod reduce;
pub mod reparameterize;
pub mod repeat_rows;
pub mod sgd;
pub mod step;
pub(crate) mod tanh_lanes;
pub mod vae_head;

use crate::error::{shape_error, Result};

/// The threads the CPU path (the twins, the CPU executor, the probes) runs on: LATENT_THREADS
/// where it is set, else the cores this process may run on. Errors
/// ([`crate::Error::InvalidArgument`]) where LATENT_THREADS is set to anything but a whole
/// number from 1 to 4096 (the CPU path then ignores it and takes every core).
pub fn threads() -> crate::Result<usize> {
    crate::parallel::threads_setting().map_err(crate::Error::InvalidArgument)?;
    Ok(crate::parallel::threads())
}

/// The twins' float types: f32, the reference the GPU is compared with, and f64, for
/// finite differences. A twin may take a path written for f32 alone (the matmul's fused
/// tiles) through [`Real::f32s`].
pub trait Real: num_traits::Float + bytemuck::Pod + Send + Sync {
    /// The values as f32s, where Self is f32.
    fn f32s(values: &[Self]) -> Option<&[f32]>;
    /// The values as f32s to write, where Self is f32.
    fn f32s_mut(values: &mut [Self]) -> Option<&mut [f32]>;
}

impl Real for f32 {
    fn f32s(values: &[f32]) -> Option<&[f32]> {
        Some(values)
    }
    fn f32s_mut(values: &mut [f32]) -> Option<&mut [f32]> {
        Some(values)
    }
}

impl Real for f64 {
    fn f32s(_: &[f64]) -> Option<&[f32]> {
        None
    }
    fn f32s_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }
}

/// Each value's bits, for the unit tests that compare to the bit (tests/common's `bits` is
/// the same for the integration tests, which cannot reach this crate's test code).
#[cfg(test)]
pub(crate) fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// |got − exact| in units of f32's spacing at `exact` (within 2× of one ulp), for the unit
/// tests that hold the lanes' approximations (cpu/bce_lanes.rs, cpu/tanh_lanes.rs) to f64.
#[cfg(test)]
pub(crate) fn ulps(got: f32, exact: f64) -> f64 {
    let spacing = exact.abs().max(f64::from(f32::MIN_POSITIVE)) * f64::from(f32::EPSILON);
    (f64::from(got) - exact).abs() / spacing
}

/// Checks that each named slice has exactly the length its shape needs.
pub(crate) fn check_lens(op: &'static str, lens: &[(&str, usize, usize)]) -> Result<()> {
    for &(name, len, expected) in lens {
        if len != expected {
            return Err(shape_error(
                op,
                format!("{name} has {len} elements, the shape needs {expected}"),
            ));
        }
    }
    Ok(())
}

/// Checks that no dimension is zero.
pub(crate) fn check_nonzero(op: &'static str, dims: &[(&str, usize)]) -> Result<()> {
    for &(name, value) in dims {
        if value == 0 {
            return Err(shape_error(
                op,
                format!("{name} is 0; every dimension must be at least 1"),
            ));
        }
    }
    Ok(())
}

/// x, or 0 where x is subnormal (|x| below the smallest normal float), as
/// shaders/lib/adam_update.wgsl's flush_subnormal. Every operation on a subnormal costs a
/// microcode assist on x86. Adam keeps its moments flushed: a moment whose gradients are all
/// 0 decays by β each step (the AE's epoch went 1.7, 2.3, 2.5, 2.7 s over four epochs; kept
/// at 0: 1.6–1.8 s each). The loss gradients (BCE, MSE) are flushed too, as a GPU may flush
/// them (WGSL leaves subnormals to the implementation): the IWAE's rows of tiny importance
/// weight, about 1 % of their gradients subnormal, made its output layer's backward
/// multiplies 2.6× as slow.
#[inline(always)]
pub(crate) fn flush_subnormal<T: num_traits::Float>(x: T) -> T {
    if x.abs() < T::min_positive_value() {
        T::zero()
    } else {
        x
    }
}

/// `value` converted to the twin's float type (f32 and f64 always succeed).
pub(crate) fn lit<T: num_traits::Float>(value: f64) -> T {
    T::from(value).unwrap_or_else(T::nan)
}
