// Matrix multiply, "tiled" variant with 4-wide loads: matmul.wgsl's workgroup tiles for shapes
// whose M, N and K are all multiples of 4 (the host picks this file for them when TILE_K is a
// multiple of 4 too, that one for the rest). The same contract:
//
//   C (M, N) = op(A) (M, K) · op(B) (K, N)  [+ bias (N), broadcast over rows]  [+ C]
//
// with op(A) = A stored (M, K) or Aᵀ stored (K, M) when TRANS_A, op(B) = B stored (K, N) or
// Bᵀ stored (N, K) when TRANS_B, all row-major, and the store epilogue of lib/epilogue.wgsl
// (through lib/store_vec4.wgsl: C and bias as vec4s); load_a4 / load_b4 from
// lib/load_4.wgsl. CPU twin: src/cpu/matmul.rs.
//
// Each workgroup computes a TILE_M × TILE_N block of C, stepping through K in slabs of TILE_K
// staged in workgroup memory as vec4s: tile_a holds 4 consecutive rows of op(A) at one k,
// tile_b 4 consecutive columns of op(B) at one k. The staging reads global memory a vec4 a
// thread along the stored rows (transposes handled there: a vec4 along K is spread over 4
// slab entries). M, N and K being multiples of 4, a vec4 is all inside the matrix or all
// outside; outside ones load zero and stores past M or N are skipped.
//
// Each thread owns THREAD_QUADS × THREAD_QUADS blocks of 4 × 4 of C:
// - THREAD_QUADS = 1: rows row0 + 4·local.y .. + 3, columns col0 + 4·local.x .. + 3. One k
//   costs two vec4 reads of workgroup memory for 16 multiply-adds (matmul.wgsl: eight scalar
//   reads).
// - THREAD_QUADS = 2 (8 × 8 a thread, for large tiles such as 128 × 128 on 256 threads): the
//   same blocks and the ones half a tile further down, right, and both. One k costs four vec4
//   reads for 64 multiply-adds. Neighbouring threads still read neighbouring vec4s, so the
//   reads are free of bank conflicts, and a row's stores run across the workgroup's width.
//
// K_SPLIT > 1 (with THREAD_QUADS = 1) splits K inside the workgroup, for products with few
// blocks of C and a long K (128 × 400 with K = 784 makes 14 workgroups of 64 × 64): the
// workgroup is K_SPLIT groups of WG_X × WG_Y threads (local.z), each with its own slab
// memory, group g taking slabs g, g + K_SPLIT, ...; each thread's chain of multiply-adds is
// K_SPLIT times shorter. Then groups 1.. hand their blocks (and row sums) to group 0 through
// the slab memory, which adds them in group order and stores. One dispatch, as without it.
//
// PREFETCH (any form) fetches the next slab from global memory into registers before the
// current slab's multiply-adds and puts it into the slab memory after the next barrier, so
// that a GPU's global-load latency overlaps the arithmetic of the same workgroup (register
// double buffering, a standard SGEMM technique), for the price of the fetched vec4s'
// registers: at most MAX_FETCHES of A and of B a thread.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;     // C += op(A)·op(B) (+ bias) instead of C =
// The epilogue's options (ACTIVATION, ACTIVATION_GRAD, ROW_SUMS, ADD_ADDEND, LOSS, L1_GRAD,
// REPARAM_GRAD): see lib/epilogue.wgsl.
override TILE_M: u32 = 64u;            // multiples of 4 · THREAD_QUADS
override TILE_N: u32 = 64u;
override TILE_K: u32 = 16u;            // a multiple of 4
override THREAD_QUADS: u32 = 1u;       // 1 or 2: 4 × 4 or 8 × 8 of C a thread
override K_SPLIT: u32 = 1u;            // groups of threads splitting K (THREAD_QUADS = 1 only)
override PREFETCH: bool = false;       // fetch the next slab during this one's multiply-adds
override WG_X: u32 = TILE_N / (4u * THREAD_QUADS);  // derived: do not set
override WG_Y: u32 = TILE_M / (4u * THREAD_QUADS);  // derived: do not set
override A_VEC4S: u32 = TILE_M * TILE_K / 4u;       // derived: vec4s of op(A) in a slab
override B_VEC4S: u32 = TILE_N * TILE_K / 4u;       // derived: vec4s of op(B) in a slab

struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> c: array<vec4<f32>>;  // (M, N)
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;  // (M, K), or (K, M) if TRANS_A
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;  // (K, N), or (N, K) if TRANS_B
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;  // (N); read only if HAS_BIAS

// A slab per group of threads: group g's is [g][k][m / 4] of op(A), [g][k][n / 4] of op(B).
var<workgroup> tile_a: array<vec4<f32>, K_SPLIT * TILE_K * TILE_M / 4u>;
var<workgroup> tile_b: array<vec4<f32>, K_SPLIT * TILE_K * TILE_N / 4u>;

// The slab k0 .. k0 + TILE_K of op(A) rows row0 .. and op(B) columns col0 .. is A_VEC4S and
// B_VEC4S vec4s of global memory. Vec4 e of A's is fetched by fetch_a and put into the slab
// memory by put_a (the same for B); a group's thread `thread` takes e = thread,
// thread + WG_X·WG_Y, ...

// Vec4 e of op(A)'s slab at k0, zero outside the matrix.
fn fetch_a(row0: u32, k0: u32, e: u32) -> vec4<f32> {
    if (TRANS_A) {
        // A stored (K, M): a vec4 is 4 rows of op(A) at one k.
        let kk = e / (TILE_M / 4u);
        let row = row0 + 4u * (e % (TILE_M / 4u));
        return load_a4(row < params.m && k0 + kk < params.k, (k0 + kk) * params.m + row);
    }
    // A stored (M, K): a vec4 is 4 k of one row of op(A).
    let r = e / (TILE_K / 4u);
    let kk = 4u * (e % (TILE_K / 4u));
    return load_a4(row0 + r < params.m && k0 + kk < params.k, (row0 + r) * params.k + k0 + kk);
}

// Puts vec4 e of op(A)'s slab into the slab memory starting at base_a ([k][m / 4]).
fn put_a(base_a: u32, e: u32, v: vec4<f32>) {
    let quads_m = TILE_M / 4u;
    if (TRANS_A) {
        tile_a[base_a + e] = v;  // [e / quads_m][e % quads_m]
        return;
    }
    let r = e / (TILE_K / 4u);
    let kk = 4u * (e % (TILE_K / 4u));
    for (var i = 0u; i < 4u; i++) {
        tile_a[base_a + (kk + i) * quads_m + r / 4u][r % 4u] = v[i];
    }
}

// Vec4 e of op(B)'s slab at k0, zero outside the matrix.
fn fetch_b(col0: u32, k0: u32, e: u32) -> vec4<f32> {
    if (TRANS_B) {
        // B stored (N, K): a vec4 is 4 k of one column of op(B).
        let col = e / (TILE_K / 4u);
        let kk = 4u * (e % (TILE_K / 4u));
        return load_b4(col0 + col < params.n && k0 + kk < params.k, (col0 + col) * params.k + k0 + kk);
    }
    // B stored (K, N): a vec4 is 4 columns of op(B) at one k.
    let kk = e / (TILE_N / 4u);
    let col = col0 + 4u * (e % (TILE_N / 4u));
    return load_b4(col < params.n && k0 + kk < params.k, (k0 + kk) * params.n + col);
}

// Puts vec4 e of op(B)'s slab into the slab memory starting at base_b ([k][n / 4]).
fn put_b(base_b: u32, e: u32, v: vec4<f32>) {
    let quads_n = TILE_N / 4u;
    if (!TRANS_B) {
        tile_b[base_b + e] = v;  // [e / quads_n][e % quads_n]
        return;
    }
    let col = e / (TILE_K / 4u);
    let kk = 4u * (e % (TILE_K / 4u));
    for (var i = 0u; i < 4u; i++) {
        tile_b[base_b + (kk + i) * quads_n + col / 4u][col % 4u] = v[i];
    }
}

