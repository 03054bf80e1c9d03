// Grouped weight gradients, "grouped_tn": the weight and bias gradients of up to 4 linear
// layers of a training step in one dispatch. For each problem g:
//
//   C_g (M_g, N_g) = A_gᵀ · B_g     A_g stored (K, M_g): the layer's dy; B_g stored (K, N_g):
//                                   its input x; the same K (the batch) for every problem
//   sums_g (M_g)   = Σ_k A_g[k, row]   the bias gradient
//
// C_g and sums_g live at element offsets of the step's flat buffers. matmul_grouped_tn stores
// them in the gradient buffer; matmul_grouped_tn_adam instead applies Adam to the parameters
// at the same offsets with them as the gradient (lib/adam_update.wgsl, as shaders/adam.wgsl
// does; the step's Adam dispatch is then left out, and the gradients are never stored).
// Host: src/kernels/matmul_grouped_tn.rs. CPU twin: src/cpu/matmul_grouped_tn.rs. Why: on a
// GPU every dispatch of a step waits for the one before it (a barrier: each reads what the
// last wrote), and the small ones (the VAE's 400→40 and 20→400 layers) fill a few of its
// multiprocessors; a step has one weight gradient a layer, and none of them reads another.
// One dispatch runs them side by side, and the VAE 784-400-20's step loses three of its 14
// dispatches (four with Adam fused). The executor runs it where timing on the device says it
// wins (autotune).
//
// M_g and N_g are multiples of 4 (every layer of the reference models), so A, B, C and the
// sums are read and written a vec4 at a time; the offsets are multiples of 4 too; K is any.
// The tiles are matmul_vec4.wgsl's, TN form only (TRANS_A, not TRANS_B): a workgroup computes
// a TILE_M × TILE_N tile of one problem, each thread THREAD_QUADS × THREAD_QUADS blocks of
// 4 × 4; the workgroups of problem g are numbered from first_group_g (1D grid, x then y).
// PREFETCH, as matmul_vec4.wgsl's: a thread fetches its share of the next slab into registers
// (at most MAX_FETCHES vec4s each of A and B) before the current slab's multiply-adds, and
// puts it into slab memory after the next barrier, so a GPU's load latency overlaps them.

override TILE_M: u32 = 64u;            // multiples of 4 · THREAD_QUADS
override TILE_N: u32 = 64u;
override TILE_K: u32 = 16u;            // any (a slab past K is zeros)
override THREAD_QUADS: u32 = 1u;       // 1 or 2: 4 × 4 or 8 × 8 of C a thread
override PREFETCH: bool = false;       // fetch the next slab during this one's multiply-adds
override WG_X: u32 = TILE_N / (4u * THREAD_QUADS);  // derived: do not set
override WG_Y: u32 = TILE_M / (4u * THREAD_QUADS);  // derived: do not set

struct Problem {
    m: u32,
    n: u32,
    c_offset: u32,      // C_g at [c_offset ..] of the flat buffers (elements)
    sums_offset: u32,   // sums_g at [sums_offset ..]
    first_group: u32,   // the problem's first workgroup
    tiles_x: u32,       // column tiles: ceil(N_g / TILE_N)
    _pad0: u32,
    _pad1: u32,
}

