// Adam with PyTorch's semantics (torch.optim.Adam, amsgrad off), a parameter (adam_step) or
// four (adam_step_vec4, for n a multiple of 4: 16-byte loads; the same formulas per element)
// at a time, each thread looping over the grid's stride (on GPUs the grid covers n and the
// loop runs once; CPU adapters get a smaller grid, kernels/adam.rs), every parameter of a
// model in one dispatch when they share one flat buffer. Includes lib/grid.wgsl and
// lib/adam_update.wgsl (the update itself).
//   adam_step: with g = grad + weight_decay · param,
//       m = β1·m + (1-β1)·g,  v = β2·v + (1-β2)·g²  (each 0 where subnormal: a moment
//           that decays below 2^-126 stays 0, as the CPU twin keeps it)
//       param -= step_size · m / (sqrt(v) / bias_correction2_sqrt + eps)
//   where t = state[0] is the step (1 for the first update), kept on the GPU, and
//   step_size = lr / (1 - β1^t), bias_correction2_sqrt = sqrt(1 - β2^t) are read from
//   step_scalars[2(t-1)], [2(t-1)+1]: a table the host fills once in f64, as PyTorch computes
//   them (in f32, 1 - 0.999^t cancels and would magnify pow's rounding a thousandfold).

struct Params {
    n: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;  // (n)
@group(0) @binding(2) var<storage, read_write> m: array<f32>;      // (n) first moment
@group(0) @binding(3) var<storage, read_write> v: array<f32>;      // (n) second moment
@group(0) @binding(4) var<storage, read> grad: array<f32>;         // (n)
@group(0) @binding(5) var<storage, read> step_scalars: array<f32>; // (2, steps) per-step scalars
@group(0) @binding(6) var<storage, read> state: array<u32>;        // (2) step, batch cursor
// The same buffers seen as vec4 (n / 4), for adam_step_vec4.
@group(0) @binding(7) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> v4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read> grad4: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn adam_step(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let s = adam_scalars();
    for (var i = flat_index(group, groups, local); i < params.n; i += grid_threads(groups)) {
        // One parameter in the first lane of the four-wide update.
        let updated = adam_update(s, vec4(param[i]), vec4(grad[i]), vec4(m[i]), vec4(v[i]));
        m[i] = updated.m.x;
        v[i] = updated.v.x;
        param[i] = updated.param.x;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn adam_step_vec4(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let s = adam_scalars();
    for (var i = flat_index(group, groups, local); i < params.n / 4u; i += grid_threads(groups)) {
        let updated = adam_update(s, param4[i], grad4[i], m4[i], v4[i]);
        m4[i] = updated.m;
        v4[i] = updated.v;
        param4[i] = updated.param;
    }
}
