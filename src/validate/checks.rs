//! One check per kernel and shape: random inputs, the CPU twin, the GPU kernel, and the bound
//! each comparison allows, with the reason written beside it.
//!
//! Bounds come from two sources. Sums: two f32 sums of the same n terms in different orders
//! each lie within n·u·Σ|terms| of the exact sum (u = 2^-24), so they differ by at most
//! 2·n·u·Σ|terms|. Transcendentals: the Vulkan spec lets exp and log be off by a few ULP
//! (3 + 2|x| ULP for exp) and sin and cos by 2^-11 absolute, so kernels built on them get
//! relative bounds of a few 1e-6, or absolute ones where the spec says absolute.

use crate::cpu;
use crate::cpu::corrupt::Noise;
use crate::cpu::matmul::{MatmulShape, StoreLoss};
use crate::cpu::reparameterize::NoiseKey;
use crate::error::{Error, Result};
use crate::gpu::GpuBuffer;
use crate::kernels::autotune::{self, candidates, ShapeClass};
use crate::kernels::gather::{DataShards, GatherSource};
use crate::kernels::matmul::{MatmulTiles, MatmulVariant};
use crate::kernels::step::StepStates;
use crate::kernels::{self, activation::Activation};
use crate::validate::{
    abs_rel, error_row, CheckResult, Output, RowSumsOutput, ShapeSet, Validator, UNIT_ROUNDOFF,
};

/// The kernel families, in the order `latent validate` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Matmul,
    Reduce,
    Activation,
    Mse,
    Bce,
    Philox,
    Reparameterize,
    Kl,
    VaeHead,
    Corrupt,
    Sparsity,
    Concat,
    RepeatRows,
    ImportanceWeight,
    Adam,
    Sgd,
    Gather,
    Step,
    GroupedWeightGrads,
}

impl Family {
    pub const ALL: [Family; 19] = [
        Family::Matmul,
        Family::Reduce,
        Family::Activation,
        Family::Mse,
        Family::Bce,
        Family::Philox,
        Family::Reparameterize,
        Family::Kl,
        Family::VaeHead,
        Family::Corrupt,
        Family::Sparsity,
        Family::Concat,
        Family::RepeatRows,
        Family::ImportanceWeight,
        Family::Adam,
        Family::Sgd,
        Family::Gather,
        Family::Step,
        Family::GroupedWeightGrads,
    ];
}

/// (variant, case) pairs for an epilogue's checks: every case on each default variant, and
/// `other_case` on the other tile sizes that are `runnable`.
fn epilogue_runs<C: Copy>(
    runnable: &dyn Fn(&MatmulVariant) -> bool,
    defaults: &[MatmulVariant],
    cases: &[C],
    other_tiles: [MatmulVariant; 2],
    other_case: C,
) -> Vec<(MatmulVariant, C)> {
    defaults
        .iter()
        .flat_map(|&d| cases.iter().map(move |&case| (d, case)))
        .chain(
            other_tiles
                .into_iter()
                .filter(|t| runnable(t))
                .map(|t| (t, other_case)),
        )
        .collect()
}

/// Runs every check of one family; a check that errors becomes a failed row.
pub fn check_families(v: &mut Validator, family: Family, shapes: ShapeSet) -> Vec<CheckResult> {
    let full = shapes == ShapeSet::Full;
    let mut rows = Vec::new();
    let mut push = |kernel: &str, shape: String, result: Result<CheckResult>| {
        rows.push(result.unwrap_or_else(|e| error_row(kernel, &shape, &e)));
    };
    match family {
        Family::Matmul => rows.extend(check_matmul_variants(v, shapes, None)),
        Family::Reduce => {
            let mut sizes = vec![(1, 1), (127, 785), (3, 1000)];
            if full {
                sizes.push((128, 400));
            }
            for &(rows, cols) in &sizes {
                for kind in [Reduction::Rows, Reduction::Cols, Reduction::All] {
                    push(
                        kind.name(),
                        format!("{rows}x{cols}"),
                        check_reduce(v, kind, rows, cols),
                    );
                }
            }
            for lens in [&[1][..], &[130, 7], &[1000, 1, 257]] {
                push("sum_terms", terms_shape(lens), check_sum_terms(v, lens));
            }
        }
        Family::Activation => {
            let mut sizes = vec![1, 1000, 4099];
            if full {
                sizes.push(128 * 400);
            }
            for activation in Activation::ALL {
                for &n in &sizes {
                    push(
                        activation.name(),
                        format!("{n}"),
                        check_activation(v, activation, n),
                    );
                }
            }
        }
        Family::Mse | Family::Bce => {
            // (rows, cols, target repeat): the last compares K = 5 rows with each target
            // row, as an IWAE's samples.
            let mut sizes = vec![(1, 1, 1), (127, 33, 1), (3, 785, 1), (15, 33, 5)];
            if full {
                sizes.extend([(128, 784, 1), (640, 784, 5)]);
            }
            let bce = family == Family::Bce;
            for &(rows, cols, repeat) in &sizes {
                let shape = loss_shape_name(rows, cols, repeat);
                let result = if bce {
                    check_bce(v, rows, cols, repeat)
                } else {
                    check_mse(v, rows, cols, repeat)
                };
                push(if bce { "bce" } else { "mse" }, shape.clone(), result);
                push(
                    if bce {
                        "bce_backward_rows"
                    } else {
                        "mse_backward_rows"
                    },
                    shape.clone(),
                    check_loss_backward_rows(v, bce, (rows, cols, repeat)),
                );
                if repeat == 1 {
                    push(
                        if bce {
                            "bce_forward_backward"
                        } else {
                            "mse_forward_backward"
                        },
                        shape,
                        check_loss_forward_backward(v, bce, rows, cols),
                    );
                }
            }
        }
        Family::Philox => {
            push(
                "philox_fill",
                "known answers".into(),
                check_philox_known_answers(v),
            );
            for n in [1, 7, 4096] {
                push(
                    "philox_fill",
                    format!("{n} words"),
                    check_philox_random(v, n),
                );
            }
        }
        Family::Reparameterize => {
            // (5, 1): the Philox group of four elements straddles rows, and a group is cut
            // short at the end.
            // (rows, cols, stats repeat): with a repeat of K, each row of stats stands for K
            // rows of z (an IWAE's data rows, read in place of their repeats).
            let mut sizes = vec![(1, 1, 1), (5, 1, 1), (127, 33, 1), (15, 7, 5), (6, 1, 3)];
            if full {
                sizes.extend([(128, 20, 1), (640, 20, 5)]);
            }
            for &(rows, cols, repeat) in &sizes {
                push(
                    "reparameterize",
                    repeat_shape(rows, cols, repeat),
                    check_reparameterize(v, rows, cols, repeat),
                );
            }
            // (data rows, cols, k), (a partial gradient of the samples, accumulate, columns
            // of dz's rows past cols, stats as the data rows rather than their repeats): an
            // IWAE's K samples of each row.
            let mut groups = vec![
                ((3, 7, 5), (true, true, 0, true)),
                ((2, 20, 1), (false, false, 0, false)),
                ((4, 6, 3), (true, false, 10, false)),
                ((5, 9, 4), (true, false, 0, true)),
            ];
            if full {
                groups.push(((128, 20, 5), (true, false, 0, true)));
            }
            for ((rows, cols, k), options) in groups {
                push(
                    "reparameterize_backward_groups",
                    format!("{rows}x{cols}, k {k}"),
                    check_reparameterize_groups(v, (rows, cols, k), options),
                );
            }
        }
        Family::Kl => {
            let mut sizes = vec![(1, 1), (127, 33), (3, 300)];
            if full {
                sizes.push((128, 20));
            }
            for &(rows, cols) in &sizes {
                push("kl", format!("{rows}x{cols}"), check_kl(v, rows, cols));
            }
        }
        Family::VaeHead => {
            // (5, 3): Philox groups of four elements straddle rows; 300 columns: a thread
            // takes several.
            // (rows, cols, samples, label columns): with K samples a row (an IWAE's head,
            // without a KL gradient; (5, 3, 3) straddles rows and samples); with z written
            // as z | label (a conditional VAE's).
            let mut sizes = vec![
                (1, 1, 1, 0),
                (5, 3, 1, 0),
                (127, 33, 1, 0),
                (3, 300, 1, 0),
                (5, 3, 3, 0),
                (7, 20, 5, 0),
                (5, 3, 1, 2),
                (127, 33, 1, 10),
            ];
            if full {
                sizes.extend([(128, 20, 1, 0), (128, 20, 5, 0), (128, 20, 1, 10)]);
            }
            for &(rows, cols, samples, label_cols) in &sizes {
                push(
                    "vae_head",
                    head_shape(rows, cols, samples, label_cols),
                    check_vae_head(v, (rows, cols, samples), label_cols),
                );
            }
        }
        Family::Corrupt => {
            let mut sizes = vec![1, 5, 127 * 33];
            if full {
                sizes.push(128 * 784);
            }
            let noises = [
                Noise::Gaussian { sigma: 0.5 },
                Noise::Masking { p: 0.3 },
                Noise::SaltAndPepper { p: 0.2 },
            ];
            for &n in &sizes {
                for noise in noises {
                    push(
                        "corrupt",
                        format!("{noise} {n}"),
                        check_corrupt(v, noise, n),
                    );
                }
            }
        }
        Family::Sparsity => {
            let mut sizes = vec![(1, 1), (127, 33), (3, 300)];
            if full {
                sizes.push((128, 32));
            }
            for &(rows, cols) in &sizes {
                push("l1", format!("{rows}x{cols}"), check_l1(v, rows, cols));
                push(
                    "l1_forward_backward",
                    format!("{rows}x{cols}"),
                    check_l1_forward_backward(v, rows, cols),
                );
                push(
                    "kl_sparsity",
                    format!("{rows}x{cols}"),
                    check_kl_sparsity(v, rows, cols),
                );
                push(
                    "kl_sparsity_forward_backward",
                    format!("{rows}x{cols}"),
                    check_kl_sparsity_forward_backward(v, rows, cols),
                );
            }
        }
        Family::Concat => {
            let mut sizes = vec![(1, 1, 1), (127, 33, 10), (3, 785, 7)];
            if full {
                sizes.push((128, 784, 10));
            }
            for &(rows, cols_a, cols_b) in &sizes {
                push(
                    "concat",
                    format!("{rows}x({cols_a}+{cols_b})"),
                    check_concat(v, rows, cols_a, cols_b),
                );
            }
        }
        Family::RepeatRows => {
            let mut sizes = vec![(1, 1, 1), (127, 33, 5), (3, 40, 1000)];
            if full {
                sizes.push((128, 40, 50));
            }
            for &(rows, cols, k) in &sizes {
                push(
                    "repeat_rows",
                    format!("{rows}x{cols}x{k}"),
                    check_repeat_rows(v, rows, cols, k),
                );
            }
        }
        Family::ImportanceWeight => {
            // Groups of up to 64 take a thread each, larger ones a workgroup each
            // (kernels::log_mean_exp::ALONE_MAX_K): both sides of the edge.
            let mut sizes = vec![
                (1, 1, 1),
                (127, 33, 5),
                (300, 4, 64),
                (5, 4, 65),
                (3, 20, 1000),
            ];
            if full {
                sizes.push((10, 20, 5000));
            }
            for &(groups, cols, k) in &sizes {
                // μ | logvar of each sample, then of each data row read for its K samples.
                for repeat in [1, k] {
                    push(
                        "log_weight",
                        repeat_shape(groups * k, cols, repeat),
                        check_log_weight(v, groups * k, cols, repeat),
                    );
                }
                push(
                    "neg_log_mean_exp",
                    format!("{groups} groups of {k}"),
                    check_log_mean_exp(v, groups, k),
                );
                push(
                    "log_weight_backward",
                    format!("{}x{cols}", groups * k),
                    check_log_weight_backward(v, groups * k, cols),
                );
                push(
                    "neg_log_mean_exp_backward",
                    format!("{groups} groups of {k}"),
                    check_log_mean_exp_backward(v, groups, k),
                );
                push(
                    "neg_log_mean_exp_forward_backward",
                    format!("{groups} groups of {k}"),
                    check_log_mean_exp_forward_backward(v, groups, k),
                );
            }
            // (groups, cols, k): the fused bound of a training step, a workgroup a group;
            // 33 and 300 columns: a thread takes several on lavapipe's 32-thread workgroups
            // and a GPU's 256.
            let mut bounds = vec![
                (1, 1, 1),
                (127, 33, 5),
                (7, 20, 5),
                (30, 4, 64),
                (2, 300, 3),
            ];
            if full {
                bounds.push((128, 20, 5));
            }
            for &shape in &bounds {
                for repeat in [1, shape.2] {
                    push(
                        "iwae_bound_forward_backward",
                        iwae_bound_shape(shape, repeat),
                        check_iwae_bound(v, shape, repeat),
                    );
                }
            }
            // With the reconstruction loss (where the adapter binds its 11 storage
            // buffers): BCE and MSE, the target the data rows' or each sample's; 33 and 300
            // loss columns as the bound's latent ones.
            if kernels::iwae_bound::runs_with_recon_on(v.ctx) {
                for (shape, recon_cols) in [((3, 4, 5), 33), ((7, 20, 5), 300), ((1, 1, 1), 1)] {
                    for (mse, repeat) in [(false, shape.2), (true, shape.2), (false, 1)] {
                        push(
                            "iwae_bound_with_recon",
                            iwae_bound_shape(shape, repeat),
                            check_iwae_bound_with_recon(v, shape, (mse, recon_cols, repeat)),
                        );
                    }
                }
            }
        }
        Family::Adam => {
            // 1 and 1001: a parameter at a time; 1000: four (adam_step_vec4). The last two
            // (vec4 and scalar) are 4 · CPU_ADAPTER_THREADS + 3 units: a CPU adapter's
            // threads loop five times.
            let most = 4 * kernels::adam::CPU_ADAPTER_THREADS;
            let mut sizes = vec![1, 1000, 1001, 4 * most + 12, most + 3];
            if full {
                sizes.push(784 * 400 + 400);
            }
            for &n in &sizes {
                for step in [1, 7] {
                    push(
                        "adam_step",
                        format!("{n} step {step}"),
                        check_adam(v, n, step),
                    );
                }
            }
        }
        Family::Sgd => {
            for n in [1, 1000] {
                for (step, nesterov) in [(1, false), (3, false), (3, true)] {
                    let label =
                        format!("{n} step {step}{}", if nesterov { " nesterov" } else { "" });
                    push("sgd_step", label, check_sgd(v, n, step, nesterov));
                }
            }
        }
        Family::Step => {
            for batch in [1, 5] {
                push(
                    "step_states",
                    format!("batch {batch}"),
                    check_step_states(v, batch),
                );
            }
        }
        Family::Gather => {
            // (rows, width, data rows, rows a shard: None for the adapter's own binding
            // limit, else shards of that many rows, the last one shorter; a dispatch per
            // four shards: 4 shards one, 5 two, 12 three).
            let mut sizes: Vec<(usize, usize, usize, Option<usize>)> = vec![
                (1, 1, 1, None),
                (33, 785, 127, None),
                (128, 64, 1797, None),
                (33, 785, 127, Some(37)),
                (64, 13, 200, Some(50)),
                (32, 64, 90, Some(31)),
                (64, 13, 200, Some(41)),
                (64, 64, 130, Some(11)),
            ];
            if full {
                sizes.push((128, 784, 10_000, None));
            }
            let shape = |(rows, width, data_rows, shard_rows), bytes, in_order| GatherShape {
                rows,
                width,
                data_rows,
                shard_rows,
                bytes,
                in_order,
            };
            // And in order (evaluation passes), the batch running past the set's end.
            let in_order = [
                (33, 785, 127, None),
                (64, 13, 200, Some(41)),
                (64, 64, 130, Some(11)),
            ];
            let by_index = sizes.iter().map(|&size| (size, false));
            for (size, in_order) in by_index.chain(in_order.map(|size| (size, true))) {
                for bytes in [true, false] {
                    let shape = shape(size, bytes, in_order);
                    push(
                        if bytes { "gather_u8" } else { "gather_f32" },
                        shape.name(),
                        check_gather(v, &shape),
                    );
                }
            }
            // A denoising model's batch and its corruption ((rows, width, data rows, rows a
            // shard), in order): groups of four elements straddling rows (785 and 13 wide)
            // and the rows of different shards and dispatches (five shards: two
            // dispatches); 64 wide: bytes a word a thread (gather_u8_words_corrupt), twelve
            // shards.
            let corrupted = [
                ((33, 785, 127, None), false),
                ((64, 13, 200, Some(41)), false),
                ((64, 13, 200, Some(41)), true),
                ((64, 64, 130, Some(11)), false),
                ((32, 64, 90, None), true),
            ];
            let noises = [
                Noise::Gaussian { sigma: 0.5 },
                Noise::Masking { p: 0.3 },
                Noise::SaltAndPepper { p: 0.2 },
            ];
            for (size, in_order) in corrupted {
                for (noise, bytes) in noises.into_iter().flat_map(|n| [(n, true), (n, false)]) {
                    let shape = shape(size, bytes, in_order);
                    push(
                        "gather_corrupt",
                        format!("{noise} {}", shape.name()),
                        check_gather_corrupt(v, &shape, noise),
                    );
                }
            }
            // A conditional model's batch ((rows, width, data rows, rows a shard), label
            // columns, in order): one shard and two (the most gather_join binds), rows of 13
            // bytes straddling words, by index and in order.
            let mut joins = vec![
                ((33, 785, 127, None), 10, false),
                ((64, 13, 200, Some(101)), 3, false),
                ((33, 785, 127, None), 10, true),
                ((64, 13, 200, Some(101)), 3, true),
            ];
            if full {
                joins.push(((128, 784, 10_000, None), 10, false));
            }
            for (size, label_cols, in_order) in joins {
                for bytes in [true, false] {
                    let shape = shape(size, bytes, in_order);
                    push(
                        "gather_join",
                        format!("{} + {label_cols} label columns", shape.name()),
                        check_gather_join(v, &shape, label_cols),
                    );
                }
            }
        }
        Family::GroupedWeightGrads => {
            // (batch, layers (out, in)): odd batches shorter than a slab and longer; layers
            // narrower than a tile, wider, and 4 of them (the dispatch's most); the VAE's.
            let mut groups: Vec<(usize, Vec<(usize, usize)>)> = vec![
                (13, vec![(4, 8), (12, 20), (36, 44), (68, 4)]),
                (4, vec![(132, 68)]),
                (37, vec![(20, 400), (40, 8)]),
            ];
            if full {
                groups.push((128, vec![(400, 784), (40, 400), (400, 20), (784, 400)]));
            }
            // 4 × 4 and 8 × 8 a thread, each with and without prefetching (the first three
            // also with Adam fused below), and a thread staging 8 vec4s of a slab.
            let tiles = [
                MatmulTiles::default(),
                MatmulTiles {
                    tile_m: 32,
                    tile_n: 32,
                    prefetch: true,
                    ..MatmulTiles::default()
                },
                MatmulTiles {
                    thread: 8,
                    ..MatmulTiles::default()
                },
                MatmulTiles {
                    thread: 8,
                    prefetch: true,
                    ..MatmulTiles::default()
                },
                MatmulTiles {
                    tile_m: 32,
                    tile_n: 16,
                    tile_k: 8,
                    thread: 8,
                    ..MatmulTiles::default()
                },
            ];
            // Left out where the adapter cannot bind its 9 storage buffers (steps then
            // keep a dispatch a layer), as the autotune leaves out what cannot run.
            if !kernels::matmul_grouped_tn::runs_on(v.ctx) {
                groups.clear();
            }
            for (k, layers) in &groups {
                for &t in &tiles {
                    let shape = describe_grouped(*k, layers, t);
                    push(
                        "matmul_grouped_tn",
                        shape,
                        check_grouped_weight_grads(v, *k, layers, t),
                    );
                }
                // Adam fused, where the adapter binds its 13 storage buffers: 4 × 4 and 8 × 8
                // a thread, at the first step (zero moments) and later ones.
                if kernels::matmul_grouped_tn::runs_fused_on(v.ctx) {
                    for (&t, step) in tiles[..3].iter().zip([1, 3, 7]) {
                        let shape = format!("{} step {step}", describe_grouped(*k, layers, t));
                        push(
                            "matmul_grouped_tn_adam",
                            shape,
                            check_grouped_weight_grads_adam(v, *k, layers, t, step),
                        );
                    }
                }
            }
        }
    }
    rows
}