// Stages the slab at k0 into the slab memory at base_a and base_b, straight from global
// memory (without PREFETCH).
fn stage_slab(row0: u32, col0: u32, k0: u32, thread: u32, base_a: u32, base_b: u32) {
    let threads = WG_X * WG_Y;
    for (var e = thread; e < A_VEC4S; e += threads) {
        put_a(base_a, e, fetch_a(row0, k0, e));
    }
    for (var e = thread; e < B_VEC4S; e += threads) {
        put_b(base_b, e, fetch_b(col0, k0, e));
    }
}

// With PREFETCH, a thread's share of the next slab, fetched into registers before the
// current slab's multiply-adds so that the global loads overlap them, and put into the slab
// memory after the next barrier. At most MAX_FETCHES vec4s each of A and B a thread
// (MatmulTiles::check).
const MAX_FETCHES: u32 = 4u;
var<private> fetched_a: array<vec4<f32>, MAX_FETCHES>;
var<private> fetched_b: array<vec4<f32>, MAX_FETCHES>;

fn fetch_slab(row0: u32, col0: u32, k0: u32, thread: u32) {
    let threads = WG_X * WG_Y;
    for (var i = 0u; i < MAX_FETCHES; i++) {
        let e = thread + i * threads;
        if (e < A_VEC4S) {
            fetched_a[i] = fetch_a(row0, k0, e);
        }
        if (e < B_VEC4S) {
            fetched_b[i] = fetch_b(col0, k0, e);
        }
    }
}

fn put_fetched(thread: u32, base_a: u32, base_b: u32) {
    let threads = WG_X * WG_Y;
    for (var i = 0u; i < MAX_FETCHES; i++) {
        let e = thread + i * threads;
        if (e < A_VEC4S) {
            put_a(base_a, e, fetched_a[i]);
        }
        if (e < B_VEC4S) {
            put_b(base_b, e, fetched_b[i]);
        }
    }
}

// The 4 × 4 product of 4 rows of op(A) (a) and 4 columns of op(B) (b): column i of the
// matrix is row i's 4 values.
fn outer(a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(a.x * b, a.y * b, a.z * b, a.w * b);
}

// Entry i of the slab memory seen as one array (tile_a, then tile_b): the scratch through
// which K_SPLIT's groups hand over their blocks.
fn scratch_write(i: u32, v: vec4<f32>) {
    let len_a = K_SPLIT * TILE_K * TILE_M / 4u;
    if (i < len_a) {
        tile_a[i] = v;
    } else {
        tile_b[i - len_a] = v;
    }
}

fn scratch_read(i: u32) -> vec4<f32> {
    let len_a = K_SPLIT * TILE_K * TILE_M / 4u;
    if (i < len_a) {
        return tile_a[i];
    }
    return tile_b[i - len_a];
}

// Stores a 4 × 4 block of C from (row, col), row i of it being acc[i].
fn store_block(row: u32, col: u32, acc: mat4x4<f32>) {
    store_row(row, col, acc[0]);
    store_row(row + 1u, col, acc[1]);
    store_row(row + 2u, col, acc[2]);
    store_row(row + 3u, col, acc[3]);
}

