//! The GPU commands: `info` (adapters), `validate` (every kernel against its CPU twin),
//! `bench` (kernel and training-step figures).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use latent::data::{self};
use latent::gpu::{list_adapters, Backend, GpuContext};
use latent::kernels::autotune::MatmulPolicy;
use latent::kernels::matmul::{coop_size_offered, MatmulChoice, MatmulVariant};
use latent::kernels::matmul_grouped_tn::WeightGradsPolicy;
use latent::validate::{left_out, validate_all, CheckResult, ShapeSet};

use crate::args::GpuArgs;

#[derive(Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Also check the full model shapes (batch 128, 784 inputs, 400 hidden units).
    #[arg(long)]
    pub full: bool,
    /// Seed of the random inputs (default: from the clock; printed so a run can be repeated).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Timed repetitions per kernel (0: do not time).
    #[arg(long, default_value_t = 10)]
    pub repeats: u32,
}

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Training configs, comma-separated: vae (784-400-20), ae (784-256-784), wide
    /// (784-2048-2048-64 at batch 1024), iwae (the VAE on the IWAE bound, K = 5), cvae (the
    /// conditional VAE on 10 classes), dae (the denoising autoencoder 784-256-784, Gaussian
    /// noise σ = 0.5), sparse (the sparse autoencoder 784-256-784, L1 of weight 0.001).
    /// Default: vae, ae and wide, but wide only on a real GPU.
    #[arg(long, value_delimiter = ',')]
    pub configs: Option<Vec<String>>,
    /// Add the large matmuls (4096³ and 1024×2048×2048) to the kernel table.
    #[arg(long)]
    pub large: bool,
    /// Skip the kernel table.
    #[arg(long)]
    pub no_kernels: bool,
    /// Timed training steps per measurement (default: 256 on a GPU, 16 on a CPU adapter).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Steps per submit to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub steps_per_submit: Vec<u32>,
    /// Also time the CPU twins (the only path when no GPU adapter is found).
    #[arg(long)]
    pub cpu: bool,
    /// Also train one whole epoch per config (else epoch = steps per epoch × step time).
    #[arg(long)]
    pub epoch: bool,
    /// Also time each dispatch of one training step on its own: where a step's time goes.
    /// With --cpu, also each part of the CPU step (the gather, each op, Adam).
    #[arg(long)]
    pub breakdown: bool,
    /// Write every figure, with device, driver, date and commit, to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Directory holding the MNIST IDX files (else 60,000 synthetic rows of 784 bytes).
    #[arg(long, env = "LATENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

