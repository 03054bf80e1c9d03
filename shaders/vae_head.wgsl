// The VAE head of a training step in one dispatch: the reparameterization z = μ + e^(½·logvar)·ε,
// the KL of N(μ, e^logvar) from N(0, 1) per row, and the KL's gradient, which needs nothing
// from later ops. μ and logvar come as one tensor, stats (rows, 2·cols): row r holds μ in
// columns [0, cols) and logvar in [cols, 2·cols); dstats has the same layout. An IWAE draws
// `samples` (K) z for each row of stats: rows r·K .. r·K + K − 1 of z and ε, as
// reparameterize_forward on stats repeated K times would. Includes lib/philox.wgsl and
// lib/grid.wgsl.
//   vae_head_forward (one workgroup per row of stats):
//     eps, z (rows·K, cols) ε for element i = s·cols + c (s the sample row) from
//                           philox4x32_10((i / 4, step, stream, 0), seed), lane i % 4 through
//                           Box-Muller: the same draws as reparameterize_forward
//     kl_totals (rows)      += -½ Σ_c (1 + logvar - μ² - e^logvar)    running sums
//     dstats (rows, 2·cols) = [scale · μ | scale · ½ (e^logvar - 1)]   written when KL_GRAD
//                           (the reparameterization's backward adds to it later in the
//                           step); an IWAE's KL is only reported, and has no gradient
// `scale` is the derivative of the training loss with respect to Σ_r kl[r] (β / rows, say).
// With JOIN_LABEL (a conditional VAE, K = 1), z's rows are z_stride = cols + label_cols wide
// and each ends with its row of label (rows, label_cols): the decoder's input z | label,
// written in place of z and of a concat dispatch.

override KL_GRAD: bool = true;
override JOIN_LABEL: bool = false;

struct Params {
    rows: u32,
    cols: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    scale: f32,
    samples: u32,  // K: z rows per row of stats
    z_stride: u32,      // the width of z's rows: cols, or cols + label_cols
    label_cols: u32,    // JOIN_LABEL only
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> z: array<f32>;          // (rows·K, z_stride)
@group(0) @binding(2) var<storage, read_write> eps: array<f32>;        // (rows·K, cols), saved for backward
@group(0) @binding(3) var<storage, read_write> kl_totals: array<f32>;  // (rows)
@group(0) @binding(4) var<storage, read_write> dstats: array<f32>;     // (rows, 2·cols): dμ | dlogvar; KL_GRAD only
@group(0) @binding(5) var<storage, read> stats: array<f32>;            // (rows, 2·cols): μ | logvar
@group(0) @binding(6) var<storage, read> step: array<u32>;             // (1) training step
@group(0) @binding(7) var<storage, read> label: array<f32>;            // (rows, label_cols); JOIN_LABEL only

// The standard normal of element i: lane i % 4 of Philox group i / 4.
fn normal_of_element(i: u32, step_now: u32) -> f32 {
    let bits = philox4x32_10(vec4<u32>(i / 4u, step_now, params.stream, 0u), vec2<u32>(params.seed_lo, params.seed_hi));
    let lane = i % 4u;
    if (lane < 2u) {
        let pair = box_muller(bits.x, bits.y);
        return select(pair.y, pair.x, lane == 0u);
    }
    let pair = box_muller(bits.z, bits.w);
    return select(pair.y, pair.x, lane == 2u);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn vae_head_forward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let row = flat_group(group, groups);
    if (row >= params.rows) {
        return;  // the whole workgroup leaves together
    }
    let step_now = step[0];
    var sum = 0.0;
    // Columns past cols are the label's (JOIN_LABEL): one loop and one store to z a column,
    // whichever part it is in. (With the label copied in a second loop, llvmpipe's GL, Mesa
    // 22.3, put lanes 1 to 7's label values into z's first columns: validate's 127x33 with a
    // label of 10 failed there and passed on Vulkan.)
    for (var c = local; c < params.z_stride; c += WORKGROUP_SIZE) {
        if (c >= params.cols) {
            z[row * params.z_stride + c] = label[row * params.label_cols + c - params.cols];
            continue;
        }
        let m = row * 2u * params.cols + c;      // μ in stats (rows, 2·cols)
        let lv = m + params.cols;                // logvar in stats
        let mu = stats[m];
        let logvar = stats[lv];
        let sigma = exp(0.5 * logvar);
        for (var s = row * params.samples; s < (row + 1u) * params.samples; s++) {
            let i = s * params.cols + c;         // in eps (rows·K, cols)
            let e = normal_of_element(i, step_now);
            eps[i] = e;
            z[s * params.z_stride + c] = mu + sigma * e;
        }
        sum += 1.0 + logvar - mu * mu - exp(logvar);
        if (KL_GRAD) {
            dstats[m] = params.scale * mu;
            dstats[lv] = params.scale * 0.5 * (exp(logvar) - 1.0);
        }
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        kl_totals[row] += -0.5 * total;
    }
}
