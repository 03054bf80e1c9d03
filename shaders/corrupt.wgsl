// Input corruption of the denoising autoencoder, drawn on the GPU at every step.
// Includes lib/philox.wgsl, lib/grid.wgsl and lib/corrupt_four.wgsl (the noise kinds).
//   corrupt: y (n) from the clean x (n). Thread g handles elements 4g..4g+3 with the words of
//       philox4x32_10((g, step, stream, 0), (seed_lo, seed_hi)) (corrupt_four), so the noise
//       depends only on (seed, step, stream, element) and the CPU twin draws the same bits.
// gather.wgsl's gather_corrupt draws the same noise as it gathers the batch.
// There is no backward: the corrupted batch is data, not a function of the parameters.

struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    kind: u32,
    amount: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // (n) corrupted
@group(0) @binding(2) var<storage, read> x: array<f32>;        // (n) clean
@group(0) @binding(3) var<storage, read> step: array<u32>;     // (1) training step

@compute @workgroup_size(WORKGROUP_SIZE)
fn corrupt(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_index(group, groups, local);
    if (g * 4u >= params.n) {
        return;
    }
    var clean: array<f32, 4>;
    for (var j = 0u; j < 4u; j++) {
        let i = g * 4u + j;
        if (i < params.n) {
            clean[j] = x[i];
        }
    }
    let noisy = corrupt_four(clean, g, step[0]);
    for (var j = 0u; j < 4u; j++) {
        let i = g * 4u + j;
        if (i < params.n) {
            y[i] = noisy[j];
        }
    }
}
