// KL divergence of the VAE posterior N(μ, σ²) from the prior N(0, 1), with logvar = log σ².
// μ and logvar come as one tensor, stats (rows, 2·cols): row r holds μ in columns [0, cols)
// and logvar in [cols, 2·cols); its gradient dstats has the same layout. Includes
// lib/grid.wgsl.
//   kl_forward:  kl (rows) = -½ Σ_c (1 + logvar - μ² - e^logvar)        one workgroup per row
//   kl_backward: dstats (rows, 2·cols) = [scale · μ | scale · ½ (e^logvar - 1)]
//                both halves written, or added to when ACCUMULATE (they also receive the
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
@group(0) @binding(1) var<storage, read_write> kl: array<f32>;      // (rows)
@group(0) @binding(2) var<storage, read> stats: array<f32>;         // (rows, 2·cols): μ | logvar
@group(0) @binding(3) var<storage, read_write> dstats: array<f32>;  // (rows, 2·cols): dμ | dlogvar

// Where μ of latent element i = r·cols + c sits in stats (rows, 2·cols); logvar is cols later.
fn mu_index(i: u32) -> u32 {
    let r = i / params.cols;
    let c = i % params.cols;
    return r * 2u * params.cols + c;
}

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
        let m = mu_index(row * params.cols + c);
        let mu = stats[m];
        let logvar = stats[m + params.cols];
        sum += 1.0 + logvar - mu * mu - exp(logvar);
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
    let m = mu_index(i);
    let lv = m + params.cols;
    var d_mu = params.scale * stats[m];
    var d_logvar = params.scale * 0.5 * (exp(stats[lv]) - 1.0);
    if (ACCUMULATE) {
        d_mu += dstats[m];
        d_logvar += dstats[lv];
    }
    dstats[m] = d_mu;
    dstats[lv] = d_logvar;
}