@compute @workgroup_size(WG_X, WG_Y, K_SPLIT)
fn matmul_vec4(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let row0 = group.y * TILE_M;
    let col0 = group.x * TILE_N;
    // The thread's group (which slabs it takes) and its index in the group.
    let split = local.z;
    let thread = local.y * WG_X + local.x;
    let base_a = split * TILE_K * (TILE_M / 4u);
    let base_b = split * TILE_K * (TILE_N / 4u);
    // The thread's blocks of C, by (row block, column block): acc01 is the block half a tile
    // to the right of acc00, acc10 half a tile down (those three only with THREAD_QUADS = 2).
    var acc00 = mat4x4<f32>();
    var acc01 = mat4x4<f32>();
    var acc10 = mat4x4<f32>();
    var acc11 = mat4x4<f32>();
    // Σ_k op(A) over the thread's rows, when ROW_SUMS: kept and stored by the first column
    // of threads of the first column block only.
    var sums0 = vec4<f32>();
    var sums1 = vec4<f32>();
    let sum_rows = ROW_SUMS && group.x == 0u && local.x == 0u;
    let wide = THREAD_QUADS == 2u;

    let slabs = (params.k + TILE_K - 1u) / TILE_K;
    let turns = (slabs + K_SPLIT - 1u) / K_SPLIT;
    if (PREFETCH && split < slabs) {
        fetch_slab(row0, col0, split * TILE_K, thread);
    }
    for (var turn = 0u; turn < turns; turn++) {
        // Every thread passes the same barriers; a group past the last slab idles.
        let slab = turn * K_SPLIT + split;
        let has_slab = slab < slabs;
        if (has_slab) {
            if (PREFETCH) {
                put_fetched(thread, base_a, base_b);
            } else {
                stage_slab(row0, col0, slab * TILE_K, thread, base_a, base_b);
            }
        }
        workgroupBarrier();
        if (PREFETCH && slab + K_SPLIT < slabs) {
            fetch_slab(row0, col0, (slab + K_SPLIT) * TILE_K, thread);
        }
        if (has_slab) {
            for (var kk = 0u; kk < TILE_K; kk++) {
                let a_base = base_a + kk * (TILE_M / 4u) + local.y;
                let b_base = base_b + kk * (TILE_N / 4u) + local.x;
                let a0 = tile_a[a_base];  // op(A)[row .. row + 4, k]
                let b0 = tile_b[b_base];  // op(B)[k, col .. col + 4]
                acc00 += outer(a0, b0);
                if (sum_rows) {
                    sums0 += a0;
                }
                if (wide) {
                    let a1 = tile_a[a_base + WG_Y];  // half a tile down
                    let b1 = tile_b[b_base + WG_X];  // half a tile right
                    acc01 += outer(a0, b1);
                    acc10 += outer(a1, b0);
                    acc11 += outer(a1, b1);
                    if (sum_rows) {
                        sums1 += a1;
                    }
                }
            }
        }
        workgroupBarrier();
    }
    if (K_SPLIT > 1u) {
        // Groups 1.. write their block and row sums (5 vec4 a thread) to the slab memory,
        // now free; group 0 adds them in group order.
        let slot = (WG_X * WG_Y * (split - 1u) + thread) * 5u;
        if (split > 0u) {
            scratch_write(slot, acc00[0]);
            scratch_write(slot + 1u, acc00[1]);
            scratch_write(slot + 2u, acc00[2]);
            scratch_write(slot + 3u, acc00[3]);
            scratch_write(slot + 4u, sums0);
        }
        workgroupBarrier();
        if (split == 0u) {
            for (var g = 1u; g < K_SPLIT; g++) {
                let given = (WG_X * WG_Y * (g - 1u) + thread) * 5u;
                acc00 += mat4x4<f32>(scratch_read(given), scratch_read(given + 1u),
                                     scratch_read(given + 2u), scratch_read(given + 3u));
                sums0 += scratch_read(given + 4u);
            }
        }
        if (split > 0u) {
            return;
        }
    }

    let row = row0 + 4u * local.y;
    let col = col0 + 4u * local.x;
    if (sum_rows) {
        store_row_sums(row, sums0);
    }
    store_block(row, col, acc00);
    if (wide) {
        let down = row + 4u * WG_Y;
        let right = col + 4u * WG_X;
        if (sum_rows) {
            store_row_sums(down, sums1);
        }
        store_block(row, right, acc01);
        store_block(down, col, acc10);
        store_block(down, right, acc11);
    }
}
