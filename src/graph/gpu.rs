//! The GPU executor: a plan's buffers created once, every dispatch of a training step
//! prepared once (gather, forward, loss sums, backward, Adam), and each step recorded into
//! one compute pass and submitted once, with no copy between host and GPU. The step counter
//! and the batch cursor live on the GPU, in a table of the epoch's step states written with
//! the epoch's order (kernels/step.rs): each recorded step binds its row by a dynamic
//! offset. Losses accumulate on the GPU and are read back only when asked for.

use std::collections::VecDeque;

use crate::cpu::matmul::StoreLoss;
use crate::cpu::reparameterize::NoiseKey;
use crate::error::{host_capacity, Error, Result};
use crate::gpu::{mib, GpuBuffer, GpuContext};
use crate::graph::autodiff::{GradOp, PenaltyGrad};
use crate::graph::plan::{Location, Plan, TrainingFusion};
use crate::graph::{
    LinearShapes, LossKind, Op, Penalty, Role, RunConfig, Samples, TensorId, TrainData,
};
use crate::kernels::activation::Activation;
use crate::kernels::adam::AdamConfig;
use crate::kernels::gather::{DataShards, GatherSource};
use crate::kernels::matmul::{MatmulExtras, MatmulShape};
use crate::kernels::matmul_grouped_tn::{
    can_group_shapes, matmul_grouped_tn, matmul_grouped_tn_adam, runs_fused_on, AdamBuffers,
    GroupKey, WeightGradProblem, WeightGrads,
};
use crate::kernels::{self, step::StepStates, Dispatch, Traffic};

/// A held-out data set and the forward-only passes over it.
struct Evaluation {
    /// Data rows of the set.
    rows: usize,
    /// One state per batch, written once: noise keyed by the batch's number from 1.
    states: StepStates,
    totals: Vec<GpuBuffer>,
    /// One full batch: gather, forward, loss sums.
    full_batch: Vec<Dispatch>,
    /// The last, partial batch (if rows is not a multiple of the batch): its loss sums
    /// count only its real rows.
    tail: Vec<Dispatch>,
    /// The set and its one-hot labels: bound by the dispatches, held here.
    data: Vec<DataShards>,
}

/// The one-hot labels of `data` on the GPU, for a plan with a condition (else None).
fn upload_one_hot(
    ctx: &GpuContext,
    plan: &Plan,
    data: &TrainData,
    label: &str,
) -> Result<Option<DataShards>> {
    match plan.condition {
        Some(c) => {
            let classes = plan.graph.tensor(c).cols;
            let one_hot = data.one_hot_labels(classes)?;
            let shape = (data.rows, classes);
            let cap = ctx.max_binding_bytes();
            Ok(Some(DataShards::upload_f32(
                ctx, label, &one_hot, shape, cap,
            )?))
        }
        None => Ok(None),
    }
}

/// A data set's rows on the GPU, bytes or floats, in shards within the adapter's bindings.
fn upload_samples(ctx: &GpuContext, label: &str, data: &TrainData) -> Result<DataShards> {
    let (shape, cap) = ((data.rows, data.width), ctx.max_binding_bytes());
    match data.samples {
        Samples::U8(bytes) => DataShards::upload_u8(ctx, label, bytes, shape, cap),
        Samples::F32(values) => DataShards::upload_f32(ctx, label, values, shape, cap),
    }
}

/// About how many bytes of an output `GpuExecutor::infer_outputs` reads back at a time.
pub const READBACK_CHUNK_BYTES: usize = 32 << 20;

/// About how many FLOPs of matmuls one submit records at most (an evaluation or inference
/// pass's batches; a training run's steps, Trainer): a slow adapter (lavapipe on 2 cores:
/// about 40 GFLOP/s) finishes them in about 25 s, inside the wait's timeout
/// (DEFAULT_TIMEOUT, 120 s), however large the pass or the model. The usual models never
/// meet it: 8 steps of the wide VAE (784-2048-2048-64, batch 1024) are 0.6 TFLOP.
pub const FLOPS_PER_SUBMIT: f64 = 1e12;

/// Steps a training submit records: `requested`, or fewer where that many steps of
/// `step_flops` would pass [`FLOPS_PER_SUBMIT`]; at least one.
pub fn steps_within_submit_budget(requested: u32, step_flops: f64) -> u32 {
    let fit = (FLOPS_PER_SUBMIT / step_flops.max(1.0)) as u32;
    requested.min(fit).max(1)
}

/// The evaluation's noise is keyed by its own seed, apart from training's.
pub(crate) const EVAL_SEED_SALT: u64 = 0x5eed_e7a1_0000_0000;

/// One linear layer's weight gradient as the grouped kernel takes it: dy, x, (out, in), and
/// the dW and db offsets in the flat buffers.
type WeightGradPart = (GpuBuffer, GpuBuffer, (usize, usize), (usize, usize));

/// A set of weight gradients (backward ops) and the form the device chose for it.
type ChosenWeightGrads = (Vec<usize>, WeightGrads);

/// The kernel's view of a set's parts.
fn weight_grad_problems(parts: &[WeightGradPart]) -> Vec<WeightGradProblem<'_>> {
    parts
        .iter()
        .map(|(dy, x, (m, n), (dweight, dbias))| WeightGradProblem {
            m: *m,
            n: *n,
            dy,
            x,
            dweight: *dweight,
            dbias: *dbias,
        })
        .collect()
}

/// The form the device chooses for each of the plan's sets of weight gradients
/// ([`Plan::weight_grad_sets`]; kernels::matmul_grouped_tn, on GPUs timed against separate
/// dispatches when first seen); and whether the grouped dispatches will run Adam too: when
/// every set is grouped and the layers hold every parameter, the step needs no Adam
/// dispatch and no gradient buffer. Shapes alone decide: the plan's parameter offsets and
/// the pool's views always suit the grouped kernel. A set's layers whose shapes the kernel
/// cannot take (an out or in not a multiple of 4: a conditional model's x | label, a
/// CSV's odd width) run apart, a dispatch each, and the rest of the set may still group.
fn choose_weight_grads(ctx: &GpuContext, plan: &Plan) -> Result<(Vec<ChosenWeightGrads>, bool)> {
    let holds_every_parameter = linear_layers_hold_every_parameter(plan);
    let mut parts = Vec::new();
    for layers in plan.weight_grad_sets() {
        let (suited, apart): (Vec<usize>, Vec<usize>) = layers
            .iter()
            .partition(|&&j| can_group_shapes(ctx, &weight_grad_shapes(plan, &[j])));
        parts.push((suited, apart));
    }
    // A model with one set, every layer of it suited, runs Adam in it when grouped: its
    // tuning counts Adam in.
    let whole_model = matches!(parts.as_slice(), [(_, apart)] if apart.is_empty())
        && holds_every_parameter
        && runs_fused_on(ctx);
    let mut chosen = Vec::new();
    for (suited, apart) in parts {
        if !suited.is_empty() {
            let key = GroupKey {
                k: plan.weight_grad_rows(&suited),
                layers: weight_grad_shapes(plan, &suited),
                adam: whole_model,
            };
            let form = ctx.weight_grads(&key, true)?;
            chosen.push((suited, form));
        }
        if !apart.is_empty() {
            chosen.push((apart, WeightGrads::Separate));
        }
    }
    let all_grouped = chosen
        .iter()
        .all(|(_, form)| matches!(form, WeightGrads::Grouped(_)));
    let fuse_adam =
        !chosen.is_empty() && all_grouped && holds_every_parameter && runs_fused_on(ctx);
    Ok((chosen, fuse_adam))
}

/// [`GpuExecutor::weight_grads_form`] of the chosen forms.
fn weight_grads_form(chosen: &[ChosenWeightGrads], adam_fused: bool) -> &'static str {
    let grouped = |(_, form): &&ChosenWeightGrads| matches!(form, WeightGrads::Grouped(_));
    match chosen.iter().filter(grouped).count() {
        _ if adam_fused => "grouped, Adam fused",
        0 => "separate",
        n if n == chosen.len() => "grouped",
        _ => "partly grouped",
    }
}

/// (out, in) of each linear layer (backward op) of a set.
fn weight_grad_shapes(plan: &Plan, layers: &[usize]) -> Vec<(usize, usize)> {
    layers
        .iter()
        .filter_map(|&j| match plan.backward[j] {
            GradOp::Linear { dweight, .. } => {
                let dweight = plan.graph.tensor(dweight);
                Some((dweight.rows, dweight.cols))
            }
            _ => None,
        })
        .collect()
}

/// Whether every parameter is a linear layer's weight or bias (so that the grouped weight
/// gradients update them all when Adam is fused into them).
fn linear_layers_hold_every_parameter(plan: &Plan) -> bool {
    let graph = &plan.graph;
    let of = |t: TensorId| match graph.tensor(t).role {
        Role::Gradient { of } => Some(of),
        _ => None,
    };
    let held: Vec<TensorId> = plan
        .backward
        .iter()
        .filter_map(|op| match *op {
            GradOp::Linear { dweight, dbias, .. } => Some([of(dweight), of(dbias)]),
            _ => None,
        })
        .flatten()
        .flatten()
        .collect();
    graph.parameters().iter().all(|p| held.contains(p))
}

