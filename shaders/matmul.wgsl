// Matrix multiply with optional bias and accumulation, the core of every linear layer and of
// its backward pass (dX = dY·Wᵀ, dW = Xᵀ·dY):
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N)  [+ bias (N), broadcast over rows]  [+ C]
//
// op(A) is A stored (M, K), or Aᵀ with A stored (K, M) when TRANS_A; op(B) is B stored (K, N),
// or Bᵀ with B stored (N, K) when TRANS_B. All row-major.
//
// Each workgroup computes a TILE_M × TILE_N block of C, stepping through K in slabs of TILE_K
// staged in workgroup memory. Each thread keeps a THREAD_M × THREAD_N register tile whose rows
// are strided by the workgroup height and columns by its width, so neighbouring threads touch
// neighbouring addresses. Transposes are handled in the load stage, which reads along the
// stored rows. Loads outside the matrix give zero and stores outside are skipped, so any
// M, N, K ≥ 1 works with no padding.

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
override TILE_M: u32 = 64u;
override TILE_N: u32 = 64u;
override TILE_K: u32 = 16u;
const THREAD_M: u32 = 4u;
const THREAD_N: u32 = 4u;
override WG_X: u32 = TILE_N / THREAD_N; // derived: do not set
override WG_Y: u32 = TILE_M / THREAD_M; // derived: do not set

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

var<workgroup> tile_a: array<f32, TILE_K * TILE_M>;  // [k][m] slab of op(A)
var<workgroup> tile_b: array<f32, TILE_K * TILE_N>;  // [k][n] slab of op(B)

// op(A)[row, kk], zero outside the matrix.
fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= params.m || kk >= params.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * params.m + row];
    }
    return a[row * params.k + kk];
}

// op(B)[kk, col], zero outside the matrix.
fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= params.k || col >= params.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * params.k + kk];
    }
    return b[kk * params.n + col];
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) thread: u32,
) {
    let row0 = group.y * TILE_M;
    let col0 = group.x * TILE_N;
    let threads = WG_X * WG_Y;
    // The THREAD_M × THREAD_N = 4 × 4 register tile as four rows of vec4 (plain variables,
    // not an indexed array, so every compiler keeps them in registers).
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
    // Σ_k op(A)[row, k] for the thread's four rows, when ROW_SUMS: summed and stored by the
    // first column of threads of the first column block only.
    var sums = vec4<f32>();
    let sum_rows = ROW_SUMS && col0 == 0u && local.x == 0u;

    let slabs = (params.k + TILE_K - 1u) / TILE_K;
    for (var slab = 0u; slab < slabs; slab++) {
        let k0 = slab * TILE_K;
        // Stage op(A): consecutive threads read consecutive stored addresses.
        for (var e = thread; e < TILE_M * TILE_K; e += threads) {
            var r: u32;
            var kk: u32;
            if (TRANS_A) {
                r = e % TILE_M;
                kk = e / TILE_M;
            } else {
                kk = e % TILE_K;
                r = e / TILE_K;
            }
            tile_a[kk * TILE_M + r] = load_a(row0 + r, k0 + kk);
        }
        // Stage op(B) the same way.
        for (var e = thread; e < TILE_K * TILE_N; e += threads) {
            var col: u32;
            var kk: u32;
            if (TRANS_B) {
                kk = e % TILE_K;
                col = e / TILE_K;
            } else {
                col = e % TILE_N;
                kk = e / TILE_N;
            }
            tile_b[kk * TILE_N + col] = load_b(k0 + kk, col0 + col);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let a_base = kk * TILE_M + local.y;
            let b_base = kk * TILE_N + local.x;
            let b = vec4<f32>(tile_b[b_base], tile_b[b_base + WG_X], tile_b[b_base + 2u * WG_X], tile_b[b_base + 3u * WG_X]);
            acc0 += tile_a[a_base] * b;
            acc1 += tile_a[a_base + WG_Y] * b;
            acc2 += tile_a[a_base + 2u * WG_Y] * b;
            acc3 += tile_a[a_base + 3u * WG_Y] * b;
            if (sum_rows) {
                sums += vec4<f32>(tile_a[a_base], tile_a[a_base + WG_Y], tile_a[a_base + 2u * WG_Y], tile_a[a_base + 3u * WG_Y]);
            }
        }
        workgroupBarrier();
    }

    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < THREAD_M; i++) {
        let row = row0 + local.y + i * WG_Y;
        if (sum_rows && row < params.m) {
            row_sums_or_totals[row] = sums[i];
        }
        // With LOSS or L1_GRAD: the loss of this thread's columns of the row, added to its
        // slot below.
        var share = 0.0;
        for (var j = 0u; j < THREAD_N; j++) {
            let col = col0 + local.x + j * WG_X;
            if (row < params.m && col < params.n) {
                share += store_element(row, col, acc[i][j]);
            }
        }
        // The thread's columns are col0 + local.x + j·WG_X: its slot is the first of them.
        if (adds_row_shares() && row < params.m && col0 + local.x < params.n) {
            add_loss_share(row, col0 + local.x, share);
        }
    }
}
