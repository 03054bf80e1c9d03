//! Host side of the matmul kernels, C (m, n) = op(A)·op(B) [+ bias] [+ C], one CPU twin
//! (src/cpu/matmul.rs) for the four variants:
//! - shaders/matmul.wgsl and matmul_vec4.wgsl, "tiled": workgroup-memory tiles (override
//!   constants chosen per dispatch), 4×4 register tile per thread; the vec4 file, which moves
//!   4 floats at a time from memory and from the tiles, runs the shapes whose M, N and K (and
//!   TILE_K) are multiples of 4, the other file the rest;
//! - shaders/matmul_rowtile.wgsl, "rowtile": no workgroup memory, 8 rows × 4 columns per
//!   thread;
//! - shaders/matmul_subgroup.wgsl and matmul_subgroup_vec4.wgsl, "subgroup": one subgroup of
//!   exactly 8 lanes per workgroup, 32 rows × 32 columns of C (shaders/lib/subgroup_tile.wgsl),
//!   values of A shared between lanes by subgroup broadcasts; for adapters whose subgroups are
//!   8 wide (lavapipe), see [`MatmulVariant::check`]. The vec4 file, which loads 4 floats at a
//!   time, runs the shapes whose M, N and K are multiples of 4; the other file the rest;
//! - shaders/matmul_coop_f16.wgsl, "coop-f16", opt-in: cooperative matrices (tensor cores)
//!   with A and B rounded to f16 and f32 accumulation, at 16×16×16 on 32-lane subgroups or
//!   8×8×8 on 8-lane ones (the size file included first, [`coop_size`]); one subgroup per
//!   workgroup, 2 × 2 cooperative tiles of C.
//!
//! [`matmul`] runs the variant the device's [`MatmulChoice`] names for the shape (set with
//! `GpuContext::set_matmul_choice`, usually from kernels::autotune, which on GPUs also tunes
//! each new shape when it is first prepared: `GpuContext::matmul_variant`); without a choice,
//! the default for the adapter ([`MatmulChoice::default_for`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bytemuck::{Pod, Zeroable};

pub use crate::cpu::matmul::{MatmulShape, StoreLoss};
use crate::error::{shape_error, Error, Result};
use crate::gpu::{FeatureReport, GpuBuffer, GpuContext};
use crate::kernels::activation::Activation;
use crate::kernels::matmul_grouped_tn::{GroupKey, WeightGrads};
use crate::kernels::{bytes_of, check_len, prepare, Dispatch, Kernel, Shader, Slot, Traffic};

/// shaders/lib/epilogue.wgsl: what a matmul's store may apply to C (activation, its
/// gradient, an addend, a loss, the reparameterization's backward) and the row sums; it
/// touches no C.
pub const EPILOGUE_LIB: &str = include_str!("../../shaders/lib/epilogue.wgsl");

/// shaders/lib/store_scalar.wgsl: the epilogue's loss and reparameterization stores into C
/// bound as f32.
pub const STORE_SCALAR_LIB: &str = include_str!("../../shaders/lib/store_scalar.wgsl");

pub const SHADER: Shader = Shader {
    name: "matmul",
    source: include_str!("../../shaders/matmul.wgsl"),
    includes: &[EPILOGUE_LIB, STORE_SCALAR_LIB],
};

/// shaders/lib/store_4.wgsl: the epilogue's store of 4 consecutive columns of a row, a float
/// at a time with each column guarded (matmul_subgroup.wgsl: any N).
pub const STORE_4_LIB: &str = include_str!("../../shaders/lib/store_4.wgsl");

/// shaders/lib/store_vec4.wgsl: the same store as one vec4, for the files that run aligned
/// shapes and bind C and bias as vec4s.
pub const STORE_VEC4_LIB: &str = include_str!("../../shaders/lib/store_vec4.wgsl");

/// shaders/lib/load_4.wgsl: load_a4 and load_b4, the vec4 loads of the files that bind A and
/// B as `array<vec4<f32>>`.
pub const LOAD_4_LIB: &str = include_str!("../../shaders/lib/load_4.wgsl");

/// shaders/matmul_vec4.wgsl: the tiled kernel for shapes whose M, N and K are multiples of 4.
pub const VEC4_SHADER: Shader = Shader {
    name: "matmul_vec4",
    source: include_str!("../../shaders/matmul_vec4.wgsl"),
    includes: &[EPILOGUE_LIB, LOAD_4_LIB, STORE_VEC4_LIB],
};

pub const ROWTILE_SHADER: Shader = Shader {
    name: "matmul_rowtile",
    source: include_str!("../../shaders/matmul_rowtile.wgsl"),
    includes: &[EPILOGUE_LIB, STORE_SCALAR_LIB],
};

/// shaders/lib/subgroup_tile.wgsl: the 32 × 32 tile both subgroup matmul files compute.
pub const SUBGROUP_TILE_LIB: &str = include_str!("../../shaders/lib/subgroup_tile.wgsl");

pub const SUBGROUP_SHADER: Shader = Shader {
    name: "matmul_subgroup",
    source: include_str!("../../shaders/matmul_subgroup.wgsl"),
    includes: &[
        EPILOGUE_LIB,
        STORE_SCALAR_LIB,
        STORE_4_LIB,
        SUBGROUP_TILE_LIB,
    ],
};

