// The vec4 loads of the matmul files that read A and B 4 floats at a time (matmul_vec4.wgsl,
// matmul_subgroup_vec4.wgsl), which bind them as array<vec4<f32>>: M, N and K are multiples
// of 4, so a vec4 is wholly inside the matrix or wholly outside.

// a[first .. first + 4] (first a multiple of 4), or zero when not `inside` the matrix.
fn load_a4(inside: bool, first: u32) -> vec4<f32> {
    if (!inside) {
        return vec4<f32>();
    }
    return a[first / 4u];
}

// b[first .. first + 4], or zero when not `inside` the matrix.
fn load_b4(inside: bool, first: u32) -> vec4<f32> {
    if (!inside) {
        return vec4<f32>();
    }
    return b[first / 4u];
}
