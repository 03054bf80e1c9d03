//! The training loop: epochs of shuffled batches on the GPU executor (or the CPU twins),
//! per-epoch train and test loss reported the way PyTorch's examples report them, and a
//! stop with a clear error when the loss stops being finite.

use std::time::{Duration, Instant};

use crate::data::{Dataset, Pixels};
use crate::error::{Error, Result};
use crate::gpu::{Backend, GpuContext, GpuOptions};
use crate::graph::cpu::CpuExecutor;
use crate::graph::gpu::{DeviceMemory, GpuExecutor};
use crate::graph::plan::Plan;
use crate::graph::{LossKind, RunConfig, Samples, TrainData};
use crate::io::checkpoint::TrainingState;
use crate::kernels::adam::AdamConfig;
use crate::model::{Likelihood, ModelConfig, ModelKind};

/// Where training runs.
#[derive(Clone, Copy)]
pub enum Device<'a> {
    Gpu(&'a GpuContext),
    /// The CPU twins: the reference path, and the fallback without a GPU.
    Cpu,
}

impl Device<'_> {
    /// The adapter, backend and matmul kernels (which say the precision: coop-f16 rounds the
    /// operands to f16), or the CPU twins (with their matmul's vector registers and
    /// threads); config.json's `trained_on`.
    pub fn describe(&self) -> String {
        match self {
            Device::Gpu(ctx) => {
                let matmul = ctx.matmul_choice().describe();
                format!(
                    "{} ({:?}), matmul {matmul}",
                    ctx.info.name, ctx.info.backend
                )
            }
            Device::Cpu => {
                let threads = crate::parallel::threads();
                format!(
                    "CPU twins (f32; matmul in {} tiles, {threads} thread{})",
                    crate::cpu::matmul_tiles::TileForm::detect().name(),
                    if threads == 1 { "" } else { "s" }
                )
            }
        }
    }
}

/// How to train (the model's shape is in [`ModelConfig`]).
#[derive(Clone, Copy, Debug)]
pub struct TrainOptions {
    pub batch: usize,
    pub epochs: usize,
    pub adam: AdamConfig,
    /// Seeds the shuffling and the noise (the initialisation takes its own seed).
    pub seed: u64,
}

impl TrainOptions {
    /// Rejects zero epochs or batch and a bad learning rate.
    pub fn check(&self, train_rows: usize) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::InvalidArgument("epochs must be at least 1".into()));
        }
        if self.batch == 0 || self.batch > train_rows {
            return Err(Error::InvalidArgument(format!(
                "batch size {} for a training set of {train_rows} rows: it must be between 1 and the row count",
                self.batch
            )));
        }
        self.adam.check()
    }
}

/// Each loss term by name ("bce", "kl", "mse") with its value per example (or pixel).
pub type LossTerms = Vec<(String, f64)>;

/// One epoch's figures. Losses are per example (nats for BCE and KL) or, for the MSE
/// autoencoder, per pixel, as the PyTorch examples print them.
#[derive(Clone, Debug)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    /// Each loss term (name, value) on the training batches.
    pub train_terms: LossTerms,
    pub test_loss: Option<f64>,
    pub test_terms: LossTerms,
    pub seconds: f64,
    pub samples_per_second: f64,
}

impl<'a> From<&'a Dataset> for TrainData<'a> {
    fn from(data: &'a Dataset) -> Self {
        let samples = match &data.pixels {
            Pixels::U8(bytes) => Samples::U8(bytes),
            Pixels::F32(values) => Samples::F32(values),
        };
        TrainData {
            samples,
            rows: data.rows,
            width: data.width,
            labels: data.labels.as_deref(),
        }
    }
}

