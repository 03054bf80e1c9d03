//! Every kernel run on the GPU and on its CPU twin from the same fresh random inputs, with
//! the GPU outputs poisoned with NaN before the run, compared element by element:
//! |gpu − cpu| ≤ allowed(i), where each check states its bound and why (see checks.rs).
//! `latent validate` prints the results as a table; the tests assert on them.

mod checks;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use checks::{
    check_families, check_matmul, check_matmul_backward_epilogue, check_matmul_loss,
    check_matmul_variants, operand_bound, Family, PHILOX_KNOWN_ANSWERS,
};

use crate::error::Result;
use crate::gpu::{time_gpu, GpuBuffer, GpuContext};
use crate::kernels::{run_recorded, Dispatch};

/// f32 unit roundoff, 2^-24: the relative error of one correctly rounded operation.
pub const UNIT_ROUNDOFF: f32 = 1.0 / 16_777_216.0;

/// The outcome of one kernel at one shape.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// The kernel (entry point) checked, e.g. "matmul" or "relu_backward".
    pub kernel: String,
    /// Shape and options, e.g. "127x785x33 NT +bias".
    pub shape: String,
    pub max_abs_err: f32,
    pub max_rel_err: f32,
    /// GPU time per run in microseconds (None when not timed).
    pub gpu_us: Option<f64>,
    pub passed: bool,
    /// Why it failed: the worst element, or the error.
    pub detail: String,
}

/// How far apart two outputs are, and whether every element is within its bound.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub max_abs_err: f32,
    pub max_rel_err: f32,
    /// Elements over their bound (a NaN left by the poisoning counts).
    pub failures: usize,
    /// The first failing element: (index, gpu, cpu, allowed).
    pub first_failure: Option<(usize, f32, f32, f32)>,
}

/// Compares element by element: element i passes when |gpu − cpu| ≤ allowed(i, cpu).
/// A non-finite GPU value where the CPU value is finite always fails.
pub fn compare(gpu: &[f32], cpu: &[f32], allowed: &dyn Fn(usize, f32) -> f32) -> Comparison {
    let mut result = Comparison {
        max_abs_err: 0.0,
        max_rel_err: 0.0,
        failures: 0,
        first_failure: None,
    };
    if gpu.len() != cpu.len() {
        result.failures = gpu.len().max(cpu.len());
        result.max_abs_err = f32::INFINITY;
        return result;
    }
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let bound = allowed(i, c);
        let err = if g.to_bits() == c.to_bits() {
            0.0
        } else {
            (g - c).abs()
        };
        let ok = if c.is_finite() {
            g.is_finite() && err <= bound
        } else {
            g.to_bits() == c.to_bits()
        };
        if !ok {
            result.failures += 1;
            result.first_failure.get_or_insert((i, g, c, bound));
        }
        let err = if err.is_nan() { f32::INFINITY } else { err };
        result.max_abs_err = result.max_abs_err.max(err);
        if c != 0.0 {
            result.max_rel_err = result.max_rel_err.max(err / c.abs());
        }
    }
    result
}

/// Allowed error atol + rtol·|cpu|, the same for every element.
pub fn abs_rel(atol: f32, rtol: f32) -> impl Fn(usize, f32) -> f32 {
    move |_, c| atol + rtol * c.abs()
}

/// One GPU output to compare with the CPU twin's.
pub struct Output<'a> {
    pub name: &'static str,
    pub gpu: &'a GpuBuffer,
    pub cpu: Vec<f32>,
    pub allowed: Box<dyn Fn(usize, f32) -> f32 + 'a>,
}

