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
// not once per lane. A workgroup is one subgroup covering 32 rows × 32 columns of C
// (lib/subgroup_tile.wgsl); per kk each lane loads 4 values of A and 4 of B, for 128
// multiply-adds (rowtile: 12 loads for 32). Any shape: matmul_subgroup_vec4.wgsl, which loads
// 4 values at a time, takes the shapes whose sizes are multiples of 4.
// Every lane runs the whole loop (a broadcast needs all 8 lanes); loads outside the matrix
// give zero and stores outside are skipped, so any M, N, K ≥ 1 works with no padding.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;     // C += op(A)·op(B) (+ bias) instead of C =
// lib/epilogue.wgsl: ACTIVATION applies f to each stored value, C = f(...); ACTIVATION_GRAD
// multiplies the product (plus an addend, ADD_ADDEND) by f'(saved); ROW_SUMS also writes
// Σ_k op(A)[row, k]; LOSS stores a loss's gradient instead and adds the loss to totals;
// L1_GRAD adds an L1 penalty's gradient in place of the addend and the penalty to totals;
// REPARAM_GRAD stores the reparameterization's backward [v | v·ε·½e^(½·logvar)] of the
// first REPARAM_COLS = L columns into C = dstats (M, 2L) instead.

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

@compute @workgroup_size(8)
fn matmul_subgroup(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row = group.y * 32u + 4u * lane;   // this lane's 4 rows of A
    let col = group.x * 32u + 4u * lane;   // this lane's 4 columns of B and C
    // Σ_k op(A) over this lane's rows, when ROW_SUMS; only the first column block stores
    // them, the others skip the adds.
    let sum_rows = ROW_SUMS && group.x == 0u;
    var sums = vec4<f32>();
    for (var kk = 0u; kk < params.k; kk++) {
        let av = vec4<f32>(load_a(row, kk), load_a(row + 1u, kk), load_a(row + 2u, kk), load_a(row + 3u, kk));
        let bv = vec4<f32>(load_b(kk, col), load_b(kk, col + 1u), load_b(kk, col + 2u), load_b(kk, col + 3u));
        if (sum_rows) {
            sums += av;
        }
        fma_tile(av, bv);
    }
    if (sum_rows) {
        store_row_sums(row, sums);
    }
    store_tile(group.y * 32u, col);
}