struct Params {
    k: u32,
    problems: u32,      // 1 ..= 4
    // Adam's hyperparameters (matmul_grouped_tn_adam only).
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
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
// matmul_grouped_tn_adam: the flat parameters and Adam's moments, the host's table of
// per-step scalars, and the step state [step, cursor] (its row bound by dynamic offset).
@group(0) @binding(10) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> step_scalars: array<f32>;
@group(0) @binding(14) var<storage, read> state: array<u32>;

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

// Vec4 e of the slab at k0 of op(A) = A_gᵀ (rows row0..) and of B_g (columns col0..): A_g
// stored (K, M_g) and B_g stored (K, N_g), so a vec4 is 4 rows of op(A), or 4 columns of B,
// at one k, put into the slab as it is; zeros past the edges.
fn slab_a(g: u32, p: Problem, row0: u32, k0: u32, e: u32) -> vec4<f32> {
    let kk = e / (TILE_M / 4u);
    let row = row0 + 4u * (e % (TILE_M / 4u));
    if (row < p.m && k0 + kk < params.k) {
        return load_a(g, (k0 + kk) * p.m + row);
    }
    return vec4<f32>();
}

fn slab_b(g: u32, p: Problem, col0: u32, k0: u32, e: u32) -> vec4<f32> {
    let kk = e / (TILE_N / 4u);
    let col = col0 + 4u * (e % (TILE_N / 4u));
    if (col < p.n && k0 + kk < params.k) {
        return load_b(g, (k0 + kk) * p.n + col);
    }
    return vec4<f32>();
}

// The slab at k0 straight into slab memory, the workgroup's threads taking every threads-th
// vec4 (any tiles).
fn stage_slab(g: u32, p: Problem, row0: u32, col0: u32, k0: u32, thread: u32, threads: u32) {
    for (var e = thread; e < TILE_K * TILE_M / 4u; e += threads) {
        tile_a[e] = slab_a(g, p, row0, k0, e);
    }
    for (var e = thread; e < TILE_K * TILE_N / 4u; e += threads) {
        tile_b[e] = slab_b(g, p, col0, k0, e);
    }
}

// With PREFETCH, a thread's share of a slab in registers: element e of the slab's vec4s is
// the thread's i-th when e = thread + i · threads (at most MAX_FETCHES each: the host checks
// the tiles).
const MAX_FETCHES: u32 = 4u;
var<private> fetched_a: array<vec4<f32>, MAX_FETCHES>;
var<private> fetched_b: array<vec4<f32>, MAX_FETCHES>;

// Fetches the thread's share of the slab at k0 into registers.
fn fetch_slab(g: u32, p: Problem, row0: u32, col0: u32, k0: u32, thread: u32, threads: u32) {
    for (var i = 0u; i < MAX_FETCHES; i++) {
        let e = thread + i * threads;
        if (e < TILE_K * TILE_M / 4u) {
            fetched_a[i] = slab_a(g, p, row0, k0, e);
        }
        if (e < TILE_K * TILE_N / 4u) {
            fetched_b[i] = slab_b(g, p, col0, k0, e);
        }
    }
}

// Puts the fetched share into slab memory, as it is.
fn put_slab(thread: u32, threads: u32) {
    for (var i = 0u; i < MAX_FETCHES; i++) {
        let e = thread + i * threads;
        if (e < TILE_K * TILE_M / 4u) {
            tile_a[e] = fetched_a[i];
        }
        if (e < TILE_K * TILE_N / 4u) {
            tile_b[e] = fetched_b[i];
        }
    }
}

// One workgroup's share: its problem, where its thread's blocks start, and the blocks and
// row sums it computed (`live` false for a spare workgroup past the last problem's tiles).
struct Tile {
    live: bool,
    p: Problem,
    row: u32,           // the thread's first row and column of C_g
    col: u32,
    sum_rows: bool,     // whether the thread holds row sums (the first column tile, x = 0)
    acc00: mat4x4<f32>, // row i of the block at (row, col) is acc00[i]
    acc01: mat4x4<f32>, // 8 × 8 a thread: the blocks half a tile right,
    acc10: mat4x4<f32>, // half a tile down,
    acc11: mat4x4<f32>, // and both
    sums0: vec4<f32>,   // Σ_k of rows row .. row + 4
    sums1: vec4<f32>,   // and of the rows half a tile down
}

// The products of the workgroup's tile: slabs of A_g and B_g through workgroup memory (the
// barriers are workgroup-wide: a spare workgroup returns before them as a whole).
fn tile_products(id: u32, local: vec3<u32>) -> Tile {
    var t: Tile;
    // The problem whose workgroups include this one (first_group ascends).
    var g = 0u;
    for (var i = 1u; i < params.problems; i++) {
        if (id >= params.problem[i].first_group) {
            g = i;
        }
    }
    let p = params.problem[g];
    t.p = p;
    let tile = id - p.first_group;
    let tiles_y = (p.m + TILE_M - 1u) / TILE_M;
    if (tile >= p.tiles_x * tiles_y) {
        t.live = false;
        return t;  // past the last problem's tiles (a 2D grid's spare workgroups)
    }
    t.live = true;
    let row0 = (tile / p.tiles_x) * TILE_M;
    let col0 = (tile % p.tiles_x) * TILE_N;
    let k = params.k;
    let thread = local.y * WG_X + local.x;
    let threads = WG_X * WG_Y;
    t.sum_rows = col0 == 0u && local.x == 0u;
    let wide = THREAD_QUADS == 2u;

    if (PREFETCH) {
        fetch_slab(g, p, row0, col0, 0u, thread, threads);
    }
    for (var k0 = 0u; k0 < k; k0 += TILE_K) {
        if (PREFETCH) {
            put_slab(thread, threads);
        } else {
            stage_slab(g, p, row0, col0, k0, thread, threads);
        }
        workgroupBarrier();
        if (PREFETCH && k0 + TILE_K < k) {
            fetch_slab(g, p, row0, col0, k0 + TILE_K, thread, threads);
        }
        for (var kk = 0u; kk < TILE_K; kk++) {
            let a_base = kk * (TILE_M / 4u) + local.y;
            let b_base = kk * (TILE_N / 4u) + local.x;
            let a_0 = tile_a[a_base];
            let b_0 = tile_b[b_base];
            t.acc00 += outer(a_0, b_0);
            if (t.sum_rows) {
                t.sums0 += a_0;
            }
            if (wide) {
                let a_1 = tile_a[a_base + WG_Y];  // half a tile down
                let b_1 = tile_b[b_base + WG_X];  // half a tile right
                t.acc01 += outer(a_0, b_1);
                t.acc10 += outer(a_1, b_0);
                t.acc11 += outer(a_1, b_1);
                if (t.sum_rows) {
                    t.sums1 += a_1;
                }
            }
        }
        workgroupBarrier();
    }
    t.row = row0 + 4u * local.y;
    t.col = col0 + 4u * local.x;
    return t;
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
    let t = tile_products(group.y * groups.x + group.x, local);
    if (!t.live) {
        return;
    }
    if (t.sum_rows && t.row < t.p.m) {
        grads[(t.p.sums_offset + t.row) / 4u] = t.sums0;
    }
    store_block(t.p, t.row, t.col, t.acc00);
    if (THREAD_QUADS == 2u) {
        let down = t.row + 4u * WG_Y;
        let right = t.col + 4u * WG_X;
        if (t.sum_rows && down < t.p.m) {
            grads[(t.p.sums_offset + down) / 4u] = t.sums1;
        }
        store_block(t.p, t.row, right, t.acc01);
        store_block(t.p, down, t.col, t.acc10);
        store_block(t.p, down, right, t.acc11);
    }
}

// Adam on the 4 parameters at element `at` (a multiple of 4) with gradient `grad`.
fn adam_at(s: AdamScalars, at: u32, grad: vec4<f32>) {
    let i = at / 4u;
    let updated = adam_update(s, param[i], grad, m[i], v[i]);
    param[i] = updated.param;
    m[i] = updated.m;
    v[i] = updated.v;
}

// Adam on the 4 × 4 block of W_g at (row, col), its gradient acc (as store_block's).
fn adam_block(s: AdamScalars, p: Problem, row: u32, col: u32, acc: mat4x4<f32>) {
    if (col >= p.n) {
        return;
    }
    for (var i = 0u; i < 4u; i++) {
        if (row + i < p.m) {
            adam_at(s, p.c_offset + (row + i) * p.n + col, acc[i]);
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_grouped_tn_adam(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let t = tile_products(group.y * groups.x + group.x, local);
    if (!t.live) {
        return;
    }
    let s = adam_scalars();
    if (t.sum_rows && t.row < t.p.m) {
        adam_at(s, t.p.sums_offset + t.row, t.sums0);
    }
    adam_block(s, t.p, t.row, t.col, t.acc00);
    if (THREAD_QUADS == 2u) {
        let down = t.row + 4u * WG_Y;
        let right = t.col + 4u * WG_X;
        if (t.sum_rows && down < t.p.m) {
            adam_at(s, t.p.sums_offset + down, t.sums1);
        }
        adam_block(s, t.p, t.row, right, t.acc01);
        adam_block(s, t.p, down, t.col, t.acc10);
        adam_block(s, t.p, down, right, t.acc11);
    }
}
