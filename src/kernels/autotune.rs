//! Matmul autotune: each candidate variant is checked against the CPU twin and then timed on
//! a few shapes of the reference models, once per device; the fastest per shape class
//! (general, skinny) is cached in a small JSON file keyed by adapter, driver, backend and the
//! text of the matmul shaders. On adapters that are not CPUs, each shape a model uses is then
//! tuned on its own when first prepared ([`ShapeTuning`]) and cached beside the classes.
//! Reading or writing the cache can only warn, never fail.
//!
//! LATENT_MATMUL (the CLI's --matmul) picks the policy: `auto` tunes or reads the cache,
//! `default` takes the adapter type's default without timing anything
//! ([`MatmulChoice::default_for`]: subgroup, else rowtile, on CPU adapters, tiled 64×64×16
//! elsewhere), and a variant (`tiled`, `tiled:MxNxK[x8][/S][p]`, `rowtile`, `subgroup`)
//! forces that variant for every shape. `coop-f16`, which rounds the operands to f16, is only ever
//! forced, and admitted only when it matches the twin within the f16 bound on every tuning
//! shape (the model's forward, weight-gradient and input-gradient products).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::cpu::matmul::{matmul as matmul_twin, MatmulShape};
use crate::error::{Error, Result};
use crate::gpu::{time_gpu_median, GpuBuffer, GpuContext};
use crate::kernels::adam::{adam_step, AdamConfig};
use crate::kernels::matmul::{
    is_skinny, matmul_with_extras, matmul_with_variant, MatmulChoice, MatmulExtras, MatmulKey,
    MatmulTiles, MatmulVariant, ROWTILE_SHADER, SHADER, SUBGROUP_SHADER, SUBGROUP_VEC4_SHADER,
    VEC4_SHADER,
};
use crate::kernels::matmul_grouped_tn::{
    flat_layout, grouped_tiles, matmul_grouped_tn, matmul_grouped_tn_adam, AdamBuffers, GroupKey,
    WeightGradProblem, WeightGrads, SHADER as GROUPED_TN_SHADER,
};
use crate::kernels::{run, Dispatch};
use crate::validate::{compare, operand_bound, UNIT_ROUNDOFF};

/// How the matmul variants of a device are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulPolicy {
    /// The adapter type's default, nothing timed.
    Default,
    /// Tuned once per device, then read from the cache.
    Auto,
    /// This variant for every shape.
    Force(MatmulVariant),
}

impl FromStr for MatmulPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(MatmulPolicy::Auto),
            "default" => Ok(MatmulPolicy::Default),
            other => other.parse().map(MatmulPolicy::Force).map_err(|_| {
                Error::InvalidArgument(format!(
                    "matmul policy {s:?}: expected auto, default, subgroup, rowtile, tiled, tiled:MxNxK[x8][/S][p] or coop-f16"
                ))
            }),
        }
    }
}

impl MatmulPolicy {
    /// The policy LATENT_MATMUL names, or `unset` when it is absent or empty.
    pub fn from_env(unset: MatmulPolicy) -> Result<Self> {
        match std::env::var("LATENT_MATMUL") {
            Ok(text) if !text.trim().is_empty() => text.parse(),
            _ => Ok(unset),
        }
    }
}

/// Where a device's matmul choice came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChoiceSource {
    Default,
    Forced,
    Cached,
    Tuned,
}

/// The two shape classes the choice distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeClass {
    General,
    Skinny,
}

impl ShapeClass {
    /// The class of a shape: skinny when its output has at most SKINNY_MAX rows or columns.
    pub fn of(shape: &MatmulShape) -> Self {
        if is_skinny(shape) {
            ShapeClass::Skinny
        } else {
            ShapeClass::General
        }
    }
}

/// One candidate on one tuning shape: its check against the twin, then its GPU time.
#[derive(Clone, Debug)]
pub struct TuneTiming {
    pub class: ShapeClass,
    /// e.g. "128x784x400 NT".
    pub shape: String,
    pub variant: MatmulVariant,
    pub max_abs_err: f32,
    pub passed: bool,
    /// GPU time per run in microseconds (None when the check failed: not timed).
    pub gpu_us: Option<f64>,
}

/// The outcome of [`select_matmul`]: apply it with [`MatmulSelection::apply`].
#[derive(Clone, Debug)]
pub struct MatmulSelection {
    pub choice: MatmulChoice,
    pub source: ChoiceSource,
    /// Every candidate timed (empty unless tuned now).
    pub timings: Vec<TuneTiming>,
    /// Cache problems, for the caller to print.
    pub warnings: Vec<String>,
    /// Per-shape tuning, on with `auto` on adapters that are not CPUs.
    pub shape_tuning: Option<ShapeTuning>,
}