/// Device memory held by an executor's buffers, in bytes, by what they hold. The
/// dispatches' parameter buffers (a few dozen bytes each) are not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceMemory {
    /// The training and evaluation sets, their row orders and one-hot labels.
    pub data: u64,
    /// The parameters and Adam's two moments.
    pub parameters: u64,
    /// The flat gradient buffer (none when Adam runs in the grouped weight gradients).
    pub gradients: u64,
    /// The batch and the pooled buffers of activations and their gradients.
    pub activations: u64,
    /// Step tables, Adam's per-step scalars, loss totals.
    pub other: u64,
}

impl DeviceMemory {
    pub fn total(&self) -> u64 {
        self.data + self.parameters + self.gradients + self.activations + self.other
    }
}

/// "52.4 MiB (data 45.6, parameters and Adam 7.5, gradients 2.5, activations 1.6, other
/// 0.1)".
impl std::fmt::Display for DeviceMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} MiB (data {:.1}, parameters and Adam {:.1}, gradients {:.1}, activations \
             {:.1}, other {:.1})",
            mib(self.total()),
            mib(self.data),
            mib(self.parameters),
            mib(self.gradients),
            mib(self.activations),
            mib(self.other)
        )
    }
}

/// Bytes of data sets on the GPU.
fn shard_bytes(sets: &[DataShards]) -> u64 {
    sets.iter().map(DataShards::device_bytes).sum()
}

/// Bytes of a list of buffers.
fn bytes_of<'b>(buffers: impl IntoIterator<Item = &'b GpuBuffer>) -> u64 {
    buffers.into_iter().map(GpuBuffer::bytes).sum()
}

/// A plan's storage on the GPU and the prepared dispatches of one training step.
pub struct GpuExecutor<'a> {
    ctx: &'a GpuContext,
    plan: &'a Plan,
    data_rows: usize,
    total_steps: u32,
    params: GpuBuffer,
    input: GpuBuffer,
    /// The one-hot label batch of a conditional model.
    condition: Option<GpuBuffer>,
    pool: Vec<GpuBuffer>,
    /// Storage of every tensor ([`Plan::gpu_pool`]): the plan's, less the tensors no
    /// dispatch stores (None), with the pool laid out for the chosen weight-gradient form
    /// (grouped sets keep their dy and x to the step's end).
    location: Vec<Option<Location>>,
    grads: GpuBuffer,
    adam_m: GpuBuffer,
    adam_v: GpuBuffer,
    indices: GpuBuffer,
    /// The epoch's step states, one row per step (written by begin_epoch).
    states: StepStates,
    loss_totals: Vec<GpuBuffer>,
    steps: Vec<Dispatch>,
    eval: Option<Evaluation>,
    /// The next step's number, as the GPU's step states have it.
    next_step: u32,
    /// The row of the step states the next step reads.
    epoch_step: usize,
    /// The data set and its one-hot labels: bound by the dispatches, held here.
    data: Vec<DataShards>,
    /// Adam's per-step scalars: bound by the Adam dispatch, held here.
    step_scalars: GpuBuffer,
    /// Forward FLOPs an evaluation or inference submit records at most (but one batch).
    flops_per_submit: f64,
    /// Training submits not yet waited for, oldest first (see `steps_per_submit`).
    in_flight: VecDeque<wgpu::SubmissionIndex>,
    /// See [`GpuExecutor::weight_grads_form`].
    weight_grads_form: &'static str,
}

/// Training submits [`GpuExecutor::steps_per_submit`] leaves in flight: the GPU runs one
/// while the next is encoded, and no wait covers more than this many submits' work. An
/// epoch queued whole and waited for at its end could outlast the wait's timeout on a slow
/// GPU whose submits return at once (on lavapipe, one 8-step submit of 208 s passed even
/// before this bound, though an evaluation's single long submit did time out).
pub const SUBMITS_IN_FLIGHT: usize = 2;

impl<'a> GpuExecutor<'a> {
    /// Uploads the data set (for a training plan; a forward-only plan runs on `eval` alone)
    /// and the flat parameters (plan.param_len long), creates every buffer, and prepares
    /// every dispatch of a step.
    pub fn new(
        ctx: &'a GpuContext,
        plan: &'a Plan,
        params: &[f32],
        data: TrainData,
        eval: Option<TrainData>,
        run: RunConfig,
    ) -> Result<Self> {
        data.check()?;
        run.adam.check()?;
        let width = plan.graph.tensor(plan.input).cols;
        if data.width != width || params.len() != plan.param_len {
            return Err(Error::InvalidArgument(format!(
                "data width {} for a model input of {width}; {} parameters for a model of {}",
                data.width,
                params.len(),
                plan.param_len
            )));
        }
        let params_buffer = ctx.upload("params", params)?;
        // The flat gradient buffer is created with the step's dispatches, if they need it
        // (not when Adam runs in the grouped weight gradients); until then a stand-in.
        let grads = ctx.create_buffer("grads (none yet)", 4)?;
        // Adam's moments and step table, the epoch's order and step states: a training
        // plan's (a forward-only plan holds stand-ins, its passes read `eval`'s own).
        let (moments_len, steps, rows) = if plan.training {
            (plan.param_len, run.total_steps.max(1), data.rows)
        } else {
            (4, 1, 1)
        };
        let adam_m = ctx.create_buffer("adam m", moments_len)?;
        let adam_v = ctx.create_buffer("adam v", moments_len)?;
        // The table holds two floats per step: check its size before building it.
        ctx.check_buffer_size("adam step scalars", 2 * steps as usize)?;
        let table = ctx.upload("adam step scalars", &run.adam.step_scalar_table(steps))?;
        // One state per step of an epoch: every full batch of the index list.
        let steps_per_epoch = rows / plan.graph.batch;
        let states = StepStates::new(ctx, "step states", steps_per_epoch, plan.graph.batch)?;
        let input = ctx.create_buffer("batch", plan.graph.tensor(plan.input).len())?;
        let (chosen, adam_fused) = if plan.training {
            choose_weight_grads(ctx, plan)?
        } else {
            (Vec::new(), false)
        };
        let grouped: Vec<usize> = chosen
            .iter()
            .filter(|(_, form)| matches!(form, WeightGrads::Grouped(_)))
            .flat_map(|(layers, _)| layers.iter().copied())
            .collect();
        let (pool_sizes, location) = plan.gpu_pool(&grouped);
        let pool = pool_sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| ctx.create_buffer(&format!("pool {i}"), n))
            .collect::<Result<Vec<_>>>()?;
        let indices = ctx.upload("epoch order", &(0..rows as u32).collect::<Vec<_>>())?;
        // A term with running totals keeps one per batch row, or per slot of its linear
        // layer's matmul (see TrainingFusion).
        let loss_totals = plan
            .losses
            .iter()
            .map(|term| {
                let len = if plan.running_totals(term) {
                    plan.running_totals_len(term)
                } else {
                    1
                };
                ctx.create_buffer(term.kind.name(), len)
            })
            .collect::<Result<Vec<_>>>()?;
        let condition = match plan.condition {
            Some(c) => Some(ctx.create_buffer("label batch", plan.graph.tensor(c).len())?),
            None => None,
        };

