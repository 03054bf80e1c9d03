// Matrix multiply on cooperative matrices (tensor cores), the opt-in f16 path
// (`--matmul coop-f16`): the contract of shaders/matmul.wgsl, store epilogue included,
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N)  [+ bias (N), broadcast over rows]  [+ C]
//
// with A and B rounded to f16 as they are staged and the products accumulated in f32. A, B,
// bias and C stay f32 in memory (f32 master weights); bias, C and the epilogue are f32.
// f16 holds 2⁻²⁴ to 65504, so before rounding each row of op(A) and each column of op(B) is
// multiplied by the power of two that brings its largest value into [2¹³, 2¹⁴), and each
// product is divided by both after the sum: exact in binary, so a gradient of 1e-7 (a mean
// loss over a large batch) keeps its 11 bits instead of flushing to zero, and nothing
// overflows. Finding the scales reads the block's rows of A and columns of B once more.
// wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX, WGSL `enable wgpu_cooperative_matrix`.
//
// The cooperative size comes from the file the host includes first: lib/coop_16x16.wgsl
// (TILE 16, subgroups of 32: NVIDIA) or lib/coop_8x8.wgsl (TILE 8, subgroups of 8: lavapipe).
// A workgroup is one subgroup of THREADS invocations and computes a BLOCK × BLOCK block of C
// (BLOCK = 2·TILE) as 2 × 2 cooperative tiles, stepping through K by TILE. Each step stages
// op(A) (BLOCK, TILE) and op(B) (TILE, BLOCK) in workgroup memory as f16, zeros past the
// matrix edges, so any M, N, K ≥ 1 works. The accumulators go through workgroup memory, and
// thread t stores columns t, t + THREADS, ... of each row of the block through
// lib/epilogue.wgsl (its loss slot: row·N + its first column, col0 + t). ROW_SUMS are summed
// in f32 from A itself by the first column block's threads.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;     // C += op(A)·op(B) (+ bias) instead of C =
const BLOCK: u32 = 2u * TILE;          // rows and columns of C per workgroup
const STAGED: u32 = BLOCK * TILE / THREADS;  // elements of each operand a thread stages

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

var<workgroup> a_tile: array<f16, BLOCK * TILE>;   // op(A) block (BLOCK, TILE), stride TILE
var<workgroup> b_tile: array<f16, TILE * BLOCK>;   // op(B) block (TILE, BLOCK), stride BLOCK
var<workgroup> c_tile: array<f32, BLOCK * BLOCK>;  // C block (BLOCK, BLOCK), stride BLOCK
var<workgroup> a_scale: array<f32, BLOCK>;         // a power of two for each row of op(A)
var<workgroup> b_scale: array<f32, BLOCK>;         // and each column of op(B)

// op(A)[row, kk] in f32, zero outside the matrix.
fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= params.m || kk >= params.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * params.m + row];
    }
    return a[row * params.k + kk];
}

// op(B)[kk, col] in f32, zero outside the matrix.
fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= params.k || col >= params.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * params.k + kk];
    }
    return b[kk * params.n + col];
}

// The power of two that brings `largest` (≥ 0) into [2¹³, 2¹⁴), within f32's normal range;
// 1 for 0.
fn range_scale(largest: f32) -> f32 {
    if (largest == 0.0) {
        return 1.0;
    }
    let e = frexp(largest).exp;  // largest = fract · 2^e, fract in [0.5, 1)
    return ldexp(1.0, clamp(14 - e, -126, 126));
}

// a_scale and b_scale of the block's rows of op(A) (row0..) and columns of op(B) (col0..):
// thread t takes rows and columns t, t + THREADS.
fn find_scales(t: u32, row0: u32, col0: u32) {
    for (var r = t; r < BLOCK; r += THREADS) {
        var largest_a = 0.0;
        var largest_b = 0.0;
        for (var kk = 0u; kk < params.k; kk++) {
            largest_a = max(largest_a, abs(load_a(row0 + r, kk)));
            largest_b = max(largest_b, abs(load_b(kk, col0 + r)));
        }
        a_scale[r] = range_scale(largest_a);
        b_scale[r] = range_scale(largest_b);
    }
}

