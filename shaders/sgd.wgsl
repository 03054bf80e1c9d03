// SGD with momentum, PyTorch's semantics (torch.optim.SGD), one thread per parameter.
// Includes lib/grid.wgsl.
//   sgd_step: with t = step[0] (1 for the first update) and g = grad + weight_decay · param,
//       if momentum ≠ 0: buf = g at t = 1, else buf = momentum·buf + (1 - dampening)·g;
//                        g = g + momentum·buf if nesterov, else g = buf
//       param -= lr · g

struct Params {
    n: u32,
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    nesterov: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;     // (n)
@group(0) @binding(2) var<storage, read_write> momentum_buffer: array<f32>;  // (n)
@group(0) @binding(3) var<storage, read> grad: array<f32>;            // (n)
@group(0) @binding(4) var<storage, read> step: array<u32>;            // (1)

@compute @workgroup_size(WORKGROUP_SIZE)
fn sgd_step(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i >= params.n) {
        return;
    }
    var g = grad[i] + params.weight_decay * param[i];
    if (params.momentum != 0.0) {
        var buf = g;
        if (step[0] > 1u) {
            buf = params.momentum * momentum_buffer[i] + (1.0 - params.dampening) * g;
        }
        momentum_buffer[i] = buf;
        if (params.nesterov != 0u) {
            g = g + params.momentum * buf;
        } else {
            g = buf;
        }
    }
    param[i] = param[i] - params.lr * g;
}
