//! Matmul variants, checked against the CPU twin and then timed, on the chosen adapter: the
//! variants in shaders/ (every autotune candidate) and those still under development here.
//! Variants live in dev/ until they win; only winners move to shaders/ (issue 4). The rowtile
//! and subgroup variants started here and now live in shaders/.
//!
//! `cargo run --release --example dev_matmul [-- [--coop-f16] [--large] [--only NAME]]`
//! (LATENT_BACKEND / LATENT_ADAPTER pick the GPU; `--only NAME` checks and times one dev
//! variant, beside the shipped rowtile and subgroup kernels only, and coop-f16 on request).
//! Four parts:
//! 1. check: every dev variant against the twin at odd and prime shapes and the skinny VAE
//!    shapes, with the 4 transpose combinations, without and with bias, overwriting and
//!    accumulating; a variant that fails any of them is not timed;
//! 2. time: shipped and dev variants at the model shapes (each checked once more there);
//! 3. grouped weight gradients (dev/matmul_grouped.rs, shaders/matmul_grouped_tn.wgsl): a step's
//!    dW = dyᵀ·x and db = Σ dy of every layer in one dispatch, checked, then timed against
//!    the separate dispatches a step runs now (`--only grouped_tn` runs this part alone);
//! 4. the VAE head with its stats layer in front (dev/vae_head_linear.rs and .wgsl): the
//!    stats matmul and vae_head_forward in one dispatch, checked at odd shapes and each lane
//!    count, then timed against the two dispatches at the VAE's and the wide VAE's head
//!    layers (`--only vae_head_linear` runs this part alone).
//!
//! `--coop-f16` creates the device with wgpu's experimental EXPERIMENTAL_COOPERATIVE_MATRIX
//! where the adapter has it and times the shipped coop-f16 matmul (shaders/
//! matmul_coop_f16.wgsl, which started here) beside the others, with the f16 operands'
//! bound, and the two cooperative dev variants: coop_wide (A and B stored as f32, as the
//! shipped kernel takes them) and coop_wide_h (stored as f16: the FP16 GEMM figure of the
//! issue's 300 TFLOP/s target); where the adapter cannot run them, a line says why.
//!
//! `--large` adds 1024×2048×2048 and 4096×4096×4096 (NN and NT) to the timing shapes only,
//! the sizes the tiled kernel at 128×128×16 tiles, 8 × 8 a thread, is for: a real GPU's job
//! (on a CPU adapter 4096³ takes minutes per variant, and the twin that checks it minutes
//! more).

use latent::cpu::matmul::{matmul as matmul_twin, MatmulShape};
use latent::gpu::{time_gpu, GpuBuffer, GpuContext, GpuOptions};
use latent::kernels::autotune::{candidates, describe, ShapeClass};
use latent::kernels::matmul::{
    coop_size, matmul_with_variant, MatmulVariant, COOP_16X16_LIB, COOP_8X8_LIB,
};
use latent::kernels::{
    bytes_of, grid_for_groups, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
};
use latent::validate::{compare, UNIT_ROUNDOFF};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "matmul_grouped.rs"]
mod grouped;
#[path = "vae_head_linear.rs"]
mod vae_head_linear;

