// Matrix multiply, "rowtile" variant: the same contract as shaders/matmul.wgsl,
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N)  [+ bias (N), broadcast over rows]  [+ C]
//
// with op(A) = A stored (M, K) or Aᵀ stored (K, M) when TRANS_A, op(B) = B stored (K, N) or
// Bᵀ stored (N, K) when TRANS_B, all row-major. CPU twin: src/cpu/matmul.rs.
//
// No workgroup memory and no barriers: each thread computes ROWS rows × 4 adjacent columns of
// C straight from A and B in memory, relying on caches for reuse. It suits CPU-backed adapters
// (lavapipe), where the tiled kernel's inner loop over workgroup memory is slow (2.1-3.5× the
// tiled kernel there), and skinny shapes, where a 64×64 tile would leave most threads idle.
// Workgroups of 16 × 4 threads cover 64 columns × 32 rows. Loads outside the matrix give zero
// and stores outside are skipped, so any M, N, K ≥ 1 works with no padding.

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
const ROWS: u32 = 8u;

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

@compute @workgroup_size(16, 4)
fn matmul_rowtile(@builtin(global_invocation_id) id: vec3<u32>) {
    let col0 = id.x * 4u;
    let row0 = id.y * ROWS;
    if (col0 >= params.n || row0 >= params.m) {
        return;
    }
    var acc: array<vec4<f32>, 8>;  // ROWS rows of 4 columns
    var sums: array<f32, 8>;       // Σ_k op(A)[row, k] per row, when ROW_SUMS
    // Only the first column block stores row sums; the others skip the adds.
    let sum_rows = ROW_SUMS && col0 == 0u;
    for (var kk = 0u; kk < params.k; kk++) {
        let bv = vec4<f32>(load_b(kk, col0), load_b(kk, col0 + 1u), load_b(kk, col0 + 2u), load_b(kk, col0 + 3u));
        for (var r = 0u; r < ROWS; r++) {
            let av = load_a(row0 + r, kk);
            acc[r] += av * bv;
            if (sum_rows) {
                sums[r] += av;
            }
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r;
        if (sum_rows && row < params.m) {
            row_sums_or_totals[row] = sums[r];
        }
        // The addend and f'(saved) for the four columns, read outside the store's branch
        // (indices clamped into the matrix; a value past the edge is never stored).
        let last = params.m * params.n - 1u;
        let base = row * params.n + col0;
        let i0 = min(base, last);
        let i1 = min(base + 1u, last);
        let i2 = min(base + 2u, last);
        let i3 = min(base + 3u, last);
        let grads = vec4<f32>(
            activation_grad(with_addend(acc[r][0], i0), i0),
            activation_grad(with_addend(acc[r][1], i1), i1),
            activation_grad(with_addend(acc[r][2], i2), i2),
            activation_grad(with_addend(acc[r][3], i3), i3),
        );
        // With LOSS or L1_GRAD: the loss of this thread's 4 columns of the row, added to its
        // slot below.
        var share = 0.0;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + j;
            if (row < params.m && col < params.n) {
                if (REPARAM_GRAD) {
                    store_reparam_grad(row, col, acc[r][j]);
                    continue;
                }
                let index = row * params.n + col;
                var value = grads[j];
                if (HAS_BIAS) {
                    value += bias[col];
                }
                if (ACCUMULATE) {
                    value += c[index];
                }
                if (LOSS != 0u) {
                    share += store_loss(value, index);
                } else {
                    c[index] = epilogue(value);
                    share += l1_share(index);
                }
            }
        }
        // The slot is the thread's first column, col0 (< N: checked on entry).
        if (adds_row_shares() && row < params.m) {
            add_loss_share(row, col0, share);
        }
    }
}