impl MatmulSelection {
    /// Makes this the device's choice for the dispatches prepared from now on, with its
    /// per-shape tuning on or off.
    pub fn apply(&self, ctx: &GpuContext) {
        ctx.set_matmul_choice(self.choice.clone());
        ctx.set_shape_tuning(self.shape_tuning.clone());
    }
}

/// The tuning shapes of each class, as the reference VAE 784-400-20 runs them at batch 128:
/// (class, m, n, k, trans_a, trans_b, bias).
const TUNING_SHAPES: [(ShapeClass, usize, usize, usize, bool, bool, bool); 5] = [
    // forward x (128, 784) · W1ᵀ (400, 784) + b
    (ShapeClass::General, 128, 400, 784, false, true, true),
    // weight gradient dYᵀ (400, 128) · X (128, 784)
    (ShapeClass::General, 400, 784, 128, true, false, false),
    // input gradient dY (128, 400) · W (400, 784)
    (ShapeClass::General, 128, 784, 400, false, false, false),
    // forward h (128, 400) · Wμᵀ (20, 400) + b
    (ShapeClass::Skinny, 128, 20, 400, false, true, true),
    // weight gradient dμᵀ (20, 128) · h (128, 400)
    (ShapeClass::Skinny, 20, 400, 128, true, false, false),
];

/// The tiled kernel with these tiles, a thread computing thread × thread of C (4 or 8), K
/// split between `split` groups of threads.
fn tiled(tile_m: u32, tile_n: u32, tile_k: u32, thread: u32, split: u32) -> MatmulTiles {
    MatmulTiles {
        tile_m,
        tile_n,
        tile_k,
        thread,
        split,
        prefetch: false,
    }
}

/// The tiles as they are, and again with the next slab prefetched into registers (which only
/// a GPU's timing can judge: it hides global-load latency, which a CPU adapter has little of).
fn with_and_without_prefetch(tiles: MatmulTiles) -> [MatmulVariant; 2] {
    [
        MatmulVariant::Tiled(tiles),
        MatmulVariant::Tiled(MatmulTiles {
            prefetch: true,
            ..tiles
        }),
    ]
}

/// The variants the autotune times for a shape class (those the adapter cannot run are
/// skipped: tiles beyond its limits, the subgroup kernel without 8-lane subgroups).
pub fn candidates(class: ShapeClass) -> Vec<MatmulVariant> {
    let mut variants = Vec::new();
    match class {
        ShapeClass::General => {
            for tiles in [
                tiled(64, 64, 16, 4, 1),
                tiled(64, 64, 32, 4, 1),
                tiled(128, 64, 16, 4, 1),
                tiled(32, 32, 16, 4, 1),
            ] {
                variants.push(MatmulVariant::Tiled(tiles));
            }
            for tiles in [
                tiled(64, 64, 16, 8, 1),
                tiled(128, 128, 16, 8, 1),
                tiled(32, 32, 16, 4, 4),
            ] {
                variants.extend(with_and_without_prefetch(tiles));
            }
            // 32 KiB of slabs: where the adapter allows it (NVIDIA's Vulkan: 48 KiB).
            variants.extend(with_and_without_prefetch(tiled(128, 128, 32, 8, 1)));
        }
        ShapeClass::Skinny => {
            for tiles in [
                tiled(32, 32, 16, 4, 1),
                tiled(32, 32, 32, 4, 1),
                tiled(64, 64, 16, 4, 1),
            ] {
                variants.push(MatmulVariant::Tiled(tiles));
            }
            variants.extend(with_and_without_prefetch(tiled(32, 32, 16, 4, 4)));
        }
    }
    variants.extend([MatmulVariant::RowTile, MatmulVariant::Subgroup]);
    variants
}

/// The candidates of `class` the adapter can run, less the prefetching forms on CPU adapters:
/// prefetching hides a GPU's global-load latency, which a CPU adapter does not have (on
/// lavapipe the prefetching forms took 0.74–1.13× their plain forms' time, BENCHMARKS.md),
/// and the subgroup kernel wins every shape there.
fn tuned_candidates(ctx: &GpuContext, class: ShapeClass) -> Vec<MatmulVariant> {
    let cpu_adapter = ctx.info.device_type == wgpu::DeviceType::Cpu;
    candidates(class)
        .into_iter()
        .filter(|v| v.check(ctx).is_ok())
        .filter(|v| !(cpu_adapter && matches!(v, MatmulVariant::Tiled(t) if t.prefetch)))
        .collect()
}

