//! Every shader parsed and validated by naga and translated to SPIR-V (Vulkan), MSL (Metal)
//! and HLSL (DX12), with its override constants at their defaults and, for the three matmul
//! variants, at every flag combination (and other tiles for the tiled one) and with each
//! epilogue option (activations, their backward, row sums, addend, the store's loss, the
//! reparameterization's backward); so a shader that would break on Metal or DX12 fails here
//! on a machine that has neither. No GPU needed.
//! Only the two subgroup matmul files are given naga's subgroup capability; every other
//! shader must validate without it.

use naga::back::PipelineConstants;
use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

use latent::kernels::SHADERS;

/// The shaders that use subgroup operations (wgpu's SUBGROUP feature).
const NEEDS_SUBGROUPS: &[&str] = &["matmul_subgroup", "matmul_subgroup_vec4"];

fn validator_for(name: &str) -> Validator {
    if NEEDS_SUBGROUPS.contains(&name) {
        let mut validator = Validator::new(ValidationFlags::all(), Capabilities::SUBGROUP);
        validator
            .subgroup_stages(ShaderStages::COMPUTE)
            .subgroup_operations(SubgroupOperationSet::BASIC | SubgroupOperationSet::BALLOT);
        validator
    } else {
        Validator::new(ValidationFlags::all(), Capabilities::empty())
    }
}

fn translate(name: &str, source: &str, constants: &PipelineConstants) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: WGSL parse error:\n{}", e.emit_to_string(source)));
    let info = validator_for(name)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: naga validation: {e:?}"));
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, constants)
            .unwrap_or_else(|e| panic!("{name} {constants:?}: overrides: {e:?}"));
    let spirv = naga::back::spv::write_vec(&module, &info, &Default::default(), None)
        .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e:?}"));
    assert!(!spirv.is_empty(), "{name}: empty SPIR-V");
    let msl_options = naga::back::msl::Options {
        lang_version: (2, 1),
        ..Default::default()
    };
    let (msl, _) = naga::back::msl::write_string(&module, &info, &msl_options, &Default::default())
        .unwrap_or_else(|e| panic!("{name}: MSL: {e:?}"));
    assert!(
        msl.contains("kernel"),
        "{name}: MSL without a kernel function"
    );
    let hlsl_options = naga::back::hlsl::Options {
        shader_model: naga::back::hlsl::ShaderModel::V6_0,
        ..Default::default()
    };
    let mut hlsl = String::new();
    naga::back::hlsl::Writer::new(&mut hlsl, &hlsl_options, &Default::default())
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{name}: HLSL: {e:?}"));
    assert!(
        hlsl.contains("numthreads"),
        "{name}: HLSL without a compute entry"
    );
}

#[test]
fn every_shader_validates_and_translates_to_spirv_msl_hlsl() {
    for shader in SHADERS {
        translate(
            shader.name,
            &shader.full_source(),
            &PipelineConstants::default(),
        );
    }
}

#[test]
fn matmul_variants_translate_with_every_flag_and_other_tiles() {
    for name in [
        "matmul",
        "matmul_rowtile",
        "matmul_subgroup",
        "matmul_subgroup_vec4",
    ] {
        let shader = SHADERS
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} shader"));
        translate_with_every_flag(name, &shader.full_source(), name == "matmul");
    }
}

fn translate_with_every_flag(name: &str, source: &str, tiled: bool) {
    for flags in 0..16u32 {
        let mut constants = PipelineConstants::default();
        for (bit, name) in ["TRANS_A", "TRANS_B", "HAS_BIAS", "ACCUMULATE"]
            .iter()
            .enumerate()
        {
            constants.insert(name.to_string(), f64::from((flags >> bit) & 1));
        }
        if tiled && flags % 2 == 1 {
            constants.insert("TILE_M".into(), 32.0);
            constants.insert("TILE_N".into(), 16.0);
            constants.insert("TILE_K".into(), 8.0);
        }
        translate(name, source, &constants);
    }
    // The epilogue's options, each over the four transposes with bias (the loss as the
    // output layer runs it: alone, with bias); the reparameterization's backward without
    // bias (the option overrides HAS_BIAS), written and accumulating.
    let options: [&[(&str, f64)]; 9] = [
        &[("ACTIVATION", 2.0)],
        &[("ACTIVATION_GRAD", 3.0), ("ADD_ADDEND", 1.0)],
        &[("ACTIVATION_GRAD", 1.0)],
        &[("ROW_SUMS", 1.0)],
        &[("LOSS", 1.0), ("LOSS_SCALE", 0.125)],
        &[("LOSS", 2.0), ("LOSS_SCALE", 0.5)],
        &[("LOSS", 2.0)],
        &[("REPARAM_GRAD", 1.0), ("HAS_BIAS", 0.0)],
        &[
            ("REPARAM_GRAD", 1.0),
            ("HAS_BIAS", 0.0),
            ("ACCUMULATE", 1.0),
        ],
    ];
    for option in options {
        for transposes in 0..4u32 {
            let mut constants = PipelineConstants::default();
            constants.insert("TRANS_A".into(), f64::from(transposes & 1));
            constants.insert("TRANS_B".into(), f64::from(transposes >> 1));
            constants.insert("HAS_BIAS".into(), 1.0);
            for &(constant, value) in option {
                constants.insert(constant.into(), value);
            }
            translate(name, source, &constants);
        }
    }
}

#[test]
fn every_shader_file_is_registered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("shaders/ exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".wgsl").map(str::to_string))
        .collect();
    on_disk.sort();
    let mut registered: Vec<String> = SHADERS.iter().map(|s| s.name.to_string()).collect();
    registered.sort();
    assert_eq!(
        on_disk, registered,
        "shaders/*.wgsl and kernels::SHADERS differ"
    );
}

/// dev/ shaders that need naga capabilities (f16, cooperative matrices) and target one
/// backend: tests/dev_shaders.rs validates them with those capabilities.
const DEV_NEEDS_CAPABILITIES: &[&str] = &["matmul_coop_f16.wgsl"];

/// Every variant still in dev/ (there may be none when all have been promoted or dropped).
#[test]
fn kernel_variants_in_dev_validate_and_translate_too() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dev");
    for entry in std::fs::read_dir(dir).expect("dev/ exists") {
        let path = entry.unwrap().path();
        let needs_capabilities = path
            .file_name()
            .is_some_and(|f| DEV_NEEDS_CAPABILITIES.iter().any(|n| f == *n));
        if path.extension().is_some_and(|e| e == "wgsl") && !needs_capabilities {
            let source = std::fs::read_to_string(&path).unwrap();
            translate(
                &path.display().to_string(),
                &source,
                &PipelineConstants::default(),
            );
        }
    }
}
