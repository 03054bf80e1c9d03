//! Compiles a graph into a plan: the forward ops, then the backward ops from autodiff, with
//! every tensor's storage decided up front. Parameters live in one flat buffer (and their
//! gradients at the same offsets in a second), each at a multiple of VIEW_ALIGNMENT elements
//! so a GPU kernel can bind it as a range; the data batch has a buffer of its own; every other
//! tensor gets a pooled buffer, reused once its last reader has run (interval allocation over
//! the schedule).

use crate::error::{Error, Result};
use crate::gpu::VIEW_ALIGNMENT;
use crate::graph::autodiff::{differentiate, grad_op_io, op_io, GradOp, PenaltyGrad};
use crate::graph::{Graph, LossKind, Op, Penalty, Role, TensorId};
use crate::kernels::log_mean_exp::ALONE_MAX_K;
use crate::kernels::matmul_grouped_tn::MAX_PROBLEMS;

/// Where a tensor lives during a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// The data batch buffer.
    Input,
    /// The one-hot label batch buffer (conditional models).
    Condition,
    /// Elements offset.. of the flat parameter buffer.
    Params(usize),
    /// Elements offset.. of the flat gradient buffer.
    Grads(usize),
    /// Pooled buffer number n (exactly the tensor's size).
    Pool(usize),
}

/// One term of the training loss: weight · Σ per_row.
#[derive(Clone, Debug)]
pub struct LossTerm {
    pub kind: LossKind,
    pub per_row: TensorId,
    pub weight: f32,
    /// The forward op that computes it.
    pub op: usize,
}

/// Work the GPU executor moves into a forward dispatch of a training step. A loss's gradient
/// needs only forward values, so the dispatch that computes the loss can write it too; the
/// loss rows then go straight into running totals (one per batch row, summed on the host),
/// with no sum dispatch. The CPU executor runs the ops apart, with the same result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainingFusion {
    /// The op runs on its own.
    None,
    /// A BCE or MSE loss, a penalty or an IWAE bound whose dispatch also writes backward op
    /// `grad` (its gradient).
    LossWithGrad { grad: usize },
    /// A BCE or MSE loss whose rows other ops read (an IWAE's reconstruction, which its log
    /// weights read): its dispatch also adds them to running totals.
    RowsToTotals,
    /// A linear layer whose matmul applies the BCE or MSE loss (forward op `loss`) to its
    /// product as it stores: it writes the loss's gradient (backward op `grad`) instead of
    /// the layer's output, which nothing else reads, and adds the loss to running totals.
    LinearWithLoss { loss: usize, grad: usize },
    /// A loss that its linear layer's matmul computes (see LinearWithLoss).
    InLinear,
    /// A reparameterization whose dispatch also computes the KL loss (forward op `kl`) of
    /// the same μ | logvar stats, and its gradient (backward op `grad`) where it has one:
    /// the VAE head. An IWAE's reparameterizes the stats repeated K times (a RepeatRows
    /// folded into its readers) and computes the KL of its data rows, only reported. A
    /// conditional VAE's also does forward op `join`, the Concat z | label that alone reads
    /// z: it writes z | label in place of z.
    VaeHead {
        kl: usize,
        grad: Option<usize>,
        join: Option<usize>,
    },
    /// A KL loss or a concat (z | label) that the VAE head's dispatch does.
    InHead,
    /// An IWAE's log weights whose dispatch also does the bound (forward op `bound`, its
    /// rows added to running totals), the bound's gradient (backward op `bound_grad`) and
    /// the log weights' own backward (backward op `grad`, which writes dz and dμ | dlogvar):
    /// the step's whole importance weighting in one dispatch, a workgroup a data row
    /// (kernels::iwae_bound). The log weights are then never written. With `recon` (forward
    /// op, backward op): also the BCE or MSE reconstruction loss whose rows only the log
    /// weights read (its rows added to running totals) and its gradient, which takes dlogw
    /// (kernels::iwae_bound::iwae_bound_with_recon; on a device that binds fewer than its
    /// 11 storage buffers the GPU executor runs the loss, the bound and the loss's gradient
    /// as three dispatches in its place).
    IwaeBound {
        bound: usize,
        bound_grad: usize,
        grad: usize,
        recon: Option<(usize, usize)>,
    },
    /// A bound, or the reconstruction loss its log weights read, that the log weights'
    /// dispatch does (see IwaeBound).
    InBound,
    /// A sparse autoencoder's L1 penalty that the dx matmul of the layer its code feeds does
    /// as it stores ([`Plan::dx_penalty`]): its gradient (backward op `grad`, never run)
    /// added to the product, its rows' Σ|code| added to running totals, a slot per element
    /// of the code.
    InDx { grad: usize },
}

impl TrainingFusion {
    /// The backward ops whose work this fusion's dispatch does.
    pub fn gradients(self) -> Vec<usize> {
        match self {
            TrainingFusion::LossWithGrad { grad } | TrainingFusion::LinearWithLoss { grad, .. } => {
                vec![grad]
            }
            TrainingFusion::VaeHead { grad, .. } => grad.into_iter().collect(),
            TrainingFusion::IwaeBound {
                bound_grad,
                grad,
                recon,
                ..
            } => [bound_grad, grad]
                .into_iter()
                .chain(recon.map(|(_, g)| g))
                .collect(),
            // The dx matmul's dispatch does InDx's gradient.
            TrainingFusion::None
            | TrainingFusion::InHead
            | TrainingFusion::InLinear
            | TrainingFusion::InBound
            | TrainingFusion::InDx { .. }
            | TrainingFusion::RowsToTotals => Vec::new(),
        }
    }

    /// Whether another dispatch does this op (it has none of its own): a forward op's, or,
    /// for InDx, a backward matmul's.
    pub fn done_in_another_dispatch(self) -> bool {
        matches!(
            self,
            TrainingFusion::InHead
                | TrainingFusion::InLinear
                | TrainingFusion::InBound
                | TrainingFusion::InDx { .. }
        )
    }
}

