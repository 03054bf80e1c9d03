// Shared by bce.wgsl, mse.wgsl and iwae_bound.wgsl (prepended by the host, WGSL has no
// #include): a reconstruction loss's element and its derivative, so every kernel that sums
// a loss row or writes its gradient computes the same bits.
//   bce_element(z, t)      = max(z, 0) - z·t + log(1 + e^-|z|)   (z a logit, t in [0, 1])
//   bce_element_grad(z, t) = σ(z) - t
//   mse_element(x, t)      = (x - t)²
//   mse_element_grad(x, t) = 2·(x - t)
// The BCE forms never exponentiate a large positive number, so any finite logit is safe.

fn stable_sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

fn bce_element(z: f32, t: f32) -> f32 {
    return max(z, 0.0) - z * t + log(1.0 + exp(-abs(z)));
}

fn bce_element_grad(z: f32, t: f32) -> f32 {
    return stable_sigmoid(z) - t;
}

fn mse_element(x: f32, t: f32) -> f32 {
    let diff = x - t;
    return diff * diff;
}

fn mse_element_grad(x: f32, t: f32) -> f32 {
    return 2.0 * (x - t);
}
