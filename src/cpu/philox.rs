//! CPU twin of shaders/lib/philox.wgsl and shaders/philox.wgsl: Philox4x32-10 from Random123
//! (Salmon et al., SC'11), bit-identical to the GPU, and Box-Muller normals from its words.

use crate::cpu::check_lens;
use crate::error::Result;

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let product = u64::from(a) * u64::from(b);
    ((product >> 32) as u32, product as u32)
}

fn philox_round(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (hi0, lo0) = mul_hi_lo(PHILOX_M0, ctr[0]);
    let (hi1, lo1) = mul_hi_lo(PHILOX_M1, ctr[2]);
    [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0]
}

/// Ten Philox rounds of `counter` under `key`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut ctr = philox_round(counter, key);
    let mut k = key;
    for _ in 1..10 {
        k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
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
    for (g, chunk) in out.chunks_mut(4).enumerate() {
        let words = philox4x32_10(
            [
                counter[0].wrapping_add(g as u32),
                counter[1],
                counter[2],
                counter[3],
            ],
            key,
        );
        chunk.copy_from_slice(&words[..chunk.len()]);
    }
    Ok(())
}

/// Groups (4 elements each) a thread draws at least in the random twins (reparameterize,
/// corrupt): Philox and a Box-Muller pair in f64 take about 20 ns an element (the VAE's
/// 128 × 20 took 56 µs on one core).
pub(crate) const MIN_GROUPS_PER_THREAD: usize = 128;

/// The top 24 bits as a number in (0, 1].
pub fn uniform_open_closed(bits: u32) -> f64 {
    f64::from((bits >> 8) + 1) / 16_777_216.0
}

/// The top 24 bits as a number in [0, 1).
pub fn uniform_closed_open(bits: u32) -> f64 {
    f64::from(bits >> 8) / 16_777_216.0
}

/// Two standard normals from two words (Box-Muller), as the shader computes them (in f64
/// here; the GPU's f32 log/cos/sin are looser, so compare normals with a tolerance).
pub fn box_muller(bits0: u32, bits1: u32) -> [f64; 2] {
    let radius = (-2.0 * uniform_open_closed(bits0).ln()).sqrt();
    let angle = std::f64::consts::TAU * uniform_closed_open(bits1);
    [radius * angle.cos(), radius * angle.sin()]
}

/// The four normals for element group `g` (elements 4g..4g+3) of a random op keyed by
/// (seed, step, stream): counter (g, step, stream, 0), key (seed low, seed high).
pub fn normals_for_group(seed: u64, step: u32, stream: u32, g: u32) -> [f64; 4] {
    let bits = philox4x32_10([g, step, stream, 0], [seed as u32, (seed >> 32) as u32]);
    let [z0, z1] = box_muller(bits[0], bits[1]);
    let [z2, z3] = box_muller(bits[2], bits[3]);
    [z0, z1, z2, z3]
}