enum Executor<'a> {
    Gpu(Box<GpuExecutor<'a>>),
    Cpu(Box<CpuExecutor<'a, f32>>),
}

/// Training steps recorded into one command buffer and submitted together on the GPU when
/// nothing is read back between them: fewer submits (~130-180 µs each on lavapipe, ~20 µs on
/// an H100) without delaying the progress line much.
pub const DEFAULT_STEPS_PER_SUBMIT: u32 = 8;

/// A model being trained: its executor and the epoch counter.
pub struct Trainer<'a> {
    plan: &'a Plan,
    executor: Executor<'a>,
    options: TrainOptions,
    steps_per_submit: u32,
    report_weights: Vec<f64>,
    train_rows: usize,
    test_rows: usize,
    epoch: usize,
    /// The least time between two progress reports inside an epoch (see
    /// [`Trainer::set_progress_interval`]).
    progress_interval: Duration,
}

impl<'a> Trainer<'a> {
    /// Builds the executor for `plan` on `device` with the flat parameters `params`.
    pub fn new(
        device: Device<'a>,
        plan: &'a Plan,
        model: &ModelConfig,
        params: &[f32],
        train: TrainData<'a>,
        test: Option<TrainData<'a>>,
        options: TrainOptions,
    ) -> Result<Self> {
        options.check(train.rows)?;
        let steps = options.epochs * (train.rows / options.batch);
        let total_steps = u32::try_from(steps)
            .map_err(|_| Error::InvalidArgument(format!("{steps} steps is too many")))?;
        let run = RunConfig {
            adam: options.adam,
            seed: options.seed,
            total_steps,
        };
        let executor = match device {
            Device::Gpu(ctx) => Executor::Gpu(Box::new(GpuExecutor::new(
                ctx, plan, params, train, test, run,
            )?)),
            Device::Cpu => {
                Executor::Cpu(Box::new(CpuExecutor::new(plan, params, train, test, run)?))
            }
        };
        let report_weights = plan
            .losses
            .iter()
            .map(|t| report_weight(model, t.kind))
            .collect();
        Ok(Trainer {
            plan,
            executor,
            options,
            steps_per_submit: DEFAULT_STEPS_PER_SUBMIT,
            report_weights,
            train_rows: train.rows,
            test_rows: test.map_or(0, |t| t.rows),
            epoch: 0,
            progress_interval: Duration::ZERO,
        })
    }

    /// Training steps per epoch (the last partial batch of each shuffled epoch is dropped).
    pub fn steps_per_epoch(&self) -> usize {
        self.train_rows / self.options.batch
    }

    /// Steps per submit on the GPU (at least 1; [`DEFAULT_STEPS_PER_SUBMIT`] unless set).
    /// The result is the same for any value; progress is reported at submit boundaries.
    pub fn set_steps_per_submit(&mut self, n: u32) -> Result<()> {
        if n == 0 {
            return Err(Error::InvalidArgument(
                "steps per submit must be at least 1".into(),
            ));
        }
        self.steps_per_submit = n;
        Ok(())
    }

    /// Steps a GPU submit records: the set number, fewer for a model whose steps would pass
    /// [`crate::graph::gpu::FLOPS_PER_SUBMIT`] of work together (one step of a very large
    /// model is a submit of its own).
    pub fn effective_steps_per_submit(&self) -> u32 {
        crate::graph::gpu::steps_within_submit_budget(
            self.steps_per_submit,
            self.plan.step_matmul_flops(),
        )
    }

    /// The least wall-clock time between two progress reports inside an epoch (zero unless
    /// set). Each report reads the loss back, which waits for the GPU to finish the steps
    /// submitted so far and leaves it idle while the next submit is encoded; on a GPU that
    /// runs an epoch in a fraction of a second, a few dozen reports an epoch add a share of
    /// it. The report at the epoch's end is always made (the loss is read there anyway).
    pub fn set_progress_interval(&mut self, interval: Duration) {
        self.progress_interval = interval;
    }

    /// Dispatches per training step on the GPU (None on the CPU).
    pub fn dispatches_per_step(&self) -> Option<usize> {
        match &self.executor {
            Executor::Gpu(e) => Some(e.dispatches_per_step()),
            Executor::Cpu(_) => None,
        }
    }