/// The variants under development: dev/matmul_rowtile_uniform.wgsl,
/// dev/matmul_rowtile_vec4.wgsl,
/// dev/matmul_splitk.wgsl and dev/matmul_coop_f16_wide.wgsl (at either cooperative size,
/// with f32 or f16 operands);
/// shaders/matmul_grouped_tn.wgsl has its own part (dev/matmul_grouped.rs).
static ROWTILE_UNIFORM: Shader = Shader {
    name: "matmul_rowtile_uniform",
    source: include_str!("matmul_rowtile_uniform.wgsl"),
    includes: &[],
};
static ROWTILE_VEC4: Shader = Shader {
    name: "matmul_rowtile_vec4",
    source: include_str!("matmul_rowtile_vec4.wgsl"),
    includes: &[],
};
static SPLITK: Shader = Shader {
    name: "matmul_splitk",
    source: include_str!("matmul_splitk.wgsl"),
    includes: &[],
};
/// dev/matmul_coop_f16_wide.wgsl's operand type: A and B stored as f32 (rounded to f16 as
/// they are staged) or already as f16 (`coop_wide_h`).
const OPERAND_F32: &str = "alias Operand = f32;";
const OPERAND_F16: &str = "alias Operand = f16;";
static COOP_WIDE_16X16: Shader = Shader {
    name: "matmul_coop_f16_wide_16x16",
    source: include_str!("matmul_coop_f16_wide.wgsl"),
    includes: &[COOP_16X16_LIB, OPERAND_F32],
};
static COOP_WIDE_8X8: Shader = Shader {
    name: "matmul_coop_f16_wide_8x8",
    source: include_str!("matmul_coop_f16_wide.wgsl"),
    includes: &[COOP_8X8_LIB, OPERAND_F32],
};
static COOP_WIDE_H_16X16: Shader = Shader {
    name: "matmul_coop_f16_wide_h_16x16",
    source: include_str!("matmul_coop_f16_wide.wgsl"),
    includes: &[COOP_16X16_LIB, OPERAND_F16],
};
static COOP_WIDE_H_8X8: Shader = Shader {
    name: "matmul_coop_f16_wide_h_8x8",
    source: include_str!("matmul_coop_f16_wide.wgsl"),
    includes: &[COOP_8X8_LIB, OPERAND_F16],
};
/// (uniform, C, A, B, bias): the bindings of every one-dispatch variant.
const SLOTS: &[(u32, Slot)] = &[
    (0, Slot::Uniform),
    (1, Slot::ReadWrite),
    (2, Slot::Read),
    (3, Slot::Read),
    (4, Slot::Read),
];
const ROWTILE_UNIFORM_KERNEL: Kernel = Kernel {
    shader: &ROWTILE_UNIFORM,
    entry: "matmul_rowtile_uniform",
    slots: SLOTS,
};
const ROWTILE_VEC4_KERNEL: Kernel = Kernel {
    shader: &ROWTILE_VEC4,
    entry: "matmul_rowtile_vec4",
    slots: SLOTS,
};
/// dev/matmul_coop_f16_wide.wgsl at 16×16×16 and at 8×8×8.
const COOP_WIDE_KERNELS: [Kernel; 2] = [
    Kernel {
        shader: &COOP_WIDE_16X16,
        entry: "matmul_coop_f16_wide",
        slots: SLOTS,
    },
    Kernel {
        shader: &COOP_WIDE_8X8,
        entry: "matmul_coop_f16_wide",
        slots: SLOTS,
    },
];
/// The same with A and B stored as f16.
const COOP_WIDE_H_KERNELS: [Kernel; 2] = [
    Kernel {
        shader: &COOP_WIDE_H_16X16,
        entry: "matmul_coop_f16_wide",
        slots: SLOTS,
    },
    Kernel {
        shader: &COOP_WIDE_H_8X8,
        entry: "matmul_coop_f16_wide",
        slots: SLOTS,
    },
];
/// Split-K pass 1: (uniform, partial (S, M, N), A, B).
const SPLITK_PARTIAL_KERNEL: Kernel = Kernel {
    shader: &SPLITK,
    entry: "matmul_splitk_partial",
    slots: &[
        (0, Slot::Uniform),
        (5, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
    ],
};
/// Split-K pass 2: (uniform, C, bias, partial (S, M, N)).
const SPLITK_REDUCE_KERNEL: Kernel = Kernel {
    shader: &SPLITK,
    entry: "matmul_splitk_reduce",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (4, Slot::Read),
        (6, Slot::Read),
    ],
};

/// How a dev variant runs.
enum Form {
    /// One dispatch with bindings (uniform [m, n, k, 0], C, A, B, bias) and this grid for a
    /// shape (None: the shape does not suit it).
    Single {
        kernel: &'static Kernel,
        grid: fn(&MatmulShape) -> Option<[u32; 3]>,
    },
    /// dev/matmul_splitk.wgsl with K cut into (at most) this many slices: two dispatches and
    /// an (S, M, N) scratch buffer.
    SplitK { slices: usize },
    /// Cooperative matrices with f16 operands (needs --coop-f16 and an adapter that runs the
    /// shipped coop-f16 matmul): one dispatch of the kernel for the adapter's cooperative
    /// size, 16 or 8 ([16×16 kernel, 8×8 kernel]), each workgroup covering `tiles` × `tiles`
    /// cooperative tiles of C; with `f16_operands` the kernel binds A and B stored as f16
    /// (copies the harness makes, rounded to nearest even, outside the timing).
    Coop {
        kernels: &'static [Kernel; 2],
        tiles: u32,
        f16_operands: bool,
    },
}

