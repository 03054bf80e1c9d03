//! Arguments several commands share: the GPU to use, the data set, the trained model.

use std::path::PathBuf;

use clap::Args;

use latent::gpu::{GpuContext, GpuOptions};
use latent::kernels::autotune::{self, ChoiceSource, MatmulPolicy};
use latent::kernels::matmul::MatmulVariant;
use latent::kernels::matmul_grouped_tn::WeightGradsPolicy;

#[derive(Args)]
pub struct GpuArgs {
    /// Graphics API: auto, vulkan, metal, dx12 or gl.
    #[arg(long, env = "LATENT_BACKEND", default_value = "auto")]
    pub backend: String,
    /// Adapter index (as `latent info` lists them) or part of its name.
    #[arg(long, env = "LATENT_ADAPTER")]
    pub adapter: Option<String>,
    /// Matmul kernel: auto (tuned once per device, cached in $LATENT_CACHE_DIR or
    /// ~/.cache/latent), default (subgroup, else rowtile, on CPU adapters, tiled elsewhere;
    /// nothing timed), subgroup (8-lane subgroups only), rowtile, tiled, tiled:MxNxK or
    /// tiled:MxNxKx8 (8 × 8 of C a thread, e.g. tiled:128x128x16x8) or tiled:MxNxK/S (K split
    /// between S groups of threads, e.g. tiled:32x32x16/4), each with a trailing p to prefetch
    /// the next slab into registers (e.g. tiled:128x128x16x8p); or
    /// coop-f16, the opt-in f16 path: A and B rounded to f16 on cooperative matrices (tensor
    /// cores), f32 accumulation and master weights, admitted only after its checks pass.
    #[arg(long, env = "LATENT_MATMUL", default_value = "auto")]
    pub matmul: String,
    /// Request at most this many storage buffers a shader stage (default: the adapter's
    /// limit). 8 is WebGPU's default: the kernels that bind more (the IWAE's bound with its
    /// loss, the grouped weight gradients) give way to the forms that bind fewer, e.g. to
    /// time both with `latent bench`.
    #[arg(long, env = "LATENT_MAX_STORAGE_BUFFERS")]
    pub max_storage_buffers: Option<u32>,
    /// A training step's weight gradients: auto (on GPUs with --matmul auto, each set of up
    /// to 4 layers timed once as one grouped dispatch against a dispatch a layer, the
    /// faster cached; elsewhere a dispatch a layer), separate, grouped, or grouped:MxNxK or
    /// grouped:MxNxKx8 (the grouped kernel's tiles), each with a trailing p to prefetch. When
    /// every set is grouped, Adam runs in the same dispatches.
    #[arg(long, env = "LATENT_WEIGHT_GRADS", default_value = "auto")]
    pub weight_grads: String,
    /// Build the kernels without wgpu's runtime checks (naga's index clamps and loop
    /// counters), for fewer instructions in their loops. latent's kernels keep their
    /// accesses in bounds by their own guards (`latent validate --unchecked-kernels` checks
    /// them on this adapter); the autotune caches its choice apart. Off by default.
    #[arg(
        long,
        env = "LATENT_UNCHECKED_KERNELS",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub unchecked_kernels: bool,
}

impl GpuArgs {
    pub fn options(&self) -> Result<GpuOptions, latent::Error> {
        let policy: MatmulPolicy = self.matmul.parse()?;
        self.weight_grads.parse::<WeightGradsPolicy>()?;
        Ok(GpuOptions {
            backend: self.backend.parse()?,
            adapter: self.adapter.clone(),
            cooperative_matrix: policy == MatmulPolicy::Force(MatmulVariant::CoopF16),
            max_storage_buffers: self.max_storage_buffers,
        })
    }

    /// Turns wgpu's runtime checks off for the kernels of `ctx` with --unchecked-kernels,
    /// saying so.
    pub fn apply_runtime_checks(&self, ctx: &GpuContext) {
        if self.unchecked_kernels {
            // SAFETY: the user asked for it; only latent's own kernels run on `ctx`, and
            // they keep their accesses in bounds and their loops finite for the shapes their
            // host code accepts (GpuContext::set_runtime_checks).
            unsafe { ctx.set_runtime_checks(false) };
            eprintln!("kernels built without wgpu's runtime checks (--unchecked-kernels)");
        }
    }

    /// Applies --unchecked-kernels, then chooses the matmul variants of `ctx` by --matmul
    /// (tuning them on first use of an adapter) and its weight-gradient policy by
    /// --weight-grads, printing cache warnings and a line when it tuned.
    pub fn choose_matmul(&self, ctx: &GpuContext) -> Result<(), latent::Error> {
        self.apply_runtime_checks(ctx);
        let policy: MatmulPolicy = self.matmul.parse()?;
        ctx.set_weight_grads_policy(self.weight_grads.parse::<WeightGradsPolicy>()?);
        let cache = autotune::default_cache_path();
        if policy == MatmulPolicy::Auto && cache.is_none() {
            eprintln!("warning: no cache directory (set LATENT_CACHE_DIR): the matmul autotune runs every time");
        }
        let started = std::time::Instant::now();
        let selection = autotune::select_matmul(ctx, policy, cache.as_deref())?;
        for warning in &selection.warnings {
            eprintln!("warning: {warning}");
        }
        if let [first, ..] = &selection.timings[..] {
            if first.variant == MatmulVariant::CoopF16 {
                let worst = selection
                    .timings
                    .iter()
                    .map(|t| t.max_abs_err)
                    .fold(0.0f32, f32::max);
                eprintln!(
                    "coop-f16 admitted on {}: within the bound of f16 operands of the CPU twin on {} model shapes (largest error {worst:.2e})",
                    ctx.info.name,
                    selection.timings.len()
                );
            }
        }
        if selection.source == ChoiceSource::Tuned {
            eprintln!(
                "matmul tuned for {} in {:.1} s: {} (general), {} (skinny)",
                ctx.info.name,
                started.elapsed().as_secs_f64(),
                selection.choice.general,
                selection.choice.skinny
            );
        }
        selection.apply(ctx);
        Ok(())
    }
}

/// Which data set, for train, encode and reconstruct.
#[derive(Args)]
pub struct DataArgs {
    /// mnist, digits, or a .csv / .npy file (rows are samples). Default: with a checkpoint
    /// (or --resume), the data set it was trained on when that is mnist or digits; else
    /// MNIST when found (--data-dir, LATENT_DATA_DIR, ../shared/data/mnist, data/mnist),
    /// else digits.
    #[arg(long)]
    pub data: Option<String>,
    /// Directory holding the MNIST IDX files.
    #[arg(long, env = "LATENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// CSV column (from 0) holding integer labels, left out of the features.
    #[arg(long)]
    pub label_column: Option<usize>,
    /// A file of labels for the rows of --data (or of the FILE of encode and score): .npy of
    /// shape (rows,) or (rows, 1), or a one-column CSV; integers in 0..=255 (e.g. y.npy
    /// beside X.npy).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Share of a data set without its own test set held out for testing (default 0.1, or
    /// the checkpoint's).
    #[arg(long)]
    pub test_fraction: Option<f64>,
}

/// A trained model to use.
#[derive(Args)]
pub struct UseArgs {
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Run on the CPU twins even when a GPU is present.
    #[arg(long)]
    pub cpu: bool,
    /// The run directory holding model.safetensors and config.json.
    #[arg(long)]
    pub checkpoint: PathBuf,
}
