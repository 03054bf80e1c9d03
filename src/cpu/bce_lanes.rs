//! The BCE twin's f32 path (cpu/bce.rs): binary cross-entropy from logits and its gradient
//! in 16 f32 lanes, with e^-|z| and ln(1 + e^-|z|) as polynomials instead of libm's scalar
//! expf and log1pf calls (which made BCE 17 % of a VAE epoch on the CPU path). Compiled for
//! AVX-512, AVX2 or the target's own vectors; every width does the same operations on each
//! element, so the same bits (unit test every_width_gives_the_same_bits). Each result is
//! within a few ulps of the f64 formulas (unit test each_element_is_within_ulps_of_f64).

/// The lanes a row's loss is summed in: one AVX-512 vector, two AVX2 ones.
const LANES: usize = 16;

/// loss\[r\] = Σ_c bce(logits\[r, c\], target\[r, c\]) for the rows of `loss`; logits and
/// target hold loss.len() rows of `cols` values each.
pub(crate) fn forward(loss: &mut [f32], logits: &[f32], target: &[f32], cols: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: this CPU has AVX-512F, just checked.
            return unsafe { forward_avx512(loss, logits, target, cols) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2, just checked.
            return unsafe { forward_avx2(loss, logits, target, cols) };
        }
    }
    forward_lanes(loss, logits, target, cols)
}

/// dlogits\[i\] = row_scale\[i / cols\] · (σ(logits\[i\]) − target\[i\]); dlogits, logits and
/// target hold row_scale.len() rows of `cols` values each.
pub(crate) fn backward(
    dlogits: &mut [f32],
    logits: &[f32],
    target: &[f32],
    row_scale: impl Fn(usize) -> f32,
    cols: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: this CPU has AVX-512F, just checked.
            return unsafe { backward_avx512(dlogits, logits, target, row_scale, cols) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2, just checked.
            return unsafe { backward_avx2(dlogits, logits, target, row_scale, cols) };
        }
    }
    backward_lanes(dlogits, logits, target, row_scale, cols)
}

/// [`forward_lanes`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn forward_avx512(loss: &mut [f32], logits: &[f32], target: &[f32], cols: usize) {
    forward_lanes(loss, logits, target, cols)
}

/// [`forward_lanes`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_avx2(loss: &mut [f32], logits: &[f32], target: &[f32], cols: usize) {
    forward_lanes(loss, logits, target, cols)
}

/// [`backward_lanes`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn backward_avx512(
    dlogits: &mut [f32],
    logits: &[f32],
    target: &[f32],
    row_scale: impl Fn(usize) -> f32,
    cols: usize,
) {
    backward_lanes(dlogits, logits, target, row_scale, cols)
}

/// [`backward_lanes`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn backward_avx2(
    dlogits: &mut [f32],
    logits: &[f32],
    target: &[f32],
    row_scale: impl Fn(usize) -> f32,
    cols: usize,
) {
    backward_lanes(dlogits, logits, target, row_scale, cols)
}

/// Each row's loss: element c adds to lane c mod 16, then the lanes are summed in order.
#[inline(always)]
fn forward_lanes(loss: &mut [f32], logits: &[f32], target: &[f32], cols: usize) {
    let rows = logits.chunks_exact(cols).zip(target.chunks_exact(cols));
    for (l, (z, t)) in loss.iter_mut().zip(rows) {
        let mut lanes = [0f32; LANES];
        let (z_vectors, z_tail) = z.as_chunks::<LANES>();
        let (t_vectors, t_tail) = t.as_chunks::<LANES>();
        for (z, t) in z_vectors.iter().zip(t_vectors) {
            for lane in 0..LANES {
                lanes[lane] += bce(z[lane], t[lane]);
            }
        }
        for (lane, (&z, &t)) in z_tail.iter().zip(t_tail).enumerate() {
            lanes[lane] += bce(z, t);
        }
        *l = lanes.iter().sum();
    }
}

/// Each row's gradient, its scale read once a row; subnormal results flushed to 0
/// (`flush_subnormal`).
#[inline(always)]
fn backward_lanes(
    dlogits: &mut [f32],
    logits: &[f32],
    target: &[f32],
    row_scale: impl Fn(usize) -> f32,
    cols: usize,
) {
    let rows = dlogits
        .chunks_exact_mut(cols)
        .zip(logits.chunks_exact(cols).zip(target.chunks_exact(cols)));
    for (r, (d, (z, t))) in rows.enumerate() {
        let scale = row_scale(r);
        for ((d, &z), &t) in d.iter_mut().zip(z).zip(t) {
            *d = super::flush_subnormal(scale * (sigmoid(z) - t));
        }
    }
}

/// bce(z, t) = max(z, 0) − z·t + ln(1 + e^-|z|).
#[inline(always)]
pub(crate) fn bce(z: f32, t: f32) -> f32 {
    let positive = if z > 0.0 { z } else { 0.0 };
    positive - z * t + ln_1p_unit(exp_nonpositive(-z.abs()))
}