/// A compiled training step.
#[derive(Clone, Debug)]
pub struct Plan {
    pub graph: Graph,
    pub backward: Vec<GradOp>,
    /// The data batch tensor.
    pub input: TensorId,
    /// The one-hot label batch of a conditional model.
    pub condition: Option<TensorId>,
    /// Storage of every tensor, indexed by TensorId.
    pub location: Vec<Location>,
    /// Length of the flat parameter (and gradient) buffer, padding included.
    pub param_len: usize,
    /// Sizes of the pooled buffers, each tensor's buffer freed for reuse after its last
    /// reader, as the CPU executor uses them (the GPU executor's differs: see
    /// [`Plan::gpu_pool`]).
    pub pool: Vec<usize>,
    /// Tensors read after the step's last op (loss rows, requested outputs).
    live_to_end: Vec<TensorId>,
    /// A training plan (with backward ops); else forward-only, for evaluation or inference.
    pub training: bool,
    /// Per forward op: true for an op the GPU does in another op's dispatch: an activation
    /// applied in the store of the linear layer just before it (its input is read by
    /// nothing else), or a RepeatRows whose readers all read the source's rows in its place
    /// ([`Plan::repeat_source`]): losses as their target, the reparameterization and the
    /// log weights as their μ | logvar; or the Concat of the input and the condition (a
    /// conditional model's x | label, [`Plan::input_join`]) or the input's corruption (a
    /// denoising model's, [`Plan::input_corruption`]), which the batch's gather writes.
    pub fused: Vec<bool>,
    /// Per forward op: work the GPU moves into its dispatch in a training step (all None in
    /// a forward-only plan). Evaluation passes run the ops apart.
    pub training_fusion: Vec<TrainingFusion>,
    /// Per backward op: true when another dispatch of the GPU's training step does it (a
    /// loss's forward dispatch, or a linear layer's dx matmul).
    pub done_elsewhere: Vec<bool>,
    /// Per backward op: for a linear layer, the activation backward (an index into
    /// `backward`) that its dx matmul applies as it stores, multiplying by f' of the saved
    /// output (after adding the dx other layers wrote, when this layer adds to it); the
    /// layer's own share of dx is then never stored.
    pub dx_activation: Vec<Option<usize>>,
    /// Per backward op: for a linear layer whose dx is a VAE's dz that only the
    /// reparameterization's backward reads (or a conditional VAE's d(z | label), read only by
    /// the folded slice that cuts dz from it), that backward (an index into `backward`): the
    /// dx matmul adds [dz | dz·ε·½e^(½·logvar)] to dstats as it stores, dz its product's
    /// first columns, and dx is never stored.
    pub dx_reparameterize: Vec<Option<usize>>,
    /// Per backward op: for a linear layer whose dx is a sparse autoencoder's code's
    /// gradient, which only an L1 penalty wrote before it (its layer adds to it), that
    /// penalty (an index into the forward ops, TrainingFusion::InDx): the dx matmul adds the
    /// penalty's gradient to its product as it stores (in place of adding what the penalty
    /// wrote) and the penalty's rows to its running totals.
    pub dx_penalty: Vec<Option<usize>>,
    /// Per backward op: for the reparameterization's backward of stats repeated for K
    /// samples (an IWAE's), the SumRowGroups right after it that sums its gradient over each
    /// group (an index into `backward`), when nothing else reads that gradient: one dispatch
    /// does both (reparameterize_backward_groups), reading what other ops wrote of the
    /// samples' gradient and writing only the data rows'.
    pub reparameterize_group_sum: Vec<Option<usize>>,
    /// Per backward op: true for a Slice of a gradient's first columns that only the next
    /// op, the reparameterization's backward, reads, as its dz (a conditional VAE's dz, the
    /// first columns of d(z | label)): the dx matmul that writes d(z | label) does that
    /// backward in its store (`dx_reparameterize`), or, where it cannot, the backward reads
    /// them in place ([`Plan::reparameterize_dz`]); the GPU never slices.
    pub folded_slices: Vec<bool>,
    pub losses: Vec<LossTerm>,
}

impl Plan {
    /// Differentiates `graph` and assigns storage.
    pub fn compile(graph: Graph) -> Result<Plan> {
        let losses = loss_terms(&graph);
        if losses.is_empty() {
            return Err(Error::InvalidArgument(
                "a model needs a loss to train".into(),
            ));
        }
        Self::assign(graph, losses, &[], true)
    }

    /// A forward-only plan whose loss terms are summed, for evaluating a model (such as its
    /// importance-weighted bound) without training it.
    pub fn compile_evaluation(graph: Graph) -> Result<Plan> {
        let losses = loss_terms(&graph);
        Self::assign(graph, losses, &[], false)
    }

    /// A forward-only plan, for inference (encoding, decoding): no backward ops, and the
    /// graph's losses (if any) are computed but not summed. `outputs` keep their buffers to
    /// the end of the pass, so that they can be read after it.
    pub fn compile_inference(graph: Graph, outputs: &[TensorId]) -> Result<Plan> {
        Self::assign(graph, Vec::new(), outputs, false)
    }