pub const SUBGROUP_VEC4_SHADER: Shader = Shader {
    name: "matmul_subgroup_vec4",
    source: include_str!("../../shaders/matmul_subgroup_vec4.wgsl"),
    includes: &[EPILOGUE_LIB, LOAD_4_LIB, STORE_VEC4_LIB, SUBGROUP_TILE_LIB],
};

/// shaders/lib/coop_16x16.wgsl and coop_8x8.wgsl: the cooperative-matrix size (and the
/// `enable` directives) of shaders/matmul_coop_f16.wgsl, included first.
pub const COOP_16X16_LIB: &str = include_str!("../../shaders/lib/coop_16x16.wgsl");
pub const COOP_8X8_LIB: &str = include_str!("../../shaders/lib/coop_8x8.wgsl");

/// shaders/matmul_coop_f16.wgsl at 16×16×16 (NVIDIA: subgroups of 32).
pub const COOP_F16_16X16_SHADER: Shader = Shader {
    name: "matmul_coop_f16_16x16",
    source: include_str!("../../shaders/matmul_coop_f16.wgsl"),
    includes: &[COOP_16X16_LIB, EPILOGUE_LIB, STORE_SCALAR_LIB],
};

/// shaders/matmul_coop_f16.wgsl at 8×8×8 (lavapipe: subgroups of 8).
pub const COOP_F16_8X8_SHADER: Shader = Shader {
    name: "matmul_coop_f16_8x8",
    source: include_str!("../../shaders/matmul_coop_f16.wgsl"),
    includes: &[COOP_8X8_LIB, EPILOGUE_LIB, STORE_SCALAR_LIB],
};

/// The bindings of every matmul entry point: (uniform, C, A, B, bias, saved_or_eps,
/// row_sums_or_totals, addend_target_or_stats), the last three for lib/epilogue.wgsl:
/// binding 5 holds the saved activation output (m, n) with `shape.activation_grad` (the code
/// with `shape.l1_grad`) or ε
/// (m, l) with `shape.reparam_grad` Some(l), binding 6 the row sums (m) with `shape.row_sums` or the
/// loss totals (m, n) with `shape.loss` or `shape.l1_grad`, binding 7 the addend (m, n) with `shape.addend`, the
/// loss target (m, n) with `shape.loss` or stats (m, 2l) with `shape.reparam_grad` (a stage's
/// storage bindings are few: WebGPU's default limit is 8).
const MATMUL_SLOTS: &[(u32, Slot)] = &[
    (0, Slot::Uniform),
    (1, Slot::ReadWrite),
    (2, Slot::Read),
    (3, Slot::Read),
    (4, Slot::Read),
    (5, Slot::Read),
    (6, Slot::ReadWrite),
    (7, Slot::Read),
];

const MATMUL: Kernel = Kernel {
    shader: &SHADER,
    entry: "matmul",
    slots: MATMUL_SLOTS,
};

const MATMUL_VEC4: Kernel = Kernel {
    shader: &VEC4_SHADER,
    entry: "matmul_vec4",
    slots: MATMUL_SLOTS,
};

const MATMUL_ROWTILE: Kernel = Kernel {
    shader: &ROWTILE_SHADER,
    entry: "matmul_rowtile",
    slots: MATMUL_SLOTS,
};

const MATMUL_SUBGROUP: Kernel = Kernel {
    shader: &SUBGROUP_SHADER,
    entry: "matmul_subgroup",
    slots: MATMUL_SLOTS,
};

const MATMUL_SUBGROUP_VEC4: Kernel = Kernel {
    shader: &SUBGROUP_VEC4_SHADER,
    entry: "matmul_subgroup_vec4",
    slots: MATMUL_SLOTS,
};

const MATMUL_COOP_F16_16X16: Kernel = Kernel {
    shader: &COOP_F16_16X16_SHADER,
    entry: "matmul_coop_f16",
    slots: MATMUL_SLOTS,
};

const MATMUL_COOP_F16_8X8: Kernel = Kernel {
    shader: &COOP_F16_8X8_SHADER,
    entry: "matmul_coop_f16",
    slots: MATMUL_SLOTS,
};

/// The cooperative-matrix sizes shaders/matmul_coop_f16.wgsl is written for: (M = N = K of
/// one multiply-add, the subgroup size it needs, the configuration as `FeatureReport`
/// spells it), preferred first.
const COOP_SIZES: [(u32, u32, &str); 2] = [(16, 32, "16x16x16 F16->F32"), (8, 8, "8x8x8 F16->F32")];

/// Rows and columns of C one workgroup (one subgroup) of the subgroup shaders covers, and the
/// only subgroup size they are written for.
const SUBGROUP_TILE: u32 = 32;
const SUBGROUP_LANES: u32 = 8;

/// Rows and columns of C per thread of the rowtile shader (ROWS × 4), and its workgroup
/// size (16, 4): a workgroup covers 64 columns × 32 rows.
const ROWTILE_ROWS: u32 = 8;
const ROWTILE_COLS: u32 = 4;
const ROWTILE_WORKGROUP: [u32; 2] = [16, 4];

