// Each row repeated k times in a row, and the backward that sums each group of k rows
// back into one: an IWAE encodes each data row once and repeats its μ | logvar for its K
// samples. Includes lib/grid.wgsl.
//   repeat_rows:    y (rows·k, cols), y[r·k + j] = x[r] for j < k, x (rows, cols)
//   sum_row_groups: dx (rows, cols) = Σ_{j<k} dy[r·k + j] (j in order), dy (rows·k, cols);
//                   writes, or adds when ACCUMULATE

override ACCUMULATE: bool = false;

struct Params {
    rows: u32,   // rows of x and dx (the groups)
    cols: u32,
    k: u32,      // rows per group
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;   // (rows·k, cols)
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (rows, cols)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // (rows, cols)
@group(0) @binding(4) var<storage, read> dy: array<f32>;        // (rows·k, cols)

@compute @workgroup_size(WORKGROUP_SIZE)
fn repeat_rows(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    let cols = params.cols;
    if (i >= params.rows * params.k * cols) {
        return;
    }
    y[i] = x[(i / cols / params.k) * cols + i % cols];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sum_row_groups(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    let cols = params.cols;
    if (i >= params.rows * cols) {
        return;
    }
    let first = (i / cols) * params.k * cols + i % cols;
    var sum = 0.0;
    for (var j = 0u; j < params.k; j++) {
        sum += dy[first + j * cols];
    }
    if (ACCUMULATE) {
        sum += dx[i];
    }
    dx[i] = sum;
}
