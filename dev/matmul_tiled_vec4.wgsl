// Matmul variant under development, "tiled_vec4": shaders/matmul.wgsl (the tiled kernel, the
// default on GPUs) with its staging loads 4 floats wide, for shapes whose M, N and K are
// multiples of 4 (a vec4 is then all inside the matrix or all outside). The contract without
// the epilogue:
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N)  [+ bias (N), broadcast over rows]  [+ C]
//
// (op = identity, or transpose when TRANS_A / TRANS_B; row-major; CPU twin
// src/cpu/matmul.rs). Each workgroup stages TILE_K slabs of op(A) and op(B) in workgroup
// memory, a vec4 a thread along the stored rows (transposes handled there, as the scalar
// kernel does); the 4 × 4 register tile per thread and its loop are the tiled kernel's.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;     // C += op(A)·op(B) (+ bias) instead of C =
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
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;  // (M, K), or (K, M) if TRANS_A
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;  // (K, N), or (N, K) if TRANS_B
@group(0) @binding(4) var<storage, read> bias: array<f32>;     // (N); read only if HAS_BIAS

var<workgroup> tile_a: array<f32, TILE_K * TILE_M>;  // [k][m] slab of op(A)
var<workgroup> tile_b: array<f32, TILE_K * TILE_N>;  // [k][n] slab of op(B)

// The 4 floats of A stored from element `first` (a multiple of 4), zero when not `inside`.
fn load_a4(inside: bool, first: u32) -> vec4<f32> {
    if (!inside) {
        return vec4<f32>();
    }
    return a[first / 4u];
}

// The 4 floats of B stored from element `first`, zero when not `inside`.
fn load_b4(inside: bool, first: u32) -> vec4<f32> {
    if (!inside) {
        return vec4<f32>();
    }
    return b[first / 4u];
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_tiled_vec4(
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

    let slabs = (params.k + TILE_K - 1u) / TILE_K;
    for (var slab = 0u; slab < slabs; slab++) {
        let k0 = slab * TILE_K;
        // Stage op(A), a vec4 a thread along the stored rows: consecutive threads read
        // consecutive vec4s. M, N and K are multiples of 4, so a vec4 is all in or all out.
        for (var e = thread; e < TILE_M * TILE_K / 4u; e += threads) {
            if (TRANS_A) {
                // A stored (K, M): 4 rows of op(A) at one kk.
                let kk = e / (TILE_M / 4u);
                let r = 4u * (e % (TILE_M / 4u));
                let v = load_a4(row0 + r < params.m && k0 + kk < params.k, (k0 + kk) * params.m + row0 + r);
                for (var i = 0u; i < 4u; i++) {
                    tile_a[kk * TILE_M + r + i] = v[i];
                }
            } else {
                // A stored (M, K): 4 kk of one row of op(A).
                let r = e / (TILE_K / 4u);
                let kk = 4u * (e % (TILE_K / 4u));
                let v = load_a4(row0 + r < params.m && k0 + kk < params.k, (row0 + r) * params.k + k0 + kk);
                for (var i = 0u; i < 4u; i++) {
                    tile_a[(kk + i) * TILE_M + r] = v[i];
                }
            }
        }
        // Stage op(B) the same way.
        for (var e = thread; e < TILE_K * TILE_N / 4u; e += threads) {
            if (TRANS_B) {
                // B stored (N, K): 4 kk of one column of op(B).
                let col = e / (TILE_K / 4u);
                let kk = 4u * (e % (TILE_K / 4u));
                let v = load_b4(col0 + col < params.n && k0 + kk < params.k, (col0 + col) * params.k + k0 + kk);
                for (var i = 0u; i < 4u; i++) {
                    tile_b[(kk + i) * TILE_N + col] = v[i];
                }
            } else {
                // B stored (K, N): 4 columns of op(B) at one kk.
                let kk = e / (TILE_N / 4u);
                let col = 4u * (e % (TILE_N / 4u));
                let v = load_b4(col0 + col < params.n && k0 + kk < params.k, (k0 + kk) * params.n + col0 + col);
                for (var i = 0u; i < 4u; i++) {
                    tile_b[kk * TILE_N + col + i] = v[i];
                }
            }
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
        }
        workgroupBarrier();
    }

    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < THREAD_M; i++) {
        let row = row0 + local.y + i * WG_Y;
        for (var j = 0u; j < THREAD_N; j++) {
            let col = col0 + local.x + j * WG_X;
            if (row < params.m && col < params.n) {
                let index = row * params.n + col;
                var value = acc[i][j];
                if (HAS_BIAS) {
                    value += bias[col];
                }
                if (ACCUMULATE) {
                    value += c[index];
                }
                c[index] = value;
            }
        }
    }
}
