//! A model as a static graph of ops on (rows, cols) tensors, batch size fixed per graph.
//! [`autodiff`] appends the backward ops, [`plan`] compiles forward + backward into an ordered
//! schedule with buffers assigned up front (parameters in one flat buffer, the rest reused by
//! liveness), and the executors run a plan: [`gpu`] as one submission per training step,
//! [`cpu`] on the CPU twins as the reference.

pub mod autodiff;
pub mod cpu;
pub mod gpu;
pub mod plan;
pub mod step_parts;

use crate::cpu::corrupt::Noise;
use crate::error::{shape_error, Error, Result};
use crate::kernels::activation::Activation;

/// Index of a tensor in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// What a tensor is for.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    /// The batch of data, gathered at the start of each step.
    Input,
    /// The batch's labels one-hot (batch, classes), gathered with the data: the condition
    /// of a conditional model.
    Condition,
    /// A trained parameter, initialised uniformly in ±`init_bound` (PyTorch's nn.Linear rule).
    Parameter { init_bound: f32 },
    /// An op's output: an activation, a loss per row, drawn noise.
    Value,
    /// The gradient of the training loss with respect to `of`.
    Gradient { of: TensorId },
}

/// A (rows, cols) matrix of the graph, row-major.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub role: Role,
    /// A parameter that stacks several parameters one after the other (see
    /// [`Graph::linear_stacked`]): each part, in order, as a checkpoint names and shapes it.
    /// Empty for every other tensor.
    pub parts: Vec<ParamPart>,
}

/// One part of a stacked parameter: `len` consecutive elements that a checkpoint stores as
/// the parameter `name` of PyTorch shape `shape`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamPart {
    pub name: String,
    pub shape: Vec<usize>,
}

impl ParamPart {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a part of no elements (never built: shapes are checked).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Tensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// True for a tensor of no elements (never built: shapes are checked).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The per-row losses an op can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Σ_c (a - b)², b the target.
    Mse,
    /// BCE of logits a against targets b in [0, 1].
    Bce,
    /// KL(N(a, e^b) ‖ N(0, 1)) with a = μ, b = logvar.
    Kl,
    /// Σ_c |x|, the sparse autoencoder's L1 penalty on its code.
    L1,
    /// Σ_c KL(ρ ‖ ρ̂_c) over the batch's mean activations ρ̂, in every row.
    KlSparsity,
    /// −log(1/K Σ_k w_k), the importance-weighted bound as a loss, in each row of a group.
    Iw,
}

impl LossKind {
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "mse",
            LossKind::Bce => "bce",
            LossKind::Kl => "kl",
            LossKind::L1 => "l1",
            LossKind::KlSparsity => "sparsity",
            LossKind::Iw => "iw",
        }
    }
}

/// A penalty on one tensor (a code), added to the training loss like a loss term.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Penalty {
    /// Σ_c |x| per row.
    L1,
    /// Σ_c KL(ρ ‖ ρ̂_c), ρ̂ the batch mean of each column of a code in (0, 1).
    KlSparsity { rho: f32 },
}

impl Penalty {
    /// The loss term it adds.
    pub fn kind(self) -> LossKind {
        match self {
            Penalty::L1 => LossKind::L1,
            Penalty::KlSparsity { .. } => LossKind::KlSparsity,
        }
    }
}