    /// Device memory held by the GPU executor's buffers (None on the CPU).
    pub fn device_memory(&self) -> Option<DeviceMemory> {
        match &self.executor {
            Executor::Gpu(e) => Some(e.device_memory()),
            Executor::Cpu(_) => None,
        }
    }

    /// How a step on the GPU computes its weight gradients (None on the CPU; see
    /// `GpuExecutor::weight_grads_form`).
    pub fn weight_grads_form(&self) -> Option<&'static str> {
        match &self.executor {
            Executor::Gpu(e) => Some(e.weight_grads_form()),
            Executor::Cpu(_) => None,
        }
    }

    /// Trains one epoch and evaluates on the test set if there is one, submitting
    /// `steps_per_submit` steps at a time. `progress` is called about every `progress_every`
    /// steps (at the first submit boundary past each multiple, and no sooner than the
    /// progress interval after the last call) and at the epoch's end, with (steps done,
    /// steps in the epoch, loss so far); the loss is read back from the GPU only then.
    pub fn run_epoch(
        &mut self,
        progress_every: usize,
        progress: &mut dyn FnMut(usize, usize, f64),
    ) -> Result<EpochReport> {
        let started = Instant::now();
        let order = crate::data::epoch_order(self.train_rows, self.options.seed, self.epoch as u64);
        let steps = self.steps_per_epoch();
        self.begin_epoch(&order)?;
        let mut done = 0;
        let mut next_report = progress_every;
        let mut last_report = Instant::now();
        let per_submit = self.effective_steps_per_submit() as usize;
        while done < steps {
            let n = (steps - done).min(per_submit);
            self.steps(n as u32)?;
            done += n;
            let due = done >= next_report && last_report.elapsed() >= self.progress_interval;
            if progress_every > 0 && (due || done == steps) {
                next_report = (done / progress_every + 1) * progress_every;
                last_report = Instant::now();
                let totals = self.loss_totals()?;
                let loss = self.per_example(&totals, done * self.options.batch);
                check_finite(loss, self.epoch + 1, done)?;
                progress(done, steps, loss);
            }
        }
        let totals = self.loss_totals()?;
        let seen = steps * self.options.batch;
        let train_loss = self.per_example(&totals, seen);
        check_finite(train_loss, self.epoch + 1, steps)?;
        let seconds = started.elapsed().as_secs_f64();
        let train_terms = self.terms(&totals, seen);
        let (test_loss, test_terms) = match self.evaluate()? {
            Some(totals) => (
                Some(self.per_example(&totals, self.test_rows)),
                self.terms(&totals, self.test_rows),
            ),
            None => (None, Vec::new()),
        };
        self.epoch += 1;
        Ok(EpochReport {
            epoch: self.epoch,
            train_loss,
            train_terms,
            test_loss,
            test_terms,
            seconds,
            samples_per_second: seen as f64 / seconds,
        })
    }

    /// The loss per example (or per pixel) over the test set, or None without one.
    pub fn test_loss(&mut self) -> Result<Option<f64>> {
        Ok(self.test_report()?.map(|(loss, _)| loss))
    }

    /// The test loss and each of its terms, or None without a test set.
    pub fn test_report(&mut self) -> Result<Option<(f64, LossTerms)>> {
        let rows = self.test_rows;
        Ok(self
            .evaluate()?
            .map(|totals| (self.per_example(&totals, rows), self.terms(&totals, rows))))
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Everything a checkpoint needs to continue this run exactly.
    pub fn state(&self) -> Result<TrainingState> {
        let (params, adam, next_step) = match &self.executor {
            Executor::Gpu(e) => (e.read_params()?, e.read_adam()?, e.next_step()),
            Executor::Cpu(e) => (
                e.params.clone(),
                (e.adam_m.clone(), e.adam_v.clone()),
                e.next_step(),
            ),
        };
        Ok(TrainingState {
            params,
            adam: Some(adam),
            epoch: self.epoch,
            next_step,
        })
    }

    /// Continues from a checkpoint's state: parameters, Adam's moments, step and epoch.
    pub fn restore(&mut self, state: &TrainingState) -> Result<()> {
        let adam = state.adam.as_ref().ok_or_else(|| {
            Error::InvalidArgument("the checkpoint has no optimizer state to resume from".into())
        })?;
        match &mut self.executor {
            Executor::Gpu(e) => e.restore(&state.params, adam, state.next_step)?,
            Executor::Cpu(e) => e.restore(&state.params, adam, state.next_step)?,
        }
        self.epoch = state.epoch;
        Ok(())
    }

    /// The current flat parameters.
    pub fn params(&self) -> Result<Vec<f32>> {
        match &self.executor {
            Executor::Gpu(e) => e.read_params(),
            Executor::Cpu(e) => Ok(e.params.clone()),
        }
    }

    fn begin_epoch(&mut self, order: &[u32]) -> Result<()> {
        match &mut self.executor {
            Executor::Gpu(e) => {
                e.reset_losses()?;
                e.begin_epoch(order)
            }
            Executor::Cpu(e) => {
                e.reset_losses();
                e.begin_epoch(order)
            }
        }
    }

    /// `n` training steps: one submit on the GPU.
    fn steps(&mut self, n: u32) -> Result<()> {
        match &mut self.executor {
            Executor::Gpu(e) => e.steps_per_submit(n),
            Executor::Cpu(e) => (0..n).try_for_each(|_| e.step()),
        }
    }

    fn loss_totals(&self) -> Result<Vec<f64>> {
        match &self.executor {
            Executor::Gpu(e) => e.loss_totals(),
            Executor::Cpu(e) => Ok(e.loss_totals()),
        }
    }

    fn evaluate(&mut self) -> Result<Option<Vec<f64>>> {
        if self.test_rows == 0 {
            return Ok(None);
        }
        match &mut self.executor {
            Executor::Gpu(e) => e.evaluate().map(Some),
            Executor::Cpu(e) => e.evaluate().map(Some),
        }
    }

    /// The loss per example over `rows` data rows: the weighted sum of the terms, or the
    /// importance-weighted bound alone when the model trains with it (its BCE and KL terms
    /// are then reported, not optimised).
    fn per_example(&self, totals: &[f64], rows: usize) -> f64 {
        let iw = self.plan.losses.iter().any(|t| t.kind == LossKind::Iw);
        self.terms_per_example(totals, rows)
            .zip(&self.plan.losses)
            .filter(|(_, term)| !iw || term.kind == LossKind::Iw)
            .map(|(value, _)| value)
            .sum()
    }

    fn terms(&self, totals: &[f64], rows: usize) -> LossTerms {
        self.terms_per_example(totals, rows)
            .zip(&self.plan.losses)
            .map(|(value, term)| (term.kind.name().to_string(), value))
            .collect()
    }

    /// Each term's weighted total over `rows` data rows, per row of the term: a term of K
    /// samples a data row (IWAE) counts K rows for each.
    fn terms_per_example<'t>(
        &'t self,
        totals: &'t [f64],
        rows: usize,
    ) -> impl Iterator<Item = f64> + 't {
        let graph = &self.plan.graph;
        self.plan
            .losses
            .iter()
            .zip(totals)
            .zip(&self.report_weights)
            .map(move |((term, t), w)| {
                let visits = rows * graph.rows_per_data_row(term.per_row);
                t * w / visits as f64
            })
    }
}

