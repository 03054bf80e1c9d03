#!/usr/bin/env bash
# The issue-4 measurements on a lent GPU machine (the device tool), in two halves:
#
#   bash dev/device_run.sh pack      here: release binaries, MNIST and the Vulkan loader's
#                                    packages into the ignored folders carry/ and .gl/
#   bash dev/device_run.sh measure   there (the device machine reaches no registry): unpack
#                                    the loader, then info, validate --full (with coop-f16),
#                                    bench (large matmuls, all configs, breakdown, a real
#                                    epoch; its notes say whether each model's weight
#                                    gradients were tuned grouped or separate, with both
#                                    times; then the VAE and AE steps with separate weight
#                                    gradients; then kernels, 4096³ and the VAE and AE epochs
#                                    with coop-f16; then the IWAE's and the conditional VAE's
#                                    steps and epochs; then the
#                                    tiled kernels with wgpu's runtime checks on and off), the dev
#                                    matmul harness (its fused VAE
#                                    head part first, alone; then all with --coop-f16), and 10
#                                    MNIST epochs on the GPU executor (then 2 with coop-f16);
#                                    every output into $OUT (at most 8 files)
#   bash dev/device_run.sh matmul    there: the dev matmul harness with --coop-f16 --large
#                                    (1024×2048×2048 and 4096³; its CPU twin checks alone take
#                                    minutes), into $OUT/dev_matmul_large.txt
#
# The device calls, one each (10 minutes at most a call):
#   run(command="bash dev/device_run.sh measure", carry=["carry", ".gl"])
#   run(command="bash dev/device_run.sh matmul", carry=["carry", ".gl"])
# LATENT_DEVICE_QUICK=1 shortens `measure` (1 epoch, the AE's bench only, 4 steps) to try the
# script on lavapipe here; OUT defaults to ./runs/device.
set -euo pipefail
cd "$(dirname "$0")/.."

