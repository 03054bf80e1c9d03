// Grouped weight gradients, "grouped_tn": the weight and bias gradients of up to 4 linear
// layers of a training step in one dispatch. For each problem g:
//
//   C_g (M_g, N_g) = A_gᵀ · B_g     A_g stored (K, M_g): the layer's dy; B_g stored (K, N_g):
//                                   its input x; the same K (the batch) for every problem
//   sums_g (M_g)   = Σ_k A_g[k, row]   the bias gradient
//
// C_g and sums_g live in one buffer (the step's flat gradient buffer) at element offsets.
// Host: src/kernels/matmul_grouped_tn.rs. CPU twin: src/cpu/matmul_grouped_tn.rs. Why: on a
// GPU every dispatch of a step waits for the one before it (a barrier: each reads what the
// last wrote), and the small ones (the VAE's 400→40 and 20→400 layers) fill a few of its
// multiprocessors; a step has one weight gradient a layer, and none of them reads another.
// One dispatch runs them side by side, and the VAE 784-400-20's step loses three of its 14
// dispatches. The executor runs it where timing on the device says it wins (autotune).
//
// M_g, N_g and K are multiples of 4 (every layer of the reference models), so A, B, C and the
// sums are read and written a vec4 at a time; the offsets are multiples of 4 too. The tiles
// are matmul_vec4.wgsl's, TN form only (TRANS_A, not TRANS_B): a workgroup computes a
// TILE_M × TILE_N tile of one problem, each thread THREAD_QUADS × THREAD_QUADS blocks of
// 4 × 4; the workgroups of problem g are numbered from first_group_g (1D grid, x then y).

override TILE_M: u32 = 64u;            // multiples of 4 · THREAD_QUADS
override TILE_N: u32 = 64u;
override TILE_K: u32 = 16u;            // a multiple of 4
override THREAD_QUADS: u32 = 1u;       // 1 or 2: 4 × 4 or 8 × 8 of C a thread
override WG_X: u32 = TILE_N / (4u * THREAD_QUADS);  // derived: do not set
override WG_Y: u32 = TILE_M / (4u * THREAD_QUADS);  // derived: do not set

struct Problem {
    m: u32,
    n: u32,
    c_offset: u32,      // C_g at grads[c_offset ..] (elements)
    sums_offset: u32,   // sums_g at grads[sums_offset ..]
    first_group: u32,   // the problem's first workgroup
    tiles_x: u32,       // column tiles: ceil(N_g / TILE_N)
    _pad0: u32,
    _pad1: u32,
}

