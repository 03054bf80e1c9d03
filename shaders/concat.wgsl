// Joining matrices side by side, and the backward that splits the gradient again: the
// conditional VAE joins a one-hot label to the encoder's input and to z. Includes
// lib/grid.wgsl.
//   concat_cols: y (rows, ca + cb) = [a (rows, ca) | b (rows, cb)]
//   slice_cols:  part (rows, cols) = whole[:, offset .. offset + cols], whole (rows, width);
//                writes, or adds when ACCUMULATE (the gradient of one side of a concat)

override ACCUMULATE: bool = false;

struct Params {
    rows: u32,
    cols_a: u32,   // concat: a's width; slice: the part's width
    cols_b: u32,   // concat: b's width; slice: the whole's width
    offset: u32,   // slice: the part's first column in the whole
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;     // (rows, ca + cb)
@group(0) @binding(2) var<storage, read> a: array<f32>;           // (rows, ca)
@group(0) @binding(3) var<storage, read> b: array<f32>;           // (rows, cb)
@group(0) @binding(4) var<storage, read_write> part: array<f32>;  // (rows, cols)
@group(0) @binding(5) var<storage, read> whole: array<f32>;       // (rows, width)

@compute @workgroup_size(WORKGROUP_SIZE)
fn concat_cols(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    let width = params.cols_a + params.cols_b;
    if (i >= params.rows * width) {
        return;
    }
    let row = i / width;
    let col = i % width;
    if (col < params.cols_a) {
        y[i] = a[row * params.cols_a + col];
    } else {
        y[i] = b[row * params.cols_b + col - params.cols_a];
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn slice_cols(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    let cols = params.cols_a;
    if (i >= params.rows * cols) {
        return;
    }
    var value = whole[(i / cols) * params.cols_b + params.offset + i % cols];
    if (ACCUMULATE) {
        value += part[i];
    }
    part[i] = value;
}
