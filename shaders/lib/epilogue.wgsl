// The matmul's optional store epilogue, shared by matmul.wgsl and matmul_rowtile.wgsl, so that
// a linear layer and the element-wise op around it take one dispatch:
//   ACTIVATION       f applied to each stored value: a layer's activation (forward)
//   ACTIVATION_GRAD  the product multiplied by f'(saved), saved (M, N) being f's output: an
//                    activation's backward applied in the store of the dx matmul (backward)
//   ROW_SUMS         row_sums (M) = Σ_k op(A)[row, k], written by the threads of the first
//                    column block: the bias gradient Σ_rows dy in the store of dW = dyᵀ·x
//   ADD_ADDEND       addend (M, N) added to the product before ACTIVATION_GRAD: the part of
//                    a gradient other layers wrote, when several feed it (C = (op(A)·op(B) +
//                    addend)·f'(saved))
// Order in the store: product, + addend, · f'(saved), + bias, + C (ACCUMULATE), f.
// The formulas are those of relu.wgsl, sigmoid.wgsl and tanh.wgsl, so a fused store equals
// the separate kernels' result.

override ACTIVATION: u32 = 0u;       // 0 none, 1 ReLU, 2 sigmoid, 3 tanh
override ACTIVATION_GRAD: u32 = 0u;  // 0 none, 1 ReLU, 2 sigmoid, 3 tanh
override ROW_SUMS: bool = false;
override ADD_ADDEND: bool = false;

@group(0) @binding(5) var<storage, read> saved: array<f32>;           // (M, N) if ACTIVATION_GRAD
@group(0) @binding(6) var<storage, read_write> row_sums: array<f32>;  // (M) if ROW_SUMS
@group(0) @binding(7) var<storage, read> addend: array<f32>;          // (M, N) if ADD_ADDEND

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

// The product at C[index] plus addend[index], when ADD_ADDEND.
fn with_addend(v: f32, index: u32) -> f32 {
    if (ADD_ADDEND) {
        return v + addend[index];
    }
    return v;
}

// The product at C[index] times f'(saved[index]), as relu/sigmoid/tanh_backward compute it.
fn activation_grad(v: f32, index: u32) -> f32 {
    if (ACTIVATION_GRAD == 1u) {
        return select(0.0, v, saved[index] > 0.0);
    }
    if (ACTIVATION_GRAD == 2u) {
        return v * saved[index] * (1.0 - saved[index]);
    }
    if (ACTIVATION_GRAD == 3u) {
        return v * (1.0 - saved[index] * saved[index]);
    }
    return v;
}