impl Form {
    /// The check bound its results get.
    fn precision(&self) -> Precision {
        match self {
            Form::Coop { .. } => Precision::F16Operands,
            _ => Precision::F32,
        }
    }
}

/// How far a variant's result may be from the twin's (see [`bound`]).
#[derive(Clone, Copy, PartialEq)]
enum Precision {
    /// f32 operands and accumulation.
    F32,
    /// Operands rounded to f16, f32 accumulation (cooperative matrices).
    F16Operands,
}

/// A dev variant: its name and form.
struct DevVariant {
    name: &'static str,
    form: Form,
}

const DEV_VARIANTS: &[DevVariant] = &[
    // Workgroups of 16 threads covering 64 columns × 8 rows.
    DevVariant {
        name: "rowtile_uniform",
        form: Form::Single {
            kernel: &ROWTILE_UNIFORM_KERNEL,
            grid: |s| Some([(s.n as u32).div_ceil(64), (s.m as u32).div_ceil(8), 1]),
        },
    },
    // Workgroups of 16 × 4 threads covering 64 columns × 32 rows; loads along stored rows
    // need aligned shapes (see the shader's header).
    DevVariant {
        name: "rowtile_vec4",
        form: Form::Single {
            kernel: &ROWTILE_VEC4_KERNEL,
            grid: |s| {
                let fits = match (s.trans_a, s.trans_b) {
                    (false, false) => s.k % 4 == 0 && s.n % 4 == 0,
                    (false, true) => s.k % 4 == 0,
                    (true, false) => s.m % 4 == 0 && s.n % 4 == 0,
                    (true, true) => false,
                };
                fits.then(|| [(s.n as u32).div_ceil(64), (s.m as u32).div_ceil(32), 1])
            },
        },
    },
    DevVariant {
        name: "splitk:2",
        form: Form::SplitK { slices: 2 },
    },
    DevVariant {
        name: "splitk:4",
        form: Form::SplitK { slices: 4 },
    },
    DevVariant {
        name: "splitk:8",
        form: Form::SplitK { slices: 8 },
    },
    // Eight subgroups a workgroup, (8·size)² of C: 128 × 128 on NVIDIA, 64 × 64 on lavapipe.
    DevVariant {
        name: "coop_wide",
        form: Form::Coop {
            kernels: &COOP_WIDE_KERNELS,
            tiles: 8,
            f16_operands: false,
        },
    },
    // The same, A and B stored as f16: half the bytes, no conversion (the FP16 GEMM figure).
    DevVariant {
        name: "coop_wide_h",
        form: Form::Coop {
            kernels: &COOP_WIDE_H_KERNELS,
            tiles: 8,
            f16_operands: true,
        },
    },
];

/// The buffers of one multiply: C (written), A, B, bias (bound even when the shape has none:
/// HAS_BIAS = false keeps the kernel from reading it).
struct Operands<'a> {
    c: &'a GpuBuffer,
    a: &'a GpuBuffer,
    b: &'a GpuBuffer,
    bias: &'a GpuBuffer,
}

/// A prepared dev variant: its dispatches in order and the scratch buffers they use.
struct DevRun {
    dispatches: Vec<Dispatch>,
    _scratch: Vec<GpuBuffer>,
}

