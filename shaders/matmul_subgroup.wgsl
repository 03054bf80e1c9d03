// Matrix multiply, "subgroup" variant, for adapters whose subgroups are exactly 8 lanes wide
// (lavapipe and llvmpipe with 256-bit vectors). The same contract as shaders/matmul.wgsl:
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N)  [+ bias (N), broadcast over rows]  [+ C]
//
// with op(A) = A stored (M, K) or Aᵀ stored (K, M) when TRANS_A, op(B) = B stored (K, N) or
// Bᵀ stored (N, K) when TRANS_B, all row-major, and the store epilogue of lib/epilogue.wgsl.
// CPU twin: src/cpu/matmul.rs.
//
// On lavapipe a storage load is a loop over the 8 lanes of a SIMD vector, so a multiply costs
// what its lanes load. Here each lane loads a different value of A and hands it to the other
// lanes with subgroupBroadcast (a register shuffle): a value of A is loaded once per subgroup,
// not once per lane. A workgroup is one subgroup of 8 lanes covering 32 rows × 32 columns of C:
// lane l owns columns col0 + 8j (col0 = 32·group.x + l, j < 4) of all 32 rows. Per kk it
// loads 4 values of A (rows row0 + l + 8g, g < 4) and 4 of B, for 128 multiply-adds (rowtile:
// 12 loads for 32). The 32 accumulators are named variables, not an array: lavapipe keeps a
// local array in memory, which measured 2.3× slower.
// Every lane runs the whole loop (a broadcast needs all 8 lanes); loads outside the matrix
// give zero and stores outside are skipped, so any M, N, K ≥ 1 works with no padding.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;     // C += op(A)·op(B) (+ bias) instead of C =
// lib/epilogue.wgsl: ACTIVATION applies f to each stored value, C = f(...); ACTIVATION_GRAD
// multiplies the product (plus an addend, ADD_ADDEND) by f'(saved); ROW_SUMS also writes
// Σ_k op(A)[row, k].

struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;  // (M, N)
@group(0) @binding(2) var<storage, read> a: array<f32>;        // (M, K), or (K, M) if TRANS_A
@group(0) @binding(3) var<storage, read> b: array<f32>;        // (K, N), or (N, K) if TRANS_B
@group(0) @binding(4) var<storage, read> bias: array<f32>;     // (N); read only if HAS_BIAS

// op(A)[row, kk], zero below the last row (kk < K always holds in the loop).
fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= params.m) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * params.m + row];
    }
    return a[row * params.k + kk];
}

// op(B)[kk, col], zero past the last column.
fn load_b(kk: u32, col: u32) -> f32 {
    if (col >= params.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * params.k + kk];
    }
    return b[kk * params.n + col];
}

// Stores one row of this lane's tile: acc (4) holds C[row, col0 + 8j] for j < 4.
fn store_row(row: u32, col0: u32, acc: vec4<f32>) {
    // The addend and f'(saved), read outside the store's branch (indices clamped into the
    // matrix; a value past the edge is never stored), as in matmul_rowtile.wgsl.
    let last = params.m * params.n - 1u;
    let base = row * params.n + col0;
    let i0 = min(base, last);
    let i1 = min(base + 8u, last);
    let i2 = min(base + 16u, last);
    let i3 = min(base + 24u, last);
    let grads = vec4<f32>(
        activation_grad(with_addend(acc[0], i0), i0),
        activation_grad(with_addend(acc[1], i1), i1),
        activation_grad(with_addend(acc[2], i2), i2),
        activation_grad(with_addend(acc[3], i3), i3),
    );
    for (var j = 0u; j < 4u; j++) {
        let col = col0 + 8u * j;
        if (row < params.m && col < params.n) {
            let index = row * params.n + col;
            var value = grads[j];
            if (HAS_BIAS) {
                value += bias[col];
            }
            if (ACCUMULATE) {
                value += c[index];
            }
            c[index] = epilogue(value);
        }
    }
}

// Writes Σ_k op(A)[row, k] for a row this lane loaded, when ROW_SUMS.
fn store_row_sum(row: u32, sum: f32) {
    if (row < params.m) {
        row_sums[row] = sum;
    }
}

