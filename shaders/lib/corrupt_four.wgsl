// Shared by corrupt.wgsl and gather.wgsl (prepended by the host after lib/philox.wgsl, WGSL
// has no #include): the corruption of four consecutive clean elements 4g .. 4g + 3 with the
// words of philox4x32_10((g, step, stream, 0), (seed_lo, seed_hi)), so that the noise depends
// only on (seed, step, stream, element) and the CPU twin draws the same bits:
//   kind 0, Gaussian:        y = clamp(x + amount·ε, 0, 1), ε ~ N(0, 1) by Box-Muller
//   kind 1, masking:         y = 0 where u < amount, else x          (u uniform in [0, 1))
//   kind 2, salt and pepper: y = 0 where u < amount/2, 1 where u < amount, else x
// The data are in [0, 1] (latent scales every data set into it), hence the clamp. Reads
// `params` (seed_lo, seed_hi, stream, kind, amount), which each file declares.

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

fn corrupt_four(clean: array<f32, 4>, g: u32, step_now: u32) -> array<f32, 4> {
    let bits = philox4x32_10(vec4<u32>(g, step_now, params.stream, 0u), vec2<u32>(params.seed_lo, params.seed_hi));
    let pair0 = box_muller(bits.x, bits.y);
    let pair1 = box_muller(bits.z, bits.w);
    let normals = array<f32, 4>(pair0.x, pair0.y, pair1.x, pair1.y);
    let uniforms = array<f32, 4>(
        uniform_closed_open(bits.x),
        uniform_closed_open(bits.y),
        uniform_closed_open(bits.z),
        uniform_closed_open(bits.w),
    );
    var noisy: array<f32, 4>;
    for (var j = 0u; j < 4u; j++) {
        noisy[j] = corrupt_one(clean[j], normals[j], uniforms[j]);
    }
    return noisy;
}
