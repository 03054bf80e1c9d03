// The Adam update of four parameters, PyTorch's semantics (shaders/adam.wgsl's header has
// the formulas): adam.wgsl's entry points and the grouped weight gradients' fused form
// (matmul_grouped_tn.wgsl, matmul_grouped_tn_adam) both call it, so the two agree to the bit.
// step_size and bias_correction2_sqrt are the step's row of the host's f64 table. The
// including shader declares `params` (with beta1, beta2, eps, weight_decay), `step_scalars`
// (the table) and `state` (the step state, t = state[0]), which adam_scalars reads.

struct AdamScalars {
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,
    bias_correction2_sqrt: f32,
}

struct AdamVec4 {
    param: vec4<f32>,
    m: vec4<f32>,
    v: vec4<f32>,
}

// The step's scalars: the hyperparameters and row t - 1 of the table.
fn adam_scalars() -> AdamScalars {
    let t = state[0];
    return AdamScalars(
        params.beta1,
        params.beta2,
        params.eps,
        params.weight_decay,
        step_scalars[2u * (t - 1u)],
        step_scalars[2u * (t - 1u) + 1u],
    );
}

// x, or 0 where x is subnormal (below f32's smallest normal, 2^-126). A moment whose
// gradients are all 0 (a dead unit's weights) decays toward 0 by β each step; kept as 0
// once subnormal, as the CPU twin keeps it (on CPUs every operation on a subnormal costs a
// microcode assist: an AE's Adam took 4× longer by its fourth epoch).
fn flush_subnormal(x: vec4<f32>) -> vec4<f32> {
    return select(x, vec4<f32>(0.0), abs(x) < vec4<f32>(0x1p-126f));
}

fn adam_update(s: AdamScalars, param: vec4<f32>, grad: vec4<f32>, m: vec4<f32>, v: vec4<f32>) -> AdamVec4 {
    let g = grad + s.weight_decay * param;
    let m_new = flush_subnormal(s.beta1 * m + (1.0 - s.beta1) * g);
    let v_new = flush_subnormal(s.beta2 * v + (1.0 - s.beta2) * g * g);
    let denom = sqrt(v_new) / s.bias_correction2_sqrt + s.eps;
    return AdamVec4(param - s.step_size * m_new / denom, m_new, v_new);
}
