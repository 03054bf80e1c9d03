// The store of a thread that owns 4 consecutive columns of C in a row, for matmul_subgroup.wgsl
// (through lib/subgroup_tile.wgsl), which runs the shapes whose N need not be a multiple of 4:
// C as f32, each column guarded. The epilogue (lib/epilogue.wgsl, lib/store_scalar.wgsl,
// included before) applied to 4 values. Uses c, bias, params, HAS_BIAS and ACCUMULATE, which
// the matmul file declares. lib/store_vec4.wgsl is the same store a vec4 at a time, for the
// files that run aligned shapes.

// Stores 4 columns of one row, col .. col + 3: value = acc (+ addend, or the L1 gradient) ·
// f'(saved) (+ bias) (+ C), then f (lib/epilogue.wgsl); columns past N and rows past M are
// skipped. With LOSS, stores the loss's gradient and adds the loss of the 4 columns to the
// slot of its first column `col` (with L1_GRAD, their penalty). With REPARAM_GRAD, stores the reparameterization's backward of the 4
// values into C = dstats (M, 2L) instead (lib/store_scalar.wgsl's store_element).
fn store_row(row: u32, col: u32, acc: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    var share = 0.0;
    for (var j = 0u; j < 4u; j++) {
        if (col + j < params.n) {
            share += store_element(row, col + j, acc[j]);
        }
    }
    if (adds_row_shares() && col < params.n) {
        add_loss_share(row, col, share);
    }
}
