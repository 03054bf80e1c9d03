// Binary cross-entropy from logits, for Bernoulli likelihoods (pixels in [0, 1]).
// Includes lib/grid.wgsl, lib/loss_target.wgsl (the target's rows may each serve
// TARGET_REPEAT consecutive rows) and lib/row_loss.wgsl (the element and its derivative).
//   bce_forward:  loss (rows) = Σ_c max(z, 0) - z·t + log(1 + e^-|z|)   one workgroup per row;
//       with ADD_TO_TOTALS also totals[r] += loss[r] (a training step's loss whose rows other
//       ops read, such as an IWAE's log weights)
//   bce_backward: dz (rows, cols) = scale · (σ(z) - t)                    writes dz
//   bce_backward_rows: dz = (scale + row_factor · row_grad[r]) · (σ(z) - t)
//   bce_forward_backward: totals[r] += loss[r] and dz = scale · (σ(z) - t) in one pass,
//       for a training step whose loss rows are only summed (one dispatch, not three)
// `scale` is the derivative of the training loss with respect to Σ_r loss[r].
// A subnormal dz is kept or flushed as the GPU does (WGSL leaves it to the implementation);
// the CPU twin flushes it to 0 (on x86, subnormals slow the next multiply).

override ADD_TO_TOTALS: bool = false;  // the forward only

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    row_factor: f32,  // backward_rows only
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;   // (rows)
@group(0) @binding(2) var<storage, read> logits: array<f32>;       // (rows, cols)
@group(0) @binding(3) var<storage, read> expected: array<f32>;     // (rows / TARGET_REPEAT, cols) the target (`target` is a WGSL keyword) in [0, 1]
@group(0) @binding(5) var<storage, read> row_grad: array<f32>;   // (rows), with row_factor
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>; // (rows, cols)
@group(0) @binding(6) var<storage, read_write> totals: array<f32>;  // (rows) running sums of loss

@compute @workgroup_size(WORKGROUP_SIZE)
fn bce_forward(
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
        sum += bce_element(logits[i], target_at(i));
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        loss[row] = total;
        if (ADD_TO_TOTALS) {
            totals[row] += total;
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn bce_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.rows * params.cols) {
        dlogits[i] = params.scale * bce_element_grad(logits[i], target_at(i));
    }
}

// The backward when each row's loss also feeds another op (the importance weights of IWAE
// training): dL/dloss[r] = scale + row_factor · row_grad[r].
@compute @workgroup_size(WORKGROUP_SIZE)
fn bce_backward_rows(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.rows * params.cols) {
        let d_loss = params.scale + params.row_factor * row_grad[i / params.cols];
        dlogits[i] = d_loss * bce_element_grad(logits[i], target_at(i));
    }
}

// The loss and its gradient together: each row's loss is added to its running total (the
// training step's loss is only summed, over steps, by the host) and dlogits is written.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bce_forward_backward(
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
        let z = logits[i];
        // One exponential for both: e^-|z| is the e^-z or e^z of stable_sigmoid's branches.
        let e = exp(-abs(z));
        sum += max(z, 0.0) - z * target_at(i) + log(1.0 + e);
        dlogits[i] = params.scale * (select(e / (1.0 + e), 1.0 / (1.0 + e), z >= 0.0) - target_at(i));
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        totals[row] += total;
    }
}
