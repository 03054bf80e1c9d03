// Matmul variant under development, "rowtile_uniform": shaders/matmul_rowtile.wgsl with the
// rows of a thread taken from its workgroup only, so that every load of A has the same
// address in all threads of a workgroup. The question for lavapipe: does llvmpipe load a
// uniform address once for its 8 SIMD lanes instead of once per lane?
//   C (M, N) = op(A) (M, K) · op(B) (K, N) [+ bias (N)] [+ C]
// Workgroups of 16 threads, each 8 rows × 4 adjacent columns: a workgroup covers 64 columns
// × 8 rows. Edges guarded; any M, N, K ≥ 1.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;     // C += op(A)·op(B) (+ bias) instead of C =
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

@compute @workgroup_size(16, 1)
fn matmul_rowtile_uniform(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let col0 = (group.x * 16u + local.x) * 4u;
    let row0 = group.y * ROWS;  // the same in every thread of the workgroup
    if (col0 >= params.n || row0 >= params.m) {
        return;
    }
    var acc: array<vec4<f32>, 8>;  // ROWS rows of 4 columns
    for (var kk = 0u; kk < params.k; kk++) {
        let bv = vec4<f32>(load_b(kk, col0), load_b(kk, col0 + 1u), load_b(kk, col0 + 2u), load_b(kk, col0 + 3u));
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += load_a(row0 + r, kk) * bv;
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + j;
            if (row < params.m && col < params.n) {
                let index = row * params.n + col;
                var value = acc[r][j];
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
