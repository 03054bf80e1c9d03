// The importance weight of a VAE sample, in logs: with z = μ + σ·ε drawn from q(z|x),
//   log w = log p(x|z) + log p(z) − log q(z|x)
//         = −recon_weight · recon − ½ Σ_c (z² − ε² − logvar)
// (the ½ log 2π of p(z) and q(z|x) cancel; recon is the per-row reconstruction loss, BCE or
// Σ (x − μ)², with the weight training gives it). μ and logvar come as one tensor, stats
// (rows, 2·cols): row r holds μ in columns [0, cols) and logvar in [cols, 2·cols); dstats has
// the same layout. Includes lib/grid.wgsl.
//   log_weight: logw (rows) from recon (rows), z, eps (rows, cols) and stats' logvar half;
//       one workgroup per row. With STATS_REPEAT = K, stats holds an IWAE's data rows in
//       place of their K repeats: sample row r reads row r / K.
//   log_weight_backward: from dlogw (rows), dz (+)= −dlogw[r] · z (rows, cols) and
//       dstats (+)= [0 | ½ dlogw[r]] (rows, 2·cols); dz written, or added when ACCUMULATE_Z;
//       both halves of dstats written (the μ half with zeros), or the logvar half added to
//       and the μ half left as it is when ACCUMULATE_STATS. The gradient of recon,
//       −recon_weight · dlogw, goes to the loss kernels' backward_rows. ε is noise, a
//       constant.

override ACCUMULATE_Z: bool = false;
override ACCUMULATE_STATS: bool = false;
override STATS_REPEAT: u32 = 1u;  // log_weight: rows of z a row of stats stands for

struct Params {
    rows: u32,
    cols: u32,
    recon_weight: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> logw: array<f32>;    // (rows)
@group(0) @binding(2) var<storage, read> recon: array<f32>;         // (rows)
@group(0) @binding(3) var<storage, read> z: array<f32>;             // (rows, cols)
@group(0) @binding(4) var<storage, read> eps: array<f32>;           // (rows, cols)
@group(0) @binding(5) var<storage, read> stats: array<f32>;         // (rows / STATS_REPEAT, 2·cols): μ | logvar
@group(0) @binding(6) var<storage, read_write> dz: array<f32>;      // (rows, cols)
@group(0) @binding(7) var<storage, read_write> dstats: array<f32>;  // (rows, 2·cols): dμ | dlogvar
@group(0) @binding(8) var<storage, read> dlogw: array<f32>;         // (rows)

// Where μ of latent element i = r·cols + c sits in stats (rows, 2·cols); logvar is cols later.
fn mu_index(i: u32) -> u32 {
    let r = i / params.cols;
    let c = i % params.cols;
    return r * 2u * params.cols + c;
}

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
    let stats_row = (row / STATS_REPEAT) * 2u * params.cols;
    for (var c = local; c < params.cols; c += WORKGROUP_SIZE) {
        let i = row * params.cols + c;
        let logvar = stats[stats_row + params.cols + c];
        sum += z[i] * z[i] - eps[i] * eps[i] - logvar;
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
    let m = mu_index(i);
    let lv = m + params.cols;
    let d = dlogw[i / params.cols];
    var d_z = -d * z[i];
    var d_logvar = 0.5 * d;
    if (ACCUMULATE_Z) {
        d_z += dz[i];
    }
    dz[i] = d_z;
    if (ACCUMULATE_STATS) {
        dstats[lv] = dstats[lv] + d_logvar;  // the μ half gets 0 added: left as it is
    } else {
        dstats[m] = 0.0;
        dstats[lv] = d_logvar;
    }
}
