// Matrix multiply, "subgroup" variant with 4-wide loads: matmul_subgroup.wgsl for shapes
// whose M, N and K are all multiples of 4 (the host picks this file for them, that one for
// the rest). The same contract as shaders/matmul.wgsl:
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N)  [+ bias (N), broadcast over rows]  [+ C]
//
// with op(A) = A stored (M, K) or Aᵀ stored (K, M) when TRANS_A, op(B) = B stored (K, N) or
// Bᵀ stored (N, K) when TRANS_B, all row-major, and the store epilogue of lib/epilogue.wgsl;
// load_a4 / load_b4 from lib/load_4.wgsl. CPU twin: src/cpu/matmul.rs.
//
// On lavapipe a storage load is a loop over the 8 lanes, paid once per load whatever its
// width, so loading vec4s instead of floats cuts that loop 4 times (1.6× the scalar file at
// 128×784×400 NT on lavapipe: 1.86 against 2.97 ms). The tile is lib/subgroup_tile.wgsl's: per kk, each lane holds 4 rows of A
// (av) and 4 columns of B (bv). K advances 4 at a time: a stored row of A or B along K gives
// 4 kk of one row (4 loads give the 4×4 block, transposed in registers), a stored row along
// M or N gives 4 rows or columns of one kk (4 loads for 4 kk).
// Every lane runs the whole loop (a broadcast needs all 8 lanes); rows and columns past the
// matrix load zero and are not stored.

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
@group(0) @binding(1) var<storage, read_write> c: array<vec4<f32>>;  // (M, N)
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;  // (M, K), or (K, M) if TRANS_A
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;  // (K, N), or (N, K) if TRANS_B
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;  // (N); read only if HAS_BIAS

@compute @workgroup_size(8)
fn matmul_subgroup_vec4(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let m = params.m;
    let n = params.n;
    let k = params.k;
    let row = group.y * 32u + 4u * lane;   // this lane's 4 rows of A
    let col = group.x * 32u + 4u * lane;   // this lane's 4 columns of B and C
    // Σ_k op(A) over this lane's rows, when ROW_SUMS; only the first column block stores
    // them, the others skip the adds.
    let sum_rows = ROW_SUMS && group.x == 0u;
    var sums = vec4<f32>();
    for (var kk = 0u; kk < k; kk += 4u) {
        // a_block[q] = op(A)[row .. row + 4, kk + q], b_block[q] = op(B)[kk + q, col .. col + 4].
        var a_block: mat4x4<f32>;
        if (TRANS_A) {
            // A stored (K, M): stored rows kk + q, 4 rows of op(A) each.
            let inside = row < m;
            a_block = mat4x4<f32>(
                load_a4(inside, kk * m + row), load_a4(inside, (kk + 1u) * m + row),
                load_a4(inside, (kk + 2u) * m + row), load_a4(inside, (kk + 3u) * m + row));
        } else {
            // A stored (M, K): stored rows row + i, 4 kk each.
            a_block = transpose(mat4x4<f32>(
                load_a4(row < m, row * k + kk), load_a4(row + 1u < m, (row + 1u) * k + kk),
                load_a4(row + 2u < m, (row + 2u) * k + kk), load_a4(row + 3u < m, (row + 3u) * k + kk)));
        }
        var b_block: mat4x4<f32>;
        if (TRANS_B) {
            // B stored (N, K): stored rows col + j, 4 kk each.
            b_block = transpose(mat4x4<f32>(
                load_b4(col < n, col * k + kk), load_b4(col + 1u < n, (col + 1u) * k + kk),
                load_b4(col + 2u < n, (col + 2u) * k + kk), load_b4(col + 3u < n, (col + 3u) * k + kk)));
        } else {
            // B stored (K, N): stored rows kk + q, 4 columns each.
            let inside = col < n;
            b_block = mat4x4<f32>(
                load_b4(inside, kk * n + col), load_b4(inside, (kk + 1u) * n + col),
                load_b4(inside, (kk + 2u) * n + col), load_b4(inside, (kk + 3u) * n + col));
        }
        if (sum_rows) {
            sums += a_block[0] + a_block[1] + a_block[2] + a_block[3];
        }
        fma_tile(a_block[0], b_block[0]);
        fma_tile(a_block[1], b_block[1]);
        fma_tile(a_block[2], b_block[2]);
        fma_tile(a_block[3], b_block[3]);
    }
    if (sum_rows) {
        store_row_sums(row, sums);
    }
    store_tile(group.y * 32u, col);
}