    fn assign(
        mut graph: Graph,
        losses: Vec<LossTerm>,
        outputs: &[TensorId],
        train: bool,
    ) -> Result<Plan> {
        let inputs: Vec<TensorId> = (0..graph.tensors.len())
            .map(TensorId)
            .filter(|&t| graph.tensor(t).role == Role::Input)
            .collect();
        let [input] = inputs[..] else {
            return Err(Error::InvalidArgument(format!(
                "a model needs exactly one input, this one has {}",
                inputs.len()
            )));
        };
        let conditions: Vec<TensorId> = (0..graph.tensors.len())
            .map(TensorId)
            .filter(|&t| graph.tensor(t).role == Role::Condition)
            .collect();
        if conditions.len() > 1 {
            return Err(Error::InvalidArgument(format!(
                "a model takes at most one condition, this one has {}",
                conditions.len()
            )));
        }
        let condition = conditions.first().copied();
        let backward = if train {
            differentiate(&mut graph)?
        } else {
            Vec::new()
        };
        let mut location = vec![Location::Input; graph.tensors.len()];
        if let Some(c) = condition {
            location[c.0] = Location::Condition;
        }
        let mut param_len = 0;
        for t in graph.parameters() {
            location[t.0] = Location::Params(param_len);
            param_len += graph.tensor(t).len().div_ceil(VIEW_ALIGNMENT) * VIEW_ALIGNMENT;
        }
        for (i, tensor) in graph.tensors.iter().enumerate() {
            if let Role::Gradient { of } = tensor.role {
                if let Location::Params(offset) = location[of.0] {
                    location[i] = Location::Grads(offset);
                }
            }
        }
        let mut live_to_end: Vec<TensorId> = losses.iter().map(|term| term.per_row).collect();
        live_to_end.extend_from_slice(outputs);
        let mut training_fusion = loss_fusions(&graph, &backward);
        let dx_activation = dx_activations(&graph, &backward);
        let folded_slices = foldable_slices(&graph, &backward, &live_to_end);
        let dx_reparameterize = dx_reparameterizations(&graph, &backward, &folded_slices);
        let mut fused = fusable_activations(&graph, &backward, &live_to_end);
        let read_by_group = ReadByGroup {
            training_fusion: &training_fusion,
            dx_reparameterize: &dx_reparameterize,
        };
        let repeats = foldable_repeats(&graph, &backward, &live_to_end, &read_by_group);
        for (fused, repeat) in fused.iter_mut().zip(&repeats) {
            *fused |= repeat;
        }
        if let Some(c) = input_join(&graph).or(input_corruption(&graph)) {
            fused[c] = true;
        }
        add_vae_heads(&graph, &backward, &repeats, &mut training_fusion);
        add_iwae_bounds(&graph, &backward, &mut training_fusion);
        let dx_penalty = add_dx_penalties(&graph, &backward, &dx_activation, &mut training_fusion);
        let reparameterize_group_sum = reparameterize_group_sums(&graph, &backward, &live_to_end);
        let dx_store = dx_stores(
            &dx_activation,
            &dx_reparameterize,
            &reparameterize_group_sum,
        );
        let mut done_elsewhere = vec![false; backward.len()];
        for fusion in &training_fusion {
            for grad in fusion.gradients() {
                done_elsewhere[grad] = true;
            }
        }
        for &op in dx_store.iter().flatten() {
            done_elsewhere[op] = true;
        }
        for (done, &folded) in done_elsewhere.iter_mut().zip(&folded_slices) {
            *done |= folded;
        }
        for fusion in &training_fusion {
            if let TrainingFusion::InDx { grad } = *fusion {
                done_elsewhere[grad] = true;
            }
        }
        let pool = assign_pool(
            &graph,
            &backward,
            &live_to_end,
            &MovedWork {
                fused: &fused,
                training_fusion: &training_fusion,
                dx_store: &dx_store,
                folded_slices: &folded_slices,
            },
            (&vec![false; location.len()], &mut location),
        );
        Ok(Plan {
            graph,
            backward,
            input,
            condition,
            location,
            param_len,
            pool,
            live_to_end,
            losses,
            training: train,
            fused,
            training_fusion,
            done_elsewhere,
            dx_activation,
            dx_reparameterize,
            dx_penalty,
            reparameterize_group_sum,
            folded_slices,
        })
    }

    /// Number of dispatches in one training step on the GPU with every weight gradient in a
    /// dispatch of its own (see [`Plan::weight_grad_sets`]): gather (a conditional model's
    /// labels a second, unless the gather joins them, as it does for a data set in at most
    /// two bindings: [`Plan::input_join`]), forward (less the ops done by other dispatches:
    /// activations, KL losses, repeats, the input's join or corruption), loss sums (for
    /// losses without running totals, up to 3 a dispatch), backward (a linear layer's backward is 1, dW
    /// with the bias gradient as its row sums, or 2 with dx; less the ops done by other
    /// dispatches) and the optimizer. The step state needs no dispatch: each step reads its
    /// row of a table.
    pub fn dispatches_per_step(&self) -> usize {
        let backward: usize = self
            .backward
            .iter()
            .zip(&self.done_elsewhere)
            .filter(|(_, &done)| !done)
            .map(|(op, _)| match op {
                GradOp::Linear { dx, .. } => 1 + usize::from(dx.is_some()),
                _ => 1,
            })
            .sum();
        let gathers = 1 + usize::from(self.condition.is_some() && self.input_join().is_none());
        let fused = self.fused.iter().filter(|&&f| f).count();
        let in_head = self
            .training_fusion
            .iter()
            .filter(|f| f.done_in_another_dispatch())
            .count();
        let sums = self
            .losses
            .iter()
            .filter(|term| !self.running_totals(term))
            .count()
            .div_ceil(crate::kernels::reduce::MAX_SUM_TERMS);
        gathers + self.graph.ops.len() - fused - in_head + sums + backward + 1
    }

    /// FLOPs of the forward pass's matrix multiplies (2 · rows · in · out a linear layer,
    /// a layer's rows its input's: the batch, or K samples of each row).
    pub fn forward_matmul_flops(&self) -> f64 {
        self.graph
            .ops
            .iter()
            .map(|op| op_matmul_flops(&self.graph, op))
            .sum()
    }

    /// FLOPs of a training step's matrix multiplies: every linear layer's forward, weight
    /// gradient and (but for the first layer) input gradient.
    pub fn step_matmul_flops(&self) -> f64 {
        let backward: f64 = self
            .backward
            .iter()
            .map(|op| grad_op_matmul_flops(&self.graph, op))
            .sum();
        self.forward_matmul_flops() + backward
    }

    /// The step's linear layers (indices into `backward`) in backward order, in sets of up
    /// to [`MAX_PROBLEMS`] of the same rows: the sets whose weight gradients the GPU
    /// executor may compute in one dispatch each (kernels::matmul_grouped_tn, whose layers
    /// share their rows), after the backward pass. An IWAE's decoder layers (K rows a data
    /// row) and encoder layers (one) fall in different sets.
    pub fn weight_grad_sets(&self) -> Vec<Vec<usize>> {
        let mut sets: Vec<Vec<usize>> = Vec::new();
        let mut set_rows = 0;
        for (j, op) in self.backward.iter().enumerate() {
            let GradOp::Linear { dy, .. } = *op else {
                continue;
            };
            let rows = self.graph.tensor(dy).rows;
            match sets.last_mut() {
                Some(set) if set.len() < MAX_PROBLEMS && rows == set_rows => set.push(j),
                _ => sets.push(vec![j]),
            }
            set_rows = rows;
        }
        sets
    }

    /// The rows of a set of linear layers (every layer's dy has them): the K of their
    /// weight gradients' products.
    pub fn weight_grad_rows(&self, layers: &[usize]) -> usize {
        layers
            .first()
            .and_then(|&j| match self.backward[j] {
                GradOp::Linear { dy, .. } => Some(self.graph.tensor(dy).rows),
                _ => None,
            })
            .unwrap_or(self.graph.batch)
    }

