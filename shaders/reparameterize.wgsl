// The VAE's reparameterization trick: z = μ + e^(½·logvar) · ε with ε ~ N(0, 1) drawn on the
// GPU. Includes lib/philox.wgsl and lib/grid.wgsl.
//   reparameterize_forward:  z, eps (n) from mu, logvar (n). Thread g draws elements 4g..4g+3
//       from philox4x32_10((g, step, stream, 0), (seed_lo, seed_hi)) through Box-Muller, so
//       ε depends only on (seed, step, stream, element) and the CPU twin draws the same bits.
//       `step` is read from a buffer so that the step counter can live on the GPU.
//   reparameterize_backward: dmu = dz,  dlogvar = dz · ε · ½ e^(½·logvar)      (n)
//       each written, or added to when ACCUMULATE_MU / ACCUMULATE_LOGVAR.

override ACCUMULATE_MU: bool = false;
override ACCUMULATE_LOGVAR: bool = false;

struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> z: array<f32>;        // (n)
@group(0) @binding(2) var<storage, read_write> eps: array<f32>;      // (n), saved for backward
@group(0) @binding(3) var<storage, read> mu: array<f32>;             // (n)
@group(0) @binding(4) var<storage, read> logvar: array<f32>;         // (n)
@group(0) @binding(5) var<storage, read> step: array<u32>;           // (1) training step
@group(0) @binding(6) var<storage, read_write> dmu: array<f32>;      // (n)
@group(0) @binding(7) var<storage, read_write> dlogvar: array<f32>;  // (n)
@group(0) @binding(8) var<storage, read> eps_saved: array<f32>;      // (n)
@group(0) @binding(9) var<storage, read> dz: array<f32>;             // (n)

@compute @workgroup_size(WORKGROUP_SIZE)
fn reparameterize_forward(
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
    for (var j = 0u; j < 4u; j++) {
        let i = g * 4u + j;
        if (i < params.n) {
            eps[i] = normals[j];
            z[i] = mu[i] + exp(0.5 * logvar[i]) * normals[j];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reparameterize_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i >= params.n) {
        return;
    }
    var d_mu = dz[i];
    var d_logvar = dz[i] * eps_saved[i] * 0.5 * exp(0.5 * logvar[i]);
    if (ACCUMULATE_MU) {
        d_mu += dmu[i];
    }
    if (ACCUMULATE_LOGVAR) {
        d_logvar += dlogvar[i];
    }
    dmu[i] = d_mu;
    dlogvar[i] = d_logvar;
}
