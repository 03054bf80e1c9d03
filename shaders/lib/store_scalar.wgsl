// The epilogue's reads and stores for the matmul files that bind C as f32 (matmul.wgsl,
// matmul_rowtile.wgsl, matmul_subgroup.wgsl through lib/store_4.wgsl, matmul_coop_f16.wgsl):
// bindings 5 and 7 as f32 (lib/epilogue.wgsl, included before, says what they hold), the
// addend and f'(saved) at an index, the stores of the loss's gradient (LOSS) and of the
// reparameterization's backward (REPARAM_GRAD), and store_element, the whole store of one
// element. Uses c, bias, params, HAS_BIAS and ACCUMULATE, which each matmul file declares.

@group(0) @binding(5) var<storage, read> saved_or_eps: array<f32>;
@group(0) @binding(7) var<storage, read> addend_target_or_stats: array<f32>;

// The product at C[index] plus addend[index], when ADD_ADDEND; or plus the L1 penalty's
// gradient at the code saved[index], when L1_GRAD.
fn with_addend(v: f32, index: u32) -> f32 {
    if (ADD_ADDEND) {
        return v + addend_target_or_stats[index];
    }
    if (L1_GRAD) {
        return v + l1_grad(saved_or_eps[index]);
    }
    return v;
}

// With L1_GRAD: the penalty of the code at index, |saved[index]| (else 0).
fn l1_share(index: u32) -> f32 {
    if (L1_GRAD) {
        return abs(saved_or_eps[index]);
    }
    return 0.0;
}

// The product at C[index] times f'(saved[index]), when ACTIVATION_GRAD.
fn activation_grad(v: f32, index: u32) -> f32 {
    if (ACTIVATION_GRAD == 0u) {
        return v;
    }
    return times_activation_grad(v, saved_or_eps[index]);
}

// With LOSS: stores C[index] = LOSS_SCALE · dloss/dz for z = v and returns the element's loss.
fn store_loss(v: f32, index: u32) -> f32 {
    let grad_loss = loss_and_grad(v, addend_target_or_stats[index]);
    c[index] = grad_loss.x;
    return grad_loss.y;
}

// With REPARAM_GRAD: the product v at (row, col) is dz for col < L = REPARAM_COLS; writes (or
// adds to, ACCUMULATE) both halves of dstats = C (M, 2L): dμ at row·2L + col, dlogvar L
// later. The columns from L on (a condition's) are dropped.
fn store_reparam_grad(row: u32, col: u32, v: f32) {
    if (col >= REPARAM_COLS) {
        return;
    }
    let m = row * 2u * REPARAM_COLS + col;
    let lv = m + REPARAM_COLS;
    var d = reparam_grads(v, saved_or_eps[row * REPARAM_COLS + col], addend_target_or_stats[lv]);
    if (ACCUMULATE) {
        d += vec2<f32>(c[m], c[lv]);
    }
    c[m] = d.x;
    c[lv] = d.y;
}

// Stores the product v at (row, col), inside C: value = v (+ addend, or the L1 gradient) ·
// f'(saved) (+ bias) (+ C), then f, returning the element's L1 penalty with L1_GRAD (else
// 0); or, with LOSS, the loss's gradient, returning the element's loss; or, with
// REPARAM_GRAD, the reparameterization's backward into dstats.
fn store_element(row: u32, col: u32, v: f32) -> f32 {
    if (REPARAM_GRAD) {
        store_reparam_grad(row, col, v);
        return 0.0;
    }
    let index = row * params.n + col;
    var value = activation_grad(with_addend(v, index), index);
    if (HAS_BIAS) {
        value += bias[col];
    }
    if (ACCUMULATE) {
        value += c[index];
    }
    if (LOSS != 0u) {
        return store_loss(value, index);
    }
    c[index] = epilogue(value);
    return l1_share(index);
}
