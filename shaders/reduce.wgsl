// Sum reductions over a row-major (rows, cols) matrix. Includes lib/grid.wgsl.
//   sum_rows: out (rows) = Σ_c x[r, c]     one workgroup per row
//   sum_cols: out (cols) = Σ_r x[r, c]     the bias gradient; COL_LANES columns per workgroup,
//                                          ROW_LANES threads down each column
//   sum_all:  out (1)    = scale · Σ_i x[i] [+ out, when ACCUMULATE]
//                                          one workgroup striding over the whole buffer; with
//                                          ACCUMULATE it keeps a running loss total on the GPU
// sum_rows and sum_cols write their output.

override COL_LANES: u32 = 64u;
override ROW_LANES: u32 = 4u;
override ACCUMULATE: bool = false;  // sum_all only

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,   // sum_all only
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (rows), (cols) or (1)
@group(0) @binding(2) var<storage, read> x: array<f32>;          // (rows, cols)

var<workgroup> column_partials: array<f32, COL_LANES * ROW_LANES>;  // [row lane][column]

@compute @workgroup_size(WORKGROUP_SIZE)
fn sum_rows(
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
        sum += x[row * params.cols + c];
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        out[row] = total;
    }
}

@compute @workgroup_size(COL_LANES, ROW_LANES)
fn sum_cols(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let col = flat_group(group, groups) * COL_LANES + local.x;
    var sum = 0.0;
    if (col < params.cols) {
        for (var r = local.y; r < params.rows; r += ROW_LANES) {
            sum += x[r * params.cols + col];
        }
    }
    column_partials[local.y * COL_LANES + local.x] = sum;
    workgroupBarrier();
    if (local.y == 0u && col < params.cols) {
        var total = 0.0;
        for (var lane = 0u; lane < ROW_LANES; lane++) {
            total += column_partials[lane * COL_LANES + local.x];
        }
        out[col] = total;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sum_all(@builtin(local_invocation_index) local: u32) {
    let n = params.rows * params.cols;
    var sum = 0.0;
    for (var i = local; i < n; i += WORKGROUP_SIZE) {
        sum += x[i];
    }
    let total = params.scale * workgroup_sum(sum, local);
    if (local == 0u) {
        if (ACCUMULATE) {
            out[0] = out[0] + total;
        } else {
            out[0] = total;
        }
    }
}
