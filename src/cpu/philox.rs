//! CPU twin of shaders/lib/philox.wgsl and shaders/philox.wgsl: Philox4x32-10 from Random123
//! (Salmon et al., SC'11), bit-identical to the GPU, and Box-Muller normals from its words.

use crate::cpu::box_muller_lanes::box_muller_pairs;
use crate::cpu::check_lens;
use crate::cpu::reparameterize::NoiseKey;
use crate::error::Result;

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let product = u64::from(a) * u64::from(b);
    ((product >> 32) as u32, product as u32)
}

#[inline(always)]
fn philox_round(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (hi0, lo0) = mul_hi_lo(PHILOX_M0, ctr[0]);
    let (hi1, lo1) = mul_hi_lo(PHILOX_M1, ctr[2]);
    [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0]
}

#[inline(always)]
fn bump_key(key: [u32; 2]) -> [u32; 2] {
    [
        key[0].wrapping_add(PHILOX_W0),
        key[1].wrapping_add(PHILOX_W1),
    ]
}

/// Ten Philox rounds of `counter` under `key`.
#[inline(always)]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut ctr = philox_round(counter, key);
    let mut k = key;
    for _ in 1..10 {
        k = bump_key(k);
        ctr = philox_round(ctr, k);
    }
    ctr
}

/// Twin of `philox_fill`: word 4g+j of `out` is word j of
/// philox4x32_10((counter\[0\] + g, counter\[1\], counter\[2\], counter\[3\]), key).
pub fn philox_fill(out: &mut [u32], counter: [u32; 4], key: [u32; 2]) -> Result<()> {
    if out.is_empty() {
        return check_lens("philox_fill", &[("out", 0, 1)]);
    }
    fill_words(out, counter, key);
    Ok(())
}

/// Groups that [`fill_words`] runs through Philox side by side, a lane each.
const LANES: usize = 16;

/// [`philox_fill`] without its check: LANES groups at a time in vector lanes (compiled for
/// AVX-512, AVX2 or the target's own vectors), the last few one by one; the same words
/// either way (unit test lanes_give_the_scalar_words).
pub(crate) fn fill_words(out: &mut [u32], counter: [u32; 4], key: [u32; 2]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: this CPU has AVX-512F, just checked.
            return unsafe { fill_avx512(out, counter, key) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2, just checked.
            return unsafe { fill_avx2(out, counter, key) };
        }
    }
    fill_lanes(out, counter, key)
}

/// [`fill_lanes`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fill_avx512(out: &mut [u32], counter: [u32; 4], key: [u32; 2]) {
    fill_lanes(out, counter, key)
}

/// [`fill_lanes`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_avx2(out: &mut [u32], counter: [u32; 4], key: [u32; 2]) {
    fill_lanes(out, counter, key)
}

/// [`fill_words`] in whatever vectors the caller was compiled for.
#[inline(always)]
fn fill_lanes(out: &mut [u32], counter: [u32; 4], key: [u32; 2]) {
    let mut blocks = out.chunks_exact_mut(4 * LANES);
    let mut first = counter[0];
    for block in &mut blocks {
        let words = philox_lanes([first, counter[1], counter[2], counter[3]], key);
        for (lane, group) in block.chunks_exact_mut(4).enumerate() {
            group.copy_from_slice(&[
                words[0][lane],
                words[1][lane],
                words[2][lane],
                words[3][lane],
            ]);
        }
        first = first.wrapping_add(LANES as u32);
    }
    for (g, chunk) in blocks.into_remainder().chunks_mut(4).enumerate() {
        let words = philox4x32_10(
            [
                first.wrapping_add(g as u32),
                counter[1],
                counter[2],
                counter[3],
            ],
            key,
        );
        chunk.copy_from_slice(&words[..chunk.len()]);
    }
}

/// Word j of lane l is word j of philox4x32_10((counter\[0\] + l, counter\[1..\]), key):
/// the ten rounds of LANES counters side by side (words\[j\] holds word j of every lane).
/// The words are held in u64 lanes below 2^32, so that each 32 × 32 → 64-bit product is one
/// vector multiply with no narrowing shuffles.
#[inline(always)]
fn philox_lanes(counter: [u32; 4], key: [u32; 2]) -> [[u32; LANES]; 4] {
    const LOW: u64 = 0xFFFF_FFFF;
    let mut ctr = counter.map(|word| [u64::from(word); LANES]);
    for (lane, word) in ctr[0].iter_mut().enumerate() {
        *word = u64::from(counter[0].wrapping_add(lane as u32));
    }
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = bump_key(k);
        }
        let (k0, k1) = (u64::from(k[0]), u64::from(k[1]));
        // A lane index into the four words: zipped iterators gave slower vectors (Gaussian
        // corruption of a batch 168 µs against 134 µs).
        #[allow(clippy::needless_range_loop)]
        for lane in 0..LANES {
            let p0 = u64::from(PHILOX_M0) * (ctr[0][lane] & LOW);
            let p1 = u64::from(PHILOX_M1) * (ctr[2][lane] & LOW);
            ctr[0][lane] = (p1 >> 32) ^ ctr[1][lane] ^ k0;
            ctr[1][lane] = p1 & LOW;
            ctr[2][lane] = (p0 >> 32) ^ ctr[3][lane] ^ k1;
            ctr[3][lane] = p0 & LOW;
        }
    }
    let mut words = [[0u32; LANES]; 4];
    for (word, lanes) in words.iter_mut().zip(&ctr) {
        for (w, &v) in word.iter_mut().zip(lanes) {
            *w = v as u32;
        }
    }
    words
}