fn flags(shape: &MatmulShape, has_bias: bool) -> [(&'static str, f64); 4] {
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    [
        ("TRANS_A", flag(shape.trans_a)),
        ("TRANS_B", flag(shape.trans_b)),
        ("HAS_BIAS", flag(has_bias)),
        ("ACCUMULATE", flag(shape.accumulate)),
    ]
}

/// One dispatch of `kernel` with bindings (uniform [m, n, k, 0], C, A, B, bias).
fn one_dispatch(
    ctx: &GpuContext,
    kernel: &Kernel,
    constants: &[(&str, f64)],
    ops: &Operands,
    shape: &MatmulShape,
    groups: [u32; 3],
) -> latent::Result<DevRun> {
    let params: [u32; 4] = [shape.m as u32, shape.n as u32, shape.k as u32, 0];
    let dispatch = prepare(
        ctx,
        kernel,
        constants,
        Some(bytes_of(&params)),
        &[ops.c, ops.a, ops.b, ops.bias],
        groups,
        // As f32 operands (the f16-operand form reads half of A and B).
        Traffic::floats(
            shape.m * shape.k + shape.k * shape.n + shape.n,
            shape.m * shape.n,
        ),
    )?;
    Ok(DevRun {
        dispatches: vec![dispatch],
        _scratch: Vec::new(),
    })
}

/// Prepares C = op(A)·op(B) [+ bias] [+ C] with a dev variant (None: the shape does not
/// suit it).
fn prepare_dev(
    ctx: &GpuContext,
    variant: &DevVariant,
    ops: &Operands,
    shape: &MatmulShape,
    has_bias: bool,
) -> latent::Result<Option<DevRun>> {
    let constants = flags(shape, has_bias);
    let (m, n, k) = (shape.m, shape.n, shape.k);
    match variant.form {
        Form::Single { kernel, grid } => {
            let Some(groups) = grid(shape) else {
                return Ok(None);
            };
            one_dispatch(ctx, kernel, &constants, ops, shape, groups).map(Some)
        }
        Form::Coop {
            kernels,
            tiles,
            f16_operands,
        } => {
            let size = coop_size(ctx)?;
            let kernel = if size == 16 { &kernels[0] } else { &kernels[1] };
            let block = tiles * size;
            let groups = [(n as u32).div_ceil(block), (m as u32).div_ceil(block), 1];
            if !f16_operands {
                return one_dispatch(ctx, kernel, &constants, ops, shape, groups).map(Some);
            }
            let (a, b) = (f16_copy(ctx, ops.a)?, f16_copy(ctx, ops.b)?);
            let halves = Operands {
                a: &a,
                b: &b,
                ..*ops
            };
            let mut run = one_dispatch(ctx, kernel, &constants, &halves, shape, groups)?;
            run._scratch = vec![a, b];
            Ok(Some(run))
        }
        Form::SplitK { slices } => {
            // No empty slice: S = ceil(K / chunk) ≤ the slices asked for.
            let chunk = k.div_ceil(slices.clamp(1, k));
            let slices = k.div_ceil(chunk);
            let partial = ctx.create_buffer("splitk partial", slices * m * n)?;
            let params: [u32; 8] = [
                m as u32,
                n as u32,
                k as u32,
                slices as u32,
                chunk as u32,
                0,
                0,
                0,
            ];
            let blocks = (m.div_ceil(4) * n.div_ceil(4)) as u32;
            let first = prepare(
                ctx,
                &SPLITK_PARTIAL_KERNEL,
                &constants,
                Some(bytes_of(&params)),
                &[&partial, ops.a, ops.b],
                [blocks.div_ceil(64), 1, slices as u32],
                Traffic::floats(m * k + k * n, slices * m * n),
            )?;
            let second = prepare(
                ctx,
                &SPLITK_REDUCE_KERNEL,
                &constants,
                Some(bytes_of(&params)),
                &[ops.c, ops.bias, &partial],
                grid_for_groups(ctx, (m * n).div_ceil(64) as u64)?,
                Traffic::floats(slices * m * n + n, m * n),
            )?;
            Ok(Some(DevRun {
                dispatches: vec![first, second],
                _scratch: vec![partial],
            }))
        }
    }
}

/// `values` (f32) read back and stored again as f16, two to a word (rounded to nearest even,
/// as `f16(x)` rounds on the GPUs the coop variants run on).
fn f16_copy(ctx: &GpuContext, values: &GpuBuffer) -> latent::Result<GpuBuffer> {
    let values: Vec<f32> = ctx.read_buffer(values)?;
    let words: Vec<u32> = values
        .chunks(2)
        .map(|pair| {
            let bits = |x: f32| u32::from(half::f16::from_f32(x).to_bits());
            bits(pair[0]) | pair.get(1).map_or(0, |&x| bits(x) << 16)
        })
        .collect();
    ctx.upload("f16 operand", &words)
}

/// Every shipped variant the autotune tries, each once.
fn shipped_variants() -> Vec<MatmulVariant> {
    let mut variants = candidates(ShapeClass::General);
    for v in candidates(ShapeClass::Skinny) {
        if !variants.contains(&v) {
            variants.push(v);
        }
    }
    variants
}

/// Command-line options.
struct Args {
    /// Time the shipped coop-f16 matmul too (requests the experimental feature).
    coop_f16: bool,
    /// Time the big-GPU shapes too ([`LARGE_SHAPES`]); minutes per variant on a CPU adapter.
    large: bool,
    /// `--only NAME`: this dev variant alone, timed beside the shipped variants for CPU
    /// adapters only (rowtile, and subgroup where the adapter runs it), and coop-f16 with
    /// `--coop-f16`.
    only: Option<String>,
}

fn parse_args() -> latent::Result<Args> {
    let mut args = Args {
        coop_f16: false,
        large: false,
        only: None,
    };
    let mut words = std::env::args().skip(1);
    while let Some(arg) = words.next() {
        match arg.as_str() {
            "--coop-f16" => args.coop_f16 = true,
            "--large" => args.large = true,
            "--only" => args.only = words.next(),
            other => {
                return Err(latent::Error::InvalidArgument(format!(
                    "unknown argument {other:?}: expected --coop-f16, --large or --only NAME"
                )))
            }
        }
    }
    Ok(args)
}

/// One multiply's inputs on the host, the twin's result, and the per-element magnitudes the
/// error bounds scale with.
struct Case {
    shape: MatmulShape,
    a: Vec<f32>,
    b: Vec<f32>,
    bias: Vec<f32>,
    has_bias: bool,
    /// C before the multiply (NaN unless accumulating).
    c0: Vec<f32>,
    expected: Vec<f32>,
    /// Σ_p |op(A)[i, p]|·|op(B)[p, j]| + |bias[j]| + |C0[i, j]|, in f64.
    magnitude: Vec<f64>,
    /// The most that rounding A and B to f16 can move each element, in f64 (see [`bound`]).
    f16_rounding: Vec<f64>,
}

impl Case {
    fn new(
        rng: &mut StdRng,
        shape: MatmulShape,
        has_bias: bool,
        with_f16: bool,
    ) -> latent::Result<Self> {
        let (m, n, k) = (shape.m, shape.n, shape.k);
        let mut values =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (a, b, bias) = (values(m * k), values(k * n), values(n));
        let c0 = if shape.accumulate {
            values(m * n)
        } else {
            vec![f32::NAN; m * n]
        };
        let mut expected = c0.clone();
        matmul_twin(&mut expected, &a, &b, has_bias.then_some(&bias[..]), &shape)?;
        let abs = |v: &[f32]| -> Vec<f64> { v.iter().map(|x| f64::from(x.abs())).collect() };
        let (abs_a, abs_b, abs_bias) = (abs(&a), abs(&b), abs(&bias));
        let mut magnitude = if shape.accumulate {
            abs(&c0)
        } else {
            vec![0.0; m * n]
        };
        matmul_twin(
            &mut magnitude,
            &abs_a,
            &abs_b,
            has_bias.then_some(&abs_bias[..]),
            &shape,
        )?;
        let mut f16_rounding = Vec::new();
        if with_f16 {
            // δ(x): f32 -> f16 moves x by at most one f16 ulp (2^-10 |x|, either rounding
            // mode Vulkan allows) when |x| >= 2^-14, and by at most |x| below (subnormals
            // may flush to zero). A product a·b moves by δa|b| + |a|δb + δaδb.
            let delta = |v: &[f64]| -> Vec<f64> {
                v.iter()
                    .map(|&x| {
                        if x >= 2f64.powi(-14) {
                            x * 2f64.powi(-10)
                        } else {
                            x
                        }
                    })
                    .collect()
            };
            let (delta_a, delta_b) = (delta(&abs_a), delta(&abs_b));
            let plain = MatmulShape {
                accumulate: true,
                ..shape
            };
            f16_rounding = vec![0.0; m * n];
            matmul_twin(&mut f16_rounding, &delta_a, &abs_b, None, &plain)?;
            matmul_twin(&mut f16_rounding, &abs_a, &delta_b, None, &plain)?;
            matmul_twin(&mut f16_rounding, &delta_a, &delta_b, None, &plain)?;
        }
        Ok(Case {
            shape,
            a,
            b,
            bias,
            has_bias,
            c0,
            expected,
            magnitude,
            f16_rounding,
        })
    }

    /// The allowed |gpu − twin| of element i (see [`bound`]).
    fn allowed(&self, precision: Precision, i: usize) -> f32 {
        bound(
            precision,
            self.shape.k,
            self.magnitude[i],
            self.f16_rounding.get(i),
        ) as f32
    }
}

/// The check bound of element i, with u = 2^-24 (f32 unit roundoff) and
/// mag = Σ_p |op(A)[i, p]·op(B)[p, j]| + |bias[j]| + |C0[i, j]|:
/// - f32 variants: 2·(K + 2)·u·mag. The GPU and the twin each sum K products, the bias and
///   C in some order, K + 2 terms, each rounding at most (K + 2)·u·mag away from the exact
///   value (Higham's γ bound for any summation order, products included); the two results
///   are at most twice that apart.
/// - f16 operands (cooperative matrices): the f16 rounding of A and B (the sum of each
///   product's worst move, computed per element from the data, `f16_rounding`), plus the f32
///   bound doubled again, 4·(K + 2)·u·mag: f16·f16 products are exact in f32, but tensor
///   cores are not required to round their f32 additions to nearest (NVIDIA's truncate),
///   which doubles the per-addition error.
fn bound(precision: Precision, k: usize, magnitude: f64, f16_rounding: Option<&f64>) -> f64 {
    let u = f64::from(UNIT_ROUNDOFF);
    let f32_part = 2.0 * (k + 2) as f64 * u * magnitude;
    match precision {
        Precision::F32 => f32_part,
        Precision::F16Operands => f16_rounding.copied().unwrap_or(f64::INFINITY) + 2.0 * f32_part,
    }
}

/// Uploads a case, runs a dev variant once and compares with the twin: None where the
/// shape does not suit the variant, else its largest error or why it fails.
fn check_dev(
    ctx: &GpuContext,
    variant: &DevVariant,
    case: &Case,
) -> latent::Result<Option<Result<f32, String>>> {
    let (ga, gb, gbias, gc) = (
        ctx.upload("a", &case.a)?,
        ctx.upload("b", &case.b)?,
        ctx.upload("bias", &case.bias)?,
        ctx.upload("c", &case.c0)?,
    );
    let ops = Operands {
        c: &gc,
        a: &ga,
        b: &gb,
        bias: &gbias,
    };
    let Some(run) = prepare_dev(ctx, variant, &ops, &case.shape, case.has_bias)? else {
        return Ok(None);
    };
    let outcome = run_and_compare(
        ctx,
        variant.name,
        &run.dispatches,
        &gc,
        case,
        variant.form.precision(),
    )?;
    Ok(Some(outcome))
}

/// Runs the dispatches once and compares C with the twin: the largest error, or why the
/// result fails.
fn run_and_compare(
    ctx: &GpuContext,
    name: &str,
    dispatches: &[Dispatch],
    c: &GpuBuffer,
    case: &Case,
    precision: Precision,
) -> latent::Result<Result<f32, String>> {
    let refs: Vec<&Dispatch> = dispatches.iter().collect();
    latent::kernels::run(ctx, name, &refs)?;
    let got: Vec<f32> = ctx.read_buffer(c)?;
    let cmp = compare(&got, &case.expected, &|i, _| case.allowed(precision, i));
    if cmp.failures > 0 {
        let (i, g, e, allowed) = cmp.first_failure.expect("failures counted");
        return Ok(Err(format!(
            "{} of {} elements beyond the bound; first at {i}: gpu {g}, twin {e}, allowed \
             {allowed:.3e}",
            cmp.failures,
            got.len()
        )));
    }
    Ok(Ok(cmp.max_abs_err))
}

/// Phase 1: every runnable dev variant at every check shape, transpose combination, with and
/// without bias, overwriting and accumulating. Returns the names of the variants that passed
/// everywhere they run.
fn check_phase(
    ctx: &GpuContext,
    variants: &[&DevVariant],
    rng: &mut StdRng,
) -> latent::Result<Vec<&'static str>> {
    let shapes = [
        (1, 1, 1),
        (3, 5, 1000),
        (127, 33, 785),
        (128, 20, 400),
        (20, 400, 128),
        (400, 20, 128),
        (128, 64, 2048),
        (64, 2048, 1024),
    ];
    let with_f16 = variants
        .iter()
        .any(|v| v.form.precision() == Precision::F16Operands);
    let mut failed: Vec<&'static str> = Vec::new();
    println!("check against the twin: shape (m x k x n), 4 transposes x {{no bias, bias}} x {{overwrite, accumulate}}");
    for (m, n, k) in shapes {
        // Per variant: combinations passed, run, largest error.
        let mut tally: Vec<(usize, usize, f32)> = vec![(0, 0, 0.0); variants.len()];
        for combo in 0..16u32 {
            let shape = MatmulShape {
                m,
                n,
                k,
                trans_a: combo & 1 != 0,
                trans_b: combo & 2 != 0,
                accumulate: combo & 8 != 0,
                ..Default::default()
            };
            let has_bias = combo & 4 != 0;
            let case = Case::new(rng, shape, has_bias, with_f16)?;
            for (variant, tally) in variants.iter().zip(&mut tally) {
                match check_dev(ctx, variant, &case)? {
                    Some(Ok(max_abs_err)) => {
                        tally.0 += 1;
                        tally.1 += 1;
                        tally.2 = tally.2.max(max_abs_err);
                    }
                    Some(Err(detail)) => {
                        tally.1 += 1;
                        println!(
                            "  {:<18} {:<16} bias {has_bias:<5} accumulate {:<5} FAILS: {detail}",
                            describe(&shape),
                            variant.name,
                            shape.accumulate
                        );
                        if !failed.contains(&variant.name) {
                            failed.push(variant.name);
                        }
                    }
                    None => {}
                }
            }
        }
        for (variant, (passed, ran, max_err)) in variants.iter().zip(tally) {
            println!(
                "  {:<14} {:<16} {passed:>2}/{ran:<2} combinations pass, max abs err {max_err:.3e}",
                format!("{m}x{k}x{n}"),
                variant.name
            );
        }
    }
    Ok(variants
        .iter()
        .map(|v| v.name)
        .filter(|name| !failed.contains(name))
        .collect())
}