@compute @workgroup_size(8)
fn matmul_subgroup(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = group.y * 32u;
    let col0 = group.x * 32u + lane;
    var acc00 = vec4<f32>();
    var acc01 = vec4<f32>();
    var acc02 = vec4<f32>();
    var acc03 = vec4<f32>();
    var acc04 = vec4<f32>();
    var acc05 = vec4<f32>();
    var acc06 = vec4<f32>();
    var acc07 = vec4<f32>();
    var acc08 = vec4<f32>();
    var acc09 = vec4<f32>();
    var acc10 = vec4<f32>();
    var acc11 = vec4<f32>();
    var acc12 = vec4<f32>();
    var acc13 = vec4<f32>();
    var acc14 = vec4<f32>();
    var acc15 = vec4<f32>();
    var acc16 = vec4<f32>();
    var acc17 = vec4<f32>();
    var acc18 = vec4<f32>();
    var acc19 = vec4<f32>();
    var acc20 = vec4<f32>();
    var acc21 = vec4<f32>();
    var acc22 = vec4<f32>();
    var acc23 = vec4<f32>();
    var acc24 = vec4<f32>();
    var acc25 = vec4<f32>();
    var acc26 = vec4<f32>();
    var acc27 = vec4<f32>();
    var acc28 = vec4<f32>();
    var acc29 = vec4<f32>();
    var acc30 = vec4<f32>();
    var acc31 = vec4<f32>();
    // Σ_k op(A)[row0 + lane + 8g, k] per g, when ROW_SUMS; only the first column block
    // stores them, the others skip the adds.
    let sum_rows = ROW_SUMS && group.x == 0u;
    var sums = vec4<f32>();
    for (var kk = 0u; kk < params.k; kk++) {
        let bv = vec4<f32>(load_b(kk, col0), load_b(kk, col0 + 8u), load_b(kk, col0 + 16u), load_b(kk, col0 + 24u));
        let a0 = load_a(row0 + lane, kk);
        let a1 = load_a(row0 + 8u + lane, kk);
        let a2 = load_a(row0 + 16u + lane, kk);
        let a3 = load_a(row0 + 24u + lane, kk);
        if (sum_rows) {
            sums += vec4<f32>(a0, a1, a2, a3);
        }
        acc00 += subgroupBroadcast(a0, 0u) * bv;
        acc01 += subgroupBroadcast(a0, 1u) * bv;
        acc02 += subgroupBroadcast(a0, 2u) * bv;
        acc03 += subgroupBroadcast(a0, 3u) * bv;
        acc04 += subgroupBroadcast(a0, 4u) * bv;
        acc05 += subgroupBroadcast(a0, 5u) * bv;
        acc06 += subgroupBroadcast(a0, 6u) * bv;
        acc07 += subgroupBroadcast(a0, 7u) * bv;
        acc08 += subgroupBroadcast(a1, 0u) * bv;
        acc09 += subgroupBroadcast(a1, 1u) * bv;
        acc10 += subgroupBroadcast(a1, 2u) * bv;
        acc11 += subgroupBroadcast(a1, 3u) * bv;
        acc12 += subgroupBroadcast(a1, 4u) * bv;
        acc13 += subgroupBroadcast(a1, 5u) * bv;
        acc14 += subgroupBroadcast(a1, 6u) * bv;
        acc15 += subgroupBroadcast(a1, 7u) * bv;
        acc16 += subgroupBroadcast(a2, 0u) * bv;
        acc17 += subgroupBroadcast(a2, 1u) * bv;
        acc18 += subgroupBroadcast(a2, 2u) * bv;
        acc19 += subgroupBroadcast(a2, 3u) * bv;
        acc20 += subgroupBroadcast(a2, 4u) * bv;
        acc21 += subgroupBroadcast(a2, 5u) * bv;
        acc22 += subgroupBroadcast(a2, 6u) * bv;
        acc23 += subgroupBroadcast(a2, 7u) * bv;
        acc24 += subgroupBroadcast(a3, 0u) * bv;
        acc25 += subgroupBroadcast(a3, 1u) * bv;
        acc26 += subgroupBroadcast(a3, 2u) * bv;
        acc27 += subgroupBroadcast(a3, 3u) * bv;
        acc28 += subgroupBroadcast(a3, 4u) * bv;
        acc29 += subgroupBroadcast(a3, 5u) * bv;
        acc30 += subgroupBroadcast(a3, 6u) * bv;
        acc31 += subgroupBroadcast(a3, 7u) * bv;
    }
    if (sum_rows) {
        store_row_sum(row0 + lane, sums[0]);
        store_row_sum(row0 + 8u + lane, sums[1]);
        store_row_sum(row0 + 16u + lane, sums[2]);
        store_row_sum(row0 + 24u + lane, sums[3]);
    }
    store_row(row0 + 0u, col0, acc00);
    store_row(row0 + 1u, col0, acc01);
    store_row(row0 + 2u, col0, acc02);
    store_row(row0 + 3u, col0, acc03);
    store_row(row0 + 4u, col0, acc04);
    store_row(row0 + 5u, col0, acc05);
    store_row(row0 + 6u, col0, acc06);
    store_row(row0 + 7u, col0, acc07);
    store_row(row0 + 8u, col0, acc08);
    store_row(row0 + 9u, col0, acc09);
    store_row(row0 + 10u, col0, acc10);
    store_row(row0 + 11u, col0, acc11);
    store_row(row0 + 12u, col0, acc12);
    store_row(row0 + 13u, col0, acc13);
    store_row(row0 + 14u, col0, acc14);
    store_row(row0 + 15u, col0, acc15);
    store_row(row0 + 16u, col0, acc16);
    store_row(row0 + 17u, col0, acc17);
    store_row(row0 + 18u, col0, acc18);
    store_row(row0 + 19u, col0, acc19);
    store_row(row0 + 20u, col0, acc20);
    store_row(row0 + 21u, col0, acc21);
    store_row(row0 + 22u, col0, acc22);
    store_row(row0 + 23u, col0, acc23);
    store_row(row0 + 24u, col0, acc24);
    store_row(row0 + 25u, col0, acc25);
    store_row(row0 + 26u, col0, acc26);
    store_row(row0 + 27u, col0, acc27);
    store_row(row0 + 28u, col0, acc28);
    store_row(row0 + 29u, col0, acc29);
    store_row(row0 + 30u, col0, acc30);
    store_row(row0 + 31u, col0, acc31);
}
