// Mean-squared-error pieces, for reconstructions compared with their targets.
// Includes lib/grid.wgsl, lib/loss_target.wgsl (the target's rows may each serve
// TARGET_REPEAT consecutive rows) and lib/row_loss.wgsl (the element and its derivative).
//   mse_forward:  loss (rows) = Σ_c (x[r, c] - target[r, c])²      one workgroup per row;
//       with ADD_TO_TOTALS also totals[r] += loss[r] (a training step's loss whose rows other
//       ops read, such as an IWAE's log weights)
//   mse_backward: dx (rows, cols) = scale · 2 · (x - target)        writes dx
//   mse_backward_rows: dx = (scale + row_factor · row_grad[r]) · 2 · (x - target)
//   mse_forward_backward: totals[r] += loss[r] and dx = scale · 2 · (x - target) in one
//       pass, for a training step whose loss rows are only summed (one dispatch, not three)
// `scale` is the derivative of the training loss with respect to Σ_r loss[r]: 1/(rows·cols)
// for the mean over every element, 1/rows for a per-example sum.
// A subnormal dx is kept or flushed as the GPU does (WGSL leaves it to the implementation);
// the CPU twin flushes it to 0 (on x86, subnormals slow the next multiply).

override ADD_TO_TOTALS: bool = false;  // the forward only

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    row_factor: f32,  // backward_rows only
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;  // (rows)
@group(0) @binding(2) var<storage, read> x: array<f32>;           // (rows, cols) prediction
@group(0) @binding(3) var<storage, read> expected: array<f32>;    // (rows / TARGET_REPEAT, cols) the target (`target` is a WGSL keyword)
@group(0) @binding(5) var<storage, read> row_grad: array<f32>;   // (rows), with row_factor
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;    // (rows, cols)
@group(0) @binding(6) var<storage, read_write> totals: array<f32>;  // (rows) running sums of loss

@compute @workgroup_size(WORKGROUP_SIZE)
fn mse_forward(
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
        sum += mse_element(x[i], target_at(i));
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
fn mse_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.rows * params.cols) {
        dx[i] = params.scale * 2.0 * (x[i] - target_at(i));
    }
}

// The backward when each row's loss also feeds another op (the importance weights of IWAE
// training): dL/dloss[r] = scale + row_factor · row_grad[r].
@compute @workgroup_size(WORKGROUP_SIZE)
fn mse_backward_rows(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.rows * params.cols) {
        let d_loss = params.scale + params.row_factor * row_grad[i / params.cols];
        dx[i] = d_loss * mse_element_grad(x[i], target_at(i));
    }
}

// The loss and its gradient together: each row's loss is added to its running total (the
// training step's loss is only summed, over steps, by the host) and dx is written.
@compute @workgroup_size(WORKGROUP_SIZE)
fn mse_forward_backward(
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
        let diff = x[i] - target_at(i);
        sum += diff * diff;
        dx[i] = params.scale * 2.0 * diff;
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        totals[row] += total;
    }
}
