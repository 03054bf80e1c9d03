// Tanh: y = tanh(x); dx = dy · (1 - y²)
// Element-wise over n values. Includes lib/grid.wgsl.
//   tanh_forward:  y (n) from x (n)
//   tanh_backward: dx (n) from the saved output y (n) and dy (n); writes dx.

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
fn tanh_forward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.n) {
        // Clamped: some drivers build tanh from exponentials, which give inf/inf = NaN for large |x|;
        // tanh(±15) is ±1 in f32 already.
        y[i] = tanh(clamp(x[i], -15.0, 15.0));
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn tanh_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i < params.n) {
        dx[i] = dy[i] * (1.0 - y_saved[i] * y_saved[i]);
    }
}