    /// What the GPU's kernels read for `t`: (t, 1), or, when t is the output of a RepeatRows
    /// the GPU folds into its readers (`fused`), (its source, k): row r of t is then read
    /// as the source's row r / k (a loss's target, the reparameterization's and the log
    /// weights' μ | logvar).
    pub fn repeat_source(&self, t: TensorId) -> (TensorId, usize) {
        self.graph
            .ops
            .iter()
            .zip(&self.fused)
            .find_map(|(op, &fused)| match *op {
                Op::RepeatRows { y, x, k } if fused && y == t => Some((x, k)),
                _ => None,
            })
            .unwrap_or((t, 1))
    }

    /// The forward op, a Concat of the input and the condition (x | label, a conditional
    /// model's encoder input), that the GPU's gather writes with the batch and its labels
    /// (kernels::gather::gather_join), when the data set allows it (else it runs apart).
    pub fn input_join(&self) -> Option<usize> {
        input_join(&self.graph)
    }

    /// The forward op, a Corrupt of the input (a denoising model's), that the GPU's gather
    /// does as it gathers the batch (kernels::gather::gather_corrupt); not in a model whose
    /// gather joins its input to a label ([`Plan::input_join`]).
    pub fn input_corruption(&self) -> Option<usize> {
        input_corruption(&self.graph)
    }

    /// What the GPU's reparameterization backward reads for its `dz`: (dz, its cols), or,
    /// when a folded Slice wrote dz (`folded_slices`), (the sliced gradient, its cols): dz
    /// is the first columns of each of its rows.
    pub fn reparameterize_dz(&self, dz: TensorId) -> (TensorId, usize) {
        let source = self
            .backward
            .iter()
            .zip(&self.folded_slices)
            .find_map(|(op, &folded)| match *op {
                GradOp::Slice { da, dy, .. } if folded && da == dz => Some(dy),
                _ => None,
            })
            .unwrap_or(dz);
        (source, self.graph.tensor(source).cols)
    }

    /// Tensors the GPU executor never stores, in any pass: the input of an activation
    /// applied in its linear layer's store and the output of a RepeatRows folded into its
    /// losses (`fused`), and a linear layer's dx when its dx matmul applies the backward op
    /// after it as it stores (`dx_activation` with no dx from other layers to add,
    /// `dx_reparameterize`). Indexed by TensorId.
    pub fn unstored_on_gpu(&self) -> Vec<bool> {
        let mut unstored = vec![false; self.graph.tensors.len()];
        for (i, op) in self.graph.ops.iter().enumerate() {
            match (self.fused[i], op) {
                (true, Op::Activation { x, .. }) => unstored[x.0] = true,
                (true, Op::RepeatRows { y, .. }) => unstored[y.0] = true,
                _ => {}
            }
        }
        for (j, op) in self.backward.iter().enumerate() {
            if let (true, &GradOp::Slice { da, .. }) = (self.folded_slices[j], op) {
                unstored[da.0] = true;
            }
            // A samples' gradient that only the group sum's dispatch would have written.
            if let (
                Some(_),
                GradOp::Reparameterize {
                    dstats,
                    accumulate: false,
                    ..
                },
            ) = (self.reparameterize_group_sum[j], op)
            {
                unstored[dstats.0] = true;
            }
            if let GradOp::Linear { dx: Some(dx), .. } = *op {
                let in_store = (self.dx_activation[j].is_some() && !self.adds_to_dx(j))
                    || self.dx_reparameterize[j].is_some();
                unstored[dx.0] |= in_store;
            }
        }
        unstored
    }

    /// Whether linear layer `j`'s dx matmul adds to a dx other ops wrote (GradOp::Linear's
    /// `accumulate_dx`), not when the other writer was an L1 penalty the matmul does in its
    /// store (`dx_penalty`).
    pub fn adds_to_dx(&self, j: usize) -> bool {
        match self.backward[j] {
            GradOp::Linear { accumulate_dx, .. } => accumulate_dx && self.dx_penalty[j].is_none(),
            _ => false,
        }
    }

    /// The GPU executor's pool: the plan's, less the tensors it never stores
    /// ([`Plan::unstored_on_gpu`], whose location is None), and with the dy and x of linear
    /// layers `grouped` (indices into `backward`) kept to the step's end, for their weight
    /// gradients run after the backward pass in grouped dispatches
    /// (kernels::matmul_grouped_tn). Returns the pooled buffers' sizes and every tensor's
    /// location.
    pub fn gpu_pool(&self, grouped: &[usize]) -> (Vec<usize>, Vec<Option<Location>>) {
        let mut kept = self.live_to_end.clone();
        for &j in grouped {
            if let GradOp::Linear { dy, x, .. } = self.backward[j] {
                kept.extend([dy, x]);
            }
        }
        let unstored = self.unstored_on_gpu();
        let mut location: Vec<Location> = self
            .location
            .iter()
            .map(|&l| match l {
                Location::Pool(_) => Location::Input,
                other => other,
            })
            .collect();
        let dx_store = dx_stores(
            &self.dx_activation,
            &self.dx_reparameterize,
            &self.reparameterize_group_sum,
        );
        let pool = assign_pool(
            &self.graph,
            &self.backward,
            &kept,
            &MovedWork {
                fused: &self.fused,
                training_fusion: &self.training_fusion,
                dx_store: &dx_store,
                folded_slices: &self.folded_slices,
            },
            (&unstored, &mut location),
        );
        let location = location
            .into_iter()
            .zip(unstored)
            .map(|(l, unstored)| (!unstored).then_some(l))
            .collect();
        (pool, location)
    }

    /// Whether the GPU's training step adds this term's rows to running totals in the
    /// dispatch that computes them (else a sum dispatch adds them up).
    pub fn running_totals(&self, term: &LossTerm) -> bool {
        self.training_fusion[term.op] != TrainingFusion::None
    }

    /// Elements of the GPU's running totals of a term (see `running_totals`): one per batch
    /// row, or, for a loss in its linear layer's matmul, one per element of the layer's
    /// output (each matmul thread adds its share of a row to a slot of its own).
    pub fn running_totals_len(&self, term: &LossTerm) -> usize {
        match (self.training_fusion[term.op], &self.graph.ops[term.op]) {
            (TrainingFusion::InLinear, &Op::Loss { a, .. }) => self.graph.tensor(a).len(),
            (TrainingFusion::InDx { .. }, &Op::Penalty { x, .. }) => self.graph.tensor(x).len(),
            _ => self.graph.tensor(term.per_row).len(),
        }
    }
}

