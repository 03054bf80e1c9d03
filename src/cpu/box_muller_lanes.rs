//! Box-Muller normals for the random twins (cpu/philox.rs, corrupt, reparameterize) in f64
//! vector lanes: ln, sin and cos by our own series instead of libm's scalar calls (about 7 ns
//! an element: Gaussian corruption of a 128 × 784 batch took 0.8 ms on two threads).
//! The angle 2π·t is reduced in turns, exactly (t is a 24-bit fraction), so sin and cos keep
//! f64's relative accuracy even near their zeros. Compiled for AVX-512, AVX2 or the target's
//! own vectors; every width does the same operations on each element, so the same bits (unit
//! test every_width_gives_the_same_bits); each normal is within a few f64 ulps of libm's
//! formula (unit test normals_match_libms_box_muller).

use crate::cpu::philox::{uniform_closed_open, uniform_open_closed};

/// fdlibm's ln 2 in two parts (6.93147180369e-1 and 1.90821492927e-10): the high part's 32
/// trailing zero bits make e·LN2_HIGH exact.
const LN2_HIGH: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LOW: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + …): the coefficients 1/3 … 1/21 (|s| ≤ 0.172, so the
/// first term left out is below 2^-60 of the sum).
const ATANH_SERIES: [f64; 10] = [
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
    1.0 / 19.0,
    1.0 / 21.0,
];
/// sin x = x·(1 − x²/3! + x⁴/5! − … + x¹⁶/17!) for |x| ≤ π/4 (first term left out: 2^-63).
const SIN_SERIES: [f64; 8] = [
    -1.0 / 6.0,
    1.0 / 120.0,
    -1.0 / 5_040.0,
    1.0 / 362_880.0,
    -1.0 / 39_916_800.0,
    1.0 / 6_227_020_800.0,
    -1.0 / 1_307_674_368_000.0,
    1.0 / 355_687_428_096_000.0,
];
/// cos x = 1 − x²/2! + x⁴/4! − … + x¹⁶/16! for |x| ≤ π/4 (first term left out: 2^-58).
const COS_SERIES: [f64; 8] = [
    -1.0 / 2.0,
    1.0 / 24.0,
    -1.0 / 720.0,
    1.0 / 40_320.0,
    -1.0 / 3_628_800.0,
    1.0 / 479_001_600.0,
    -1.0 / 87_178_291_200.0,
    1.0 / 20_922_789_888_000.0,
];

/// normals (2·pairs) = the Box-Muller pair of each two words (2·pairs): normals\[2i\],
/// normals\[2i + 1\] = [`box_muller`]`(words[2i], words[2i + 1])`.
pub(crate) fn box_muller_pairs(normals: &mut [f64], words: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: this CPU has AVX-512F, just checked.
            return unsafe { pairs_avx512(normals, words) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2, just checked.
            return unsafe { pairs_avx2(normals, words) };
        }
    }
    pairs_lanes(normals, words)
}

/// [`pairs_lanes`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn pairs_avx512(normals: &mut [f64], words: &[u32]) {
    pairs_lanes(normals, words)
}

/// [`pairs_lanes`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pairs_avx2(normals: &mut [f64], words: &[u32]) {
    pairs_lanes(normals, words)
}

/// Each pair's normals, in whatever vectors the caller was compiled for.
#[inline(always)]
fn pairs_lanes(normals: &mut [f64], words: &[u32]) {
    for (z, w) in normals.chunks_exact_mut(2).zip(words.chunks_exact(2)) {
        let [z0, z1] = box_muller(w[0], w[1]);
        z[0] = z0;
        z[1] = z1;
    }
}

/// Two standard normals from two words: [radius·cos 2πt, radius·sin 2πt] with the radius
/// √(−2 ln u), u = [`uniform_open_closed`]`(bits0)` in (0, 1] and t =
/// [`uniform_closed_open`]`(bits1)` in [0, 1).
#[inline(always)]
pub(crate) fn box_muller(bits0: u32, bits1: u32) -> [f64; 2] {
    let radius = (-2.0 * ln_unit(uniform_open_closed(bits0))).sqrt();
    let [sin, cos] = sin_cos_turns(uniform_closed_open(bits1));
    [radius * cos, radius * sin]
}

/// ln u for a normal u in (0, 1]: u = 2^e·f with f in [√½, √2), ln f = 2·atanh(s) with
/// s = (f − 1)/(f + 1) (f − 1 is exact there).
#[inline(always)]
fn ln_unit(u: f64) -> f64 {
    const MANTISSA: u64 = (1 << 52) - 1;
    // 2^52 + the biased exponent, read back as a double: the exponent, exact (a vector
    // i64 → f64 conversion needs AVX-512DQ).
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    let bits = u.to_bits();
    let mantissa = f64::from_bits((bits & MANTISSA) | 1.0f64.to_bits());
    let biased = f64::from_bits(TWO_52.to_bits() | (bits >> 52)) - TWO_52;
    let above = mantissa > std::f64::consts::SQRT_2;
    let f = if above { 0.5 * mantissa } else { mantissa };
    let e = biased - 1023.0 + if above { 1.0 } else { 0.0 };
    let s = (f - 1.0) / (f + 1.0);
    let s2 = s * s;
    let mut series = ATANH_SERIES[ATANH_SERIES.len() - 1];
    for &c in ATANH_SERIES[..ATANH_SERIES.len() - 1].iter().rev() {
        series = series * s2 + c;
    }
    let ln_f = 2.0 * s + 2.0 * s * (s2 * series);
    e * LN2_HIGH + (e * LN2_LOW + ln_f)
}