/// "k 13: 4x8, 12x20 grouped:64x64x16".
fn describe_grouped(k: usize, layers: &[(usize, usize)], tiles: MatmulTiles) -> String {
    let layers: Vec<String> = layers.iter().map(|(m, n)| format!("{m}x{n}")).collect();
    format!("k {k}: {} grouped:{tiles}", layers.join(", "))
}

/// One set of layers' weight-gradient operands for the grouped checks: random dy (k, m) and
/// x (k, n) in [-1, 1] per layer (out, in), on the host and on the GPU, and where each
/// layer's dW and db sit in flat buffers laid out as a plan lays them out
/// (`matmul_grouped_tn::flat_layout`).
struct GroupedOperands {
    k: usize,
    layers: Vec<(usize, usize)>,
    dy: Vec<Vec<f32>>,
    x: Vec<Vec<f32>>,
    offsets: Vec<(usize, usize)>,
    /// The flat buffers' length.
    len: usize,
    gpu_dy: Vec<crate::gpu::GpuBuffer>,
    gpu_x: Vec<crate::gpu::GpuBuffer>,
}

impl GroupedOperands {
    fn new(v: &mut Validator, k: usize, layers: &[(usize, usize)]) -> Result<Self> {
        let dy: Vec<Vec<f32>> = layers
            .iter()
            .map(|&(m, _)| v.random(k * m, -1.0, 1.0))
            .collect();
        let x: Vec<Vec<f32>> = layers
            .iter()
            .map(|&(_, n)| v.random(k * n, -1.0, 1.0))
            .collect();
        let (offsets, len) = kernels::matmul_grouped_tn::flat_layout(layers);
        let gpu_dy = dy
            .iter()
            .map(|d| v.upload("dy", d))
            .collect::<Result<_>>()?;
        let gpu_x = x.iter().map(|x| v.upload("x", x)).collect::<Result<_>>()?;
        Ok(GroupedOperands {
            k,
            layers: layers.to_vec(),
            dy,
            x,
            offsets,
            len,
            gpu_dy,
            gpu_x,
        })
    }

    /// The twin's problems over `dy` and `x` (these operands, or their magnitudes).
    fn twin<'a>(
        &self,
        dy: &'a [Vec<f32>],
        x: &'a [Vec<f32>],
    ) -> Vec<cpu::matmul_grouped_tn::GroupedProblem<'a, f32>> {
        self.layers
            .iter()
            .enumerate()
            .map(|(g, &(m, n))| cpu::matmul_grouped_tn::GroupedProblem {
                m,
                n,
                dy: &dy[g],
                x: &x[g],
                dweight: self.offsets[g].0,
                dbias: self.offsets[g].1,
            })
            .collect()
    }

    /// The kernel's problems.
    fn gpu(&self) -> Vec<kernels::matmul_grouped_tn::WeightGradProblem<'_>> {
        self.layers
            .iter()
            .enumerate()
            .map(
                |(g, &(m, n))| kernels::matmul_grouped_tn::WeightGradProblem {
                    m,
                    n,
                    dy: &self.gpu_dy[g],
                    x: &self.gpu_x[g],
                    dweight: self.offsets[g].0,
                    dbias: self.offsets[g].1,
                },
            )
            .collect()
    }

    /// The twin's gradients over a flat buffer filled with `fill` (left as it is between
    /// the parts), and the bound of two summation orders of each element's K terms.
    fn grads_and_bounds(&self, fill: f32) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut grads = vec![fill; self.len];
        cpu::matmul_grouped_tn::matmul_grouped_tn(
            &mut grads,
            self.k,
            &self.twin(&self.dy, &self.x),
        )?;
        let abs = |v: &[Vec<f32>]| -> Vec<Vec<f32>> {
            v.iter()
                .map(|v| v.iter().map(|e| e.abs()).collect())
                .collect()
        };
        let (abs_dy, abs_x) = (abs(&self.dy), abs(&self.x));
        let mut magnitude = vec![0.0; self.len];
        cpu::matmul_grouped_tn::matmul_grouped_tn(
            &mut magnitude,
            self.k,
            &self.twin(&abs_dy, &abs_x),
        )?;
        let bounds = magnitude
            .iter()
            .map(|&mag| sum_bound(self.k, mag))
            .collect();
        Ok((grads, bounds))
    }
}

/// The grouped weight gradients of `layers` ((out, in) each, batch k) against the twin, in
/// a NaN-poisoned gradient buffer: every dweight and dbias within two summation orders'
/// bound, and the padding between parts still NaN.
fn check_grouped_weight_grads(
    v: &mut Validator,
    k: usize,
    layers: &[(usize, usize)],
    tiles: MatmulTiles,
) -> Result<CheckResult> {
    let ops = GroupedOperands::new(v, k, layers)?;
    let (grads, bounds) = ops.grads_and_bounds(f32::NAN)?;
    let ggrads = v.poisoned("grads", ops.len)?;
    let dispatch =
        kernels::matmul_grouped_tn::matmul_grouped_tn(v.ctx, &ggrads, k, &ops.gpu(), tiles)?;
    v.finish(
        dispatch.name,
        describe_grouped(k, layers, tiles),
        &[&dispatch],
        vec![Output {
            name: "grads",
            gpu: &ggrads,
            cpu: grads,
            allowed: Box::new(move |i: usize, _| bounds[i]),
        }],
    )
}

/// The grouped weight gradients with Adam fused against the twin (the gradients fed to
/// cpu/adam.rs at the same offsets): random parameters and moments as after a few steps
/// (zeros at step 1), the whole flat buffers compared, so the padding between parts must
/// stay as it was. Bounds: Adam's own (as `check_adam`), plus what the gradient's summation
/// error δg (two orders of K terms) moves: m by (1 − β1)·δg, v by (1 − β2)·(2|g| + δg)·δg, and
/// the parameter by at most twice the larger of the twin's moves with g ± δg.
fn check_grouped_weight_grads_adam(
    v: &mut Validator,
    k: usize,
    layers: &[(usize, usize)],
    tiles: MatmulTiles,
    step: u32,
) -> Result<CheckResult> {
    use crate::kernels::matmul_grouped_tn::AdamBuffers;

    let config = cpu::adam::AdamConfig {
        weight_decay: 0.01,
        ..Default::default()
    };
    let ops = GroupedOperands::new(v, k, layers)?;
    let end = ops.len;
    let param = v.random(end, -1.0, 1.0);
    let (first_m, first_v) = if step == 1 {
        (vec![0.0; end], vec![0.0; end])
    } else {
        (v.random(end, -0.1, 0.1), v.random(end, 0.0, 0.01))
    };
    let problems = ops.twin(&ops.dy, &ops.x);
    // The gradients, their summation bound δg, and the elements they cover.
    let (grads, delta) = ops.grads_and_bounds(0.0)?;
    let mut covered = vec![false; end];
    for q in &problems {
        covered[q.dweight..q.dweight + q.m * q.n].fill(true);
        covered[q.dbias..q.dbias + q.m].fill(true);
    }
    // Adam on the covered elements with the gradients moved by shift · δg.
    let adam = |shift: f32| -> Result<[Vec<f32>; 3]> {
        let (mut p, mut m, mut s) = (param.clone(), first_m.clone(), first_v.clone());
        for i in (0..end).filter(|&i| covered[i]) {
            cpu::adam::adam_step(
                std::slice::from_mut(&mut p[i]),
                std::slice::from_mut(&mut m[i]),
                std::slice::from_mut(&mut s[i]),
                &[grads[i] + shift * delta[i]],
                step,
                &config,
            )?;
        }
        Ok([p, m, s])
    };
    let [p_cpu, m_cpu, v_cpu] = adam(0.0)?;
    // The fused form's twin is Adam on those gradients.
    let (mut p_twin, mut m_twin, mut v_twin) = (param.clone(), first_m.clone(), first_v.clone());
    cpu::matmul_grouped_tn::matmul_grouped_tn_adam(
        &mut p_twin,
        &mut m_twin,
        &mut v_twin,
        k,
        &problems,
        step,
        &config,
    )?;
    if p_twin != p_cpu || m_twin != m_cpu || v_twin != v_cpu {
        return Err(Error::InvalidArgument(
            "matmul_grouped_tn_adam's twin disagrees with Adam on its gradients".into(),
        ));
    }
    let [p_plus, ..] = adam(1.0)?;
    let [p_minus, ..] = adam(-1.0)?;
    let param_allowed: Vec<f32> = (0..end)
        .map(|i| {
            let update = (p_cpu[i] - param[i]).abs();
            let moved = (p_plus[i] - p_cpu[i])
                .abs()
                .max((p_minus[i] - p_cpu[i]).abs());
            2.0 * moved
                + 16.0 * UNIT_ROUNDOFF * update
                + 2.0 * UNIT_ROUNDOFF * (param[i].abs() + update)
        })
        .collect();
    let (beta1, beta2) = (config.beta1, config.beta2);
    let m_allowed: Vec<f32> = (0..end)
        .map(|i| (1.0 - beta1) * delta[i] + 4.0 * UNIT_ROUNDOFF * m_cpu[i].abs() + 1e-12)
        .collect();
    let v_allowed: Vec<f32> = (0..end)
        .map(|i| {
            let g = (grads[i] + config.weight_decay * param[i]).abs();
            (1.0 - beta2) * (2.0 * g + delta[i]) * delta[i]
                + 4.0 * UNIT_ROUNDOFF * v_cpu[i].abs()
                + 1e-12
        })
        .collect();

    let (gp, gm, gv) = (
        v.upload("param", &param)?,
        v.upload("m", &first_m)?,
        v.upload("v", &first_v)?,
    );
    let table = v.upload("step scalars", &config.step_scalar_table(step))?;
    let state = v.upload("state", &[step, 0])?;
    let buffers = AdamBuffers {
        param: &gp,
        m: &gm,
        v: &gv,
        step_scalars: &table,
        state: &state,
    };
    let dispatch = kernels::matmul_grouped_tn::matmul_grouped_tn_adam(
        v.ctx,
        buffers,
        &config,
        k,
        &ops.gpu(),
        tiles,
    )?;
    let outputs = vec![
        Output {
            name: "param",
            gpu: &gp,
            cpu: p_cpu,
            allowed: Box::new(move |i: usize, _| param_allowed[i]),
        },
        Output {
            name: "m",
            gpu: &gm,
            cpu: m_cpu,
            allowed: Box::new(move |i: usize, _| m_allowed[i]),
        },
        Output {
            name: "v",
            gpu: &gv,
            cpu: v_cpu,
            allowed: Box::new(move |i: usize, _| v_allowed[i]),
        },
    ];
    v.finish(
        dispatch.name,
        format!("{} step {step}", describe_grouped(k, layers, tiles)),
        &[&dispatch],
        outputs,
    )
}

/// The matmul family of checks: every variant the autotune may pick on this adapter (and
/// coop-f16 where the device runs it) at the awkward shapes; the kernels' defaults also at
/// the model shape (`ShapeSet::Full`) and with every store option; other tile sizes at one
/// shape each. With `only`, the checks of that variant alone (tests/kernels.rs runs
/// coop-f16's this way).
pub fn check_matmul_variants(
    v: &mut Validator,
    shapes: ShapeSet,
    only: Option<MatmulVariant>,
) -> Vec<CheckResult> {
    let full = shapes == ShapeSet::Full;
    let mut rows = Vec::new();
    let mut push = |kernel: &str, shape: String, result: Result<CheckResult>| {
        rows.push(result.unwrap_or_else(|e| error_row(kernel, &shape, &e)));
    };
    // Every variant the autotune may pick on this adapter, at the awkward shapes; the
    // three kernels' defaults also at the model shape and with the epilogue's extras.
    // Variants the adapter cannot run (the subgroup kernel without 8-lane subgroups)
    // are left out, as the autotune leaves them out.
    let chosen = |variant: MatmulVariant| only.is_none_or(|o| o == variant);
    let runnable = |variant: &MatmulVariant| chosen(*variant) && variant.check(v.ctx).is_ok();
    let mut variants: Vec<MatmulVariant> = candidates(ShapeClass::General);
    for skinny in candidates(ShapeClass::Skinny) {
        if !variants.contains(&skinny) {
            variants.push(skinny);
        }
    }
    // coop-f16 (opt-in, never tuned) where the device was created with it.
    variants.push(MatmulVariant::CoopF16);
    variants.retain(runnable);
    // With them, the tiled kernel at 8 × 8 a thread on 64 × 64 tiles (its second blocks, 32
    // rows or columns on, are inside the 36-row shapes, so their stores are checked too) and
    // with K split between 4 groups of threads (the hand-over of blocks and row sums), each
    // also with the next slab prefetched (4 vec4s each of A and B a thread at 64x64x16x8).
    let mut defaults = vec![
        MatmulVariant::Tiled(MatmulTiles::default()),
        MatmulVariant::Tiled(MatmulTiles {
            thread: 8,
            ..MatmulTiles::default()
        }),
        MatmulVariant::Tiled(MatmulTiles {
            tile_m: 32,
            tile_n: 32,
            split: 4,
            ..MatmulTiles::default()
        }),
        MatmulVariant::Tiled(MatmulTiles {
            thread: 8,
            prefetch: true,
            ..MatmulTiles::default()
        }),
        MatmulVariant::Tiled(MatmulTiles {
            tile_m: 32,
            tile_n: 32,
            split: 4,
            prefetch: true,
            ..MatmulTiles::default()
        }),
        MatmulVariant::RowTile,
        MatmulVariant::Subgroup,
        MatmulVariant::CoopF16,
    ];
    defaults.retain(runnable);
    for variant in variants {
        // (36, 44, 20): multiples of 4 but not of the tiles, which the subgroup
        // variant runs with its vec4 file.
        let mut sizes = vec![(1, 1, 1), (127, 785, 33), (5, 3, 70), (36, 44, 20)];
        if full && defaults.contains(&variant) {
            sizes.push((128, 784, 400));
        }
        for &(m, k, n) in &sizes {
            for shape in matmul_cases(m, n, k) {
                let (shape, bias) = shape;
                push(
                    matmul_kernel_name(variant),
                    describe_matmul(&shape, bias, variant),
                    check_matmul(v, shape, bias, variant),
                );
            }
        }
    }
    // The fused epilogue of a linear layer: bias and activation in the store.
    for &variant in &defaults {
        for activation in Activation::ALL {
            for (m, n, k) in [(1, 1, 1), (127, 33, 785), (36, 20, 44)] {
                let shape = MatmulShape {
                    trans_b: true,
                    activation: Some(activation),
                    ..MatmulShape::new(m, n, k)
                };
                push(
                    matmul_kernel_name(variant),
                    describe_matmul(&shape, true, variant),
                    check_matmul(v, shape, true, variant),
                );
            }
        }
    }
    // The backward's epilogue: dW = dyᵀ·x with the bias gradient as row sums of dyᵀ,
    // and dx = dy·W times an activation's derivative.
    for &variant in &defaults {
        for (m, n, k) in [(1, 1, 1), (33, 127, 785), (5, 70, 3), (36, 28, 44)] {
            let shape = MatmulShape {
                trans_a: true,
                row_sums: true,
                ..MatmulShape::new(m, n, k)
            };
            push(
                matmul_kernel_name(variant),
                describe_matmul(&shape, false, variant),
                check_matmul_backward_epilogue(v, shape, variant),
            );
        }
        for (activation, addend) in Activation::ALL
            .into_iter()
            .map(|a| (a, false))
            .chain([(Activation::Relu, true)])
        {
            for (m, n, k) in [(1, 1, 1), (127, 785, 33), (36, 44, 28)] {
                let shape = MatmulShape {
                    activation_grad: Some(activation),
                    addend,
                    ..MatmulShape::new(m, n, k)
                };
                push(
                    matmul_kernel_name(variant),
                    describe_matmul(&shape, false, variant),
                    check_matmul_backward_epilogue(v, shape, variant),
                );
            }
        }
        // A sparse autoencoder's L1 penalty in the decoder's dx store: its gradient in the
        // addend's place, before a ReLU's derivative or alone (a linear code), the
        // penalty's rows into running totals. (m, n, k, ReLU): odd shapes, (36, 44, 28)
        // (multiples of 4: the vec4 files) and the sparse autoencoder's d(code) (128, 256,
        // ·) at a K of 72, not its 784 (which took 85 s of CI's lavapipe over the variants).
        let l1_cases = [
            (1, 1, 1, true),
            (5, 3, 70, false),
            (127, 33, 17, true),
            (36, 44, 28, true),
            (36, 44, 28, false),
            (128, 256, 72, true),
        ];
        for (m, n, k, relu) in l1_cases {
            let shape = MatmulShape {
                activation_grad: relu.then_some(Activation::Relu),
                l1_grad: true,
                ..MatmulShape::new(m, n, k)
            };
            push(
                matmul_kernel_name(variant),
                describe_matmul(&shape, false, variant),
                check_matmul_l1_grad(v, shape, variant),
            );
        }
    }
    // coop-f16 with operands far outside f16's range, which its power-of-two scaling
    // per row of A and column of B brings in: A tiny and B huge, a gradient-sized A,
    // A huge.
    if runnable(&MatmulVariant::CoopF16) {
        for (ea, eb) in COOP_RANGE_EXPONENTS {
            let scales = (2f32.powi(ea), 2f32.powi(eb));
            for trans_a in [false, true] {
                let shape = MatmulShape {
                    trans_a,
                    trans_b: !trans_a,
                    ..MatmulShape::new(33, 31, 65)
                };
                let variant = MatmulVariant::CoopF16;
                push(
                    matmul_kernel_name(variant),
                    describe_scaled(&shape, true, variant, scales),
                    check_matmul_scaled(v, shape, true, variant, scales),
                );
            }
        }
    }
    let small_tiles = MatmulVariant::Tiled(MatmulTiles {
        tile_m: 32,
        tile_n: 16,
        tile_k: 8,
        thread: 4,
        split: 1,
        prefetch: false,
    });
    let shape = MatmulShape {
        trans_b: true,
        ..MatmulShape::new(67, 45, 131)
    };
    if chosen(small_tiles) {
        push(
            "matmul",
            describe_matmul(&shape, true, small_tiles),
            check_matmul(v, shape, true, small_tiles),
        );
    }
    // The output layer's loss in its store: logits = h·Wᵀ + b never stored, C = the
    // loss gradient, each row's loss added to running totals. (m, n, k, with bias and
    // Bᵀ): every default at 1 × 1 × 1, odd shapes, (36, 44, 28) and the model's output
    // layer (128, 784, 40) with M, N, K multiples of 4 (the subgroup vec4 file), and
    // (5, 3, 70) without bias or transpose; other tiles (other workgroup widths, so
    // other slots) at one odd shape.
    let loss_cases = [
        (1, 1, 1, true),
        (5, 3, 70, false),
        (33, 127, 17, true),
        (36, 44, 28, true),
        (128, 784, 40, true),
    ];
    let other_tiles = [
        small_tiles,
        MatmulVariant::Tiled(MatmulTiles {
            tile_m: 32,
            tile_n: 32,
            tile_k: 16,
            thread: 4,
            split: 1,
            prefetch: false,
        }),
    ];
    let loss_runs = epilogue_runs(
        &runnable,
        &defaults,
        &loss_cases,
        other_tiles,
        loss_cases[2],
    );
    for (variant, (m, n, k, with_bias)) in loss_runs {
        for loss in [StoreLoss::Bce, StoreLoss::Mse] {
            let shape = MatmulShape {
                trans_b: with_bias,
                loss: Some(loss),
                ..MatmulShape::new(m, n, k)
            };
            push(
                matmul_kernel_name(variant),
                describe_matmul(&shape, with_bias, variant),
                check_matmul_loss(v, shape, with_bias, variant),
            );
        }
    }
    // The reparameterization's backward in the store of the decoder's first dx
    // matmul: dz = dy·W never stored, C = dstats (m, 2l) (+)= [dz | dz·ε·½σ], dz the
    // first l columns. (m, n, k, trans_a, trans_b, l), written and accumulating: every
    // default at 1 × 1 × 1, odd shapes, (36, 20, 28) (multiples of 4: the vec4 files),
    // the VAE's dz (128, 20, 400) NN and the conditional VAE's d(z | label) (128, 30,
    // 400) with l = 20; one odd shape with both transposes and columns dropped; (36, 24,
    // 28) dropping 4 columns (vec4 files) and 6 (l = 18, not a multiple of 4: the
    // scalar files); other tiles at one odd shape.
    let reparam_cases = [
        (1, 1, 1, false, false, 1),
        (5, 3, 70, false, false, 3),
        (33, 7, 17, false, false, 7),
        (33, 7, 17, true, true, 5),
        (36, 20, 28, false, false, 20),
        (36, 24, 28, false, false, 20),
        (36, 24, 28, false, false, 18),
        (128, 20, 400, false, false, 20),
        (128, 30, 400, false, false, 20),
    ];
    let reparam_runs = epilogue_runs(
        &runnable,
        &defaults,
        &reparam_cases,
        other_tiles,
        reparam_cases[2],
    );
    for (variant, (m, n, k, trans_a, trans_b, latent)) in reparam_runs {
        for accumulate in [false, true] {
            let shape = MatmulShape {
                trans_a,
                trans_b,
                accumulate,
                reparam_grad: Some(latent),
                ..MatmulShape::new(m, n, k)
            };
            push(
                matmul_kernel_name(variant),
                describe_matmul(&shape, false, variant),
                check_matmul_reparam_grad(v, shape, variant),
            );
        }
    }
    rows
}