pack() {
    cargo build --release --bin latent --example dev_matmul
    mkdir -p carry/bin carry/mnist .gl
    cp target/release/latent target/release/examples/dev_matmul carry/bin/
    cp ../shared/data/mnist/*.gz carry/mnist/
    # The loader (the device machine has NVIDIA's driver but no libvulkan), as the device
    # tool's README downloads it: amd64 packages, whatever this machine is.
    local apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64
        -oDir::State::Lists=/tmp/amd64)
    mkdir -p /tmp/amd64/partial
    apt-get "${apt_options[@]}" update -qq
    (cd .gl && apt-get "${apt_options[@]}" download libvulkan1)
    du -sh carry .gl
}

# The loader and the NVIDIA ICD where the machine lacks them; the binaries' folder.
setup_device() {
    if ! ldconfig -p | grep 'libvulkan\.so\.1' >/dev/null; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if carry/bin/latent info --backend vulkan 2>&1 | grep "No GPU adapter" >/dev/null && [ -f "$icd" ]; then
        export VK_DRIVER_FILES="$icd"
    fi
}

matmul() {
    local out="${OUT:-runs/device}"
    mkdir -p "$out"
    setup_device
    timeout 570 carry/bin/dev_matmul --coop-f16 --large >"$out/dev_matmul_large.txt" 2>&1 || true
    ls -l "$out"
}

measure() {
    local out="${OUT:-runs/device}" epochs=10 extra=(--large --epoch) configs=vae,ae,wide
    local checks=(--large --configs vae,ae)
    if [ "${LATENT_DEVICE_QUICK:-0}" = 1 ]; then
        epochs=1 extra=(--steps 4) configs=ae checks=(--no-kernels --steps 4 --configs ae)
    fi
    mkdir -p "$out"
    setup_device
    local bin=carry/bin
    export LATENT_DATA_DIR=carry/mnist LATENT_CACHE_DIR="$out/cache"
    # Each step keeps going when one fails, so that one run brings back all it can.
    # Timeouts: 590 s in all, under the device tool's 600 s a call; bench, which tunes every
    # model shape of three configs against 14 candidates first, has the most.
    {
        nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv || true
        "$bin/latent" info --backend vulkan
    } >"$out/info.txt" 2>&1 || true
    # --matmul coop-f16 creates the device with cooperative matrices: validate then checks
    # the f32 variants and coop-f16 alike.
    timeout 90 "$bin/latent" validate --backend vulkan --full --matmul coop-f16 \
        >"$out/validate.txt" 2>&1 || true
    timeout 200 "$bin/latent" bench --backend vulkan "${extra[@]}" --configs "$configs" \
        --breakdown --json "$out/bench.json" >"$out/bench.txt" 2>&1 || true
    # The kernel table with every matmul on coop-f16 (4096³ included: the issue's ≥ 300
    # TFLOP/s), and the VAE and AE epochs.
    timeout 50 "$bin/latent" bench --backend vulkan --matmul coop-f16 --large --epoch \
        --configs vae,ae >>"$out/bench.txt" 2>&1 || true
    # The VAE and AE steps again with a dispatch a layer for the weight gradients and the
    # Adam dispatch: against the auto run above, what grouping (and fused Adam) changed.
    timeout 20 "$bin/latent" bench --backend vulkan --no-kernels --configs vae,ae \
        --weight-grads separate >>"$out/bench.txt" 2>&1 || true
    # The IWAE (K = 5) step and epoch, the encoder run once a row (session 13), then the
    # conditional VAE's (session 20; printed after the IWAE's, so a timeout keeps those),
    # then the denoising and sparse autoencoders' (sessions 22 and 23); apart, so that their
    # shapes' tuning cannot starve the issue's configs above.
    timeout 25 "$bin/latent" bench --backend vulkan --no-kernels --configs iwae,cvae,dae,sparse \
        "${extra[@]}" >>"$out/bench.txt" 2>&1 || true
    # The IWAE's dispatches timed alone, its loss and bound fused (11 storage buffers), then
    # with 8 storage buffers a stage (WebGPU's default) as three dispatches (session 24).
    timeout 10 "$bin/latent" bench --backend vulkan --no-kernels --configs iwae --breakdown \
        >>"$out/bench.txt" 2>&1 || true
    timeout 10 "$bin/latent" bench --backend vulkan --no-kernels --configs iwae --breakdown \
        --max-storage-buffers 8 >>"$out/bench.txt" 2>&1 || true
    # wgpu's runtime checks (naga's index clamps and loop counters) on, then off, with the
    # same kernels (--matmul default: tiled; a dispatch a layer): the kernel table, 4096³
    # included, and the VAE and AE steps.
    for unchecked in false true; do
        LATENT_UNCHECKED_KERNELS=$unchecked timeout 25 "$bin/latent" bench --backend vulkan \
            --matmul default --weight-grads separate "${checks[@]}" \
            >>"$out/bench.txt" 2>&1 || true
    done
    # The fused VAE head first, on its own: the full harness below may run out of time
    # before its last part.
    timeout 15 "$bin/dev_matmul" --only vae_head_linear >"$out/dev_matmul.txt" 2>&1 || true
    timeout 45 "$bin/dev_matmul" --coop-f16 >>"$out/dev_matmul.txt" 2>&1 || true
    timeout 45 "$bin/latent" train --backend vulkan --data mnist --epochs "$epochs" \
        --out "$out/vae-mnist" >"$out/train.txt" 2>&1 || true
    timeout 30 "$bin/latent" train --backend vulkan --data mnist --epochs 2 \
        --matmul coop-f16 --out "$out/vae-mnist-coop" >>"$out/train.txt" 2>&1 || true
    cp "$out/vae-mnist/loss.csv" "$out/loss.csv" 2>/dev/null || true
    rm -rf "$out/vae-mnist" "$out/vae-mnist-coop" "$out/cache"
    ls -l "$out"
}

case "${1:-}" in
    pack) pack ;;
    measure) measure ;;
    matmul) matmul ;;
    *)
        echo "usage: bash dev/device_run.sh pack|measure|matmul" >&2
        exit 2
        ;;
esac
