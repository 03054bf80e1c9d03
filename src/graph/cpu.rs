//! The CPU executor: runs a plan on the CPU twins, with the same storage layout, step state
//! and noise as the GPU executor. Generic over f32 (the reference for the GPU) and f64 (for
//! finite-difference checks of whole-model gradients).

use num_traits::Float;

use crate::cpu::{self, reparameterize::NoiseKey, Real};
use crate::error::{host_capacity, host_vec, Error, Result};
use crate::graph::autodiff::GradOp;
use crate::graph::plan::{Location, Plan};
use crate::graph::step_parts::{step_part_count, PartClock};
use crate::graph::{LinearShapes, LossKind, Op, Penalty, RunConfig, Samples, TensorId, TrainData};
use crate::kernels::activation::Activation;

/// A plan's storage on the CPU, and the step that runs it.
pub struct CpuExecutor<'a, T: Float> {
    plan: &'a Plan,
    data: TrainData<'a>,
    eval: Option<TrainData<'a>>,
    run: RunConfig,
    pub params: Vec<T>,
    pub grads: Vec<T>,
    pub adam_m: Vec<T>,
    pub adam_v: Vec<T>,
    input: Vec<T>,
    /// The one-hot label batch of a conditional model (empty otherwise).
    condition: Vec<T>,
    /// The one-hot labels of the training data and of the evaluation data (empty for a
    /// model without a condition).
    one_hot: Vec<f32>,
    eval_one_hot: Vec<f32>,
    pool: Vec<Vec<T>>,
    /// The epoch's order of data rows.
    order: Vec<u32>,
    /// [step, cursor], as on the GPU.
    state: [u32; 2],
    /// Σ per-row loss of each term since the last reset.
    loss_totals: Vec<T>,
}

impl<'a, T: Real> CpuExecutor<'a, T> {
    /// Storage for `plan` with the flat parameters `params` (plan.param_len long).
    pub fn new(
        plan: &'a Plan,
        params: &[f32],
        data: TrainData<'a>,
        eval: Option<TrainData<'a>>,
        run: RunConfig,
    ) -> Result<Self> {
        data.check()?;
        if let Some(eval) = eval {
            eval.check()?;
            if eval.width != data.width {
                return Err(Error::InvalidArgument(format!(
                    "evaluation data width {} for training data of width {}",
                    eval.width, data.width
                )));
            }
        }
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
        let zeros = |n: usize| host_vec(T::zero(), n, "the CPU executor's buffers");
        let classes = plan.condition.map(|c| plan.graph.tensor(c).cols);
        let one_hot = |d: Option<TrainData>| match (classes, d) {
            (Some(classes), Some(d)) => d.one_hot_labels(classes),
            _ => Ok(Vec::new()),
        };
        Ok(CpuExecutor {
            one_hot: one_hot(Some(data))?,
            eval_one_hot: one_hot(eval)?,
            condition: zeros(plan.condition.map_or(0, |c| plan.graph.tensor(c).len()))?,
            plan,
            data,
            eval,
            run,
            params: params.iter().map(|&p| cpu::lit(f64::from(p))).collect(),
            grads: zeros(plan.param_len)?,
            adam_m: zeros(plan.param_len)?,
            adam_v: zeros(plan.param_len)?,
            input: zeros(plan.graph.tensor(plan.input).len())?,
            pool: plan.pool.iter().map(|&n| zeros(n)).collect::<Result<_>>()?,
            order: (0..data.rows as u32).collect(),
            state: [1, 0],
            loss_totals: zeros(plan.losses.len())?,
        })
    }

    /// Starts an epoch with this order of data rows: batches are taken from it in turn.
    pub fn begin_epoch(&mut self, order: &[u32]) -> Result<()> {
        if order.len() < self.plan.graph.batch
            || order.iter().any(|&r| r as usize >= self.data.rows)
        {
            return Err(Error::InvalidArgument(
                "epoch order: too short, or a row beyond the data".into(),
            ));
        }
        self.order = order.to_vec();
        self.state[1] = 0;
        Ok(())
    }