/// The kernel column of a matmul check that failed before it ran (a check that runs names
/// the entry point its dispatch used).
fn matmul_kernel_name(variant: MatmulVariant) -> &'static str {
    match variant {
        MatmulVariant::Tiled(_) => "matmul",
        MatmulVariant::RowTile => "matmul_rowtile",
        MatmulVariant::Subgroup => "matmul_subgroup",
        MatmulVariant::CoopF16 => "matmul_coop_f16",
    }
}

/// The options checked at each matmul size: the four transposes, with bias, and
/// accumulating into C (with Aᵀ). (shape, with bias)
fn matmul_cases(m: usize, n: usize, k: usize) -> Vec<(MatmulShape, bool)> {
    let mut cases: Vec<_> = [(false, false), (false, true), (true, false), (true, true)]
        .into_iter()
        .map(|(trans_a, trans_b)| {
            let shape = MatmulShape {
                trans_a,
                trans_b,
                ..MatmulShape::new(m, n, k)
            };
            (shape, false)
        })
        .collect();
    cases.push((MatmulShape::new(m, n, k), true));
    let accumulating = MatmulShape {
        accumulate: true,
        trans_a: true,
        ..MatmulShape::new(m, n, k)
    };
    cases.push((accumulating, false));
    cases
}

fn describe_matmul(shape: &MatmulShape, bias: bool, variant: MatmulVariant) -> String {
    let tiles = match variant {
        MatmulVariant::Tiled(tiles) if tiles != MatmulTiles::default() => {
            format!(" tiles {tiles}")
        }
        _ => String::new(),
    };
    format!(
        "{}{}{}{}{tiles}",
        autotune::describe(shape),
        if bias { " +bias" } else { "" },
        if shape.accumulate { " +=C" } else { "" },
        shape
            .activation
            .map_or(String::new(), |a| format!(" +{}", a.name()))
            + &shape
                .activation_grad
                .map_or(String::new(), |a| format!(" ·{}'", a.name()))
            + if shape.row_sums { " +row sums" } else { "" }
            + if shape.addend { " +addend" } else { "" }
            + if shape.l1_grad { " +l1 grad" } else { "" }
            + match shape.loss {
                None => "",
                Some(StoreLoss::Bce) => " +bce loss",
                Some(StoreLoss::Mse) => " +mse loss",
            }
            + &match shape.reparam_grad {
                None => String::new(),
                Some(l) if l == shape.n => " +reparam grad".to_string(),
                Some(l) => format!(" +reparam grad of {l} cols"),
            }
    )
}

/// (absolute, relative) error allowed an activation's forward, from the spec's bounds: ReLU
/// is exact; sigmoid is exp within (3 + 2|x|) ULP for |x| ≤ 30 and a division, about 65 ULP
/// ≈ 8e-6 relative; tanh inherits sinh/cosh's error, a few e-6.
fn activation_bounds(activation: Activation) -> (f32, f32) {
    match activation {
        Activation::Relu => (0.0, 0.0),
        Activation::Sigmoid => (1e-7, 2e-5),
        Activation::Tanh => (2e-6, 1e-5),
    }
}

/// Error bound for two summation orders of terms whose absolute values sum to `abs_sum`.
fn sum_bound(n: usize, abs_sum: f32) -> f32 {
    2.0 * n as f32 * UNIT_ROUNDOFF * abs_sum + f32::MIN_POSITIVE
}

/// The error the coop-f16 variant adds to a product whose Σ|a||b| is `abs_product` over `k`
/// terms of operands in [−1, 1] (other variants: none): rounding A and B to f16, 2u₁₆ + u₁₆²
/// relative a product (u₁₆ = 2⁻¹¹), and 2⁻²⁴ a term for operands that fall below f16's
/// normal range (its subnormals are 2⁻²⁴ apart); and the f32 sum's bound once more, as
/// tensor cores need not round their f32 additions to nearest (NVIDIA's truncate).
pub fn operand_bound(variant: MatmulVariant, k: usize, abs_product: f32) -> f32 {
    if variant != MatmulVariant::CoopF16 {
        return 0.0;
    }
    let u16 = 2f32.powi(-11);
    (2.0 * u16 + u16 * u16) * abs_product
        + k as f32 * 2f32.powi(-24)
        + sum_bound(k + 2, abs_product)
}

/// One matmul variant against the CPU twin at one shape, with the bound of two summation
/// orders (and of rounding the operands to f16, for coop-f16).
pub fn check_matmul(
    v: &mut Validator,
    shape: MatmulShape,
    with_bias: bool,
    variant: MatmulVariant,
) -> Result<CheckResult> {
    check_matmul_scaled(v, shape, with_bias, variant, (1.0, 1.0))
}

/// Powers of two (of A, of B) for coop-f16's range checks: A tiny and B huge, a
/// gradient-sized A, A huge; f16 holds 2⁻²⁴ to 65504.
const COOP_RANGE_EXPONENTS: [(i32, i32); 3] = [(-40, 30), (-23, 0), (20, -20)];

/// [`describe_matmul`], with the operands' scales when they are not 1: "... A·2^-40 B·2^30".
fn describe_scaled(
    shape: &MatmulShape,
    bias: bool,
    variant: MatmulVariant,
    (sa, sb): (f32, f32),
) -> String {
    let text = describe_matmul(shape, bias, variant);
    if (sa, sb) == (1.0, 1.0) {
        return text;
    }
    format!("{text} A·2^{} B·2^{}", sa.log2(), sb.log2())
}

/// [`check_matmul`] with A's values in [−sa, sa] and B's in [−sb, sb] (bias and C in
/// [−sa·sb, sa·sb]), `(sa, sb)` = `scales`: for coop-f16, operands far outside f16's range
/// (2⁻²⁴ to 65504) that its power-of-two scaling must bring in. The bound is check_matmul's
/// with every magnitude scaled, so it stays relative to the products.
pub fn check_matmul_scaled(
    v: &mut Validator,
    shape: MatmulShape,
    with_bias: bool,
    variant: MatmulVariant,
    (sa, sb): (f32, f32),
) -> Result<CheckResult> {
    let MatmulShape { m, n, k, .. } = shape;
    let scaled = |x: Vec<f32>, s: f32| x.into_iter().map(|v| v * s).collect::<Vec<_>>();
    let a = scaled(v.random(m * k, -1.0, 1.0), sa);
    let b = scaled(v.random(k * n, -1.0, 1.0), sb);
    let bias = with_bias.then(|| scaled(v.random(n, -1.0, 1.0), sa * sb));
    // With accumulation C starts random, otherwise NaN (poison).
    let c_start = if shape.accumulate {
        scaled(v.random(m * n, -1.0, 1.0), sa * sb)
    } else {
        vec![f32::NAN; m * n]
    };
    let mut c_cpu = c_start.clone();
    cpu::matmul::matmul(&mut c_cpu, &a, &b, bias.as_deref(), &shape)?;
    // Bound: the sum of K products, plus bias and C, in two orders. Σ|a||b| is the same
    // multiply on absolute values; 2·(K + 2)·u·(Σ|a||b| + |bias| + |C|) covers both orders.
    let abs = |x: &[f32]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
    let mut magnitude = if shape.accumulate {
        abs(&c_start)
    } else {
        vec![0.0; m * n]
    };
    let abs_bias = bias.as_deref().map(abs);
    cpu::matmul::matmul(
        &mut magnitude,
        &abs(&a),
        &abs(&b),
        abs_bias.as_deref(),
        &MatmulShape {
            activation: None,
            ..shape
        },
    )?;

    let ga = v.upload("a", &a)?;
    let gb = v.upload("b", &b)?;
    let gbias = bias.as_ref().map(|b| v.upload("bias", b)).transpose()?;
    let gc = v.upload("c", &c_start)?;
    let dispatch = kernels::matmul::matmul_with_variant(
        v.ctx,
        &gc,
        &ga,
        &gb,
        gbias.as_ref(),
        &shape,
        variant,
    )?;
    // A fused activation is 1-Lipschitz (sigmoid ¼) and adds its own error.
    let (atol, rtol) = shape.activation.map_or((0.0, 0.0), activation_bounds);
    // operand_bound's absolute part (f16 subnormals) is for operands in [−1, 1]: scaled.
    let allowed = move |i: usize, c: f32| {
        sum_bound(k + 2, magnitude[i])
            + operand_bound(variant, k, magnitude[i] / (sa * sb)) * (sa * sb)
            + atol
            + rtol * c.abs()
    };
    let shape_text = describe_scaled(&shape, with_bias, variant, (sa, sb));
    v.finish(
        dispatch.name,
        shape_text,
        &[&dispatch],
        vec![Output {
            name: "C",
            gpu: &gc,
            cpu: c_cpu,
            allowed: Box::new(allowed),
        }],
    )
}

/// A matmul with the backward's store extras (`shape.activation_grad`, `shape.row_sums`)
/// against the twin.
pub fn check_matmul_backward_epilogue(
    v: &mut Validator,
    shape: MatmulShape,
    variant: MatmulVariant,
) -> Result<CheckResult> {
    let MatmulShape { m, n, k, .. } = shape;
    let a = v.random(m * k, -1.0, 1.0);
    let b = v.random(k * n, -1.0, 1.0);
    // The saved activation outputs: in f's range, with a share of ReLU zeros.
    let saved = shape.activation_grad.map(|kind| match kind {
        Activation::Relu => v
            .random(m * n, -1.0, 1.0)
            .iter()
            .map(|x| x.max(0.0))
            .collect(),
        Activation::Sigmoid => v.random(m * n, 0.0, 1.0),
        Activation::Tanh => v.random(m * n, -1.0, 1.0),
    });
    let mut c = vec![f32::NAN; m * n];
    let mut sums = vec![f32::NAN; m];
    let addend = shape.addend.then(|| v.random(m * n, -1.0, 1.0));
    let extras = cpu::matmul::MatmulExtras {
        saved: saved.as_deref(),
        row_sums: shape.row_sums.then_some(&mut sums[..]),
        addend: addend.as_deref(),
        ..Default::default()
    };
    cpu::matmul::matmul_with_extras(&mut c, &a, &b, None, extras, &shape)?;
    // Bounds: the product's sum (with the addend) in two orders (as check_matmul), times
    // |f'| ≤ 1, plus the multiplications by f' (3 roundings); row sums: K terms in two orders.
    let abs = |x: &[f32]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
    let mut magnitude = addend.as_deref().map_or(vec![0.0; m * n], abs);
    let plain = MatmulShape {
        activation_grad: None,
        row_sums: false,
        addend: false,
        accumulate: shape.addend,
        ..shape
    };
    cpu::matmul::matmul(&mut magnitude, &abs(&a), &abs(&b), None, &plain)?;
    let row_magnitude: Vec<f32> = (0..m)
        .map(|row| {
            (0..k)
                .map(|p| {
                    if shape.trans_a {
                        a[p * m + row]
                    } else {
                        a[row * k + p]
                    }
                    .abs()
                })
                .sum()
        })
        .collect();

    let (ga, gb) = (v.upload("a", &a)?, v.upload("b", &b)?);
    let gsaved = saved.as_ref().map(|s| v.upload("saved", s)).transpose()?;
    let gc = v.poisoned("c", m * n)?;
    let gsums = v.poisoned("row sums", m)?;
    let gaddend = addend.as_ref().map(|x| v.upload("addend", x)).transpose()?;
    let gextras = kernels::matmul::MatmulExtras {
        saved: gsaved.as_ref(),
        row_sums: shape.row_sums.then_some(&gsums),
        addend: gaddend.as_ref(),
        ..Default::default()
    };
    let dispatch =
        kernels::matmul::matmul_with_extras(v.ctx, &gc, &ga, &gb, None, gextras, &shape, variant)?;
    let c_allowed = move |i: usize, c: f32| {
        sum_bound(k + 2, magnitude[i])
            + operand_bound(variant, k, magnitude[i])
            + 3.0 * UNIT_ROUNDOFF * c.abs()
    };
    let mut outputs = vec![Output {
        name: "C",
        gpu: &gc,
        cpu: c,
        allowed: Box::new(c_allowed),
    }];
    if shape.row_sums {
        outputs.push(Output {
            name: "row sums",
            gpu: &gsums,
            cpu: sums,
            allowed: Box::new(move |i: usize, _| sum_bound(k, row_magnitude[i])),
        });
    }
    v.finish(
        dispatch.name,
        describe_matmul(&shape, false, variant),
        &[&dispatch],
        outputs,
    )
}

/// A matmul whose store adds an L1 penalty's gradient (`shape.l1_grad`) against the twin: C
/// (NaN-poisoned), and the penalty's running totals compared by row sums. The code: a
/// ReLU's output (half zeros) with `shape.activation_grad`, else any sign, every seventh
/// element 0 (sign(0) = 0).
pub fn check_matmul_l1_grad(
    v: &mut Validator,
    shape: MatmulShape,
    variant: MatmulVariant,
) -> Result<CheckResult> {
    let MatmulShape { m, n, k, .. } = shape;
    if !shape.l1_grad {
        return Err(Error::InvalidArgument(
            "check_matmul_l1_grad needs shape.l1_grad".into(),
        ));
    }
    let a = v.random(m * k, -1.0, 1.0);
    let b = v.random(k * n, -1.0, 1.0);
    let code: Vec<f32> = v
        .random(m * n, -1.0, 1.0)
        .iter()
        .enumerate()
        .map(|(i, &x)| match shape.activation_grad {
            Some(_) => x.max(0.0),
            None if i % 7 == 0 => 0.0,
            None => x,
        })
        .collect();
    // As the trainer scales it: λ over the batch rows.
    let scale = 0.001 / m as f32;
    let start_totals = v.random(m * n, 0.0, 4.0);
    let mut c = vec![f32::NAN; m * n];
    let mut totals = start_totals.clone();
    let extras = cpu::matmul::MatmulExtras {
        saved: Some(&code),
        loss_totals: Some(&mut totals),
        l1_scale: scale,
        ..Default::default()
    };
    cpu::matmul::matmul_with_extras(&mut c, &a, &b, None, extras, &shape)?;
    // C: the product plus ±scale in two orders (as check_matmul), times f' ≤ 1, plus the
    // multiplication by f'. Totals: N penalties and N start values in two orders.
    let abs = |x: &[f32]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
    let mut magnitude = vec![scale; m * n];
    let plain = MatmulShape {
        activation_grad: None,
        l1_grad: false,
        accumulate: true,
        ..shape
    };
    cpu::matmul::matmul(&mut magnitude, &abs(&a), &abs(&b), None, &plain)?;
    let row_magnitude: Vec<f32> = (0..m)
        .map(|row| {
            (row * n..(row + 1) * n)
                .map(|i| code[i].abs() + start_totals[i])
                .sum()
        })
        .collect();
    let (ga, gb) = (v.upload("a", &a)?, v.upload("b", &b)?);
    let gcode = v.upload("code", &code)?;
    let gc = v.poisoned("c", m * n)?;
    // Not poisoned: the kernel adds to it.
    let gtotals = v.upload("penalty totals", &start_totals)?;
    let gextras = kernels::matmul::MatmulExtras {
        saved: Some(&gcode),
        loss_totals: Some(&gtotals),
        l1_scale: scale,
        ..Default::default()
    };
    let dispatch =
        kernels::matmul::matmul_with_extras(v.ctx, &gc, &ga, &gb, None, gextras, &shape, variant)?;
    let c_allowed = move |i: usize, c: f32| {
        sum_bound(k + 2, magnitude[i])
            + operand_bound(variant, k, magnitude[i])
            + UNIT_ROUNDOFF * c.abs()
    };
    let totals_allowed = move |row: usize, _| sum_bound(n + 3, row_magnitude[row]);
    v.finish_with_row_sums(
        dispatch.name,
        describe_matmul(&shape, false, variant),
        &[&dispatch],
        vec![Output {
            name: "C",
            gpu: &gc,
            cpu: c,
            allowed: Box::new(c_allowed),
        }],
        vec![RowSumsOutput {
            name: "penalty totals (row sums)",
            gpu: &gtotals,
            cols: n,
            cpu: totals,
            allowed: Box::new(totals_allowed),
        }],
    )
}

/// A matmul whose store computes a loss (`shape.loss`) against the twin: C, the loss
/// gradient, element by element; the running loss totals (m, n), which the kernel spreads
/// over a row's slots its own way, by their row sums.
pub fn check_matmul_loss(
    v: &mut Validator,
    shape: MatmulShape,
    with_bias: bool,
    variant: MatmulVariant,
) -> Result<CheckResult> {
    let MatmulShape { m, n, k, .. } = shape;
    let kind = shape
        .loss
        .ok_or_else(|| Error::InvalidArgument("check_matmul_loss needs shape.loss".into()))?;
    let a = v.random(m * k, -1.0, 1.0);
    let b = v.random(k * n, -1.0, 1.0);
    let bias = with_bias.then(|| v.random(n, -1.0, 1.0));
    let target = v.random(m * n, 0.0, 1.0);
    // Running totals from earlier steps, in every slot (the kernel reads and adds).
    let start_totals = v.random(m * n, 0.0, 4.0);
    // As the trainer scales them: BCE summed per example, MSE the mean over every element.
    let scale = match kind {
        StoreLoss::Bce => 1.0 / m as f32,
        StoreLoss::Mse => 1.0 / (m * n) as f32,
    };
    let mut c = vec![f32::NAN; m * n];
    let mut totals = start_totals.clone();
    let extras = cpu::matmul::MatmulExtras {
        target: Some(&target),
        loss_totals: Some(&mut totals),
        loss_scale: scale,
        ..Default::default()
    };
    cpu::matmul::matmul_with_extras(&mut c, &a, &b, bias.as_deref(), extras, &shape)?;

    // The logits z and the bound on their error dz (check_matmul's: K products plus the bias
    // in two orders, 2·(K + 2)·u·(Σ|a||b| + |bias|)).
    let plain = MatmulShape {
        loss: None,
        ..shape
    };
    let mut z = vec![0.0; m * n];
    cpu::matmul::matmul(&mut z, &a, &b, bias.as_deref(), &plain)?;
    let abs = |x: &[f32]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
    let mut magnitude = vec![0.0; m * n];
    let abs_bias = bias.as_deref().map(abs);
    cpu::matmul::matmul(
        &mut magnitude,
        &abs(&a),
        &abs(&b),
        abs_bias.as_deref(),
        &plain,
    )?;
    let dz: Vec<f32> = magnitude
        .iter()
        .map(|&g| sum_bound(k + 2, g) + operand_bound(variant, k, g))
        .collect();
    // Each element's loss error: dz through |dloss/dz| (BCE ≤ 1; MSE 2|z − x| + dz), plus
    // BCE's exp and log (1e-6 a term, as check_bce) and a few roundings; and the loss itself
    // (≥ 0) as the row sum's magnitude.
    let mut row_error = vec![0.0f32; m];
    let mut row_magnitude = vec![0.0f32; m];
    for row in 0..m {
        for col in 0..n {
            let i = row * n + col;
            let (loss, error) = match kind {
                StoreLoss::Bce => (cpu::bce::bce_with_logits(z[i], target[i]), dz[i] + 1e-6),
                StoreLoss::Mse => {
                    let d = z[i] - target[i];
                    (d * d, (2.0 * d.abs() + dz[i]) * dz[i])
                }
            };
            row_error[row] += error;
            row_magnitude[row] += loss + start_totals[i];
        }
    }
    let (ga, gb) = (v.upload("a", &a)?, v.upload("b", &b)?);
    let gbias = bias.as_ref().map(|b| v.upload("bias", b)).transpose()?;
    let gtarget = v.upload("target", &target)?;
    let gc = v.poisoned("c", m * n)?;
    // Not poisoned: the kernel adds to it.
    let gtotals = v.upload("loss totals", &start_totals)?;
    let gextras = kernels::matmul::MatmulExtras {
        target: Some(&gtarget),
        loss_totals: Some(&gtotals),
        loss_scale: scale,
        ..Default::default()
    };
    let dispatch = kernels::matmul::matmul_with_extras(
        v.ctx,
        &gc,
        &ga,
        &gb,
        gbias.as_ref(),
        gextras,
        &shape,
        variant,
    )?;
    // Gradient: as bce_backward (σ to 2e-5 relative, 1e-6 for the rest) and mse_backward (4
    // roundings), plus dz through the derivative: σ' ≤ ¼ for BCE, 2 for MSE, times scale.
    let c_allowed = move |i: usize, c: f32| match kind {
        StoreLoss::Bce => scale * (2e-5 + 0.25 * dz[i]) + 1e-6 * c.abs(),
        StoreLoss::Mse => scale * (1e-7 + 2.0 * dz[i]) + 4.0 * UNIT_ROUNDOFF * c.abs(),
    };
    // Row sums: the elements' errors, plus N losses and N start values summed in f32 in two
    // orders (the GPU sums a thread's share, adds it to a slot; the twin sums the row, adds
    // it to one slot) and each side's f64 sum rounded to f32: 2·(N + 3)·u·Σ|terms|.
    let totals_allowed = move |row: usize, _| row_error[row] + sum_bound(n + 3, row_magnitude[row]);
    let shape_text = describe_matmul(&shape, with_bias, variant);
    v.finish_with_row_sums(
        dispatch.name,
        shape_text,
        &[&dispatch],
        vec![Output {
            name: "C (gradient)",
            gpu: &gc,
            cpu: c,
            allowed: Box::new(c_allowed),
        }],
        vec![RowSumsOutput {
            name: "loss totals (row sums)",
            gpu: &gtotals,
            cols: n,
            cpu: totals,
            allowed: Box::new(totals_allowed),
        }],
    )
}