/// A forward op. Tensors are named by role: outputs first.
#[derive(Clone, Debug)]
pub enum Op {
    /// y (batch, out) = x (batch, in) · weightᵀ + bias, weight stored (out, in) like PyTorch.
    Linear {
        y: TensorId,
        x: TensorId,
        weight: TensorId,
        bias: TensorId,
    },
    Activation {
        kind: Activation,
        y: TensorId,
        x: TensorId,
    },
    /// z = μ + e^(½·logvar)·ε, ε drawn from (seed, step, `stream`, element) and saved;
    /// stats (rows, 2·cols(z)) holds μ in its first cols(z) columns and logvar in the rest.
    Reparameterize {
        z: TensorId,
        eps: TensorId,
        stats: TensorId,
        stream: u32,
    },
    /// y (rows, ca + cb) = [a | b]: the conditional VAE joins its one-hot label to the
    /// encoder's input and to z.
    Concat {
        y: TensorId,
        a: TensorId,
        b: TensorId,
    },
    /// logw (batch, 1) = −recon_weight · recon − ½ Σ_c (z² − ε² − logvar): the log importance
    /// weight of each VAE sample, logvar the second half of stats' columns.
    LogWeight {
        logw: TensorId,
        recon: TensorId,
        z: TensorId,
        eps: TensorId,
        stats: TensorId,
        recon_weight: f32,
    },
    /// per_row (batch, 1) = −log(1/k Σ e^logw) over each group of k consecutive rows, in each
    /// row of the group; a loss term adding weight · Σ per_row (IWAE training: 1/batch, the
    /// mean over the batch's data rows).
    NegLogMeanExp {
        per_row: TensorId,
        logw: TensorId,
        k: usize,
        weight: f32,
    },
    /// y (rows·k, cols) = each row of x (rows, cols) k times in consecutive rows.
    RepeatRows { y: TensorId, x: TensorId, k: usize },
    /// y = x corrupted by `noise` drawn from (seed, step, `stream`, element): the denoising
    /// autoencoder's input. x is data, so nothing flows back.
    Corrupt {
        y: TensorId,
        x: TensorId,
        noise: Noise,
        stream: u32,
    },
    /// per_row (batch, 1) = the penalty of each row of x; the training loss adds
    /// weight · Σ per_row. The KL sparsity penalty saves the batch means in `rho_hat` (1, cols).
    Penalty {
        penalty: Penalty,
        per_row: TensorId,
        rho_hat: Option<TensorId>,
        x: TensorId,
        weight: f32,
    },
    /// per_row (batch, 1) = KL(N(μ, e^logvar) ‖ N(0, 1)) of each row of stats (μ | logvar);
    /// the training loss adds weight · Σ per_row.
    Kl {
        per_row: TensorId,
        stats: TensorId,
        weight: f32,
    },
    /// per_row (batch, 1) = the MSE or BCE loss of each row of a against the target b (data);
    /// the training loss adds weight · Σ per_row.
    Loss {
        kind: LossKind,
        per_row: TensorId,
        a: TensorId,
        b: TensorId,
        weight: f32,
    },
}

/// A model's forward graph.
#[derive(Clone, Debug)]
pub struct Graph {
    /// Data rows a step gathers: the rows of the input (an op such as RepeatRows may make
    /// tensors of more rows from them).
    pub batch: usize,
    pub tensors: Vec<Tensor>,
    pub ops: Vec<Op>,
}

impl Graph {
    /// An empty graph for batches of `batch` rows.
    pub fn new(batch: usize) -> Result<Self> {
        if batch == 0 {
            return Err(Error::InvalidArgument(
                "batch size 0: a batch needs at least one row".into(),
            ));
        }
        Ok(Graph {
            batch,
            tensors: Vec::new(),
            ops: Vec::new(),
        })
    }

    pub fn tensor(&self, id: TensorId) -> &Tensor {
        &self.tensors[id.0]
    }

    pub(crate) fn add(
        &mut self,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        role: Role,
    ) -> TensorId {
        self.tensors.push(Tensor {
            name: name.into(),
            rows,
            cols,
            role,
            parts: Vec::new(),
        });
        TensorId(self.tensors.len() - 1)
    }

    /// The data batch, `cols` wide.
    pub fn input(&mut self, name: &str, cols: usize) -> Result<TensorId> {
        if cols == 0 {
            return Err(shape_error("input", format!("{name} has width 0")));
        }
        Ok(self.add(name, self.batch, cols, Role::Input))
    }

    /// A linear layer `name` from x to `out` features: parameters name.weight (out, in) and
    /// name.bias (out), both initialised U(±1/√in) as PyTorch's nn.Linear does.
    pub fn linear(&mut self, name: &str, x: TensorId, out: usize) -> Result<TensorId> {
        self.linear_layer(name, x, out).map(|(y, _, _)| y)
    }

