// The matmul's optional store epilogue, shared by every matmul file (matmul.wgsl,
// matmul_vec4.wgsl, matmul_rowtile.wgsl, the subgroup files, matmul_coop_f16.wgsl), so that a
// linear layer and the element-wise op around it take one dispatch:
//   ACTIVATION       f applied to each stored value: a layer's activation (forward)
//   ACTIVATION_GRAD  the product multiplied by f'(saved), saved (M, N) being f's output: an
//                    activation's backward applied in the store of the dx matmul (backward)
//   ROW_SUMS         row_sums (M) = Σ_k op(A)[row, k], written by the threads of the first
//                    column block: the bias gradient Σ_rows dy in the store of dW = dyᵀ·x
//   ADD_ADDEND       addend (M, N) added to the product before ACTIVATION_GRAD: the part of
//                    a gradient other layers wrote, when several feed it (C = (op(A)·op(B) +
//                    addend)·f'(saved))
//   LOSS             a loss of z = product (+ bias) against target (M, N) in place of the
//                    store (1 BCE from logits, 2 MSE): C = LOSS_SCALE · dloss/dz (the logits
//                    are never stored), and each thread adds the loss of its share of a row
//                    to one slot of loss_totals (M, N), row · N + the first column it stores
//                    in that row, so no two threads touch a slot; Σ of a row's N slots is the
//                    row's running total. ACTIVATION, ACTIVATION_GRAD, ADD_ADDEND, ROW_SUMS and
//                    ACCUMULATE are off with it (the host refuses them).
//   L1_GRAD          a sparse autoencoder's L1 penalty on the code, saved (M, N) (the
//                    layer's input, dx being its gradient), in the store of the decoder's
//                    dx matmul: L1_SCALE·sign(saved) (the penalty's gradient, l1.wgsl's
//                    formula) added to the product in place of ADD_ADDEND, before
//                    f'(saved) where ACTIVATION_GRAD is on; and each thread adds the
//                    penalty Σ|saved| of its share of a row to one slot of loss_totals
//                    (M, N), as LOSS does. ACTIVATION, ADD_ADDEND, ROW_SUMS, LOSS,
//                    REPARAM_GRAD, ACCUMULATE and HAS_BIAS are off with it (the host
//                    refuses them).
//   REPARAM_GRAD     the VAE reparameterization's backward in place of the store: the
//                    product's first L = REPARAM_COLS columns, v, are dz of z = μ +
//                    e^(½·logvar)·ε (L = N for a VAE; a conditional VAE's product is
//                    d(z | label), whose label columns nothing reads and the store drops),
//                    and C is dstats (M, 2L), μ | logvar per row: C[row·2L + col] (+)= v and
//                    C[row·2L + L + col] (+)= v·ε·½·e^(½·logvar), with ε = eps (M, L) and
//                    logvar from stats (M, 2L) ("+=" when ACCUMULATE); dz is never stored.
//                    ACTIVATION, ACTIVATION_GRAD, ADD_ADDEND, ROW_SUMS, LOSS and HAS_BIAS are
//                    off with it (the host refuses them).
// Order in the store: product, + addend (or the L1 gradient), · f'(saved), + bias, + C
// (ACCUMULATE), f. The formulas are those of relu.wgsl, sigmoid.wgsl and tanh.wgsl, of
// bce.wgsl and mse.wgsl's forward_backward, of l1.wgsl and of reparameterize.wgsl's
// reparameterize_backward, so a fused store equals the separate kernels' result.
//
// The functions here compute on values and touch neither C nor bindings 5 and 7:
// lib/store_scalar.wgsl (C and bindings 5 and 7 as f32) or lib/store_vec4.wgsl (as vec4s)
// reads their inputs and stores their results. add_loss_share and store_row_sums write
// binding 6 and read `params`, which each matmul file declares. Bindings 5, 6 and 7 serve
// several options each (storage bindings are scarce: WebGPU's default limit is 8 a stage,
// and the matmul binds 7), never two at once:
//   binding 5 saved_or_eps            (M, N) f's output if ACTIVATION_GRAD, the code if
//                                     L1_GRAD (the same tensor when both); (M, L) ε if
//                                     REPARAM_GRAD
//   binding 6 row_sums_or_totals      (M) row sums if ROW_SUMS; (M, N) loss totals if LOSS
//                                     or L1_GRAD
//   binding 7 addend_target_or_stats  (M, N) addend if ADD_ADDEND; (M, N) loss target if
//                                     LOSS; (M, 2L) stats, μ | logvar, if REPARAM_GRAD