/// A matmul whose store is the reparameterization's backward (`shape.reparam_grad` Some(l))
/// against the twin: all of C = dstats (m, 2l), written (NaN-poisoned) or added to (random
/// start); dz is the product's first l columns.
pub fn check_matmul_reparam_grad(
    v: &mut Validator,
    shape: MatmulShape,
    variant: MatmulVariant,
) -> Result<CheckResult> {
    let MatmulShape { m, n, k, .. } = shape;
    let Some(l) = shape.reparam_grad else {
        return Err(Error::InvalidArgument(
            "check_matmul_reparam_grad needs shape.reparam_grad".into(),
        ));
    };
    let a = v.random(m * k, -1.0, 1.0);
    let b = v.random(k * n, -1.0, 1.0);
    // ε ~ N(0, 1) by Box-Muller from two uniforms; logvar in [−3, 1].
    let u1 = v.random(m * l, f32::MIN_POSITIVE, 1.0);
    let u2 = v.random(m * l, 0.0, 1.0);
    let eps: Vec<f32> = u1
        .iter()
        .zip(&u2)
        .map(|(&u1, &u2)| (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos())
        .collect();
    let stats = random_stats(v, m, l, (-2.0, 2.0), (-3.0, 1.0));
    let c_start = if shape.accumulate {
        v.random(m * 2 * l, -1.0, 1.0)
    } else {
        vec![f32::NAN; m * 2 * l]
    };
    let mut c = c_start.clone();
    let extras = cpu::matmul::MatmulExtras {
        eps: Some(&eps),
        stats: Some(&stats),
        ..Default::default()
    };
    cpu::matmul::matmul_with_extras(&mut c, &a, &b, None, extras, &shape)?;

    // The bound on dz's error (check_matmul's: K products in two orders, 2·(K + 2)·u·Σ|a||b|).
    // Latent element i = r·l + c is the product's r·n + c.
    let plain = MatmulShape {
        reparam_grad: None,
        accumulate: false,
        ..shape
    };
    let abs = |x: &[f32]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
    let mut magnitude = vec![0.0; m * n];
    cpu::matmul::matmul(&mut magnitude, &abs(&a), &abs(&b), None, &plain)?;
    let dz_error: Vec<f32> = first_cols(&magnitude, n, l)
        .map(|g| sum_bound(k + 2, g) + operand_bound(variant, k, g))
        .collect();
    // dz's error carried through the factor |ε|·½σ of the logvar half.
    let sigma = sigmas(&stats, m, l);
    let factor: Vec<f32> = eps
        .iter()
        .zip(&sigma)
        .map(|(e, s)| e.abs() * 0.5 * s)
        .collect();
    let (ga, gb) = (v.upload("a", &a)?, v.upload("b", &b)?);
    let (geps, gstats) = (v.upload("eps", &eps)?, v.upload("stats", &stats)?);
    let gc = if shape.accumulate {
        v.upload("dstats", &c_start)?
    } else {
        v.poisoned("dstats", m * 2 * l)?
    };
    let gextras = kernels::matmul::MatmulExtras {
        eps: Some(&geps),
        stats: Some(&gstats),
        ..Default::default()
    };
    let dispatch =
        kernels::matmul::matmul_with_extras(v.ctx, &gc, &ga, &gb, None, gextras, &shape, variant)?;
    // dμ = dz: dz's error, plus the add's rounding when accumulating. dlogvar = dz·ε·½σ:
    // dz's error times the factor, plus reparameterize_backward's own bound (its check's: exp
    // to a few ULP and three multiplications, 1e-7 + 1e-5 relative of the term), plus the
    // add's rounding.
    let add = if shape.accumulate {
        2.0 * UNIT_ROUNDOFF
    } else {
        0.0
    };
    let mu_error = dz_error.clone();
    let mu_allowed = move |i: usize, c: f32| mu_error[i] + add * c.abs();
    // The term dz·ε·½σ (its magnitude: |dz|·factor), dz from the twin's plain product.
    let mut product = vec![0.0; m * n];
    cpu::matmul::matmul(&mut product, &a, &b, None, &plain)?;
    let term: Vec<f32> = first_cols(&product, n, l)
        .zip(&factor)
        .map(|(d, f)| d.abs() * f)
        .collect();
    let logvar_allowed = move |i: usize, c: f32| {
        dz_error[i] * factor[i] * (1.0 + 1e-5) + 1e-7 + 1e-5 * term[i].abs() + add * c.abs()
    };
    v.finish(
        dispatch.name,
        describe_matmul(&shape, false, variant),
        &[&dispatch],
        vec![Output {
            name: "C (dstats)",
            gpu: &gc,
            cpu: c,
            allowed: stats_bound(l, mu_allowed, logvar_allowed),
        }],
    )
}

#[derive(Clone, Copy)]
enum Reduction {
    Rows,
    Cols,
    All,
}

impl Reduction {
    fn name(self) -> &'static str {
        match self {
            Reduction::Rows => "sum_rows",
            Reduction::Cols => "sum_cols",
            Reduction::All => "sum_all",
        }
    }
}

/// sum_terms on terms of `lens` elements, each total starting from a running value: each as
/// sum_all (scale 1, accumulated) would give it.
fn check_sum_terms(v: &mut Validator, lens: &[usize]) -> Result<CheckResult> {
    const NAMES: [&str; kernels::reduce::MAX_SUM_TERMS] = ["total 0", "total 1", "total 2"];
    let mut terms = Vec::new();
    for (t, &n) in lens.iter().enumerate() {
        let x = v.random(n, -1.0, 1.0);
        let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
        let start = 0.25 * (t + 1) as f32;
        let (mut total, mut magnitude) = (vec![start], vec![start]);
        cpu::reduce::sum_all(&mut total, &x, 1.0, true)?;
        cpu::reduce::sum_all(&mut magnitude, &abs, 1.0, true)?;
        let (gx, gtotal) = (v.upload("x", &x)?, v.upload("total", &[start])?);
        terms.push((gtotal, gx, n, total, magnitude[0]));
    }
    let bound: Vec<_> = terms
        .iter()
        .map(|(gtotal, gx, n, ..)| (gtotal, gx, *n))
        .collect();
    let dispatch = kernels::reduce::sum_terms(v.ctx, &bound)?;
    // Bound: as sum_all's, one sum of n values in two orders and an addition.
    let outputs = terms
        .iter()
        .zip(NAMES)
        .map(|((gtotal, _, n, total, magnitude), name)| {
            let (n, magnitude) = (*n, *magnitude);
            Output {
                name,
                gpu: gtotal,
                cpu: total.clone(),
                allowed: Box::new(move |_, _| sum_bound(n + 2, magnitude)),
            }
        })
        .collect();
    v.finish("sum_terms", terms_shape(lens), &[&dispatch], outputs)
}

/// A sum_terms check's shape: the terms' lengths, as "1000+1+257".
fn terms_shape(lens: &[usize]) -> String {
    lens.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("+")
}

fn check_reduce(
    v: &mut Validator,
    kind: Reduction,
    rows: usize,
    cols: usize,
) -> Result<CheckResult> {
    let x = v.random(rows * cols, -1.0, 1.0);
    let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    let gx = v.upload("x", &x)?;
    let (out_len, terms) = match kind {
        Reduction::Rows => (rows, cols),
        Reduction::Cols => (cols, rows),
        Reduction::All => (1, rows * cols),
    };
    let mut out = vec![0.0; out_len];
    let mut magnitude = vec![0.0; out_len];
    let gout = v.poisoned("out", out_len)?;
    let dispatch = match kind {
        Reduction::Rows => {
            cpu::reduce::sum_rows(&mut out, &x, rows, cols)?;
            cpu::reduce::sum_rows(&mut magnitude, &abs, rows, cols)?;
            kernels::reduce::sum_rows(v.ctx, &gout, &gx, rows, cols)?
        }
        Reduction::Cols => {
            cpu::reduce::sum_cols(&mut out, &x, rows, cols)?;
            cpu::reduce::sum_cols(&mut magnitude, &abs, rows, cols)?;
            kernels::reduce::sum_cols(v.ctx, &gout, &gx, rows, cols)?
        }
        Reduction::All => {
            // Scaled and accumulated onto a running total, as the trainer keeps its loss.
            let start = 0.25;
            v.ctx.write_buffer(&gout, &[start])?;
            out[0] = start;
            magnitude[0] = start;
            cpu::reduce::sum_all(&mut out, &x, 0.5, true)?;
            cpu::reduce::sum_all(&mut magnitude, &abs, 0.5, true)?;
            kernels::reduce::sum_all(v.ctx, &gout, &gx, rows * cols, 0.5, true)?
        }
    };
    // Bound: one sum of `terms` values in two orders (plus a scaling and an addition).
    let allowed = move |i: usize, _c: f32| sum_bound(terms + 2, magnitude[i]);
    v.finish(
        kind.name(),
        format!("{rows}x{cols}"),
        &[&dispatch],
        vec![Output {
            name: "out",
            gpu: &gout,
            cpu: out,
            allowed: Box::new(allowed),
        }],
    )
}

/// y = f(x), as the CPU twins of the activations take it.
type ForwardTwin = fn(&mut [f32], &[f32]) -> Result<()>;
/// dx from (y, dy), as the CPU twins of the activations take it.
type BackwardTwin = fn(&mut [f32], &[f32], &[f32]) -> Result<()>;

fn check_activation(v: &mut Validator, activation: Activation, n: usize) -> Result<CheckResult> {
    // Wide inputs reach the saturated tails of sigmoid and tanh.
    let x = v.random(n, -30.0, 30.0);
    let y_saved = match activation {
        Activation::Relu => v.random(n, -1.0, 1.0),
        _ => v.random(n, 0.0, 1.0),
    };
    let dy = v.random(n, -1.0, 1.0);
    let mut y = vec![0.0; n];
    let mut dx = vec![0.0; n];
    let (forward, backward): (ForwardTwin, BackwardTwin) = match activation {
        Activation::Relu => (
            cpu::activation::relu_forward,
            cpu::activation::relu_backward,
        ),
        Activation::Sigmoid => (
            cpu::activation::sigmoid_forward,
            cpu::activation::sigmoid_backward,
        ),
        Activation::Tanh => (
            cpu::activation::tanh_forward,
            cpu::activation::tanh_backward,
        ),
    };
    forward(&mut y, &x)?;
    backward(&mut dx, &y_saved, &dy)?;
    let (gx, gy_saved, gdy) = (
        v.upload("x", &x)?,
        v.upload("y_saved", &y_saved)?,
        v.upload("dy", &dy)?,
    );
    let (gy, gdx) = (v.poisoned("y", n)?, v.poisoned("dx", n)?);
    let fwd = activation.forward(v.ctx, &gy, &gx, n)?;
    let bwd = activation.backward(v.ctx, &gdx, &gy_saved, &gdy, n)?;
    // Forward: activation_bounds. Backward: two or three roundings of given inputs, 1e-6
    // relative.
    let (atol, rtol) = activation_bounds(activation);
    let backward_atol = if activation == Activation::Relu {
        0.0
    } else {
        1e-7
    };
    let backward_rtol = if activation == Activation::Relu {
        0.0
    } else {
        1e-6
    };
    let outputs = vec![
        Output {
            name: "y",
            gpu: &gy,
            cpu: y,
            allowed: Box::new(abs_rel(atol, rtol)),
        },
        Output {
            name: "dx",
            gpu: &gdx,
            cpu: dx,
            allowed: Box::new(abs_rel(backward_atol, backward_rtol)),
        },
    ];
    v.finish(activation.name(), format!("{n}"), &[&fwd, &bwd], outputs)
}

/// Running totals for a loss's rows: a random start, and the start plus the rows.
fn loss_totals(v: &mut Validator, loss: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let start = v.random(loss.len(), 0.0, 100.0);
    let after = start.iter().zip(loss).map(|(t, l)| t + l).collect();
    (start, after)
}

/// A loss check's shape: rows x cols, and the target's repeat when it has one.
fn loss_shape_name(rows: usize, cols: usize, repeat: usize) -> String {
    match repeat {
        1 => format!("{rows}x{cols}"),
        k => format!("{rows}x{cols}, each target row for {k}"),
    }
}

/// A target of rows / repeat rows for a loss over `rows` (values in [0, 1]), and the
/// CPU twins' form of it: each row repeated `repeat` times (cpu/repeat_rows.rs), as tall as
/// the prediction.
fn loss_target(
    v: &mut Validator,
    rows: usize,
    cols: usize,
    repeat: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let target = v.random(rows / repeat * cols, 0.0, 1.0);
    let mut repeated = vec![0.0; rows * cols];
    cpu::repeat_rows::repeat_rows(&mut repeated, &target, rows / repeat, cols, repeat)?;
    Ok((target, repeated))
}

fn check_mse(v: &mut Validator, rows: usize, cols: usize, repeat: usize) -> Result<CheckResult> {
    let x = v.random(rows * cols, 0.0, 1.0);
    let (target, repeated) = loss_target(v, rows, cols, repeat)?;
    let scale = 1.0 / (rows * cols) as f32;
    let mut loss = vec![0.0; rows];
    let mut dx = vec![0.0; rows * cols];
    cpu::mse::mse_forward(&mut loss, &x, &repeated, rows, cols)?;
    cpu::mse::mse_backward(&mut dx, &x, &repeated, scale)?;
    let (gx, gt) = (v.upload("x", &x)?, v.upload("target", &target)?);
    let (gloss, gdx) = (v.poisoned("loss", rows)?, v.poisoned("dx", rows * cols)?);
    // With a repeated target (an IWAE's), the forward also adds its rows to running totals.
    let (start_totals, totals) = loss_totals(v, &loss);
    let gtotals = v.upload("totals", &start_totals)?;
    let totals_given = (repeat > 1).then_some(&gtotals);
    let fwd = kernels::mse::mse_forward(
        v.ctx,
        (&gloss, totals_given),
        &gx,
        (&gt, repeat),
        rows,
        cols,
    )?;
    let bwd = kernels::mse::mse_backward(v.ctx, &gdx, &gx, (&gt, repeat), rows, cols, scale)?;
    // Forward: a sum of `cols` non-negative terms (each two roundings): 2·(cols + 2)·u·loss.
    // Backward: a subtraction and two multiplications: 4u relative, plus the subtraction's
    // absolute rounding.
    let outputs = vec![
        Output {
            name: "loss",
            gpu: &gloss,
            cpu: loss,
            allowed: Box::new(move |_, c: f32| sum_bound(cols + 2, c.abs())),
        },
        Output {
            name: "dx",
            gpu: &gdx,
            cpu: dx,
            allowed: Box::new(abs_rel(scale * 1e-7, 4.0 * UNIT_ROUNDOFF)),
        },
    ];
    let totals_output = (repeat > 1).then(|| Output {
        name: "totals",
        gpu: &gtotals,
        cpu: totals,
        allowed: Box::new(move |_, c: f32| sum_bound(cols + 3, c.abs())),
    });
    let outputs = outputs.into_iter().chain(totals_output).collect();
    v.finish(
        "mse",
        loss_shape_name(rows, cols, repeat),
        &[&fwd, &bwd],
        outputs,
    )
}

/// The backward of a per-row loss that also feeds the log weights (IWAE training).
fn check_loss_backward_rows(
    v: &mut Validator,
    bce: bool,
    (rows, cols, repeat): (usize, usize, usize),
) -> Result<CheckResult> {
    let a = v.random(rows * cols, -8.0, 8.0);
    let (target, repeated) = loss_target(v, rows, cols, repeat)?;
    let row_grad = v.random(rows, -2.0, 0.0);
    let (scale, factor) = (0.1, -1.0);
    let mut da = vec![0.0; rows * cols];
    if bce {
        cpu::bce::bce_backward_rows(&mut da, &a, &repeated, &row_grad, scale, factor)?;
    } else {
        cpu::mse::mse_backward_rows(&mut da, &a, &repeated, &row_grad, scale, factor)?;
    }
    let (ga, gt, gg) = (
        v.upload("a", &a)?,
        v.upload("target", &target)?,
        v.upload("row_grad", &row_grad)?,
    );
    let gda = v.poisoned("da", rows * cols)?;
    let target = (&gt, repeat);
    let d = if bce {
        kernels::bce::bce_backward_rows(v.ctx, &gda, &ga, target, &gg, rows, cols, scale, factor)?
    } else {
        kernels::mse::mse_backward_rows(v.ctx, &gda, &ga, target, &gg, rows, cols, scale, factor)?
    };
    // (scale + factor·g) in two roundings, times σ(a) − t (σ to 2e-5 relative, see bce) or
    // 2(a − t) (one rounding): 2e-5 of |d_loss| absolute for BCE, 4u relative for MSE.
    let d_loss_max = scale + 2.0;
    let allowed = if bce {
        abs_rel(2e-5 * d_loss_max, 4.0 * UNIT_ROUNDOFF)
    } else {
        abs_rel(1e-7, 6.0 * UNIT_ROUNDOFF)
    };
    let name = if bce {
        "bce_backward_rows"
    } else {
        "mse_backward_rows"
    };
    let outputs = vec![Output {
        name: "da",
        gpu: &gda,
        cpu: da,
        allowed: Box::new(allowed),
    }];
    v.finish(name, loss_shape_name(rows, cols, repeat), &[&d], outputs)
}