    /// `linear`, returning (y, weight, bias).
    fn linear_layer(
        &mut self,
        name: &str,
        x: TensorId,
        out: usize,
    ) -> Result<(TensorId, TensorId, TensorId)> {
        let input = self.tensor(x).cols;
        if out == 0 {
            return Err(shape_error("linear", format!("{name} has 0 outputs")));
        }
        let init_bound = 1.0 / (input as f32).sqrt();
        let weight = self.add(
            format!("{name}.weight"),
            out,
            input,
            Role::Parameter { init_bound },
        );
        let bias = self.add(
            format!("{name}.bias"),
            1,
            out,
            Role::Parameter { init_bound },
        );
        let rows = self.tensor(x).rows;
        let y = self.add(name, rows, out, Role::Value);
        self.ops.push(Op::Linear { y, x, weight, bias });
        Ok((y, weight, bias))
    }

    /// One linear layer computing several side by side, `parts` = (name, outputs) in
    /// order: y (batch, Σ outputs) = x · [W₁; W₂; …]ᵀ + [b₁ | b₂ | …], one matmul where
    /// the layers apart would take one each. Its weight stacks the parts' weights (Σ out,
    /// in) and its bias their biases; a checkpoint stores each part as the layer it would be
    /// on its own (name.weight (out, in), name.bias (out)), initialised alike (U(±1/√in)).
    pub fn linear_stacked(&mut self, parts: &[(&str, usize)], x: TensorId) -> Result<TensorId> {
        if parts.is_empty() || parts.iter().any(|&(_, out)| out == 0) {
            return Err(shape_error(
                "linear",
                "a stacked layer needs parts of 1 output or more",
            ));
        }
        let names: Vec<&str> = parts.iter().map(|&(name, _)| name).collect();
        let name = names.join("+");
        let (y, weight, bias) =
            self.linear_layer(&name, x, parts.iter().map(|&(_, out)| out).sum())?;
        let input = self.tensor(x).cols;
        self.tensors[weight.0].parts = parts
            .iter()
            .map(|&(name, out)| ParamPart {
                name: format!("{name}.weight"),
                shape: vec![out, input],
            })
            .collect();
        self.tensors[bias.0].parts = parts
            .iter()
            .map(|&(name, out)| ParamPart {
                name: format!("{name}.bias"),
                shape: vec![out],
            })
            .collect();
        Ok(y)
    }

    /// An element-wise activation of x.
    pub fn activation(&mut self, kind: Activation, x: TensorId) -> TensorId {
        let (rows, cols) = (self.tensor(x).rows, self.tensor(x).cols);
        let name = format!("{}.{}", self.tensor(x).name, kind.name());
        let y = self.add(name, rows, cols, Role::Value);
        self.ops.push(Op::Activation { kind, y, x });
        y
    }

    /// z = μ + e^(½·logvar)·ε, the VAE's sample of its latent code, from stats (rows,
    /// 2·latent) = μ | logvar.
    pub fn reparameterize(&mut self, stats: TensorId, stream: u32) -> Result<TensorId> {
        let (rows, cols) = self.gaussian_shape("reparameterize", stats)?;
        let eps = self.add("eps", rows, cols, Role::Value);
        let z = self.add("z", rows, cols, Role::Value);
        self.ops.push(Op::Reparameterize {
            z,
            eps,
            stats,
            stream,
        });
        Ok(z)
    }

    /// A loss term: KL(N(μ, e^logvar) ‖ N(0, 1)) per row of stats = μ | logvar, adding
    /// weight · Σ rows to the training loss.
    pub fn kl(&mut self, stats: TensorId, weight: f32) -> Result<TensorId> {
        let (rows, _) = self.gaussian_shape("kl", stats)?;
        if !weight.is_finite() {
            return Err(Error::InvalidArgument(format!("kl loss weight {weight}")));
        }
        let per_row = self.add(LossKind::Kl.name(), rows, 1, Role::Value);
        self.ops.push(Op::Kl {
            per_row,
            stats,
            weight,
        });
        Ok(per_row)
    }

