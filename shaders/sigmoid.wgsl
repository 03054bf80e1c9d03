// Sigmoid: y = 1 / (1 + e^-x), computed without overflow; dx = dy · y · (1 - y)
// Element-wise over n values. Includes lib/grid.wgsl.
//   sigmoid_forward:  y (n) from x (n)
//   sigmoid_backward: dx (n) from the saved output y (n) and dy (n); writes dx.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;   // (n) forward output
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (n) forward input
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // (n) backward output
@group(0) @binding(4) var<storage, read> y_saved: array<f32>;   // (n) forward output, saved
@group(0) @binding(5) var<storage, read> dy: array<f32>;        // (n) incoming gradient

// 1 / (1 + e^-v) for v ≥ 0, e^v / (1 + e^v) for v < 0: no exponential of a large positive.
fn stable_sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sigmoid_forward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.n) {
        y[i] = stable_sigmoid(x[i]);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sigmoid_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.n) {
        dx[i] = dy[i] * y_saved[i] * (1.0 - y_saved[i]);
    }
}