fn check_bce(v: &mut Validator, rows: usize, cols: usize, repeat: usize) -> Result<CheckResult> {
    // Logits up to ±50 exercise the stable forms; targets are pixel intensities.
    let logits = v.random(rows * cols, -50.0, 50.0);
    let (target, repeated) = loss_target(v, rows, cols, repeat)?;
    let scale = 1.0 / rows as f32;
    let mut loss = vec![0.0; rows];
    let mut dlogits = vec![0.0; rows * cols];
    cpu::bce::bce_forward(&mut loss, &logits, &repeated, rows, cols)?;
    cpu::bce::bce_backward(&mut dlogits, &logits, &repeated, scale)?;
    let (gz, gt) = (v.upload("logits", &logits)?, v.upload("target", &target)?);
    let (gloss, gd) = (
        v.poisoned("loss", rows)?,
        v.poisoned("dlogits", rows * cols)?,
    );
    // With a repeated target (an IWAE's), the forward also adds its rows to running totals.
    let (start_totals, totals) = loss_totals(v, &loss);
    let gtotals = v.upload("totals", &start_totals)?;
    let totals_given = (repeat > 1).then_some(&gtotals);
    let fwd = kernels::bce::bce_forward(
        v.ctx,
        (&gloss, totals_given),
        &gz,
        (&gt, repeat),
        rows,
        cols,
    )?;
    let bwd = kernels::bce::bce_backward(v.ctx, &gd, &gz, (&gt, repeat), rows, cols, scale)?;
    // Forward: each term is up to |z| ≤ 50 with a log(1 + e^-|z|) whose exp/log are good to
    // 2^-21 absolute (the spec's log bound near 1), so 1e-6 per term plus the sum's rounding
    // of terms up to 100: 2·cols·u·(Σ|terms| ≤ 100·cols).
    let per_row =
        move |_, c: f32| cols as f32 * 1e-6 + sum_bound(cols + 3, c.abs() + 100.0 * cols as f32);
    // Backward: σ(z) to 2e-5 relative (exp of up to 50: 103 ULP) minus a target in [0, 1].
    let outputs = vec![
        Output {
            name: "loss",
            gpu: &gloss,
            cpu: loss,
            allowed: Box::new(per_row),
        },
        Output {
            name: "dlogits",
            gpu: &gd,
            cpu: dlogits,
            allowed: Box::new(abs_rel(scale * 2e-5, 1e-6)),
        },
    ];
    let totals_output = (repeat > 1).then(|| Output {
        name: "totals",
        gpu: &gtotals,
        cpu: totals,
        allowed: Box::new(move |i, c: f32| per_row(i, c) + 2.0 * UNIT_ROUNDOFF * c.abs()),
    });
    let outputs = outputs.into_iter().chain(totals_output).collect();
    v.finish(
        "bce",
        loss_shape_name(rows, cols, repeat),
        &[&fwd, &bwd],
        outputs,
    )
}

/// Random123's known answers for Philox4x32-10 (kat_vectors): (counter, key, output).
pub const PHILOX_KNOWN_ANSWERS: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0, 0, 0, 0],
        [0, 0],
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ),
    (
        [u32::MAX; 4],
        [u32::MAX; 2],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

fn check_philox_known_answers(v: &mut Validator) -> Result<CheckResult> {
    let mut words = Vec::new();
    let mut dispatches = Vec::new();
    let mut expected = Vec::new();
    for (counter, key, answer) in PHILOX_KNOWN_ANSWERS {
        let out = v.upload("philox out", &[0xdead_beef_u32; 4])?;
        dispatches.push(kernels::philox::philox_fill(v.ctx, &out, 4, counter, key)?);
        words.push(out);
        expected.extend_from_slice(&answer);
    }
    kernels::run(v.ctx, "philox_fill", &dispatches.iter().collect::<Vec<_>>())?;
    let mut gpu = Vec::new();
    for out in &words {
        gpu.extend(v.ctx.read_buffer::<u32>(out)?);
    }
    let mut cpu_words = Vec::new();
    for (counter, key, _) in PHILOX_KNOWN_ANSWERS {
        cpu_words.extend(cpu::philox::philox4x32_10(counter, key));
    }
    let passed = gpu == expected && cpu_words == expected;
    Ok(CheckResult {
        kernel: "philox_fill".into(),
        shape: "known answers".into(),
        max_abs_err: 0.0,
        max_rel_err: 0.0,
        gpu_us: None,
        passed,
        detail: if passed {
            String::new()
        } else {
            format!("gpu {gpu:08x?} cpu {cpu_words:08x?} expected {expected:08x?}")
        },
    })
}

fn check_philox_random(v: &mut Validator, n: usize) -> Result<CheckResult> {
    let counter = [v.random_u32(1, u32::MAX)[0], 1, 2, 3];
    let key = [v.random_u32(1, u32::MAX)[0], 0x5eed];
    let mut words = vec![0u32; n];
    cpu::philox::philox_fill(&mut words, counter, key)?;
    let out = v.upload("philox out", &vec![0u32; n])?;
    let dispatch = kernels::philox::philox_fill(v.ctx, &out, n, counter, key)?;
    // Integer-only: the bits must be identical. Compared as f32 bit patterns with zero error
    // allowed (a NaN pattern compares by bits).
    let as_f32 = words.iter().map(|&w| f32::from_bits(w)).collect();
    let exact = |_, _| 0.0;
    v.finish(
        "philox_fill",
        format!("{n} words"),
        &[&dispatch],
        vec![Output {
            name: "words",
            gpu: &out,
            cpu: as_f32,
            allowed: Box::new(exact),
        }],
    )
}

/// stats (rows, 2·cols): each row μ (cols values in `mu`) then logvar (cols values in
/// `logvar`), the layout of a VAE's encoder output.
fn random_stats(
    v: &mut Validator,
    rows: usize,
    cols: usize,
    mu: (f32, f32),
    logvar: (f32, f32),
) -> Vec<f32> {
    let mut stats = Vec::with_capacity(rows * 2 * cols);
    for _ in 0..rows {
        stats.extend(v.random(cols, mu.0, mu.1));
        stats.extend(v.random(cols, logvar.0, logvar.1));
    }
    stats
}

/// σ = e^(½·logvar) of each latent element i = r·cols + c, from stats (rows, 2·cols).
/// The first `cols` of each `width`-wide row of `x`, row after row.
fn first_cols(x: &[f32], width: usize, cols: usize) -> impl Iterator<Item = f32> + '_ {
    x.chunks(width)
        .flat_map(move |row| row[..cols].iter().copied())
}

fn sigmas(stats: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| (0.5 * stats[(i / cols) * 2 * cols + cols + i % cols]).exp())
        .collect()
}

/// The bound of a (rows, 2·cols) gradient of stats: `mu` on the μ half of each row, `logvar`
/// on the logvar half, each called with the latent element i = r·cols + c it belongs to.
fn stats_bound<'a>(
    cols: usize,
    mu: impl Fn(usize, f32) -> f32 + 'a,
    logvar: impl Fn(usize, f32) -> f32 + 'a,
) -> Box<dyn Fn(usize, f32) -> f32 + 'a> {
    Box::new(move |j: usize, c: f32| {
        let (r, col) = (j / (2 * cols), j % (2 * cols));
        if col < cols {
            mu(r * cols + col, c)
        } else {
            logvar(r * cols + col - cols, c)
        }
    })
}

/// The shape of a check whose μ | logvar stats may stand for several rows each: rows x cols,
/// and the repeat where it is not 1.
fn repeat_shape(rows: usize, cols: usize, repeat: usize) -> String {
    if repeat == 1 {
        format!("{rows}x{cols}")
    } else {
        format!("{rows}x{cols}, stats rows x{repeat}")
    }
}

/// `rows / repeat` rows of random μ | logvar, and the same repeated `repeat` times: what
/// the GPU reads in place, and what the twins read.
fn repeated_stats(
    v: &mut Validator,
    (rows, cols, repeat): (usize, usize, usize),
    logvar: (f32, f32),
) -> Result<(Vec<f32>, Vec<f32>)> {
    let stats = random_stats(v, rows / repeat, cols, (-2.0, 2.0), logvar);
    let mut repeated = vec![0.0; rows * 2 * cols];
    cpu::repeat_rows::repeat_rows(&mut repeated, &stats, rows / repeat, 2 * cols, repeat)?;
    Ok((stats, repeated))
}

/// The reparameterization forward and backward (written; added, reading dz from wider
/// rows) against their twins; with a stats repeat, the GPU reads each row of stats for
/// `repeat` rows of z and the twins read the stats repeated (cpu/repeat_rows.rs).
fn check_reparameterize(
    v: &mut Validator,
    rows: usize,
    cols: usize,
    repeat: usize,
) -> Result<CheckResult> {
    let n = rows * cols;
    let (given, stats) = repeated_stats(v, (rows, cols, repeat), (-3.0, 3.0))?;
    let dz = v.random(n, -1.0, 1.0);
    let key = NoiseKey {
        seed: 0x1234_5678_9abc_def0 ^ v.seed,
        step: 7,
        stream: 1,
    };
    let (mut z, mut eps) = (vec![0.0; n], vec![0.0; n]);
    cpu::reparameterize::reparameterize_forward(&mut z, &mut eps, &stats, rows, cols, key)?;
    // The backward both ways: written (as the IWAE graph's first writer uses it) and added to
    // a random gradient (as VAE training uses it, after the KL's).
    let mut written = vec![0.0; 2 * n];
    cpu::reparameterize::reparameterize_backward(
        &mut written,
        &eps,
        &stats,
        &dz,
        rows,
        cols,
        false,
    )?;
    let start = v.random(2 * n, -1.0, 1.0);
    let mut added = start.clone();
    cpu::reparameterize::reparameterize_backward(&mut added, &eps, &stats, &dz, rows, cols, true)?;

    let (gstats, gdz) = (v.upload("stats", &given)?, v.upload("dz", &dz)?);
    // The added backward reads dz as the first columns of rows 3 wider (a conditional VAE's
    // d(z | label)).
    let dz_wide = wider_rows(v, &dz, cols, 3);
    let gdz_wide = v.upload("dz wide", &dz_wide)?;
    let step = v.upload("step", &[key.step])?;
    let (gz, geps) = (v.poisoned("z", n)?, v.poisoned("eps", n)?);
    let gwritten = v.poisoned("dstats written", 2 * n)?;
    let gadded = v.upload("dstats added", &start)?;
    // The backward reads the CPU's ε so that it is checked on its own.
    let eps_given = v.upload("eps given", &eps)?;
    let fwd = kernels::reparameterize::reparameterize_forward(
        v.ctx,
        &gz,
        &geps,
        (&gstats, repeat),
        &step,
        rows,
        cols,
        key.seed,
        key.stream,
    )?;
    let bwd_written = kernels::reparameterize::reparameterize_backward(
        v.ctx,
        &gwritten,
        &eps_given,
        (&gstats, repeat),
        (&gdz, cols),
        rows,
        cols,
        false,
    )?;
    let bwd_added = kernels::reparameterize::reparameterize_backward(
        v.ctx,
        &gadded,
        &eps_given,
        (&gstats, repeat),
        (&gdz_wide, cols + 3),
        rows,
        cols,
        true,
    )?;
    // ε: identical Philox bits; Box-Muller in f32 on the GPU uses sin and cos, which the
    // spec bounds by 2^-11 absolute, times a radius of at most 5.8: 3e-3 absolute. (Real
    // drivers do far better; the table shows the actual error.) z = μ + σ·ε inherits σ·3e-3.
    let sigma = sigmas(&stats, rows, cols);
    let z_allowed = move |i: usize, c: f32| 3e-3 * sigma[i] + 1e-5 * c.abs();
    // Backward: dμ = dz is a copy (exact when written; added, one rounding); dlogvar: exp to
    // a few ULP and three multiplications: 1e-5 relative of the term, plus the add's rounding.
    let term = written.clone();
    let added_logvar = move |i: usize, c: f32| {
        let t = term[(i / cols) * 2 * cols + cols + i % cols];
        1e-7 + 1e-5 * t.abs() + 2.0 * UNIT_ROUNDOFF * c.abs()
    };
    let outputs = vec![
        Output {
            name: "eps",
            gpu: &geps,
            cpu: eps,
            allowed: Box::new(abs_rel(3e-3, 1e-5)),
        },
        Output {
            name: "z",
            gpu: &gz,
            cpu: z,
            allowed: Box::new(z_allowed),
        },
        Output {
            name: "dstats written",
            gpu: &gwritten,
            cpu: written,
            allowed: stats_bound(cols, abs_rel(0.0, 0.0), abs_rel(1e-7, 1e-5)),
        },
        Output {
            name: "dstats added",
            gpu: &gadded,
            cpu: added,
            allowed: stats_bound(cols, abs_rel(0.0, 2.0 * UNIT_ROUNDOFF), added_logvar),
        },
    ];
    v.finish(
        "reparameterize",
        repeat_shape(rows, cols, repeat),
        &[&fwd, &bwd_written, &bwd_added],
        outputs,
    )
}

/// `values` (rows, cols) with `extra` random columns after each row's.
fn wider_rows(v: &mut Validator, values: &[f32], cols: usize, extra: usize) -> Vec<f32> {
    let others = v.random(values.len() / cols * extra, -1.0, 1.0);
    values
        .chunks(cols)
        .zip(others.chunks(extra))
        .flat_map(|(row, more)| row.iter().chain(more).copied())
        .collect()
}

/// reparameterize_backward_groups against its twins in turn: reparameterize_backward of the
/// samples (adding to their partial gradient, where there is one), then sum_row_groups; dz
/// as the first columns of rows `dz_extra` wider where that is not 0; μ | logvar given as
/// the data rows (read for each of their K samples) when `data_rows`, else repeated.
fn check_reparameterize_groups(
    v: &mut Validator,
    (rows, cols, k): (usize, usize, usize),
    (with_partial, accumulate, dz_extra, data_rows): (bool, bool, usize, bool),
) -> Result<CheckResult> {
    let (samples_rows, n) = (rows * k, rows * cols);
    let (stats, samples) = repeated_stats(v, (samples_rows, cols, k), (-3.0, 3.0))?;
    let dz = v.random(samples_rows * cols, -1.0, 1.0);
    let eps = v.random(samples_rows * cols, -3.0, 3.0);
    let partial = v.random(samples_rows * 2 * cols, -1.0, 1.0);
    let start = v.random(2 * n, -1.0, 1.0);
    // The twins, on the values and on their magnitudes (for the bound).
    let twins = |dz: &[f32], eps: &[f32], partial: &[f32], start: &[f32]| -> Result<Vec<f32>> {
        let mut per_sample = partial.to_vec();
        cpu::reparameterize::reparameterize_backward(
            &mut per_sample,
            eps,
            &samples,
            dz,
            samples_rows,
            cols,
            with_partial,
        )?;
        let mut dstats = start.to_vec();
        cpu::repeat_rows::sum_row_groups(&mut dstats, &per_sample, rows, 2 * cols, k, accumulate)?;
        Ok(dstats)
    };
    let abs = |x: &[f32]| x.iter().map(|v| v.abs()).collect::<Vec<f32>>();
    let expected = twins(&dz, &eps, &partial, &start)?;
    let magnitude = twins(&abs(&dz), &abs(&eps), &abs(&partial), &abs(&start))?;

    let gdstats = if accumulate {
        v.upload("dstats", &start)?
    } else {
        v.poisoned("dstats", 2 * n)?
    };
    let dz_given = match dz_extra {
        0 => dz.clone(),
        extra => wider_rows(v, &dz, cols, extra),
    };
    let (stats_given, repeat) = if data_rows {
        (&stats, k)
    } else {
        (&samples, 1)
    };
    let (geps, gstats, gdz) = (
        v.upload("eps", &eps)?,
        v.upload("stats", stats_given)?,
        v.upload("dz", &dz_given)?,
    );
    let gpartial = v.upload("partial", &partial)?;
    let dispatch = kernels::reparameterize::reparameterize_backward_groups(
        v.ctx,
        &gdstats,
        with_partial.then_some(&gpartial),
        &geps,
        (&gstats, repeat),
        (&gdz, cols + dz_extra),
        (rows, cols, k),
        accumulate,
    )?;
    // Each dlogvar term: exp to a few ULP and three multiplications, 1e-5 relative; then
    // k + 2 additions (the partial's, the group's, the start's) of terms bounded by the
    // magnitudes.
    let allowed =
        move |i: usize, _c: f32| 1e-7 + (1e-5 + (k + 3) as f32 * UNIT_ROUNDOFF) * magnitude[i];
    let outputs = vec![Output {
        name: "dstats",
        gpu: &gdstats,
        cpu: expected,
        allowed: Box::new(allowed),
    }];
    v.finish(
        "reparameterize_backward_groups",
        format!("{rows}x{cols}, k {k}"),
        &[&dispatch],
        outputs,
    )
}

fn check_kl(v: &mut Validator, rows: usize, cols: usize) -> Result<CheckResult> {
    let stats = random_stats(v, rows, cols, (-2.0, 2.0), (-3.0, 3.0));
    let start_dstats = v.random(rows * 2 * cols, -1.0, 1.0);
    let scale = 0.5 / rows as f32;
    let mut kl = vec![0.0; rows];
    cpu::kl::kl_forward(&mut kl, &stats, rows, cols)?;
    // The backward is checked accumulating into random gradients (as the VAE uses it).
    let mut dstats = start_dstats.clone();
    cpu::kl::kl_backward(&mut dstats, &stats, rows, cols, scale, true)?;

    let gstats = v.upload("stats", &stats)?;
    let gkl = v.poisoned("kl", rows)?;
    let gdstats = v.upload("dstats", &start_dstats)?;
    let fwd = kernels::kl::kl_forward(v.ctx, &gkl, &gstats, rows, cols)?;
    let bwd = kernels::kl::kl_backward(v.ctx, &gdstats, &gstats, rows, cols, scale, true)?;
    // Forward: terms 1 + lv - μ² - e^lv with |lv| ≤ 3 (exp good to 9 ULP ≈ 1e-6 relative of
    // e^3 ≈ 20): 2e-5 per term, plus the sum of terms up to 30 in two orders.
    let per_row = move |_, _c: f32| cols as f32 * 2e-5 + sum_bound(cols + 4, 30.0 * cols as f32);
    // Backward: dμ = scale·μ + start: a product and an add. dlogvar = scale·½(e^lv − 1) +
    // start: exp's 1e-6 relative of up to 20·scale, plus adds.
    let outputs = vec![
        Output {
            name: "kl",
            gpu: &gkl,
            cpu: kl,
            allowed: Box::new(per_row),
        },
        Output {
            name: "dstats",
            gpu: &gdstats,
            cpu: dstats,
            allowed: stats_bound(
                cols,
                abs_rel(1e-7, 4.0 * UNIT_ROUNDOFF),
                abs_rel(scale * 2e-5 + 1e-7, 1e-6),
            ),
        },
    ];
    v.finish("kl", format!("{rows}x{cols}"), &[&fwd, &bwd], outputs)
}

/// A per-row loss and its gradient in one dispatch: the rows added to running totals.
fn check_loss_forward_backward(
    v: &mut Validator,
    bce: bool,
    rows: usize,
    cols: usize,
) -> Result<CheckResult> {
    let (a, scale) = if bce {
        (v.random(rows * cols, -50.0, 50.0), 1.0 / rows as f32)
    } else {
        (v.random(rows * cols, 0.0, 1.0), 1.0 / (rows * cols) as f32)
    };
    let target = v.random(rows * cols, 0.0, 1.0);
    let start_totals = v.random(rows, 0.0, 100.0);
    let (mut totals, mut da) = (start_totals.clone(), vec![0.0; rows * cols]);
    if bce {
        cpu::bce::bce_forward_backward(&mut totals, &mut da, &a, &target, rows, cols, scale)?;
    } else {
        cpu::mse::mse_forward_backward(&mut totals, &mut da, &a, &target, rows, cols, scale)?;
    }
    let (ga, gt) = (v.upload("a", &a)?, v.upload("target", &target)?);
    let (gtotals, gda) = (
        v.upload("totals", &start_totals)?,
        v.poisoned("da", rows * cols)?,
    );
    let d = if bce {
        kernels::bce::bce_forward_backward(v.ctx, &gtotals, &gda, &ga, &gt, rows, cols, scale)?
    } else {
        kernels::mse::mse_forward_backward(v.ctx, &gtotals, &gda, &ga, &gt, rows, cols, scale)?
    };
    // Totals: the row sum's bound (as in check_bce / check_mse, terms up to 100 for BCE and
    // 1 for MSE) plus the add to the start. Gradient: as bce_backward / mse_backward.
    let term_max = if bce { 100.0 } else { 1.0 };
    let transcendental = if bce { 1e-6 } else { 0.0 };
    let totals_allowed = move |_, c: f32| {
        cols as f32 * transcendental
            + sum_bound(cols + 3, c.abs() + term_max * cols as f32)
            + 2.0 * UNIT_ROUNDOFF * c.abs()
    };
    let da_allowed = if bce {
        abs_rel(scale * 2e-5, 1e-6)
    } else {
        abs_rel(scale * 1e-7, 4.0 * UNIT_ROUNDOFF)
    };
    let name = if bce {
        "bce_forward_backward"
    } else {
        "mse_forward_backward"
    };
    let outputs = vec![
        Output {
            name: "totals",
            gpu: &gtotals,
            cpu: totals,
            allowed: Box::new(totals_allowed),
        },
        Output {
            name: "da",
            gpu: &gda,
            cpu: da,
            allowed: Box::new(da_allowed),
        },
    ];
    v.finish(name, format!("{rows}x{cols}"), &[&d], outputs)
}

