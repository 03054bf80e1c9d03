// The matmul's optional store epilogue: an activation applied to each stored value, so that a
// linear layer and its activation take one dispatch. The formulas are those of relu.wgsl,
// sigmoid.wgsl and tanh.wgsl, so a fused store equals the separate kernels' result.

override ACTIVATION: u32 = 0u;  // 0 none, 1 ReLU, 2 sigmoid, 3 tanh

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
