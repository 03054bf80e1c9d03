// L1 penalty on a code, the sparse autoencoder's first penalty. Includes lib/grid.wgsl.
//   l1_forward:  loss (rows) = Σ_c |x[r, c]|                        one workgroup per row
//   l1_backward: dx (rows, cols) = scale · sign(x)                  writes, or adds when
//                ACCUMULATE (the code also receives the decoder's gradient); sign(0) = 0
//   l1_forward_backward: totals[r] += loss[r] and dx = scale · sign(x) (written) in one
//                pass, for a training step whose penalty rows are only summed (one
//                dispatch, not three)
// `scale` is the derivative of the training loss with respect to Σ_r loss[r] (λ / rows).

override ACCUMULATE: bool = false;

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;  // (rows)
@group(0) @binding(2) var<storage, read> x: array<f32>;           // (rows, cols)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;    // (rows, cols)
@group(0) @binding(4) var<storage, read_write> totals: array<f32>; // (rows) running sums of loss

@compute @workgroup_size(WORKGROUP_SIZE)
fn l1_forward(
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
        sum += abs(x[row * params.cols + c]);
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        loss[row] = total;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn l1_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i >= params.rows * params.cols) {
        return;
    }
    var d = params.scale * sign(x[i]);
    if (ACCUMULATE) {
        d += dx[i];
    }
    dx[i] = d;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn l1_forward_backward(
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
        let v = x[i];
        sum += abs(v);
        dx[i] = params.scale * sign(v);
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        totals[row] += total;
    }
}