/// The shape of a vae_head check: rows x cols, the samples a row when there are several, and
/// the label's columns where z is joined to a label.
fn head_shape(rows: usize, cols: usize, samples: usize, label_cols: usize) -> String {
    let mut shape = format!("{rows}x{cols}");
    if samples > 1 {
        shape += &format!(" K={samples}");
    }
    if label_cols > 0 {
        shape += &format!(" | label of {label_cols}");
    }
    shape
}

/// The fused VAE head against the reparameterization, KL and KL-gradient twins; with K
/// samples a row (an IWAE's head), against the reparameterization twin on the stats repeated
/// K times, and without the KL gradient; with label columns, z | label against the concat
/// twin of the head twin's z and a random label.
fn check_vae_head(
    v: &mut Validator,
    (rows, cols, samples): (usize, usize, usize),
    label_cols: usize,
) -> Result<CheckResult> {
    let n = rows * samples * cols;
    let kl_grad = samples == 1;
    let stats = random_stats(v, rows, cols, (-2.0, 2.0), (-3.0, 3.0));
    let start_totals = v.random(rows, 0.0, 100.0);
    let scale = 0.5 / rows as f32;
    let key = NoiseKey {
        seed: 0x4ead_5eed ^ v.seed,
        step: 9,
        stream: 0,
    };
    let (mut z, mut eps, mut totals) = (vec![0.0; n], vec![0.0; n], start_totals.clone());
    let mut dstats = vec![0.0; 2 * rows * cols];
    cpu::vae_head::vae_head_forward(
        cpu::vae_head::VaeHeadOut {
            z: &mut z,
            eps: &mut eps,
            kl_totals: &mut totals,
            dstats: kl_grad.then_some(&mut dstats[..]),
        },
        &stats,
        (rows, cols, samples),
        key,
        scale,
    )?;
    let label = v.random(rows * label_cols, 0.0, 1.0);
    let glabel = (label_cols > 0)
        .then(|| v.upload("label", &label))
        .transpose()?;
    let mut sigma: Vec<f32> = sigmas(&stats, rows, cols)
        .chunks(cols)
        .flat_map(|row| std::iter::repeat_n(row, samples).flatten().copied())
        .collect();
    if label_cols > 0 {
        let mut joined = vec![0.0; rows * (cols + label_cols)];
        cpu::concat::concat_cols(&mut joined, &z, &label, rows, cols, label_cols)?;
        z = joined;
        // The label's columns are copies: no error allowed.
        let zeros = vec![0.0; rows * label_cols];
        let mut joined_sigma = vec![0.0; z.len()];
        cpu::concat::concat_cols(&mut joined_sigma, &sigma, &zeros, rows, cols, label_cols)?;
        sigma = joined_sigma;
    }
    let gstats = v.upload("stats", &stats)?;
    let step = v.upload("step", &[key.step])?;
    let (gz, geps) = (v.poisoned("z", z.len())?, v.poisoned("eps", n)?);
    let gdstats = v.poisoned("dstats", 2 * rows * cols)?;
    let gtotals = v.upload("kl totals", &start_totals)?;
    let buffers = kernels::vae_head::VaeHeadBuffers {
        z: &gz,
        eps: &geps,
        kl_totals: &gtotals,
        dstats: kl_grad.then_some(&gdstats),
        stats: &gstats,
        step: &step,
        label: glabel.as_ref().map(|label| (label, label_cols)),
    };
    let d = kernels::vae_head::vae_head_forward(
        v.ctx,
        &buffers,
        (rows, cols, samples),
        key.seed,
        key.stream,
        scale,
    )?;
    // ε and z: as check_reparameterize (Box-Muller's sin and cos, 2^-11 absolute by the
    // spec). KL totals: as check_kl's per-row bound, plus the add to the start. dμ: one
    // multiplication each side. dlogvar: as kl_backward.
    let z_allowed = move |i: usize, c: f32| 3e-3 * sigma[i] + 1e-5 * c.abs();
    let totals_allowed = move |_, c: f32| {
        cols as f32 * 2e-5 + sum_bound(cols + 4, 30.0 * cols as f32) + 2.0 * UNIT_ROUNDOFF * c.abs()
    };
    let outputs = vec![
        Output {
            name: "eps",
            gpu: &geps,
            cpu: eps,
            allowed: Box::new(abs_rel(3e-3, 1e-5)),
        },
        Output {
            name: "z",
            gpu: &gz,
            cpu: z,
            allowed: Box::new(z_allowed),
        },
        Output {
            name: "kl_totals",
            gpu: &gtotals,
            cpu: totals,
            allowed: Box::new(totals_allowed),
        },
    ];
    let dstats_output = kl_grad.then(|| Output {
        name: "dstats",
        gpu: &gdstats,
        cpu: dstats,
        allowed: stats_bound(
            cols,
            abs_rel(1e-7, 2.0 * UNIT_ROUNDOFF),
            abs_rel(scale * 2e-5 + 1e-7, 1e-6),
        ),
    });
    let outputs = outputs.into_iter().chain(dstats_output).collect();
    v.finish(
        "vae_head",
        head_shape(rows, cols, samples, label_cols),
        &[&d],
        outputs,
    )
}

fn check_corrupt(v: &mut Validator, noise: Noise, n: usize) -> Result<CheckResult> {
    let x = v.random(n, 0.0, 1.0);
    let key = NoiseKey {
        seed: 0x0dae_5eed ^ v.seed,
        step: 11,
        stream: 2,
    };
    let mut y = vec![0.0; n];
    cpu::corrupt::corrupt(&mut y, &x, noise, key)?;
    let (gx, step) = (v.upload("x", &x)?, v.upload("step", &[key.step])?);
    let gy = v.poisoned("y", n)?;
    let d = kernels::corrupt::corrupt(v.ctx, &gy, &gx, &step, n, noise, key)?;
    // Masking and salt and pepper compare the same 24-bit uniforms (exact in f32) with p:
    // identical results. Gaussian: Box-Muller's ε is within 3e-3 absolute (the spec's sin
    // and cos bound times a radius of at most 5.8, as for reparameterize), times σ; the
    // clamp to [0, 1] only shrinks a difference.
    let allowed = match noise {
        Noise::Gaussian { sigma } => abs_rel(3e-3 * sigma + 1e-6, 0.0),
        _ => abs_rel(0.0, 0.0),
    };
    let outputs = vec![Output {
        name: "y",
        gpu: &gy,
        cpu: y,
        allowed: Box::new(allowed),
    }];
    v.finish("corrupt", format!("{noise} {n}"), &[&d], outputs)
}

fn check_l1(v: &mut Validator, rows: usize, cols: usize) -> Result<CheckResult> {
    let x = v.random(rows * cols, -1.0, 1.0);
    let start_dx = v.random(rows * cols, -1.0, 1.0);
    let scale = 0.01;
    let mut loss = vec![0.0; rows];
    cpu::l1::l1_forward(&mut loss, &x, rows, cols)?;
    // The backward adds to a gradient, as the sparse autoencoder's code uses it.
    let mut dx = start_dx.clone();
    cpu::l1::l1_backward(&mut dx, &x, scale, true)?;
    let gx = v.upload("x", &x)?;
    let (gloss, gdx) = (v.poisoned("loss", rows)?, v.upload("dx", &start_dx)?);
    let fwd = kernels::l1::l1_forward(v.ctx, &gloss, &gx, rows, cols)?;
    let bwd = kernels::l1::l1_backward(v.ctx, &gdx, &gx, rows, cols, scale, true)?;
    // Forward: a sum of `cols` non-negative terms in two orders. Backward: ±scale (exact)
    // plus the start, one rounding.
    let outputs = vec![
        Output {
            name: "loss",
            gpu: &gloss,
            cpu: loss,
            allowed: Box::new(move |_, c: f32| sum_bound(cols, c.abs())),
        },
        Output {
            name: "dx",
            gpu: &gdx,
            cpu: dx,
            allowed: Box::new(abs_rel(0.0, UNIT_ROUNDOFF)),
        },
    ];
    v.finish("l1", format!("{rows}x{cols}"), &[&fwd, &bwd], outputs)
}

/// l1_forward_backward against the forward twin (its rows added to running totals) and the
/// backward twin (written).
fn check_l1_forward_backward(v: &mut Validator, rows: usize, cols: usize) -> Result<CheckResult> {
    let x = v.random(rows * cols, -1.0, 1.0);
    let start_totals = v.random(rows, 0.0, 100.0);
    let scale = 0.01;
    let mut loss = vec![0.0; rows];
    cpu::l1::l1_forward(&mut loss, &x, rows, cols)?;
    let totals: Vec<f32> = start_totals.iter().zip(&loss).map(|(t, l)| t + l).collect();
    let mut dx = vec![0.0; rows * cols];
    cpu::l1::l1_backward(&mut dx, &x, scale, false)?;
    let gx = v.upload("x", &x)?;
    let (gtotals, gdx) = (
        v.upload("totals", &start_totals)?,
        v.poisoned("dx", rows * cols)?,
    );
    let d = kernels::l1::l1_forward_backward(v.ctx, &gtotals, &gdx, &gx, rows, cols, scale)?;
    // Totals: the row's sum of `cols` non-negative terms in two orders (below the total),
    // then the add to the start. dx: ±scale, exact.
    let outputs = vec![
        Output {
            name: "totals",
            gpu: &gtotals,
            cpu: totals,
            allowed: Box::new(move |_, c: f32| sum_bound(cols + 1, c.abs())),
        },
        Output {
            name: "dx",
            gpu: &gdx,
            cpu: dx,
            allowed: Box::new(abs_rel(0.0, 0.0)),
        },
    ];
    v.finish(
        "l1_forward_backward",
        format!("{rows}x{cols}"),
        &[&d],
        outputs,
    )
}

fn check_kl_sparsity(v: &mut Validator, rows: usize, cols: usize) -> Result<CheckResult> {
    let rho = 0.05;
    // A sigmoid code's range, kept off the clamp at ε.
    let x = v.random(rows * cols, 0.02, 0.98);
    let start_dx = v.random(rows * cols, -1.0, 1.0);
    let scale = 0.1 / rows as f32;
    let (mut loss, mut rho_hat) = (vec![0.0; rows], vec![0.0; cols]);
    cpu::kl_sparsity::kl_sparsity_forward(&mut loss, &mut rho_hat, &x, rows, cols, rho)?;
    let mut dx = start_dx.clone();
    cpu::kl_sparsity::kl_sparsity_backward(&mut dx, &rho_hat, rows, rho, scale, true)?;
    let gx = v.upload("x", &x)?;
    let (gloss, grho_hat) = (v.poisoned("loss", rows)?, v.poisoned("rho_hat", cols)?);
    let gdx = v.upload("dx", &start_dx)?;
    // The backward reads the CPU's ρ̂ so that it is checked on its own.
    let rho_hat_given = v.upload("rho_hat given", &rho_hat)?;
    let fwd =
        kernels::kl_sparsity::kl_sparsity_forward(v.ctx, &gloss, &grho_hat, &gx, rows, cols, rho)?;
    let bwd = kernels::kl_sparsity::kl_sparsity_backward(
        v.ctx,
        &gdx,
        &rho_hat_given,
        rows,
        cols,
        rho,
        scale,
        true,
    )?;
    // ρ̂: a column sum of `rows` terms in [0, 1] and a division: sum_bound + u, relative.
    // Loss: Σ_c of terms whose derivative in ρ̂ is at most ρ/0.02 + 1/0.02 = 53, so ρ̂'s error
    // moves each by 53·Δρ̂; the logs add a few ULP of terms up to 4: 1e-5 per column; then a
    // sum of `cols` terms in two orders.
    let rho_hat_bound =
        move |_, c: f32| sum_bound(rows, rows as f32 * c) / rows as f32 + 2.0 * UNIT_ROUNDOFF * c;
    let loss_bound = move |_, c: f32| {
        cols as f32
            * (53.0 * (sum_bound(rows, rows as f32) / rows as f32 + 2.0 * UNIT_ROUNDOFF) + 1e-5)
            + sum_bound(cols, c.abs())
    };
    // Backward: two divisions, a sum, a product and the add to the start: 6u relative of
    // terms up to 53·scale, plus the add's rounding.
    let dx_bound = abs_rel(6.0 * UNIT_ROUNDOFF * 53.0 * scale, 2.0 * UNIT_ROUNDOFF);
    let outputs = vec![
        Output {
            name: "loss",
            gpu: &gloss,
            cpu: loss,
            allowed: Box::new(loss_bound),
        },
        Output {
            name: "rho_hat",
            gpu: &grho_hat,
            cpu: rho_hat,
            allowed: Box::new(rho_hat_bound),
        },
        Output {
            name: "dx",
            gpu: &gdx,
            cpu: dx,
            allowed: Box::new(dx_bound),
        },
    ];
    v.finish(
        "kl_sparsity",
        format!("{rows}x{cols}"),
        &[&fwd, &bwd],
        outputs,
    )
}

/// kl_sparsity_forward_backward against the forward twin (its rows added to running totals)
/// and the backward twin (written) on the twin's ρ̂. The code's values are multiples of 2⁻⁸ in
/// [0.25, 0.75], so that every column sum is exact in any order and ρ̂ differs only by its
/// division: dx, which the kernel computes from its own ρ̂, is then bounded tightly.
fn check_kl_sparsity_forward_backward(
    v: &mut Validator,
    rows: usize,
    cols: usize,
) -> Result<CheckResult> {
    let rho = 0.05;
    let x: Vec<f32> = v
        .random(rows * cols, 0.25, 0.75)
        .iter()
        .map(|x| (x * 256.0).round() / 256.0)
        .collect();
    let start_totals = v.random(rows, 0.0, 100.0);
    let scale = 0.1 / rows as f32;
    let (mut loss, mut rho_hat) = (vec![0.0; rows], vec![0.0; cols]);
    cpu::kl_sparsity::kl_sparsity_forward(&mut loss, &mut rho_hat, &x, rows, cols, rho)?;
    let totals: Vec<f32> = start_totals.iter().zip(&loss).map(|(t, l)| t + l).collect();
    let mut dx = vec![0.0; rows * cols];
    cpu::kl_sparsity::kl_sparsity_backward(&mut dx, &rho_hat, rows, rho, scale, false)?;
    let gx = v.upload("x", &x)?;
    let (gtotals, grho_hat) = (
        v.upload("totals", &start_totals)?,
        v.poisoned("rho_hat", cols)?,
    );
    let gdx = v.poisoned("dx", rows * cols)?;
    let d = kernels::kl_sparsity::kl_sparsity_forward_backward(
        v.ctx, &gtotals, &grho_hat, &gdx, &gx, rows, cols, rho, scale,
    )?;
    // ρ̂: the division, 3u relative (WGSL allows 2.5 ULP). Loss: as check_kl_sparsity's (its
    // bound holds for a wider range of the code), then the add to the start. dx: as the
    // backward's, plus its derivative in ρ̂ (at most scale · (ρ + 1 − ρ) / 0.25² = 16 · scale)
    // times ρ̂'s error.
    let rho_hat_bound = abs_rel(0.0, 3.0 * UNIT_ROUNDOFF);
    let loss_bound = move |_, c: f32| {
        cols as f32 * (53.0 * 3.0 * UNIT_ROUNDOFF + 1e-5) + sum_bound(cols + 1, c.abs())
    };
    let dx_bound = abs_rel(
        6.0 * UNIT_ROUNDOFF * 53.0 * scale + 16.0 * scale * 3.0 * UNIT_ROUNDOFF,
        0.0,
    );
    let outputs = vec![
        Output {
            name: "totals",
            gpu: &gtotals,
            cpu: totals,
            allowed: Box::new(loss_bound),
        },
        Output {
            name: "rho_hat",
            gpu: &grho_hat,
            cpu: rho_hat,
            allowed: Box::new(rho_hat_bound),
        },
        Output {
            name: "dx",
            gpu: &gdx,
            cpu: dx,
            allowed: Box::new(dx_bound),
        },
    ];
    v.finish(
        "kl_sparsity_forward_backward",
        format!("{rows}x{cols}"),
        &[&d],
        outputs,
    )
}

fn check_concat(
    v: &mut Validator,
    rows: usize,
    cols_a: usize,
    cols_b: usize,
) -> Result<CheckResult> {
    let width = cols_a + cols_b;
    let (a, b) = (
        v.random(rows * cols_a, -1.0, 1.0),
        v.random(rows * cols_b, -1.0, 1.0),
    );
    let dy = v.random(rows * width, -1.0, 1.0);
    let start_db = v.random(rows * cols_b, -1.0, 1.0);
    let mut y = vec![0.0; rows * width];
    cpu::concat::concat_cols(&mut y, &a, &b, rows, cols_a, cols_b)?;
    // The backward: a's gradient written, b's added to a start.
    let mut da = vec![0.0; rows * cols_a];
    cpu::concat::slice_cols(&mut da, &dy, rows, width, 0, false)?;
    let mut db = start_db.clone();
    cpu::concat::slice_cols(&mut db, &dy, rows, width, cols_a, true)?;
    let (ga, gb, gdy) = (v.upload("a", &a)?, v.upload("b", &b)?, v.upload("dy", &dy)?);
    let (gy, gda) = (
        v.poisoned("y", rows * width)?,
        v.poisoned("da", rows * cols_a)?,
    );
    let gdb = v.upload("db", &start_db)?;
    let ctx = v.ctx;
    let dispatches = [
        kernels::concat::concat_cols(ctx, &gy, &ga, &gb, rows, cols_a, cols_b)?,
        kernels::concat::slice_cols(ctx, &gda, &gdy, rows, cols_a, width, 0, false)?,
        kernels::concat::slice_cols(ctx, &gdb, &gdy, rows, cols_b, width, cols_a, true)?,
    ];
    // Copies are exact; the accumulated slice is one f32 addition on both sides.
    let outputs = vec![
        Output {
            name: "y",
            gpu: &gy,
            cpu: y,
            allowed: Box::new(abs_rel(0.0, 0.0)),
        },
        Output {
            name: "da",
            gpu: &gda,
            cpu: da,
            allowed: Box::new(abs_rel(0.0, 0.0)),
        },
        Output {
            name: "db",
            gpu: &gdb,
            cpu: db,
            allowed: Box::new(abs_rel(0.0, UNIT_ROUNDOFF)),
        },
    ];
    let refs: Vec<&kernels::Dispatch> = dispatches.iter().collect();
    v.finish(
        "concat",
        format!("{rows}x({cols_a}+{cols_b})"),
        &refs,
        outputs,
    )
}

