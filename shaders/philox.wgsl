// Raw Philox4x32-10 output, for known-answer tests and for kernels that need random bits.
// Includes lib/philox.wgsl and lib/grid.wgsl.
//   philox_fill: out (n_words) u32; thread g writes words 4g..4g+3 of
//                philox4x32_10((counter.x + g, counter.y, counter.z, counter.w), key)

struct Params {
    n_words: u32,
    key_x: u32,
    key_y: u32,
    _pad: u32,
    counter: vec4<u32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;  // (n_words)

@compute @workgroup_size(WORKGROUP_SIZE)
fn philox_fill(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let g = flat_index(group, groups, local);
    if (g * 4u >= params.n_words) {
        return;
    }
    let c = params.counter;
    let words = philox4x32_10(vec4<u32>(c.x + g, c.y, c.z, c.w), vec2<u32>(params.key_x, params.key_y));
    for (var j = 0u; j < 4u; j++) {
        if (g * 4u + j < params.n_words) {
            out[g * 4u + j] = words[j];
        }
    }
}
