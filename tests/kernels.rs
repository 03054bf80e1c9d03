//! Every kernel against its CPU twin on the GPU (lavapipe in CI), forward and backward, on
//! fresh random inputs at awkward shapes (1, primes, and the model shapes 128×784×400), with
//! NaN-poisoned outputs. The shapes and the bound each comparison allows live in
//! src/validate/checks.rs, shared with `latent validate`.

mod common;

use latent::validate::{check_families, Family, ShapeSet, Validator};

fn check(test: &str, family: Family) {
    let Some(ctx) = common::gpu(test) else { return };
    let seed = common::seed();
    let mut validator = Validator::new(ctx, seed, 0);
    let rows = check_families(&mut validator, family, ShapeSet::Full);
    assert!(!rows.is_empty(), "{test}: no checks ran");
    let failed: Vec<_> = rows.iter().filter(|r| !r.passed).collect();
    assert!(
        failed.is_empty(),
        "{test} with LATENT_TEST_SEED={seed}: {failed:#?}"
    );
}

#[test]
fn matmul_matches_cpu() {
    check("matmul_matches_cpu", Family::Matmul);
}

#[test]
fn reductions_match_cpu() {
    check("reductions_match_cpu", Family::Reduce);
}

#[test]
fn activations_match_cpu() {
    check("activations_match_cpu", Family::Activation);
}

#[test]
fn mse_matches_cpu() {
    check("mse_matches_cpu", Family::Mse);
}

#[test]
fn bce_matches_cpu() {
    check("bce_matches_cpu", Family::Bce);
}

#[test]
fn philox_matches_cpu_and_known_answers() {
    check("philox_matches_cpu_and_known_answers", Family::Philox);
}

#[test]
fn reparameterize_matches_cpu() {
    check("reparameterize_matches_cpu", Family::Reparameterize);
}

#[test]
fn kl_matches_cpu() {
    check("kl_matches_cpu", Family::Kl);
}

#[test]
fn corrupt_matches_cpu() {
    check("corrupt_matches_cpu", Family::Corrupt);
}

#[test]
fn sparsity_penalties_match_cpu() {
    check("sparsity_penalties_match_cpu", Family::Sparsity);
}

#[test]
fn concat_matches_cpu() {
    check("concat_matches_cpu", Family::Concat);
}

#[test]
fn importance_weights_match_cpu() {
    check("importance_weights_match_cpu", Family::ImportanceWeight);
}

#[test]
fn adam_matches_cpu() {
    check("adam_matches_cpu", Family::Adam);
}

#[test]
fn sgd_matches_cpu() {
    check("sgd_matches_cpu", Family::Sgd);
}

#[test]
fn gather_matches_cpu() {
    check("gather_matches_cpu", Family::Gather);
}

#[test]
fn advance_step_matches_cpu() {
    check("advance_step_matches_cpu", Family::Step);
}
