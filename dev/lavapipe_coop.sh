#!/usr/bin/env bash
# Runs a command on a lavapipe that offers cooperative matrices (VK_KHR_cooperative_matrix,
# 8x8x8 f16 -> f32 on 8-lane subgroups), so that the coop-f16 matmul can be checked on a
# machine without a GPU. Debian 12's lavapipe (Mesa 22.3) lacks the extension; Mesa 26.1
# from trixie-backports has it. That Mesa needs a newer glibc and LLVM than Debian 12's, so
# its packages are unpacked (not installed) into a private root, and the command runs under
# that root's dynamic loader: nothing on the system changes.
#
#   bash dev/lavapipe_coop.sh setup                      # once: ~70 MB into $LAVAPIPE_ROOT
#   bash dev/lavapipe_coop.sh run target/release/latent validate --matmul coop-f16
#   bash dev/lavapipe_coop.sh run target/release/deps/kernels-<hash> coop
#
# .ci/run sets it up and exports LATENT_COOP_LAVAPIPE=$LAVAPIPE_ROOT, so that tests/kernels.rs
# reruns its coop-f16 test on it (LATENT_COOP_LAVAPIPE=/tmp/lavapipe-coop cargo test does the
# same here).
#
# $LAVAPIPE_ROOT defaults to /tmp/lavapipe-coop. Run binaries directly (not through cargo):
# the root's loader runs one program and the libraries it loads. Needs apt-get and dpkg.
set -euo pipefail

root="${LAVAPIPE_ROOT:-/tmp/lavapipe-coop}"
lib="$root/sysroot/usr/lib/x86_64-linux-gnu"

setup() {
    if [ -f "$root/lvp_icd.json" ]; then
        echo "lavapipe with cooperative matrices already in $root"
        return
    fi
    local apt="$root/apt"
    mkdir -p "$apt/etc/apt/preferences.d" "$apt/var/lib/apt/lists/partial" \
        "$apt/var/cache/apt/archives/partial" "$apt/var/lib/dpkg" "$root/sysroot"
    touch "$apt/var/lib/dpkg/status"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    cat > "$apt/etc/apt/sources.list" <<EOF
deb [signed-by=$keyring] http://deb.debian.org/debian trixie main
deb [signed-by=$keyring] http://deb.debian.org/debian trixie-backports main
EOF
    local options=(-o "Dir=$apt" -o "Dir::State::status=$apt/var/lib/dpkg/status"
        -o "Dir::Etc=$apt/etc/apt")
    apt-get "${options[@]}" update
    apt-get "${options[@]}" install -y --download-only -t trixie-backports \
        mesa-vulkan-drivers libvulkan1 libc6 libgcc-s1
    for deb in "$apt"/var/cache/apt/archives/*.deb; do
        dpkg -x "$deb" "$root/sysroot"
    done
    rm -f "$apt"/var/cache/apt/archives/*.deb
    cat > "$root/lvp_icd.json" <<EOF
{ "ICD": { "api_version": "1.4.0", "library_path": "$lib/libvulkan_lvp.so" }, "file_format_version": "1.0.0" }
EOF
    echo "lavapipe with cooperative matrices unpacked in $root"
}

run() {
    [ -f "$root/lvp_icd.json" ] || { echo "run '$0 setup' first" >&2; exit 1; }
    VK_ICD_FILENAMES="$root/lvp_icd.json" LATENT_BACKEND=vulkan \
        exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$@"
}

case "${1:-}" in
    setup) setup ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 setup | run PROGRAM [ARGS...]" >&2; exit 2 ;;
esac
