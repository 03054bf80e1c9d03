//! The GPU executor: a plan's buffers created once, every dispatch of a training step
//! prepared once (gather, forward, loss sums, backward, Adam, step advance), and each step
//! recorded into one compute pass and submitted once, with no copy between host and GPU.
//! The step counter and the batch cursor live on the GPU; losses accumulate there and are
//! read back only when asked for.

use crate::error::{Error, Result};
use crate::gpu::{pack_bytes, GpuBuffer, GpuContext};
use crate::graph::autodiff::GradOp;
use crate::graph::plan::{Location, Plan};
use crate::graph::{
    padded_order, LinearShapes, LossKind, Op, RunConfig, Samples, TensorId, TrainData,
};
use crate::kernels::{self, gather::GatherSource, Dispatch};

/// A held-out data set and the forward-only passes over it.
struct Evaluation {
    rows: usize,
    state: GpuBuffer,
    totals: Vec<GpuBuffer>,
    /// One full batch: gather, forward, loss sums, cursor advance.
    full_batch: Vec<Dispatch>,
    /// The last, partial batch (if rows is not a multiple of the batch): its loss sums
    /// count only its real rows.
    tail: Vec<Dispatch>,
    _buffers: Vec<GpuBuffer>,
}

/// The evaluation's noise is keyed by its own seed, apart from training's.
pub(crate) const EVAL_SEED_SALT: u64 = 0x5eed_e7a1_0000_0000;

/// A plan's storage on the GPU and the prepared dispatches of one training step.
pub struct GpuExecutor<'a> {
    ctx: &'a GpuContext,
    plan: &'a Plan,
    data_rows: usize,
    total_steps: u32,
    params: GpuBuffer,
    input: GpuBuffer,
    pool: Vec<GpuBuffer>,
    grads: GpuBuffer,
    adam_m: GpuBuffer,
    adam_v: GpuBuffer,
    indices: GpuBuffer,
    state: GpuBuffer,
    loss_totals: Vec<GpuBuffer>,
    steps: Vec<Dispatch>,
    eval: Option<Evaluation>,
    /// The next step's number, mirrored from the GPU's state.
    next_step: u32,
    // Held for the dispatches that bind them.
    _buffers: Vec<GpuBuffer>,
}

impl<'a> GpuExecutor<'a> {
    /// Uploads the data set and the flat parameters (plan.param_len long), creates every
    /// buffer, and prepares every dispatch of a step.
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
        let grads = ctx.create_buffer("grads", plan.param_len)?;
        let adam_m = ctx.create_buffer("adam m", plan.param_len)?;
        let adam_v = ctx.create_buffer("adam v", plan.param_len)?;
        // The table holds two floats per step: check its size before building it.
        ctx.check_buffer_size("adam step scalars", 2 * run.total_steps.max(1) as usize)?;
        let table = ctx.upload(
            "adam step scalars",
            &run.adam.step_scalar_table(run.total_steps.max(1)),
        )?;
        let state = ctx.upload("step state", &[1u32, 0])?;
        let input = ctx.create_buffer("batch", plan.graph.tensor(plan.input).len())?;
        let pool = plan
            .pool
            .iter()
            .enumerate()
            .map(|(i, &n)| ctx.create_buffer(&format!("pool {i}"), n))
            .collect::<Result<Vec<_>>>()?;
        let indices = ctx.upload("epoch order", &(0..data.rows as u32).collect::<Vec<_>>())?;
        let samples = match data.samples {
            Samples::U8(bytes) => ctx.upload("data set", &pack_bytes(bytes))?,
            Samples::F32(values) => ctx.upload("data set", values)?,
        };
        let loss_totals = plan
            .losses
            .iter()
            .map(|term| ctx.create_buffer(term.kind.name(), 1))
            .collect::<Result<Vec<_>>>()?;

