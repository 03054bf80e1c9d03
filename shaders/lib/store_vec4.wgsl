// The store of a thread that owns 4 consecutive columns of C in a row, for the matmul files
// that run shapes whose M, N and K are multiples of 4 (matmul_vec4.wgsl, and
// matmul_subgroup_vec4.wgsl through lib/subgroup_tile.wgsl) and bind C and bias as vec4s: the
// epilogue (lib/epilogue.wgsl, included before) applied to 4 values read a vec4 at a time
// (addend, saved, target, ε, logvar) and written as one vec4 (two with REPARAM_GRAD).
// lib/store_4.wgsl with lib/store_scalar.wgsl is the same store a float at a time. Uses c,
// bias, params, HAS_BIAS and ACCUMULATE, which each file declares. N being a multiple of 4,
// a thread's 4 columns are all inside C or all outside.

// Bindings 5 and 7 as vec4s (lib/epilogue.wgsl says what they hold): every (M, N), (M, L) or
// (M, 2L) row starts at a multiple of 4 (the host runs REPARAM_GRAD here only with L a
// multiple of 4).
@group(0) @binding(5) var<storage, read> saved_or_eps: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> addend_target_or_stats: array<vec4<f32>>;

// Stores 4 columns of one row, col .. col + 3 (col a multiple of 4): value = acc (+ addend, or
// the L1 gradient) · f'(saved) (+ bias) (+ C), then f; rows past M and columns past N are
// skipped. With LOSS, stores the loss's gradient and adds the loss of the 4 columns to the
// slot of its first column `col`; with L1_GRAD, adds the 4 codes' penalty to it. With
// REPARAM_GRAD, stores the reparameterization's backward of the 4 values into C = dstats
// (M, 2L) instead: dμ at row·2L + col, dlogvar L later; columns from L = REPARAM_COLS on
// are dropped.
fn store_row(row: u32, col: u32, acc: vec4<f32>) {
    if (row >= params.m || col >= params.n) {
        return;
    }
    if (REPARAM_GRAD) {
        if (col >= REPARAM_COLS) {
            return;
        }
        let m = (row * 2u * REPARAM_COLS + col) / 4u;
        let lv = m + REPARAM_COLS / 4u;
        let eps = saved_or_eps[(row * REPARAM_COLS + col) / 4u];
        let logvar = addend_target_or_stats[lv];
        var d_mu: vec4<f32>;
        var d_logvar: vec4<f32>;
        for (var j = 0u; j < 4u; j++) {
            let d = reparam_grads(acc[j], eps[j], logvar[j]);
            d_mu[j] = d.x;
            d_logvar[j] = d.y;
        }
        if (ACCUMULATE) {
            d_mu += c[m];
            d_logvar += c[lv];
        }
        c[m] = d_mu;
        c[lv] = d_logvar;
        return;
    }
    let q = (row * params.n + col) / 4u;
    var value = acc;
    if (ADD_ADDEND) {
        value += addend_target_or_stats[q];
    }
    // f's output (ACTIVATION_GRAD) or the code (L1_GRAD), the same tensor when both: read once.
    var saved = vec4<f32>(0.0);
    if (ACTIVATION_GRAD != 0u || L1_GRAD) {
        saved = saved_or_eps[q];
    }
    // With L1_GRAD: the penalty's gradient added, and the penalty of the 4 codes.
    var penalty = 0.0;
    if (L1_GRAD) {
        for (var j = 0u; j < 4u; j++) {
            value[j] += l1_grad(saved[j]);
            penalty += abs(saved[j]);
        }
    }
    if (ACTIVATION_GRAD != 0u) {
        for (var j = 0u; j < 4u; j++) {
            value[j] = times_activation_grad(value[j], saved[j]);
        }
    }
    if (HAS_BIAS) {
        value += bias[col / 4u];
    }
    if (ACCUMULATE) {
        value += c[q];
    }
    if (LOSS != 0u) {
        let expected = addend_target_or_stats[q];
        var grad: vec4<f32>;
        var share = 0.0;
        for (var j = 0u; j < 4u; j++) {
            let grad_loss = loss_and_grad(value[j], expected[j]);
            grad[j] = grad_loss.x;
            share += grad_loss.y;
        }
        c[q] = grad;
        add_loss_share(row, col, share);
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        value[j] = epilogue(value[j]);
    }
    c[q] = value;
    if (L1_GRAD) {
        add_loss_share(row, col, penalty);
    }
}