/// Block sizes of the tiled matmul: each workgroup computes tile_m × tile_n of C with
/// (tile_n / thread) × (tile_m / thread) × split threads, stepping through K by tile_k.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulTiles {
    pub tile_m: u32,
    pub tile_n: u32,
    pub tile_k: u32,
    /// Rows and columns of C a thread computes: 4 (a 4 × 4 block) or 8 (2 × 2 blocks of
    /// 4 × 4, half a tile apart: shaders/matmul_vec4.wgsl's THREAD_QUADS = 2, for large tiles).
    /// 8 needs the vec4 file; the shapes it cannot run (M, N or K not a multiple of 4) run
    /// matmul.wgsl at half the tiles, 4 × 4 a thread, on as many threads.
    pub thread: u32,
    /// Groups of threads that split K inside the workgroup (matmul_vec4.wgsl's K_SPLIT; 1:
    /// none), for products with few tiles of C and a long K. Needs thread = 4, and slab
    /// memory enough to hand the groups' blocks over (see [`MatmulTiles::check`]); the shapes
    /// matmul_vec4.wgsl cannot run ignore it.
    pub split: u32,
    /// Fetch the next slab of A and B into registers during the current slab's
    /// multiply-adds (matmul_vec4.wgsl's PREFETCH): register double buffering, so that a GPU's
    /// global-load latency overlaps arithmetic. A thread holds at most 4 vec4s each of A and
    /// B (see [`MatmulTiles::check`]); the shapes matmul_vec4.wgsl cannot run ignore it.
    pub prefetch: bool,
}

impl Default for MatmulTiles {
    fn default() -> Self {
        MatmulTiles {
            tile_m: 64,
            tile_n: 64,
            tile_k: 16,
            thread: 4,
            split: 1,
            prefetch: false,
        }
    }
}

impl MatmulTiles {
    /// Checks the tiles against the shaders' register blocks and the adapter's limits.
    pub fn check(&self, ctx: &GpuContext) -> Result<()> {
        let MatmulTiles {
            tile_m,
            tile_n,
            tile_k,
            thread,
            split,
            prefetch,
        } = *self;
        let shape_ok = match thread {
            4 => tile_k > 0,
            8 => tile_k > 0 && tile_k % 4 == 0,
            _ => false,
        };
        if !shape_ok || tile_m == 0 || tile_n == 0 || tile_m % thread != 0 || tile_n % thread != 0 {
            return Err(shape_error("matmul", format!("tiles {self}: a thread computes 4 × 4 or 8 × 8 of C; tile_m and tile_n must be positive multiples of it, tile_k positive (a multiple of 4 with 8 × 8)")));
        }
        // In u64 and saturating: tiles come from the command line, and no product of them
        // may overflow.
        let (x, y) = (u64::from(tile_n / thread), u64::from(tile_m / thread));
        let (split, tile_k, tile_mn) = (
            u64::from(split),
            u64::from(tile_k),
            u64::from(tile_m) + u64::from(tile_n),
        );
        // Splitting K: groups 1.. hand 5 vec4 a thread (a 4 × 4 block, 4 row sums) to group 0
        // through the slab memory, split · tile_k · (tile_m + tile_n) / 4 vec4s.
        let product = |factors: &[u64]| factors.iter().fold(1u64, |p, &f| p.saturating_mul(f));
        let handover = product(&[split.saturating_sub(1), x, y, 5]);
        let slab_vec4s = product(&[split, tile_k, tile_mn]) / 4;
        if split == 0 || (split > 1 && (thread != 4 || tile_k % 4 != 0 || handover > slab_vec4s)) {
            return Err(shape_error("matmul", format!("tiles {self}: splitting K needs 4 × 4 a thread, tile_k a multiple of 4, and slab memory for the groups' blocks ({handover} vec4s, the slabs hold {slab_vec4s})")));
        }
        // Prefetching: a thread of a group holds its share of a slab, at most
        // PREFETCH_VEC4S vec4s each of A and B.
        let group_threads = product(&[x, y]).max(1);
        let fetches = |tile: u64| product(&[tile, tile_k]).div_ceil(4).div_ceil(group_threads);
        let most_fetches = fetches(u64::from(tile_m)).max(fetches(u64::from(tile_n)));
        if prefetch && (tile_k % 4 != 0 || most_fetches > PREFETCH_VEC4S) {
            return Err(shape_error("matmul", format!("tiles {self}: prefetching needs tile_k a multiple of 4 and at most {PREFETCH_VEC4S} vec4s of A and of B a thread ({most_fetches} here: fewer rows or columns a thread, or a smaller tile_k)")));
        }
        let threads = product(&[x, y, split]);
        let shared_bytes = product(&[split, tile_mn, tile_k, 4]);
        let limits = &ctx.limits;
        if threads > u64::from(limits.max_compute_invocations_per_workgroup)
            || x > u64::from(limits.max_compute_workgroup_size_x)
            || y > u64::from(limits.max_compute_workgroup_size_y)
            || split > u64::from(limits.max_compute_workgroup_size_z)
            || shared_bytes > u64::from(limits.max_compute_workgroup_storage_size)
        {
            return Err(shape_error("matmul", format!("tiles {self} need {threads} threads and {shared_bytes} bytes of workgroup memory, beyond this adapter")));
        }
        Ok(())
    }
}

/// The most vec4s of A (and of B) a thread fetches ahead with prefetching:
/// shaders/matmul_vec4.wgsl's MAX_FETCHES.
const PREFETCH_VEC4S: u64 = 4;

