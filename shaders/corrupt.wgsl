// Input corruption of the denoising autoencoder, drawn on the GPU at every step.
// Includes lib/philox.wgsl and lib/grid.wgsl.
//   corrupt: y (n) from the clean x (n). Thread g handles elements 4g..4g+3 with the words of
//       philox4x32_10((g, step, stream, 0), (seed_lo, seed_hi)), so the noise depends only on
//       (seed, step, stream, element) and the CPU twin draws the same bits.
//     kind 0, Gaussian:        y = clamp(x + amount·ε, 0, 1), ε ~ N(0, 1) by Box-Muller
//     kind 1, masking:         y = 0 where u < amount, else x          (u uniform in [0, 1))
//     kind 2, salt and pepper: y = 0 where u < amount/2, 1 where u < amount, else x
// The data are in [0, 1] (latent scales every data set into it), hence the clamp.
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

fn corrupt_one(clean: f32, normal: f32, u: f32) -> f32 {
    if (params.kind == 0u) {
        return clamp(clean + params.amount * normal, 0.0, 1.0);
    }
    if (params.kind == 1u) {
        return select(clean, 0.0, u < params.amount);
    }
    if (u < 0.5 * params.amount) {
        return 0.0;
    }
    return select(clean, 1.0, u < params.amount);
}

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
    let bits = philox4x32_10(vec4<u32>(g, step[0], params.stream, 0u), vec2<u32>(params.seed_lo, params.seed_hi));
    let pair0 = box_muller(bits.x, bits.y);
    let pair1 = box_muller(bits.z, bits.w);
    let normals = array<f32, 4>(pair0.x, pair0.y, pair1.x, pair1.y);
    let uniforms = array<f32, 4>(
        uniform_closed_open(bits.x),
        uniform_closed_open(bits.y),
        uniform_closed_open(bits.z),
        uniform_closed_open(bits.w),
    );
    for (var j = 0u; j < 4u; j++) {
        let i = g * 4u + j;
        if (i < params.n) {
            y[i] = corrupt_one(x[i], normals[j], uniforms[j]);
        }
    }
}