/// How many forward and backward ops read each tensor (an op that adds to a gradient reads
/// it).
fn reader_counts(graph: &Graph, backward: &[GradOp]) -> Vec<usize> {
    let mut readers = vec![0usize; graph.tensors.len()];
    let io = graph
        .ops
        .iter()
        .map(op_io)
        .chain(backward.iter().map(grad_op_io));
    for (_, inputs) in io {
        for t in inputs {
            readers[t.0] += 1;
        }
    }
    readers
}

/// Marks each activation whose input is a linear layer's output that nothing else reads (no
/// other forward or backward op, not a loss or a requested output): the GPU executor applies
/// it in that layer's matmul store. The backward needs only the activation's output.
fn fusable_activations(graph: &Graph, backward: &[GradOp], live_to_end: &[TensorId]) -> Vec<bool> {
    let readers = reader_counts(graph, backward);
    let mut fused = vec![false; graph.ops.len()];
    for (i, pair) in graph.ops.windows(2).enumerate() {
        if let [Op::Linear { y: pre, .. }, Op::Activation { x, .. }] = pair {
            fused[i + 1] = pre == x && readers[x.0] == 1 && !live_to_end.contains(x);
        }
    }
    fused
}

/// See [`Plan::input_join`].
fn input_join(graph: &Graph) -> Option<usize> {
    graph.ops.iter().position(|op| {
        matches!(*op, Op::Concat { a, b, .. }
            if graph.tensor(a).role == Role::Input && graph.tensor(b).role == Role::Condition)
    })
}

/// See [`Plan::input_corruption`].
fn input_corruption(graph: &Graph) -> Option<usize> {
    if input_join(graph).is_some() {
        return None;
    }
    graph
        .ops
        .iter()
        .position(|op| matches!(*op, Op::Corrupt { x, .. } if graph.tensor(x).role == Role::Input))
}

/// What decides whether a reader can read a repeat's source by row group: the loss fusions
/// (a loss fused with its gradient reads its target plainly; one that only adds its rows to
/// totals reads it by group) and the reparameterization backwards done in a dx matmul's
/// store (which read μ | logvar plainly).
struct ReadByGroup<'a> {
    training_fusion: &'a [TrainingFusion],
    dx_reparameterize: &'a [Option<usize>],
}

/// Marks each RepeatRows whose readers can all read its source's row r / k for row r
/// ([`Plan::repeat_source`]), so that the repeated rows are never written: BCE and MSE
/// losses and their gradients, as their target (not a loss the training step fuses with
/// its gradient); the reparameterization and its backward (not one done in a matmul's
/// store), and the log weights, as their μ | logvar. Not an output. An IWAE's data rows and
/// its μ | logvar, repeated for its K samples, are such repeats.
fn foldable_repeats(
    graph: &Graph,
    backward: &[GradOp],
    live_to_end: &[TensorId],
    by_group: &ReadByGroup,
) -> Vec<bool> {
    let in_store: Vec<usize> = by_group
        .dx_reparameterize
        .iter()
        .flatten()
        .copied()
        .collect();
    let reads_by_group = |y: TensorId| {
        let forward_ok = graph
            .ops
            .iter()
            .zip(by_group.training_fusion)
            .all(|(op, &fusion)| {
                !op_io(op).1.contains(&y)
                    || match *op {
                        Op::Loss { a, b, .. } => {
                            let plain = matches!(
                                fusion,
                                TrainingFusion::None | TrainingFusion::RowsToTotals
                            );
                            b == y && a != y && plain
                        }
                        Op::Reparameterize { stats, .. } | Op::LogWeight { stats, .. } => {
                            stats == y
                        }
                        _ => false,
                    }
            });
        let backward_ok = backward.iter().enumerate().all(|(j, g)| {
            !grad_op_io(g).1.contains(&y)
                || match *g {
                    GradOp::Loss { a, b, .. } => b == y && a != y,
                    GradOp::Reparameterize { stats, dz, .. } => {
                        stats == y && dz != y && !in_store.contains(&j)
                    }
                    _ => false,
                }
        });
        let read = graph.ops.iter().any(|op| op_io(op).1.contains(&y));
        read && forward_ok && backward_ok && !live_to_end.contains(&y)
    };
    graph
        .ops
        .iter()
        .map(|op| matches!(*op, Op::RepeatRows { y, .. } if reads_by_group(y)))
        .collect()
}

/// The losses a training step on the GPU can move into forward dispatches (see
/// TrainingFusion): a BCE or MSE loss whose rows nothing else reads and whose gradient is
/// written (not added) by one backward op, in its linear layer's matmul store when only the
/// loss reads that layer's output, else in its own dispatch; a penalty or an IWAE bound whose
/// rows nothing else reads, with its gradient (written), in its own dispatch; a BCE or MSE
/// loss whose rows other ops read, adding them to running totals. (The VAE heads come after
/// the repeats are folded: [`add_vae_heads`].)
fn loss_fusions(graph: &Graph, backward: &[GradOp]) -> Vec<TrainingFusion> {
    let mut fusion = vec![TrainingFusion::None; graph.ops.len()];
    if backward.is_empty() {
        return fusion;
    }
    let readers = reader_counts(graph, backward);
    for (i, op) in graph.ops.iter().enumerate() {
        match *op {
            Op::Loss {
                kind,
                per_row,
                a,
                b,
                ..
            } if readers[per_row.0] == 0 => {
                let grad = backward.iter().position(|g| {
                    matches!(*g, GradOp::Loss { kind: k, a: ga, b: gb, row_grad: None, .. }
                        if k == kind && ga == a && gb == b)
                });
                let Some(grad) = grad else {
                    fusion[i] = TrainingFusion::RowsToTotals;
                    continue;
                };
                // The output of a linear layer that only the loss and its gradient read: the
                // layer's matmul can apply the loss as it stores.
                let linear = graph
                    .ops
                    .iter()
                    .position(|o| matches!(*o, Op::Linear { y, .. } if y == a));
                match linear {
                    Some(l) if readers[a.0] == 2 && fusion[l] == TrainingFusion::None => {
                        fusion[l] = TrainingFusion::LinearWithLoss { loss: i, grad };
                        fusion[i] = TrainingFusion::InLinear;
                    }
                    _ => fusion[i] = TrainingFusion::LossWithGrad { grad },
                }
            }
            Op::Loss { .. } => fusion[i] = TrainingFusion::RowsToTotals,
            // A penalty whose gradient it writes first (the sparse autoencoder's code also
            // receives the decoder's, added later).
            Op::Penalty { per_row, x, .. } if readers[per_row.0] == 0 => {
                let grad = backward
                    .iter()
                    .position(|g| matches!(g, GradOp::Penalty(p) if p.x == x && !p.accumulate));
                if let Some(grad) = grad {
                    fusion[i] = TrainingFusion::LossWithGrad { grad };
                }
            }
            // The IWAE's bound, whose gradient only it writes.
            Op::NegLogMeanExp { per_row, logw, .. } if readers[per_row.0] == 0 => {
                let grad = backward
                    .iter()
                    .position(|g| matches!(*g, GradOp::NegLogMeanExp { logw: l, .. } if l == logw));
                if let Some(grad) = grad {
                    fusion[i] = TrainingFusion::LossWithGrad { grad };
                }
            }
            _ => {}
        }
    }
    fusion
}

