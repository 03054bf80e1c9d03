// Sum reductions over a row-major (rows, cols) matrix. Includes lib/grid.wgsl.
//   sum_rows: out (rows) = Σ_c x[r, c]     one workgroup per row
//   sum_cols: out (cols) = Σ_r x[r, c]     the bias gradient; COL_LANES columns per workgroup,
//                                          ROW_LANES threads down each column
//   sum_all:  out (1)    = scale · Σ_i x[i] [+ out, when ACCUMULATE]
//                                          one workgroup striding over the whole buffer; with
//                                          ACCUMULATE it keeps a running loss total on the GPU
//   sum_terms: total_t (1) += Σ_i x_t[i] for the terms t < 3 of a pass, x_t's first n_t
//                                          elements (term 0 on bindings 1 and 2, as sum_all's,
//                                          1 on 3 and 4, 2 on 5 and 6), workgroup t summing
//                                          term t as sum_all does (the same bits): a step's or
//                                          an evaluation batch's loss sums in one dispatch
// sum_rows and sum_cols write their output.

override COL_LANES: u32 = 64u;
override ROW_LANES: u32 = 4u;
override ACCUMULATE: bool = false;  // sum_all only

struct Params {
    rows: u32,    // sum_terms: n_0
    cols: u32,
    scale: f32,   // sum_all only
    _pad: u32,
    n_1: u32,     // sum_terms only
    n_2: u32,     // sum_terms only
    _pad_1: u32,
    _pad_2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (rows), (cols) or (1)
@group(0) @binding(2) var<storage, read> x: array<f32>;          // (rows, cols)
@group(0) @binding(3) var<storage, read_write> total_1: array<f32>;  // (1) sum_terms' term 1
@group(0) @binding(4) var<storage, read> x_1: array<f32>;            // (n_1)
@group(0) @binding(5) var<storage, read_write> total_2: array<f32>;  // (1) term 2
@group(0) @binding(6) var<storage, read> x_2: array<f32>;            // (n_2)

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

// Element i of sum_terms' term t.
fn term_value(t: u32, i: u32) -> f32 {
    if (t == 1u) {
        return x_1[i];
    }
    if (t == 2u) {
        return x_2[i];
    }
    return x[i];
}

// Adds `value` to sum_terms' total of term t.
fn add_to_total(t: u32, value: f32) {
    if (t == 1u) {
        total_1[0] = total_1[0] + value;
    } else if (t == 2u) {
        total_2[0] = total_2[0] + value;
    } else {
        out[0] = out[0] + value;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sum_terms(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let t = group.x;  // the same in the whole workgroup
    let n = select(select(params.rows, params.n_1, t == 1u), params.n_2, t == 2u);
    var sum = 0.0;
    for (var i = local; i < n; i += WORKGROUP_SIZE) {
        sum += term_value(t, i);
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        add_to_total(t, total);
    }
}