    /// Continues a run: parameters, Adam's moments and the next step's number.
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
        let convert = |v: &[f32]| {
            v.iter()
                .map(|&x| cpu::lit(f64::from(x)))
                .collect::<Vec<T>>()
        };
        self.params = convert(params);
        self.adam_m = convert(&adam.0);
        self.adam_v = convert(&adam.1);
        self.state[0] = next_step;
        Ok(())
    }

    /// The number of the next step (1 for the first).
    pub fn next_step(&self) -> u32 {
        self.state[0]
    }

    /// Σ per-row loss of each term since the last reset, in plan.losses order.
    pub fn loss_totals(&self) -> Vec<f64> {
        self.loss_totals
            .iter()
            .map(|v| v.to_f64().unwrap_or(f64::NAN))
            .collect()
    }

    pub fn reset_losses(&mut self) {
        self.loss_totals.iter_mut().for_each(|v| *v = T::zero());
    }

    /// One training step: gather the batch, forward, losses, backward, Adam, then the next
    /// step state.
    pub fn step(&mut self) -> Result<()> {
        self.step_with(&mut PartClock::new(None))
    }

    /// [`Self::step`], adding each part's seconds to `seconds`, one slot for each part that
    /// [`crate::graph::step_parts::step_parts`] lists for this plan (`latent bench --cpu --breakdown`).
    pub fn step_timed(&mut self, seconds: &mut [f64]) -> Result<()> {
        let parts = step_part_count(self.plan);
        if seconds.len() != parts {
            return Err(Error::InvalidArgument(format!(
                "a step of this plan has {parts} parts; got {} slots for their times",
                seconds.len()
            )));
        }
        self.step_with(&mut PartClock::new(Some(seconds)))
    }

    fn step_with(&mut self, clock: &mut PartClock) -> Result<()> {
        if !self.plan.training {
            return Err(Error::InvalidArgument(
                "a forward-only plan cannot take training steps".into(),
            ));
        }
        self.forward_with(clock)?;
        self.backward_with(clock)?;
        self.update()?;
        clock.lap();
        Ok(())
    }

    /// Gathers the batch at the cursor and runs the forward ops and the loss sums.
    pub fn forward(&mut self) -> Result<()> {
        self.forward_with(&mut PartClock::new(None))
    }

    fn forward_with(&mut self, clock: &mut PartClock) -> Result<()> {
        self.gather()?;
        clock.lap();
        for op in &self.plan.graph.ops {
            self.run_forward(op, self.run.seed)?;
            clock.lap();
        }
        for (i, term) in self.plan.losses.iter().enumerate() {
            let total = self
                .tensor(term.per_row)
                .iter()
                .fold(T::zero(), |s, &v| s + v);
            self.loss_totals[i] = self.loss_totals[i] + total;
        }
        clock.lap();
        Ok(())
    }

    /// Runs the backward ops, filling the gradients.
    pub fn backward(&mut self) -> Result<()> {
        self.backward_with(&mut PartClock::new(None))
    }

    fn backward_with(&mut self, clock: &mut PartClock) -> Result<()> {
        for op in &self.plan.backward {
            self.run_backward(op)?;
            clock.lap();
        }
        Ok(())
    }

    /// Adam on every parameter, then the next step state.
    pub fn update(&mut self) -> Result<()> {
        self.check_step()?;
        cpu::adam::adam_step(
            &mut self.params,
            &mut self.adam_m,
            &mut self.adam_v,
            &self.grads,
            self.state[0],
            &self.run.adam,
        )?;
        cpu::step::advance_step(&mut self.state, self.plan.graph.batch);
        Ok(())
    }

    fn check_step(&self) -> Result<()> {
        if self.state[0] > self.run.total_steps {
            return Err(Error::InvalidArgument(format!(
                "step {} beyond the run's {} steps",
                self.state[0], self.run.total_steps
            )));
        }
        Ok(())
    }

    /// The training loss of the last forward pass: Σ_terms weight · Σ per_row.
    pub fn last_loss(&self) -> f64 {
        self.plan
            .losses
            .iter()
            .map(|term| {
                let sum = self
                    .tensor(term.per_row)
                    .iter()
                    .fold(0.0, |s, v| s + v.to_f64().unwrap_or(f64::NAN));
                f64::from(term.weight) * sum
            })
            .sum()
    }

    fn gather(&mut self) -> Result<()> {
        let cursor = self.state[1] as usize;
        let gather = |batch: &mut [f32]| match self.data.samples {
            Samples::U8(bytes) => {
                cpu::gather::gather_u8(batch, bytes, &self.order, cursor, self.data.width)
            }
            Samples::F32(values) => {
                cpu::gather::gather_f32(batch, values, &self.order, cursor, self.data.width)
            }
        };
        if let Some(input) = T::f32s_mut(&mut self.input) {
            gather(input)?;
        } else {
            let mut batch = vec![0.0f32; self.input.len()];
            gather(&mut batch)?;
            self.input = batch.iter().map(|&v| cpu::lit(f64::from(v))).collect();
        }
        if let Some(c) = self.plan.condition {
            let classes = self.plan.graph.tensor(c).cols;
            let mut labels = vec![0.0f32; self.condition.len()];
            cpu::gather::gather_f32(&mut labels, &self.one_hot, &self.order, cursor, classes)?;
            self.condition = labels.iter().map(|&v| cpu::lit(f64::from(v))).collect();
        }
        Ok(())
    }

    /// The elements of a tensor.
    pub fn tensor(&self, t: TensorId) -> &[T] {
        let len = self.plan.graph.tensor(t).len();
        match self.plan.location[t.0] {
            Location::Input => &self.input,
            Location::Condition => &self.condition,
            Location::Params(offset) => &self.params[offset..offset + len],
            Location::Grads(offset) => &self.grads[offset..offset + len],
            Location::Pool(slot) => &self.pool[slot],
        }
    }

    /// Moves a tensor's storage out (pooled or gradient), so that an op can write it while
    /// reading others; `put` moves it back.
    fn take(&mut self, t: TensorId) -> Vec<T> {
        match self.plan.location[t.0] {
            Location::Pool(slot) => std::mem::take(&mut self.pool[slot]),
            Location::Grads(_) => std::mem::take(&mut self.grads),
            Location::Input | Location::Condition | Location::Params(_) => {
                unreachable!("ops never write inputs or parameters")
            }
        }
    }

    fn put(&mut self, t: TensorId, storage: Vec<T>) {
        match self.plan.location[t.0] {
            Location::Pool(slot) => self.pool[slot] = storage,
            Location::Grads(_) => self.grads = storage,
            Location::Input | Location::Condition | Location::Params(_) => {
                unreachable!("ops never write inputs or parameters")
            }
        }
    }

    /// Runs `f` on the writable elements of `t` and read access to everything else.
    fn write<R>(&mut self, t: TensorId, f: impl FnOnce(&mut [T], &Self) -> Result<R>) -> Result<R> {
        let mut storage = self.take(t);
        let range = match self.plan.location[t.0] {
            Location::Grads(offset) => offset..offset + self.plan.graph.tensor(t).len(),
            _ => 0..storage.len(),
        };
        let result = f(&mut storage[range], self);
        self.put(t, storage);
        result
    }

    /// Σ per-row loss of each term over the whole evaluation set, with the current
    /// parameters: batches in order, the last one partial, noise keyed by its own seed and
    /// the same at every call (as on the GPU).
    pub fn evaluate(&mut self) -> Result<Vec<f64>> {
        self.evaluate_with_progress(&mut |_, _| {})
    }

    /// `evaluate`, calling `progress` (rows done, rows in all) after each batch.
    pub fn evaluate_with_progress(
        &mut self,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<f64>> {
        let mut totals = vec![0.0; self.plan.losses.len()];
        let (mut done, rows) = (0, self.eval.map_or(0, |e| e.rows));
        self.over_eval_batches(|e, counted| {
            done += counted;
            progress(done, rows);
            for (total, term) in totals.iter_mut().zip(&e.plan.losses) {
                let rows = counted * e.plan.graph.rows_per_data_row(term.per_row);
                *total += e.tensor(term.per_row)[..rows]
                    .iter()
                    .map(|v| v.to_f64().unwrap_or(f64::NAN))
                    .sum::<f64>();
            }
        })?;
        Ok(totals)
    }

    /// The values of `output` for every row of the evaluation set, row-major.
    pub fn infer(&mut self, output: TensorId) -> Result<Vec<f32>> {
        Ok(self.infer_outputs(&[output])?.remove(0))
    }

    /// Several outputs of one forward pass over the evaluation set, each as `infer` gives it.
    pub fn infer_outputs(&mut self, outputs: &[TensorId]) -> Result<Vec<Vec<f32>>> {
        for &output in outputs {
            self.plan.graph.check_one_row_per_data_row(output)?;
        }
        let rows = self.eval.map_or(0, |eval| eval.rows);
        let mut values = outputs
            .iter()
            .map(|&output| {
                let cols = self.plan.graph.tensor(output).cols;
                host_capacity(rows.saturating_mul(cols), "inference output")
            })
            .collect::<Result<Vec<Vec<f32>>>>()?;
        self.over_eval_batches(|e, counted| {
            for (&output, values) in outputs.iter().zip(values.iter_mut()) {
                let cols = e.plan.graph.tensor(output).cols;
                values.extend(
                    e.tensor(output)[..counted * cols]
                        .iter()
                        .map(|v| v.to_f32().unwrap_or(f32::NAN)),
                );
            }
        })?;
        Ok(values)
    }

    /// Runs the forward ops over the evaluation set in batches (the last one padded with
    /// row 0), calling `each` after every batch with the number of its real rows; the
    /// training data, order and step state are restored afterwards.
    fn over_eval_batches(&mut self, mut each: impl FnMut(&Self, usize)) -> Result<()> {
        let eval = self
            .eval
            .ok_or_else(|| Error::InvalidArgument("no evaluation data was given".into()))?;
        let batch = self.plan.graph.batch;
        let saved = (
            self.data,
            std::mem::replace(&mut self.order, padded_order(eval.rows, batch)),
            self.state,
        );
        self.data = eval;
        self.state = [1, 0];
        std::mem::swap(&mut self.one_hot, &mut self.eval_one_hot);
        let result = (|| {
            for start in (0..eval.rows).step_by(batch) {
                self.gather()?;
                for op in &self.plan.graph.ops {
                    self.run_forward(op, self.run.seed ^ super::gpu::EVAL_SEED_SALT)?;
                }
                each(self, batch.min(eval.rows - start));
                cpu::step::advance_step(&mut self.state, batch);
            }
            Ok(())
        })();
        (self.data, self.order, self.state) = saved;
        std::mem::swap(&mut self.one_hot, &mut self.eval_one_hot);
        result
    }

    fn run_forward(&mut self, op: &Op, seed: u64) -> Result<()> {
        let graph = &self.plan.graph;
        match *op {
            Op::Linear { y, x, weight, bias } => {
                let shape = LinearShapes::new(
                    graph.tensor(x).rows,
                    graph.tensor(x).cols,
                    graph.tensor(y).cols,
                    false,
                )
                .forward;
                self.write(y, |out, e| {
                    cpu::matmul::matmul(
                        out,
                        e.tensor(x),
                        e.tensor(weight),
                        Some(e.tensor(bias)),
                        &shape,
                    )
                })
            }
            Op::Activation { kind, y, x } => {
                self.write(y, |out, e| activation_forward(kind, out, e.tensor(x)))
            }
            Op::Reparameterize {
                z,
                eps,
                stats,
                stream,
            } => {
                let key = NoiseKey {
                    seed,
                    step: self.state[0],
                    stream,
                };
                let (rows, cols) = (graph.tensor(z).rows, graph.tensor(z).cols);
                let mut noise = self.take(eps);
                let result = self.write(z, |out, e| {
                    cpu::reparameterize::reparameterize_forward(
                        out,
                        &mut noise,
                        e.tensor(stats),
                        rows,
                        cols,
                        key,
                    )
                });
                self.put(eps, noise);
                result
            }
            Op::Kl { per_row, stats, .. } => {
                let (rows, cols) = (graph.tensor(stats).rows, graph.tensor(stats).cols / 2);
                self.write(per_row, |out, e| {
                    cpu::kl::kl_forward(out, e.tensor(stats), rows, cols)
                })
            }
            Op::Loss {
                kind,
                per_row,
                a,
                b,
                ..
            } => {
                let (rows, cols) = (graph.tensor(a).rows, graph.tensor(a).cols);
                self.write(per_row, |out, e| match kind {
                    LossKind::Mse => {
                        cpu::mse::mse_forward(out, e.tensor(a), e.tensor(b), rows, cols)
                    }
                    LossKind::Bce => {
                        cpu::bce::bce_forward(out, e.tensor(a), e.tensor(b), rows, cols)
                    }
                    LossKind::Kl | LossKind::L1 | LossKind::KlSparsity | LossKind::Iw => {
                        Err(not_a_target_loss(kind))
                    }
                })
            }
            Op::LogWeight {
                logw,
                recon,
                z,
                eps,
                stats,
                recon_weight,
            } => {
                let cols = graph.tensor(z).cols;
                self.write(logw, |out, e| {
                    cpu::log_weight::log_weight(
                        out,
                        e.tensor(recon),
                        e.tensor(z),
                        e.tensor(eps),
                        e.tensor(stats),
                        cols,
                        recon_weight,
                    )
                })
            }
            Op::NegLogMeanExp {
                per_row, logw, k, ..
            } => self.write(per_row, |out, e| {
                cpu::log_mean_exp::neg_log_mean_exp(out, e.tensor(logw), k)
            }),
            Op::Concat { y, a, b } => {
                let (rows, cols_a, cols_b) = (
                    graph.tensor(a).rows,
                    graph.tensor(a).cols,
                    graph.tensor(b).cols,
                );
                self.write(y, |out, e| {
                    cpu::concat::concat_cols(out, e.tensor(a), e.tensor(b), rows, cols_a, cols_b)
                })
            }
            Op::RepeatRows { y, x, k } => {
                let (rows, cols) = (graph.tensor(x).rows, graph.tensor(x).cols);
                self.write(y, |out, e| {
                    cpu::repeat_rows::repeat_rows(out, e.tensor(x), rows, cols, k)
                })
            }
            Op::Corrupt {
                y,
                x,
                noise,
                stream,
            } => {
                let key = NoiseKey {
                    seed,
                    step: self.state[0],
                    stream,
                };
                self.write(y, |out, e| {
                    cpu::corrupt::corrupt(out, e.tensor(x), noise, key)
                })
            }
            Op::Penalty {
                penalty,
                per_row,
                rho_hat,
                x,
                ..
            } => {
                let (rows, cols) = (graph.tensor(x).rows, graph.tensor(x).cols);
                match (penalty, rho_hat) {
                    (Penalty::KlSparsity { rho }, Some(rho_hat)) => {
                        let mut means = self.take(rho_hat);
                        let result = self.write(per_row, |out, e| {
                            cpu::kl_sparsity::kl_sparsity_forward(
                                out,
                                &mut means,
                                e.tensor(x),
                                rows,
                                cols,
                                rho,
                            )
                        });
                        self.put(rho_hat, means);
                        result
                    }
                    _ => self.write(per_row, |out, e| {
                        cpu::l1::l1_forward(out, e.tensor(x), rows, cols)
                    }),
                }
            }
        }
    }

    fn run_backward(&mut self, op: &GradOp) -> Result<()> {
        let graph = &self.plan.graph;
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
                let (batch, out, input) = (
                    graph.tensor(dy).rows,
                    graph.tensor(dy).cols,
                    graph.tensor(x).cols,
                );
                let shapes = LinearShapes::new(batch, input, out, accumulate_dx);
                let dw_shape = shapes.dweight;
                self.write(dweight, |g, e| {
                    cpu::matmul::matmul(g, e.tensor(dy), e.tensor(x), None, &dw_shape)
                })?;
                self.write(dbias, |g, e| {
                    cpu::reduce::sum_cols(g, e.tensor(dy), batch, out)
                })?;
                if let Some(dx) = dx {
                    let dx_shape = shapes.dx;
                    self.write(dx, |g, e| {
                        cpu::matmul::matmul(g, e.tensor(dy), e.tensor(weight), None, &dx_shape)
                    })?;
                }
                Ok(())
            }
            GradOp::Activation { kind, dx, y, dy } => self.write(dx, |g, e| {
                activation_backward(kind, g, e.tensor(y), e.tensor(dy))
            }),
            GradOp::Reparameterize {
                dstats,
                accumulate,
                eps,
                stats,
                dz,
            } => {
                let (rows, cols) = (graph.tensor(dz).rows, graph.tensor(dz).cols);
                self.write(dstats, |g, e| {
                    cpu::reparameterize::reparameterize_backward(
                        g,
                        e.tensor(eps),
                        e.tensor(stats),
                        e.tensor(dz),
                        rows,
                        cols,
                        accumulate,
                    )
                })
            }
            GradOp::Loss {
                kind,
                da,
                a,
                b,
                scale,
                row_grad: None,
            } => {
                let scale = cpu::lit::<T>(f64::from(scale));
                self.write(da, |g, e| match kind {
                    LossKind::Bce => cpu::bce::bce_backward(g, e.tensor(a), e.tensor(b), scale),
                    _ => cpu::mse::mse_backward(g, e.tensor(a), e.tensor(b), scale),
                })
            }
            GradOp::Loss {
                kind,
                da,
                a,
                b,
                scale,
                row_grad: Some((rows, factor)),
            } => {
                let (scale, factor) =
                    (cpu::lit::<T>(f64::from(scale)), cpu::lit(f64::from(factor)));
                self.write(da, |g, e| {
                    let (a, b, rows) = (e.tensor(a), e.tensor(b), e.tensor(rows));
                    match kind {
                        LossKind::Bce => cpu::bce::bce_backward_rows(g, a, b, rows, scale, factor),
                        _ => cpu::mse::mse_backward_rows(g, a, b, rows, scale, factor),
                    }
                })
            }
            GradOp::LogWeight {
                dz,
                dstats,
                accumulate_z,
                accumulate_stats,
                dlogw,
                z,
            } => {
                let mut d_stats = self.take(dstats);
                let result = self.write(dz, |g, e| {
                    cpu::log_weight::log_weight_backward(
                        g,
                        &mut d_stats,
                        e.tensor(dlogw),
                        e.tensor(z),
                        accumulate_z,
                        accumulate_stats,
                    )
                });
                self.put(dstats, d_stats);
                result
            }
            GradOp::NegLogMeanExp {
                dlogw,
                logw,
                k,
                scale,
            } => {
                let scale = cpu::lit::<T>(f64::from(scale));
                self.write(dlogw, |g, e| {
                    cpu::log_mean_exp::neg_log_mean_exp_backward(g, e.tensor(logw), k, scale)
                })
            }
            GradOp::Slice {
                da,
                accumulate,
                dy,
                offset,
            } => {
                let (rows, width) = (graph.tensor(dy).rows, graph.tensor(dy).cols);
                self.write(da, |g, e| {
                    cpu::concat::slice_cols(g, e.tensor(dy), rows, width, offset, accumulate)
                })
            }
            GradOp::SumRowGroups {
                dx,
                accumulate,
                dy,
                k,
            } => {
                let (rows, cols) = (graph.tensor(dx).rows, graph.tensor(dx).cols);
                self.write(dx, |g, e| {
                    cpu::repeat_rows::sum_row_groups(g, e.tensor(dy), rows, cols, k, accumulate)
                })
            }
            GradOp::Penalty(ref p) => {
                let scale = cpu::lit::<T>(f64::from(p.scale));
                let rows = graph.tensor(p.x).rows;
                match (p.penalty, p.rho_hat) {
                    (Penalty::KlSparsity { rho }, Some(rho_hat)) => self.write(p.dx, |g, e| {
                        cpu::kl_sparsity::kl_sparsity_backward(
                            g,
                            e.tensor(rho_hat),
                            rows,
                            rho,
                            scale,
                            p.accumulate,
                        )
                    }),
                    _ => self.write(p.dx, |g, e| {
                        cpu::l1::l1_backward(g, e.tensor(p.x), scale, p.accumulate)
                    }),
                }
            }
            GradOp::Kl {
                dstats,
                accumulate,
                stats,
                scale,
            } => {
                let scale = cpu::lit::<T>(f64::from(scale));
                let (rows, cols) = (graph.tensor(stats).rows, graph.tensor(stats).cols / 2);
                self.write(dstats, |g, e| {
                    cpu::kl::kl_backward(g, e.tensor(stats), rows, cols, scale, accumulate)
                })
            }
        }
    }
}