/// The Concat z | label that alone reads the z of reparameterization `head`, z being the
/// concat's first part and the label the graph's condition (a conditional VAE's decoder
/// input): the head can write z | label in its place.
fn label_join(graph: &Graph, readers: &[usize], head: usize) -> Option<usize> {
    let Op::Reparameterize { z, .. } = graph.ops[head] else {
        return None;
    };
    graph.ops.iter().position(|op| {
        matches!(*op, Op::Concat { a, b, .. }
            if a == z && readers[z.0] == 1 && graph.tensor(b).role == Role::Condition)
    })
}

/// Adds the VAE heads to a training step's fusions (see TrainingFusion::VaeHead): a KL loss
/// whose rows nothing else reads, of a reparameterization's μ | logvar stats, or of the
/// stats whose repeat (folded, `repeats`) it reparameterizes (an IWAE's K samples a row);
/// with its gradient where it has one (written first, by the KL's own backward op).
fn add_vae_heads(
    graph: &Graph,
    backward: &[GradOp],
    repeats: &[bool],
    fusion: &mut [TrainingFusion],
) {
    if backward.is_empty() {
        return;
    }
    let readers = reader_counts(graph, backward);
    // Each stats tensor a reparameterization reads in effect: its own, or a folded repeat's
    // source.
    let source = |t: TensorId| {
        graph
            .ops
            .iter()
            .zip(repeats)
            .find_map(|(op, &folded)| match *op {
                Op::RepeatRows { y, x, .. } if folded && y == t => Some(x),
                _ => None,
            })
            .unwrap_or(t)
    };
    for (i, op) in graph.ops.iter().enumerate() {
        let Op::Kl { per_row, stats, .. } = *op else {
            continue;
        };
        if readers[per_row.0] != 0 {
            continue;
        }
        let head = graph
            .ops
            .iter()
            .position(|o| matches!(*o, Op::Reparameterize { stats: s, .. } if source(s) == stats));
        let grad = backward
            .iter()
            .position(|g| matches!(*g, GradOp::Kl { stats: s, .. } if s == stats));
        let adds = grad.is_some_and(|g| {
            matches!(
                backward[g],
                GradOp::Kl {
                    accumulate: true,
                    ..
                }
            )
        });
        if let (Some(head), false) = (head, adds) {
            if fusion[head] == TrainingFusion::None {
                let join = label_join(graph, &readers, head);
                fusion[head] = TrainingFusion::VaeHead { kl: i, grad, join };
                fusion[i] = TrainingFusion::InHead;
                if let Some(c) = join {
                    fusion[c] = TrainingFusion::InHead;
                }
            }
        }
    }
}

/// Moves each L1 penalty done with its gradient (TrainingFusion::LossWithGrad) into the store
/// of the dx matmul that adds to that gradient (TrainingFusion::InDx; returns
/// [`Plan::dx_penalty`]), when the two are its only writers (the penalty first) and the
/// matmul's fused activation backward, if any, is that of the penalty's code.
fn add_dx_penalties(
    graph: &Graph,
    backward: &[GradOp],
    dx_activation: &[Option<usize>],
    fusion: &mut [TrainingFusion],
) -> Vec<Option<usize>> {
    let mut dx_penalty = vec![None; backward.len()];
    for (i, op) in graph.ops.iter().enumerate() {
        let (
            Op::Penalty {
                penalty: Penalty::L1,
                x: code,
                ..
            },
            TrainingFusion::LossWithGrad { grad },
        ) = (op, fusion[i])
        else {
            continue;
        };
        let GradOp::Penalty(PenaltyGrad {
            dx,
            accumulate: false,
            ..
        }) = backward[grad]
        else {
            continue;
        };
        let writers: Vec<usize> = (0..backward.len())
            .filter(|&j| grad_op_io(&backward[j]).0.contains(&dx))
            .collect();
        let [first, j] = writers[..] else {
            continue;
        };
        let layer_adds = matches!(
            backward[j],
            GradOp::Linear { dx: Some(d), accumulate_dx: true, .. } if d == dx
        );
        let activation_of_code = match dx_activation[j].map(|a| &backward[a]) {
            Some(&GradOp::Activation { y, .. }) => y == *code,
            _ => true,
        };
        if first == grad && layer_adds && activation_of_code {
            dx_penalty[j] = Some(i);
            fusion[i] = TrainingFusion::InDx { grad };
        }
    }
    dx_penalty
}

/// Moves each IWAE bound done with its gradient (TrainingFusion::LossWithGrad) into the
/// dispatch of the log weights it reads (TrainingFusion::IwaeBound), when nothing else reads
/// those log weights, their backward writes (does not add to) dz and dμ | dlogvar, and the
/// groups are small (up to ALONE_MAX_K: each thread of the dispatch sums a group's exps);
/// and with it the reconstruction loss the log weights read ([`iwae_recon_loss`]).
fn add_iwae_bounds(graph: &Graph, backward: &[GradOp], fusion: &mut [TrainingFusion]) {
    let readers = reader_counts(graph, backward);
    for (j, op) in graph.ops.iter().enumerate() {
        let (&Op::NegLogMeanExp { logw, k, .. }, TrainingFusion::LossWithGrad { grad: bound_grad }) =
            (op, fusion[j])
        else {
            continue;
        };
        let GradOp::NegLogMeanExp { dlogw, .. } = backward[bound_grad] else {
            continue;
        };
        // The bound and its gradient read the log weights.
        if k > ALONE_MAX_K || readers[logw.0] != 2 {
            continue;
        }
        let weights = graph
            .ops
            .iter()
            .position(|o| matches!(*o, Op::LogWeight { logw: l, .. } if l == logw));
        // Their backward, which writes dz and dμ | dlogvar first.
        let grad = backward.iter().position(|g| {
            matches!(*g, GradOp::LogWeight {
                dlogw: d,
                accumulate_z: false,
                accumulate_stats: false,
                ..
            } if d == dlogw)
        });
        if let (Some(i), Some(grad)) = (weights, grad) {
            if fusion[i] == TrainingFusion::None {
                let Op::LogWeight { recon, .. } = graph.ops[i] else {
                    continue;
                };
                let recon = iwae_recon_loss(graph, backward, &readers, fusion, (recon, dlogw));
                if let Some((loss, _)) = recon {
                    fusion[loss] = TrainingFusion::InBound;
                }
                fusion[i] = TrainingFusion::IwaeBound {
                    bound: j,
                    bound_grad,
                    grad,
                    recon,
                };
                fusion[j] = TrainingFusion::InBound;
            }
        }
    }
}