fn check_repeat_rows(v: &mut Validator, rows: usize, cols: usize, k: usize) -> Result<CheckResult> {
    let x = v.random(rows * cols, -1.0, 1.0);
    let dy = v.random(rows * k * cols, -1.0, 1.0);
    let start_dx = v.random(rows * cols, -1.0, 1.0);
    let mut y = vec![0.0; rows * k * cols];
    cpu::repeat_rows::repeat_rows(&mut y, &x, rows, cols, k)?;
    // The backward written, and added to a start.
    let mut dx = vec![0.0; rows * cols];
    cpu::repeat_rows::sum_row_groups(&mut dx, &dy, rows, cols, k, false)?;
    let mut dx_added = start_dx.clone();
    cpu::repeat_rows::sum_row_groups(&mut dx_added, &dy, rows, cols, k, true)?;
    let (gx, gdy) = (v.upload("x", &x)?, v.upload("dy", &dy)?);
    let (gy, gdx) = (
        v.poisoned("y", rows * k * cols)?,
        v.poisoned("dx", rows * cols)?,
    );
    let gdx_added = v.upload("dx added", &start_dx)?;
    let ctx = v.ctx;
    let dispatches = [
        kernels::repeat_rows::repeat_rows(ctx, &gy, &gx, rows, cols, k)?,
        kernels::repeat_rows::sum_row_groups(ctx, &gdx, &gdy, rows, cols, k, false)?,
        kernels::repeat_rows::sum_row_groups(ctx, &gdx_added, &gdy, rows, cols, k, true)?,
    ];
    // Copies are exact; both sides sum a group's k rows in the same order, in f32, so the
    // sums agree to the bit.
    let outputs = vec![
        Output {
            name: "y",
            gpu: &gy,
            cpu: y,
            allowed: Box::new(abs_rel(0.0, 0.0)),
        },
        Output {
            name: "dx",
            gpu: &gdx,
            cpu: dx,
            allowed: Box::new(abs_rel(0.0, 0.0)),
        },
        Output {
            name: "dx added",
            gpu: &gdx_added,
            cpu: dx_added,
            allowed: Box::new(abs_rel(0.0, 0.0)),
        },
    ];
    let refs: Vec<&kernels::Dispatch> = dispatches.iter().collect();
    v.finish("repeat_rows", format!("{rows}x{cols}x{k}"), &refs, outputs)
}

/// The log weights against their twin; with a stats repeat, the GPU reads each row of stats
/// for `repeat` rows of z and the twin reads the stats repeated.
fn check_log_weight(
    v: &mut Validator,
    rows: usize,
    cols: usize,
    repeat: usize,
) -> Result<CheckResult> {
    let recon = v.random(rows, 0.0, 200.0);
    let z = v.random(rows * cols, -4.0, 4.0);
    let eps = v.random(rows * cols, -4.0, 4.0);
    let (given, stats) = repeated_stats(v, (rows, cols, repeat), (-6.0, 2.0))?;
    let mut logw = vec![0.0; rows];
    cpu::log_weight::log_weight(&mut logw, &recon, &z, &eps, &stats, cols, 1.0)?;
    let (grecon, gz) = (v.upload("recon", &recon)?, v.upload("z", &z)?);
    let (geps, gstats) = (v.upload("eps", &eps)?, v.upload("stats", &given)?);
    let glogw = v.poisoned("logw", rows)?;
    let d = kernels::log_weight::log_weight(
        v.ctx,
        &glogw,
        &grecon,
        &gz,
        &geps,
        (&gstats, repeat),
        rows,
        cols,
        1.0,
    )?;
    // A sum of `cols` terms of three products and two subtractions each (|term| ≤ 38) in
    // two orders, plus recon (≤ 200) and one subtraction: sum_bound over the magnitudes.
    let bound = sum_bound(cols + 4, 38.0 * cols as f32 + 200.0);
    let outputs = vec![Output {
        name: "logw",
        gpu: &glogw,
        cpu: logw,
        allowed: Box::new(abs_rel(bound, 0.0)),
    }];
    v.finish(
        "log_weight",
        repeat_shape(rows, cols, repeat),
        &[&d],
        outputs,
    )
}

fn check_log_mean_exp(v: &mut Validator, groups: usize, k: usize) -> Result<CheckResult> {
    // Log weights of a real model: large negative, spread over tens of nats.
    let logw = v.random(groups * k, -150.0, -90.0);
    let mut out = vec![0.0; groups * k];
    cpu::log_mean_exp::neg_log_mean_exp(&mut out, &logw, k)?;
    let glogw = v.upload("logw", &logw)?;
    let gout = v.poisoned("out", groups * k)?;
    let d = kernels::log_mean_exp::neg_log_mean_exp(v.ctx, &gout, &glogw, groups * k, k)?;
    // The max is exact; Σ e^(l − m) of terms in (0, 1] in two orders (sum_bound relative)
    // with exp of arguments down to −60 good to 3 + 2·60 ULP (1.5e-5 relative, the spec's
    // bound); the log moves by that relative error, absolutely; adding m (≤ 150) rounds by
    // 150·u.
    let allowed = move |_, _c: f32| sum_bound(k, 1.0) + 1.5e-5 + 150.0 * 2.0 * UNIT_ROUNDOFF;
    let outputs = vec![Output {
        name: "out",
        gpu: &gout,
        cpu: out,
        allowed: Box::new(allowed),
    }];
    v.finish(
        "neg_log_mean_exp",
        format!("{groups} groups of {k}"),
        &[&d],
        outputs,
    )
}

fn check_log_weight_backward(v: &mut Validator, rows: usize, cols: usize) -> Result<CheckResult> {
    let n = rows * cols;
    let z = v.random(n, -4.0, 4.0);
    let dlogw = v.random(rows, -1.0, 1.0);
    // Both flag settings, one dispatch each. First: dz adds to a gradient (the decoder's),
    // dstats is written whole, its μ half with zeros (into NaN, so a μ half left alone fails).
    let start_dz = v.random(n, -1.0, 1.0);
    let (mut dz_added, mut dstats_written) = (start_dz.clone(), vec![0.0; 2 * n]);
    cpu::log_weight::log_weight_backward(
        &mut dz_added,
        &mut dstats_written,
        &dlogw,
        &z,
        true,
        false,
    )?;
    // Second: dz written, dstats added to (its μ half left as it was).
    let start_dstats = v.random(2 * n, -1.0, 1.0);
    let (mut dz_written, mut dstats_added) = (vec![0.0; n], start_dstats.clone());
    cpu::log_weight::log_weight_backward(
        &mut dz_written,
        &mut dstats_added,
        &dlogw,
        &z,
        false,
        true,
    )?;
    let (gz, gdlogw) = (v.upload("z", &z)?, v.upload("dlogw", &dlogw)?);
    let gdz_added = v.upload("dz added", &start_dz)?;
    let gdstats_written = v.poisoned("dstats written", 2 * n)?;
    let gdz_written = v.poisoned("dz written", n)?;
    let gdstats_added = v.upload("dstats added", &start_dstats)?;
    let first = kernels::log_weight::log_weight_backward(
        v.ctx,
        &gdz_added,
        &gdstats_written,
        &gdlogw,
        &gz,
        rows,
        cols,
        true,
        false,
    )?;
    let second = kernels::log_weight::log_weight_backward(
        v.ctx,
        &gdz_written,
        &gdstats_added,
        &gdlogw,
        &gz,
        rows,
        cols,
        false,
        true,
    )?;
    // A product and an add (dz), a product by ½ (exact) and an add (dlogvar): two roundings
    // at most; zeros and the untouched μ half exactly.
    let outputs = vec![
        Output {
            name: "dz added",
            gpu: &gdz_added,
            cpu: dz_added,
            allowed: Box::new(abs_rel(4.0 * UNIT_ROUNDOFF, 2.0 * UNIT_ROUNDOFF)),
        },
        Output {
            name: "dstats written",
            gpu: &gdstats_written,
            cpu: dstats_written,
            allowed: Box::new(abs_rel(0.0, 0.0)),
        },
        Output {
            name: "dz written",
            gpu: &gdz_written,
            cpu: dz_written,
            allowed: Box::new(abs_rel(4.0 * UNIT_ROUNDOFF, 2.0 * UNIT_ROUNDOFF)),
        },
        Output {
            name: "dstats added",
            gpu: &gdstats_added,
            cpu: dstats_added,
            allowed: stats_bound(cols, abs_rel(0.0, 0.0), abs_rel(0.0, 2.0 * UNIT_ROUNDOFF)),
        },
    ];
    v.finish(
        "log_weight_backward",
        format!("{rows}x{cols}"),
        &[&first, &second],
        outputs,
    )
}

fn check_log_mean_exp_backward(v: &mut Validator, groups: usize, k: usize) -> Result<CheckResult> {
    let logw = v.random(groups * k, -150.0, -90.0);
    let scale = 0.2;
    let mut dlogw = vec![0.0; groups * k];
    cpu::log_mean_exp::neg_log_mean_exp_backward(&mut dlogw, &logw, k, scale)?;
    let glogw = v.upload("logw", &logw)?;
    let gd = v.poisoned("dlogw", groups * k)?;
    let d =
        kernels::log_mean_exp::neg_log_mean_exp_backward(v.ctx, &gd, &glogw, groups * k, k, scale)?;
    // −scale·k·e^(l − m)/Σ: the sum to sum_bound(k) relative; exp of arguments down to −60
    // is good to 3 + 2·60 ULP (the spec's bound), 1.5e-5 relative, in the term and in the
    // sum; a division and two products.
    let allowed = abs_rel(0.0, sum_bound(k, 1.0) + 3e-5 + 4.0 * UNIT_ROUNDOFF);
    let outputs = vec![Output {
        name: "dlogw",
        gpu: &gd,
        cpu: dlogw,
        allowed: Box::new(allowed),
    }];
    v.finish(
        "neg_log_mean_exp_backward",
        format!("{groups} groups of {k}"),
        &[&d],
        outputs,
    )
}

/// neg_log_mean_exp_forward_backward against the forward twin (its rows added to running
/// totals) and the backward twin (written).
fn check_log_mean_exp_forward_backward(
    v: &mut Validator,
    groups: usize,
    k: usize,
) -> Result<CheckResult> {
    let rows = groups * k;
    let logw = v.random(rows, -150.0, -90.0);
    let start_totals = v.random(rows, 0.0, 100.0);
    let scale = 0.2;
    let mut out = vec![0.0; rows];
    cpu::log_mean_exp::neg_log_mean_exp(&mut out, &logw, k)?;
    let totals: Vec<f32> = start_totals.iter().zip(&out).map(|(t, o)| t + o).collect();
    let mut dlogw = vec![0.0; rows];
    cpu::log_mean_exp::neg_log_mean_exp_backward(&mut dlogw, &logw, k, scale)?;
    let glogw = v.upload("logw", &logw)?;
    let (gtotals, gd) = (
        v.upload("totals", &start_totals)?,
        v.poisoned("dlogw", rows)?,
    );
    let d = kernels::log_mean_exp::neg_log_mean_exp_forward_backward(
        v.ctx,
        &gtotals,
        &gd,
        &glogw,
        (rows, k),
        scale,
    )?;
    // As check_log_mean_exp's and check_log_mean_exp_backward's bounds, the totals with the
    // add to the start (a rounding of the sum, up to 250).
    let totals_allowed = move |_, _c: f32| {
        sum_bound(k, 1.0) + 1.5e-5 + 150.0 * 2.0 * UNIT_ROUNDOFF + 250.0 * UNIT_ROUNDOFF
    };
    let dlogw_allowed = abs_rel(0.0, sum_bound(k, 1.0) + 3e-5 + 4.0 * UNIT_ROUNDOFF);
    let outputs = vec![
        Output {
            name: "totals",
            gpu: &gtotals,
            cpu: totals,
            allowed: Box::new(totals_allowed),
        },
        Output {
            name: "dlogw",
            gpu: &gd,
            cpu: dlogw,
            allowed: Box::new(dlogw_allowed),
        },
    ];
    v.finish(
        "neg_log_mean_exp_forward_backward",
        format!("{groups} groups of {k}"),
        &[&d],
        outputs,
    )
}

/// `n` random multiples of `step` in [lo, hi].
fn multiples_of(v: &mut Validator, n: usize, (lo, hi): (f32, f32), step: f32) -> Vec<f32> {
    v.random(n, lo, hi)
        .iter()
        .map(|x| (x / step).round() * step)
        .collect()
}

/// The latent inputs of a check of the fused bound: z and ε (rows, cols), multiples of 2⁻⁴
/// in [−1, 1], and μ | logvar of the data rows (`given`, rows / repeat) and repeated for
/// each row of z (`stats`, for the twin).
struct BoundInputs {
    z: Vec<f32>,
    eps: Vec<f32>,
    given: Vec<f32>,
    stats: Vec<f32>,
}

fn bound_inputs(v: &mut Validator, rows: usize, cols: usize, repeat: usize) -> Result<BoundInputs> {
    let n = rows * cols;
    let z = multiples_of(v, n, (-1.0, 1.0), 1.0 / 16.0);
    let eps = multiples_of(v, n, (-1.0, 1.0), 1.0 / 16.0);
    let given = multiples_of(v, rows / repeat * 2 * cols, (-1.0, 1.0), 1.0 / 16.0);
    let mut stats = vec![0.0; n * 2];
    cpu::repeat_rows::repeat_rows(&mut stats, &given, rows / repeat, 2 * cols, repeat)?;
    Ok(BoundInputs {
        z,
        eps,
        given,
        stats,
    })
}

/// The fused bound's outputs (totals, dlogw, dz, dstats: the GPU's buffers beside the twin's
/// values) with what each may differ by, for log weights `logw` exact in any order of their
/// sums: what is left to bound is exp, log and the sums of exps. Also returns dlogw's
/// relative bound.
fn bound_outputs<'a>(
    gpu: [&'a GpuBuffer; 4],
    cpu: [Vec<f32>; 4],
    logw: &[f32],
    k: usize,
) -> (Vec<Output<'a>>, f32) {
    // The widest spread of a group's log weights: the largest argument of exp.
    let spread = logw
        .chunks(k)
        .map(|g| {
            let (lo, hi) = g
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &l| (a.min(l), b.max(l)));
            hi - lo
        })
        .fold(0.0, f32::max);
    let largest = logw.iter().fold(0.0f32, |a, l| a.max(l.abs()));
    // exp of arguments down to −spread: 3 + 2·spread ULP (the spec's bound), relative, in
    // each term of the sum (in the same order on both sides) and in dlogw's own; the sum's
    // rounding; a division and two products. dz and dlogvar: one product more (½ exactly).
    let exp_relative = (3.0 + 2.0 * spread) * 2.0 * UNIT_ROUNDOFF;
    let dlogw_relative = sum_bound(k, 1.0) + 2.0 * exp_relative + 4.0 * UNIT_ROUNDOFF;
    // The bound: the log of the mean (2⁻²¹ absolute or 3 ULP of up to ln k) moved by the
    // sum's relative error, the max (exact) added, −bound added to the start.
    let log_error = 2f32.powi(-21) + 6.0 * UNIT_ROUNDOFF * (k as f32).ln();
    let totals_allowed = move |_, c: f32| {
        sum_bound(k, 1.0) + exp_relative + log_error + 2.0 * UNIT_ROUNDOFF * (largest + c.abs())
    };
    let [gtotals, gdlogw, gdz, gdstats] = gpu;
    let [totals, dlogw, dz, dstats] = cpu;
    let outputs = vec![
        Output {
            name: "totals",
            gpu: gtotals,
            cpu: totals,
            allowed: Box::new(totals_allowed),
        },
        Output {
            name: "dlogw",
            gpu: gdlogw,
            cpu: dlogw,
            allowed: Box::new(abs_rel(0.0, dlogw_relative)),
        },
        Output {
            name: "dz",
            gpu: gdz,
            cpu: dz,
            allowed: Box::new(abs_rel(0.0, dlogw_relative + 2.0 * UNIT_ROUNDOFF)),
        },
        Output {
            name: "dstats",
            gpu: gdstats,
            cpu: dstats,
            allowed: Box::new(abs_rel(0.0, dlogw_relative + 2.0 * UNIT_ROUNDOFF)),
        },
    ];
    (outputs, dlogw_relative)
}

/// iwae_bound_forward_backward against its twin (the log weights', the bound's and their
/// backwards' twins), the totals added to a random start; with a stats repeat, the GPU reads
/// each row of stats for `repeat` rows of z and the twin reads the stats repeated. z, ε and
/// logvar are multiples of 2⁻⁴ in [−1, 1] and recon of 2⁻⁸ in [90, 150] (weight ½), so that
/// every log weight is exact in any order of its sum.
fn check_iwae_bound(
    v: &mut Validator,
    (groups, cols, k): (usize, usize, usize),
    repeat: usize,
) -> Result<CheckResult> {
    let (rows, n) = (groups * k, groups * k * cols);
    let (recon_weight, scale) = (0.5, 0.2);
    let recon = multiples_of(v, rows, (90.0, 150.0), 1.0 / 256.0);
    let BoundInputs {
        z,
        eps,
        given,
        stats,
    } = bound_inputs(v, rows, cols, repeat)?;
    let start_totals = v.random(rows, 0.0, 100.0);
    let (mut totals, mut dlogw) = (start_totals.clone(), vec![0.0; rows]);
    let (mut dz, mut dstats) = (vec![0.0; n], vec![0.0; 2 * n]);
    cpu::iwae_bound::iwae_bound_forward_backward(
        cpu::iwae_bound::IwaeBoundOut {
            totals: &mut totals,
            dlogw: &mut dlogw,
            dz: &mut dz,
            dstats: &mut dstats,
        },
        (&recon, &z, &eps, &stats),
        (cols, k),
        (recon_weight, scale),
    )?;
    let mut logw = vec![0.0; rows];
    cpu::log_weight::log_weight(&mut logw, &recon, &z, &eps, &stats, cols, recon_weight)?;
    let gtotals = v.upload("totals", &start_totals)?;
    let (gdlogw, gdz) = (v.poisoned("dlogw", rows)?, v.poisoned("dz", n)?);
    let gdstats = v.poisoned("dstats", 2 * n)?;
    let (grecon, gz) = (v.upload("recon", &recon)?, v.upload("z", &z)?);
    let (geps, gstats) = (v.upload("eps", &eps)?, v.upload("stats", &given)?);
    let buffers = kernels::iwae_bound::IwaeBoundBuffers {
        totals: &gtotals,
        dlogw: &gdlogw,
        dz: &gdz,
        dstats: &gdstats,
        recon: &grecon,
        z: &gz,
        eps: &geps,
        stats: (&gstats, repeat),
    };
    let d = kernels::iwae_bound::iwae_bound_forward_backward(
        v.ctx,
        &buffers,
        (rows, cols, k),
        (recon_weight, scale),
    )?;
    let gpu = [&gtotals, &gdlogw, &gdz, &gdstats];
    let (outputs, _) = bound_outputs(gpu, [totals, dlogw, dz, dstats], &logw, k);
    v.finish(
        "iwae_bound_forward_backward",
        iwae_bound_shape((groups, cols, k), repeat),
        &[&d],
        outputs,
    )
}

