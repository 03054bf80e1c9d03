//! Shared by the test binaries: one GPU context per test process, and fresh random seeds.
//!
//! Without a GPU adapter, a GPU test names itself on the terminal (written straight to
//! stderr, past the test harness's capture) and returns; with CI=true it fails instead.

#![allow(dead_code)]

use std::io::Write;
use std::sync::OnceLock;

use latent::gpu::{GpuContext, GpuOptions};

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