/// "64x64x16" (4 × 4 a thread), "128x128x16x8" (8 × 8 a thread), "32x32x16/4" (K split
/// between 4 groups of threads), a trailing "p" for prefetching ("128x128x16x8p").
impl fmt::Display for MatmulTiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.tile_m, self.tile_n, self.tile_k)?;
        if self.thread != 4 {
            write!(f, "x{}", self.thread)?;
        }
        if self.split != 1 {
            write!(f, "/{}", self.split)?;
        }
        if self.prefetch {
            f.write_str("p")?;
        }
        Ok(())
    }
}

/// Which matmul kernel runs a dispatch. Written "tiled:64x64x16" (or "tiled" for the default
/// tiles; "tiled:128x128x16x8" for 8 × 8 a thread, "tiled:32x32x16/4" for K split between 4
/// groups of threads, a trailing "p" for prefetching: "tiled:128x128x16x8p"), "rowtile" and
/// "subgroup", as LATENT_MATMUL and the autotune cache spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    /// shaders/matmul.wgsl with these tiles, or matmul_vec4.wgsl where the shape allows.
    Tiled(MatmulTiles),
    /// shaders/matmul_rowtile.wgsl.
    RowTile,
    /// shaders/matmul_subgroup.wgsl, or matmul_subgroup_vec4.wgsl where the shape allows
    /// (subgroups of exactly 8 lanes).
    Subgroup,
    /// shaders/matmul_coop_f16.wgsl: A and B rounded to f16, products accumulated in f32 on
    /// cooperative matrices (tensor cores); opt-in only (`--matmul coop-f16`), never tuned
    /// or defaulted to, since it changes the precision.
    CoopF16,
}

impl fmt::Display for MatmulVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatmulVariant::Tiled(tiles) => write!(f, "tiled:{tiles}"),
            MatmulVariant::RowTile => f.write_str("rowtile"),
            MatmulVariant::Subgroup => f.write_str("subgroup"),
            MatmulVariant::CoopF16 => f.write_str("coop-f16"),
        }
    }
}

/// Whether an adapter runs the subgroup matmul: subgroups on, every one of them exactly
/// [`SUBGROUP_LANES`] wide.
fn eight_lane_subgroups(info: &wgpu::AdapterInfo, features: &FeatureReport) -> bool {
    let sizes = (info.subgroup_min_size, info.subgroup_max_size);
    features.subgroups && sizes == (SUBGROUP_LANES, SUBGROUP_LANES)
}

impl MatmulVariant {
    /// Whether this adapter can run the variant: the tiled kernel's tiles within its limits;
    /// the subgroup kernel only where wgpu's SUBGROUP feature is on and every subgroup is
    /// exactly 8 lanes wide (its broadcasts name lanes 0..8 of one subgroup). Rowtile runs
    /// anywhere.
    pub fn check(&self, ctx: &GpuContext) -> Result<()> {
        match self {
            MatmulVariant::Tiled(tiles) => tiles.check(ctx),
            MatmulVariant::RowTile => Ok(()),
            MatmulVariant::Subgroup => {
                let (lo, hi) = (ctx.info.subgroup_min_size, ctx.info.subgroup_max_size);
                if eight_lane_subgroups(&ctx.info, &ctx.features) {
                    Ok(())
                } else if !ctx.features.subgroups {
                    Err(Error::InvalidArgument(
                        "the subgroup matmul needs wgpu's SUBGROUP feature, which this adapter \
                         lacks (use rowtile or tiled)"
                            .into(),
                    ))
                } else {
                    Err(Error::InvalidArgument(format!(
                        "the subgroup matmul needs subgroups of exactly {SUBGROUP_LANES} lanes; \
                         this adapter's are {lo} to {hi} (use rowtile or tiled)"
                    )))
                }
            }
            MatmulVariant::CoopF16 => coop_size(ctx).map(|_| ()),
        }
    }
}

/// The cooperative size (16 or 8) the coop-f16 matmul runs at on this device: the device must
/// have been created with wgpu's experimental EXPERIMENTAL_COOPERATIVE_MATRIX (GpuOptions's
/// `cooperative_matrix`) and SHADER_F16, and offer a configuration of `COOP_SIZES` with
/// subgroups of exactly its size.
pub fn coop_size(ctx: &GpuContext) -> Result<u32> {
    let device = ctx.device.features();
    if !device.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        let why = if ctx.features.cooperative_matrix.is_empty() {
            "this adapter lacks it (on Vulkan: VK_KHR_cooperative_matrix)"
        } else {
            "the device was created without it (GpuOptions::cooperative_matrix)"
        };
        return Err(Error::InvalidArgument(format!(
            "the coop-f16 matmul needs wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX feature: {why}"
        )));
    }
    if !device.contains(wgpu::Features::SHADER_F16) {
        return Err(Error::InvalidArgument(
            "the coop-f16 matmul needs wgpu's SHADER_F16 feature, which this device lacks".into(),
        ));
    }
    coop_size_offered(&ctx.info, &ctx.features)
}

/// The cooperative size (16 or 8) an adapter's configurations and subgroups allow, before any
/// device is created (`latent info`): one of `COOP_SIZES` offered, with subgroups of exactly
/// its size.
pub fn coop_size_offered(info: &wgpu::AdapterInfo, features: &FeatureReport) -> Result<u32> {
    let lanes = (info.subgroup_min_size, info.subgroup_max_size);
    COOP_SIZES
        .iter()
        .find(|(_, subgroup, config)| {
            lanes == (*subgroup, *subgroup)
                && features.cooperative_matrix.iter().any(|c| c == config)
        })
        .map(|&(size, _, _)| size)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "the coop-f16 matmul needs 16x16x16 F16->F32 with subgroups of 32 lanes or \
                 8x8x8 F16->F32 with subgroups of 8; this adapter offers [{}] with subgroups of \
                 {} to {} lanes",
                features.cooperative_matrix.join(", "),
                lanes.0,
                lanes.1
            ))
        })
}