struct Params {
    k: u32,
    problems: u32,      // 1 ..= 4
    _pad0: u32,
    _pad1: u32,
    problem: array<Problem, 4>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> grads: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a0: array<vec4<f32>>;  // (K, M_0)
@group(0) @binding(3) var<storage, read> b0: array<vec4<f32>>;  // (K, N_0)
@group(0) @binding(4) var<storage, read> a1: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b1: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> a2: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> b2: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> a3: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> b3: array<vec4<f32>>;

var<workgroup> tile_a: array<vec4<f32>, TILE_K * TILE_M / 4u>;  // [k][m / 4] of op(A) = Aᵀ
var<workgroup> tile_b: array<vec4<f32>, TILE_K * TILE_N / 4u>;  // [k][n / 4] of B

// A_g[first .. first + 4] (first a multiple of 4); g is the same across the workgroup.
fn load_a(g: u32, first: u32) -> vec4<f32> {
    switch g {
        case 0u: { return a0[first / 4u]; }
        case 1u: { return a1[first / 4u]; }
        case 2u: { return a2[first / 4u]; }
        default: { return a3[first / 4u]; }
    }
}

fn load_b(g: u32, first: u32) -> vec4<f32> {
    switch g {
        case 0u: { return b0[first / 4u]; }
        case 1u: { return b1[first / 4u]; }
        case 2u: { return b2[first / 4u]; }
        default: { return b3[first / 4u]; }
    }
}

// The 4 × 4 product of 4 rows of op(A) (a) and 4 columns of op(B) (b): column i of the
// matrix is row i's 4 values.
fn outer(a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(a.x * b, a.y * b, a.z * b, a.w * b);
}

// Stores a 4 × 4 block of C_g from (row, col), row i of it being acc[i]; rows past M_g and
// columns past N_g are skipped (a vec4 is all in or all out).
fn store_block(p: Problem, row: u32, col: u32, acc: mat4x4<f32>) {
    if (col >= p.n) {
        return;
    }
    for (var i = 0u; i < 4u; i++) {
        if (row + i < p.m) {
            grads[(p.c_offset + (row + i) * p.n + col) / 4u] = acc[i];
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_grouped_tn(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let id = group.y * groups.x + group.x;
    // The problem whose workgroups include this one (first_group ascends).
    var g = 0u;
    for (var i = 1u; i < params.problems; i++) {
        if (id >= params.problem[i].first_group) {
            g = i;
        }
    }
    let p = params.problem[g];
    let tile = id - p.first_group;
    let tiles_y = (p.m + TILE_M - 1u) / TILE_M;
    if (tile >= p.tiles_x * tiles_y) {
        return;  // past the last problem's tiles (a 2D grid's spare workgroups)
    }
    let row0 = (tile / p.tiles_x) * TILE_M;
    let col0 = (tile % p.tiles_x) * TILE_N;
    let k = params.k;
    let thread = local.y * WG_X + local.x;
    let threads = WG_X * WG_Y;
    var acc00 = mat4x4<f32>();
    var acc01 = mat4x4<f32>();
    var acc10 = mat4x4<f32>();
    var acc11 = mat4x4<f32>();
    var sums0 = vec4<f32>();
    var sums1 = vec4<f32>();
    let sum_rows = col0 == 0u && local.x == 0u;
    let wide = THREAD_QUADS == 2u;

    for (var k0 = 0u; k0 < k; k0 += TILE_K) {
        // A_g stored (K, M_g) and B_g stored (K, N_g): a vec4 is 4 rows of op(A), or 4
        // columns of B, at one k, put into the slab as it is.
        for (var e = thread; e < TILE_K * TILE_M / 4u; e += threads) {
            let kk = e / (TILE_M / 4u);
            let row = row0 + 4u * (e % (TILE_M / 4u));
            var v = vec4<f32>();
            if (row < p.m && k0 + kk < k) {
                v = load_a(g, (k0 + kk) * p.m + row);
            }
            tile_a[e] = v;
        }
        for (var e = thread; e < TILE_K * TILE_N / 4u; e += threads) {
            let kk = e / (TILE_N / 4u);
            let col = col0 + 4u * (e % (TILE_N / 4u));
            var v = vec4<f32>();
            if (col < p.n && k0 + kk < k) {
                v = load_b(g, (k0 + kk) * p.n + col);
            }
            tile_b[e] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let a_base = kk * (TILE_M / 4u) + local.y;
            let b_base = kk * (TILE_N / 4u) + local.x;
            let a_0 = tile_a[a_base];
            let b_0 = tile_b[b_base];
            acc00 += outer(a_0, b_0);
            if (sum_rows) {
                sums0 += a_0;
            }
            if (wide) {
                let a_1 = tile_a[a_base + WG_Y];  // half a tile down
                let b_1 = tile_b[b_base + WG_X];  // half a tile right
                acc01 += outer(a_0, b_1);
                acc10 += outer(a_1, b_0);
                acc11 += outer(a_1, b_1);
                if (sum_rows) {
                    sums1 += a_1;
                }
            }
        }
        workgroupBarrier();
    }

    let row = row0 + 4u * local.y;
    let col = col0 + 4u * local.x;
    if (sum_rows && row < p.m) {
        grads[(p.sums_offset + row) / 4u] = sums0;
    }
    store_block(p, row, col, acc00);
    if (wide) {
        let down = row + 4u * WG_Y;
        let right = col + 4u * WG_X;
        if (sum_rows && down < p.m) {
            grads[(p.sums_offset + down) / 4u] = sums1;
        }
        store_block(p, row, right, acc01);
        store_block(p, down, col, acc10);
        store_block(p, down, right, acc11);
    }
}
