// Matmul variant under development, "rowtile_vec4": shaders/matmul_rowtile.wgsl with A and B
// read as vec4, four floats per load instead of one. On lavapipe each storage load costs about
// the same whatever its width, so this should cut the load cost of a multiply-add by up to 4.
//   C (M, N) = op(A) (M, K) · op(B) (K, N) [+ bias (N)] [+ C]
// Each thread: ROWS rows × 4 adjacent columns; workgroups of 16 × 4 threads.
// Loads run along the stored rows, so the shapes must align (the host checks, and falls back
// to the scalar rowtile otherwise):
//   NN: K % 4 == 0 and N % 4 == 0;  NT: K % 4 == 0;  TN: M % 4 == 0 and N % 4 == 0;  TT: no.
// Rows and columns past the matrix are guarded; K is walked in steps of 4.

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
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;  // (M, K), or (K, M) if TRANS_A
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;  // (K, N), or (N, K) if TRANS_B
@group(0) @binding(4) var<storage, read> bias: array<f32>;     // (N); read only if HAS_BIAS

// A[row, kk..kk+4] of A stored (M, K); zero past the last row.
fn a_along_k(row: u32, kk: u32) -> vec4<f32> {
    if (row >= params.m) {
        return vec4<f32>();
    }
    return a[(row * params.k + kk) / 4u];
}

// A[kk, row..row+4] of A stored (K, M) (row a multiple of 4); zero past the last row.
fn a_along_m(kk: u32, row: u32) -> vec4<f32> {
    if (row >= params.m) {
        return vec4<f32>();
    }
    return a[(kk * params.m + row) / 4u];
}

// B[kk, col..col+4] of B stored (K, N) (col a multiple of 4); zero past the last column.
fn b_along_n(kk: u32, col: u32) -> vec4<f32> {
    if (col >= params.n) {
        return vec4<f32>();
    }
    return b[(kk * params.n + col) / 4u];
}

// B[col, kk..kk+4] of B stored (N, K); zero past the last column.
fn b_along_k(col: u32, kk: u32) -> vec4<f32> {
    if (col >= params.n) {
        return vec4<f32>();
    }
    return b[(col * params.k + kk) / 4u];
}

@compute @workgroup_size(16, 4)
fn matmul_rowtile_vec4(@builtin(global_invocation_id) id: vec3<u32>) {
    let col0 = id.x * 4u;
    let row0 = id.y * ROWS;
    if (col0 >= params.n || row0 >= params.m) {
        return;
    }
    var acc: array<vec4<f32>, 8>;  // ROWS rows of 4 columns
    if (TRANS_A) {
        // TN: per kk, two vec4 of A (8 rows) and one of B (4 columns).
        for (var kk = 0u; kk < params.k; kk++) {
            let bv = b_along_n(kk, col0);
            let a_lo = a_along_m(kk, row0);
            let a_hi = a_along_m(kk, row0 + 4u);
            acc[0] += a_lo.x * bv;
            acc[1] += a_lo.y * bv;
            acc[2] += a_lo.z * bv;
            acc[3] += a_lo.w * bv;
            acc[4] += a_hi.x * bv;
            acc[5] += a_hi.y * bv;
            acc[6] += a_hi.z * bv;
            acc[7] += a_hi.w * bv;
        }
    } else if (TRANS_B) {
        // NT: per 4 kk, one vec4 of A per row and of B per column; dot products.
        for (var kk = 0u; kk < params.k; kk += 4u) {
            let b0 = b_along_k(col0, kk);
            let b1 = b_along_k(col0 + 1u, kk);
            let b2 = b_along_k(col0 + 2u, kk);
            let b3 = b_along_k(col0 + 3u, kk);
            for (var r = 0u; r < ROWS; r++) {
                let av = a_along_k(row0 + r, kk);
                acc[r] += vec4<f32>(dot(av, b0), dot(av, b1), dot(av, b2), dot(av, b3));
            }
        }
    } else {
        // NN: per 4 kk, four vec4 of B (4 columns each) and one vec4 of A per row.
        for (var kk = 0u; kk < params.k; kk += 4u) {
            let b0 = b_along_n(kk, col0);
            let b1 = b_along_n(kk + 1u, col0);
            let b2 = b_along_n(kk + 2u, col0);
            let b3 = b_along_n(kk + 3u, col0);
            for (var r = 0u; r < ROWS; r++) {
                let av = a_along_k(row0 + r, kk);
                acc[r] += av.x * b0 + av.y * b1 + av.z * b2 + av.w * b3;
            }
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
