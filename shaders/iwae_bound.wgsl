// The importance weighting of an IWAE's training step in one dispatch, a workgroup per data
// row g and its K samples (rows g·K .. g·K + K − 1):
//   logw  (rows)          log weights, as log_weight.wgsl's log_weight, a thread a sample
//                         summing its columns in order
//   totals (rows)         += −log (1/K Σ_k e^logw_k) of the row's group, in each of its K rows
//   dlogw (rows)          = −scale · K · softmax(logw) within the group: the gradient of
//                         scale · Σ totals, as log_mean_exp.wgsl's alone entries compute it
//                         (max and sums in order of k)
//   dz (rows, cols)       = −dlogw[r] · z
//   dstats (rows, 2·cols) = [0 | ½ dlogw[r]]   (log_weight_backward, written)
// The log weights pass through dlogw (each replaced by its gradient), so nothing else is
// stored. With STATS_REPEAT = K, stats holds the data rows' μ | logvar in place of their K
// repeats: sample row r reads row r / K. Every thread of a workgroup sums the group's K
// exps: for the small K of training. Includes lib/grid.wgsl.

override STATS_REPEAT: u32 = 1u;  // rows of z a row of stats stands for

struct Params {
    groups: u32,  // data rows
    k: u32,       // samples a data row
    cols: u32,    // latent columns
    recon_weight: f32,
    scale: f32,   // the derivative of the training loss with respect to Σ totals
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> totals: array<f32>;  // (groups·K) running sums
@group(0) @binding(2) var<storage, read_write> dlogw: array<f32>;   // (groups·K)
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;      // (groups·K, cols)
@group(0) @binding(4) var<storage, read_write> dstats: array<f32>;  // (groups·K, 2·cols): dμ | dlogvar
@group(0) @binding(5) var<storage, read> recon: array<f32>;         // (groups·K)
@group(0) @binding(6) var<storage, read> z: array<f32>;             // (groups·K, cols)
@group(0) @binding(7) var<storage, read> eps: array<f32>;           // (groups·K, cols)
@group(0) @binding(8) var<storage, read> stats: array<f32>;         // (groups·K / STATS_REPEAT, 2·cols): μ | logvar

// The log weight of sample row `row`, its sum in order of c (log_weight.wgsl's sums by
// workgroup; the CPU twin's order).
fn log_weight_of(row: u32) -> f32 {
    var sum = 0.0;
    let stats_row = (row / STATS_REPEAT) * 2u * params.cols;
    for (var c = 0u; c < params.cols; c++) {
        let i = row * params.cols + c;
        let logvar = stats[stats_row + params.cols + c];
        sum += z[i] * z[i] - eps[i] * eps[i] - logvar;
    }
    return -params.recon_weight * recon[row] - 0.5 * sum;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn iwae_bound_forward_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_group(group, groups);
    if (g >= params.groups) {
        return;  // the whole workgroup leaves together
    }
    let first = g * params.k;
    // A thread a sample: its log weight, kept in dlogw until the bound has read it.
    for (var s = local; s < params.k; s += WORKGROUP_SIZE) {
        dlogw[first + s] = log_weight_of(first + s);
    }
    storageBarrier();
    // Every thread: the max and Σ e^(logw − max), in order of k.
    var m = -3.4028235e38;
    for (var s = 0u; s < params.k; s++) {
        m = max(m, dlogw[first + s]);
    }
    var sum = 0.0;
    for (var s = 0u; s < params.k; s++) {
        sum += exp(dlogw[first + s] - m);
    }
    let bound = m + log(sum / f32(params.k));
    let factor = -params.scale * f32(params.k) / sum;
    storageBarrier();  // every thread has read the log weights
    for (var s = local; s < params.k; s += WORKGROUP_SIZE) {
        totals[first + s] += -bound;
        dlogw[first + s] = factor * exp(dlogw[first + s] - m);
    }
    storageBarrier();
    for (var e = local; e < params.k * params.cols; e += WORKGROUP_SIZE) {
        let row = first + e / params.cols;
        let c = e % params.cols;
        let d = dlogw[row];
        dz[row * params.cols + c] = -d * z[row * params.cols + c];
        let mu = row * 2u * params.cols + c;
        dstats[mu] = 0.0;
        dstats[mu + params.cols] = 0.5 * d;
    }
}
