//! The tanh twin's f32 path (cpu/activation.rs): tanh in vector lanes instead of libm's
//! scalar tanhf (about 20 ns an element: the tanh VAE's CPU epoch took 1.8 s on two threads
//! against the ReLU one's 1.2–1.3 s). Below CUT, tanh's odd Taylor series; above it,
//! 1 − 2e/(1 + e) with e = e^-2|x| (bce_lanes' exponential), the sign put back. Compiled for
//! AVX-512, AVX2 or the target's own vectors; every width does the same operations on each
//! element, so the same bits (unit test every_width_gives_the_same_bits). Each result is
//! within 1 ulp of f64's tanh (worst seen 0.94; unit test each_element_is_within_ulps_of_f64).

use crate::cpu::bce_lanes::exp_nonpositive;

/// |x| where the series hands over to the exponential form: the series to x²⁵ is within
/// 0.08 ulp below it, and 1 − 2e/(1 + e) no longer loses digits to the difference (a cut at
/// 0.55, 0.625, 0.75 and 0.9: worst 1.44, 1.23, 0.94 and 3.77 ulps).
const CUT: f32 = 0.75;
/// x is clamped to ±15 as shaders/tanh.wgsl clamps it (tanh(15) is 1 in f32).
const LIMIT: f32 = 15.0;
/// tanh's Taylor coefficients of x³, x⁵, …, x²⁵: 2²ⁿ(2²ⁿ − 1)·B₂ₙ / (2n)!.
const SERIES: [f32; 12] = [
    -1.0 / 3.0,
    2.0 / 15.0,
    -17.0 / 315.0,
    62.0 / 2835.0,
    -1382.0 / 155_925.0,
    21_844.0 / 6_081_075.0,
    -929_569.0 / 638_512_875.0,
    6_404_582.0 / 10_854_718_875.0,
    -443_861_162.0 / 1_856_156_927_625.0,
    18_888_466_084.0 / 194_896_477_400_625.0,
    -113_927_491_862.0 / 2_900_518_163_668_125.0,
    58_870_668_456_604.0 / 3_698_160_658_676_859_375.0,
];

/// y = tanh(x), x clamped to ±LIMIT.
pub(crate) fn forward(y: &mut [f32], x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: this CPU has AVX-512F, just checked.
            return unsafe { forward_avx512(y, x) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2, just checked.
            return unsafe { forward_avx2(y, x) };
        }
    }
    forward_lanes(y, x)
}

/// [`forward_lanes`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn forward_avx512(y: &mut [f32], x: &[f32]) {
    forward_lanes(y, x)
}

/// [`forward_lanes`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_avx2(y: &mut [f32], x: &[f32]) {
    forward_lanes(y, x)
}

/// Each element's tanh, in whatever vectors the caller was compiled for.
#[inline(always)]
fn forward_lanes(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = tanh(x);
    }
}

/// tanh(x) for x clamped to ±LIMIT (a NaN goes to LIMIT's sign, as the clamp sends it).
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let a = x.abs().min(LIMIT);
    let a2 = a * a;
    // tanh a = a + a·a²·(−1/3 + a²·(2/15 + …)): the odd Taylor series to a²⁵, by Horner.
    let mut series = SERIES[SERIES.len() - 1];
    for &c in SERIES[..SERIES.len() - 1].iter().rev() {
        series = series * a2 + c;
    }
    let small = a + a * (a2 * series);
    let e = exp_nonpositive(-2.0 * a);
    let large = 1.0 - 2.0 * e / (1.0 + e);
    let magnitude = if a < CUT { small } else { large };
    magnitude.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::ulps;

    /// x from −20 to 20, dense near 0 and around CUT, against f64's tanh of the clamped x,
    /// in units of f32's spacing at the f64 value.
    #[test]
    fn each_element_is_within_ulps_of_f64() {
        let near_zero = (1..=100_000).map(|i| i as f32 * 1e-5);
        let across = (0..=400_000).map(|i| i as f32 / 20_000.0);
        let tiny = [1e-30f32, 1e-10, 1e-5, f32::MIN_POSITIVE];
        let mut worst = (0f64, 0f32);
        for x in near_zero.chain(across).chain(tiny) {
            for x in [x, -x] {
                let exact = f64::from(x.clamp(-LIMIT, LIMIT)).tanh();
                let error = ulps(tanh(x), exact);
                if error > worst.0 {
                    worst = (error, x);
                }
            }
        }
        assert!(worst.0 <= 1.0, "tanh({}): {} ulps", worst.1, worst.0);
        assert_eq!(tanh(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!((tanh(100.0), tanh(-100.0)), (1.0, -1.0));
    }

    /// Each vector width this CPU has gives the target's own loop's bits: a length that
    /// leaves a remainder past the last whole vector, values on both sides of CUT.
    #[test]
    fn every_width_gives_the_same_bits() {
        let x: Vec<f32> = (0..16 * 5 + 7)
            .map(|i| ((i * 7919 % 401) as f32 - 200.0) / 40.0)
            .collect();
        assert!(x.iter().any(|v| v.abs() < CUT) && x.iter().any(|v| v.abs() > CUT));
        let mut baseline = vec![f32::NAN; x.len()];
        forward_lanes(&mut baseline, &x);
        // Only x86-64 has wider forms to push.
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut forms: Vec<(&str, Vec<f32>)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut y = vec![f32::NAN; x.len()];
                // SAFETY: this CPU has AVX2, just checked.
                unsafe { forward_avx2(&mut y, &x) };
                forms.push(("avx2", y));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut y = vec![f32::NAN; x.len()];
                // SAFETY: this CPU has AVX-512F, just checked.
                unsafe { forward_avx512(&mut y, &x) };
                forms.push(("avx512", y));
            }
        }
        for (form, y) in forms {
            assert_eq!(crate::cpu::bits(&y), crate::cpu::bits(&baseline), "{form}");
        }
    }
}