/// A GPU output compared by the sums of its rows (each summed in f64, then rounded to f32),
/// for (rows, cols) values whose split over a row's slots is not the contract, only their
/// sum: the matmul's loss totals, which the GPU spreads over the threads that store a row
/// and the twin keeps in the row's first slot.
pub struct RowSumsOutput<'a> {
    pub name: &'static str,
    pub gpu: &'a GpuBuffer,
    /// Values per row.
    pub cols: usize,
    /// The twin's (rows, cols) values.
    pub cpu: Vec<f32>,
    /// Allowed error of row r's sum, given the twin's sum.
    pub allowed: Box<dyn Fn(usize, f32) -> f32 + 'a>,
}

/// Σ of each row of `cols` values, in f64, rounded to f32.
pub fn row_sums_f64(values: &[f32], cols: usize) -> Vec<f32> {
    values
        .chunks(cols.max(1))
        .map(|row| row.iter().map(|&v| f64::from(v)).sum::<f64>() as f32)
        .collect()
}

/// Fresh random inputs, NaN-poisoned outputs, and the run-compare-time sequence.
pub struct Validator<'a> {
    pub ctx: &'a GpuContext,
    /// The seed of this validation's random inputs (print it to reproduce a failure).
    pub seed: u64,
    /// Repetitions when timing; 0 skips timing.
    pub time_repeats: u32,
    rng: StdRng,
}

impl<'a> Validator<'a> {
    pub fn new(ctx: &'a GpuContext, seed: u64, time_repeats: u32) -> Self {
        Validator {
            ctx,
            seed,
            time_repeats,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// n values uniform in [lo, hi).
    pub fn random(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.rng.random_range(lo..hi)).collect()
    }

    /// n u32 values below `below`.
    pub fn random_u32(&mut self, n: usize, below: u32) -> Vec<u32> {
        (0..n).map(|_| self.rng.random_range(0..below)).collect()
    }

    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<GpuBuffer> {
        self.ctx.upload(label, data)
    }

    /// An output buffer of n elements filled with NaN, so that an element the kernel forgets
    /// to write fails the comparison.
    pub fn poisoned(&self, label: &str, n: usize) -> Result<GpuBuffer> {
        self.ctx.upload(label, &vec![f32::NAN; n])
    }

    /// Runs the dispatches once, compares each output, then times them if asked.
    pub fn finish(
        &self,
        kernel: &str,
        shape: String,
        dispatches: &[&Dispatch],
        outputs: Vec<Output>,
    ) -> Result<CheckResult> {
        let record = |pass: &mut wgpu::ComputePass| dispatches.iter().for_each(|d| d.record(pass));
        self.finish_recorded(kernel, shape, &record, outputs)
    }

    /// As [`Validator::finish`], with outputs compared by their row sums as well (compared
    /// after one run, before any timing runs add to them again).
    pub fn finish_with_row_sums(
        &self,
        kernel: &str,
        shape: String,
        dispatches: &[&Dispatch],
        outputs: Vec<Output>,
        row_outputs: Vec<RowSumsOutput>,
    ) -> Result<CheckResult> {
        let record = |pass: &mut wgpu::ComputePass| dispatches.iter().for_each(|d| d.record(pass));
        let row_outputs = row_outputs
            .into_iter()
            .map(|o| {
                let output = Output {
                    name: o.name,
                    gpu: o.gpu,
                    cpu: row_sums_f64(&o.cpu, o.cols),
                    allowed: o.allowed,
                };
                (output, o.cols)
            })
            .collect();
        self.finish_inner(kernel, shape, &record, outputs, row_outputs)
    }

    /// As [`Validator::finish`], for dispatches that `record` puts in the pass its own way
    /// (each at its row of a table of step states).
    pub fn finish_recorded(
        &self,
        kernel: &str,
        shape: String,
        record: &dyn Fn(&mut wgpu::ComputePass),
        outputs: Vec<Output>,
    ) -> Result<CheckResult> {
        self.finish_inner(kernel, shape, record, outputs, Vec::new())
    }

    /// Runs, compares `outputs` element by element and `row_outputs` (output, cols), whose
    /// `cpu` already holds the twin's row sums, by the f64 sums of the GPU's rows of `cols`
    /// values, then times if asked.
    fn finish_inner(
        &self,
        kernel: &str,
        shape: String,
        record: &dyn Fn(&mut wgpu::ComputePass),
        outputs: Vec<Output>,
        row_outputs: Vec<(Output, usize)>,
    ) -> Result<CheckResult> {
        run_recorded(self.ctx, kernel, record)?;
        let mut result = CheckResult {
            kernel: kernel.to_string(),
            shape,
            max_abs_err: 0.0,
            max_rel_err: 0.0,
            gpu_us: None,
            passed: true,
            detail: String::new(),
        };
        let by_rows = row_outputs.iter().map(|(o, cols)| (o, Some(*cols)));
        for (output, row_cols) in outputs.iter().map(|o| (o, None)).chain(by_rows) {
            let mut gpu: Vec<f32> = self.ctx.read_buffer(output.gpu)?;
            if let Some(cols) = row_cols {
                gpu = row_sums_f64(&gpu, cols);
            }
            let cmp = compare(&gpu, &output.cpu, &output.allowed);
            result.max_abs_err = result.max_abs_err.max(cmp.max_abs_err);
            result.max_rel_err = result.max_rel_err.max(cmp.max_rel_err);
            if cmp.failures > 0 {
                result.passed = false;
                let (i, g, c, bound) = cmp.first_failure.unwrap_or((0, f32::NAN, f32::NAN, 0.0));
                result.detail.push_str(&format!(
                    "{}: {} of {} elements off, first [{i}] gpu {g:e} cpu {c:e} allowed {bound:e} (seed {}); ",
                    output.name,
                    cmp.failures,
                    gpu.len(),
                    self.seed
                ));
            }
        }
        if self.time_repeats > 0 {
            let (us, _) = time_gpu(self.ctx, self.time_repeats, record)?;
            result.gpu_us = Some(us);
        }
        Ok(result)
    }
}

/// Which shapes to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeSet {
    /// Awkward small shapes and primes: quick even on a software rasteriser.
    Quick,
    /// Quick plus the real model shapes (batch 128, 784 pixels, 400 hidden units).
    Full,
}