        let mut executor = GpuExecutor {
            ctx,
            plan,
            data_rows: data.rows,
            total_steps: run.total_steps,
            params: params_buffer,
            input,
            pool,
            grads,
            adam_m,
            adam_v,
            indices,
            state,
            loss_totals,
            steps: Vec::new(),
            eval: None,
            next_step: 1,
            _buffers: Vec::new(),
        };
        let source = GatherSource {
            data: &samples,
            data_rows: data.rows,
            width,
            indices: &executor.indices,
            state: &executor.state,
        };
        let mut steps = executor.prepare_pass(
            &source,
            data.samples,
            run.seed,
            &executor.loss_totals,
            plan.graph.batch,
        )?;
        for op in &plan.backward {
            steps.extend(executor.prepare_backward(op)?);
        }
        steps.push(kernels::adam::adam_step(
            ctx,
            &executor.params,
            &executor.adam_m,
            &executor.adam_v,
            &executor.grads,
            &table,
            &executor.state,
            plan.param_len,
            &run.adam,
        )?);
        steps.push(kernels::step::advance_step(
            ctx,
            &executor.state,
            plan.graph.batch,
        )?);
        executor.steps = steps;
        if let Some(eval) = eval {
            executor.eval = Some(executor.prepare_evaluation(eval, run.seed ^ EVAL_SEED_SALT)?);
        }
        executor._buffers = vec![samples, table];
        Ok(executor)
    }

    /// Dispatches per training step.
    pub fn dispatches_per_step(&self) -> usize {
        self.steps.len()
    }

    /// The number of the next step (1 for the first).
    pub fn next_step(&self) -> u32 {
        self.next_step
    }

    /// Starts an epoch with this order of data rows: writes it and resets the batch cursor
    /// (the only host-to-GPU copies of training, once per epoch).
    pub fn begin_epoch(&mut self, order: &[u32]) -> Result<()> {
        if order.len() != self.data_rows || order.iter().any(|&r| r as usize >= self.data_rows) {
            return Err(Error::InvalidArgument(
                "epoch order: one index per data row, each below the row count".into(),
            ));
        }
        self.ctx.write_buffer(&self.indices, order)?;
        self.ctx.write_buffer(&self.state, &[self.next_step, 0])
    }

    /// Records one training step into one compute pass and submits it; does not wait.
    pub fn step(&mut self) -> Result<()> {
        self.steps_per_submit(1)
    }

    /// Records `n` training steps into one compute pass and submits them together.
    pub fn steps_per_submit(&mut self, n: u32) -> Result<()> {
        let commands = self.encode_steps(n, None);
        self.submit_steps(commands, n)
    }

    /// Records `n` training steps into one compute pass of a new command buffer, with
    /// timestamps at the pass's beginning and end when given; submits nothing (the bench
    /// times encoding and submission apart).
    pub fn encode_steps(
        &self,
        n: u32,
        timestamps: Option<wgpu::ComputePassTimestampWrites>,
    ) -> wgpu::CommandBuffer {
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
            for _ in 0..n {
                for dispatch in &self.steps {
                    dispatch.record(&mut pass);
                }
            }
        }
        encoder.finish()
    }

    /// Submits `commands`, which [`GpuExecutor::encode_steps`] recorded with `n` steps; does
    /// not wait.
    pub fn submit_steps(&mut self, commands: wgpu::CommandBuffer, n: u32) -> Result<()> {
        if n == 0 || self.next_step + n - 1 > self.total_steps {
            return Err(Error::InvalidArgument(format!(
                "{n} steps from step {} in a run of {} steps",
                self.next_step, self.total_steps
            )));
        }
        self.ctx
            .scoped("training step", || self.ctx.queue.submit([commands]))?;
        self.next_step += n;
        Ok(())
    }

    /// Waits for submitted steps to finish.
    pub fn finish(&self) -> Result<()> {
        self.ctx.wait("training step", None)
    }

    /// Σ per-row loss of each term since the last reset (waits for the GPU).
    pub fn loss_totals(&self) -> Result<Vec<f64>> {
        self.loss_totals
            .iter()
            .map(|b| Ok(f64::from(self.ctx.read_buffer::<f32>(b)?[0])))
            .collect()
    }

    pub fn reset_losses(&self) -> Result<()> {
        for total in &self.loss_totals {
            self.ctx.write_buffer(total, &[0.0f32])?;
        }
        Ok(())
    }

    /// The flat parameters (waits for the GPU).
    pub fn read_params(&self) -> Result<Vec<f32>> {
        self.ctx.read_buffer(&self.params)
    }

    /// Adam's first and second moments, flat like the parameters (waits for the GPU).
    pub fn read_adam(&self) -> Result<(Vec<f32>, Vec<f32>)> {
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
        match self.plan.location[t.0] {
            Location::Input => self.input.view(0, len),
            Location::Params(offset) => self.params.view(offset, len),
            Location::Grads(offset) => self.grads.view(offset, len),
            Location::Pool(slot) => self.pool[slot].view(0, len),
        }
    }

    /// Gather at the cursor of `source.state`, the forward ops (noise keyed by `seed` and that
    /// state's step), and the loss sums of the first `rows_counted` rows into `totals`.
    fn prepare_pass(
        &self,
        source: &GatherSource,
        samples: Samples,
        seed: u64,
        totals: &[GpuBuffer],
        rows_counted: usize,
    ) -> Result<Vec<Dispatch>> {
        let (ctx, plan) = (self.ctx, self.plan);
        let mut dispatches = vec![match samples {
            Samples::U8(_) => {
                kernels::gather::gather_u8(ctx, &self.input, source, plan.graph.batch)?
            }
            Samples::F32(_) => {
                kernels::gather::gather_f32(ctx, &self.input, source, plan.graph.batch)?
            }
        }];
        for op in &plan.graph.ops {
            dispatches.push(self.prepare_forward(op, source.state, seed)?);
        }
        for (term, total) in plan.losses.iter().zip(totals) {
            let rows = self.view(term.per_row)?;
            dispatches.push(kernels::reduce::sum_all(
                ctx,
                total,
                &rows,
                rows_counted,
                1.0,
                true,
            )?);
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
        // Rows in order, the last batch padded with row 0 (its padding is not counted).
        let order = padded_order(eval.rows, batch);
        let indices = ctx.upload("evaluation order", &order)?;
        let samples = match eval.samples {
            Samples::U8(bytes) => ctx.upload("evaluation set", &pack_bytes(bytes))?,
            Samples::F32(values) => ctx.upload("evaluation set", values)?,
        };
        let state = ctx.upload("evaluation state", &[1u32, 0])?;
        let totals = self
            .plan
            .losses
            .iter()
            .map(|t| ctx.create_buffer(t.kind.name(), 1))
            .collect::<Result<Vec<_>>>()?;
        let source = GatherSource {
            data: &samples,
            data_rows: eval.rows,
            width,
            indices: &indices,
            state: &state,
        };
        let mut full_batch = self.prepare_pass(&source, eval.samples, seed, &totals, batch)?;
        full_batch.push(kernels::step::advance_step(ctx, &state, batch)?);
        let remainder = eval.rows % batch;
        let tail = if remainder > 0 {
            self.prepare_pass(&source, eval.samples, seed, &totals, remainder)?
        } else {
            Vec::new()
        };
        Ok(Evaluation {
            rows: eval.rows,
            state,
            totals,
            full_batch,
            tail,
            _buffers: vec![indices, samples],
        })
    }

    /// Σ per-row loss of each term over the whole evaluation set, with the current
    /// parameters (one submit, then a wait). The noise is the same at every call.
    pub fn evaluate(&self) -> Result<Vec<f64>> {
        let eval = self
            .eval
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("no evaluation data was given".into()))?;
        for total in &eval.totals {
            self.ctx.write_buffer(total, &[0.0f32])?;
        }
        self.ctx.write_buffer(&eval.state, &[1u32, 0])?;
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("evaluation"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("evaluation"),
                timestamp_writes: None,
            });
            for _ in 0..eval.rows / self.plan.graph.batch {
                eval.full_batch.iter().for_each(|d| d.record(&mut pass));
            }
            eval.tail.iter().for_each(|d| d.record(&mut pass));
        }
        self.ctx.submit_and_wait("evaluation", encoder.finish())?;
        eval.totals
            .iter()
            .map(|b| Ok(f64::from(self.ctx.read_buffer::<f32>(b)?[0])))
            .collect()
    }

    /// The values of `output` for every row of the evaluation set, row-major: the
    /// evaluation passes with each batch's output copied out, one submit, then a wait.
    pub fn infer(&self, output: TensorId) -> Result<Vec<f32>> {
        let eval = self.eval.as_ref().ok_or_else(|| {
            Error::InvalidArgument("no data to run the model on was given".into())
        })?;
        let batch = self.plan.graph.batch;
        let cols = self.plan.graph.tensor(output).cols;
        let source = self.view(output)?;
        let result = self
            .ctx
            .create_buffer("inference output", eval.rows * cols)?;
        self.ctx.write_buffer(&eval.state, &[1u32, 0])?;
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("inference"),
            });
        for start in (0..eval.rows).step_by(batch) {
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
                dispatches.iter().for_each(|d| d.record(&mut pass));
            }
            let bytes = (counted * cols * 4) as u64;
            encoder.copy_buffer_to_buffer(
                &source.buffer,
                source.offset,
                &result.buffer,
                (start * cols * 4) as u64,
                bytes,
            );
        }
        self.ctx.submit_and_wait("inference", encoder.finish())?;
        self.ctx.read_buffer(&result)
    }

    fn prepare_forward(&self, op: &Op, state: &GpuBuffer, seed: u64) -> Result<Dispatch> {
        let (ctx, graph) = (self.ctx, &self.plan.graph);
        let d = match *op {
            Op::Linear { y, x, weight, bias } => {
                let shape = LinearShapes::new(
                    graph.batch,
                    graph.tensor(x).cols,
                    graph.tensor(y).cols,
                    false,
                )
                .forward;
                kernels::matmul::matmul(
                    ctx,
                    &self.view(y)?,
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
                mu,
                logvar,
                stream,
            } => {
                let n = graph.tensor(z).len();
                kernels::reparameterize::reparameterize_forward(
                    ctx,
                    &self.view(z)?,
                    &self.view(eps)?,
                    &self.view(mu)?,
                    &self.view(logvar)?,
                    state,
                    n,
                    seed,
                    stream,
                )?
            }
            Op::Loss {
                kind,
                per_row,
                a,
                b,
                ..
            } => {
                let (rows, cols) = (graph.tensor(a).rows, graph.tensor(a).cols);
                let (out, a, b) = (self.view(per_row)?, self.view(a)?, self.view(b)?);
                match kind {
                    LossKind::Mse => kernels::mse::mse_forward(ctx, &out, &a, &b, rows, cols)?,
                    LossKind::Bce => kernels::bce::bce_forward(ctx, &out, &a, &b, rows, cols)?,
                    LossKind::Kl => kernels::kl::kl_forward(ctx, &out, &a, &b, rows, cols)?,
                }
            }
        };
        Ok(d)
    }

    fn prepare_backward(&self, op: &GradOp) -> Result<Vec<Dispatch>> {
        let (ctx, graph) = (self.ctx, &self.plan.graph);
        match *op {
            GradOp::Linear {
                dx,
                accumulate_dx,
                dweight,
                dbias,
                dy,
                x,
                weight,
            } => {
                let (batch, out, input) =
                    (graph.batch, graph.tensor(dy).cols, graph.tensor(x).cols);
                let dy_view = self.view(dy)?;
                let shapes = LinearShapes::new(batch, input, out, accumulate_dx);
                let dw_shape = shapes.dweight;
                let mut dispatches = vec![
                    kernels::matmul::matmul(
                        ctx,
                        &self.view(dweight)?,
                        &dy_view,
                        &self.view(x)?,
                        None,
                        &dw_shape,
                    )?,
                    kernels::reduce::sum_cols(ctx, &self.view(dbias)?, &dy_view, batch, out)?,
                ];
                if let Some(dx) = dx {
                    let dx_shape = shapes.dx;
                    dispatches.push(kernels::matmul::matmul(
                        ctx,
                        &self.view(dx)?,
                        &dy_view,
                        &self.view(weight)?,
                        None,
                        &dx_shape,
                    )?);
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
                dmu,
                dlogvar,
                accumulate,
                eps,
                logvar,
                dz,
            } => {
                let n = graph.tensor(dz).len();
                Ok(vec![kernels::reparameterize::reparameterize_backward(
                    ctx,
                    &self.view(dmu)?,
                    &self.view(dlogvar)?,
                    &self.view(eps)?,
                    &self.view(logvar)?,
                    &self.view(dz)?,
                    n,
                    accumulate,
                )?])
            }
            GradOp::Loss {
                kind,
                da,
                a,
                b,
                scale,
            } => {
                let (rows, cols) = (graph.tensor(a).rows, graph.tensor(a).cols);
                let (da, a, b) = (self.view(da)?, self.view(a)?, self.view(b)?);
                Ok(vec![match kind {
                    LossKind::Bce => {
                        kernels::bce::bce_backward(ctx, &da, &a, &b, rows, cols, scale)?
                    }
                    _ => kernels::mse::mse_backward(ctx, &da, &a, &b, rows, cols, scale)?,
                }])
            }
            GradOp::Kl {
                dmu,
                dlogvar,
                accumulate,
                mu,
                logvar,
                scale,
            } => {
                let (rows, cols) = (graph.tensor(mu).rows, graph.tensor(mu).cols);
                Ok(vec![kernels::kl::kl_backward(
                    ctx,
                    &self.view(dmu)?,
                    &self.view(dlogvar)?,
                    &self.view(mu)?,
                    &self.view(logvar)?,
                    rows,
                    cols,
                    scale,
                    accumulate,
                )?])
            }
        }
    }
}