impl FromStr for MatmulVariant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "matmul variant {s:?}: expected subgroup, rowtile, tiled, tiled:MxNxK[x8][/S][p] (e.g. tiled:64x64x16; tiled:128x128x16x8: 8 × 8 a thread; tiled:32x32x16/4: K split between 4 groups of threads; a trailing p: the next slab prefetched into registers) or coop-f16"
            ))
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "rowtile" => Ok(MatmulVariant::RowTile),
            "subgroup" => Ok(MatmulVariant::Subgroup),
            "coop-f16" | "coop_f16" => Ok(MatmulVariant::CoopF16),
            "tiled" => Ok(MatmulVariant::Tiled(MatmulTiles::default())),
            other => {
                let tiles = other.strip_prefix("tiled:").ok_or_else(bad)?;
                let (tiles, prefetch) = match tiles.strip_suffix('p') {
                    Some(tiles) => (tiles, true),
                    None => (tiles, false),
                };
                let (sizes, split) = match tiles.split_once('/') {
                    Some((sizes, split)) => (sizes, split.parse().map_err(|_| bad())?),
                    None => (tiles, 1),
                };
                let parts: Vec<u32> = sizes
                    .split('x')
                    .map(|p| p.parse().map_err(|_| bad()))
                    .collect::<Result<_>>()?;
                let (tile_m, tile_n, tile_k, thread) = match parts[..] {
                    [m, n, k] => (m, n, k, 4),
                    [m, n, k, thread] => (m, n, k, thread),
                    _ => return Err(bad()),
                };
                Ok(MatmulVariant::Tiled(MatmulTiles {
                    tile_m,
                    tile_n,
                    tile_k,
                    thread,
                    split,
                    prefetch,
                }))
            }
        }
    }
}

/// A shape is skinny when its output has at most this many rows or columns (the VAE's
/// 400→20 layers: 128×20 forward, 20×400 weight gradient).
pub const SKINNY_MAX: usize = 32;

/// True for shapes with few output rows or columns (see [`SKINNY_MAX`]).
pub fn is_skinny(shape: &MatmulShape) -> bool {
    shape.m.min(shape.n) <= SKINNY_MAX
}

/// A matmul's shape as the choice tells shapes apart: sizes and transposes (the epilogue's
/// options change little of a kernel's time). Written "MxKxN TT" with T = N or T for each
/// operand, as `latent validate` and `latent bench` print shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MatmulKey {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl MatmulKey {
    pub fn of(shape: &MatmulShape) -> Self {
        MatmulKey {
            m: shape.m,
            n: shape.n,
            k: shape.k,
            trans_a: shape.trans_a,
            trans_b: shape.trans_b,
        }
    }

    /// The shape with these sizes and transposes and no epilogue.
    pub fn shape(&self) -> MatmulShape {
        MatmulShape {
            trans_a: self.trans_a,
            trans_b: self.trans_b,
            ..MatmulShape::new(self.m, self.n, self.k)
        }
    }
}

impl fmt::Display for MatmulKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |on: bool| if on { 'T' } else { 'N' };
        write!(
            f,
            "{}x{}x{} {}{}",
            self.m,
            self.k,
            self.n,
            t(self.trans_a),
            t(self.trans_b)
        )
    }
}

/// The matmul variant for each class of shape on one device, and for single shapes that
/// were tuned on their own (kernels::autotune on GPUs), which come first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatmulChoice {
    /// Every shape that is not skinny.
    pub general: MatmulVariant,
    /// Shapes with at most [`SKINNY_MAX`] output rows or columns.
    pub skinny: MatmulVariant,
    /// Shapes tuned one by one, ahead of their class.
    pub shapes: BTreeMap<MatmulKey, MatmulVariant>,
    /// A training step's weight gradients, grouped or separate, per set of layers that one
    /// grouped dispatch would take (tuned on GPUs: kernels::autotune).
    pub weight_grads: BTreeMap<GroupKey, WeightGrads>,
}

impl MatmulChoice {
    /// The same variant for every shape.
    pub fn uniform(variant: MatmulVariant) -> Self {
        MatmulChoice {
            general: variant,
            skinny: variant,
            shapes: BTreeMap::new(),
            weight_grads: BTreeMap::new(),
        }
    }

    /// The choice without tuning. On CPU adapters (lavapipe, SwiftShader) the subgroup kernel
    /// where it can run (3-4× rowtile on lavapipe), else rowtile (2.1-3.5× the tiled kernel
    /// there); the tiled kernel with its default 64×64×16 tiles everywhere else.
    pub fn default_for(info: &wgpu::AdapterInfo, features: &FeatureReport) -> Self {
        let eight_lanes = eight_lane_subgroups(info, features);
        match info.device_type {
            wgpu::DeviceType::Cpu if eight_lanes => MatmulChoice::uniform(MatmulVariant::Subgroup),
            wgpu::DeviceType::Cpu => MatmulChoice::uniform(MatmulVariant::RowTile),
            _ => MatmulChoice::uniform(MatmulVariant::Tiled(MatmulTiles::default())),
        }
    }

