// The 32 × 32 tile of C shared by matmul_subgroup.wgsl and matmul_subgroup_vec4.wgsl: one
// subgroup of exactly 8 lanes computes 32 rows × 32 columns. Lane l owns columns
// col0 + 4l .. col0 + 4l + 3 of all 32 rows (acc00..acc31, one vec4 per row), and at each kk
// holds op(A) for rows row0 + 4l .. row0 + 4l + 3 (av) and op(B) for its 4 columns (bv).
// Row r's value of A is lane r/4's component r%4: subgroupBroadcast hands it to every lane,
// so each value of A is loaded by one lane and used by all eight.
// The accumulators are named variables, not an array: lavapipe kept a local array in memory,
// which measured 2.3× slower. Needs store_row (lib/store_4.wgsl in matmul_subgroup.wgsl,
// lib/store_vec4.wgsl in matmul_subgroup_vec4.wgsl) and lib/epilogue.wgsl's store_row_sums.

var<private> acc00: vec4<f32>;
var<private> acc01: vec4<f32>;
var<private> acc02: vec4<f32>;
var<private> acc03: vec4<f32>;
var<private> acc04: vec4<f32>;
var<private> acc05: vec4<f32>;
var<private> acc06: vec4<f32>;
var<private> acc07: vec4<f32>;
var<private> acc08: vec4<f32>;
var<private> acc09: vec4<f32>;
var<private> acc10: vec4<f32>;
var<private> acc11: vec4<f32>;
var<private> acc12: vec4<f32>;
var<private> acc13: vec4<f32>;
var<private> acc14: vec4<f32>;
var<private> acc15: vec4<f32>;
var<private> acc16: vec4<f32>;
var<private> acc17: vec4<f32>;
var<private> acc18: vec4<f32>;
var<private> acc19: vec4<f32>;
var<private> acc20: vec4<f32>;
var<private> acc21: vec4<f32>;
var<private> acc22: vec4<f32>;
var<private> acc23: vec4<f32>;
var<private> acc24: vec4<f32>;
var<private> acc25: vec4<f32>;
var<private> acc26: vec4<f32>;
var<private> acc27: vec4<f32>;
var<private> acc28: vec4<f32>;
var<private> acc29: vec4<f32>;
var<private> acc30: vec4<f32>;
var<private> acc31: vec4<f32>;

// One kk: acc_r += A[row0 + r, kk] · (this lane's 4 columns of B at kk), r < 32.
fn fma_tile(av: vec4<f32>, bv: vec4<f32>) {
    acc00 += subgroupBroadcast(av[0], 0u) * bv;
    acc01 += subgroupBroadcast(av[1], 0u) * bv;
    acc02 += subgroupBroadcast(av[2], 0u) * bv;
    acc03 += subgroupBroadcast(av[3], 0u) * bv;
    acc04 += subgroupBroadcast(av[0], 1u) * bv;
    acc05 += subgroupBroadcast(av[1], 1u) * bv;
    acc06 += subgroupBroadcast(av[2], 1u) * bv;
    acc07 += subgroupBroadcast(av[3], 1u) * bv;
    acc08 += subgroupBroadcast(av[0], 2u) * bv;
    acc09 += subgroupBroadcast(av[1], 2u) * bv;
    acc10 += subgroupBroadcast(av[2], 2u) * bv;
    acc11 += subgroupBroadcast(av[3], 2u) * bv;
    acc12 += subgroupBroadcast(av[0], 3u) * bv;
    acc13 += subgroupBroadcast(av[1], 3u) * bv;
    acc14 += subgroupBroadcast(av[2], 3u) * bv;
    acc15 += subgroupBroadcast(av[3], 3u) * bv;
    acc16 += subgroupBroadcast(av[0], 4u) * bv;
    acc17 += subgroupBroadcast(av[1], 4u) * bv;
    acc18 += subgroupBroadcast(av[2], 4u) * bv;
    acc19 += subgroupBroadcast(av[3], 4u) * bv;
    acc20 += subgroupBroadcast(av[0], 5u) * bv;
    acc21 += subgroupBroadcast(av[1], 5u) * bv;
    acc22 += subgroupBroadcast(av[2], 5u) * bv;
    acc23 += subgroupBroadcast(av[3], 5u) * bv;
    acc24 += subgroupBroadcast(av[0], 6u) * bv;
    acc25 += subgroupBroadcast(av[1], 6u) * bv;
    acc26 += subgroupBroadcast(av[2], 6u) * bv;
    acc27 += subgroupBroadcast(av[3], 6u) * bv;
    acc28 += subgroupBroadcast(av[0], 7u) * bv;
    acc29 += subgroupBroadcast(av[1], 7u) * bv;
    acc30 += subgroupBroadcast(av[2], 7u) * bv;
    acc31 += subgroupBroadcast(av[3], 7u) * bv;
}

// Stores the whole tile; col is this lane's first column (col0 + 4l).
fn store_tile(row0: u32, col: u32) {
    store_row(row0 + 0u, col, acc00);
    store_row(row0 + 1u, col, acc01);
    store_row(row0 + 2u, col, acc02);
    store_row(row0 + 3u, col, acc03);
    store_row(row0 + 4u, col, acc04);
    store_row(row0 + 5u, col, acc05);
    store_row(row0 + 6u, col, acc06);
    store_row(row0 + 7u, col, acc07);
    store_row(row0 + 8u, col, acc08);
    store_row(row0 + 9u, col, acc09);
    store_row(row0 + 10u, col, acc10);
    store_row(row0 + 11u, col, acc11);
    store_row(row0 + 12u, col, acc12);
    store_row(row0 + 13u, col, acc13);
    store_row(row0 + 14u, col, acc14);
    store_row(row0 + 15u, col, acc15);
    store_row(row0 + 16u, col, acc16);
    store_row(row0 + 17u, col, acc17);
    store_row(row0 + 18u, col, acc18);
    store_row(row0 + 19u, col, acc19);
    store_row(row0 + 20u, col, acc20);
    store_row(row0 + 21u, col, acc21);
    store_row(row0 + 22u, col, acc22);
    store_row(row0 + 23u, col, acc23);
    store_row(row0 + 24u, col, acc24);
    store_row(row0 + 25u, col, acc25);
    store_row(row0 + 26u, col, acc26);
    store_row(row0 + 27u, col, acc27);
    store_row(row0 + 28u, col, acc28);
    store_row(row0 + 29u, col, acc29);
    store_row(row0 + 30u, col, acc30);
    store_row(row0 + 31u, col, acc31);
}
