// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11), the counter-based generator of
// Random123: 128-bit counter + 64-bit key -> four 32-bit words, integer-only, so the CPU twin
// (src/cpu/philox.rs) produces the same bits. Box-Muller turns word pairs into normals.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// (high, low) 32-bit halves of the 64-bit product a·b, from 16-bit pieces (WGSL has no u64).
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let t = a_hi * b_lo + ((a_lo * b_lo) >> 16u);
    let v = a_lo * b_hi + (t & 0xffffu);
    let hi = a_hi * b_hi + (t >> 16u) + (v >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox_round(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    let p0 = mul_hi_lo(PHILOX_M0, ctr.x);
    let p1 = mul_hi_lo(PHILOX_M1, ctr.z);
    return vec4<u32>(p1.x ^ ctr.y ^ key.x, p1.y, p0.x ^ ctr.w ^ key.y, p0.y);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var ctr = counter;
    var k = key;
    ctr = philox_round(ctr, k);
    for (var round = 1u; round < 10u; round++) {
        k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        ctr = philox_round(ctr, k);
    }
    return ctr;
}

// The top 24 bits as a float in (0, 1] and in [0, 1): exact in f32 on every device.
fn uniform_open_closed(bits: u32) -> f32 {
    return f32((bits >> 8u) + 1u) * (1.0 / 16777216.0);
}

fn uniform_closed_open(bits: u32) -> f32 {
    return f32(bits >> 8u) * (1.0 / 16777216.0);
}

// Two independent standard normals from two words (Box-Muller).
fn box_muller(bits0: u32, bits1: u32) -> vec2<f32> {
    let radius = sqrt(-2.0 * log(uniform_open_closed(bits0)));
    let angle = 6.283185307179586 * uniform_closed_open(bits1);
    return vec2<f32>(radius * cos(angle), radius * sin(angle));
}