/// The weight of a term's Σ per-row loss in the reported loss: nats per example for BCE and
/// KL (β-weighted), ½ Σ squared error for a Gaussian VAE, the per-pixel mean for the MSE
/// autoencoder, and λ times the penalty for a sparse autoencoder (as it enters the loss).
fn report_weight(model: &ModelConfig, kind: LossKind) -> f64 {
    match (kind, model.kind, model.likelihood) {
        (LossKind::Kl, ModelKind::Vae { beta }, _) => f64::from(beta),
        (LossKind::Mse, ModelKind::Autoencoder, Likelihood::Gaussian) => 1.0 / model.input as f64,
        (LossKind::Mse, _, _) => 0.5,
        (LossKind::L1 | LossKind::KlSparsity, _, _) => {
            model.sparsity.map_or(1.0, |s| f64::from(s.weight()))
        }
        _ => 1.0,
    }
}

fn check_finite(loss: f64, epoch: usize, step: usize) -> Result<()> {
    if loss.is_finite() {
        return Ok(());
    }
    Err(Error::Diverged(format!(
        "the loss became {loss} in epoch {epoch} by step {step}: training stopped (try a lower learning rate)"
    )))
}

/// The device to train on: the GPU `options` name, or the CPU path (None) when there is no
/// adapter, or only a software rasterizer (lavapipe, llvmpipe), and no backend or adapter
/// was asked for explicitly. The CPU twins beat a software rasterizer on the same cores
/// (2 cores, MNIST VAE: an epoch in 1.2–1.3 s against lavapipe's 6.8–8.5 s, BENCHMARKS.md),
/// except for the coop-f16 matmul, which only a GPU path runs: asked for, it keeps the
/// rasterizer. The second value says why, for the user.
pub fn pick_device(options: &GpuOptions) -> Result<(Option<GpuContext>, Option<String>)> {
    let asked = options.backend != Backend::Auto || options.adapter.is_some();
    match GpuContext::new(options) {
        Ok(ctx) if ctx.info.device_type == wgpu::DeviceType::Cpu && !asked => {
            if options.cooperative_matrix {
                let note = format!(
                    "{} is a software rasterizer: running on it for the coop-f16 matmul asked for",
                    ctx.info.name
                );
                return Ok((Some(ctx), Some(note)));
            }
            let note = format!(
                "{} is a software rasterizer: using the CPU path, which is faster here (--backend {} to use it anyway)",
                ctx.info.name,
                ctx.info.backend.to_str()
            );
            Ok((None, Some(note)))
        }
        Ok(ctx) => Ok((Some(ctx), None)),
        Err(e @ Error::NoAdapter { .. }) if !asked => {
            Ok((None, Some(format!("{e}\nUsing the CPU path instead."))))
        }
        Err(e) => Err(e),
    }
}

