#!/usr/bin/env bash
# Checks that the crate builds, and its CPU path passes its tests, where CI does not run it.
#
#   bash dev/check_portability.sh         # builds: the oldest Rust that Cargo.toml's
#                                         # rust-version names (every target); 64-bit ARM
#                                         # (Linux, and macOS for Metal), where the CPU twins
#                                         # take their portable paths instead of the x86
#                                         # AVX-512/AVX2 ones; Windows (DX12): library and CLI
#   bash dev/check_portability.sh arm     # the whole test suite built for aarch64 Linux and
#                                         # run under qemu-aarch64 (Debian: installs
#                                         # qemu-user and the aarch64 cross compiler); the GPU
#                                         # tests say they did not run (no aarch64 Vulkan)
#
# Needs the network once: rustup and apt download what they lack.
#
# Session 18: rustc 1.89 checks every target; aarch64-unknown-linux-gnu, aarch64-apple-darwin
# and x86_64-pc-windows-msvc check the library and the CLI, with no warning. `arm`: 213
# tests pass on aarch64 under qemu with no warning, of which 63 GPU tests said they did not
# run; the other 150 ran (the portable tiles and lanes, the probes, the CLI's); about 3
# minutes from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

builds() {
    local msrv
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
}

arm_tests() {
    rustup target add aarch64-unknown-linux-gnu
    if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
        apt-get install -y -qq qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    fi
    # The CLI tests start the binary themselves: let the kernel hand aarch64 programs to
    # qemu (binfmt_misc, where this machine lets us register it).
    local binfmt=/proc/sys/fs/binfmt_misc
    if [ ! -e "$binfmt/qemu-aarch64" ]; then
        [ -e "$binfmt/register" ] || mount binfmt_misc -t binfmt_misc "$binfmt" || true
        printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64:' \
            > "$binfmt/register" || echo "warning: no binfmt_misc: tests/cli.rs will fail to start the binary"
    fi
    export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    # Not CI=true: there is no aarch64 Vulkan driver here, so the GPU tests say they did not run.
    CI=false RUSTFLAGS="-D warnings" cargo test --release --target aarch64-unknown-linux-gnu \
        --target-dir target/portability
}

case "${1:-builds}" in
    builds) builds ;;
    arm) arm_tests ;;
    *) echo "usage: bash dev/check_portability.sh [builds|arm]" >&2; exit 2 ;;
esac