/// Chooses the device's matmul variants by `policy`, reading and writing the tuning cache at
/// `cache` (None: no cache, tune every time). Errors: a forced variant the adapter cannot
/// run, a GPU error, or every candidate of a class failing its check.
pub fn select_matmul(
    ctx: &GpuContext,
    policy: MatmulPolicy,
    cache: Option<&Path>,
) -> Result<MatmulSelection> {
    let mut selection = MatmulSelection {
        choice: MatmulChoice::default_for(&ctx.info, &ctx.features),
        source: ChoiceSource::Default,
        timings: Vec::new(),
        warnings: Vec::new(),
        shape_tuning: None,
    };
    match policy {
        MatmulPolicy::Default => {}
        MatmulPolicy::Force(variant) => {
            variant.check(ctx)?;
            if variant == MatmulVariant::CoopF16 {
                selection.timings = admit_coop_f16(ctx)?;
            }
            selection.choice = MatmulChoice::uniform(variant);
            selection.source = ChoiceSource::Forced;
        }
        MatmulPolicy::Auto => {
            if ctx.info.device_type != wgpu::DeviceType::Cpu {
                selection.shape_tuning = Some(ShapeTuning::new(ctx, cache));
            }
            let key = device_key(ctx);
            if let Some(path) = cache {
                match read_cache(path, &key, ctx) {
                    Ok(Some(choice)) => {
                        selection.choice = choice;
                        selection.source = ChoiceSource::Cached;
                        return Ok(selection);
                    }
                    Ok(None) => {}
                    Err(warning) => selection.warnings.push(warning),
                }
            }
            let (choice, timings) = tune_matmul(ctx)?;
            selection.source = ChoiceSource::Tuned;
            selection.timings = timings;
            if let Some(path) = cache {
                if let Err(warning) = write_cache(path, &key, &choice) {
                    selection.warnings.push(warning);
                }
            }
            selection.choice = choice;
        }
    }
    Ok(selection)
}

/// Per-shape tuning, on with `auto` on adapters that are not CPUs: a matmul shape the
/// device's choice has not seen is tuned when a dispatch is first prepared for it
/// (`GpuContext::matmul_variant`, from the executors' builds): its class's candidates are
/// checked against the twin on sampled rows and timed at that shape, and the fastest is
/// kept in the device's choice and written to the cache. On a GPU a shape's grid decides how
/// much of the chip a kernel fills: 128 × 128 tiles give a 128 × 400 product 4 workgroups
/// and a 4096² one 1024, so no one tile suits every shape. On CPU adapters the class choice
/// stands: a few cores are filled by any shape's grid, and there the subgroup kernel wins
/// every shape by far (BENCHMARKS.md), so tuning each would cost seconds for nothing.
#[derive(Clone, Debug)]
pub struct ShapeTuning {
    cache: Option<PathBuf>,
    key: String,
    /// A line per shape tuned and any cache warning, since `GpuContext::take_matmul_notes`.
    pub notes: Vec<String>,
}

impl ShapeTuning {
    /// Tuning for `ctx`'s device, its winners added to the cache file `cache` (None: kept
    /// in memory only).
    pub fn new(ctx: &GpuContext, cache: Option<&Path>) -> Self {
        ShapeTuning {
            cache: cache.map(Path::to_path_buf),
            key: device_key(ctx),
            notes: Vec::new(),
        }
    }

    /// The variant for `shape`: the device's choice for it if it has one, else the winner
    /// of tuning it now, which joins the choice and the cache.
    pub fn variant_for(&mut self, ctx: &GpuContext, shape: &MatmulShape) -> Result<MatmulVariant> {
        let mut choice = ctx.matmul_choice();
        let key = MatmulKey::of(shape);
        if let Some(&variant) = choice.shapes.get(&key) {
            return Ok(variant);
        }
        let started = std::time::Instant::now();
        let class = ShapeClass::of(shape);
        let mut rng = StdRng::seed_from_u64(0x7a7e);
        let case = TuningCase::new(ctx, &mut rng, key.shape(), false, true)?;
        let mut timings = Vec::new();
        for variant in tuned_candidates(ctx, class) {
            timings.push(case.check_and_time(ctx, class, variant)?);
        }
        let winner = winner(&timings, class)?;
        let time_of = |variant: MatmulVariant| {
            timings
                .iter()
                .find(|t| t.variant == variant)
                .and_then(|t| t.gpu_us)
        };
        let class_variant = choice.for_class(shape);
        self.notes.push(format!(
            "matmul tuned for {key} in {:.2} s: {winner} ({:.1} us; the {class:?} class's {class_variant}: {:.1} us)",
            started.elapsed().as_secs_f64(),
            time_of(winner).unwrap_or(f64::NAN),
            time_of(class_variant).unwrap_or(f64::NAN),
        ));
        choice.shapes.insert(key, winner);
        if let Some(path) = &self.cache {
            if let Err(warning) = write_cache(path, &self.key, &choice) {
                self.notes.push(format!("warning: {warning}"));
            }
        }
        ctx.set_matmul_choice(choice);
        Ok(winner)
    }
}