// Stages the K slab at k0 of op(A) rows row0.. and op(B) columns col0.. as f16, each value
// times its row's or column's scale; consecutive threads read consecutive stored addresses.
fn stage(t: u32, row0: u32, col0: u32, k0: u32) {
    for (var q = 0u; q < STAGED; q++) {
        let e = q * THREADS + t;
        var r: u32;
        var ka: u32;
        if (TRANS_A) {
            r = e % BLOCK;  // A stored (K, M): rows of op(A) are contiguous
            ka = e / BLOCK;
        } else {
            r = e / TILE;   // A stored (M, K): K is contiguous
            ka = e % TILE;
        }
        a_tile[r * TILE + ka] = f16(load_a(row0 + r, k0 + ka) * a_scale[r]);
        var col: u32;
        var kb: u32;
        if (TRANS_B) {
            kb = e % TILE;  // B stored (N, K): K is contiguous
            col = e / TILE;
        } else {
            kb = e / BLOCK; // B stored (K, N): N is contiguous
            col = e % BLOCK;
        }
        b_tile[kb * BLOCK + col] = f16(load_b(k0 + kb, col0 + col) * b_scale[col]);
    }
}

@compute @workgroup_size(THREADS)
fn matmul_coop_f16(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) group: vec3<u32>,
) {
    let row0 = group.y * BLOCK;
    let col0 = group.x * BLOCK;
    var acc00 = CoopC();
    var acc01 = CoopC();
    var acc10 = CoopC();
    var acc11 = CoopC();
    find_scales(t, row0, col0);
    workgroupBarrier();
    for (var k0 = 0u; k0 < params.k; k0 += TILE) {
        stage(t, row0, col0, k0);
        workgroupBarrier();
        let a0 = coopLoadT<CoopA>(&a_tile[0], TILE);
        let a1 = coopLoadT<CoopA>(&a_tile[TILE * TILE], TILE);
        let b0 = coopLoadT<CoopB>(&b_tile[0], BLOCK);
        let b1 = coopLoadT<CoopB>(&b_tile[TILE], BLOCK);
        acc00 = coopMultiplyAdd(a0, b0, acc00);
        acc01 = coopMultiplyAdd(a0, b1, acc01);
        acc10 = coopMultiplyAdd(a1, b0, acc10);
        acc11 = coopMultiplyAdd(a1, b1, acc11);
        workgroupBarrier();
    }
    coopStoreT(acc00, &c_tile[0], BLOCK);
    coopStoreT(acc01, &c_tile[TILE], BLOCK);
    coopStoreT(acc10, &c_tile[TILE * BLOCK], BLOCK);
    coopStoreT(acc11, &c_tile[TILE * BLOCK + TILE], BLOCK);
    workgroupBarrier();

    for (var r = 0u; r < BLOCK; r++) {
        let row = row0 + r;
        // With LOSS or L1_GRAD: the loss of this thread's columns of the row, added to its
        // slot below.
        var share = 0.0;
        for (var j = 0u; j < BLOCK / THREADS; j++) {
            let local_col = t + j * THREADS;
            let col = col0 + local_col;
            if (row < params.m && col < params.n) {
                // Undo the scales (one division each: their product could overflow).
                let product = c_tile[r * BLOCK + local_col] / a_scale[r] / b_scale[local_col];
                share += store_element(row, col, product);
            }
        }
        // The thread's columns are col0 + t + j·THREADS: its slot is the first of them.
        if (adds_row_shares() && row < params.m && col0 + t < params.n) {
            add_loss_share(row, col0 + t, share);
        }
    }

    // Σ_k op(A)[row, k] in f32, by the first column block: thread t sums rows t, t + THREADS.
    if (ROW_SUMS && col0 == 0u) {
        for (var r = t; r < BLOCK; r += THREADS) {
            let row = row0 + r;
            if (row < params.m) {
                var sum = 0.0;
                for (var kk = 0u; kk < params.k; kk++) {
                    sum += load_a(row, kk);
                }
                row_sums_or_totals[row] = sum;
            }
        }
    }
}
