#!/usr/bin/env bash
# Runs src/parallel.rs's unit tests (the CPU twins' thread pool, its unsafe lifetime erasure
# and gate) under Miri, which checks for undefined behaviour and data races, over several
# thread schedules. The pool needs nothing else from the crate, so it is compiled alone in
# a throwaway crate (the whole crate would pull wgpu's FFI into Miri).
#
#   bash dev/miri_parallel.sh         # needs: rustup component add --toolchain nightly miri
#
# Miri's machine has one core unless told otherwise, and with one thread there is no pool:
# -Zmiri-num-cpus=4 gives it 3 workers (until session 20 the runs checked the inline path
# only; a test now fails under Miri without 4 threads). The pool's shared state is leaked on
# purpose (it lives as long as the process), hence ignore-leaks.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
crate="$(mktemp -d)"
trap 'rm -rf "$crate"' EXIT
mkdir -p "$crate/src"
cat > "$crate/Cargo.toml" <<TOML
[package]
name = "miri_parallel"
version = "0.1.0"
edition = "2021"
[dependencies]
TOML
cat > "$crate/src/lib.rs" <<RUST
#![allow(dead_code)]
#[path = "$here/src/parallel.rs"]
mod parallel;
RUST
cd "$crate"
MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-num-cpus=4 -Zmiri-many-seeds=0..4" cargo +nightly miri test