impl ShapeTuning {
    /// The weight-gradient form for the layers of `key`: the device's choice for them if it
    /// has one, else the winner of timing now, which joins the choice and the cache. Timed:
    /// the layers' separate dispatches (each dW shape's own variant, the bias gradient as
    /// its row sums, back to back as a step records them) against one grouped dispatch at
    /// each of [`grouped_candidates`]; each form is first checked against the twin, and one
    /// that fails is not timed. Grouped wins only when it is faster.
    pub fn weight_grads_for(&mut self, ctx: &GpuContext, key: &GroupKey) -> Result<WeightGrads> {
        if let Some(&form) = ctx.matmul_choice().weight_grads.get(key) {
            return Ok(form);
        }
        let started = std::time::Instant::now();
        let shapes: Vec<MatmulShape> = key
            .layers
            .iter()
            .map(|&(m, n)| MatmulShape {
                trans_a: true,
                row_sums: true,
                ..MatmulShape::new(m, n, key.k)
            })
            .collect();
        let variants = shapes
            .iter()
            .map(|shape| self.variant_for(ctx, shape))
            .collect::<Result<Vec<_>>>()?;
        let case = WeightGradCase::new(ctx, key)?;
        let mut separate = case.separate(ctx, &shapes, &variants)?;
        let passed = case.check(ctx, &separate.iter().collect::<Vec<_>>())?;
        // With Adam (the whole model's set): the separate form's Adam dispatch is timed with it.
        separate.extend(case.adam_dispatch(ctx)?);
        let separate_us = if passed {
            Some(case.time(ctx, &separate.iter().collect::<Vec<_>>())?)
        } else {
            None
        };
        // The fastest grouped form whose gradients pass their check (timed fused with Adam
        // for the whole model's set).
        let mut grouped_best: Option<(MatmulTiles, f64)> = None;
        for tiles in grouped_candidates(ctx, &variants) {
            if !case.check(ctx, &[&case.grouped(ctx, tiles)?])? {
                continue;
            }
            let timed = case.grouped_timed(ctx, tiles)?;
            let us = case.time(ctx, &[&timed])?;
            if grouped_best.is_none_or(|(_, best)| us < best) {
                grouped_best = Some((tiles, us));
            }
        }
        let form = match (grouped_best, separate_us) {
            (Some((tiles, grouped)), Some(separate)) if grouped < separate => {
                WeightGrads::Grouped(tiles)
            }
            (Some((tiles, _)), None) => WeightGrads::Grouped(tiles),
            _ => WeightGrads::Separate,
        };
        let us =
            |t: Option<f64>| t.map_or("failed its check".to_string(), |t| format!("{t:.1} us"));
        self.notes.push(format!(
            "weight gradients tuned for {key} in {:.2} s: {form} (separate: {}, best grouped{}: {})",
            started.elapsed().as_secs_f64(),
            us(separate_us),
            grouped_best.map_or(String::new(), |(tiles, _)| format!(" {tiles}")),
            us(grouped_best.map(|(_, t)| t)),
        ));
        let mut choice = ctx.matmul_choice();
        choice.weight_grads.insert(key.clone(), form);
        if let Some(path) = &self.cache {
            if let Err(warning) = write_cache(path, &self.key, &choice) {
                self.notes.push(format!("warning: {warning}"));
            }
        }
        ctx.set_matmul_choice(choice);
        Ok(form)
    }
}

/// The grouped kernel's tiles worth timing for layers whose dW products run `variants`
/// apart: each tiled variant's blocks and prefetching (without K split, which the grouped
/// kernel has not), then 64×64×16 at 4 × 4 and 8 × 8 a thread (and prefetching) and
/// 32×32×16; those the adapter can run, each once. CPU adapters leave out the prefetching
/// forms, as their matmul tuning does (nothing to hide there).
pub fn grouped_candidates(ctx: &GpuContext, variants: &[MatmulVariant]) -> Vec<MatmulTiles> {
    let from_variants = variants.iter().filter_map(|v| match *v {
        MatmulVariant::Tiled(tiles) => Some(grouped_tiles(tiles)),
        _ => None,
    });
    let fixed = [
        MatmulTiles::default(),
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
            tile_n: 32,
            ..MatmulTiles::default()
        },
    ];
    let cpu_adapter = ctx.info.device_type == wgpu::DeviceType::Cpu;
    let mut tiles: Vec<MatmulTiles> = Vec::new();
    for t in from_variants.chain(fixed) {
        if !tiles.contains(&t) && t.check(ctx).is_ok() && !(cpu_adapter && t.prefetch) {
            tiles.push(t);
        }
    }
    tiles
}

/// One set of layers' weight gradients for tuning: random dy (k, m) and x (k, n) in [-1, 1]
/// on the GPU, a gradient buffer laid out as a plan lays one out, and the twin's dW at
/// sampled rows and every db.
struct WeightGradCase {
    k: usize,
    layers: Vec<(usize, usize)>,
    dy: Vec<GpuBuffer>,
    x: Vec<GpuBuffer>,
    /// (dW, db) element offsets of each layer in `grads`.
    offsets: Vec<(usize, usize)>,
    grads: GpuBuffer,
    /// (index in grads, the twin's value) of every compared element.
    expected: Vec<(usize, f32)>,
    /// For a key with Adam: parameters, moments (zeros), the step-1 table and a state
    /// [1, 0], the buffers both forms' Adam updates.
    adam: Option<[GpuBuffer; 5]>,
}