    /// (rows, latent width) of a Gaussian's stats tensor μ | logvar, which must have an even
    /// number of columns.
    fn gaussian_shape(&self, op: &'static str, stats: TensorId) -> Result<(usize, usize)> {
        let t = self.tensor(stats);
        if !t.cols.is_multiple_of(2) {
            return Err(shape_error(
                op,
                format!(
                    "{} has {} columns: μ | logvar needs an even number",
                    t.name, t.cols
                ),
            ));
        }
        Ok((t.rows, t.cols / 2))
    }

    /// A loss term: per-row losses of (a, b), adding weight · Σ rows to the training loss.
    pub fn loss(
        &mut self,
        kind: LossKind,
        a: TensorId,
        b: TensorId,
        weight: f32,
    ) -> Result<TensorId> {
        if !matches!(kind, LossKind::Mse | LossKind::Bce) {
            return Err(shape_error(
                kind.name(),
                "a loss against a target is MSE or BCE (KL: Graph::kl; penalties: Graph::penalty)",
            ));
        }
        self.check_same_shape(kind.name(), a, b)?;
        if !weight.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "{} loss weight {weight}",
                kind.name()
            )));
        }
        let per_row = self.add(kind.name(), self.tensor(a).rows, 1, Role::Value);
        self.ops.push(Op::Loss {
            kind,
            per_row,
            a,
            b,
            weight,
        });
        Ok(per_row)
    }

    /// The importance-weighted bound of a VAE over groups of `k` consecutive rows (the graph
    /// must repeat each data row k times): the log weight of each sample from its
    /// reconstruction loss per row and its z, ε and logvar (of stats = μ | logvar), then
    /// −log-mean-exp per group as a loss term.
    #[allow(clippy::too_many_arguments)]
    pub fn importance_weighted(
        &mut self,
        recon: TensorId,
        recon_weight: f32,
        z: TensorId,
        eps: TensorId,
        stats: TensorId,
        k: usize,
        weight: f32,
    ) -> Result<TensorId> {
        self.check_same_shape("log_weight", z, eps)?;
        if self.gaussian_shape("log_weight", stats)? != (self.tensor(z).rows, self.tensor(z).cols) {
            return Err(shape_error(
                "log_weight",
                "z and the μ | logvar stats must have the same rows and latent width",
            ));
        }
        let rows = self.tensor(z).rows;
        if k == 0 || !rows.is_multiple_of(k) {
            return Err(shape_error(
                "neg_log_mean_exp",
                format!("groups of {k} in {rows} rows"),
            ));
        }
        let logw = self.add("logw", rows, 1, Role::Value);
        self.ops.push(Op::LogWeight {
            logw,
            recon,
            z,
            eps,
            stats,
            recon_weight,
        });
        let per_row = self.add(LossKind::Iw.name(), rows, 1, Role::Value);
        self.ops.push(Op::NegLogMeanExp {
            per_row,
            logw,
            k,
            weight,
        });
        Ok(per_row)
    }

    /// Each row of x `k` times in consecutive rows (rows·k, cols): an IWAE's μ | logvar for
    /// its K samples of each data row, and its data and labels beside them.
    pub fn repeat_rows(&mut self, x: TensorId, k: usize) -> Result<TensorId> {
        let (rows, cols) = (self.tensor(x).rows, self.tensor(x).cols);
        let repeated = rows
            .checked_mul(k)
            .filter(|_| k > 0)
            .ok_or_else(|| Error::InvalidArgument(format!("{rows} rows repeated {k} times")))?;
        let name = format!("{}.x{k}", self.tensor(x).name);
        let y = self.add(name, repeated, cols, Role::Value);
        self.ops.push(Op::RepeatRows { y, x, k });
        Ok(y)
    }

    /// The batch's one-hot labels, `classes` wide (a conditional model's second input).
    pub fn condition(&mut self, classes: usize) -> Result<TensorId> {
        if classes == 0 {
            return Err(shape_error("condition", "0 classes"));
        }
        Ok(self.add("label", self.batch, classes, Role::Condition))
    }

    /// [a | b], a and b side by side (the same rows).
    pub fn concat(&mut self, a: TensorId, b: TensorId) -> Result<TensorId> {
        let (ta, tb) = (self.tensor(a), self.tensor(b));
        if ta.rows != tb.rows {
            return Err(shape_error(
                "concat",
                format!(
                    "{} has {} rows, {} has {}",
                    ta.name, ta.rows, tb.name, tb.rows
                ),
            ));
        }
        let (rows, cols) = (ta.rows, ta.cols + tb.cols);
        let name = format!("{}+{}", ta.name, tb.name);
        let y = self.add(name, rows, cols, Role::Value);
        self.ops.push(Op::Concat { y, a, b });
        Ok(y)
    }

    /// x corrupted by `noise` (Philox stream `stream`), for a denoising autoencoder.
    pub fn corrupt(&mut self, x: TensorId, noise: Noise, stream: u32) -> Result<TensorId> {
        noise.check()?;
        let (rows, cols) = (self.tensor(x).rows, self.tensor(x).cols);
        let name = format!("{}.noisy", self.tensor(x).name);
        let y = self.add(name, rows, cols, Role::Value);
        self.ops.push(Op::Corrupt {
            y,
            x,
            noise,
            stream,
        });
        Ok(y)
    }

    /// A penalty term on x adding weight · Σ per-row penalty to the training loss.
    pub fn penalty(&mut self, penalty: Penalty, x: TensorId, weight: f32) -> Result<TensorId> {
        if !weight.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "{} penalty weight {weight}",
                penalty.kind().name()
            )));
        }
        if let Penalty::KlSparsity { rho } = penalty {
            crate::cpu::kl_sparsity::check_rho(rho)?;
        }
        let (rows, cols) = (self.tensor(x).rows, self.tensor(x).cols);
        let per_row = self.add(penalty.kind().name(), rows, 1, Role::Value);
        let rho_hat = match penalty {
            Penalty::KlSparsity { .. } => Some(self.add("rho_hat", 1, cols, Role::Value)),
            Penalty::L1 => None,
        };
        self.ops.push(Op::Penalty {
            penalty,
            per_row,
            rho_hat,
            x,
            weight,
        });
        Ok(per_row)
    }

    fn check_same_shape(&self, op: &'static str, a: TensorId, b: TensorId) -> Result<()> {
        let (ta, tb) = (self.tensor(a), self.tensor(b));
        if (ta.rows, ta.cols) != (tb.rows, tb.cols) {
            return Err(shape_error(
                op,
                format!(
                    "{} is {}x{} but {} is {}x{}",
                    ta.name, ta.rows, ta.cols, tb.name, tb.rows, tb.cols
                ),
            ));
        }
        Ok(())
    }

    /// Rows of `t` per data row of the batch: K for a tensor of an IWAE's K samples, 1 for
    /// the batch's own rows (a tensor of fewer rows, such as KL sparsity's means, gives 0).
    pub fn rows_per_data_row(&self, t: TensorId) -> usize {
        self.tensor(t).rows / self.batch
    }

    /// Checks that `t` has one row per data row, as an output read per data row must.
    pub fn check_one_row_per_data_row(&self, t: TensorId) -> Result<()> {
        let tensor = self.tensor(t);
        if tensor.rows != self.batch {
            return Err(shape_error(
                "output",
                format!(
                    "{} has {} rows for a batch of {}: outputs are read one row per data row",
                    tensor.name, tensor.rows, self.batch
                ),
            ));
        }
        Ok(())
    }

    /// The parameters in creation order.
    pub fn parameters(&self) -> Vec<TensorId> {
        (0..self.tensors.len())
            .map(TensorId)
            .filter(|&t| matches!(self.tensor(t).role, Role::Parameter { .. }))
            .collect()
    }
}

