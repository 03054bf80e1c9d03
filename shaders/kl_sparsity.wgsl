// KL sparsity penalty of the sparse autoencoder: each code unit's mean activation over the
// batch, ρ̂_c, pulled toward a target ρ. Includes lib/grid.wgsl.
//   kl_sparsity_forward: rho_hat (cols) = clamp(Σ_r x[r, c] / rows, ε, 1 - ε);
//       loss (rows) = Σ_c ρ log(ρ/ρ̂_c) + (1 - ρ) log((1 - ρ)/(1 - ρ̂_c)), the same value in
//       every row, so that scale · Σ_r loss[r] = λ · Σ_c KL(ρ ‖ ρ̂_c) with scale = λ / rows.
//       One workgroup for the whole batch (codes are narrow).
//   kl_sparsity_backward: dx (rows, cols) = scale · (-ρ/ρ̂_c + (1 - ρ)/(1 - ρ̂_c))
//       (= dL/dρ̂_c · 1/rows with L = scale · Σ_r loss[r]); writes, or adds when ACCUMULATE.
//   kl_sparsity_forward_backward: rho_hat as the forward, totals[r] += loss[r] and dx as the
//       backward (written) in one workgroup, for a training step whose penalty rows are only
//       summed (one dispatch, not three): each thread writes dx for its columns.
// The code must lie in (0, 1): a sigmoid code.

override ACCUMULATE: bool = false;

const EPSILON: f32 = 1e-6;

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    rho: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;     // (rows)
@group(0) @binding(2) var<storage, read_write> rho_hat: array<f32>;  // (cols), saved
@group(0) @binding(3) var<storage, read> x: array<f32>;              // (rows, cols)
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;       // (rows, cols)
@group(0) @binding(5) var<storage, read> rho_hat_saved: array<f32>;  // (cols)
@group(0) @binding(6) var<storage, read_write> totals: array<f32>;   // (rows) running sums of loss

// ρ̂_c: the clamped mean of column c of x.
fn column_mean(c: u32) -> f32 {
    var column = 0.0;
    for (var r = 0u; r < params.rows; r++) {
        column += x[r * params.cols + c];
    }
    return clamp(column / f32(params.rows), EPSILON, 1.0 - EPSILON);
}

// KL(ρ ‖ ρ̂_c) of one column's mean.
fn column_kl(mean: f32) -> f32 {
    let rho = params.rho;
    return rho * log(rho / mean) + (1.0 - rho) * log((1.0 - rho) / (1.0 - mean));
}

// scale · d KL(ρ ‖ ρ̂_c) / d ρ̂_c: each element's gradient in column c.
fn column_grad(mean: f32) -> f32 {
    let rho = params.rho;
    return params.scale * (-rho / mean + (1.0 - rho) / (1.0 - mean));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn kl_sparsity_forward(@builtin(local_invocation_index) local: u32) {
    var sum = 0.0;
    for (var c = local; c < params.cols; c += WORKGROUP_SIZE) {
        let mean = column_mean(c);
        rho_hat[c] = mean;
        sum += column_kl(mean);
    }
    let total = workgroup_sum(sum, local);
    for (var r = local; r < params.rows; r += WORKGROUP_SIZE) {
        loss[r] = total;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn kl_sparsity_forward_backward(@builtin(local_invocation_index) local: u32) {
    var sum = 0.0;
    for (var c = local; c < params.cols; c += WORKGROUP_SIZE) {
        let mean = column_mean(c);
        rho_hat[c] = mean;
        sum += column_kl(mean);
        let d = column_grad(mean);
        for (var r = 0u; r < params.rows; r++) {
            dx[r * params.cols + c] = d;
        }
    }
    let total = workgroup_sum(sum, local);
    for (var r = local; r < params.rows; r += WORKGROUP_SIZE) {
        totals[r] += total;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn kl_sparsity_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = flat_index(group, groups, local);
    if (i >= params.rows * params.cols) {
        return;
    }
    var d = column_grad(rho_hat_saved[i % params.cols]);
    if (ACCUMULATE) {
        d += dx[i];
    }
    dx[i] = d;
}
