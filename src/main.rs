//! The `latent` command line: a thin layer over the library. Parses arguments, calls the
//! library, prints. Exit codes: 0 success, 1 a check failed or the GPU failed, 2 bad input.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use latent::gpu::{list_adapters, Backend, GpuContext, GpuOptions};
use latent::validate::{validate_all, CheckResult, ShapeSet};

#[derive(Parser)]
#[command(
    name = "latent",
    version,
    about = "Train the autoencoder family on any GPU with hand-written WGSL kernels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List GPU adapters with their backend, features and limits.
    Info(GpuArgs),
    /// Run every kernel on the GPU and on its CPU twin and compare them.
    Validate(ValidateArgs),
}

#[derive(Args)]
struct GpuArgs {
    /// Graphics API: auto, vulkan, metal, dx12 or gl.
    #[arg(long, env = "LATENT_BACKEND", default_value = "auto")]
    backend: String,
    /// Adapter index (as `latent info` lists them) or part of its name.
    #[arg(long, env = "LATENT_ADAPTER")]
    adapter: Option<String>,
}

impl GpuArgs {
    fn options(&self) -> Result<GpuOptions, latent::Error> {
        Ok(GpuOptions {
            backend: self.backend.parse()?,
            adapter: self.adapter.clone(),
        })
    }
}

#[derive(Args)]
struct ValidateArgs {
    #[command(flatten)]
    gpu: GpuArgs,
    /// Also check the full model shapes (batch 128, 784 inputs, 400 hidden units).
    #[arg(long)]
    full: bool,
    /// Seed of the random inputs (default: from the clock; printed so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Timed repetitions per kernel (0: do not time).
    #[arg(long, default_value_t = 10)]
    repeats: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info(&args),
        Command::Validate(args) => validate(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                latent::Error::InvalidArgument(_)
                | latent::Error::Shape { .. }
                | latent::Error::AdapterNotFound { .. } => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

fn info(args: &GpuArgs) -> Result<ExitCode, latent::Error> {
    let backend: Backend = args.backend.parse()?;
    let adapters = list_adapters(backend);
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
        println!(
            "    features: f16 {}, subgroups {}, timestamp queries {} (inside passes {}), cooperative matrix {}",
            yes(f.shader_f16),
            yes(f.subgroups),
            yes(f.timestamp_query),
            yes(f.timestamp_query_inside_passes),
            if f.cooperative_matrix.is_empty() { "no".to_string() } else { f.cooperative_matrix.join(", ") }
        );
        let l = &a.limits;
        println!(
            "    limits: max buffer {} MiB, max storage binding {} MiB, workgroup storage {} KiB, invocations/workgroup {}, workgroups/dim {}",
            l.max_buffer_size >> 20,
            l.max_storage_buffer_binding_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn yes(on: bool) -> &'static str {
    if on {
        "yes"
    } else {
        "no"
    }
}

fn validate(args: &ValidateArgs) -> Result<ExitCode, latent::Error> {
    let ctx = GpuContext::new(&args.gpu.options()?)?;
    let seed = args.seed.unwrap_or_else(clock_seed);
    println!("latent validate on {}", ctx.describe());
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
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

fn print_table(results: &[CheckResult]) {
    println!(
        "{:<24} {:<30} {:>12} {:>12} {:>10}  verdict",
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
            "{:<24} {:<30} {:>12.3e} {:>12.3e} {:>10}  {}",
            r.kernel, r.shape, r.max_abs_err, r.max_rel_err, us, verdict
        );
    }
}