fn main() -> latent::Result<()> {
    let args = parse_args()?;
    // Cooperative matrices (experimental in wgpu) only on request.
    let options = GpuOptions {
        cooperative_matrix: args.coop_f16,
        ..GpuOptions::from_env()?
    };
    let ctx = GpuContext::new(&options)?;
    println!("matmul variants on {}", ctx.describe());
    // The shipped coop-f16 matmul and the coop dev variants, on request, where the device
    // runs them.
    let coop_f16 = args.coop_f16
        && match MatmulVariant::CoopF16.check(&ctx) {
            Ok(()) => true,
            Err(why) => {
                println!("coop-f16: skipped: {why}");
                false
            }
        };
    let runnable: Vec<&DevVariant> = DEV_VARIANTS
        .iter()
        .filter(|v| args.only.as_ref().is_none_or(|only| only == v.name))
        .filter(|v| coop_f16 || v.form.precision() == Precision::F32)
        .collect();
    let mut rng = StdRng::seed_from_u64(7);
    if args.only.as_deref() == Some(grouped::NAME) {
        grouped::run(&ctx, &mut rng)?;
        return Ok(());
    }
    if args.only.as_deref() == Some(vae_head_linear::NAME) {
        vae_head_linear::run(&ctx, &mut rng)?;
        return Ok(());
    }
    let passed = check_phase(&ctx, &runnable, &mut rng)?;
    let timed: Vec<&DevVariant> = runnable
        .into_iter()
        .filter(|v| passed.contains(&v.name))
        .collect();
    println!(
        "{:<18} {:<18} {:>12} {:>10} {:>10}",
        "shape", "variant", "max abs err", "us", "GFLOP/s"
    );
    let mut shapes = vec![
        (128, 400, 784, false, true),
        (784, 400, 128, true, false),
        (128, 784, 400, false, false),
        (128, 20, 400, false, true),
        (20, 400, 128, true, false),
        (400, 20, 128, true, false),
        (128, 64, 2048, false, true),
        (64, 2048, 1024, false, false),
        (127, 33, 785, false, false),
        (127, 33, 784, false, true),
        (512, 512, 512, false, false),
    ];
    if args.large {
        shapes.extend_from_slice(LARGE_SHAPES);
    }
    for (m, n, k, trans_a, trans_b) in shapes {
        let shape = MatmulShape {
            m,
            n,
            k,
            trans_a,
            trans_b,
            ..Default::default()
        };
        let case = Case::new(&mut rng, shape, true, coop_f16)?;
        let (ga, gb, gbias) = (
            ctx.upload("a", &case.a)?,
            ctx.upload("b", &case.b)?,
            ctx.upload("bias", &case.bias)?,
        );
        let coop = coop_f16.then_some(MatmulVariant::CoopF16);
        for variant in shipped_variants().into_iter().chain(coop) {
            // With --only: the CPU adapters' kernels, and coop-f16 when asked for.
            let for_cpu_adapters = matches!(
                variant,
                MatmulVariant::RowTile | MatmulVariant::Subgroup | MatmulVariant::CoopF16
            );
            if (args.only.is_some() && !for_cpu_adapters) || variant.check(&ctx).is_err() {
                continue;
            }
            let precision = if variant == MatmulVariant::CoopF16 {
                Precision::F16Operands
            } else {
                Precision::F32
            };
            let gc = ctx.upload("c", &case.c0)?;
            let dispatch = matmul_with_variant(&ctx, &gc, &ga, &gb, Some(&gbias), &shape, variant)?;
            report(
                &ctx,
                &case,
                &variant.to_string(),
                &gc,
                &[dispatch],
                precision,
            )?;
        }
        for variant in &timed {
            let gc = ctx.upload("c", &case.c0)?;
            let name = format!("dev {}", variant.name);
            let ops = Operands {
                c: &gc,
                a: &ga,
                b: &gb,
                bias: &gbias,
            };
            match prepare_dev(&ctx, variant, &ops, &shape, true)? {
                Some(run) => report(
                    &ctx,
                    &case,
                    &name,
                    &gc,
                    &run.dispatches,
                    variant.form.precision(),
                )?,
                None => println!("{:<18} {name:<18} (shape not supported)", describe(&shape)),
            }
        }
    }
    if args.only.is_none() {
        grouped::run(&ctx, &mut rng)?;
        vae_head_linear::run(&ctx, &mut rng)?;
    }
    Ok(())
}

