//! The GPU executor: a plan's buffers created once, every dispatch of a training step
//! prepared once (gather, forward, loss sums, backward, Adam, step advance), and each step
//! recorded into one compute pass and submitted once, with no copy between host and GPU.
//! The step counter and the batch cursor live on the GPU; losses accumulate there and are
//! read back only when asked for.

use crate::cpu::matmul::MatmulShape;
use crate::error::{Error, Result};
use crate::gpu::{pack_bytes, GpuBuffer, GpuContext};
use crate::graph::autodiff::GradOp;
use crate::graph::plan::{Location, Plan};
use crate::graph::{LossKind, Op, RunConfig, Samples, TensorId, TrainData};
use crate::kernels::{self, gather::GatherSource, Dispatch};

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
    indices: GpuBuffer,
    state: GpuBuffer,
    loss_totals: Vec<GpuBuffer>,
    steps: Vec<Dispatch>,
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
            indices,
            state,
            loss_totals,
            steps: Vec::new(),
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
        let gather = match data.samples {
            Samples::U8(_) => {
                kernels::gather::gather_u8(ctx, &executor.input, &source, plan.graph.batch)?
            }
            Samples::F32(_) => {
                kernels::gather::gather_f32(ctx, &executor.input, &source, plan.graph.batch)?
            }
        };
        let mut steps = vec![gather];
        for op in &plan.graph.ops {
            steps.extend(executor.prepare_forward(op, &run)?);
        }
        for (term, total) in plan.losses.iter().zip(&executor.loss_totals) {
            let rows = executor.view(term.per_row)?;
            steps.push(kernels::reduce::sum_all(
                ctx,
                total,
                &rows,
                plan.graph.batch,
                1.0,
                true,
            )?);
        }
        for op in &plan.backward {
            steps.extend(executor.prepare_backward(op)?);
        }
        steps.push(kernels::adam::adam_step(
            ctx,
            &executor.params,
            &adam_m,
            &adam_v,
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
        executor._buffers = vec![samples, adam_m, adam_v, table];
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
        if self.next_step + n - 1 > self.total_steps {
            return Err(Error::InvalidArgument(format!(
                "step {} beyond the run's {} steps",
                self.next_step + n - 1,
                self.total_steps
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
                timestamp_writes: None,
            });
            for _ in 0..n {
                for dispatch in &self.steps {
                    dispatch.record(&mut pass);
                }
            }
        }
        self.ctx.scoped("training step", || {
            self.ctx.queue.submit([encoder.finish()])
        })?;
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

    fn prepare_forward(&self, op: &Op, run: &RunConfig) -> Result<Vec<Dispatch>> {
        let (ctx, graph) = (self.ctx, &self.plan.graph);
        let d = match *op {
            Op::Linear { y, x, weight, bias } => {
                let shape = MatmulShape {
                    trans_b: true,
                    ..MatmulShape::new(graph.batch, graph.tensor(y).cols, graph.tensor(x).cols)
                };
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
                    &self.state,
                    n,
                    run.seed,
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
        Ok(vec![d])
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
                let dw_shape = MatmulShape {
                    trans_a: true,
                    ..MatmulShape::new(out, input, batch)
                };
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
                    let dx_shape = MatmulShape {
                        accumulate: accumulate_dx,
                        ..MatmulShape::new(batch, input, out)
                    };
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
