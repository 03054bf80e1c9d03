//! Shared by the test binaries: one GPU context per test process, and fresh random seeds.
//!
//! Without a GPU adapter, a GPU test names itself on the terminal (written straight to
//! stderr, past the test harness's capture) and returns; with CI=true it fails instead.
//!
//! The coop-f16 tests take a device of their own with cooperative matrices requested
//! ([`coop_device`]). Where the adapter lacks them, [`coop_elsewhere`] runs the test again on
//! the lavapipe with cooperative matrices that LATENT_COOP_LAVAPIPE names (.ci/run sets it up
//! with dev/lavapipe_coop.sh), as a child process that must pass; without one it says loudly
//! that the test did not run.

#![allow(dead_code)]

use std::io::Write;
use std::sync::OnceLock;

use latent::gpu::{GpuContext, GpuOptions};
use latent::kernels::matmul::MatmulVariant;

static CONTEXT: OnceLock<Result<GpuContext, String>> = OnceLock::new();

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The shared GPU context (LATENT_BACKEND and LATENT_ADAPTER choose it), or `None` after a
/// loud notice when there is no adapter outside CI.
pub fn gpu(test: &str) -> Option<&'static GpuContext> {
    let context = CONTEXT.get_or_init(|| {
        GpuOptions::from_env()
            .and_then(|o| GpuContext::new(&o))
            .map_err(|e| e.to_string())
    });
    match context {
        Ok(ctx) => Some(ctx),
        Err(e) if in_ci() => panic!("{test}: no GPU adapter with CI=true: {e}"),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "\n*** GPU TEST NOT RUN: {test} — {e}");
            None
        }
    }
}

/// A context on wgpu's GL backend (llvmpipe in CI; .ci/run installs Mesa's EGL and GL
/// drivers where they are missing), or `None` after a loud notice when there is none outside
/// CI. Every test that calls it gets a context of its own.
pub fn gl(test: &str) -> Option<GpuContext> {
    let options = GpuOptions {
        backend: latent::gpu::Backend::Gl,
        ..GpuOptions::from_env().expect("GPU options from the environment")
    };
    match GpuContext::new(&options) {
        Ok(ctx) => Some(ctx),
        Err(e) if in_ci() => panic!("{test}: no GL adapter with CI=true: {e}"),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "\n*** GL TEST NOT RUN: {test} — {e}");
            None
        }
    }
}

/// Each value's bits, for comparisons that must hold to the bit (NaNs included).
pub fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// The seed for this run's random inputs: LATENT_TEST_SEED if set, else fresh from the clock.
/// Failure messages print it so that a failure can be repeated.
pub fn seed() -> u64 {
    if let Some(seed) = std::env::var("LATENT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

/// A device on the adapter [`gpu`] uses, created with cooperative matrices requested, and
/// whether the coop-f16 matmul runs on it; `None` where [`gpu`] found no adapter.
pub fn coop_device(test: &str) -> Option<(GpuContext, latent::Result<()>)> {
    gpu(test)?;
    let options = GpuOptions {
        cooperative_matrix: true,
        ..GpuOptions::from_env().expect("GPU options from the environment")
    };
    let ctx = GpuContext::new(&options).expect("the adapter gpu() opened");
    let runs = MatmulVariant::CoopF16.check(&ctx);
    Some((ctx, runs))
}

/// For a coop-f16 test whose device (`ctx`) refused coop-f16 (`why`): the test again, as a
/// child process, on the lavapipe of LATENT_COOP_LAVAPIPE, asserted to have run and passed;
/// without that lavapipe, a loud notice that it did not run.
pub fn coop_elsewhere(test: &str, ctx: &GpuContext, why: &latent::Error) {
    let Some(root) = std::env::var_os("LATENT_COOP_LAVAPIPE") else {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** GPU TEST NOT RUN: {test} on {} — {why}",
            ctx.describe()
        );
        return;
    };
    assert!(
        std::env::var_os("LATENT_COOP_CHILD").is_none(),
        "{test}: on the lavapipe of LATENT_COOP_LAVAPIPE, coop-f16 is still refused: {why}"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/dev/lavapipe_coop.sh");
    let exe = std::env::current_exe().expect("this test binary");
    let output = std::process::Command::new("bash")
        .args([script.as_ref(), "run".as_ref(), exe.as_os_str()])
        .args(["--exact", test, "--test-threads", "1"])
        .env("LAVAPIPE_ROOT", &root)
        .env("LATENT_COOP_CHILD", "1")
        .output()
        .expect("bash runs dev/lavapipe_coop.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed") && !stderr.contains("NOT RUN"),
        "{test} on the lavapipe with cooperative matrices ({root:?}): {}\n{stdout}\n{stderr}",
        output.status
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n{test}: ran and passed on the lavapipe with cooperative matrices in {root:?}"
    );
}