/// σ(z) = 1 / (1 + e^-z) for z ≥ 0, else e^z / (1 + e^z): e^-|z| alone, never overflowing.
#[inline(always)]
pub(crate) fn sigmoid(z: f32) -> f32 {
    let e = exp_nonpositive(-z.abs());
    let numerator = if z >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

/// e^x for x ≤ 0, 0 below −87 (where e^x nears the subnormals, slow on CPUs and below what a
/// loss or a sigmoid can tell from 0). x = n·ln 2 + r with |r| ≤ ln 2 / 2; e^r by its Taylor
/// series to r⁷ (truncation below 2^-27); 2^n built in the exponent bits.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts: the high part's 9 bits times n (at most 7 bits) is exact.
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    // Adding 1.5 · 2^23 rounds to an integer, held in the low bits of the sum.
    const ROUND: f32 = 12_582_912.0;
    const LOWEST: f32 = -87.0;
    let clamped = if x < LOWEST { LOWEST } else { x };
    let rounded = clamped * LOG2_E + ROUND;
    let n = rounded - ROUND;
    let r = (clamped - n * LN2_HIGH) - n * LN2_LOW;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let n_bits = rounded.to_bits().wrapping_sub(ROUND.to_bits());
    let two_to_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x < LOWEST {
        0.0
    } else {
        p * two_to_n
    }
}

/// ln(1 + e) for e in [0, 1]: 2·atanh(s) with s = e / (2 + e) ≤ 1/3, by its series to s¹³
/// (truncation below 2^-26); no cancellation near e = 0.
#[inline(always)]
fn ln_1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let series = 1.0
        + s2 * (1.0 / 3.0
            + s2 * (1.0 / 5.0
                + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0))))));
    2.0 * s * series
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::ulps;

    /// Logits from −120 to 120, dense near 0 and at the ends, and targets 0, 0.3 and 1: the
    /// loss, σ, e^-|z| and ln(1 + e^-|z|) against f64, in units of the f32 spacing at the f64 value.
    #[test]
    fn each_element_is_within_ulps_of_f64() {
        let logits = (-240_000..=240_000).map(|i| i as f32 / 2000.0);
        let mut worst = [0f64; 4];
        for z in logits {
            let e = (-f64::from(z).abs()).exp();
            let e32 = e as f32;
            worst[3] = worst[3].max(ulps(ln_1p_unit(e32), f64::from(e32).ln_1p()));
            let sigma = if z >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            if z.abs() <= 87.0 {
                worst[0] = worst[0].max(ulps(exp_nonpositive(-z.abs()), e));
                worst[1] = worst[1].max(ulps(sigmoid(z), sigma));
            } else {
                assert_eq!(exp_nonpositive(-z.abs()), 0.0, "e^-|{z}|");
                assert!((f64::from(sigmoid(z)) - sigma).abs() < 1e-37, "σ({z})");
            }
            for t in [0.0f32, 0.3, 1.0] {
                let (z64, t64) = (f64::from(z), f64::from(t));
                let loss = z64.max(0.0) - z64 * t64 + e.ln_1p();
                // Where z·t nearly cancels max(z, 0), the f32 product's own rounding rules.
                let scale = z64.abs().max(1.0);
                let got = f64::from(bce(z, t));
                let error = (got - loss).abs() / (scale * f64::from(f32::EPSILON));
                worst[2] = worst[2].max(error);
            }
        }
        assert!(worst[0] <= 1.0, "e^-|z|: {} ulps", worst[0]);
        assert!(worst[1] <= 2.0, "sigmoid: {} ulps", worst[1]);
        assert!(
            worst[2] <= 2.0,
            "bce: {} f32 epsilons of max(|z|, 1)",
            worst[2]
        );
        assert!(worst[3] <= 2.0, "ln(1 + e): {} ulps", worst[3]);
    }

    /// Each vector width this CPU has gives the target's own loop's bits: rows whose length
    /// leaves a remainder past the last whole vector, logits over every range.
    #[test]
    fn every_width_gives_the_same_bits() {
        let (rows, cols) = (7, 16 * 3 + 5);
        let logits: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 401) as f32 - 200.0) / 2.0)
            .collect();
        let target: Vec<f32> = (0..rows * cols).map(|i| (i % 11) as f32 / 10.0).collect();
        let scale = |r: usize| 0.5 + r as f32;
        let run = |forward_form: &dyn Fn(&mut [f32]), backward_form: &dyn Fn(&mut [f32])| {
            let mut loss = vec![f32::NAN; rows];
            let mut dlogits = vec![f32::NAN; rows * cols];
            forward_form(&mut loss);
            backward_form(&mut dlogits);
            [crate::cpu::bits(&loss), crate::cpu::bits(&dlogits)]
        };
        let baseline = run(&|loss| forward_lanes(loss, &logits, &target, cols), &|d| {
            backward_lanes(d, &logits, &target, scale, cols)
        });
        assert!(baseline[0].iter().all(|&b| f32::from_bits(b).is_finite()));
        // Only x86-64 has wider forms to push.
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut forms: Vec<(&str, [Vec<u32>; 2])> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: this CPU has AVX2, just checked.
                let avx2 = run(
                    &|loss| unsafe { forward_avx2(loss, &logits, &target, cols) },
                    &|d| unsafe { backward_avx2(d, &logits, &target, scale, cols) },
                );
                forms.push(("avx2", avx2));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: this CPU has AVX-512F, just checked.
                let avx512 = run(
                    &|loss| unsafe { forward_avx512(loss, &logits, &target, cols) },
                    &|d| unsafe { backward_avx512(d, &logits, &target, scale, cols) },
                );
                forms.push(("avx512", avx512));
            }
        }
        for (form, got) in forms {
            assert_eq!(got[0], baseline[0], "{form}: loss");
            assert_eq!(got[1], baseline[1], "{form}: dlogits");
        }
    }
}
