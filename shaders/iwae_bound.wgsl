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
// exps: for the small K of training.
// iwae_bound_with_recon also does the reconstruction loss around it, where the device binds
// its 11 storage buffers (WebGPU's default is 8; the host falls back to bce_forward,
// iwae_bound_forward_backward and bce_backward_rows, or mse's):
//   recon (rows)          = Σ_c loss(out[r, c], target[r / TARGET_REPEAT, c]) (BCE from logits,
//                         or MSE with RECON_MSE), each row summed as bce_forward (mse_forward)
//                         sums it, added to recon_totals and kept in dlogw until the log
//                         weights read it
//   dout (rows, rcols)    = (recon_scale + recon_factor · dlogw[r]) · ∂loss/∂out, as
//                         bce_backward_rows (mse_backward_rows) writes it
// Includes lib/grid.wgsl and lib/row_loss.wgsl.

override STATS_REPEAT: u32 = 1u;  // rows of z a row of stats stands for
override TARGET_REPEAT: u32 = 1u; // rows of out a row of target stands for (with recon)
override RECON_MSE: bool = false; // the reconstruction loss is MSE, else BCE from logits

struct Params {
    groups: u32,  // data rows
    k: u32,       // samples a data row
    cols: u32,    // latent columns
    recon_weight: f32,
    scale: f32,   // the derivative of the training loss with respect to Σ totals
    recon_cols: u32,     // with recon: columns of out
    recon_scale: f32,    // with recon: the loss's own derivative with respect to Σ recon
    recon_factor: f32,   // with recon: ∂logw/∂recon's share, −recon_weight
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
// iwae_bound_with_recon's, in place of recon:
@group(0) @binding(9) var<storage, read_write> recon_totals: array<f32>; // (groups·K) running sums of recon
@group(0) @binding(10) var<storage, read> out: array<f32>;               // (groups·K, recon_cols) logits or prediction
@group(0) @binding(11) var<storage, read> expected: array<f32>;          // (groups·K / TARGET_REPEAT, recon_cols) the target
@group(0) @binding(12) var<storage, read_write> dout: array<f32>;        // (groups·K, recon_cols)

// The log weight of sample row `row` with reconstruction loss `recon_of_row`, its sum in
// order of c (log_weight.wgsl's sums by workgroup; the CPU twin's order).
fn log_weight_of(row: u32, recon_of_row: f32) -> f32 {
    var sum = 0.0;
    let stats_row = (row / STATS_REPEAT) * 2u * params.cols;
    for (var c = 0u; c < params.cols; c++) {
        let i = row * params.cols + c;
        let logvar = stats[stats_row + params.cols + c];
        sum += z[i] * z[i] - eps[i] * eps[i] - logvar;
    }
    return -params.recon_weight * recon_of_row - 0.5 * sum;
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
        dlogw[first + s] = log_weight_of(first + s, recon[first + s]);
    }
    storageBarrier();
    bound_and_backward(first, local);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn iwae_bound_with_recon(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_group(group, groups);
    if (g >= params.groups) {
        return;  // the whole workgroup leaves together
    }
    let first = g * params.k;
    // The K loss rows, each summed over the workgroup as bce_forward sums a row, into their
    // running totals and into dlogw for the log weights.
    for (var s = 0u; s < params.k; s++) {
        let row = first + s;
        var sum = 0.0;
        for (var c = local; c < params.recon_cols; c += WORKGROUP_SIZE) {
            sum += recon_element(row, c);
        }
        let total = workgroup_sum(sum, local);
        if (local == 0u) {
            recon_totals[row] += total;
            dlogw[row] = total;
        }
    }
    storageBarrier();
    for (var s = local; s < params.k; s += WORKGROUP_SIZE) {
        dlogw[first + s] = log_weight_of(first + s, dlogw[first + s]);
    }
    storageBarrier();
    bound_and_backward(first, local);
    storageBarrier();  // every dlogw of the group is written
    for (var e = local; e < params.k * params.recon_cols; e += WORKGROUP_SIZE) {
        let row = first + e / params.recon_cols;
        let c = e % params.recon_cols;
        let d_loss = params.recon_scale + params.recon_factor * dlogw[row];
        dout[row * params.recon_cols + c] = d_loss * recon_element_grad(row, c);
    }
}

// The loss of element (row, c) of out against its target.
fn recon_element(row: u32, c: u32) -> f32 {
    let t = expected[(row / TARGET_REPEAT) * params.recon_cols + c];
    let v = out[row * params.recon_cols + c];
    if (RECON_MSE) {
        return mse_element(v, t);
    }
    return bce_element(v, t);
}

// ∂loss/∂out of element (row, c).
fn recon_element_grad(row: u32, c: u32) -> f32 {
    let t = expected[(row / TARGET_REPEAT) * params.recon_cols + c];
    let v = out[row * params.recon_cols + c];
    if (RECON_MSE) {
        return mse_element_grad(v, t);
    }
    return bce_element_grad(v, t);
}

// From the group's log weights in dlogw (first .. first + K − 1): the bound into totals,
// dlogw replaced by its gradient, then dz and dstats.
fn bound_and_backward(first: u32, local: u32) {
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