impl WeightGradCase {
    fn new(ctx: &GpuContext, key: &GroupKey) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(0x7a7e);
        let k = key.k;
        let mut random =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (offsets, end) = flat_layout(&key.layers);
        let mut expected = Vec::new();
        let (mut dy_gpu, mut x_gpu) = (Vec::new(), Vec::new());
        for (&(m, n), &(dweight, dbias)) in key.layers.iter().zip(&offsets) {
            let (dy, x) = (random(k * m), random(k * n));
            for row in sampled_rows(m) {
                for col in 0..n {
                    let value = (0..k).map(|b| dy[b * m + row] * x[b * n + col]).sum();
                    expected.push((dweight + row * n + col, value));
                }
            }
            for row in 0..m {
                expected.push((dbias + row, (0..k).map(|b| dy[b * m + row]).sum()));
            }
            dy_gpu.push(ctx.upload("autotune dy", &dy)?);
            x_gpu.push(ctx.upload("autotune x", &x)?);
        }
        let adam = if key.adam {
            Some([
                ctx.upload("autotune params", &random(end))?,
                ctx.create_buffer("autotune m", end)?,
                ctx.create_buffer("autotune v", end)?,
                ctx.upload(
                    "autotune step scalars",
                    &AdamConfig::default().step_scalar_table(1),
                )?,
                ctx.upload("autotune state", &[1u32, 0])?,
            ])
        } else {
            None
        };
        Ok(WeightGradCase {
            k,
            layers: key.layers.clone(),
            dy: dy_gpu,
            x: x_gpu,
            offsets,
            grads: ctx.create_buffer("autotune grads", end)?,
            expected,
            adam,
        })
    }

    /// The Adam dispatch over the flat buffers, for a key with Adam.
    fn adam_dispatch(&self, ctx: &GpuContext) -> Result<Option<Dispatch>> {
        let Some([param, m, v, table, state]) = &self.adam else {
            return Ok(None);
        };
        let adam = adam_step(
            ctx,
            param,
            m,
            v,
            &self.grads,
            table,
            state,
            param.len,
            &AdamConfig::default(),
        )?;
        Ok(Some(adam))
    }

    /// The grouped form as a step would run it: fused with Adam for a key with Adam.
    fn grouped_timed(&self, ctx: &GpuContext, tiles: MatmulTiles) -> Result<Dispatch> {
        let Some([param, m, v, table, state]) = &self.adam else {
            return self.grouped(ctx, tiles);
        };
        let buffers = AdamBuffers {
            param,
            m,
            v,
            step_scalars: table,
            state,
        };
        matmul_grouped_tn_adam(
            ctx,
            buffers,
            &AdamConfig::default(),
            self.k,
            &self.problems(),
            tiles,
        )
    }

    /// One dispatch a layer, each with its variant.
    fn separate(
        &self,
        ctx: &GpuContext,
        shapes: &[MatmulShape],
        variants: &[MatmulVariant],
    ) -> Result<Vec<Dispatch>> {
        let mut dispatches = Vec::new();
        for (g, (shape, &variant)) in shapes.iter().zip(variants).enumerate() {
            let (m, n) = self.layers[g];
            let (dweight, dbias) = self.offsets[g];
            let sums = self.grads.view(dbias, m)?;
            let extras = MatmulExtras {
                row_sums: Some(&sums),
                ..MatmulExtras::default()
            };
            dispatches.push(matmul_with_extras(
                ctx,
                &self.grads.view(dweight, m * n)?,
                &self.dy[g],
                &self.x[g],
                None,
                extras,
                shape,
                variant,
            )?);
        }
        Ok(dispatches)
    }

    /// One grouped dispatch at `tiles`.
    fn grouped(&self, ctx: &GpuContext, tiles: MatmulTiles) -> Result<Dispatch> {
        matmul_grouped_tn(ctx, &self.grads, self.k, &self.problems(), tiles)
    }

    fn problems(&self) -> Vec<WeightGradProblem<'_>> {
        self.layers
            .iter()
            .enumerate()
            .map(|(g, &(m, n))| WeightGradProblem {
                m,
                n,
                dy: &self.dy[g],
                x: &self.x[g],
                dweight: self.offsets[g].0,
                dbias: self.offsets[g].1,
            })
            .collect()
    }

    /// Runs `dispatches` once into NaN-poisoned gradients and compares them with the twin
    /// within two summation orders of K terms in [-1, 1] (2·(K + 2)·u·K).
    fn check(&self, ctx: &GpuContext, dispatches: &[&Dispatch]) -> Result<bool> {
        ctx.write_buffer(&self.grads, &vec![f32::NAN; self.grads.len])?;
        run(ctx, "weight gradient autotune", dispatches)?;
        let all: Vec<f32> = ctx.read_buffer(&self.grads)?;
        let got: Vec<f32> = self.expected.iter().map(|&(i, _)| all[i]).collect();
        let expected: Vec<f32> = self.expected.iter().map(|&(_, v)| v).collect();
        let k = self.k as f32;
        let bound = 2.0 * (k + 2.0) * UNIT_ROUNDOFF * k;
        Ok(compare(&got, &expected, &|_, _| bound).failures == 0)
    }

    /// The GPU time of `dispatches` back to back (median).
    fn time(&self, ctx: &GpuContext, dispatches: &[&Dispatch]) -> Result<f64> {
        let record = |pass: &mut wgpu::ComputePass| dispatches.iter().for_each(|d| d.record(pass));
        Ok(time_gpu_median(ctx, &record)?.0)
    }
}

