// Matmul variant under development, "coop_f16": the matmul contract of shaders/matmul.wgsl,
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N)  [+ bias (N), broadcast over rows]  [+ C]
//
// (op = identity, or transpose when TRANS_A / TRANS_B: A stored (K, M), B stored (N, K);
// row-major; CPU twin src/cpu/matmul.rs) on cooperative matrices (tensor cores): wgpu's
// EXPERIMENTAL_COOPERATIVE_MATRIX, WGSL `enable wgpu_cooperative_matrix`, 16×16×16 with f16
// operands and an f32 accumulator (VK_KHR_cooperative_matrix; NVIDIA offers it). A, B, bias
// and C stay f32 in memory (f32 master values); A and B are rounded to f16 in the load stage,
// products are accumulated in f32, and bias and C are added in f32.
//
// Needs on the device: EXPERIMENTAL_COOPERATIVE_MATRIX (an experimental feature: the device
// must be requested with it and with wgpu::ExperimentalFeatures::enabled()), SHADER_F16, a
// 16x16x16 F16->F32 configuration among adapter.cooperative_matrix_properties(), and a
// subgroup size of exactly 32: a workgroup is one subgroup of 32 invocations, and the
// cooperative operations are subgroup-scoped. naga capabilities: SHADER_FLOAT16 |
// COOPERATIVE_MATRIX. SPIR-V only (tests/dev_shaders.rs); MSL's simdgroup matrices are 8×8.
//
// Layout: workgroups of 32 threads, grid (ceil(N / 32), ceil(M / 32), 1); a workgroup
// computes a 32 × 32 block of C as 2 × 2 cooperative tiles of 16 × 16, stepping through K by
// 16. Each step stages op(A) (32, 16) and op(B) (16, 32) in workgroup memory as f16, with
// zeros past the matrix edges (padded staging), so any M, N, K ≥ 1 works, not only multiples
// of 16. The accumulators go through workgroup memory (32, 32) f32 at the end, and each
// thread stores its elements with edge guards, bias and accumulate.

enable f16;
enable wgpu_cooperative_matrix;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;     // C += op(A)·op(B) (+ bias) instead of C =
const BLOCK: u32 = 32u;                // rows and columns of C per workgroup
const TILE: u32 = 16u;                 // cooperative matrix size (M = N = K = 16)
const THREADS: u32 = 32u;              // one subgroup

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

var<workgroup> a_tile: array<f16, 512>;   // op(A) block (32, 16), row-major, stride 16
var<workgroup> b_tile: array<f16, 512>;   // op(B) block (16, 32), row-major, stride 32
var<workgroup> c_tile: array<f32, 1024>;  // C block (32, 32), row-major, stride 32

// op(A)[row, kk] as f16, zero outside the matrix.
fn load_a(row: u32, kk: u32) -> f16 {
    if (row >= params.m || kk >= params.k) {
        return 0.0h;
    }
    if (TRANS_A) {
        return f16(a[kk * params.m + row]);
    }
    return f16(a[row * params.k + kk]);
}

// op(B)[kk, col] as f16, zero outside the matrix.
fn load_b(kk: u32, col: u32) -> f16 {
    if (col >= params.n || kk >= params.k) {
        return 0.0h;
    }
    if (TRANS_B) {
        return f16(b[col * params.k + kk]);
    }
    return f16(b[kk * params.n + col]);
}

@compute @workgroup_size(32)
fn matmul_coop_f16(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) group: vec3<u32>,
) {
    let row0 = group.y * BLOCK;
    let col0 = group.x * BLOCK;
    var acc00 = coop_mat16x16<f32, C>();
    var acc01 = coop_mat16x16<f32, C>();
    var acc10 = coop_mat16x16<f32, C>();
    var acc11 = coop_mat16x16<f32, C>();
    for (var k0 = 0u; k0 < params.k; k0 += TILE) {
        // Stage 512 elements of each operand, 16 per thread; consecutive threads read
        // consecutive addresses of the stored matrix.
        for (var q = 0u; q < 16u; q++) {
            let e = q * THREADS + t;
            var r: u32;
            var kk: u32;
            if (TRANS_A) {
                r = e % BLOCK;  // A stored (K, M): rows of op(A) are contiguous
                kk = e / BLOCK;
            } else {
                r = e / TILE;   // A stored (M, K): K is contiguous
                kk = e % TILE;
            }
            a_tile[r * TILE + kk] = load_a(row0 + r, k0 + kk);
            var col: u32;
            var kb: u32;
            if (TRANS_B) {
                kb = e % TILE;  // B stored (N, K): K is contiguous
                col = e / TILE;
            } else {
                kb = e / BLOCK; // B stored (K, N): N is contiguous
                col = e % BLOCK;
            }
            b_tile[kb * BLOCK + col] = load_b(k0 + kb, col0 + col);
        }
        workgroupBarrier();
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&a_tile[0], TILE);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&a_tile[TILE * TILE], TILE);
        let b0 = coopLoadT<coop_mat16x16<f16, B>>(&b_tile[0], BLOCK);
        let b1 = coopLoadT<coop_mat16x16<f16, B>>(&b_tile[TILE], BLOCK);
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
    for (var q = 0u; q < BLOCK * BLOCK / THREADS; q++) {
        let e = q * THREADS + t;
        let row = row0 + e / BLOCK;
        let col = col0 + e % BLOCK;
        if (row < params.m && col < params.n) {
            let index = row * params.n + col;
            var value = c_tile[e];
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