    /// The variant of the shape's class (skinny or general), whatever single shapes say.
    pub fn for_class(&self, shape: &MatmulShape) -> MatmulVariant {
        if is_skinny(shape) {
            self.skinny
        } else {
            self.general
        }
    }

    /// The variant for one shape: its own if it was tuned, else its class's.
    pub fn for_shape(&self, shape: &MatmulShape) -> MatmulVariant {
        self.shapes
            .get(&MatmulKey::of(shape))
            .copied()
            .unwrap_or_else(|| self.for_class(shape))
    }

    /// "subgroup", or "A (general), B (skinny)", then the shapes tuned on their own:
    /// "; per shape: 128x784x400 NT tiled:32x32x16, ...".
    pub fn describe(&self) -> String {
        let mut text = if self.general == self.skinny {
            self.general.to_string()
        } else {
            format!("{} (general), {} (skinny)", self.general, self.skinny)
        };
        if !self.shapes.is_empty() {
            let shapes: Vec<String> = self
                .shapes
                .iter()
                .map(|(key, variant)| format!("{key} {variant}"))
                .collect();
            text.push_str(&format!("; per shape: {}", shapes.join(", ")));
        }
        if !self.weight_grads.is_empty() {
            let sets: Vec<String> = self
                .weight_grads
                .iter()
                .map(|(key, form)| format!("{key} {form}"))
                .collect();
            text.push_str(&format!("; weight gradients: {}", sets.join("; ")));
        }
        text
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

/// Prepares C = op(A)·op(B) (+ bias) (+ C if `shape.accumulate`) with the variant the
/// device's matmul choice names for this shape.
pub fn matmul(
    ctx: &GpuContext,
    c: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    shape: &MatmulShape,
) -> Result<Dispatch> {
    let variant = ctx.matmul_variant(shape)?;
    matmul_with_variant(ctx, c, a, b, bias, shape, variant)
}

/// Prepares C = op(A)·op(B) (+ bias) (+ C) with the tiled kernel and the given tiles.
pub fn matmul_with_tiles(
    ctx: &GpuContext,
    c: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    shape: &MatmulShape,
    tiles: MatmulTiles,
) -> Result<Dispatch> {
    matmul_with_variant(ctx, c, a, b, bias, shape, MatmulVariant::Tiled(tiles))
}

/// Whether shaders/matmul_vec4.wgsl and matmul_subgroup_vec4.wgsl can run the shape: M, N and
/// K (and the reparameterization's dz columns, with `reparam_grad`) multiples of 4 (so that
/// every vec4 they load or store lies in one stored row) and the buffers they bind as vec4s
/// (A, B, C, the bias and the epilogue's bindings 5 and 7) starting at 16-byte offsets.
fn takes_vec4_loads(buffers: [Option<&GpuBuffer>; 6], shape: &MatmulShape) -> bool {
    shape.m.is_multiple_of(4)
        && shape.n.is_multiple_of(4)
        && shape.k.is_multiple_of(4)
        && shape.reparam_grad.is_none_or(|l| l.is_multiple_of(4))
        && buffers
            .iter()
            .flatten()
            .all(|buffer| buffer.offset % 16 == 0)
}

/// The epilogue's ACTIVATION constant.
fn activation_code(activation: Option<Activation>) -> f64 {
    match activation {
        None => 0.0,
        Some(Activation::Relu) => 1.0,
        Some(Activation::Sigmoid) => 2.0,
        Some(Activation::Tanh) => 3.0,
    }
}

/// The epilogue's LOSS constant.
fn loss_code(loss: Option<StoreLoss>) -> f64 {
    match loss {
        None => 0.0,
        Some(StoreLoss::Bce) => 1.0,
        Some(StoreLoss::Mse) => 2.0,
    }
}

/// The buffers of the store epilogue's extras (shaders/lib/epilogue.wgsl): the activation
/// output whose derivative multiplies the product (`shape.activation_grad`), the row sums
/// of op(A) (`shape.row_sums`), the addend (`shape.addend`), the loss's target, running
/// totals and gradient scale (`shape.loss`), the L1 penalty's code, running totals and scale
/// (`shape.l1_grad`), and the reparameterization's ε and stats (`shape.reparam_grad`).
#[derive(Clone, Copy, Default)]
pub struct MatmulExtras<'a> {
    /// (m, n) f's output, with `shape.activation_grad`; the code, with `shape.l1_grad`
    /// (binding 5).
    pub saved: Option<&'a GpuBuffer>,
    pub row_sums: Option<&'a GpuBuffer>,
    pub addend: Option<&'a GpuBuffer>,
    /// (m, n) the loss's target, with `shape.loss` (binding 7).
    pub target: Option<&'a GpuBuffer>,
    /// (m, n) running loss totals, with `shape.loss` or `shape.l1_grad` (binding 6): each
    /// thread adds its share of a row's loss (or penalty) to slot row·n + the first column it
    /// stores in that row; Σ of a row's n slots is the row's total (the host sums all m·n in
    /// f64).
    pub loss_totals: Option<&'a GpuBuffer>,
    /// The gradient's factor, dL/dΣloss, with `shape.loss` (the LOSS_SCALE constant: each
    /// value makes its own pipeline).
    pub loss_scale: f32,
    /// The L1 gradient's factor, dL/dΣpenalty, with `shape.l1_grad` (the L1_SCALE
    /// constant: each value makes its own pipeline).
    pub l1_scale: f32,
    /// (m, l) the ε the reparameterization saved, with `shape.reparam_grad` Some(l) (binding
    /// 5).
    pub eps: Option<&'a GpuBuffer>,
    /// (m, 2l) μ | logvar, with `shape.reparam_grad` Some(l) (binding 7).
    pub stats: Option<&'a GpuBuffer>,
}

/// Prepares C = op(A)·op(B) (+ bias) (+ C) with the given variant.
pub fn matmul_with_variant(
    ctx: &GpuContext,
    c: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    shape: &MatmulShape,
    variant: MatmulVariant,
) -> Result<Dispatch> {
    matmul_with_extras(ctx, c, a, b, bias, MatmulExtras::default(), shape, variant)
}

/// [`matmul`] with the epilogue's extras: an activation's backward applied to the product
/// (dx matmul) and the row sums of op(A) (dW matmul, the bias gradient). The variant the
/// device's choice names for the shape.
pub fn matmul_fused(
    ctx: &GpuContext,
    c: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    extras: MatmulExtras,
    shape: &MatmulShape,
) -> Result<Dispatch> {
    let variant = ctx.matmul_variant(shape)?;
    matmul_with_extras(ctx, c, a, b, None, extras, shape, variant)
}

/// Prepares C = f(op(A)·op(B) · g'(saved) (+ bias) (+ C)) with the given variant, and the
/// row sums of op(A) when `shape.row_sums`; or, with `shape.loss`, C = loss_scale · dloss/dz
/// for z = op(A)·op(B) (+ bias) against `extras.target`, each row's loss added to
/// `extras.loss_totals`; with `shape.l1_grad`, the L1 penalty's gradient l1_scale ·
/// sign(code) added before g' and each row's Σ|code| added to `extras.loss_totals`; or, with
/// `shape.reparam_grad` Some(l), C = dstats (m, 2l) (+)= [dz |
/// dz·ε·½e^(½·logvar)] for dz the first l columns of op(A)·op(B), ε and stats from `extras`
/// (every variant).
#[allow(clippy::too_many_arguments)]
pub fn matmul_with_extras(
    ctx: &GpuContext,
    c: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    extras: MatmulExtras,
    shape: &MatmulShape,
    variant: MatmulVariant,
) -> Result<Dispatch> {
    shape.check_dims()?;
    shape.check_options(bias.is_some())?;
    if (shape.activation_grad.is_some() || shape.l1_grad) != extras.saved.is_some()
        || shape.row_sums != extras.row_sums.is_some()
        || shape.addend != extras.addend.is_some()
        || shape.loss.is_some() != extras.target.is_some()
        || (shape.loss.is_some() || shape.l1_grad) != extras.loss_totals.is_some()
        || shape.reparam_grad.is_some() != extras.eps.is_some()
        || shape.reparam_grad.is_some() != extras.stats.is_some()
    {
        return Err(shape_error(
            "matmul",
            "the saved activation output goes with activation_grad (or the code with l1_grad), \
             the row sums buffer with row_sums, the addend with addend, the target with loss, \
             the loss totals with loss or l1_grad, and eps and stats with reparam_grad, each \
             only with it",
        ));
    }
    variant.check(ctx)?;
    let MatmulShape { m, n, k, .. } = *shape;
    check_len("matmul", "C", c, shape.c_len())?;
    check_len("matmul", "A", a, m * k)?;
    check_len("matmul", "B", b, k * n)?;
    if let Some(bias) = bias {
        check_len("matmul", "bias", bias, n)?;
    }
    if let Some(saved) = extras.saved {
        check_len("matmul", "saved", saved, m * n)?;
    }
    if let Some(row_sums) = extras.row_sums {
        check_len("matmul", "row_sums", row_sums, m)?;
    }
    if let Some(addend) = extras.addend {
        check_len("matmul", "addend", addend, m * n)?;
    }
    if let Some(target) = extras.target {
        check_len("matmul", "target", target, m * n)?;
    }
    if let Some(totals) = extras.loss_totals {
        check_len("matmul", "loss_totals", totals, m * n)?;
    }
    // dz's columns, with the reparameterization's backward.
    let latent = shape.reparam_grad.unwrap_or(n);
    if let Some(eps) = extras.eps {
        check_len("matmul", "eps", eps, m * latent)?;
    }
    if let Some(stats) = extras.stats {
        check_len("matmul", "stats", stats, m * 2 * latent)?;
    }
    let params = Params {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        _pad: 0,
    };
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    // Without a loss the scale is unused: 0, so that it makes no other pipeline.
    let loss_scale = if shape.loss.is_some() {
        extras.loss_scale
    } else {
        0.0
    };
    let l1_scale = if shape.l1_grad { extras.l1_scale } else { 0.0 };
    let mut constants = vec![
        ("TRANS_A", flag(shape.trans_a)),
        ("TRANS_B", flag(shape.trans_b)),
        ("HAS_BIAS", flag(bias.is_some())),
        ("ACCUMULATE", flag(shape.accumulate)),
        ("ACTIVATION", activation_code(shape.activation)),
        ("ACTIVATION_GRAD", activation_code(shape.activation_grad)),
        ("ROW_SUMS", flag(shape.row_sums)),
        ("ADD_ADDEND", flag(shape.addend)),
        ("LOSS", loss_code(shape.loss)),
        ("LOSS_SCALE", f64::from(loss_scale)),
        ("L1_GRAD", flag(shape.l1_grad)),
        ("L1_SCALE", f64::from(l1_scale)),
        ("REPARAM_GRAD", flag(shape.reparam_grad.is_some())),
        ("REPARAM_COLS", shape.reparam_grad.unwrap_or(0) as f64),
    ];
    // Bindings 5, 6 and 7 serve several options each, never set together (check_options).
    let saved_or_eps = extras.saved.or(extras.eps).unwrap_or(&ctx.placeholder);
    let row_sums_or_totals = extras
        .row_sums
        .or(extras.loss_totals)
        .unwrap_or(&ctx.placeholder_out);
    let addend_target_or_stats = extras
        .addend
        .or(extras.target)
        .or(extras.stats)
        .unwrap_or(&ctx.placeholder);
    // The buffers the vec4 files bind as vec4s.
    let vec4_buffers = [
        Some(c),
        Some(a),
        Some(b),
        bias,
        Some(saved_or_eps),
        Some(addend_target_or_stats),
    ];
    let (kernel, workgroups) = match variant {
        MatmulVariant::Tiled(tiles) => {
            let vec4 = takes_vec4_loads(vec4_buffers, shape) && tiles.tile_k % 4 == 0;
            // 8 × 8 a thread is the vec4 file's; the scalar file runs 4 × 4 a thread at half
            // the tiles instead (as many threads).
            let half = if tiles.thread == 8 && !vec4 { 2 } else { 1 };
            let (tile_m, tile_n) = (tiles.tile_m / half, tiles.tile_n / half);
            constants.extend([
                ("TILE_M", f64::from(tile_m)),
                ("TILE_N", f64::from(tile_n)),
                ("TILE_K", f64::from(tiles.tile_k)),
            ]);
            let groups = [(n as u32).div_ceil(tile_n), (m as u32).div_ceil(tile_m), 1];
            if vec4 {
                constants.extend([
                    ("THREAD_QUADS", f64::from(tiles.thread / 4)),
                    ("K_SPLIT", f64::from(tiles.split)),
                    ("PREFETCH", flag(tiles.prefetch)),
                ]);
                (&MATMUL_VEC4, groups)
            } else {
                (&MATMUL, groups)
            }
        }
        MatmulVariant::RowTile => {
            let [wg_x, wg_y] = ROWTILE_WORKGROUP;
            let groups = [
                (n as u32).div_ceil(ROWTILE_COLS * wg_x),
                (m as u32).div_ceil(ROWTILE_ROWS * wg_y),
                1,
            ];
            (&MATMUL_ROWTILE, groups)
        }
        MatmulVariant::Subgroup => {
            let groups = [
                (n as u32).div_ceil(SUBGROUP_TILE),
                (m as u32).div_ceil(SUBGROUP_TILE),
                1,
            ];
            if takes_vec4_loads(vec4_buffers, shape) {
                (&MATMUL_SUBGROUP_VEC4, groups)
            } else {
                (&MATMUL_SUBGROUP, groups)
            }
        }
        MatmulVariant::CoopF16 => {
            // A workgroup covers 2·size × 2·size of C.
            let size = coop_size(ctx)?;
            let block = 2 * size;
            let groups = [(n as u32).div_ceil(block), (m as u32).div_ceil(block), 1];
            if size == 16 {
                (&MATMUL_COOP_F16_16X16, groups)
            } else {
                (&MATMUL_COOP_F16_8X8, groups)
            }
        }
    };
    let has_bias = bias.is_some();
    let bias = bias.unwrap_or(&ctx.placeholder);
    prepare(
        ctx,
        kernel,
        &constants,
        Some(bytes_of(&params)),
        &[
            c,
            a,
            b,
            bias,
            saved_or_eps,
            row_sums_or_totals,
            addend_target_or_stats,
        ],
        workgroups,
        matmul_traffic(shape, has_bias),
    )
    .map(|d| d.with_flops(shape.flops()))
}

/// What C = op(A)·op(B) and its epilogue move at least: A, B and the bias read once; the
/// saved activation (or code), addend or target (m, n), or ε (m, l) and the logvar half of stats (m,
/// l), read; C (its `c_len`) written, and read first when accumulating; the row sums
/// written; of the loss totals, one slot a row read and written (each thread adds to its own
/// slot, so a row has one to a few, by variant).
fn matmul_traffic(shape: &MatmulShape, has_bias: bool) -> Traffic {
    let MatmulShape { m, n, k, .. } = *shape;
    let extra_inputs = (usize::from(shape.activation_grad.is_some() || shape.l1_grad)
        + usize::from(shape.addend)
        + usize::from(shape.loss.is_some()))
        * n
        + 2 * shape.reparam_grad.unwrap_or(0);
    let totals = if shape.loss.is_some() || shape.l1_grad {
        m
    } else {
        0
    };
    let row_sums = if shape.row_sums { m } else { 0 };
    let c_read = if shape.accumulate { shape.c_len() } else { 0 };
    Traffic::floats(
        m * k + k * n + n * usize::from(has_bias) + extra_inputs * m + totals + c_read,
        shape.c_len() + row_sums + totals,
    )
}