/// A data set's samples as the executors take them: row-major (rows, width), bytes (read as
/// byte/255) or floats already in [0, 1].
#[derive(Clone, Copy, Debug)]
pub enum Samples<'a> {
    U8(&'a [u8]),
    F32(&'a [f32]),
}

impl Samples<'_> {
    /// The values in [0, 1] as the executors read them (bytes / 255).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Samples::U8(bytes) => bytes.iter().map(|&b| crate::data::byte_value(b)).collect(),
            Samples::F32(values) => values.to_vec(),
        }
    }
}

/// The training data an executor gathers its batches from.
#[derive(Clone, Copy, Debug)]
pub struct TrainData<'a> {
    pub samples: Samples<'a>,
    pub rows: usize,
    pub width: usize,
    /// One class label per row: needed by conditional models, ignored by the others.
    pub labels: Option<&'a [u8]>,
}

impl<'a> TrainData<'a> {
    /// Unlabelled rows.
    pub fn new(samples: Samples<'a>, rows: usize, width: usize) -> Self {
        TrainData {
            samples,
            rows,
            width,
            labels: None,
        }
    }

    /// The labels one-hot (rows, classes), for a model conditioned on `classes` classes: an
    /// error when they are missing or one is out of range.
    pub fn one_hot_labels(&self, classes: usize) -> Result<Vec<f32>> {
        let labels = self.labels.ok_or_else(|| {
            Error::InvalidArgument(
                "a conditional model needs a label for every row, and this data has none".into(),
            )
        })?;
        if labels.len() != self.rows {
            return Err(Error::InvalidArgument(format!(
                "{} labels for {} rows",
                labels.len(),
                self.rows
            )));
        }
        let mut one_hot = vec![0.0; self.rows * classes];
        for (row, &label) in labels.iter().enumerate() {
            if usize::from(label) >= classes {
                return Err(Error::InvalidArgument(format!(
                    "row {row} has label {label}, the model knows classes 0..{}",
                    classes - 1
                )));
            }
            one_hot[row * classes + usize::from(label)] = 1.0;
        }
        Ok(one_hot)
    }

