// KL divergence of the VAE posterior N(μ, σ²) from the prior N(0, 1), with logvar = log σ².
// Includes lib/grid.wgsl.
//   kl_forward:  kl (rows) = -½ Σ_c (1 + logvar - μ² - e^logvar)        one workgroup per row
//   kl_backward: dmu = scale · μ,  dlogvar = scale · ½ (e^logvar - 1)    (rows, cols)
//                writes, or adds to dmu and dlogvar when ACCUMULATE (they also receive the
//                reparameterization's gradient)
// `scale` is the derivative of the training loss with respect to Σ_r kl[r] (β / rows, say).

override ACCUMULATE: bool = false;

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> kl: array<f32>;       // (rows)
@group(0) @binding(2) var<storage, read> mu: array<f32>;             // (rows, cols)
@group(0) @binding(3) var<storage, read> logvar: array<f32>;         // (rows, cols)
@group(0) @binding(4) var<storage, read_write> dmu: array<f32>;      // (rows, cols)
@group(0) @binding(5) var<storage, read_write> dlogvar: array<f32>;  // (rows, cols)

@compute @workgroup_size(WORKGROUP_SIZE)
fn kl_forward(
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
        sum += 1.0 + logvar[i] - mu[i] * mu[i] - exp(logvar[i]);
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        kl[row] = -0.5 * total;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn kl_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i >= params.rows * params.cols) {
        return;
    }
    var d_mu = params.scale * mu[i];
    var d_logvar = params.scale * 0.5 * (exp(logvar[i]) - 1.0);
    if (ACCUMULATE) {
        d_mu += dmu[i];
        d_logvar += dlogvar[i];
    }
    dmu[i] = d_mu;
    dlogvar[i] = d_logvar;
}