/// Checks and times every candidate on the tuning shapes; per class, the candidate with the
/// least total time over the class's shapes wins.
pub fn tune_matmul(ctx: &GpuContext) -> Result<(MatmulChoice, Vec<TuneTiming>)> {
    let mut timings = Vec::new();
    for (class, case) in tuning_cases(ctx)? {
        for variant in tuned_candidates(ctx, class) {
            timings.push(case.check_and_time(ctx, class, variant)?);
        }
    }
    let choice = MatmulChoice {
        general: winner(&timings, ShapeClass::General)?,
        skinny: winner(&timings, ShapeClass::Skinny)?,
        shapes: BTreeMap::new(),
        weight_grads: BTreeMap::new(),
    };
    Ok((choice, timings))
}

/// Checks (and times) the coop-f16 matmul on every tuning shape against the twin with the
/// bound of f16 operands; an error naming the first shape it misses, else its timings.
pub fn admit_coop_f16(ctx: &GpuContext) -> Result<Vec<TuneTiming>> {
    let mut timings = Vec::new();
    for (class, case) in tuning_cases(ctx)? {
        let timing = case.check_and_time(ctx, class, MatmulVariant::CoopF16)?;
        if !timing.passed {
            return Err(Error::Gpu {
                op: "coop-f16 matmul admission".into(),
                message: format!(
                    "at {} it is {:.3e} off the CPU twin, beyond the bound of f16 operands: not \
                     admitted on this adapter (run `latent validate --matmul coop-f16`)",
                    timing.shape, timing.max_abs_err
                ),
            });
        }
        timings.push(timing);
    }
    Ok(timings)
}

/// The candidate of `class` that passed every check with the least total time.
fn winner(timings: &[TuneTiming], class: ShapeClass) -> Result<MatmulVariant> {
    let mut best: Option<(MatmulVariant, f64)> = None;
    for variant in candidates(class) {
        let runs: Vec<_> = timings
            .iter()
            .filter(|t| t.class == class && t.variant == variant)
            .collect();
        if runs.is_empty() || runs.iter().any(|t| !t.passed) {
            continue;
        }
        let total: f64 = runs.iter().filter_map(|t| t.gpu_us).sum();
        if best.is_none_or(|(_, b)| total < b) {
            best = Some((variant, total));
        }
    }
    best.map(|(v, _)| v).ok_or_else(|| Error::Gpu {
        op: "matmul autotune".into(),
        message: format!(
            "no {class:?} matmul variant matched the CPU twin on this adapter (run `latent validate`)"
        ),
    })
}

/// Every tuning shape with its class, inputs from one fixed seed.
fn tuning_cases(ctx: &GpuContext) -> Result<Vec<(ShapeClass, TuningCase)>> {
    let mut rng = StdRng::seed_from_u64(0x7a7e);
    TUNING_SHAPES
        .iter()
        .map(|&(class, m, n, k, trans_a, trans_b, bias)| {
            let shape = MatmulShape {
                m,
                n,
                k,
                trans_a,
                trans_b,
                ..Default::default()
            };
            Ok((class, TuningCase::new(ctx, &mut rng, shape, bias, false)?))
        })
        .collect()
}

/// One tuning shape: random inputs on the GPU and the CPU twin's answer, for every row of C
/// or for sampled ones.
struct TuningCase {
    shape: MatmulShape,
    a: GpuBuffer,
    b: GpuBuffer,
    bias: Option<GpuBuffer>,
    /// The rows of C compared.
    rows: Vec<usize>,
    /// The twin's C at those rows (rows.len(), n).
    expected: Vec<f32>,
}

/// Rows of C a per-shape check compares: about 64, spread over every block of rows, and
/// the last (the twin's work then grows with N·K only, not M·N·K).
fn sampled_rows(m: usize) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..m).step_by(m.div_ceil(64)).collect();
    if rows.last() != Some(&(m - 1)) {
        rows.push(m - 1);
    }
    rows
}