/// [sin 2πt, cos 2πt] for t in [0, 1) a multiple of 2^-24: t = q/4 + r with q the nearest
/// quarter (r is exact, |r| ≤ 1/8), the series at x = 2π·r, then the quarter turns.
#[inline(always)]
fn sin_cos_turns(t: f64) -> [f64; 2] {
    // Adding 1.5·2^52 rounds to an integer, held in the low bits of the sum.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let rounded = 4.0 * t + ROUND;
    let quarters = rounded - ROUND;
    let q = rounded.to_bits();
    let x = std::f64::consts::TAU * (t - 0.25 * quarters);
    let x2 = x * x;
    let mut sin_series = SIN_SERIES[SIN_SERIES.len() - 1];
    for &c in SIN_SERIES[..SIN_SERIES.len() - 1].iter().rev() {
        sin_series = sin_series * x2 + c;
    }
    let mut cos_series = COS_SERIES[COS_SERIES.len() - 1];
    for &c in COS_SERIES[..COS_SERIES.len() - 1].iter().rev() {
        cos_series = cos_series * x2 + c;
    }
    let sin_x = x + x * (x2 * sin_series);
    let cos_x = 1.0 + x2 * cos_series;
    // sin(qπ/2 + x), cos(qπ/2 + x): odd quarters swap them; sin is negated in quarters 2
    // and 3, cos in quarters 1 and 2.
    let odd = q & 1 == 1;
    let (sin, cos) = if odd { (cos_x, sin_x) } else { (sin_x, cos_x) };
    let sin_sign = ((q >> 1) & 1) << 63;
    let cos_sign = ((q ^ (q >> 1)) & 1) << 63;
    [
        f64::from_bits(sin.to_bits() ^ sin_sign),
        f64::from_bits(cos.to_bits() ^ cos_sign),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libm's Box-Muller in f64 (the formula the twins used before these lanes).
    fn libm_box_muller(bits0: u32, bits1: u32) -> [f64; 2] {
        let radius = (-2.0 * uniform_open_closed(bits0).ln()).sqrt();
        let angle = std::f64::consts::TAU * uniform_closed_open(bits1);
        [radius * angle.cos(), radius * angle.sin()]
    }

    /// Words spread over the whole range, with both ends of u and t and the quarter-turn
    /// boundaries of t: within 4e-15 of libm's normals, absolutely (the normals reach 5.8;
    /// libm's angle 2π·t is itself rounded, by up to 4e-16), and each part within a few ulps
    /// where it is not near a zero.
    #[test]
    fn normals_match_libms_box_muller() {
        let mut words: Vec<u32> = (0..200_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) ^ (i >> 3))
            .collect();
        for top in [
            0u32,
            1,
            2,
            (1 << 24) - 1,
            (1 << 24) - 2,
            1 << 23,
            1 << 22,
            3 << 22,
        ] {
            words.extend([top << 8, (top << 8) | 0xff]);
            words.extend([0x1234_5678, top << 8]);
        }
        let mut worst = 0f64;
        for pair in words.chunks_exact(2) {
            let got = box_muller(pair[0], pair[1]);
            let want = libm_box_muller(pair[0], pair[1]);
            for (g, w) in got.iter().zip(want) {
                worst = worst.max((g - w).abs());
            }
        }
        assert!(worst <= 4e-15, "worst absolute difference {worst:e}");
        // ln alone, against libm, in ulps of the result.
        for top in (0..1u32 << 24)
            .step_by(997)
            .chain([(1 << 24) - 1, (1 << 24) - 2])
        {
            let u = f64::from(top + 1) / 16_777_216.0;
            let (got, want) = (ln_unit(u), u.ln());
            assert!(
                (got - want).abs() <= 2.0 * f64::EPSILON * want.abs(),
                "ln({u}) = {got}, libm {want}"
            );
        }
        // sin and cos at the quarter turns are exact.
        assert_eq!(sin_cos_turns(0.0), [0.0, 1.0]);
        assert_eq!(sin_cos_turns(0.25), [1.0, 0.0]);
        assert_eq!(sin_cos_turns(0.5), [0.0, -1.0]);
        assert_eq!(sin_cos_turns(0.75), [-1.0, 0.0]);
    }

    /// Each vector width this CPU has gives the target's own loop's bits, an odd number of
    /// pairs.
    #[test]
    fn every_width_gives_the_same_bits() {
        let words: Vec<u32> = (0..2 * 101u32)
            .map(|i| i.wrapping_mul(2_246_822_519).rotate_left(13))
            .collect();
        let mut baseline = vec![f64::NAN; words.len()];
        pairs_lanes(&mut baseline, &words);
        let scalar: Vec<f64> = words
            .chunks_exact(2)
            .flat_map(|w| box_muller(w[0], w[1]))
            .collect();
        let as_bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(as_bits(&baseline), as_bits(&scalar), "scalar");
        // Only x86-64 has wider forms to push.
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut forms: Vec<(&str, Vec<f64>)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut z = vec![f64::NAN; words.len()];
                // SAFETY: this CPU has AVX2, just checked.
                unsafe { pairs_avx2(&mut z, &words) };
                forms.push(("avx2", z));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut z = vec![f64::NAN; words.len()];
                // SAFETY: this CPU has AVX-512F, just checked.
                unsafe { pairs_avx512(&mut z, &words) };
                forms.push(("avx512", z));
            }
        }
        for (form, z) in forms {
            assert_eq!(as_bits(&z), as_bits(&baseline), "{form}");
        }
    }
}
