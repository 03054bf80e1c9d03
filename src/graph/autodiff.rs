//! Reverse-mode autodiff: walks the forward ops backwards and emits, for each, the ops that
//! carry the gradient of the training loss to its inputs. A tensor that feeds several ops
//! gets its gradient written by the first backward op and added to by the others; only ops
//! whose kernels can accumulate (matmul, KL, reparameterization) may add.

use std::collections::{HashMap, HashSet};

use crate::error::{shape_error, Result};
use crate::graph::{Graph, LossKind, Op, Penalty, Role, TensorId};
use crate::kernels::activation::Activation;

/// A backward op. `scale` is dL/dΣ per-row loss (the loss term's weight).
#[derive(Clone, Debug)]
pub enum GradOp {
    /// dx (+)= dy·weight, dweight = dyᵀ·x, dbias = Σ_rows dy.
    Linear {
        dx: Option<TensorId>,
        accumulate_dx: bool,
        dweight: TensorId,
        dbias: TensorId,
        dy: TensorId,
        x: TensorId,
        weight: TensorId,
    },
    /// dx = dy · f'(x), from the saved output y.
    Activation {
        kind: Activation,
        dx: TensorId,
        y: TensorId,
        dy: TensorId,
    },
    /// dstats (+)= [dz | dz·ε·½e^(½·logvar)], stats = μ | logvar.
    Reparameterize {
        dstats: TensorId,
        accumulate: bool,
        eps: TensorId,
        stats: TensorId,
        dz: TensorId,
    },
    /// da = (scale + factor · row_grad\[r\]) · ∂loss\[r\]/∂a for MSE (a = x) and BCE
    /// (a = logits), b the target; `row_grad` = (tensor, factor) when the per-row loss also
    /// feeds another op (IWAE's log weights).
    Loss {
        kind: LossKind,
        da: TensorId,
        a: TensorId,
        b: TensorId,
        scale: f32,
        row_grad: Option<(TensorId, f32)>,
    },
    /// dz (+)= −dlogw·z, dstats (+)= [0 | ½·dlogw]; the reconstruction's share goes to its
    /// Loss.
    LogWeight {
        dz: TensorId,
        dstats: TensorId,
        accumulate_z: bool,
        accumulate_stats: bool,
        dlogw: TensorId,
        z: TensorId,
    },
    /// dlogw = −scale · k · softmax(logw) per group of k.
    NegLogMeanExp {
        dlogw: TensorId,
        logw: TensorId,
        k: usize,
        scale: f32,
    },
    Penalty(PenaltyGrad),
    /// da (+)= dy\[:, offset..offset + cols(da)\]: one side of a concat.
    Slice {
        da: TensorId,
        accumulate: bool,
        dy: TensorId,
        offset: usize,
    },
    /// dx (+)= Σ of each group of k rows of dy: a RepeatRows' backward.
    SumRowGroups {
        dx: TensorId,
        accumulate: bool,
        dy: TensorId,
        k: usize,
    },
    /// dstats (+)= [scale·μ | scale·½(e^logvar − 1)], stats = μ | logvar.
    Kl {
        dstats: TensorId,
        accumulate: bool,
        stats: TensorId,
        scale: f32,
    },
}

struct Differentiator<'a> {
    graph: &'a mut Graph,
    requires_grad: Vec<bool>,
    grad: HashMap<TensorId, TensorId>,
    written: HashSet<TensorId>,
    /// Per-row losses that feed log weights: (the log weights' gradient, factor).
    row_grads: HashMap<TensorId, (TensorId, f32)>,
}

impl Differentiator<'_> {
    /// The gradient tensor of `t`, created on first use.
    fn grad_of(&mut self, t: TensorId) -> TensorId {
        if let Some(&g) = self.grad.get(&t) {
            return g;
        }
        let (name, rows, cols) = {
            let tensor = self.graph.tensor(t);
            (format!("d{}", tensor.name), tensor.rows, tensor.cols)
        };
        let g = self.graph.add(name, rows, cols, Role::Gradient { of: t });
        self.grad.insert(t, g);
        g
    }

    /// The written gradient of an op's output, or None when the output does not reach the loss.
    fn incoming(&self, y: TensorId) -> Option<TensorId> {
        self.grad
            .get(&y)
            .copied()
            .filter(|g| self.written.contains(g))
    }

    /// Marks the gradient of `t` as written; returns whether an earlier op already wrote it
    /// (so this one must add to it).
    fn write(&mut self, t: TensorId) -> (TensorId, bool) {
        let g = self.grad_of(t);
        let accumulate = !self.written.insert(g);
        (g, accumulate)
    }

    /// Like `write`, for backward kernels that can only overwrite.
    fn write_once(&mut self, t: TensorId, op: &'static str) -> Result<TensorId> {
        let (g, accumulate) = self.write(t);
        if accumulate {
            let name = &self.graph.tensor(t).name;
            return Err(shape_error(
                op,
                format!("{name} feeds several ops, and {op}'s backward cannot add to a gradient"),
            ));
        }
        Ok(g)
    }
}

