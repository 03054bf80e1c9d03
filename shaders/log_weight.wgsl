// The importance weight of a VAE sample, in logs: with z = μ + σ·ε drawn from q(z|x),
//   log w = log p(x|z) + log p(z) − log q(z|x)
//         = −recon_weight · recon − ½ Σ_c (z² − ε² − logvar)
// (the ½ log 2π of p(z) and q(z|x) cancel; recon is the per-row reconstruction loss, BCE or
// Σ (x − μ)², with the weight training gives it). Includes lib/grid.wgsl.
//   log_weight: logw (rows) from recon (rows), z, eps, logvar (rows, cols); one workgroup per row
//   log_weight_backward: from dlogw (rows), dz (+)= −dlogw[r] · z and dlogvar (+)= ½ dlogw[r]
//       (rows, cols), each written, or added when ACCUMULATE_Z / ACCUMULATE_LOGVAR; the
//       gradient of recon, −recon_weight · dlogw, goes to the loss kernels' backward_rows.
//       ε is noise, a constant.

override ACCUMULATE_Z: bool = false;
override ACCUMULATE_LOGVAR: bool = false;

struct Params {
    rows: u32,
    cols: u32,
    recon_weight: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> logw: array<f32>;  // (rows)
@group(0) @binding(2) var<storage, read> recon: array<f32>;       // (rows)
@group(0) @binding(3) var<storage, read> z: array<f32>;           // (rows, cols)
@group(0) @binding(4) var<storage, read> eps: array<f32>;         // (rows, cols)
@group(0) @binding(5) var<storage, read> logvar: array<f32>;      // (rows, cols)
@group(0) @binding(6) var<storage, read_write> dz: array<f32>;      // (rows, cols)
@group(0) @binding(7) var<storage, read_write> dlogvar: array<f32>; // (rows, cols)
@group(0) @binding(8) var<storage, read> dlogw: array<f32>;         // (rows)

@compute @workgroup_size(WORKGROUP_SIZE)
fn log_weight(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let row = flat_group(group, groups);
    if (row >= params.rows) {
        return;  // the whole workgroup leaves together
    }
    var sum = 0.0;
    for (var c = local; c < params.cols; c += WORKGROUP_SIZE) {
        let i = row * params.cols + c;
        sum += z[i] * z[i] - eps[i] * eps[i] - logvar[i];
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        logw[row] = -params.recon_weight * recon[row] - 0.5 * total;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn log_weight_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i >= params.rows * params.cols) {
        return;
    }
    let d = dlogw[i / params.cols];
    var d_z = -d * z[i];
    var d_logvar = 0.5 * d;
    if (ACCUMULATE_Z) {
        d_z += dz[i];
    }
    if (ACCUMULATE_LOGVAR) {
        d_logvar += dlogvar[i];
    }
    dz[i] = d_z;
    dlogvar[i] = d_logvar;
}
