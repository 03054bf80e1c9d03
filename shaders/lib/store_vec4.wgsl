// The store of a thread that owns 4 consecutive columns of C in a row, for the matmul files
// that run shapes whose M, N and K are multiples of 4 (matmul_vec4.wgsl, and
// matmul_subgroup_vec4.wgsl through lib/subgroup_tile.wgsl) and bind C and bias as vec4s: the
// epilogue (lib/epilogue.wgsl, included before) applied to 4 values, written as one vec4 (two
// with REPARAM_GRAD). lib/store_4.wgsl is the same store a float at a time. Uses c, bias,
// params, HAS_BIAS and ACCUMULATE, which each file declares. N being a multiple of 4, a
// thread's 4 columns are all inside C or all outside.

// Stores 4 columns of one row, col .. col + 3 (col a multiple of 4): value = acc (+ addend) ·
// f'(saved) (+ bias) (+ C), then f; rows past M and columns past N are skipped. With LOSS,
// stores the loss's gradient and adds the loss of the 4 columns to the slot of its first
// column `col`. With REPARAM_GRAD, stores the reparameterization's backward of the 4 values
// into C = dstats (M, 2N) instead: dμ at row·2N + col, dlogvar N later.
fn store_row(row: u32, col: u32, acc: vec4<f32>) {
    if (row >= params.m || col >= params.n) {
        return;
    }
    if (REPARAM_GRAD) {
        var d_mu: vec4<f32>;
        var d_logvar: vec4<f32>;
        for (var j = 0u; j < 4u; j++) {
            let d = reparam_grad(row, col + j, acc[j]);
            d_mu[j] = d.x;
            d_logvar[j] = d.y;
        }
        let m = (row * 2u * params.n + col) / 4u;
        let lv = m + params.n / 4u;
        if (ACCUMULATE) {
            d_mu += c[m];
            d_logvar += c[lv];
        }
        c[m] = d_mu;
        c[lv] = d_logvar;
        return;
    }
    let first = row * params.n + col;
    var value: vec4<f32>;
    for (var j = 0u; j < 4u; j++) {
        value[j] = activation_grad(with_addend(acc[j], first + j), first + j);
    }
    if (HAS_BIAS) {
        value += bias[col / 4u];
    }
    if (ACCUMULATE) {
        value += c[first / 4u];
    }
    if (LOSS != 0u) {
        var grad: vec4<f32>;
        var share = 0.0;
        for (var j = 0u; j < 4u; j++) {
            let grad_loss = loss_grad(value[j], first + j);
            grad[j] = grad_loss.x;
            share += grad_loss.y;
        }
        c[first / 4u] = grad;
        add_loss_share(row, col, share);
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        value[j] = epilogue(value[j]);
    }
    c[first / 4u] = value;
}
