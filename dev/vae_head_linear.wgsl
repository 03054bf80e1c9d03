// Dev variant (issue 4): the VAE head with the linear layer that computes its stats in front,
// one dispatch where a training step now runs two (the stats matmul, then vae_head_forward of
// shaders/vae_head.wgsl). One workgroup per row:
//   stats (rows, 2·cols) = h (rows, inputs) · Wᵀ + b    written; W (2·cols, inputs) and b
//                          (2·cols) lie in one binding, `layer` (a view of the parameters), b
//                          from bias_offset; 2·cols ≤ STATS_COLS_MAX
//   then as vae_head_forward on those stats: z = μ + e^(½·logvar)·ε (ε from Philox as there),
//   kl_totals[r] += KL of row r, dstats = [scale · μ | scale · ½ (e^logvar - 1)] written.
// Each LANES threads take one stats column at a time, splitting the inputs among them (W's row
// and h's row read in order); the first of them adds their partial sums and the bias. Includes
// lib/philox.wgsl and lib/grid.wgsl. Harness: dev/vae_head_linear.rs.

struct Params {
    rows: u32,
    cols: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    scale: f32,
    inputs: u32,
    bias_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> z: array<f32>;          // (rows, cols)
@group(0) @binding(2) var<storage, read_write> eps: array<f32>;        // (rows, cols)
@group(0) @binding(3) var<storage, read_write> kl_totals: array<f32>;  // (rows)
@group(0) @binding(4) var<storage, read_write> dstats: array<f32>;     // (rows, 2·cols)
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;      // (rows, 2·cols): μ | logvar
@group(0) @binding(6) var<storage, read> step: array<u32>;             // (1) training step
@group(0) @binding(7) var<storage, read> h: array<f32>;                // (rows, inputs)
@group(0) @binding(8) var<storage, read> layer: array<f32>;            // W (2·cols, inputs), b

override LANES: u32 = 32u;  // threads per stats column; divides WORKGROUP_SIZE
const STATS_COLS_MAX: u32 = 256u;
var<workgroup> row_stats: array<f32, STATS_COLS_MAX>;  // this row's μ | logvar

// The standard normal of element i: lane i % 4 of Philox group i / 4 (as vae_head_forward).
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
fn vae_head_linear_forward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let row = flat_group(group, groups);
    if (row >= params.rows) {
        return;  // the whole workgroup leaves together
    }
    // Read once: storage may alias the outputs, so a loop would reload params each pass.
    let inputs = params.inputs;
    let cols = params.cols;
    let stats_cols = 2u * cols;
    let h_row = row * inputs;
    let lane = local % LANES;
    let columns_per_pass = WORKGROUP_SIZE / LANES;
    for (var first = 0u; first < stats_cols; first += columns_per_pass) {
        let c = first + local / LANES;
        var dot = 0.0;
        if (c < stats_cols) {
            let w_row = c * inputs;
            for (var k = lane; k < inputs; k += LANES) {
                dot += h[h_row + k] * layer[w_row + k];
            }
        }
        partial_sums[local] = dot;
        workgroupBarrier();
        if (lane == 0u && c < stats_cols) {
            var value = 0.0;
            for (var l = 0u; l < LANES; l++) {
                value += partial_sums[local + l];
            }
            value += layer[params.bias_offset + c];
            row_stats[c] = value;
            stats[row * stats_cols + c] = value;
        }
        workgroupBarrier();
    }
    let step_now = step[0];
    var sum = 0.0;
    for (var c = local; c < cols; c += WORKGROUP_SIZE) {
        let mu = row_stats[c];
        let logvar = row_stats[cols + c];
        let i = row * cols + c;                  // in z, eps (rows, cols)
        let m = row * stats_cols + c;            // μ in dstats (rows, 2·cols)
        let e = normal_of_element(i, step_now);
        eps[i] = e;
        z[i] = mu + exp(0.5 * logvar) * e;
        dstats[m] = params.scale * mu;
        dstats[m + cols] = params.scale * 0.5 * (exp(logvar) - 1.0);
        sum += 1.0 + logvar - mu * mu - exp(logvar);
    }
    let total = workgroup_sum(sum, local);
    if (local == 0u) {
        kl_totals[row] += -0.5 * total;
    }
}
