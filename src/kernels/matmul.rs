//! Host side of shaders/matmul.wgsl: C (m, n) = op(A)·op(B) [+ bias] [+ C].
//! CPU twin: src/cpu/matmul.rs. Tile sizes are override constants chosen per dispatch.

use bytemuck::{Pod, Zeroable};

pub use crate::cpu::matmul::MatmulShape;
use crate::error::{shape_error, Result};
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{bytes_of, check_len, prepare, Dispatch, Kernel, Shader, Slot};

pub const SHADER: Shader = Shader {
    name: "matmul",
    source: include_str!("../../shaders/matmul.wgsl"),
    includes: &[],
};

const MATMUL: Kernel = Kernel {
    shader: &SHADER,
    entry: "matmul",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
    ],
};

/// Block sizes of the tiled matmul: each workgroup computes tile_m × tile_n of C with
/// (tile_n / 4) × (tile_m / 4) threads, stepping through K by tile_k.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulTiles {
    pub tile_m: u32,
    pub tile_n: u32,
    pub tile_k: u32,
}

impl Default for MatmulTiles {
    fn default() -> Self {
        MatmulTiles {
            tile_m: 64,
            tile_n: 64,
            tile_k: 16,
        }
    }
}

/// The register tile of one thread (THREAD_M × THREAD_N in the shader).
const THREAD_TILE: u32 = 4;

impl MatmulTiles {
    /// Checks the tiles against the shader's register tile and the adapter's limits.
    pub fn check(&self, ctx: &GpuContext) -> Result<()> {
        let MatmulTiles {
            tile_m,
            tile_n,
            tile_k,
        } = *self;
        let threads = (tile_m / THREAD_TILE) * (tile_n / THREAD_TILE);
        let shared_bytes = (tile_m + tile_n) * tile_k * 4;
        let limits = &ctx.limits;
        if tile_m == 0
            || tile_n == 0
            || tile_k == 0
            || tile_m % THREAD_TILE != 0
            || tile_n % THREAD_TILE != 0
        {
            return Err(shape_error("matmul", format!("tiles {self:?}: tile_m and tile_n must be positive multiples of 4, tile_k positive")));
        }
        if threads > limits.max_compute_invocations_per_workgroup
            || tile_n / THREAD_TILE > limits.max_compute_workgroup_size_x
            || tile_m / THREAD_TILE > limits.max_compute_workgroup_size_y
            || shared_bytes > limits.max_compute_workgroup_storage_size
        {
            return Err(shape_error("matmul", format!("tiles {self:?} need {threads} threads and {shared_bytes} bytes of workgroup memory, beyond this adapter")));
        }
        Ok(())
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
}

/// Prepares C = op(A)·op(B) (+ bias) (+ C if `shape.accumulate`) with the default tiles.
pub fn matmul(
    ctx: &GpuContext,
    c: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    shape: &MatmulShape,
) -> Result<Dispatch> {
    matmul_with_tiles(ctx, c, a, b, bias, shape, MatmulTiles::default())
}

/// Prepares C = op(A)·op(B) (+ bias) (+ C) with the given tiles.
pub fn matmul_with_tiles(
    ctx: &GpuContext,
    c: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    shape: &MatmulShape,
    tiles: MatmulTiles,
) -> Result<Dispatch> {
    shape.check_dims()?;
    tiles.check(ctx)?;
    let MatmulShape { m, n, k, .. } = *shape;
    check_len("matmul", "C", c, m * n)?;
    check_len("matmul", "A", a, m * k)?;
    check_len("matmul", "B", b, k * n)?;
    if let Some(bias) = bias {
        check_len("matmul", "bias", bias, n)?;
    }
    let params = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        _pad: 0,
    };
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let constants = [
        ("TRANS_A", flag(shape.trans_a)),
        ("TRANS_B", flag(shape.trans_b)),
        ("HAS_BIAS", flag(bias.is_some())),
        ("ACCUMULATE", flag(shape.accumulate)),
        ("TILE_M", f64::from(tiles.tile_m)),
        ("TILE_N", f64::from(tiles.tile_n)),
        ("TILE_K", f64::from(tiles.tile_k)),
    ];
    let bias = bias.unwrap_or(&ctx.placeholder);
    let workgroups = [
        (n as u32).div_ceil(tiles.tile_n),
        (m as u32).div_ceil(tiles.tile_m),
        1,
    ];
    prepare(
        ctx,
        &MATMUL,
        &constants,
        Some(bytes_of(&params)),
        &[c, a, b, bias],
        workgroups,
    )
}
