// The VAE's reparameterization trick: z = μ + e^(½·logvar) · ε with ε ~ N(0, 1) drawn on the
// GPU. μ and logvar come as one tensor, stats (rows, 2·cols): row r holds μ in columns
// [0, cols) and logvar in [cols, 2·cols). Includes lib/philox.wgsl and lib/grid.wgsl.
//   reparameterize_forward:  z, eps (rows, cols) from stats. Thread g draws the flat elements
//       4g..4g+3 (i = r·cols + c; a group may straddle rows) from
//       philox4x32_10((g, step, stream, 0), (seed_lo, seed_hi)) through Box-Muller, so
//       ε depends only on (seed, step, stream, element) and the CPU twin draws the same bits.
//       `step` is read from a buffer so that the step counter can live on the GPU.
//   reparameterize_backward: dstats (rows, 2·cols) = [dz | dz · ε · ½ e^(½·logvar)],
//       both halves written, or both added to when ACCUMULATE.
//   reparameterize_backward_groups: the same for stats repeated k times (an IWAE's K samples
//       of each data row: dz, ε and stats have rows · k rows), summed over each group of k
//       into the data rows' dstats (rows, 2·cols), written or added to when ACCUMULATE;
//       with ADD_PARTIAL each sample's term is first added to partial (rows · k, 2·cols),
//       what other ops wrote of the samples' gradient. reparameterize_backward (adding to
//       partial) then repeat_rows.wgsl's sum_row_groups, in one pass, in their order.
// Both backwards read dz's rows dz_cols wide: cols, or wider where dz is the first cols
// columns of a gradient (a conditional VAE's d(z | label), whose label columns they skip).
// All three read row s / stats_repeat of stats for sample row s: stats_repeat is 1, or K where
// stats holds an IWAE's data rows in place of their K repeats (each read K times).

override ACCUMULATE: bool = false;
override ADD_PARTIAL: bool = false;  // reparameterize_backward_groups only

struct Params {
    rows: u32,
    cols: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    k: u32,             // reparameterize_backward_groups: samples a data row
    dz_cols: u32,       // the backwards: the width of dz's rows (cols or more)
    stats_repeat: u32,  // rows of z a row of stats stands for
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> z: array<f32>;        // (rows, cols)
@group(0) @binding(2) var<storage, read_write> eps: array<f32>;      // (rows, cols), saved for backward
@group(0) @binding(3) var<storage, read> stats: array<f32>;          // (rows / stats_repeat, 2·cols): μ | logvar
@group(0) @binding(4) var<storage, read> step: array<u32>;           // (1) training step
@group(0) @binding(5) var<storage, read_write> dstats: array<f32>;   // (rows, 2·cols): dμ | dlogvar
@group(0) @binding(6) var<storage, read> eps_saved: array<f32>;      // (rows, cols)
@group(0) @binding(7) var<storage, read> dz: array<f32>;             // (rows, dz_cols)
@group(0) @binding(8) var<storage, read> partial: array<f32>;        // (rows · k, 2·cols), groups only

// Where dz of latent element i = r·cols + c sits in dz (rows, dz_cols).
fn dz_index(i: u32) -> u32 {
    if (params.dz_cols == params.cols) {
        return i;
    }
    return (i / params.cols) * params.dz_cols + i % params.cols;
}

// Where μ of latent element i = r·cols + c sits in a (rows, 2·cols) tensor of z's rows such as
// dstats; logvar is cols later.
fn mu_index(i: u32) -> u32 {
    let r = i / params.cols;
    let c = i % params.cols;
    return r * 2u * params.cols + c;
}

// Where μ of latent element i = r·cols + c sits in stats: row r / stats_repeat.
fn stats_mu_index(i: u32) -> u32 {
    let r = i / params.cols;
    let c = i % params.cols;
    return (r / params.stats_repeat) * 2u * params.cols + c;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reparameterize_forward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let n = params.rows * params.cols;
    let g = flat_index(group, groups, local);
    if (g * 4u >= n) {
        return;
    }
    let bits = philox4x32_10(vec4<u32>(g, step[0], params.stream, 0u), vec2<u32>(params.seed_lo, params.seed_hi));
    let pair0 = box_muller(bits.x, bits.y);
    let pair1 = box_muller(bits.z, bits.w);
    let normals = array<f32, 4>(pair0.x, pair0.y, pair1.x, pair1.y);
    for (var j = 0u; j < 4u; j++) {
        let i = g * 4u + j;
        if (i < n) {
            let m = stats_mu_index(i);
            eps[i] = normals[j];
            z[i] = stats[m] + exp(0.5 * stats[m + params.cols]) * normals[j];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reparameterize_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i >= params.rows * params.cols) {
        return;
    }
    let m = mu_index(i);
    let lv = m + params.cols;
    let v = dz[dz_index(i)];
    var d_mu = v;
    var d_logvar = v * eps_saved[i] * 0.5 * exp(0.5 * stats[stats_mu_index(i) + params.cols]);
    if (ACCUMULATE) {
        d_mu += dstats[m];
        d_logvar += dstats[lv];
    }
    dstats[m] = d_mu;
    dstats[lv] = d_logvar;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reparameterize_backward_groups(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);  // element (r, c) of the data rows' dμ
    let cols = params.cols;
    if (i >= params.rows * cols) {
        return;
    }
    let r = i / cols;
    let c = i % cols;
    var sum_mu = 0.0;
    var sum_logvar = 0.0;
    for (var j = 0u; j < params.k; j++) {
        let e = (r * params.k + j) * cols + c;  // the sample's latent element
        let m = mu_index(e);
        let v = dz[dz_index(e)];
        var d_mu = v;
        var d_logvar = v * eps_saved[e] * 0.5 * exp(0.5 * stats[stats_mu_index(e) + cols]);
        if (ADD_PARTIAL) {
            d_mu += partial[m];
            d_logvar += partial[m + cols];
        }
        sum_mu += d_mu;
        sum_logvar += d_logvar;
    }
    let out = mu_index(i);
    if (ACCUMULATE) {
        sum_mu += dstats[out];
        sum_logvar += dstats[out + cols];
    }
    dstats[out] = sum_mu;
    dstats[out + cols] = sum_logvar;
}
