// The importance-weighted bound of a VAE: for each data row, K consecutive rows hold the log
// weights of its K samples, and
//   bound = log (1/K Σ_k w_k) = m + log(1/K Σ_k e^(log w_k − m)),  m = max_k log w_k
// (stable for any log weights). Includes lib/grid.wgsl.
//   neg_log_mean_exp: out (rows) = −bound of the row's group, written into each of the K rows
//       of the group, so that Σ over rows = K · Σ over groups, like every other per-row term
//       of the K-fold repeated batch. One workgroup per group.
//   neg_log_mean_exp_backward: dlogw (rows) = −scale · k · w_k / Σ_j w_j within each group:
//       the gradient of scale · Σ_rows out (each group's −bound counted in its k rows).
//   neg_log_mean_exp_forward_backward: totals (rows) += out and dlogw in one pass, for a
//       training step whose bound rows are only summed (one dispatch, not three).
//   neg_log_mean_exp_alone / _alone_backward / _alone_forward_backward: the same, one thread a
//       group looping over its k rows in order: for small k (a training step's K samples),
//       where a workgroup a group of 5 leaves almost every thread idle (on lavapipe 1.4 ms for
//       128 groups of 5).

struct Params {
    groups: u32,
    k: u32,
    scale: f32,  // backward only
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (groups · k)
@group(0) @binding(2) var<storage, read> logw: array<f32>;       // (groups · k)
@group(0) @binding(3) var<storage, read_write> dlogw: array<f32>; // (groups · k)
@group(0) @binding(4) var<storage, read_write> totals: array<f32>; // (groups · k) running sums of out

var<workgroup> partial_max: array<f32, WORKGROUP_SIZE>;

// Max of `value` over the workgroup, returned to every thread. Call from uniform control flow.
fn workgroup_max(value: f32, local: u32) -> f32 {
    partial_max[local] = value;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
        if (local < stride) {
            partial_max[local] = max(partial_max[local], partial_max[local + stride]);
        }
        workgroupBarrier();
    }
    let result = partial_max[0];
    workgroupBarrier();
    return result;
}

// (m, Σ_k e^(logw_k − m)) over the group of k log weights from `first`, m their max; returned
// to every thread. Call from uniform control flow.
fn group_max_and_sum(first: u32, local: u32) -> vec2<f32> {
    var largest = -3.4028235e38;
    for (var i = local; i < params.k; i += WORKGROUP_SIZE) {
        largest = max(largest, logw[first + i]);
    }
    let m = workgroup_max(largest, local);
    var sum = 0.0;
    for (var i = local; i < params.k; i += WORKGROUP_SIZE) {
        sum += exp(logw[first + i] - m);
    }
    return vec2<f32>(m, workgroup_sum(sum, local));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn neg_log_mean_exp(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_group(group, groups);
    if (g >= params.groups) {
        return;  // the whole workgroup leaves together
    }
    let first = g * params.k;
    let shift_and_sum = group_max_and_sum(first, local);
    let m = shift_and_sum.x;
    let total = shift_and_sum.y;
    let bound = m + log(total / f32(params.k));
    for (var i = local; i < params.k; i += WORKGROUP_SIZE) {
        out[first + i] = -bound;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn neg_log_mean_exp_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_group(group, groups);
    if (g >= params.groups) {
        return;  // the whole workgroup leaves together
    }
    let first = g * params.k;
    let shift_and_sum = group_max_and_sum(first, local);
    let m = shift_and_sum.x;
    let total = shift_and_sum.y;
    let factor = -params.scale * f32(params.k) / total;
    for (var i = local; i < params.k; i += WORKGROUP_SIZE) {
        dlogw[first + i] = factor * exp(logw[first + i] - m);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn neg_log_mean_exp_forward_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_group(group, groups);
    if (g >= params.groups) {
        return;  // the whole workgroup leaves together
    }
    let first = g * params.k;
    let shift_and_sum = group_max_and_sum(first, local);
    let m = shift_and_sum.x;
    let total = shift_and_sum.y;
    let bound = m + log(total / f32(params.k));
    let factor = -params.scale * f32(params.k) / total;
    for (var i = local; i < params.k; i += WORKGROUP_SIZE) {
        totals[first + i] += -bound;
        dlogw[first + i] = factor * exp(logw[first + i] - m);
    }
}

// (m, Σ_k e^(logw_k − m)) over the group of k log weights from `first`, by one thread in
// order of k.
fn group_max_and_sum_alone(first: u32) -> vec2<f32> {
    var m = -3.4028235e38;
    for (var i = 0u; i < params.k; i++) {
        m = max(m, logw[first + i]);
    }
    var sum = 0.0;
    for (var i = 0u; i < params.k; i++) {
        sum += exp(logw[first + i] - m);
    }
    return vec2<f32>(m, sum);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn neg_log_mean_exp_alone(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_index(group, groups, local);
    if (g >= params.groups) {
        return;
    }
    let first = g * params.k;
    let shift_and_sum = group_max_and_sum_alone(first);
    let bound = shift_and_sum.x + log(shift_and_sum.y / f32(params.k));
    for (var i = 0u; i < params.k; i++) {
        out[first + i] = -bound;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn neg_log_mean_exp_alone_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_index(group, groups, local);
    if (g >= params.groups) {
        return;
    }
    let first = g * params.k;
    let shift_and_sum = group_max_and_sum_alone(first);
    let factor = -params.scale * f32(params.k) / shift_and_sum.y;
    for (var i = 0u; i < params.k; i++) {
        dlogw[first + i] = factor * exp(logw[first + i] - shift_and_sum.x);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn neg_log_mean_exp_alone_forward_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_index(group, groups, local);
    if (g >= params.groups) {
        return;
    }
    let first = g * params.k;
    let shift_and_sum = group_max_and_sum_alone(first);
    let bound = shift_and_sum.x + log(shift_and_sum.y / f32(params.k));
    let factor = -params.scale * f32(params.k) / shift_and_sum.y;
    for (var i = 0u; i < params.k; i++) {
        totals[first + i] += -bound;
        dlogw[first + i] = factor * exp(logw[first + i] - shift_and_sum.x);
    }
}