impl TuningCase {
    /// Random inputs in [-1, 1]; `sampled`: the twin computes only [`sampled_rows`].
    fn new(
        ctx: &GpuContext,
        rng: &mut StdRng,
        shape: MatmulShape,
        bias: bool,
        sampled: bool,
    ) -> Result<Self> {
        let MatmulShape { m, n, k, .. } = shape;
        let mut random =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (a, b) = (random(m * k), random(k * n));
        let bias = bias.then(|| random(n));
        let rows: Vec<usize> = if sampled {
            sampled_rows(m)
        } else {
            (0..m).collect()
        };
        // op(A) at those rows, stored (rows, K): the twin runs that product.
        let op_a = |r: usize, kk: usize| {
            if shape.trans_a {
                a[kk * m + r]
            } else {
                a[r * k + kk]
            }
        };
        let a_rows: Vec<f32> = rows
            .iter()
            .flat_map(|&r| (0..k).map(move |kk| op_a(r, kk)))
            .collect();
        let rows_shape = MatmulShape {
            m: rows.len(),
            trans_a: false,
            ..shape
        };
        let mut expected = vec![0.0; rows.len() * n];
        matmul_twin(&mut expected, &a_rows, &b, bias.as_deref(), &rows_shape)?;
        Ok(TuningCase {
            shape,
            a: ctx.upload("autotune a", &a)?,
            b: ctx.upload("autotune b", &b)?,
            bias: bias.map(|v| ctx.upload("autotune bias", &v)).transpose()?,
            rows,
            expected,
        })
    }

    /// Runs `variant` once into a NaN-poisoned C, compares with the twin, and times it only
    /// if it passed.
    fn check_and_time(
        &self,
        ctx: &GpuContext,
        class: ShapeClass,
        variant: MatmulVariant,
    ) -> Result<TuneTiming> {
        let MatmulShape { m, n, k, .. } = self.shape;
        let c = ctx.upload("autotune c", &vec![f32::NAN; m * n])?;
        let dispatch = matmul_with_variant(
            ctx,
            &c,
            &self.a,
            &self.b,
            self.bias.as_ref(),
            &self.shape,
            variant,
        )?;
        run(ctx, "matmul autotune", &[&dispatch])?;
        let all: Vec<f32> = ctx.read_buffer(&c)?;
        let got: Vec<f32> = self
            .rows
            .iter()
            .flat_map(|&r| all[r * n..(r + 1) * n].iter().copied())
            .collect();
        // Two summation orders of K products of values in [-1, 1] plus a bias in [-1, 1]
        // differ by at most 2·(K + 2)·u·(K + 1) (the bound `latent validate` uses, with
        // Σ|a||b| + |bias| ≤ K + 1), plus what f16 operands add for coop-f16.
        let magnitude = k as f32 + 1.0;
        let bound =
            2.0 * (k + 2) as f32 * UNIT_ROUNDOFF * magnitude + operand_bound(variant, k, magnitude);
        let comparison = compare(&got, &self.expected, &|_, _| bound);
        let passed = comparison.failures == 0;
        let gpu_us = if passed {
            Some(time_gpu_median(ctx, &|pass| dispatch.record(pass))?.0)
        } else {
            None
        };
        Ok(TuneTiming {
            class,
            shape: describe(&self.shape),
            variant,
            max_abs_err: comparison.max_abs_err,
            passed,
            gpu_us,
        })
    }
}

/// "MxKxN TT" with T = N or T for each operand, like `latent validate` prints shapes.
pub fn describe(shape: &MatmulShape) -> String {
    MatmulKey::of(shape).to_string()
}

/// The cache file: $LATENT_CACHE_DIR/autotune.json, else $XDG_CACHE_HOME/latent/autotune.json,
/// else $HOME/.cache/latent/autotune.json (None when none of them is set).
pub fn default_cache_path() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("LATENT_CACHE_DIR") {
        return Some(PathBuf::from(dir).join("autotune.json"));
    }
    let base = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("latent").join("autotune.json"))
}

/// The device's key in the cache: adapter, ids, driver, backend, a fingerprint of the
/// tuned matmul shaders' text with the libs each includes (a changed shader is tuned again),
/// and "unchecked" where the kernels are built without wgpu's runtime checks.
pub fn device_key(ctx: &GpuContext) -> String {
    let info = &ctx.info;
    let shaders: String = [
        &SHADER,
        &VEC4_SHADER,
        &ROWTILE_SHADER,
        &SUBGROUP_SHADER,
        &SUBGROUP_VEC4_SHADER,
        &GROUPED_TN_SHADER,
    ]
    .iter()
    .flat_map(|shader| shader.includes.iter().copied().chain([shader.source]))
    .collect();
    let checks = if ctx.runtime_checks() {
        ""
    } else {
        " | unchecked"
    };
    format!(
        "{} [{:04x}:{:04x}] | {} {} | {:?} | matmul shaders {:016x}{checks}",
        info.name,
        info.vendor,
        info.device,
        info.driver,
        info.driver_info,
        info.backend,
        fnv1a(shaders.as_bytes())
    )
}