/// A result row for a check that could not run at all.
pub fn error_row(kernel: &str, shape: &str, error: &crate::Error) -> CheckResult {
    CheckResult {
        kernel: kernel.to_string(),
        shape: shape.to_string(),
        max_abs_err: f32::NAN,
        max_rel_err: f32::NAN,
        gpu_us: None,
        passed: false,
        detail: error.to_string(),
    }
}

/// The kernels [`validate_all`] leaves out on `ctx`'s device, each with why: those that bind
/// more storage buffers a stage than the device does (a training step there takes the forms
/// that bind fewer, which are checked).
pub fn left_out(ctx: &GpuContext) -> Vec<String> {
    let bound = ctx.limits.max_storage_buffers_per_shader_stage;
    [
        (
            "matmul_grouped_tn",
            crate::kernels::matmul_grouped_tn::runs_on(ctx),
        ),
        (
            "matmul_grouped_tn_adam",
            crate::kernels::matmul_grouped_tn::runs_fused_on(ctx),
        ),
        (
            "iwae_bound_with_recon",
            crate::kernels::iwae_bound::runs_with_recon_on(ctx),
        ),
    ]
    .into_iter()
    .filter(|&(_, runs)| !runs)
    .map(|(kernel, _)| format!("{kernel} (more storage buffers a stage than the device's {bound})"))
    .collect()
}

/// Runs every kernel family's checks.
pub fn validate_all(
    ctx: &GpuContext,
    seed: u64,
    shapes: ShapeSet,
    time_repeats: u32,
) -> Vec<CheckResult> {
    let mut validator = Validator::new(ctx, seed, time_repeats);
    Family::ALL
        .iter()
        .flat_map(|&family| check_families(&mut validator, family, shapes))
        .collect()
}