/// dx (+)= scale · ∂penalty/∂x (for KL sparsity, from the saved batch means rho_hat).
#[derive(Clone, Debug)]
pub struct PenaltyGrad {
    pub penalty: Penalty,
    pub dx: TensorId,
    pub accumulate: bool,
    pub x: TensorId,
    pub rho_hat: Option<TensorId>,
    pub scale: f32,
}

/// Adds gradient tensors to `graph` and returns the backward ops, in execution order.
pub fn differentiate(graph: &mut Graph) -> Result<Vec<GradOp>> {
    let mut requires_grad: Vec<bool> = graph
        .tensors
        .iter()
        .map(|t| matches!(t.role, Role::Parameter { .. }))
        .collect();
    for op in &graph.ops {
        let (outputs, inputs) = op_io(op);
        let needs = inputs.iter().any(|t| requires_grad[t.0]);
        for t in outputs {
            requires_grad[t.0] = needs;
        }
    }
    let ops = graph.ops.clone();
    let mut d = Differentiator {
        graph,
        requires_grad,
        grad: HashMap::new(),
        written: HashSet::new(),
        row_grads: HashMap::new(),
    };
    let mut backward = Vec::new();
    for op in ops.iter().rev() {
        match *op {
            Op::Loss {
                kind,
                per_row,
                a,
                b,
                weight,
            } => {
                let row_grad = d.row_grads.get(&per_row).copied();
                // A zero-weight loss that feeds nothing is only reported.
                if weight == 0.0 && row_grad.is_none() {
                    continue;
                }
                if d.requires_grad[b.0] {
                    return Err(shape_error(
                        kind.name(),
                        "the target must be data, not a value computed from parameters",
                    ));
                }
                if !d.requires_grad[a.0] {
                    continue;
                }
                let da = d.write_once(a, kind.name())?;
                backward.push(GradOp::Loss {
                    kind,
                    da,
                    a,
                    b,
                    scale: weight,
                    row_grad,
                });
            }
            Op::Kl {
                per_row,
                stats,
                weight,
            } => {
                if d.row_grads.contains_key(&per_row) {
                    return Err(shape_error("kl", "a KL term cannot feed other ops"));
                }
                if weight == 0.0 || !d.requires_grad[stats.0] {
                    continue;
                }
                let (dstats, accumulate) = d.write(stats);
                backward.push(GradOp::Kl {
                    dstats,
                    accumulate,
                    stats,
                    scale: weight,
                });
            }
            Op::Concat { y, a, b } => {
                let Some(dy) = d.incoming(y) else { continue };
                let offset_b = d.graph.tensor(a).cols;
                for (side, offset) in [(a, 0), (b, offset_b)] {
                    if d.requires_grad[side.0] {
                        let (da, accumulate) = d.write(side);
                        backward.push(GradOp::Slice {
                            da,
                            accumulate,
                            dy,
                            offset,
                        });
                    }
                }
            }
            Op::NegLogMeanExp {
                logw, k, weight, ..
            } => {
                if d.requires_grad[logw.0] {
                    let dlogw = d.write_once(logw, "neg_log_mean_exp")?;
                    backward.push(GradOp::NegLogMeanExp {
                        dlogw,
                        logw,
                        k,
                        scale: weight,
                    });
                }
            }
            Op::LogWeight {
                logw,
                recon,
                z,
                stats,
                recon_weight,
                ..
            } => {
                let Some(dlogw) = d.incoming(logw) else {
                    continue;
                };
                d.row_grads.insert(recon, (dlogw, -recon_weight));
                let (dz, accumulate_z) = d.write(z);
                let (dstats, accumulate_stats) = d.write(stats);
                backward.push(GradOp::LogWeight {
                    dz,
                    dstats,
                    accumulate_z,
                    accumulate_stats,
                    dlogw,
                    z,
                });
            }
            Op::RepeatRows { y, x, k } => {
                let Some(dy) = d.incoming(y) else { continue };
                if d.requires_grad[x.0] {
                    let (dx, accumulate) = d.write(x);
                    backward.push(GradOp::SumRowGroups {
                        dx,
                        accumulate,
                        dy,
                        k,
                    });
                }
            }
            Op::Corrupt { x, .. } => {
                if d.requires_grad[x.0] {
                    return Err(shape_error(
                        "corrupt",
                        "only data can be corrupted, not a value computed from parameters",
                    ));
                }
            }
            Op::Penalty {
                penalty,
                rho_hat,
                x,
                weight,
                ..
            } => {
                if !d.requires_grad[x.0] {
                    continue;
                }
                let (dx, accumulate) = d.write(x);
                backward.push(GradOp::Penalty(PenaltyGrad {
                    penalty,
                    dx,
                    accumulate,
                    x,
                    rho_hat,
                    scale: weight,
                }));
            }
            Op::Reparameterize { z, eps, stats, .. } => {
                let Some(dz) = d.incoming(z) else { continue };
                let (dstats, accumulate) = d.write(stats);
                backward.push(GradOp::Reparameterize {
                    dstats,
                    accumulate,
                    eps,
                    stats,
                    dz,
                });
            }
            Op::Activation { kind, y, x } => {
                let Some(dy) = d.incoming(y) else { continue };
                if d.requires_grad[x.0] {
                    let dx = d.write_once(x, kind.name())?;
                    backward.push(GradOp::Activation { kind, dx, y, dy });
                }
            }
            Op::Linear { y, x, weight, bias } => {
                let Some(dy) = d.incoming(y) else { continue };
                let dweight = d.write_once(weight, "linear")?;
                let dbias = d.write_once(bias, "linear")?;
                let (dx, accumulate_dx) = if d.requires_grad[x.0] {
                    let (g, acc) = d.write(x);
                    (Some(g), acc)
                } else {
                    (None, false)
                };
                backward.push(GradOp::Linear {
                    dx,
                    accumulate_dx,
                    dweight,
                    dbias,
                    dy,
                    x,
                    weight,
                });
            }
        }
    }
    Ok(backward)
}

