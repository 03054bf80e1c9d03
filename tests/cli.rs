//! The `latent` binary end to end: `info`, `validate` (every kernel on the GPU against the
//! CPU), and bad arguments giving exit code 2 with a clear message.

mod common;

use std::process::{Command, Output};

fn latent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latent"))
        .args(args)
        .output()
        .expect("run latent")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_passes_on_this_gpu() {
    if common::gpu("validate_passes_on_this_gpu").is_none() {
        return;
    }
    let seed = common::seed().to_string();
    let out = latent(&["validate", "--repeats", "1", "--seed", &seed]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "latent validate failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("kernel") && stdout.contains("max abs err") && stdout.contains("verdict"),
        "{stdout}"
    );
    for kernel in [
        "matmul",
        "sum_cols",
        "relu",
        "sigmoid",
        "tanh",
        "mse",
        "bce",
        "philox_fill",
        "reparameterize",
        "kl",
        "adam_step",
        "sgd_step",
        "gather_u8",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(kernel)),
            "no {kernel} row in:\n{stdout}"
        );
    }
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

#[test]
fn info_lists_the_adapter() {
    if common::gpu("info_lists_the_adapter").is_none() {
        return;
    }
    let out = latent(&["info"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("[0]") && stdout.contains("features:") && stdout.contains("limits:"),
        "{stdout}"
    );
}

#[test]
fn unknown_backend_is_exit_code_2() {
    let out = latent(&["validate", "--backend", "glide"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown backend \"glide\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_adapter_index_is_exit_code_2() {
    if common::gpu("missing_adapter_index_is_exit_code_2").is_none() {
        return;
    }
    let out = latent(&["validate", "--adapter", "99"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no adapter matches \"99\""),
        "{}",
        text(&out.stderr)
    );
}
