//! The matmul variants under development in dev/, compiled by naga at every flag combination
//! (TRANS_A, TRANS_B, HAS_BIAS, ACCUMULATE), so CI proves they at least compile where no
//! adapter runs them. No GPU needed.
//! - dev/matmul_splitk.wgsl: both entry points, to SPIR-V, MSL and HLSL.
//! - dev/vae_head_linear.wgsl: after the grid and Philox libraries, at each lane count the
//!   harness runs, to SPIR-V, MSL and HLSL.
//! - dev/matmul_coop_f16_wide.wgsl: after each cooperative size file of shaders/lib, with f32
//!   and with f16 operands, validated with the capabilities it needs (SHADER_FLOAT16 |
//!   COOPERATIVE_MATRIX) and written to SPIR-V only (as the shipped coop-f16 matmul,
//!   tests/shaders.rs), with its workgroup size and workgroup memory.

use naga::back::PipelineConstants;
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};

const SPLITK: &str = include_str!("../dev/matmul_splitk.wgsl");
const VAE_HEAD_LINEAR: &str = include_str!("../dev/vae_head_linear.wgsl");
const COOP_WIDE: &str = include_str!("../dev/matmul_coop_f16_wide.wgsl");

fn parse(name: &str, source: &str) -> naga::Module {
    naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: WGSL parse error:\n{}", e.emit_to_string(source)))
}

fn validate(name: &str, module: &naga::Module, capabilities: Capabilities) -> ModuleInfo {
    Validator::new(ValidationFlags::all(), capabilities)
        .validate(module)
        .unwrap_or_else(|e| panic!("{name}: naga validation: {e:?}"))
}

/// The 16 combinations of the four flags as override constants.
fn every_flag() -> Vec<PipelineConstants> {
    (0..16u32)
        .map(|flags| {
            let mut constants = PipelineConstants::default();
            for (bit, name) in ["TRANS_A", "TRANS_B", "HAS_BIAS", "ACCUMULATE"]
                .iter()
                .enumerate()
            {
                constants.insert(name.to_string(), f64::from((flags >> bit) & 1));
            }
            constants
        })
        .collect()
}

fn spirv(
    name: &str,
    module: &naga::Module,
    info: &ModuleInfo,
    constants: &PipelineConstants,
) -> Vec<u32> {
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(module, info, None, constants)
            .unwrap_or_else(|e| panic!("{name} {constants:?}: overrides: {e:?}"));
    naga::back::spv::write_vec(&module, &info, &Default::default(), None)
        .unwrap_or_else(|e| panic!("{name} {constants:?}: SPIR-V: {e:?}"))
}

/// The bytes of workgroup memory a module declares.
fn workgroup_bytes(module: &naga::Module) -> u32 {
    module
        .global_variables
        .iter()
        .filter(|(_, v)| v.space == naga::AddressSpace::WorkGroup)
        .map(|(_, v)| module.types[v.ty].inner.size(module.to_ctx()))
        .sum()
}

fn entry_points(module: &naga::Module) -> Vec<&str> {
    module
        .entry_points
        .iter()
        .map(|e| e.name.as_str())
        .collect()
}

/// [`translate_with`] at each flag combination: (constants, MSL, HLSL) for each.
fn translate_every_flag(
    name: &str,
    module: &naga::Module,
    info: &ModuleInfo,
) -> Vec<(PipelineConstants, String, String)> {
    every_flag()
        .into_iter()
        .map(|constants| {
            let (_, msl, hlsl) = translate_with(name, module, info, &constants);
            (constants, msl, hlsl)
        })
        .collect()
}

/// The module with `constants` applied, written to SPIR-V (its magic number checked), MSL
/// and HLSL: (the module after the constants, MSL, HLSL).
fn translate_with(
    name: &str,
    module: &naga::Module,
    info: &ModuleInfo,
    constants: &PipelineConstants,
) -> (naga::Module, String, String) {
    let words = spirv(name, module, info, constants);
    assert_eq!(words[0], 0x0723_0203, "{name}: SPIR-V magic number");
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(module, info, None, constants)
            .unwrap_or_else(|e| panic!("{name} {constants:?}: overrides: {e:?}"));
    let msl_options = naga::back::msl::Options {
        lang_version: (2, 1),
        ..Default::default()
    };
    let (msl, _) = naga::back::msl::write_string(&module, &info, &msl_options, &Default::default())
        .unwrap_or_else(|e| panic!("{name} {constants:?}: MSL: {e:?}"));
    let hlsl_options = naga::back::hlsl::Options {
        shader_model: naga::back::hlsl::ShaderModel::V6_0,
        ..Default::default()
    };
    let mut hlsl = String::new();
    naga::back::hlsl::Writer::new(&mut hlsl, &hlsl_options, &Default::default())
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{name} {constants:?}: HLSL: {e:?}"));
    (module.into_owned(), msl, hlsl)
}