/// Groups (4 elements each) a thread draws at least in the random twins (reparameterize,
/// corrupt): Philox and Box-Muller in lanes take about 2 ns an element, the twins' own
/// arithmetic 1–3 more (the VAE's 128 × 20 took 13–14 µs on one core or on two).
pub(crate) const MIN_GROUPS_PER_THREAD: usize = 256;

/// The top 24 bits as a number in (0, 1].
#[inline(always)]
pub fn uniform_open_closed(bits: u32) -> f64 {
    f64::from((bits >> 8) + 1) / 16_777_216.0
}

/// The top 24 bits as a number in [0, 1).
#[inline(always)]
pub fn uniform_closed_open(bits: u32) -> f64 {
    f64::from(bits >> 8) / 16_777_216.0
}

/// Two standard normals from two words (Box-Muller), as the shader computes them:
/// √(−2 ln u)·[cos 2πt, sin 2πt] with u = [`uniform_open_closed`]`(bits0)` and
/// t = [`uniform_closed_open`]`(bits1)`. In f64 here (cpu/box_muller_lanes.rs, the same bits
/// as the twins' batches); the GPU's f32 log/cos/sin are looser, so compare normals with a
/// tolerance.
pub fn box_muller(bits0: u32, bits1: u32) -> [f64; 2] {
    crate::cpu::box_muller_lanes::box_muller(bits0, bits1)
}

/// Groups a random twin (corrupt, reparameterize) draws at a time: their words and normals
/// are 6 KB on the stack.
pub(crate) const BLOCK_GROUPS: usize = 128;

/// words (4·groups) = the words of the groups from `first_group` on of the random op keyed
/// by `key`, as [`normals_for_group`] draws them.
pub(crate) fn words_for_groups(words: &mut [u32], first_group: usize, key: NoiseKey) {
    let counter = [first_group as u32, key.step, key.stream, 0];
    fill_words(words, counter, [key.seed as u32, (key.seed >> 32) as u32]);
}

/// normals (4·groups) = [`normals_for_group`] of the groups from `first_group` on, in lanes;
/// `words` (as long) is scratch.
pub(crate) fn normals_for_groups(
    normals: &mut [f64],
    words: &mut [u32],
    first_group: usize,
    key: NoiseKey,
) {
    words_for_groups(words, first_group, key);
    box_muller_pairs(normals, words);
}

/// The four normals for element group `g` (elements 4g..4g+3) of a random op keyed by
/// (seed, step, stream): counter (g, step, stream, 0), key (seed low, seed high).
pub fn normals_for_group(seed: u64, step: u32, stream: u32, g: u32) -> [f64; 4] {
    let bits = philox4x32_10([g, step, stream, 0], [seed as u32, (seed >> 32) as u32]);
    let [z0, z1] = box_muller(bits[0], bits[1]);
    let [z2, z3] = box_muller(bits[2], bits[3]);
    [z0, z1, z2, z3]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole blocks of lanes and a remainder ending in a partial group, from a counter that
    /// wraps past u32::MAX: each word is the scalar Philox's.
    #[test]
    fn lanes_give_the_scalar_words() {
        let (counter, key) = ([u32::MAX - 20, 3, 5, 7], [0x1234_5678, 0x9abc_def0]);
        let n = 4 * (3 * LANES + 5) + 2;
        let mut out = vec![0u32; n];
        fill_words(&mut out, counter, key);
        for (g, chunk) in out.chunks(4).enumerate() {
            let c = [counter[0].wrapping_add(g as u32), 3, 5, 7];
            assert_eq!(chunk, &philox4x32_10(c, key)[..chunk.len()], "group {g}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut avx2 = vec![0u32; n];
            // SAFETY: this CPU has AVX2, just checked.
            unsafe { fill_avx2(&mut avx2, counter, key) };
            assert_eq!(avx2, out, "avx2");
        }
    }
}
