#!/usr/bin/env bash
# Checks that the crate builds where CI does not run it: on the oldest Rust that Cargo.toml's
# rust-version names; for 64-bit ARM (Linux, and macOS for Metal), where the CPU twins take
# their portable paths instead of the x86 AVX-512/AVX2 ones; and for Windows (DX12).
#
#   bash dev/check_portability.sh     # needs the network once: rustup downloads what it lacks
#
# Session 18: rustc 1.89 checks every target; aarch64-unknown-linux-gnu, aarch64-apple-darwin
# and x86_64-pc-windows-msvc check the library and the CLI, with no warning. Tests and benches
# are not checked for those: criterion's alloca dependency compiles C with the target's compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
rustup toolchain install "$msrv" --profile minimal
rustup target add aarch64-unknown-linux-gnu aarch64-apple-darwin x86_64-pc-windows-msvc
export RUSTFLAGS="-D warnings"
echo "== rustc $msrv, every target"
cargo "+$msrv" check --all-targets --target-dir target/portability
for target in aarch64-unknown-linux-gnu aarch64-apple-darwin x86_64-pc-windows-msvc; do
    echo "== $target, library and CLI"
    cargo check --lib --bins --target "$target" --target-dir target/portability
done
echo "portable: rustc $msrv, aarch64 (Linux, macOS) and Windows build"
