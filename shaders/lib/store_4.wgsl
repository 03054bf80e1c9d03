// The store of a thread that owns 4 consecutive columns of C in a row, shared by the matmul
// files that compute C in such runs (matmul_vec4.wgsl, and matmul_subgroup.wgsl and
// matmul_subgroup_vec4.wgsl through lib/subgroup_tile.wgsl): the epilogue (lib/epilogue.wgsl,
// included before) applied to 4 values, and the row sums of 4 consecutive rows. Uses c, bias,
// params, HAS_BIAS and ACCUMULATE, which each matmul file declares.

// Stores 4 columns of one row, col .. col + 3: value = acc (+ addend) · f'(saved) (+ bias) (+ C),
// then f (lib/epilogue.wgsl); columns past N and rows past M are skipped. With LOSS, stores
// the loss's gradient and adds the loss of the 4 columns to the slot of its first
// column `col`. With REPARAM_GRAD, stores the reparameterization's backward of the 4
// values into C = dstats (M, 2N) instead (store_reparam_grad).
fn store_row(row: u32, col: u32, acc: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    var share = 0.0;
    for (var j = 0u; j < 4u; j++) {
        if (col + j < params.n) {
            if (REPARAM_GRAD) {
                store_reparam_grad(row, col + j, acc[j]);
                continue;
            }
            let index = row * params.n + col + j;
            var value = activation_grad(with_addend(acc[j], index), index);
            if (HAS_BIAS) {
                value += bias[col + j];
            }
            if (ACCUMULATE) {
                value += c[index];
            }
            if (LOSS != 0u) {
                share += store_loss(value, index);
            } else {
                c[index] = epilogue(value);
            }
        }
    }
    if (LOSS != 0u && col < params.n) {
        add_loss_share(row, col, share);
    }
}

// Writes Σ_k op(A)[row, k] for the 4 rows row .. row + 3, when ROW_SUMS.
fn store_row_sums(row: u32, sums: vec4<f32>) {
    for (var i = 0u; i < 4u; i++) {
        if (row + i < params.m) {
            row_sums_or_totals[row + i] = sums[i];
        }
    }
}