/// The error for a loss kind without a target on a Loss op (graphs built through
/// `Graph::loss` never have one).
pub(crate) fn not_a_target_loss(kind: LossKind) -> Error {
    crate::error::shape_error(
        kind.name(),
        "a loss against a target is MSE or BCE: use Graph::kl or Graph::penalty",
    )
}

fn activation_forward<T: Real>(kind: Activation, y: &mut [T], x: &[T]) -> Result<()> {
    match kind {
        Activation::Relu => cpu::activation::relu_forward(y, x),
        Activation::Sigmoid => cpu::activation::sigmoid_forward(y, x),
        Activation::Tanh => cpu::activation::tanh_forward(y, x),
    }
}

fn activation_backward<T: Real>(kind: Activation, dx: &mut [T], y: &[T], dy: &[T]) -> Result<()> {
    match kind {
        Activation::Relu => cpu::activation::relu_backward(dx, y, dy),
        Activation::Sigmoid => cpu::activation::sigmoid_backward(dx, y, dy),
        Activation::Tanh => cpu::activation::tanh_backward(dx, y, dy),
    }
}

/// Rows 0..rows in order and on past the set up to a whole number of batches: the order an
/// evaluation pass gathers, its padding rows zeros (not counted), as the GPU's gather in
/// order gives them.
fn padded_order(rows: usize, batch: usize) -> Vec<u32> {
    (0..(rows.div_ceil(batch) * batch) as u32).collect()
}
