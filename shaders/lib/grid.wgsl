// Shared by the element-wise and row kernels (prepended by the host, WGSL has no #include).
// flat_group / flat_index read back the 2-D grid the host lays out when one dimension of
// workgroups is not enough; workgroup_sum reduces one value per thread over the workgroup.

override WORKGROUP_SIZE: u32 = 256u;  // threads per workgroup; a power of two

var<workgroup> partial_sums: array<f32, WORKGROUP_SIZE>;

// Index of this workgroup in a grid laid out over x, then y.
fn flat_group(group: vec3<u32>, groups: vec3<u32>) -> u32 {
    return group.y * groups.x + group.x;
}

// Index of this thread when each thread takes one element.
fn flat_index(group: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return flat_group(group, groups) * WORKGROUP_SIZE + local;
}

// Threads in the grid (x · y workgroups): the stride of a loop over more elements than threads.
fn grid_threads(groups: vec3<u32>) -> u32 {
    return groups.x * groups.y * WORKGROUP_SIZE;
}

// Sum of `value` over the workgroup, returned to every thread. Call from uniform control flow.
fn workgroup_sum(value: f32, local: u32) -> f32 {
    partial_sums[local] = value;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
        if (local < stride) {
            partial_sums[local] = partial_sums[local] + partial_sums[local + stride];
        }
        workgroupBarrier();
    }
    let total = partial_sums[0];
    workgroupBarrier();
    return total;
}
