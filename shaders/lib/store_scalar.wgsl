// The epilogue's stores into C for the matmul files that bind C as f32 (matmul.wgsl,
// matmul_rowtile.wgsl, matmul_subgroup.wgsl through lib/store_4.wgsl, matmul_coop_f16.wgsl):
// the loss's gradient (LOSS) and the reparameterization's backward (REPARAM_GRAD), from
// lib/epilogue.wgsl's loss_grad and reparam_grad (included before). Uses c, params and
// ACCUMULATE, which each matmul file declares.

// With LOSS: stores C[index] = LOSS_SCALE · dloss/dz for z = v and returns the element's loss.
fn store_loss(v: f32, index: u32) -> f32 {
    let grad_loss = loss_grad(v, index);
    c[index] = grad_loss.x;
    return grad_loss.y;
}

// With REPARAM_GRAD: the product v at (row, col) is dz; writes (or adds to, ACCUMULATE) both
// halves of dstats = C (M, 2N): dμ at row·2N + col, dlogvar N later.
fn store_reparam_grad(row: u32, col: u32, v: f32) {
    let m = row * 2u * params.n + col;
    let lv = m + params.n;
    var d = reparam_grad(row, col, v);
    if (ACCUMULATE) {
        d += vec2<f32>(c[m], c[lv]);
    }
    c[m] = d.x;
    c[lv] = d.y;
}
