// ReLU: y = max(x, 0); dx = dy · [y > 0]
// Element-wise over n values. Includes lib/grid.wgsl.
//   relu_forward:  y (n) from x (n)
//   relu_backward: dx (n) from the saved output y (n) and dy (n); writes dx.

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

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu_forward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.n) {
        y[i] = max(x[i], 0.0);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.n) {
        dx[i] = select(0.0, dy[i], y_saved[i] > 0.0);
    }
}