    /// Checks that the samples hold rows × width values.
    pub fn check(&self) -> Result<()> {
        let len = match self.samples {
            Samples::U8(s) => s.len(),
            Samples::F32(s) => s.len(),
        };
        if self.rows == 0 || self.width == 0 || len != self.rows * self.width {
            return Err(Error::InvalidArgument(format!(
                "training data: {len} values for {} rows of width {}",
                self.rows, self.width
            )));
        }
        Ok(())
    }
}

/// Everything about a training run that is not the model: optimizer, noise seed, length.
#[derive(Clone, Copy, Debug)]
pub struct RunConfig {
    pub adam: crate::kernels::adam::AdamConfig,
    /// Seed of the reparameterization noise.
    pub seed: u64,
    /// Steps the run may take (the size of the Adam step-scalar table).
    pub total_steps: u32,
}

/// The three matrix multiplies of a linear layer y (batch, out) = x (batch, in) · Wᵀ + b,
/// W stored (out, in), shared by both executors:
/// forward y = x·Wᵀ; dweight (out, in) = dyᵀ·x; dx (batch, in) = dy·W (added to dx when
/// `accumulate_dx`).
pub struct LinearShapes {
    pub forward: crate::cpu::matmul::MatmulShape,
    pub dweight: crate::cpu::matmul::MatmulShape,
    pub dx: crate::cpu::matmul::MatmulShape,
}

impl LinearShapes {
    pub fn new(batch: usize, input: usize, out: usize, accumulate_dx: bool) -> Self {
        use crate::cpu::matmul::MatmulShape;
        LinearShapes {
            forward: MatmulShape {
                trans_b: true,
                ..MatmulShape::new(batch, out, input)
            },
            dweight: MatmulShape {
                trans_a: true,
                ..MatmulShape::new(out, input, batch)
            },
            dx: MatmulShape {
                accumulate: accumulate_dx,
                ..MatmulShape::new(batch, input, out)
            },
        }
    }
}
