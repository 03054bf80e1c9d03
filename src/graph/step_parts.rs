//! A training step's parts on the CPU executor, in the order it runs them: the gather, each
//! forward op, the loss sums, each backward op, Adam. Their names and multiply FLOPs, and
//! the clock that times each (`latent bench --cpu --breakdown`, CpuExecutor::step_timed).

use std::time::Instant;

use crate::graph::autodiff::{GradOp, PenaltyGrad};
use crate::graph::plan::{grad_op_matmul_flops, op_matmul_flops, Plan};
use crate::graph::{Graph, Op, TensorId};

/// One part of a CPU training step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepPart {
    /// What runs and the tensor it writes, e.g. "linear encoder.0" or "adam".
    pub label: String,
    /// The multiplies' FLOPs (2 per multiply-add); 0 for parts without a matmul.
    pub flops: f64,
}

/// How many parts a step of `plan` has: [`step_parts`]'s length, without naming them.
pub fn step_part_count(plan: &Plan) -> usize {
    plan.graph.ops.len() + plan.backward.len() + 3
}

/// The parts of a step of `plan`, in the order CpuExecutor::step runs them.
pub fn step_parts(plan: &Plan) -> Vec<StepPart> {
    let graph = &plan.graph;
    let mut parts = vec![part("gather", 0.0)];
    parts.extend(graph.ops.iter().map(|op| forward_part(graph, op)));
    parts.push(part("loss sums", 0.0));
    parts.extend(plan.backward.iter().map(|op| backward_part(graph, op)));
    parts.push(part("adam", 0.0));
    parts
}

fn part(label: &str, flops: f64) -> StepPart {
    StepPart {
        label: label.into(),
        flops,
    }
}

/// "what tensor" with the tensor's name.
fn named(graph: &Graph, what: &str, t: TensorId) -> String {
    format!("{what} {}", graph.tensor(t).name)
}

fn forward_part(graph: &Graph, op: &Op) -> StepPart {
    let label = match *op {
        Op::Linear { y, .. } => named(graph, "linear", y),
        Op::Activation { kind, y, .. } => named(graph, kind.name(), y),
        Op::Reparameterize { z, .. } => named(graph, "reparameterize", z),
        Op::Concat { y, .. } => named(graph, "concat", y),
        Op::LogWeight { logw, .. } => named(graph, "log weight", logw),
        Op::NegLogMeanExp { per_row, .. } => named(graph, "-log mean exp", per_row),
        Op::RepeatRows { y, .. } => named(graph, "repeat rows", y),
        Op::Corrupt { y, .. } => named(graph, "corrupt", y),
        Op::Penalty { per_row, .. } => named(graph, "penalty", per_row),
        Op::Kl { per_row, .. } => named(graph, "kl", per_row),
        Op::Loss { kind, per_row, .. } => named(graph, kind.name(), per_row),
    };
    StepPart {
        label,
        flops: op_matmul_flops(graph, op),
    }
}

fn backward_part(graph: &Graph, op: &GradOp) -> StepPart {
    let label = match *op {
        GradOp::Linear { dweight, .. } => named(graph, "linear backward", dweight),
        GradOp::Activation { kind, dx, .. } => {
            named(graph, &format!("{} backward", kind.name()), dx)
        }
        GradOp::Reparameterize { dstats, .. } => named(graph, "reparameterize backward", dstats),
        GradOp::Loss { kind, da, .. } => named(graph, &format!("{} backward", kind.name()), da),
        GradOp::LogWeight { dz, .. } => named(graph, "log weight backward", dz),
        GradOp::NegLogMeanExp { dlogw, .. } => named(graph, "-log mean exp backward", dlogw),
        GradOp::Penalty(ref penalty) => penalty_label(graph, penalty),
        GradOp::Slice { da, .. } => named(graph, "slice backward", da),
        GradOp::SumRowGroups { dx, .. } => named(graph, "sum row groups", dx),
        GradOp::Kl { dstats, .. } => named(graph, "kl backward", dstats),
    };
    StepPart {
        label,
        flops: grad_op_matmul_flops(graph, op),
    }
}

fn penalty_label(graph: &Graph, penalty: &PenaltyGrad) -> String {
    let what = format!("{} backward", penalty.penalty.kind().name());
    named(graph, &what, penalty.dx)
}

/// Adds each part's seconds to `seconds`, where given: `lap` ends the current part and
/// starts the next. Without `seconds` it reads no clock.
pub(crate) struct PartClock<'s> {
    /// The slots, and when the current part started.
    timing: Option<(&'s mut [f64], Instant)>,
    part: usize,
}

impl<'s> PartClock<'s> {
    pub fn new(seconds: Option<&'s mut [f64]>) -> Self {
        PartClock {
            timing: seconds.map(|seconds| (seconds, Instant::now())),
            part: 0,
        }
    }

    /// Ends the current part: its time is added to its slot (slots past the end are
    /// ignored: the caller checked the count).
    pub fn lap(&mut self) {
        if let Some((seconds, started)) = &mut self.timing {
            let now = Instant::now();
            if let Some(slot) = seconds.get_mut(self.part) {
                *slot += (now - *started).as_secs_f64();
            }
            *started = now;
        }
        self.part += 1;
    }
}