        let mut executor = GpuExecutor {
            ctx,
            plan,
            data_rows: data.rows,
            total_steps: run.total_steps,
            params: params_buffer,
            input,
            condition,
            pool,
            location,
            grads,
            adam_m,
            adam_v,
            indices,
            states,
            loss_totals,
            steps: Vec::new(),
            eval: None,
            next_step: 1,
            epoch_step: 0,
            data: Vec::new(),
            step_scalars: table,
            flops_per_submit: FLOPS_PER_SUBMIT,
            in_flight: VecDeque::new(),
            weight_grads_form: weight_grads_form(&chosen, adam_fused),
        };
        if plan.training {
            // The training set and its labels (a forward-only plan reads only `eval`'s).
            let samples = upload_samples(ctx, "data set", &data)?;
            let labels = upload_one_hot(ctx, plan, &data, "labels")?;
            let source = GatherSource {
                data: &samples,
                indices: Some(&executor.indices),
                state: executor.states.binding(),
            };
            let label_source = labels.as_ref().map(|labels| GatherSource {
                data: labels,
                ..source
            });
            let mut steps = executor.prepare_pass(
                &source,
                label_source.as_ref(),
                run.seed,
                (&executor.loss_totals, plan.graph.batch),
                true,
            )?;
            if !adam_fused {
                executor.grads = ctx.create_buffer("grads", plan.param_len)?;
            }
            let weight_grads =
                executor.prepare_grouped_weight_grads(&chosen, adam_fused, &run.adam)?;
            for (j, &done) in plan.done_elsewhere.iter().enumerate() {
                if !done {
                    steps.extend(executor.prepare_backward(j, grouped.contains(&j))?);
                }
            }
            steps.extend(weight_grads);
            if !adam_fused {
                steps.push(kernels::adam::adam_step(
                    ctx,
                    &executor.params,
                    &executor.adam_m,
                    &executor.adam_v,
                    &executor.grads,
                    &executor.step_scalars,
                    executor.states.binding(),
                    plan.param_len,
                    &run.adam,
                )?);
            }
            executor.steps = steps;
            executor.data = [samples].into_iter().chain(labels).collect();
        }
        if let Some(eval) = eval {
            executor.eval = Some(executor.prepare_evaluation(eval, run.seed ^ EVAL_SEED_SALT)?);
        }
        Ok(executor)
    }

    /// Dispatches per training step.
    pub fn dispatches_per_step(&self) -> usize {
        self.steps.len()
    }

    /// The memory one training step moves at least: its dispatches' [`Traffic`] summed.
    pub fn step_traffic(&self) -> Traffic {
        self.steps.iter().map(Dispatch::traffic).sum()
    }

    /// How a training step computes its weight gradients: "separate" (a dispatch a layer),
    /// "grouped" (kernels::matmul_grouped_tn), "partly grouped" (the layers whose shapes
    /// the grouped kernel cannot take a dispatch each) or "grouped, Adam fused".
    pub fn weight_grads_form(&self) -> &'static str {
        self.weight_grads_form
    }

    /// Device memory held by this executor's buffers.
    pub fn device_memory(&self) -> DeviceMemory {
        let eval = self.eval.as_ref();
        let eval_data = eval.map_or(0, |e| shard_bytes(&e.data));
        let eval_other = eval.map_or(0, |e| e.states.bytes() + bytes_of(&e.totals));
        // A stand-in of a few elements until a dispatch needs the flat gradients.
        let gradients = if self.grads.len < self.plan.param_len {
            0
        } else {
            self.grads.bytes()
        };
        DeviceMemory {
            data: self.indices.bytes() + shard_bytes(&self.data) + eval_data,
            parameters: bytes_of([&self.params, &self.adam_m, &self.adam_v]),
            gradients,
            activations: bytes_of(&self.pool) + bytes_of([&self.input]) + bytes_of(&self.condition),
            other: self.states.bytes()
                + self.step_scalars.bytes()
                + bytes_of(&self.loss_totals)
                + eval_other,
        }
    }

    /// The dispatches of one training step, in order (for per-dispatch timing).
    pub fn step_dispatches(&self) -> &[Dispatch] {
        &self.steps
    }

    /// The number of the next step (1 for the first).
    pub fn next_step(&self) -> u32 {
        self.next_step
    }

    /// Starts an epoch with this order of data rows: writes it and the epoch's step states,
    /// from the next step's number with the batch cursor at 0 (the only host-to-GPU copies
    /// of training, once per epoch).
    pub fn begin_epoch(&mut self, order: &[u32]) -> Result<()> {
        self.training_only("begin_epoch")?;
        if order.len() != self.data_rows || order.iter().any(|&r| r as usize >= self.data_rows) {
            return Err(Error::InvalidArgument(
                "epoch order: one index per data row, each below the row count".into(),
            ));
        }
        self.ctx.write_buffer(&self.indices, order)?;
        let rows = self.states.rows();
        self.states
            .write(self.ctx, [self.next_step, 0], rows, self.plan.graph.batch)?;
        self.epoch_step = 0;
        Ok(())
    }

    /// Training steps left in the epoch (a new epoch must begin before more).
    pub fn steps_left_in_epoch(&self) -> usize {
        self.states.rows() - self.epoch_step
    }

    /// Records one training step into one compute pass and submits it; does not wait.
    pub fn step(&mut self) -> Result<()> {
        self.steps_per_submit(1)
    }

    /// Records `n` training steps into one compute pass and submits them together; then,
    /// with more than [`SUBMITS_IN_FLIGHT`] submits unfinished, waits for the oldest.
    pub fn steps_per_submit(&mut self, n: u32) -> Result<()> {
        let commands = self.encode_steps(n, None)?;
        self.submit_steps(commands, n)?;
        while self.in_flight.len() > SUBMITS_IN_FLIGHT {
            let oldest = self.in_flight.pop_front();
            self.ctx.wait("training step", oldest)?;
        }
        Ok(())
    }

    /// Training submits not waited for one by one (at most [`SUBMITS_IN_FLIGHT`] after
    /// `steps_per_submit`; `finish` clears them).
    pub fn submits_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Records the next `n` training steps into one compute pass of a new command buffer,
    /// with timestamps at the pass's beginning and end when given; submits nothing (the
    /// bench times encoding and submission apart).
    pub fn encode_steps(
        &self,
        n: u32,
        timestamps: Option<wgpu::ComputePassTimestampWrites>,
    ) -> Result<wgpu::CommandBuffer> {
        if n as usize > self.steps_left_in_epoch() {
            return Err(Error::InvalidArgument(format!(
                "{n} steps from step {} of an epoch of {}: begin the next epoch first",
                self.epoch_step + 1,
                self.states.rows()
            )));
        }
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("training step"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("training step"),
                timestamp_writes: timestamps,
            });
            for k in 0..n as usize {
                let state = self.states.offset(self.epoch_step + k);
                for dispatch in &self.steps {
                    dispatch.record_at_state(&mut pass, state);
                }
            }
        }
        Ok(encoder.finish())
    }

    /// Submits `commands`, which [`GpuExecutor::encode_steps`] recorded with `n` steps; does
    /// not wait.
    pub fn submit_steps(&mut self, commands: wgpu::CommandBuffer, n: u32) -> Result<()> {
        self.training_only("submit_steps")?;
        if n == 0 || self.next_step + n - 1 > self.total_steps {
            return Err(Error::InvalidArgument(format!(
                "{n} steps from step {} in a run of {} steps",
                self.next_step, self.total_steps
            )));
        }
        let index = self
            .ctx
            .scoped("training step", || self.ctx.queue.submit([commands]))?;
        self.in_flight.push_back(index);
        self.next_step += n;
        self.epoch_step += n as usize;
        Ok(())
    }

    /// An error naming `what` for a forward-only plan, which holds no epoch order, step
    /// states or Adam moments.
    fn training_only(&self, what: &str) -> Result<()> {
        if self.plan.training {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "{what}: a forward-only plan cannot train"
            )))
        }
    }

    /// Waits for submitted steps to finish.
    pub fn finish(&mut self) -> Result<()> {
        self.ctx.wait("training step", None)?;
        self.in_flight.clear();
        Ok(())
    }

    /// Σ per-row loss of each term since the last reset (waits for the GPU); a term with
    /// running totals per batch row is summed here, in f64.
    pub fn loss_totals(&self) -> Result<Vec<f64>> {
        self.loss_totals
            .iter()
            .map(|b| {
                let totals = self.ctx.read_buffer::<f32>(b)?;
                Ok(totals.iter().map(|&t| f64::from(t)).sum())
            })
            .collect()
    }

    pub fn reset_losses(&self) -> Result<()> {
        for total in &self.loss_totals {
            self.ctx.write_buffer(total, &vec![0.0f32; total.len])?;
        }
        Ok(())
    }

    /// The flat parameters (waits for the GPU).
    pub fn read_params(&self) -> Result<Vec<f32>> {
        self.ctx.read_buffer(&self.params)
    }

    /// Adam's first and second moments, flat like the parameters (waits for the GPU).
    pub fn read_adam(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.training_only("read_adam")?;
        Ok((
            self.ctx.read_buffer(&self.adam_m)?,
            self.ctx.read_buffer(&self.adam_v)?,
        ))
    }

    /// Continues a run: parameters, Adam's moments and the next step's number (takes
    /// effect at the next `begin_epoch`).
    pub fn restore(
        &mut self,
        params: &[f32],
        adam: &(Vec<f32>, Vec<f32>),
        next_step: u32,
    ) -> Result<()> {
        self.training_only("restore")?;
        let n = self.plan.param_len;
        if params.len() != n || adam.0.len() != n || adam.1.len() != n || next_step == 0 {
            return Err(Error::InvalidArgument(format!(
                "restore: state for {} parameters, the model has {n}",
                params.len()
            )));
        }
        self.ctx.write_buffer(&self.params, params)?;
        self.ctx.write_buffer(&self.adam_m, &adam.0)?;
        self.ctx.write_buffer(&self.adam_v, &adam.1)?;
        self.next_step = next_step;
        Ok(())
    }

    /// A tensor's values (waits for the GPU).
    pub fn read_tensor(&self, t: TensorId) -> Result<Vec<f32>> {
        self.ctx.read_buffer(&self.view(t)?)
    }

    /// The buffer range holding a tensor.
    fn view(&self, t: TensorId) -> Result<GpuBuffer> {
        let len = self.plan.graph.tensor(t).len();
        let Some(location) = self.location[t.0] else {
            return Err(Error::InvalidArgument(format!(
                "tensor {} is never stored on the GPU: the dispatch that computes it applies \
                 the next op as it stores",
                self.plan.graph.tensor(t).name
            )));
        };
        match location {
            Location::Input => self.input.view(0, len),
            Location::Condition => match &self.condition {
                Some(buffer) => buffer.view(0, len),
                None => Err(Error::InvalidArgument("the plan has no condition".into())),
            },
            Location::Params(offset) => self.params.view(offset, len),
            Location::Grads(_) if self.grads.len < self.plan.param_len => {
                Err(Error::InvalidArgument(
                    "this step stores no gradients: Adam runs in its grouped weight gradients \
                     (--weight-grads separate keeps them)"
                        .into(),
                ))
            }
            Location::Grads(offset) => self.grads.view(offset, len),
            Location::Pool(slot) => self.pool[slot].view(0, len),
        }
    }

    /// Gather at the cursor of `source.state`, the forward ops (noise keyed by `seed` and that
    /// state's step), and the loss sums of the first `rows_counted` data rows into `totals`
    /// (the rows of their samples, for a term of several rows a data row). In a
    /// `training` pass the plan's training fusions apply: their losses add to running totals
    /// and write their gradients.
    fn prepare_pass(
        &self,
        source: &GatherSource,
        label_source: Option<&GatherSource>,
        seed: u64,
        (totals, rows_counted): (&[GpuBuffer], usize),
        training: bool,
    ) -> Result<Vec<Dispatch>> {
        let (ctx, plan) = (self.ctx, self.plan);
        // A conditional model's x | label, written by the gather where the data set allows
        // it (else the concat runs apart).
        let join_op = plan.input_join();
        let join = match (join_op, &self.condition, label_source) {
            (Some(c), Some(condition), Some(labels))
                if kernels::gather::joins(source.data, labels.data) =>
            {
                Some((c, condition, labels.data))
            }
            _ => None,
        };
        // A denoising model's corruption of its input, drawn by the gather.
        let corruption = match plan.input_corruption().map(|c| &plan.graph.ops[c]) {
            Some(&Op::Corrupt {
                y, noise, stream, ..
            }) => Some((self.view(y)?, noise, stream)),
            _ => None,
        };
        let batch = plan.graph.batch;
        let mut dispatches = match (join, &corruption) {
            (Some((c, condition, labels)), _) => {
                let Op::Concat { y, .. } = plan.graph.ops[c] else {
                    return Err(Error::InvalidArgument(format!(
                        "op {c} is not the input's concat"
                    )));
                };
                let out = kernels::gather::JoinedBatch {
                    x: &self.input,
                    label: condition,
                    joined: &self.view(y)?,
                };
                vec![kernels::gather::gather_join(
                    ctx, &out, source, labels, batch,
                )?]
            }
            (None, Some((noisy, noise, stream))) => {
                let corruption = kernels::gather::Corruption {
                    noisy,
                    noise: *noise,
                    key: NoiseKey {
                        seed,
                        step: 0,
                        stream: *stream,
                    },
                };
                kernels::gather::gather_corrupt(ctx, &self.input, &corruption, source, batch)?
            }
            (None, None) if source.data.bytes => {
                kernels::gather::gather_u8(ctx, &self.input, source, batch)?
            }
            (None, None) => kernels::gather::gather_f32(ctx, &self.input, source, batch)?,
        };
        if let (None, Some(condition), Some(labels)) = (join, &self.condition, label_source) {
            dispatches.extend(kernels::gather::gather_f32(
                ctx,
                condition,
                labels,
                plan.graph.batch,
            )?);
        }
        let fusion = |i: usize| {
            if training {
                plan.training_fusion[i]
            } else {
                TrainingFusion::None
            }
        };
        for (i, op) in plan.graph.ops.iter().enumerate() {
            let apart = join.is_none() && join_op == Some(i);
            if (plan.fused[i] && !apart) || fusion(i).done_in_another_dispatch() {
                continue;
            }
            let layer = match *op {
                Op::Linear { y, .. } => Some(&plan.graph.tensor(y).name),
                _ => None,
            };
            if let TrainingFusion::IwaeBound { .. } = fusion(i) {
                dispatches.extend(self.prepare_iwae_bound(i, fusion(i), totals)?);
                continue;
            }
            if fusion(i) != TrainingFusion::None {
                let dispatch = self.prepare_fused(i, fusion(i), totals, source.state, seed)?;
                dispatches.push(match layer {
                    Some(name) => dispatch.with_role(format!("{name} + loss")),
                    None => dispatch,
                });
                continue;
            }
            let epilogue = match plan.graph.ops.get(i + 1) {
                Some(&Op::Activation { kind, y, .. }) if plan.fused[i + 1] => Some((kind, y)),
                _ => None,
            };
            let dispatch = self.prepare_forward(op, epilogue, source.state, seed)?;
            dispatches.push(match layer {
                Some(name) => dispatch.with_role(name.as_str()),
                None => dispatch,
            });
        }
        // The loss rows of the terms without running totals, added to their totals up to
        // MAX_SUM_TERMS a dispatch.
        let mut sums = Vec::new();
        for (term, total) in plan.losses.iter().zip(totals) {
            if fusion(term.op) == TrainingFusion::None {
                let counted = rows_counted * plan.graph.rows_per_data_row(term.per_row);
                sums.push((total, self.view(term.per_row)?, counted));
            }
        }
        for chunk in sums.chunks(kernels::reduce::MAX_SUM_TERMS) {
            let terms: Vec<_> = chunk.iter().map(|(t, rows, n)| (*t, rows, *n)).collect();
            dispatches.push(kernels::reduce::sum_terms(ctx, &terms)?);
        }
        Ok(dispatches)
    }

    fn prepare_evaluation(&self, eval: TrainData, seed: u64) -> Result<Evaluation> {
        eval.check()?;
        let (ctx, batch) = (self.ctx, self.plan.graph.batch);
        let width = self.plan.graph.tensor(self.plan.input).cols;
        if eval.width != width {
            return Err(Error::InvalidArgument(format!(
                "evaluation data width {} for a model input of {width}",
                eval.width
            )));
        }
        // Rows in order (no index list), the last batch padded with zero rows (not
        // counted).
        let samples = upload_samples(ctx, "evaluation set", &eval)?;
        let states = StepStates::new(ctx, "evaluation states", eval.rows.div_ceil(batch), batch)?;
        let totals = self
            .plan
            .losses
            .iter()
            .map(|t| ctx.create_buffer(t.kind.name(), 1))
            .collect::<Result<Vec<_>>>()?;
        let source = GatherSource {
            data: &samples,
            indices: None,
            state: states.binding(),
        };
        let labels = upload_one_hot(ctx, self.plan, &eval, "evaluation labels")?;
        let label_source = labels.as_ref().map(|labels| GatherSource {
            data: labels,
            ..source
        });
        let label_source = label_source.as_ref();
        let full_batch = self.prepare_pass(&source, label_source, seed, (&totals, batch), false)?;
        let remainder = eval.rows % batch;
        let tail = if remainder > 0 {
            self.prepare_pass(&source, label_source, seed, (&totals, remainder), false)?
        } else {
            Vec::new()
        };
        Ok(Evaluation {
            rows: eval.rows,
            states,
            totals,
            full_batch,
            tail,
            data: [samples].into_iter().chain(labels).collect(),
        })
    }

    /// Evaluation batches one submit records: about `flops_per_submit` of forward work
    /// ([`FLOPS_PER_SUBMIT`] unless set), at least one batch.
    fn batches_per_submit(&self) -> usize {
        let per_batch = self.plan.forward_matmul_flops().max(1.0);
        ((self.flops_per_submit / per_batch) as usize).max(1)
    }

    /// Sets how much forward work (matmul FLOPs) an evaluation or inference submit records
    /// at most, one batch at the least: less keeps each submit short (a host that shares
    /// the GPU with drawing), more pays fewer submits. The results do not depend on it.
    pub fn set_flops_per_submit(&mut self, flops: f64) {
        self.flops_per_submit = flops;
    }

    /// Σ per-row loss of each term over the whole evaluation set, with the current
    /// parameters (a submit and a wait per [`FLOPS_PER_SUBMIT`] of forward work, or as
    /// [`Self::set_flops_per_submit`] sets it). The noise is the same at every call.
    pub fn evaluate(&self) -> Result<Vec<f64>> {
        self.evaluate_with_progress(&mut |_, _| {})
    }

    /// `evaluate`, calling `progress` (rows done, rows in all) after each submit.
    pub fn evaluate_with_progress(
        &self,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<f64>> {
        let eval = self
            .eval
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("no evaluation data was given".into()))?;
        for total in &eval.totals {
            self.ctx.write_buffer(total, &[0.0f32])?;
        }
        // Every batch, the last one partial (the tail) where the rows run out.
        let batch = self.plan.graph.batch;
        let (batches, full_batches) = (eval.rows.div_ceil(batch), eval.rows / batch);
        let per_submit = self.batches_per_submit();
        for first in (0..batches).step_by(per_submit) {
            let end = batches.min(first + per_submit);
            let mut encoder =
                self.ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("evaluation"),
                    });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("evaluation"),
                    timestamp_writes: None,
                });
                for b in first..end {
                    let dispatches = if b < full_batches {
                        &eval.full_batch
                    } else {
                        &eval.tail
                    };
                    let state = eval.states.offset(b);
                    dispatches
                        .iter()
                        .for_each(|d| d.record_at_state(&mut pass, state));
                }
            }
            self.ctx.submit_and_wait("evaluation", encoder.finish())?;
            progress((end * batch).min(eval.rows), eval.rows);
        }
        eval.totals
            .iter()
            .map(|b| Ok(f64::from(self.ctx.read_buffer::<f32>(b)?[0])))
            .collect()
    }

    /// The values of `output` for every row of the evaluation set, row-major: the
    /// evaluation passes with each batch's output copied out (see `infer_outputs`).
    pub fn infer(&self, output: TensorId) -> Result<Vec<f32>> {
        Ok(self.infer_outputs(&[output])?.remove(0))
    }

    /// Several outputs of one forward pass over the evaluation data, each as `infer` gives
    /// it. The rows come back in chunks of whole batches, about [`READBACK_CHUNK_BYTES`] of
    /// the widest output each and at most [`FLOPS_PER_SUBMIT`] of work (one
    /// submit and a wait per chunk), so that no buffer outgrows the adapter's limits and no
    /// wait its timeout however many rows there are.
    pub fn infer_outputs(&self, outputs: &[TensorId]) -> Result<Vec<Vec<f32>>> {
        let eval = self.eval.as_ref().ok_or_else(|| {
            Error::InvalidArgument("no data to run the model on was given".into())
        })?;
        for &output in outputs {
            self.plan.graph.check_one_row_per_data_row(output)?;
        }
        let batch = self.plan.graph.batch;
        let widest = outputs
            .iter()
            .map(|&t| self.plan.graph.tensor(t).cols)
            .max()
            .unwrap_or(1);
        // A chunk's buffer within the adapter's buffer limits too, and its forward work
        // within a submit's.
        let chunk_bytes = READBACK_CHUNK_BYTES.min(self.ctx.max_binding_bytes() as usize);
        let batches = (chunk_bytes / (4 * widest) / batch).min(self.batches_per_submit());
        let chunk_rows = batches.max(1) * batch;
        // (cols, the output's buffer range, the buffer a chunk of its rows is copied into).
        let copies = outputs
            .iter()
            .map(|&output| {
                let cols = self.plan.graph.tensor(output).cols;
                let chunk = chunk_rows.min(eval.rows) * cols;
                let result = self.ctx.create_buffer("inference output", chunk)?;
                Ok((cols, self.view(output)?, result))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut values = copies
            .iter()
            .map(|(cols, ..)| host_capacity(eval.rows.saturating_mul(*cols), "inference output"))
            .collect::<Result<Vec<Vec<f32>>>>()?;
        for first in (0..eval.rows).step_by(chunk_rows) {
            let rows = chunk_rows.min(eval.rows - first);
            self.infer_chunk(eval, first, rows, &copies)?;
            for ((cols, _, result), values) in copies.iter().zip(values.iter_mut()) {
                values.extend(self.ctx.read_buffer::<f32>(&result.view(0, rows * cols)?)?);
            }
        }
        Ok(values)
    }

    /// The forward passes of evaluation rows first..first + rows (whole batches but the
    /// data's last), each output's rows copied to the start of its chunk buffer.
    fn infer_chunk(
        &self,
        eval: &Evaluation,
        first: usize,
        rows: usize,
        copies: &[(usize, GpuBuffer, GpuBuffer)],
    ) -> Result<()> {
        let batch = self.plan.graph.batch;
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("inference"),
            });
        for start in (first..first + rows).step_by(batch) {
            let counted = batch.min(eval.rows - start);
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("inference"),
                    timestamp_writes: None,
                });
                let dispatches = if counted == batch {
                    &eval.full_batch
                } else {
                    &eval.tail
                };
                let state = eval.states.offset(start / batch);
                dispatches
                    .iter()
                    .for_each(|d| d.record_at_state(&mut pass, state));
            }
            for (cols, source, result) in copies {
                encoder.copy_buffer_to_buffer(
                    &source.buffer,
                    source.offset,
                    &result.buffer,
                    ((start - first) * cols * 4) as u64,
                    (counted * cols * 4) as u64,
                );
            }
        }
        self.ctx.submit_and_wait("inference", encoder.finish())
    }

    /// The dispatch of a forward op; a linear layer given `epilogue` = (f, z) stores
    /// z = f(x·Wᵀ + b) instead of its own output (the activation fused into it).
    fn prepare_forward(
        &self,
        op: &Op,
        epilogue: Option<(Activation, TensorId)>,
        state: &GpuBuffer,
        seed: u64,
    ) -> Result<Dispatch> {
        let (ctx, graph) = (self.ctx, &self.plan.graph);
        let d = match *op {
            Op::Linear { y, x, weight, bias } => {
                let shape = MatmulShape {
                    activation: epilogue.map(|(kind, _)| kind),
                    ..LinearShapes::new(
                        graph.tensor(x).rows,
                        graph.tensor(x).cols,
                        graph.tensor(y).cols,
                        false,
                    )
                    .forward
                };
                let out = epilogue.map_or(y, |(_, z)| z);
                kernels::matmul::matmul(
                    ctx,
                    &self.view(out)?,
                    &self.view(x)?,
                    &self.view(weight)?,
                    Some(&self.view(bias)?),
                    &shape,
                )?
            }
            Op::Activation { kind, y, x } => {
                kind.forward(ctx, &self.view(y)?, &self.view(x)?, graph.tensor(y).len())?
            }
            Op::Reparameterize {
                z,
                eps,
                stats,
                stream,
            } => {
                let (rows, cols) = (graph.tensor(z).rows, graph.tensor(z).cols);
                // The stats, or the rows a folded RepeatRows would have repeated.
                let (stats, repeat) = self.plan.repeat_source(stats);
                kernels::reparameterize::reparameterize_forward(
                    ctx,
                    &self.view(z)?,
                    &self.view(eps)?,
                    (&self.view(stats)?, repeat),
                    state,
                    rows,
                    cols,
                    seed,
                    stream,
                )?
            }
            Op::Kl { per_row, stats, .. } => {
                let (rows, cols) = (graph.tensor(stats).rows, graph.tensor(stats).cols / 2);
                let (out, stats) = (self.view(per_row)?, self.view(stats)?);
                kernels::kl::kl_forward(ctx, &out, &stats, rows, cols)?
            }
            Op::Loss {
                kind,
                per_row,
                a,
                b,
                ..
            } => self.loss_rows(kind, (per_row, None), a, b)?,
            Op::LogWeight {
                logw,
                recon,
                z,
                eps,
                stats,
                recon_weight,
            } => {
                let (rows, cols) = (graph.tensor(z).rows, graph.tensor(z).cols);
                let (stats, repeat) = self.plan.repeat_source(stats);
                kernels::log_weight::log_weight(
                    ctx,
                    &self.view(logw)?,
                    &self.view(recon)?,
                    &self.view(z)?,
                    &self.view(eps)?,
                    (&self.view(stats)?, repeat),
                    rows,
                    cols,
                    recon_weight,
                )?
            }
            Op::NegLogMeanExp {
                per_row, logw, k, ..
            } => kernels::log_mean_exp::neg_log_mean_exp(
                ctx,
                &self.view(per_row)?,
                &self.view(logw)?,
                graph.tensor(logw).rows,
                k,
            )?,
            Op::Concat { y, a, b } => {
                let (rows, cols_a, cols_b) = (
                    graph.tensor(a).rows,
                    graph.tensor(a).cols,
                    graph.tensor(b).cols,
                );
                kernels::concat::concat_cols(
                    ctx,
                    &self.view(y)?,
                    &self.view(a)?,
                    &self.view(b)?,
                    rows,
                    cols_a,
                    cols_b,
                )?
            }
            Op::RepeatRows { y, x, k } => {
                let (rows, cols) = (graph.tensor(x).rows, graph.tensor(x).cols);
                let (y, x) = (self.view(y)?, self.view(x)?);
                kernels::repeat_rows::repeat_rows(ctx, &y, &x, rows, cols, k)?
            }
            Op::Corrupt {
                y,
                x,
                noise,
                stream,
            } => {
                let key = NoiseKey {
                    seed,
                    step: 0,
                    stream,
                };
                let n = graph.tensor(y).len();
                let (y, x) = (self.view(y)?, self.view(x)?);
                kernels::corrupt::corrupt(ctx, &y, &x, state, n, noise, key)?
            }
            Op::Penalty {
                penalty,
                per_row,
                rho_hat,
                x,
                ..
            } => {
                let (rows, cols) = (graph.tensor(x).rows, graph.tensor(x).cols);
                let (out, x) = (self.view(per_row)?, self.view(x)?);
                match (penalty, rho_hat) {
                    (Penalty::KlSparsity { rho }, Some(rho_hat)) => {
                        kernels::kl_sparsity::kl_sparsity_forward(
                            ctx,
                            &out,
                            &self.view(rho_hat)?,
                            &x,
                            rows,
                            cols,
                            rho,
                        )?
                    }
                    _ => kernels::l1::l1_forward(ctx, &out, &x, rows, cols)?,
                }
            }
        };
        Ok(d)
    }

    /// The per-row loss of prediction `a` against target `b` into `per_row`, and into
    /// `totals` where given (a training step's loss whose rows other ops read).
    fn loss_rows(
        &self,
        kind: LossKind,
        (per_row, totals): (TensorId, Option<&GpuBuffer>),
        a: TensorId,
        b: TensorId,
    ) -> Result<Dispatch> {
        let (ctx, graph) = (self.ctx, &self.plan.graph);
        let (rows, cols) = (graph.tensor(a).rows, graph.tensor(a).cols);
        // The target, or the rows a folded RepeatRows would have repeated.
        let (b, repeat) = self.plan.repeat_source(b);
        let (out, a, b) = (self.view(per_row)?, self.view(a)?, self.view(b)?);
        let target = (&b, repeat);
        match kind {
            LossKind::Mse => kernels::mse::mse_forward(ctx, (&out, totals), &a, target, rows, cols),
            LossKind::Bce => kernels::bce::bce_forward(ctx, (&out, totals), &a, target, rows, cols),
            LossKind::Kl | LossKind::L1 | LossKind::KlSparsity | LossKind::Iw => {
                Err(super::cpu::not_a_target_loss(kind))
            }
        }
    }

    /// The IWAE's importance weighting: log weights op `i` with the work `fusion`
    /// (TrainingFusion::IwaeBound) moves into its dispatch, the bound, its gradients and,
    /// with `recon`, the reconstruction loss and its gradient; on a device that binds fewer
    /// storage buffers than that kernel's 11, the loss's rows, the bound and the loss's
    /// gradient as three dispatches.
    fn prepare_iwae_bound(
        &self,
        i: usize,
        fusion: TrainingFusion,
        totals: &[GpuBuffer],
    ) -> Result<Vec<Dispatch>> {
        let (ctx, plan) = (self.ctx, self.plan);
        let graph = &plan.graph;
        let totals_of = |op: usize| term_totals(plan, totals, op);
        let (
            TrainingFusion::IwaeBound {
                bound,
                bound_grad,
                grad,
                recon: recon_loss,
            },
            &Op::LogWeight {
                recon,
                z,
                eps,
                stats,
                recon_weight,
                ..
            },
        ) = (fusion, &graph.ops[i])
        else {
            return Err(Error::InvalidArgument(
                "an IWAE bound fused into an op not its log weights".into(),
            ));
        };
        let (
            &Op::NegLogMeanExp { k, .. },
            &GradOp::NegLogMeanExp { dlogw, scale, .. },
            &GradOp::LogWeight { dz, dstats, .. },
        ) = (
            &graph.ops[bound],
            &plan.backward[bound_grad],
            &plan.backward[grad],
        )
        else {
            return Err(Error::InvalidArgument(
                "log weights fused with ops not their bound's".into(),
            ));
        };
        let (rows, cols) = (graph.tensor(z).rows, graph.tensor(z).cols);
        let (stats, repeat) = plan.repeat_source(stats);
        let buffers = kernels::iwae_bound::IwaeBoundBuffers {
            totals: totals_of(bound)?,
            dlogw: &self.view(dlogw)?,
            dz: &self.view(dz)?,
            dstats: &self.view(dstats)?,
            recon: &self.view(recon)?,
            z: &self.view(z)?,
            eps: &self.view(eps)?,
            stats: (&self.view(stats)?, repeat),
        };
        let (dims, weights) = ((rows, cols, k), (recon_weight, scale));
        let bound_alone =
            |buffers| kernels::iwae_bound::iwae_bound_forward_backward(ctx, buffers, dims, weights);
        let Some((loss, loss_grad)) = recon_loss else {
            return Ok(vec![bound_alone(&buffers)?]);
        };
        let (
            &Op::Loss {
                kind,
                per_row,
                a,
                b,
                ..
            },
            &GradOp::Loss {
                da,
                scale: loss_scale,
                row_grad: Some((_, factor)),
                ..
            },
        ) = (&graph.ops[loss], &plan.backward[loss_grad])
        else {
            return Err(Error::InvalidArgument(
                "an IWAE bound fused with a loss not its reconstruction's".into(),
            ));
        };
        if !kernels::iwae_bound::runs_with_recon_on(ctx) {
            let mut apart = vec![
                self.loss_rows(kind, (per_row, Some(totals_of(loss)?)), a, b)?,
                bound_alone(&buffers)?,
            ];
            apart.extend(self.prepare_backward(loss_grad, false)?);
            return Ok(apart);
        }
        let (target, target_repeat) = plan.repeat_source(b);
        let recon_buffers = kernels::iwae_bound::ReconBuffers {
            recon_totals: totals_of(loss)?,
            dout: &self.view(da)?,
            out: &self.view(a)?,
            target: (&self.view(target)?, target_repeat),
        };
        let recon_loss = kernels::iwae_bound::ReconLoss {
            mse: kind == LossKind::Mse,
            cols: graph.tensor(a).cols,
            scale: loss_scale,
            factor,
        };
        Ok(vec![kernels::iwae_bound::iwae_bound_with_recon(
            ctx,
            &buffers,
            &recon_buffers,
            dims,
            weights,
            recon_loss,
        )?])
    }

    /// The dispatch of forward op `i` with the work `fusion` moves into it: a loss that also
    /// writes its gradient or adds its rows to running totals, or the VAE head. Loss rows go
    /// to the term's running totals.
    fn prepare_fused(
        &self,
        i: usize,
        fusion: TrainingFusion,
        totals: &[GpuBuffer],
        state: &GpuBuffer,
        seed: u64,
    ) -> Result<Dispatch> {
        let (ctx, plan) = (self.ctx, self.plan);
        let graph = &plan.graph;
        let totals_of = |op: usize| term_totals(plan, totals, op);
        match (fusion, &graph.ops[i], &plan.backward) {
            (
                TrainingFusion::RowsToTotals,
                &Op::Loss {
                    kind,
                    per_row,
                    a,
                    b,
                    ..
                },
                _,
            ) => self.loss_rows(kind, (per_row, Some(totals_of(i)?)), a, b),
            (
                TrainingFusion::LossWithGrad { grad },
                &Op::Penalty {
                    penalty,
                    rho_hat,
                    x,
                    ..
                },
                backward,
            ) => {
                let GradOp::Penalty(PenaltyGrad { dx, scale, .. }) = backward[grad] else {
                    return Err(Error::InvalidArgument(
                        "a penalty fused with a non-penalty gradient".into(),
                    ));
                };
                let (rows, cols) = (graph.tensor(x).rows, graph.tensor(x).cols);
                let (totals, dx, x) = (totals_of(i)?, self.view(dx)?, self.view(x)?);
                match (penalty, rho_hat) {
                    (Penalty::KlSparsity { rho }, Some(rho_hat)) => {
                        kernels::kl_sparsity::kl_sparsity_forward_backward(
                            ctx,
                            totals,
                            &self.view(rho_hat)?,
                            &dx,
                            &x,
                            rows,
                            cols,
                            rho,
                            scale,
                        )
                    }
                    _ => kernels::l1::l1_forward_backward(ctx, totals, &dx, &x, rows, cols, scale),
                }
            }
            (
                TrainingFusion::LossWithGrad { grad },
                &Op::NegLogMeanExp { logw, k, .. },
                backward,
            ) => {
                let GradOp::NegLogMeanExp { dlogw, scale, .. } = backward[grad] else {
                    return Err(Error::InvalidArgument(
                        "a bound fused with a gradient not its own".into(),
                    ));
                };
                let rows = graph.tensor(logw).rows;
                let (dlogw, logw) = (self.view(dlogw)?, self.view(logw)?);
                kernels::log_mean_exp::neg_log_mean_exp_forward_backward(
                    ctx,
                    totals_of(i)?,
                    &dlogw,
                    &logw,
                    (rows, k),
                    scale,
                )
            }
            (TrainingFusion::LossWithGrad { grad }, &Op::Loss { kind, a, b, .. }, backward) => {
                let GradOp::Loss { da, scale, .. } = backward[grad] else {
                    return Err(Error::InvalidArgument(
                        "a loss fused with a non-loss gradient".into(),
                    ));
                };
                let (rows, cols) = (graph.tensor(a).rows, graph.tensor(a).cols);
                let (totals, da) = (totals_of(i)?, self.view(da)?);
                let (a, b) = (self.view(a)?, self.view(b)?);
                match kind {
                    LossKind::Bce => kernels::bce::bce_forward_backward(
                        ctx, totals, &da, &a, &b, rows, cols, scale,
                    ),
                    _ => kernels::mse::mse_forward_backward(
                        ctx, totals, &da, &a, &b, rows, cols, scale,
                    ),
                }
            }
            (
                TrainingFusion::LinearWithLoss { loss, grad },
                &Op::Linear {
                    x, weight, bias, ..
                },
                backward,
            ) => {
                let (
                    GradOp::Loss {
                        kind, da, b, scale, ..
                    },
                    Op::Loss { .. },
                ) = (&backward[grad], &graph.ops[loss])
                else {
                    return Err(Error::InvalidArgument(
                        "a linear layer fused with a non-loss op".into(),
                    ));
                };
                let out = graph.tensor(*da).cols;
                let shape = MatmulShape {
                    loss: Some(match kind {
                        LossKind::Bce => StoreLoss::Bce,
                        _ => StoreLoss::Mse,
                    }),
                    ..LinearShapes::new(graph.tensor(x).rows, graph.tensor(x).cols, out, false)
                        .forward
                };
                let (da, target) = (self.view(*da)?, self.view(*b)?);
                let extras = MatmulExtras {
                    target: Some(&target),
                    loss_totals: Some(totals_of(loss)?),
                    loss_scale: *scale,
                    ..Default::default()
                };
                let variant = ctx.matmul_variant(&shape)?;
                kernels::matmul::matmul_with_extras(
                    ctx,
                    &da,
                    &self.view(x)?,
                    &self.view(weight)?,
                    Some(&self.view(bias)?),
                    extras,
                    &shape,
                    variant,
                )
            }
            (
                TrainingFusion::VaeHead { kl, grad, join },
                &Op::Reparameterize {
                    z,
                    eps,
                    stats,
                    stream,
                },
                backward,
            ) => {
                let kl_grad = match grad.map(|g| &backward[g]) {
                    Some(&GradOp::Kl { dstats, scale, .. }) => Some((self.view(dstats)?, scale)),
                    None => None,
                    Some(_) => {
                        return Err(Error::InvalidArgument(
                            "a VAE head whose KL gradient is not a KL's".into(),
                        ))
                    }
                };
                // An IWAE's head draws K samples for each row of its (folded) repeat's source.
                let (stats, samples) = self.plan.repeat_source(stats);
                let (rows, cols) = (graph.tensor(stats).rows, graph.tensor(z).cols);
                // A conditional VAE's writes z | label in place of z.
                let (out, label) = match join.map(|c| &graph.ops[c]) {
                    Some(&Op::Concat { y, b, .. }) => (y, Some(b)),
                    _ => (z, None),
                };
                let label = label.map(|b| Ok((self.view(b)?, graph.tensor(b).cols)));
                let label = label.transpose()?;
                let [out, eps, stats] = [out, eps, stats].map(|t| self.view(t));
                let buffers = kernels::vae_head::VaeHeadBuffers {
                    z: &out?,
                    eps: &eps?,
                    kl_totals: totals_of(kl)?,
                    dstats: kl_grad.as_ref().map(|(dstats, _)| dstats),
                    stats: &stats?,
                    step: state,
                    label: label.as_ref().map(|(b, cols)| (b, *cols)),
                };
                let scale = kl_grad.as_ref().map_or(0.0, |&(_, scale)| scale);
                kernels::vae_head::vae_head_forward(
                    ctx,
                    &buffers,
                    (rows, cols, samples),
                    seed,
                    stream,
                    scale,
                )
            }
            _ => Err(Error::InvalidArgument(format!(
                "op {i} cannot take the fusion {fusion:?}"
            ))),
        }
    }

    /// The grouped dispatches of the sets `chosen` groups (with Adam when `fuse_adam`), which
    /// run after the backward pass (the executor's pool keeps those layers' dy and x to the
    /// step's end).
    fn prepare_grouped_weight_grads(
        &self,
        chosen: &[ChosenWeightGrads],
        fuse_adam: bool,
        adam: &AdamConfig,
    ) -> Result<Vec<Dispatch>> {
        let mut dispatches = Vec::new();
        for (layers, form) in chosen {
            let WeightGrads::Grouped(tiles) = *form else {
                continue;
            };
            let batch = self.plan.weight_grad_rows(layers);
            let parts = self.weight_grad_parts(layers)?;
            let problems = weight_grad_problems(&parts);
            let names: Vec<&str> = layers
                .iter()
                .filter_map(|&j| match self.plan.backward[j] {
                    GradOp::Linear { dweight, .. } => {
                        Some(self.plan.graph.tensor(dweight).name.as_str())
                    }
                    _ => None,
                })
                .collect();
            let role = names.join(", ");
            dispatches.push(if fuse_adam {
                let buffers = AdamBuffers {
                    param: &self.params,
                    m: &self.adam_m,
                    v: &self.adam_v,
                    step_scalars: &self.step_scalars,
                    state: self.states.binding(),
                };
                matmul_grouped_tn_adam(self.ctx, buffers, adam, batch, &problems, tiles)?
                    .with_role(role)
            } else {
                matmul_grouped_tn(self.ctx, &self.grads, batch, &problems, tiles)?.with_role(role)
            });
        }
        Ok(dispatches)
    }

    /// (dy, x, (out, in), (dW offset, db offset)) of each linear layer (backward op) of a set.
    fn weight_grad_parts(&self, layers: &[usize]) -> Result<Vec<WeightGradPart>> {
        let graph = &self.plan.graph;
        let mut parts = Vec::new();
        for &j in layers {
            let GradOp::Linear {
                dweight,
                dbias,
                dy,
                x,
                ..
            } = self.plan.backward[j]
            else {
                unreachable!("the plan's sets hold linear layers");
            };
            let (Some(Location::Grads(dw)), Some(Location::Grads(db))) =
                (self.location[dweight.0], self.location[dbias.0])
            else {
                return Err(Error::InvalidArgument(
                    "a linear layer's gradients are not in the gradient buffer".into(),
                ));
            };
            let size = (graph.tensor(dweight).rows, graph.tensor(dweight).cols);
            parts.push((self.view(dy)?, self.view(x)?, size, (dw, db)));
        }
        Ok(parts)
    }

    /// For forward op `i`, an L1 penalty a dx matmul does in its store (TrainingFusion::InDx):
    /// its code, its gradient's scale and its running totals.
    fn penalty_in_store(&self, i: usize) -> Result<(TensorId, f32, &GpuBuffer)> {
        let plan = self.plan;
        let (&Op::Penalty { x, .. }, TrainingFusion::InDx { grad }) =
            (&plan.graph.ops[i], plan.training_fusion[i])
        else {
            return Err(Error::InvalidArgument(format!(
                "op {i} is not a penalty done in a dx matmul's store"
            )));
        };
        let GradOp::Penalty(PenaltyGrad { scale, .. }) = plan.backward[grad] else {
            return Err(Error::InvalidArgument(
                "a penalty fused with a non-penalty gradient".into(),
            ));
        };
        Ok((x, scale, term_totals(plan, &self.loss_totals, i)?))
    }

    /// The dispatches of backward op `j`; for a linear layer whose weight gradient a grouped
    /// dispatch computes (`grouped_dweight`), its dx only.
    fn prepare_backward(&self, j: usize, grouped_dweight: bool) -> Result<Vec<Dispatch>> {
        let (ctx, graph) = (self.ctx, &self.plan.graph);
        match self.plan.backward[j] {
            GradOp::Linear {
                dx,
                accumulate_dx,
                dweight,
                dbias,
                dy,
                x,
                weight,
            } => {
                let (batch, out, input) = (
                    graph.tensor(dy).rows,
                    graph.tensor(dy).cols,
                    graph.tensor(x).cols,
                );
                let dy_view = self.view(dy)?;
                let shapes = LinearShapes::new(batch, input, out, accumulate_dx);
                let mut dispatches = Vec::new();
                if !grouped_dweight {
                    // dW = dyᵀ·x, and the bias gradient Σ_rows dy as the row sums of dyᵀ.
                    let dw_shape = MatmulShape {
                        row_sums: true,
                        ..shapes.dweight
                    };
                    let dbias = self.view(dbias)?;
                    let dw_extras = MatmulExtras {
                        row_sums: Some(&dbias),
                        ..Default::default()
                    };
                    dispatches.push(
                        kernels::matmul::matmul_fused(
                            ctx,
                            &self.view(dweight)?,
                            &dy_view,
                            &self.view(x)?,
                            dw_extras,
                            &dw_shape,
                        )?
                        .with_role(graph.tensor(dweight).name.as_str()),
                    );
                }
                // dx (+)= dy·W; or, with an activation's backward applied in the store, that
                // activation's dx = (dy·W (+ the dx other layers wrote)) · f'(y).
                let activation = match self.plan.dx_activation[j].map(|a| &self.plan.backward[a]) {
                    Some(&GradOp::Activation { kind, dx, y, .. }) => Some((kind, dx, y)),
                    _ => None,
                };
                let reparameterize = self.plan.dx_reparameterize[j].map(|r| &self.plan.backward[r]);
                if let Some(&GradOp::Reparameterize {
                    dstats,
                    accumulate,
                    eps,
                    stats,
                    dz,
                }) = reparameterize
                {
                    // dz = dy·W goes straight into dstats: [dz | dz·ε·½e^(½·logvar)] (+)=; or,
                    // where dx is d(z | label) (a folded slice cut dz from it), its first
                    // columns do, and the label's are dropped.
                    let dx_shape = MatmulShape {
                        reparam_grad: Some(graph.tensor(dz).cols),
                        accumulate,
                        ..shapes.dx
                    };
                    let (eps, stats) = (self.view(eps)?, self.view(stats)?);
                    let dx_extras = MatmulExtras {
                        eps: Some(&eps),
                        stats: Some(&stats),
                        ..Default::default()
                    };
                    dispatches.push(
                        kernels::matmul::matmul_fused(
                            ctx,
                            &self.view(dstats)?,
                            &dy_view,
                            &self.view(weight)?,
                            dx_extras,
                            &dx_shape,
                        )?
                        .with_role(graph.tensor(dstats).name.as_str()),
                    );
                } else if let Some(dx) = dx {
                    let written = activation.map_or(dx, |(_, d_pre, _)| d_pre);
                    // An L1 penalty on the code whose gradient dx is: (code, scale, totals).
                    let penalty = self.plan.dx_penalty[j].map(|i| self.penalty_in_store(i));
                    let penalty = penalty.transpose()?;
                    let (out, saved) = match (activation, &penalty) {
                        (Some((_, d_pre, y)), _) => (self.view(d_pre)?, Some(self.view(y)?)),
                        (None, Some((code, ..))) => (self.view(dx)?, Some(self.view(*code)?)),
                        (None, None) => (self.view(dx)?, None),
                    };
                    // What other ops wrote of dx: added before f', or to C (not the
                    // penalty's gradient, which the store computes).
                    let adds = self.plan.adds_to_dx(j);
                    let addend = activation.is_some() && adds;
                    let addend_view = if addend { Some(self.view(dx)?) } else { None };
                    let dx_shape = MatmulShape {
                        activation_grad: activation.map(|(kind, ..)| kind),
                        accumulate: adds && !addend,
                        addend,
                        l1_grad: penalty.is_some(),
                        ..shapes.dx
                    };
                    let dx_extras = MatmulExtras {
                        saved: saved.as_ref(),
                        row_sums: None,
                        addend: addend_view.as_ref(),
                        loss_totals: penalty.map(|(_, _, totals)| totals),
                        l1_scale: penalty.map_or(0.0, |(_, scale, _)| scale),
                        ..Default::default()
                    };
                    dispatches.push(
                        kernels::matmul::matmul_fused(
                            ctx,
                            &out,
                            &dy_view,
                            &self.view(weight)?,
                            dx_extras,
                            &dx_shape,
                        )?
                        .with_role(graph.tensor(written).name.as_str()),
                    );
                }
                Ok(dispatches)
            }
            GradOp::Activation { kind, dx, y, dy } => Ok(vec![kind.backward(
                ctx,
                &self.view(dx)?,
                &self.view(y)?,
                &self.view(dy)?,
                graph.tensor(dx).len(),
            )?]),
            GradOp::Reparameterize {
                dstats,
                accumulate,
                eps,
                stats,
                dz,
            } => {
                let (rows, cols) = (graph.tensor(dz).rows, graph.tensor(dz).cols);
                // dz, or the first columns of the gradient a folded slice would have cut.
                let (dz, dz_cols) = self.plan.reparameterize_dz(dz);
                let (stats, repeat) = self.plan.repeat_source(stats);
                let (eps, stats, dz) = (self.view(eps)?, self.view(stats)?, self.view(dz)?);
                let group_sum =
                    self.plan.reparameterize_group_sum[j].map(|g| &self.plan.backward[g]);
                let dispatch = match group_sum {
                    None => kernels::reparameterize::reparameterize_backward(
                        ctx,
                        &self.view(dstats)?,
                        &eps,
                        (&stats, repeat),
                        (&dz, dz_cols),
                        rows,
                        cols,
                        accumulate,
                    )?,
                    // With the sum over the samples' groups: straight into the data rows'
                    // dstats, adding each term to what other ops wrote of the samples'.
                    Some(&GradOp::SumRowGroups {
                        dx,
                        accumulate: accumulate_dx,
                        k,
                        ..
                    }) => {
                        let partial = accumulate.then(|| self.view(dstats)).transpose()?;
                        kernels::reparameterize::reparameterize_backward_groups(
                            ctx,
                            &self.view(dx)?,
                            partial.as_ref(),
                            &eps,
                            (&stats, repeat),
                            (&dz, dz_cols),
                            (rows / k, cols, k),
                            accumulate_dx,
                        )?
                    }
                    Some(_) => {
                        return Err(Error::InvalidArgument(
                            "a reparameterization's backward fused with a non-group-sum op".into(),
                        ))
                    }
                };
                Ok(vec![dispatch])
            }
            GradOp::Loss {
                kind,
                da,
                a,
                b,
                scale,
                row_grad,
            } => {
                let (rows, cols) = (graph.tensor(a).rows, graph.tensor(a).cols);
                let (b, repeat) = self.plan.repeat_source(b);
                let (da, a, b) = (self.view(da)?, self.view(a)?, self.view(b)?);
                let target = (&b, repeat);
                Ok(vec![match (kind, row_grad) {
                    (LossKind::Bce, None) => {
                        kernels::bce::bce_backward(ctx, &da, &a, target, rows, cols, scale)?
                    }
                    (_, None) => {
                        kernels::mse::mse_backward(ctx, &da, &a, target, rows, cols, scale)?
                    }
                    (LossKind::Bce, Some((g, factor))) => kernels::bce::bce_backward_rows(
                        ctx,
                        &da,
                        &a,
                        target,
                        &self.view(g)?,
                        rows,
                        cols,
                        scale,
                        factor,
                    )?,
                    (_, Some((g, factor))) => kernels::mse::mse_backward_rows(
                        ctx,
                        &da,
                        &a,
                        target,
                        &self.view(g)?,
                        rows,
                        cols,
                        scale,
                        factor,
                    )?,
                }])
            }
            GradOp::LogWeight {
                dz,
                dstats,
                accumulate_z,
                accumulate_stats,
                dlogw,
                z,
            } => {
                let (rows, cols) = (graph.tensor(z).rows, graph.tensor(z).cols);
                Ok(vec![kernels::log_weight::log_weight_backward(
                    ctx,
                    &self.view(dz)?,
                    &self.view(dstats)?,
                    &self.view(dlogw)?,
                    &self.view(z)?,
                    rows,
                    cols,
                    accumulate_z,
                    accumulate_stats,
                )?])
            }
            GradOp::NegLogMeanExp {
                dlogw,
                logw,
                k,
                scale,
            } => Ok(vec![kernels::log_mean_exp::neg_log_mean_exp_backward(
                ctx,
                &self.view(dlogw)?,
                &self.view(logw)?,
                graph.tensor(logw).rows,
                k,
                scale,
            )?]),
            GradOp::SumRowGroups {
                dx,
                accumulate,
                dy,
                k,
            } => {
                let (rows, cols) = (graph.tensor(dx).rows, graph.tensor(dx).cols);
                Ok(vec![kernels::repeat_rows::sum_row_groups(
                    ctx,
                    &self.view(dx)?,
                    &self.view(dy)?,
                    rows,
                    cols,
                    k,
                    accumulate,
                )?])
            }
            GradOp::Slice {
                da,
                accumulate,
                dy,
                offset,
            } => {
                let (rows, width) = (graph.tensor(dy).rows, graph.tensor(dy).cols);
                Ok(vec![kernels::concat::slice_cols(
                    ctx,
                    &self.view(da)?,
                    &self.view(dy)?,
                    rows,
                    graph.tensor(da).cols,
                    width,
                    offset,
                    accumulate,
                )?])
            }
            GradOp::Penalty(ref p) => {
                let (rows, cols) = (graph.tensor(p.x).rows, graph.tensor(p.x).cols);
                let dx = self.view(p.dx)?;
                Ok(vec![match (p.penalty, p.rho_hat) {
                    (Penalty::KlSparsity { rho }, Some(rho_hat)) => {
                        kernels::kl_sparsity::kl_sparsity_backward(
                            ctx,
                            &dx,
                            &self.view(rho_hat)?,
                            rows,
                            cols,
                            rho,
                            p.scale,
                            p.accumulate,
                        )?
                    }
                    _ => kernels::l1::l1_backward(
                        ctx,
                        &dx,
                        &self.view(p.x)?,
                        rows,
                        cols,
                        p.scale,
                        p.accumulate,
                    )?,
                }])
            }
            GradOp::Kl {
                dstats,
                accumulate,
                stats,
                scale,
            } => {
                let (rows, cols) = (graph.tensor(stats).rows, graph.tensor(stats).cols / 2);
                Ok(vec![kernels::kl::kl_backward(
                    ctx,
                    &self.view(dstats)?,
                    &self.view(stats)?,
                    rows,
                    cols,
                    scale,
                    accumulate,
                )?])
            }
        }
    }
}

/// The running totals (one buffer per loss term of `plan`, in its order) of the term that
/// forward op `op` computes.
fn term_totals<'b>(plan: &Plan, totals: &'b [GpuBuffer], op: usize) -> Result<&'b GpuBuffer> {
    plan.losses
        .iter()
        .position(|term| term.op == op)
        .map(|t| &totals[t])
        .ok_or_else(|| Error::InvalidArgument(format!("op {op} is not a loss term")))
}