/// The timing shapes `--large` adds, (m, n, k, trans_a, trans_b): the big-GPU sizes
/// tiled:128x128x16x8 aims at (4096³ is the H100 FP32 reference), NN and NT. Not for
/// CPU adapters: the twin alone takes minutes at 4096³.
const LARGE_SHAPES: &[(usize, usize, usize, bool, bool)] = &[
    (1024, 2048, 2048, false, false),
    (1024, 2048, 2048, false, true),
    (4096, 4096, 4096, false, false),
    (4096, 4096, 4096, false, true),
];

/// Runs once, checks against the twin (see [`bound`]), then times all dispatches together;
/// a variant that fails is reported and not a candidate.
fn report(
    ctx: &GpuContext,
    case: &Case,
    name: &str,
    c: &GpuBuffer,
    dispatches: &[Dispatch],
    precision: Precision,
) -> latent::Result<()> {
    let shape = &case.shape;
    match run_and_compare(ctx, name, dispatches, c, case, precision)? {
        Ok(max_abs_err) => {
            let (us, _) = time_gpu(ctx, 3, &|pass| {
                for d in dispatches {
                    d.record(pass);
                }
            })?;
            println!(
                "{:<18} {name:<18} {max_abs_err:>12.3e} {us:>10.0} {:>10.2}",
                describe(shape),
                shape.flops() / us / 1e3
            );
        }
        Err(detail) => println!(
            "{:<18} {name:<18} FAILS the check, not a candidate: {detail}",
            describe(shape)
        ),
    }
    Ok(())
}