pub fn info(args: &GpuArgs) -> Result<ExitCode, latent::Error> {
    let backend: Backend = args.backend.parse()?;
    let adapters = list_adapters(backend);
    // What `train --cpu` (and train without a GPU, or with a software rasterizer) runs on.
    println!("CPU path: {}", latent::train::Device::Cpu.describe());
    if adapters.is_empty() {
        println!("No GPU adapter for backend {backend}.");
        println!("Install a Vulkan driver (without a GPU: `apt-get install -y mesa-vulkan-drivers libvulkan1` for lavapipe).");
        return Ok(ExitCode::from(1));
    }
    for a in &adapters {
        let i = &a.info;
        println!(
            "[{}] {} ({:?}, {:?})",
            a.index, i.name, i.backend, i.device_type
        );
        println!("    driver: {} {}", i.driver, i.driver_info);
        let f = &a.features;
        let subgroups = if f.subgroups {
            format!(
                "yes ({} to {} lanes)",
                i.subgroup_min_size, i.subgroup_max_size
            )
        } else {
            "no".to_string()
        };
        println!(
            "    features: f16 {}, subgroups {}, timestamp queries {} (inside passes {}), cooperative matrix {}",
            yes(f.shader_f16),
            subgroups,
            yes(f.timestamp_query),
            yes(f.timestamp_query_inside_passes),
            if f.cooperative_matrix.is_empty() { "no".to_string() } else { f.cooperative_matrix.join(", ") }
        );
        let l = &a.limits;
        println!(
            "    limits: max buffer {} MiB, max storage binding {} MiB, storage buffers/stage {}, workgroup storage {} KiB, invocations/workgroup {}, workgroups/dim {}",
            l.max_buffer_size >> 20,
            l.max_storage_buffer_binding_size >> 20,
            l.max_storage_buffers_per_shader_stage,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension
        );
        let untuned = MatmulChoice::default_for(i, f);
        println!(
            "    matmul: {} without tuning (the default, --matmul auto, tunes once and caches)",
            untuned.general
        );
        match coop_size_offered(i, f) {
            Ok(size) => println!(
                "    coop-f16: available ({size}x{size}x{size} f16 -> f32; --matmul coop-f16)"
            ),
            Err(_) if f.cooperative_matrix.is_empty() => {
                println!("    coop-f16: no (no cooperative matrices)")
            }
            Err(e) => println!("    coop-f16: no ({e})"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn yes(on: bool) -> &'static str {
    if on {
        "yes"
    } else {
        "no"
    }
}

pub fn validate(args: &ValidateArgs) -> Result<ExitCode, latent::Error> {
    let options = args.gpu.options()?;
    let ctx = GpuContext::new(&options)?;
    args.gpu.apply_runtime_checks(&ctx);
    let seed = args.seed.unwrap_or_else(clock_seed);
    println!("latent validate on {}", ctx.describe());
    // --matmul coop-f16 adds the coop-f16 checks where the adapter runs it.
    if options.cooperative_matrix {
        if let Err(why) = MatmulVariant::CoopF16.check(&ctx) {
            println!("coop-f16 not checked: {why}");
        }
    }
    println!(
        "seed {seed} (repeat with --seed {seed}); GPU times from {}",
        if ctx.features.timestamp_query {
            "timestamp queries"
        } else {
            "the wall clock"
        }
    );
    let shapes = if args.full {
        ShapeSet::Full
    } else {
        ShapeSet::Quick
    };
    let results = validate_all(&ctx, seed, shapes, args.repeats);
    print_table(&results);
    let failed = results.iter().filter(|r| !r.passed).count();
    println!(
        "{} checks, {} passed, {} failed",
        results.len(),
        results.len() - failed,
        failed
    );
    for kernel in left_out(&ctx) {
        println!("not checked on this device: {kernel}");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

pub fn print_table(results: &[CheckResult]) {
    // Columns as wide as their longest entry (padding counts characters, so "·" and "²"
    // take one column each).
    let width = |header: &str, column: &dyn Fn(&CheckResult) -> &str| {
        results
            .iter()
            .map(|r| column(r).chars().count())
            .chain([header.len()])
            .max()
            .unwrap_or(0)
    };
    let kernel_width = width("kernel", &|r| &r.kernel);
    let shape_width = width("shape", &|r| &r.shape);
    println!(
        "{:<kernel_width$} {:<shape_width$} {:>12} {:>12} {:>10}  verdict",
        "kernel", "shape", "max abs err", "max rel err", "GPU us"
    );
    for r in results {
        let us = r.gpu_us.map_or("-".to_string(), |us| format!("{us:.1}"));
        let verdict = if r.passed {
            "ok".to_string()
        } else {
            format!("FAIL {}", r.detail)
        };
        println!(
            "{:<kernel_width$} {:<shape_width$} {:>12.3e} {:>12.3e} {:>10}  {}",
            r.kernel, r.shape, r.max_abs_err, r.max_rel_err, us, verdict
        );
    }
}

pub fn bench(args: &BenchArgs) -> Result<ExitCode, latent::Error> {
    use latent::bench;
    if args.steps_per_submit.contains(&0) || args.steps == Some(0) {
        return Err(latent::Error::InvalidArgument(
            "--steps and --steps-per-submit must be at least 1".into(),
        ));
    }
    // Bad input before opening the GPU.
    args.gpu.matmul.parse::<MatmulPolicy>()?;
    args.gpu.weight_grads.parse::<WeightGradsPolicy>()?;
    let configs = args
        .configs
        .as_ref()
        .map(|names| {
            names
                .iter()
                .map(|n| n.parse())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let ctx = match GpuContext::new(&args.gpu.options()?) {
        Ok(ctx) => {
            args.gpu.choose_matmul(&ctx)?;
            Some(ctx)
        }
        Err(e) if args.cpu => {
            eprintln!("{e}\nTiming the CPU twins only.");
            None
        }
        Err(e) => return Err(e),
    };
    let mnist = data::mnist_dir(args.data_dir.as_deref())
        .map(|dir| data::load_mnist(&dir))
        .transpose()?
        .map(|(train, _)| train);
    let synthetic;
    let (data, data_name) = match &mnist {
        Some(train) => (train.into(), "mnist"),
        None => {
            synthetic = bench::synthetic_rows();
            let (bytes, labels, rows, width) = &synthetic;
            (bench::byte_data(bytes, labels, *rows, *width), "synthetic")
        }
    };
    let options = bench::BenchOptions {
        kernels: !args.no_kernels,
        large: args.large,
        configs,
        steps: args.steps,
        steps_per_submit: args.steps_per_submit.clone(),
        cpu: args.cpu,
        epoch: args.epoch,
        breakdown: args.breakdown,
    };
    if let Some(ctx) = &ctx {
        println!("latent bench on {}", ctx.describe());
        let choice = ctx.matmul_choice();
        println!(
            "matmul: {} (general), {} (skinny); weight gradients: {}; runtime checks: {}; storage buffers/stage {}; GPU times from {}",
            choice.general,
            choice.skinny,
            args.gpu.weight_grads,
            if ctx.runtime_checks() { "on" } else { "off" },
            ctx.limits.max_storage_buffers_per_shader_stage,
            if ctx.features.timestamp_query {
                "timestamp queries"
            } else {
                "the wall clock"
            }
        );
    }
    let report = bench::run(ctx.as_ref(), &options, data, data_name, &mut |line| {
        eprintln!("  {line}")
    })?;
    print_bench(&report);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| latent::Error::InvalidArgument(format!("bench report: {e}")))?;
        latent::io::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_bench(report: &latent::bench::BenchReport) {
    let load = report
        .load_average
        .map_or("-".into(), |l| format!("{l:.2}"));
    println!(
        "date {}, commit {}, data {}, load average {load}",
        report.date, report.commit, report.data
    );
    if let Some(cpu_path) = &report.cpu_path {
        println!("cpu: {cpu_path}");
    }
    if !report.kernels.is_empty() {
        println!(
            "{:<24} {:<22} {:<16} {:>12} {:>10}",
            "kernel", "shape", "variant", "GPU us", "rate"
        );
    }
    for k in &report.kernels {
        let rate = match (k.gflop_per_s, k.gbyte_per_s) {
            (Some(f), _) => format!("{f:.2} GFLOP/s"),
            (_, Some(b)) => format!("{b:.2} GB/s"),
            _ => "-".into(),
        };
        println!(
            "{:<24} {:<22} {:<16} {:>12.1} {:>10}",
            k.kernel,
            k.shape,
            k.variant.as_deref().unwrap_or("-"),
            k.gpu_us,
            rate
        );
    }
    for f in &report.steps {
        println!("{}", latent::bench::describe_step(f));
    }
    if !report.breakdown.is_empty() {
        println!(
            "{:<26} {:>3} {:<32} {:<28} {:<16} {:>12} {:>10} {:>9} {:>9}",
            "config",
            "#",
            "dispatch",
            "writes",
            "workgroups",
            "GPU us alone",
            "KB moved",
            "GB/s",
            "GFLOP/s"
        );
    }
    for d in &report.breakdown {
        let [x, y, z] = d.workgroups;
        println!(
            "{:<26} {:>3} {:<32} {:<28} {:<16} {:>12.1} {:>10.1} {:>9.2} {:>9}",
            d.config,
            d.index,
            d.kernel,
            if d.role.is_empty() { "-" } else { &d.role },
            format!("{x}x{y}x{z}"),
            d.gpu_us,
            d.bytes as f64 / 1e3,
            d.gbyte_per_s,
            d.gflop_per_s.map_or("-".into(), |f| format!("{f:.1}"))
        );
    }
    if !report.cpu_breakdown.is_empty() {
        println!(
            "{:<26} {:>3} {:<44} {:>10} {:>9}",
            "config", "#", "cpu step part", "us", "GFLOP/s"
        );
    }
    for p in &report.cpu_breakdown {
        println!(
            "{:<26} {:>3} {:<44} {:>10.1} {:>9}",
            p.config,
            p.index,
            p.part,
            p.us,
            p.gflop_per_s.map_or("-".into(), |f| format!("{f:.1}"))
        );
    }
    for note in &report.notes {
        println!("note: {note}");
    }
}