override ACTIVATION: u32 = 0u;       // 0 none, 1 ReLU, 2 sigmoid, 3 tanh
override ACTIVATION_GRAD: u32 = 0u;  // 0 none, 1 ReLU, 2 sigmoid, 3 tanh
override ROW_SUMS: bool = false;
override ADD_ADDEND: bool = false;
override LOSS: u32 = 0u;             // 0 none, 1 BCE from logits, 2 MSE
override LOSS_SCALE: f32 = 0.0;      // dL/dΣloss, the gradient's factor (LOSS)
override L1_GRAD: bool = false;
override L1_SCALE: f32 = 0.0;        // dL/dΣpenalty, the L1 gradient's factor (L1_GRAD)
override REPARAM_GRAD: bool = false;
override REPARAM_COLS: u32 = 0u;     // L, the product's columns that are dz (REPARAM_GRAD)

// (M) row sums if ROW_SUMS; (M, N) running loss totals if LOSS or L1_GRAD. Bindings 5 and 7 are
// declared by lib/store_scalar.wgsl (as f32) or lib/store_vec4.wgsl (as vec4).
@group(0) @binding(6) var<storage, read_write> row_sums_or_totals: array<f32>;

fn epilogue(v: f32) -> f32 {
    if (ACTIVATION == 1u) {
        return max(v, 0.0);
    }
    if (ACTIVATION == 2u) {
        if (v >= 0.0) {
            return 1.0 / (1.0 + exp(-v));
        }
        let e = exp(v);
        return e / (1.0 + e);
    }
    if (ACTIVATION == 3u) {
        return tanh(clamp(v, -15.0, 15.0));
    }
    return v;
}

// The product v times f'(saved), f's output saved, as relu/sigmoid/tanh_backward compute it
// (ACTIVATION_GRAD).
fn times_activation_grad(v: f32, saved: f32) -> f32 {
    if (ACTIVATION_GRAD == 1u) {
        return select(0.0, v, saved > 0.0);
    }
    if (ACTIVATION_GRAD == 2u) {
        return v * saved * (1.0 - saved);
    }
    if (ACTIVATION_GRAD == 3u) {
        return v * (1.0 - saved * saved);
    }
    return v;
}

// With LOSS: for z = v against target x, (LOSS_SCALE · dloss/dz, the element's loss)
// (bce.wgsl and mse.wgsl's bce/mse_forward_backward formulas): the first is stored in place
// of C.
fn loss_and_grad(v: f32, x: f32) -> vec2<f32> {
    if (LOSS == 1u) {
        // One exponential for both: e^-|v| is the e^-v or e^v of the stable sigmoid's
        // branches, so the values are those of bce.wgsl's separate forms.
        let e = exp(-abs(v));
        let sigmoid = select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
        return vec2<f32>(LOSS_SCALE * (sigmoid - x), max(v, 0.0) - v * x + log(1.0 + e));
    }
    let diff = v - x;
    return vec2<f32>(LOSS_SCALE * 2.0 * diff, diff * diff);
}

// Whether each thread adds its share of a row's loss to a slot of loss_totals (LOSS, L1_GRAD).
fn adds_row_shares() -> bool {
    return LOSS != 0u || L1_GRAD;
}

// With L1_GRAD: the L1 penalty's gradient at an element of the code (l1.wgsl's l1_backward,
// sign(0) = 0).
fn l1_grad(code: f32) -> f32 {
    return L1_SCALE * sign(code);
}

// With LOSS or L1_GRAD: adds a thread's share of row `row`'s loss to its slot, row · N +
// `first_col`, `first_col` being the first column the thread stored in that row.
fn add_loss_share(row: u32, first_col: u32, share: f32) {
    let slot = row * params.n + first_col;
    row_sums_or_totals[slot] += share;
}

// With REPARAM_GRAD: the product v is dz of z = μ + e^(½·logvar)·ε at one element; returns
// (dμ, dlogvar) = (dz, dz·ε·½·e^(½·logvar)) (reparameterize_backward's formulas, in its
// order), to be written (or added, ACCUMULATE) at row·2L + col and L later in C = dstats
// (M, 2L).
fn reparam_grads(v: f32, eps: f32, logvar: f32) -> vec2<f32> {
    return vec2<f32>(v, v * eps * 0.5 * exp(0.5 * logvar));
}

// Writes Σ_k op(A)[row, k] for the 4 rows row .. row + 3, when ROW_SUMS.
fn store_row_sums(row: u32, sums: vec4<f32>) {
    for (var i = 0u; i < 4u; i++) {
        if (row + i < params.m) {
            row_sums_or_totals[row + i] = sums[i];
        }
    }
}