/// FNV-1a, 64 bits: a stable fingerprint (std's hasher may change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The cache file's contents: one entry per device key.
#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    devices: BTreeMap<String, CachedChoice>,
}

#[derive(Serialize, Deserialize)]
struct CachedChoice {
    general: String,
    skinny: String,
    /// Shapes tuned on their own (absent from caches written before per-shape tuning).
    #[serde(default)]
    shapes: Vec<CachedShape>,
    /// Weight-gradient forms per set of layers (absent from caches written before them).
    #[serde(default)]
    weight_grads: Vec<CachedWeightGrads>,
}

#[derive(Serialize, Deserialize)]
struct CachedWeightGrads {
    k: usize,
    /// (out, in) of each layer.
    layers: Vec<(usize, usize)>,
    /// "separate" or "grouped:MxNxK\[x8\]".
    form: String,
    /// Timed with Adam (see GroupKey::adam).
    #[serde(default)]
    adam: bool,
}

#[derive(Serialize, Deserialize)]
struct CachedShape {
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    variant: String,
}

/// The cached choice for `key`: Ok(None) when the file or the entry is absent, Err(warning)
/// when the file cannot be read or parsed or holds a variant this adapter cannot run.
pub fn read_cache(
    path: &Path,
    key: &str,
    ctx: &GpuContext,
) -> std::result::Result<Option<MatmulChoice>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read the autotune cache {}: {e}",
                path.display()
            ))
        }
    };
    let file: CacheFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the autotune cache {} is not valid ({e}); tuning again",
            path.display()
        )
    })?;
    let Some(entry) = file.devices.get(key) else {
        return Ok(None);
    };
    let parse = |text: &str| -> std::result::Result<MatmulVariant, String> {
        let variant: MatmulVariant = text.parse().map_err(|e: Error| e.to_string())?;
        variant.check(ctx).map_err(|e| e.to_string())?;
        Ok(variant)
    };
    let choice = parse(&entry.general)
        .and_then(|general| {
            let mut shapes = BTreeMap::new();
            for cached in &entry.shapes {
                let key = MatmulKey {
                    m: cached.m,
                    n: cached.n,
                    k: cached.k,
                    trans_a: cached.trans_a,
                    trans_b: cached.trans_b,
                };
                shapes.insert(key, parse(&cached.variant)?);
            }
            let mut weight_grads = BTreeMap::new();
            for cached in &entry.weight_grads {
                let form: WeightGrads = cached.form.parse().map_err(|e: Error| e.to_string())?;
                if let WeightGrads::Grouped(tiles) = form {
                    tiles.check(ctx).map_err(|e| e.to_string())?;
                }
                let key = GroupKey {
                    k: cached.k,
                    layers: cached.layers.clone(),
                    adam: cached.adam,
                };
                weight_grads.insert(key, form);
            }
            Ok(MatmulChoice {
                general,
                skinny: parse(&entry.skinny)?,
                shapes,
                weight_grads,
            })
        })
        .map_err(|e| {
            format!(
                "the autotune cache {} holds {e}; tuning again",
                path.display()
            )
        })?;
    Ok(Some(choice))
}

/// Adds or replaces `key`'s entry, keeping the other devices' entries; Err(warning) on failure.
pub fn write_cache(
    path: &Path,
    key: &str,
    choice: &MatmulChoice,
) -> std::result::Result<(), String> {
    let warn = |e: &dyn std::fmt::Display| {
        format!("cannot write the autotune cache {}: {e}", path.display())
    };
    let mut file: CacheFile = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    file.devices.insert(
        key.to_string(),
        CachedChoice {
            general: choice.general.to_string(),
            skinny: choice.skinny.to_string(),
            shapes: choice
                .shapes
                .iter()
                .map(|(key, variant)| CachedShape {
                    m: key.m,
                    n: key.n,
                    k: key.k,
                    trans_a: key.trans_a,
                    trans_b: key.trans_b,
                    variant: variant.to_string(),
                })
                .collect(),
            weight_grads: choice
                .weight_grads
                .iter()
                .map(|(key, form)| CachedWeightGrads {
                    k: key.k,
                    layers: key.layers.clone(),
                    form: form.to_string(),
                    adam: key.adam,
                })
                .collect(),
        },
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| warn(&e))?;
    }
    let text = serde_json::to_string_pretty(&file).map_err(|e| warn(&e))?;
    crate::io::write_atomic(path, text.as_bytes()).map_err(|e| warn(&e))
}