/// The BCE or MSE loss (forward op, backward op) whose rows `recon` only the log weights
/// read, added to running totals (TrainingFusion::RowsToTotals), and whose gradient takes
/// those rows' share of `dlogw`: the IWAE's reconstruction, which the bound's dispatch can
/// do too.
fn iwae_recon_loss(
    graph: &Graph,
    backward: &[GradOp],
    readers: &[usize],
    fusion: &[TrainingFusion],
    (recon, dlogw): (TensorId, TensorId),
) -> Option<(usize, usize)> {
    if readers[recon.0] != 1 {
        return None;
    }
    let loss = graph.ops.iter().position(|op| {
        matches!(*op, Op::Loss { kind: LossKind::Bce | LossKind::Mse, per_row, .. } if per_row == recon)
    })?;
    let Op::Loss { kind, a, b, .. } = graph.ops[loss] else {
        return None;
    };
    let grad = backward.iter().position(|g| {
        matches!(*g, GradOp::Loss { kind: k, a: ga, b: gb, row_grad: Some((d, _)), .. }
            if k == kind && ga == a && gb == b && d == dlogw)
    })?;
    (fusion[loss] == TrainingFusion::RowsToTotals).then_some((loss, grad))
}

/// For each linear layer's backward whose dx only an activation's backward reads: that
/// activation backward, which the dx matmul then applies as it stores. The layer either
/// writes dx alone, or is the one layer that adds to what another wrote (the matmul then
/// adds that as its addend before applying f'); a dx that three or more layers feed stays
/// apart.
fn dx_activations(graph: &Graph, backward: &[GradOp]) -> Vec<Option<usize>> {
    let readers = reader_counts(graph, backward);
    backward
        .iter()
        .map(|op| match *op {
            // The activation reads dx, and so does this layer when it adds to it.
            GradOp::Linear {
                dx: Some(dx),
                accumulate_dx,
                ..
            } if readers[dx.0] == 1 + usize::from(accumulate_dx) => backward
                .iter()
                .position(|g| matches!(*g, GradOp::Activation { dy, .. } if dy == dx)),
            _ => None,
        })
        .collect()
}

/// For each linear layer's backward whose dx (written, not added to) only a
/// reparameterization's backward reads, as its dz, or only a folded slice that cuts that dz
/// from it (`folded_slices`: a conditional VAE's d(z | label)): that backward, which the dx
/// matmul then does as it stores, from the first columns of its product.
fn dx_reparameterizations(
    graph: &Graph,
    backward: &[GradOp],
    folded_slices: &[bool],
) -> Vec<Option<usize>> {
    let readers = reader_counts(graph, backward);
    let reparameterizing = |dx: TensorId| {
        backward
            .iter()
            .position(|g| matches!(*g, GradOp::Reparameterize { dz, .. } if dz == dx))
    };
    // dx, or the dz a folded slice cuts from it (a folded slice's reader is the next op).
    let dz_of = |dx: TensorId| {
        backward
            .iter()
            .zip(folded_slices)
            .find_map(|(g, &folded)| match *g {
                GradOp::Slice { da, dy, .. } if folded && dy == dx => Some(da),
                _ => None,
            })
            .unwrap_or(dx)
    };
    backward
        .iter()
        .map(|op| match *op {
            GradOp::Linear {
                dx: Some(dx),
                accumulate_dx: false,
                ..
            } if readers[dx.0] == 1 => reparameterizing(dz_of(dx)),
            _ => None,
        })
        .collect()
}

/// The graph's loss terms: its losses, penalties and importance-weighted bounds.
fn loss_terms(graph: &Graph) -> Vec<LossTerm> {
    graph
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match *op {
            Op::Loss {
                kind,
                per_row,
                weight,
                ..
            } => Some(LossTerm {
                kind,
                per_row,
                weight,
                op: i,
            }),
            Op::Kl {
                per_row, weight, ..
            } => Some(LossTerm {
                kind: LossKind::Kl,
                per_row,
                weight,
                op: i,
            }),
            Op::Penalty {
                penalty,
                per_row,
                weight,
                ..
            } => Some(LossTerm {
                kind: penalty.kind(),
                per_row,
                weight,
                op: i,
            }),
            Op::NegLogMeanExp {
                per_row, weight, ..
            } => Some(LossTerm {
                kind: LossKind::Iw,
                per_row,
                weight,
                op: i,
            }),
            _ => None,
        })
        .collect()
}

/// The backward op each backward op's dispatch also does, if any: a linear layer's dx matmul
/// an activation's backward or the reparameterization's in its store; a reparameterization's
/// backward the sum over its samples' groups.
fn dx_stores(
    dx_activation: &[Option<usize>],
    dx_reparameterize: &[Option<usize>],
    reparameterize_group_sum: &[Option<usize>],
) -> Vec<Option<usize>> {
    dx_activation
        .iter()
        .zip(dx_reparameterize)
        .zip(reparameterize_group_sum)
        .map(|((a, r), g)| a.or(*r).or(*g))
        .collect()
}

/// See [`Plan::folded_slices`]: a Slice at offset 0 that writes (not adds to) its gradient,
/// which only the next op, a reparameterization's backward, reads (as its dz).
fn foldable_slices(graph: &Graph, backward: &[GradOp], live_to_end: &[TensorId]) -> Vec<bool> {
    let readers = reader_counts(graph, backward);
    backward
        .iter()
        .enumerate()
        .map(|(j, op)| match (op, backward.get(j + 1)) {
            (
                &GradOp::Slice {
                    da,
                    accumulate: false,
                    offset: 0,
                    ..
                },
                Some(&GradOp::Reparameterize { dz, .. }),
            ) => dz == da && readers[da.0] == 1 && !live_to_end.contains(&da),
            _ => false,
        })
        .collect()
}