/// Trains `model` from its PyTorch-style initialisation (seeded by `options.seed`) for
/// `options.epochs` epochs, calling `each_epoch` after every one, and saves the checkpoint
/// (model.safetensors and config.json) in `dir`: the whole of `latent train` for a program
/// that embeds latent. Returns the last epoch's report.
pub fn train_to_checkpoint(
    device: Device,
    model: &ModelConfig,
    train: &Dataset,
    test: Option<&Dataset>,
    options: TrainOptions,
    dir: &std::path::Path,
    each_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<EpochReport> {
    options.check(train.rows)?;
    let plan = Plan::compile(model.build(options.batch)?.0)?;
    let params = crate::model::init_params(&plan, options.seed)?;
    let mut trainer = Trainer::new(
        device,
        &plan,
        model,
        &params,
        train.into(),
        test.map(TrainData::from),
        options,
    )?;
    // After the build, which may have tuned the plan's matmul shapes.
    let device_name = device.describe();
    let mut last = None;
    for _ in 0..options.epochs {
        let report = trainer.run_epoch(0, &mut |_, _, _| {})?;
        each_epoch(&report);
        last = Some(report);
    }
    let state = trainer.state()?;
    let record = crate::io::checkpoint::RunRecord {
        model: model.clone(),
        batch: options.batch,
        epochs: options.epochs,
        adam: options.adam,
        seed: options.seed,
        init_seed: options.seed,
        data: train.name.clone(),
        epoch: state.epoch,
        next_step: state.next_step,
        trained_on: device_name,
        data_source: None,
        scaling: Some(train.scaling.clone()),
        columns: train.columns.clone(),
    };
    crate::io::checkpoint::save(dir, &plan, &record, &state)?;
    last.ok_or_else(|| Error::InvalidArgument("epochs must be at least 1".into()))
}
