// Matmul variant under development, "splitk": the matmul contract of shaders/matmul.wgsl,
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N)  [+ bias (N), broadcast over rows]  [+ C]
//
// with op(A) = A stored (M, K) or Aᵀ stored (K, M) when TRANS_A, op(B) = B stored (K, N) or
// Bᵀ stored (N, K) when TRANS_B, all row-major. CPU twin: src/cpu/matmul.rs.
//
// For skinny products, where M·N is small and K is large (the VAE's heads 128×20 with
// K = 400, its weight gradients 20×400 and 400×20 with K = 128, or 128×64 with K = 2048),
// a kernel that gives each thread a block of C over all of K has too few threads to fill a
// GPU. Split-K cuts K into S slices of `chunk` (the last one shorter) and runs in two
// dispatches:
//   1. matmul_splitk_partial: grid (ceil(blocks / 64), 1, S), blocks = ceil(M/4)·ceil(N/4);
//      each thread computes a 4 × 4 block of C over its slice of K, straight from A and B in
//      memory (no workgroup memory), and writes it to partial (S, M, N). The blocks are
//      numbered along N first over a flat thread index, so a narrow N (20) leaves no lane idle.
//   2. matmul_splitk_reduce: grid (ceil(M·N / 64), 1, 1) (folded into y past the adapter's
//      x limit); one thread per element of C sums its S partials in slice order (so the result
//      does not depend on scheduling), then adds bias and C as the contract says.
// Edges: loads past the last row or column give zero and stores past them are skipped, so any
// M, N, K ≥ 1 and any 1 ≤ S ≤ K work. The host sets S and chunk = ceil(K / S) so that no
// slice is empty (S = ceil(K / chunk)).

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;     // C += op(A)·op(B) (+ bias) instead of C =
const ROWS: u32 = 4u;                  // rows of C per thread
const COLS: u32 = 4u;                  // columns of C per thread
const GROUP: u32 = 64u;                // threads per workgroup, both passes

struct Params {
    m: u32,
    n: u32,
    k: u32,
    slices: u32,   // S
    chunk: u32,    // K per slice; slice s covers [s·chunk, min((s + 1)·chunk, K))
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;        // (M, N), pass 2
@group(0) @binding(2) var<storage, read> a: array<f32>;              // (M, K) or (K, M) if TRANS_A, pass 1
@group(0) @binding(3) var<storage, read> b: array<f32>;              // (K, N) or (N, K) if TRANS_B, pass 1
@group(0) @binding(4) var<storage, read> bias: array<f32>;           // (N), pass 2; read only if HAS_BIAS
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;  // (S, M, N), written by pass 1
@group(0) @binding(6) var<storage, read> partial_in: array<f32>;     // (S, M, N), read by pass 2

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

// Pass 1: partial[s, row, col] = Σ_{kk in slice s} op(A)[row, kk]·op(B)[kk, col] for the
// ROWS × COLS block of this thread; s = workgroup_id.z.
@compute @workgroup_size(64)
fn matmul_splitk_partial(
    @builtin(global_invocation_id) id: vec3<u32>,
    @builtin(workgroup_id) group: vec3<u32>,
) {
    let block_cols = (params.n + COLS - 1u) / COLS;
    let block_rows = (params.m + ROWS - 1u) / ROWS;
    let block = id.x;
    if (block >= block_cols * block_rows) {
        return;
    }
    let col0 = (block % block_cols) * COLS;
    let row0 = (block / block_cols) * ROWS;
    let slice = group.z;
    let k_begin = slice * params.chunk;
    let k_end = min(k_begin + params.chunk, params.k);
    var acc: array<vec4<f32>, 4>;  // ROWS rows of COLS columns
    for (var kk = k_begin; kk < k_end; kk++) {
        let bv = vec4<f32>(load_b(kk, col0), load_b(kk, col0 + 1u), load_b(kk, col0 + 2u), load_b(kk, col0 + 3u));
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += load_a(row0 + r, kk) * bv;
        }
    }
    let base = slice * params.m * params.n;
    for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r;
        for (var j = 0u; j < COLS; j++) {
            let col = col0 + j;
            if (row < params.m && col < params.n) {
                partial[base + row * params.n + col] = acc[r][j];
            }
        }
    }
}

// Pass 2: C[row, col] = Σ_s partial[s, row, col] (+ bias[col]) (+ C[row, col]).
@compute @workgroup_size(64)
fn matmul_splitk_reduce(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let index = (group.y * groups.x + group.x) * GROUP + local;
    let count = params.m * params.n;
    if (index >= count) {
        return;
    }
    var value = 0.0;
    for (var s = 0u; s < params.slices; s++) {
        value += partial_in[s * count + index];
    }
    if (HAS_BIAS) {
        value += bias[index % params.n];
    }
    if (ACCUMULATE) {
        value += c[index];
    }
    c[index] = value;
}