/// See [`Plan::reparameterize_group_sum`]: a reparameterization's backward followed by the
/// sum of its gradient's groups, that gradient read by nothing else (but the backward
/// itself, where it adds to what other ops wrote).
fn reparameterize_group_sums(
    graph: &Graph,
    backward: &[GradOp],
    live_to_end: &[TensorId],
) -> Vec<Option<usize>> {
    let readers = reader_counts(graph, backward);
    backward
        .iter()
        .enumerate()
        .map(|(j, op)| match (op, backward.get(j + 1)) {
            (
                &GradOp::Reparameterize {
                    dstats, accumulate, ..
                },
                Some(&GradOp::SumRowGroups { dy, .. }),
            ) if dy == dstats
                && readers[dstats.0] == 1 + usize::from(accumulate)
                && !live_to_end.contains(&dstats) =>
            {
                Some(j + 1)
            }
            _ => None,
        })
        .collect()
}

/// Gives each value and value-gradient tensor a pooled buffer (except those `unstored`),
/// reusing a buffer of the same size whose previous tenant's last use comes strictly before
/// this tenant's first write.
/// The work the plan moved from one op's dispatch into another's, which changes when tensors
/// are written and read: the Plan fields of the same names, and the backward op each
/// backward op's dispatch also does ([`dx_stores`]).
struct MovedWork<'a> {
    fused: &'a [bool],
    training_fusion: &'a [TrainingFusion],
    dx_store: &'a [Option<usize>],
    folded_slices: &'a [bool],
}

fn assign_pool(
    graph: &Graph,
    backward: &[GradOp],
    live_to_end: &[TensorId],
    moved: &MovedWork,
    (unstored, location): (&[bool], &mut [Location]),
) -> Vec<usize> {
    let MovedWork {
        fused,
        training_fusion,
        dx_store,
        folded_slices,
    } = *moved;
    let steps = graph.ops.len() + backward.len();
    let mut first = vec![usize::MAX; graph.tensors.len()];
    let mut last = vec![0; graph.tensors.len()];
    let io = graph
        .ops
        .iter()
        .map(op_io)
        .chain(backward.iter().map(grad_op_io));
    for (step, (outputs, inputs)) in io.enumerate() {
        for t in outputs.iter().chain(&inputs) {
            first[t.0] = first[t.0].min(step);
            last[t.0] = last[t.0].max(step);
        }
    }
    // The loss rows are summed after the step's last op; outputs are read after it.
    for t in live_to_end {
        last[t.0] = steps;
    }
    // A fused activation's output is written by the linear layer's dispatch, one op early.
    // A folded RepeatRows' source is read by the losses in place of its output.
    // A joined input (x | label) or a corrupted one is written by the gather, before the
    // first op.
    for (i, op) in graph.ops.iter().enumerate() {
        match (fused[i], op) {
            (true, Op::Activation { y, .. }) => first[y.0] = first[y.0].min(i - 1),
            (true, Op::Concat { y, .. } | Op::Corrupt { y, .. }) => first[y.0] = 0,
            (true, Op::RepeatRows { y, x, .. }) => last[x.0] = last[x.0].max(last[y.0]),
            _ => {}
        }
    }
    // A gradient written in a forward dispatch is live from there; so is a z | label the
    // VAE head writes.
    for (i, fusion) in training_fusion.iter().enumerate() {
        for grad in fusion.gradients() {
            for t in grad_op_io(&backward[grad]).0 {
                first[t.0] = first[t.0].min(i);
            }
        }
        if let TrainingFusion::VaeHead { join: Some(c), .. } = *fusion {
            for t in op_io(&graph.ops[c]).0 {
                first[t.0] = first[t.0].min(i);
            }
        }
    }
    let forward_ops = graph.ops.len();
    // A folded slice's gradient is read in its place by the next op.
    for (j, op) in backward.iter().enumerate() {
        if let (true, &GradOp::Slice { dy, .. }) = (folded_slices[j], op) {
            last[dy.0] = last[dy.0].max(forward_ops + j + 1);
        }
    }
    // A backward op done by a linear layer's dx matmul (an activation's, the
    // reparameterization's) writes its outputs there.
    for (j, op) in dx_store.iter().enumerate() {
        if let Some(a) = *op {
            for t in grad_op_io(&backward[a]).0 {
                first[t.0] = first[t.0].min(forward_ops + j);
            }
        }
    }
    let mut pooled: Vec<usize> = (0..graph.tensors.len())
        .filter(|&t| matches!(graph.tensors[t].role, Role::Value | Role::Gradient { .. }) && location[t] == Location::Input && first[t] != usize::MAX && !unstored[t])
        .filter(|&t| !matches!(graph.tensors[t].role, Role::Gradient { of } if matches!(location[of.0], Location::Params(_))))
        .collect();
    pooled.sort_by_key(|&t| first[t]);
    let mut sizes: Vec<usize> = Vec::new();
    let mut busy_until: Vec<usize> = Vec::new();
    for t in pooled {
        let len = graph.tensors[t].len();
        let slot = (0..sizes.len()).find(|&s| sizes[s] == len && busy_until[s] < first[t]);
        let slot = slot.unwrap_or_else(|| {
            sizes.push(len);
            busy_until.push(0);
            sizes.len() - 1
        });
        busy_until[slot] = last[t];
        location[t] = Location::Pool(slot);
    }
    sizes
}

/// FLOPs of a forward op's matrix multiply (2 per multiply-add): a linear layer's; 0 for
/// the other ops.
pub fn op_matmul_flops(graph: &Graph, op: &Op) -> f64 {
    match *op {
        Op::Linear { y, x, .. } => {
            let (x, y) = (graph.tensor(x), graph.tensor(y));
            2.0 * (x.rows * x.cols * y.cols) as f64
        }
        _ => 0.0,
    }
}

/// FLOPs of a backward op's matrix multiplies: a linear layer's weight gradient and, where
/// it has one, its input gradient; 0 for the other ops.
pub fn grad_op_matmul_flops(graph: &Graph, op: &GradOp) -> f64 {
    match *op {
        GradOp::Linear { dx, dy, x, .. } => {
            let (x, dy) = (graph.tensor(x), graph.tensor(dy));
            let products = if dx.is_some() { 2.0 } else { 1.0 };
            products * 2.0 * (x.rows * x.cols * dy.cols) as f64
        }
        _ => 0.0,
    }
}