/// (outputs, inputs) of a forward op.
pub fn op_io(op: &Op) -> (Vec<TensorId>, Vec<TensorId>) {
    match *op {
        Op::Linear { y, x, weight, bias } => (vec![y], vec![x, weight, bias]),
        Op::Activation { y, x, .. } => (vec![y], vec![x]),
        Op::Reparameterize { z, eps, stats, .. } => (vec![z, eps], vec![stats]),
        Op::Kl { per_row, stats, .. } => (vec![per_row], vec![stats]),
        Op::Loss { per_row, a, b, .. } => (vec![per_row], vec![a, b]),
        Op::Corrupt { y, x, .. } => (vec![y], vec![x]),
        Op::RepeatRows { y, x, .. } => (vec![y], vec![x]),
        Op::Concat { y, a, b } => (vec![y], vec![a, b]),
        Op::LogWeight {
            logw,
            recon,
            z,
            eps,
            stats,
            ..
        } => (vec![logw], vec![recon, z, eps, stats]),
        Op::NegLogMeanExp { per_row, logw, .. } => (vec![per_row], vec![logw]),
        Op::Penalty {
            per_row,
            rho_hat,
            x,
            ..
        } => (std::iter::once(per_row).chain(rho_hat).collect(), vec![x]),
    }
}

/// (outputs, inputs) of a backward op; an accumulated output is also an input.
pub fn grad_op_io(op: &GradOp) -> (Vec<TensorId>, Vec<TensorId>) {
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
            let mut outputs = vec![dweight, dbias];
            let mut inputs = vec![dy, x, weight];
            if let Some(dx) = dx {
                outputs.push(dx);
                if accumulate_dx {
                    inputs.push(dx);
                }
            }
            (outputs, inputs)
        }
        GradOp::Activation { dx, y, dy, .. } => (vec![dx], vec![y, dy]),
        GradOp::Reparameterize {
            dstats,
            accumulate,
            eps,
            stats,
            dz,
        } => {
            let mut inputs = vec![eps, stats, dz];
            if accumulate {
                inputs.push(dstats);
            }
            (vec![dstats], inputs)
        }
        GradOp::Loss {
            da, a, b, row_grad, ..
        } => {
            let mut inputs = vec![a, b];
            inputs.extend(row_grad.map(|(g, _)| g));
            (vec![da], inputs)
        }
        GradOp::LogWeight {
            dz,
            dstats,
            accumulate_z,
            accumulate_stats,
            dlogw,
            z,
        } => {
            let mut inputs = vec![dlogw, z];
            if accumulate_z {
                inputs.push(dz);
            }
            if accumulate_stats {
                inputs.push(dstats);
            }
            (vec![dz, dstats], inputs)
        }
        GradOp::NegLogMeanExp { dlogw, logw, .. } => (vec![dlogw], vec![logw]),
        GradOp::Slice {
            da, accumulate, dy, ..
        } => {
            let mut inputs = vec![dy];
            if accumulate {
                inputs.push(da);
            }
            (vec![da], inputs)
        }
        GradOp::SumRowGroups {
            dx, accumulate, dy, ..
        } => {
            let mut inputs = vec![dy];
            if accumulate {
                inputs.push(dx);
            }
            (vec![dx], inputs)
        }
        GradOp::Penalty(ref p) => {
            let mut inputs: Vec<TensorId> = std::iter::once(p.x).chain(p.rho_hat).collect();
            if p.accumulate {
                inputs.push(p.dx);
            }
            (vec![p.dx], inputs)
        }
        GradOp::Kl {
            dstats,
            accumulate,
            stats,
            ..
        } => {
            let mut inputs = vec![stats];
            if accumulate {
                inputs.push(dstats);
            }
            (vec![dstats], inputs)
        }
    }
}
