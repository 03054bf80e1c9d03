//! Small vector kernels shared by the probes: dot products and squared distances with eight
//! independent partial sums, so that the compiler can keep them in vector registers (a
//! single running sum is one long dependency chain that does not vectorize).

/// Partial sums per dot product.
const LANES: usize = 8;

/// Σ a\[i\]·b\[i\] in f64. `a` and `b` have the same length.
pub(crate) fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    let mut partial = [0.0f64; LANES];
    let (a_body, b_body) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_tail, b_tail) = (a_body.remainder(), b_body.remainder());
    for (x, y) in a_body.zip(b_body) {
        for lane in 0..LANES {
            partial[lane] += x[lane] * y[lane];
        }
    }
    let tail: f64 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    partial.iter().sum::<f64>() + tail
}

/// Σ a\[i\]·b\[i\] of f32 values, summed in f32 lanes and returned as f64.
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f64 {
    let mut partial = [0.0f32; LANES];
    let (a_body, b_body) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_tail, b_tail) = (a_body.remainder(), b_body.remainder());
    for (x, y) in a_body.zip(b_body) {
        for lane in 0..LANES {
            partial[lane] += x[lane] * y[lane];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    f64::from(partial.iter().sum::<f32>() + tail)
}

/// Σ (a\[i\] − b\[i\])² of f32 values, as f64.
pub(crate) fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    let mut partial = [0.0f32; LANES];
    let (a_body, b_body) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_tail, b_tail) = (a_body.remainder(), b_body.remainder());
    for (x, y) in a_body.zip(b_body) {
        for lane in 0..LANES {
            let difference = x[lane] - y[lane];
            partial[lane] += difference * difference;
        }
    }
    let tail: f32 = a_tail
        .iter()
        .zip(b_tail)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    f64::from(partial.iter().sum::<f32>() + tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_plain_sums() {
        // Lengths around the lane count: empty, tail only, body only, body and tail.
        for n in [0usize, 3, 8, 19] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 2.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let dot: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            let distance: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from((x - y) * (x - y)))
                .sum();
            let (a64, b64): (Vec<f64>, Vec<f64>) = (
                a.iter().map(|&x| f64::from(x)).collect(),
                b.iter().map(|&x| f64::from(x)).collect(),
            );
            assert!((dot_f32(&a, &b) - dot).abs() < 1e-4, "n = {n}");
            assert!((dot_f64(&a64, &b64) - dot).abs() < 1e-9, "n = {n}");
            assert!(
                (squared_distance(&a, &b) - distance).abs() < 1e-3,
                "n = {n}"
            );
        }
    }
}