/// iwae_bound_with_recon against its twin (bce_forward or mse_forward, the fused bound's
/// twin, bce_backward_rows or mse_backward_rows), the running totals added to random starts;
/// the target (with `repeat`, the data rows' as the GPU reads an IWAE's) of multiples of
/// 2⁻⁴ in (0, 1), and `out` of 2⁻⁴ too, so every element of the loss and its derivative is
/// exact: for MSE in [−4, 4]; for BCE logits of 20 to 30 in magnitude, where log(1 + e^-|z|)
/// and σ's distance from 0 or 1 fall below half an ULP of the rest (the shared
/// lib/row_loss.wgsl's forms are checked near 0 by the bce checks). The loss rows are then
/// exact in any order and the log weights too (the latent inputs as check_iwae_bound's,
/// the loss rows' weight 2⁻⁶).
fn check_iwae_bound_with_recon(
    v: &mut Validator,
    (groups, cols, k): (usize, usize, usize),
    (mse, recon_cols, repeat): (bool, usize, usize),
) -> Result<CheckResult> {
    let (rows, n, recon_n) = (groups * k, groups * k * cols, groups * k * recon_cols);
    // A weight of 2⁻⁶ keeps the log weights exact and a group's spread of them small (300
    // columns of loss add up to thousands; a wide spread underflows e^(logw − max)).
    let (recon_weight, scale) = (1.0 / 64.0, 0.2);
    let loss = kernels::iwae_bound::ReconLoss {
        mse,
        cols: recon_cols,
        scale: 0.25,
        factor: -recon_weight,
    };
    let out: Vec<f32> = if mse {
        multiples_of(v, recon_n, (-4.0, 4.0), 1.0 / 16.0)
    } else {
        let magnitude = multiples_of(v, recon_n, (20.0, 30.0), 1.0 / 16.0);
        let sign = v.random(recon_n, -1.0, 1.0);
        magnitude
            .iter()
            .zip(&sign)
            .map(|(m, s)| m.copysign(*s))
            .collect()
    };
    let target = multiples_of(
        v,
        rows / repeat * recon_cols,
        (1.0 / 16.0, 15.0 / 16.0),
        1.0 / 16.0,
    );
    let mut repeated = vec![0.0; recon_n];
    cpu::repeat_rows::repeat_rows(&mut repeated, &target, rows / repeat, recon_cols, repeat)?;
    let BoundInputs {
        z,
        eps,
        given,
        stats,
    } = bound_inputs(v, rows, cols, repeat)?;
    let (start_totals, start_recon) = (v.random(rows, 0.0, 100.0), v.random(rows, 0.0, 100.0));
    let (mut totals, mut recon_totals) = (start_totals.clone(), start_recon.clone());
    let (mut dlogw, mut dz, mut dstats) = (vec![0.0; rows], vec![0.0; n], vec![0.0; 2 * n]);
    let mut dout = vec![0.0; recon_n];
    let bound_out = cpu::iwae_bound::IwaeBoundOut {
        totals: &mut totals,
        dlogw: &mut dlogw,
        dz: &mut dz,
        dstats: &mut dstats,
    };
    let recon_out = cpu::iwae_bound::ReconOut {
        recon_totals: &mut recon_totals,
        dout: &mut dout,
    };
    cpu::iwae_bound::iwae_bound_with_recon(
        (bound_out, recon_out),
        (&out, &repeated),
        (&z, &eps, &stats),
        (cols, k),
        (recon_weight, scale),
        loss,
    )?;
    // The log weights, from the loss rows (exact).
    let recon: Vec<f32> = recon_totals
        .iter()
        .zip(&start_recon)
        .map(|(t, s)| t - s)
        .collect();
    let mut logw = vec![0.0; rows];
    cpu::log_weight::log_weight(&mut logw, &recon, &z, &eps, &stats, cols, recon_weight)?;
    let (gtotals, grecon_totals) = (
        v.upload("totals", &start_totals)?,
        v.upload("recon_totals", &start_recon)?,
    );
    let (gdlogw, gdz) = (v.poisoned("dlogw", rows)?, v.poisoned("dz", n)?);
    let (gdstats, gdout) = (v.poisoned("dstats", 2 * n)?, v.poisoned("dout", recon_n)?);
    let (gz, geps, gstats) = (
        v.upload("z", &z)?,
        v.upload("eps", &eps)?,
        v.upload("stats", &given)?,
    );
    let (gout, gtarget) = (v.upload("out", &out)?, v.upload("target", &target)?);
    // The loss rows' own buffer, which the fused kernel does not read.
    let unread = v.poisoned("recon", rows)?;
    let buffers = kernels::iwae_bound::IwaeBoundBuffers {
        totals: &gtotals,
        dlogw: &gdlogw,
        dz: &gdz,
        dstats: &gdstats,
        recon: &unread,
        z: &gz,
        eps: &geps,
        stats: (&gstats, repeat),
    };
    let recon_buffers = kernels::iwae_bound::ReconBuffers {
        recon_totals: &grecon_totals,
        dout: &gdout,
        out: &gout,
        target: (&gtarget, repeat),
    };
    let d = kernels::iwae_bound::iwae_bound_with_recon(
        v.ctx,
        &buffers,
        &recon_buffers,
        (rows, cols, k),
        (recon_weight, scale),
        loss,
    )?;
    let gpu = [&gtotals, &gdlogw, &gdz, &gdstats];
    let (mut outputs, dlogw_relative) =
        bound_outputs(gpu, [totals, dlogw.clone(), dz, dstats], &logw, k);
    // The loss rows exact, added to the start: one rounding on both sides.
    outputs.push(Output {
        name: "recon_totals",
        gpu: &grecon_totals,
        cpu: recon_totals,
        allowed: Box::new(|_, _| 0.0),
    });
    // dout = (scale + factor·dlogw)·g with g exact: dlogw's error times |factor·g|, and two
    // roundings of d_loss and one of the product.
    let allowed_dout = move |i: usize, c: f32| {
        let (d, g) = (
            dlogw[i / recon_cols],
            c / (loss.scale + loss.factor * dlogw[i / recon_cols]),
        );
        (loss.factor * d * g).abs() * dlogw_relative + 4.0 * UNIT_ROUNDOFF * c.abs()
    };
    outputs.push(Output {
        name: "dout",
        gpu: &gdout,
        cpu: dout,
        allowed: Box::new(allowed_dout),
    });
    let form = if mse { "mse" } else { "bce" };
    v.finish(
        "iwae_bound_with_recon",
        format!(
            "{}, {form} of {recon_cols}",
            iwae_bound_shape((groups, cols, k), repeat)
        ),
        &[&d],
        outputs,
    )
}

/// A check's shape: groups of k samples of cols latent columns, and whether stats are the
/// data rows'.
fn iwae_bound_shape((groups, cols, k): (usize, usize, usize), repeat: usize) -> String {
    let stats = if repeat == 1 {
        ""
    } else {
        ", stats of the data rows"
    };
    format!("{groups} groups of {k}x{cols}{stats}")
}

fn check_adam(v: &mut Validator, n: usize, step: u32) -> Result<CheckResult> {
    let config = cpu::adam::AdamConfig {
        weight_decay: 0.01,
        ..Default::default()
    };
    let param = v.random(n, -1.0, 1.0);
    let grad = v.random(n, -1.0, 1.0);
    // Moments as after a few steps: m of gradient size, v positive.
    let m = if step == 1 {
        vec![0.0; n]
    } else {
        v.random(n, -0.1, 0.1)
    };
    let second = if step == 1 {
        vec![0.0; n]
    } else {
        v.random(n, 0.0, 0.01)
    };
    let (mut p_cpu, mut m_cpu, mut v_cpu) = (param.clone(), m.clone(), second.clone());
    cpu::adam::adam_step(&mut p_cpu, &mut m_cpu, &mut v_cpu, &grad, step, &config)?;

    let (gp, gm, gv) = (
        v.upload("param", &param)?,
        v.upload("m", &m)?,
        v.upload("v", &second)?,
    );
    let gg = v.upload("grad", &grad)?;
    let table = v.upload("step scalars", &config.step_scalar_table(step))?;
    let state = v.upload("state", &[step, 0])?;
    let dispatch = kernels::adam::adam_step(v.ctx, &gp, &gm, &gv, &gg, &table, &state, n, &config)?;
    // m, v: two multiplications and an add: 4u relative. param: the update Δ goes through
    // sqrt, two divisions (2.5 ULP each in Vulkan) and products: 16u of |Δ|, plus the final
    // subtraction's rounding, 2u of |param| + |Δ|.
    let update: Vec<f32> = p_cpu
        .iter()
        .zip(&param)
        .map(|(new, old)| (new - old).abs())
        .collect();
    let param_abs: Vec<f32> = param.iter().map(|p| p.abs()).collect();
    let param_allowed = move |i: usize, _c: f32| {
        16.0 * UNIT_ROUNDOFF * update[i] + 2.0 * UNIT_ROUNDOFF * (param_abs[i] + update[i])
    };
    let outputs = vec![
        Output {
            name: "param",
            gpu: &gp,
            cpu: p_cpu,
            allowed: Box::new(param_allowed),
        },
        Output {
            name: "m",
            gpu: &gm,
            cpu: m_cpu,
            allowed: Box::new(abs_rel(1e-12, 4.0 * UNIT_ROUNDOFF)),
        },
        Output {
            name: "v",
            gpu: &gv,
            cpu: v_cpu,
            allowed: Box::new(abs_rel(1e-12, 4.0 * UNIT_ROUNDOFF)),
        },
    ];
    v.finish(
        "adam_step",
        format!("{n} step {step}"),
        &[&dispatch],
        outputs,
    )
}

fn check_sgd(v: &mut Validator, n: usize, step: u32, nesterov: bool) -> Result<CheckResult> {
    let config = cpu::sgd::SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 1e-3,
        nesterov,
    };
    let param = v.random(n, -1.0, 1.0);
    let grad = v.random(n, -1.0, 1.0);
    let buffer = v.random(n, -1.0, 1.0);
    let (mut p_cpu, mut b_cpu) = (param.clone(), buffer.clone());
    cpu::sgd::sgd_step(&mut p_cpu, &mut b_cpu, &grad, step, &config)?;

    let (gp, gb, gg) = (
        v.upload("param", &param)?,
        v.upload("momentum", &buffer)?,
        v.upload("grad", &grad)?,
    );
    let gstep = v.upload("step", &[step])?;
    let dispatch = kernels::sgd::sgd_step(v.ctx, &gp, &gb, &gg, &gstep, n, &config)?;
    // A handful of multiply-adds on values of size ≤ 2: 8u relative of the largest term.
    let outputs = vec![
        Output {
            name: "param",
            gpu: &gp,
            cpu: p_cpu,
            allowed: Box::new(abs_rel(16.0 * UNIT_ROUNDOFF, 4.0 * UNIT_ROUNDOFF)),
        },
        Output {
            name: "momentum",
            gpu: &gb,
            cpu: b_cpu,
            allowed: Box::new(abs_rel(16.0 * UNIT_ROUNDOFF, 4.0 * UNIT_ROUNDOFF)),
        },
    ];
    let label = format!("{n} step {step}{}", if nesterov { " nesterov" } else { "" });
    v.finish("sgd_step", label, &[&dispatch], outputs)
}

/// The shape of a gather check: a batch of `rows` from `data_rows` rows of `width` bytes or
/// floats, in shards of `shard_rows` rows (else the adapter's own binding limit), by index or
/// `in_order`.
#[derive(Clone, Copy)]
struct GatherShape {
    rows: usize,
    width: usize,
    data_rows: usize,
    shard_rows: Option<usize>,
    bytes: bool,
    in_order: bool,
}

impl GatherShape {
    fn name(&self) -> String {
        let shards = self.shard_rows.map_or(String::new(), |r| {
            format!(" in {} shards", self.data_rows.div_ceil(r))
        });
        let kind = if self.bytes { "bytes" } else { "floats" };
        let order = if self.in_order { " in order" } else { "" };
        format!(
            "{} of {}x{} {kind}{shards}{order}",
            self.rows, self.data_rows, self.width
        )
    }
}

/// What a gather check draws: the epoch's index list and the batch's cursor in it, the data
/// set on the GPU, and the batch its twin gathers.
struct GatheredBatch {
    cursor: usize,
    indices: Vec<u32>,
    data: DataShards,
    x: Vec<f32>,
}

/// A random data set of `shape` (in [0, 1]) on the GPU and its batch by the twins. The batch
/// starts at a cursor inside a longer index list, as in the middle of an epoch; one index
/// past the end of the data set checks the zero-row rule. In order, the GPU reads no index
/// list (the twin takes rows 0, 1, 2, ...), and the batch starts half a batch before the
/// set's end: its second half is zero rows.
fn gathered_batch(v: &mut Validator, shape: &GatherShape) -> Result<GatheredBatch> {
    let &GatherShape {
        rows,
        width,
        data_rows,
        shard_rows,
        bytes,
        in_order,
    } = shape;
    let (cursor, indices) = if in_order {
        let cursor = data_rows - rows / 2;
        (cursor, (0..(cursor + rows) as u32).collect())
    } else {
        let cursor = 5;
        let mut indices = v.random_u32(cursor + rows + 7, data_rows as u32);
        if rows > 1 {
            indices[cursor + rows - 1] = data_rows as u32 + 3;
        }
        (cursor, indices)
    };
    let mut x = vec![0.0; rows * width];
    let data = if bytes {
        let data: Vec<u8> = v
            .random_u32(data_rows * width, 256)
            .into_iter()
            .map(|b| b as u8)
            .collect();
        cpu::gather::gather_u8(&mut x, &data, &indices, cursor, width)?;
        // Shards of shard_rows rows: their bytes, rounded up to whole words.
        let cap = shard_rows.map_or(v.ctx.max_binding_bytes(), |r| {
            (r * width).next_multiple_of(4) as u64
        });
        DataShards::upload_u8(v.ctx, "data", &data, (data_rows, width), cap)?
    } else {
        let data = v.random(data_rows * width, 0.0, 1.0);
        cpu::gather::gather_f32(&mut x, &data, &indices, cursor, width)?;
        let cap = shard_rows.map_or(v.ctx.max_binding_bytes(), |r| (4 * r * width) as u64);
        DataShards::upload_f32(v.ctx, "data", &data, (data_rows, width), cap)?
    };
    Ok(GatheredBatch {
        cursor,
        indices,
        data,
        x,
    })
}

/// The allowed error of a gathered element: f32 rows are copies, exact; bytes go through one
/// division by 255, which the Vulkan spec allows 2.5 ULP: 3u relative.
fn gathered_allowed(bytes: bool) -> Box<dyn Fn(usize, f32) -> f32> {
    Box::new(abs_rel(0.0, if bytes { 3.0 * UNIT_ROUNDOFF } else { 0.0 }))
}

fn check_gather(v: &mut Validator, shape: &GatherShape) -> Result<CheckResult> {
    let batch = gathered_batch(v, shape)?;
    let gindices = v.upload("indices", &batch.indices)?;
    let state = v.upload("state", &[1u32, batch.cursor as u32])?;
    let gout = v.poisoned("out", shape.rows * shape.width)?;
    let source = GatherSource {
        data: &batch.data,
        indices: (!shape.in_order).then_some(&gindices),
        state: &state,
    };
    let dispatches = if shape.bytes {
        kernels::gather::gather_u8(v.ctx, &gout, &source, shape.rows)?
    } else {
        kernels::gather::gather_f32(v.ctx, &gout, &source, shape.rows)?
    };
    let output = Output {
        name: "out",
        gpu: &gout,
        cpu: batch.x,
        allowed: gathered_allowed(shape.bytes),
    };
    let dispatches: Vec<_> = dispatches.iter().collect();
    v.finish(dispatches[0].name, shape.name(), &dispatches, vec![output])
}

/// gather_join against the twins: x gathered, its one-hot labels gathered the same way, and
/// x | label (cpu/concat.rs).
fn check_gather_join(
    v: &mut Validator,
    shape: &GatherShape,
    label_cols: usize,
) -> Result<CheckResult> {
    let (rows, width, data_rows) = (shape.rows, shape.width, shape.data_rows);
    let batch = gathered_batch(v, shape)?;
    let classes = v.random_u32(data_rows, label_cols as u32);
    let mut one_hot = vec![0.0; data_rows * label_cols];
    for (r, &class) in classes.iter().enumerate() {
        one_hot[r * label_cols + class as usize] = 1.0;
    }
    let mut label = vec![0.0; rows * label_cols];
    cpu::gather::gather_f32(
        &mut label,
        &one_hot,
        &batch.indices,
        batch.cursor,
        label_cols,
    )?;
    let mut joined = vec![0.0; rows * (width + label_cols)];
    cpu::concat::concat_cols(&mut joined, &batch.x, &label, rows, width, label_cols)?;
    let cap = v.ctx.max_binding_bytes();
    let labels = DataShards::upload_f32(v.ctx, "labels", &one_hot, (data_rows, label_cols), cap)?;
    let gindices = v.upload("indices", &batch.indices)?;
    let state = v.upload("state", &[1u32, batch.cursor as u32])?;
    let (gx, glabel) = (
        v.poisoned("x", rows * width)?,
        v.poisoned("label", rows * label_cols)?,
    );
    let gjoined = v.poisoned("joined", rows * (width + label_cols))?;
    let source = GatherSource {
        data: &batch.data,
        indices: (!shape.in_order).then_some(&gindices),
        state: &state,
    };
    let out = kernels::gather::JoinedBatch {
        x: &gx,
        label: &glabel,
        joined: &gjoined,
    };
    let d = kernels::gather::gather_join(v.ctx, &out, &source, &labels, rows)?;
    let outputs = vec![
        Output {
            name: "x",
            gpu: &gx,
            cpu: batch.x,
            allowed: gathered_allowed(shape.bytes),
        },
        Output {
            name: "label",
            gpu: &glabel,
            cpu: label,
            allowed: Box::new(abs_rel(0.0, 0.0)),
        },
        Output {
            name: "joined",
            gpu: &gjoined,
            cpu: joined,
            allowed: gathered_allowed(shape.bytes),
        },
    ];
    let name = format!("{} + {label_cols} label columns", shape.name());
    v.finish("gather_join", name, &[&d], outputs)
}

/// gather_corrupt (gather_u8_words_corrupt for bytes in whole words) against the twins: the
/// batch gathered, then corrupted (cpu/corrupt.rs) with the step of the state the GPU reads.
fn check_gather_corrupt(
    v: &mut Validator,
    shape: &GatherShape,
    noise: Noise,
) -> Result<CheckResult> {
    let n = shape.rows * shape.width;
    let batch = gathered_batch(v, shape)?;
    let key = NoiseKey {
        seed: 0x0dae_5eed ^ v.seed,
        step: 11,
        stream: 2,
    };
    let mut y = vec![0.0; n];
    cpu::corrupt::corrupt(&mut y, &batch.x, noise, key)?;
    let gindices = v.upload("indices", &batch.indices)?;
    let state = v.upload("state", &[key.step, batch.cursor as u32])?;
    let (gx, gy) = (v.poisoned("x", n)?, v.poisoned("noisy", n)?);
    let source = GatherSource {
        data: &batch.data,
        indices: (!shape.in_order).then_some(&gindices),
        state: &state,
    };
    let corruption = kernels::gather::Corruption {
        noisy: &gy,
        noise,
        key,
    };
    let dispatches = kernels::gather::gather_corrupt(v.ctx, &gx, &corruption, &source, shape.rows)?;
    // y: check_corrupt's bound (a Gaussian's ε within 3e-3 · σ; the other kinds compare the
    // same uniforms), plus x's own error passed through.
    let y_allowed = match noise {
        Noise::Gaussian { sigma } => Box::new(abs_rel(3e-3 * sigma + 1e-6, 0.0)),
        _ => gathered_allowed(shape.bytes),
    };
    let outputs = vec![
        Output {
            name: "x",
            gpu: &gx,
            cpu: batch.x,
            allowed: gathered_allowed(shape.bytes),
        },
        Output {
            name: "noisy",
            gpu: &gy,
            cpu: y,
            allowed: y_allowed,
        },
    ];
    let dispatches: Vec<_> = dispatches.iter().collect();
    let name = format!("{noise} {}", shape.name());
    v.finish(dispatches[0].name, name, &dispatches, outputs)
}

fn check_step_states(v: &mut Validator, batch: usize) -> Result<CheckResult> {
    // A table of four states from a random first step, the way an epoch's are written; one
    // gather a row, each recorded at its row's dynamic offset, must read the batch at that
    // row's cursor (so the rows, their stride and the offsets agree).
    const ROWS: usize = 4;
    let (width, data_rows) = (3, 17);
    let first = [v.random_u32(1, 1000)[0] + 1, 0];
    let states = StepStates::new(v.ctx, "step states", ROWS, batch)?;
    states.write(v.ctx, first, ROWS, batch)?;
    let indices = v.random_u32(ROWS * batch, data_rows as u32);
    let data = v.random(data_rows * width, -1.0, 1.0);
    let gindices = v.upload("indices", &indices)?;
    let cap = v.ctx.max_binding_bytes();
    let gdata = DataShards::upload_f32(v.ctx, "data", &data, (data_rows, width), cap)?;
    let source = GatherSource {
        data: &gdata,
        indices: Some(&gindices),
        state: states.binding(),
    };
    let mut dispatches = Vec::new();
    let mut gathered = Vec::new();
    for state in cpu::step::step_states(first, ROWS, batch) {
        let mut out = vec![0.0; batch * width];
        cpu::gather::gather_f32(&mut out, &data, &indices, state[1] as usize, width)?;
        let gout = v.poisoned("out", batch * width)?;
        dispatches.extend(kernels::gather::gather_f32(v.ctx, &gout, &source, batch)?);
        gathered.push((gout, out));
    }
    // Rows are copies: exact.
    let outputs = gathered
        .iter()
        .map(|(gout, out)| Output {
            name: "out",
            gpu: gout,
            cpu: out.clone(),
            allowed: Box::new(|_, _| 0.0),
        })
        .collect();
    let record = |pass: &mut wgpu::ComputePass| {
        for (row, dispatch) in dispatches.iter().enumerate() {
            dispatch.record_at_state(pass, states.offset(row));
        }
    };
    v.finish_recorded(
        "step_states",
        format!("{ROWS} rows, batch {batch}"),
        &record,
        outputs,
    )
}