#[test]
fn splitk_translates_to_spirv_msl_hlsl_with_every_flag() {
    let name = "dev/matmul_splitk.wgsl";
    let module = parse(name, SPLITK);
    assert_eq!(
        entry_points(&module),
        ["matmul_splitk_partial", "matmul_splitk_reduce"]
    );
    let info = validate(name, &module, Capabilities::empty());
    for (_, msl, hlsl) in translate_every_flag(name, &module, &info) {
        assert!(
            msl.contains("kernel void matmul_splitk_partial"),
            "{name}: MSL"
        );
        assert!(
            msl.contains("kernel void matmul_splitk_reduce"),
            "{name}: MSL"
        );
        assert_eq!(hlsl.matches("numthreads").count(), 2, "{name}: HLSL");
    }
}

#[test]
fn coop_wide_validates_with_its_capabilities_and_writes_spirv_with_every_flag() {
    use latent::kernels::matmul::{COOP_16X16_LIB, COOP_8X8_LIB};
    // (size file, tile, subgroup lanes): 8 subgroups a workgroup; workgroup memory is the f16
    // slabs (8·tile × 2·tile each) and one f32 tile a subgroup.
    // A and B stored as f32 (coop_wide) or f16 (coop_wide_h): the alias dev/matmul.rs
    // declares after the size file.
    let sizes = [(COOP_16X16_LIB, 16u32, 32u32), (COOP_8X8_LIB, 8, 8)];
    let operands = ["f32", "f16"];
    for ((lib, tile, lanes), operand) in sizes.into_iter().flat_map(|s| operands.map(|o| (s, o))) {
        let name = format!("dev/matmul_coop_f16_wide.wgsl at {tile}x{tile}, {operand} operands");
        let source = format!("{lib}\nalias Operand = {operand};\n{COOP_WIDE}");
        let module = parse(&name, &source);
        assert_eq!(entry_points(&module), ["matmul_coop_f16_wide"]);
        assert_eq!(
            module.entry_points[0].workgroup_size,
            [8 * lanes, 1, 1],
            "{name}"
        );
        let workgroup_bytes = workgroup_bytes(&module);
        assert_eq!(
            workgroup_bytes,
            2 * (8 * tile * 2 * tile * 2) + 8 * tile * tile * 4,
            "{name}: workgroup memory"
        );
        let needed = Capabilities::SHADER_FLOAT16 | Capabilities::COOPERATIVE_MATRIX;
        let info = validate(&name, &module, needed);
        for constants in every_flag() {
            let words = spirv(&name, &module, &info, &constants);
            assert_eq!(words[0], 0x0723_0203, "{name}: SPIR-V magic number");
        }
        assert!(
            Validator::new(ValidationFlags::all(), Capabilities::SHADER_FLOAT16)
                .validate(&module)
                .is_err(),
            "{name}: naga accepted cooperative matrices without COOPERATIVE_MATRIX"
        );
    }
}

#[test]
fn vae_head_linear_translates_at_each_lane_count() {
    let name = "dev/vae_head_linear.wgsl";
    let source = [
        latent::kernels::GRID_LIB,
        latent::kernels::PHILOX_LIB,
        VAE_HEAD_LINEAR,
    ]
    .join("\n");
    let module = parse(name, &source);
    assert_eq!(entry_points(&module), ["vae_head_linear_forward"]);
    let info = validate(name, &module, Capabilities::empty());
    for (threads, lanes) in [(32, 1), (32, 8), (256, 8), (256, 32)] {
        let constants = PipelineConstants::from([
            ("WORKGROUP_SIZE".to_string(), f64::from(threads)),
            ("LANES".to_string(), f64::from(lanes)),
        ]);
        let (module, msl, hlsl) = translate_with(name, &module, &info, &constants);
        assert!(
            msl.contains("kernel void vae_head_linear_forward"),
            "{name}: MSL"
        );
        assert!(hlsl.contains("numthreads"), "{name}: HLSL");
        // The stats row (256 floats) and the workgroup sum's partials.
        assert_eq!(workgroup_bytes(&module), 4 * (256 + threads), "{name}");
    }
}
