//! Every shader parsed and validated by naga and translated to SPIR-V (Vulkan), MSL (Metal)
//! and HLSL (DX12), with its override constants at their defaults and, for the matmul
//! variants, at every flag combination (and, for the tiled files, other tiles, 8 × 8 a
//! thread and K split between groups of threads) and with each
//! epilogue option (activations, their backward, row sums, addend, the store's loss, the
//! reparameterization's backward); so a shader that would break on Metal or DX12 fails here
//! on a machine that has neither. No GPU needed.
//! Only the two subgroup matmul files are given naga's subgroup capability; every other
//! shader must validate without it. The cooperative-matrix matmul (kernels::COOP_SHADERS, at
//! both of its sizes) is validated with the capabilities it needs (SHADER_FLOAT16 |
//! COOPERATIVE_MATRIX) and written to SPIR-V only, at every flag and epilogue option: it
//! targets Vulkan's VK_KHR_cooperative_matrix, and naga's MSL and HLSL writers do not take
//! it; without COOPERATIVE_MATRIX naga must refuse it.

use naga::back::PipelineConstants;
use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

use latent::kernels::{COOP_SHADERS, SHADERS};

/// The shaders that use subgroup operations (wgpu's SUBGROUP feature).
const NEEDS_SUBGROUPS: &[&str] = &["matmul_subgroup", "matmul_subgroup_vec4"];

fn validator_for(name: &str) -> Validator {
    if is_coop(name) {
        let needed = Capabilities::SHADER_FLOAT16 | Capabilities::COOPERATIVE_MATRIX;
        Validator::new(ValidationFlags::all(), needed)
    } else if NEEDS_SUBGROUPS.contains(&name) {
        let mut validator = Validator::new(ValidationFlags::all(), Capabilities::SUBGROUP);
        validator
            .subgroup_stages(ShaderStages::COMPUTE)
            .subgroup_operations(SubgroupOperationSet::BASIC | SubgroupOperationSet::BALLOT);
        validator
    } else {
        Validator::new(ValidationFlags::all(), Capabilities::empty())
    }
}

/// Whether `name` is a cooperative-matrix shader (SPIR-V only).
fn is_coop(name: &str) -> bool {
    COOP_SHADERS.iter().any(|s| s.name == name)
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
    assert_eq!(spirv[0], 0x0723_0203, "{name}: SPIR-V magic number");
    if is_coop(name) {
        // Vulkan only: the SPIR-V must declare what the shader needs.
        let capabilities = declared_capabilities(&spirv);
        for (capability, what) in [
            (CAPABILITY_COOPERATIVE_MATRIX_KHR, "CooperativeMatrixKHR"),
            (CAPABILITY_FLOAT16, "Float16"),
        ] {
            assert!(
                capabilities.contains(&capability),
                "{name} {constants:?}: no {what} in {capabilities:?}"
            );
        }
        return;
    }
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

/// SPIR-V OpCapability and the capability numbers `translate` looks for in coop shaders.
const OP_CAPABILITY: u32 = 17;
const CAPABILITY_FLOAT16: u32 = 9;
const CAPABILITY_COOPERATIVE_MATRIX_KHR: u32 = 6022;

/// The capabilities a SPIR-V module declares (OpCapability operands).
fn declared_capabilities(words: &[u32]) -> Vec<u32> {
    let mut found = Vec::new();
    let mut at = 5; // past the header
    while at < words.len() {
        let count = (words[at] >> 16) as usize;
        let opcode = words[at] & 0xffff;
        assert!(count > 0, "malformed SPIR-V instruction at word {at}");
        if opcode == OP_CAPABILITY {
            found.push(words[at + 1]);
        }
        at += count;
    }
    found
}

#[test]
fn coop_matmul_is_refused_without_the_cooperative_matrix_capability() {
    for shader in COOP_SHADERS {
        let source = shader.full_source();
        let module = naga::front::wgsl::parse_str(&source).expect("parses");
        let error = Validator::new(ValidationFlags::all(), Capabilities::SHADER_FLOAT16)
            .validate(&module)
            .expect_err("naga accepted cooperative matrices without COOPERATIVE_MATRIX");
        let message = format!("{error:?}");
        assert!(
            message.contains("COOPERATIVE_MATRIX"),
            "{}: refused for another reason: {message}",
            shader.name
        );
    }
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

/// Every shader declares its parameters once, as `var<uniform> params: Params;`, the text the
/// host turns into a read-only storage buffer on CPU adapters (GpuContext::params_in_storage);
/// that form validates and translates too.
#[test]
fn every_shader_declares_its_params_as_the_uniform_the_host_can_rebind() {
    let uniform = "var<uniform> params: Params;";
    for shader in SHADERS.iter().chain(COOP_SHADERS) {
        let source = shader.full_source();
        assert_eq!(source.matches(uniform).count(), 1, "{}", shader.name);
        assert_eq!(source.matches("var<uniform>").count(), 1, "{}", shader.name);
        if !is_coop(shader.name) {
            let storage = source.replace(uniform, "var<storage, read> params: Params;");
            translate(shader.name, &storage, &PipelineConstants::default());
        }
    }
}

#[test]
fn matmul_variants_translate_with_every_flag_and_other_tiles() {
    for name in [
        "matmul",
        "matmul_vec4",
        "matmul_rowtile",
        "matmul_subgroup",
        "matmul_subgroup_vec4",
        "matmul_coop_f16_16x16",
        "matmul_coop_f16_8x8",
    ] {
        let shader = SHADERS
            .iter()
            .chain(COOP_SHADERS)
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} shader"));
        translate_with_every_flag(name, &shader.full_source());
    }
}

/// The tiled files' other forms, by the flag combination: other tiles (odd flags); for
/// matmul_vec4 also 8 × 8 a thread on 128 × 128 tiles (flags 2 mod 4) and K split between 4
/// groups of threads (flags 3 mod 4, which then replaces the other tiles), each form also with
/// the next slab prefetched (the flags with HAS_BIAS, bit 2).
fn tiled_forms(name: &str, flags: u32) -> Vec<(&'static str, f64)> {
    let other_tiles = vec![("TILE_M", 32.0), ("TILE_N", 16.0), ("TILE_K", 8.0)];
    let mut form = match (name, flags % 4) {
        ("matmul", 1 | 3) => other_tiles,
        ("matmul_vec4", 1) => other_tiles,
        ("matmul_vec4", 2) => vec![("TILE_M", 128.0), ("TILE_N", 128.0), ("THREAD_QUADS", 2.0)],
        ("matmul_vec4", 3) => vec![("TILE_M", 32.0), ("TILE_N", 32.0), ("K_SPLIT", 4.0)],
        _ => Vec::new(),
    };
    if name == "matmul_vec4" {
        form.push(("PREFETCH", f64::from((flags >> 2) & 1)));
    }
    form
}

fn translate_with_every_flag(name: &str, source: &str) {
    for flags in 0..16u32 {
        let mut constants = PipelineConstants::default();
        for (bit, name) in ["TRANS_A", "TRANS_B", "HAS_BIAS", "ACCUMULATE"]
            .iter()
            .enumerate()
        {
            constants.insert(name.to_string(), f64::from((flags >> bit) & 1));
        }
        for (constant, value) in tiled_forms(name, flags) {
            constants.insert(constant.into(), value);
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

/// shaders/matmul_grouped_tn.wgsl at 4 × 4 and 8 × 8 a thread and other tiles.
#[test]
fn grouped_weight_gradients_translate_at_each_thread_block_and_other_tiles() {
    let shader = SHADERS
        .iter()
        .find(|s| s.name == "matmul_grouped_tn")
        .expect("registered");
    // (TILE_M, TILE_N, TILE_K, THREAD_QUADS), each with and without PREFETCH
    for (m, n, k, quads) in [
        (64.0, 64.0, 16.0, 1.0),
        (32.0, 32.0, 16.0, 1.0),
        (128.0, 128.0, 16.0, 2.0),
        (64.0, 32.0, 8.0, 2.0),
    ] {
        for prefetch in [0.0, 1.0] {
            let mut constants = PipelineConstants::default();
            for (key, value) in [
                ("TILE_M", m),
                ("TILE_N", n),
                ("TILE_K", k),
                ("THREAD_QUADS", quads),
                ("PREFETCH", prefetch),
            ] {
                constants.insert(key.to_string(), value);
            }
            translate(shader.name, &shader.full_source(), &constants);
        }
    }
}

/// Every shaders/*.wgsl file is the source of a registered shader (SHADERS, or COOP_SHADERS,
/// whose two sizes share one file), and every registered shader's source is a file there.
#[test]
fn every_shader_file_is_registered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let on_disk: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("shaders/ exists")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".wgsl")?
                .to_string();
            Some((name, std::fs::read_to_string(&path).ok()?))
        })
        .collect();
    let registered: Vec<_> = SHADERS.iter().chain(COOP_SHADERS).collect();
    for (name, text) in &on_disk {
        assert!(
            registered.iter().any(|s| s.source == text),
            "shaders/{name}.wgsl is not the source of any shader in kernels::SHADERS or COOP_SHADERS"
        );
    }
    for shader in registered {
        assert!(
            on_disk.iter().any(|(_, text)| shader.source == text),
            "{}: its source is no file in shaders/",
            shader.name
        );
    }
}

/// dev/ variants on cooperative matrices, which need a size file included first and naga's
/// capabilities: tests/dev_shaders.rs validates them.
const DEV_COOP: &[&str] = &["matmul_coop_f16_wide.wgsl"];

/// dev/ shaders that call shaders/lib functions, with the libraries the host prepends.
const DEV_INCLUDES: &[(&str, &[&str])] = &[(
    "vae_head_linear.wgsl",
    &[latent::kernels::GRID_LIB, latent::kernels::PHILOX_LIB],
)];

/// Every variant still in dev/ (there may be none when all have been promoted or dropped).
#[test]
fn kernel_variants_in_dev_validate_and_translate_too() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dev");
    for entry in std::fs::read_dir(dir).expect("dev/ exists") {
        let path = entry.unwrap().path();
        let coop = path
            .file_name()
            .is_some_and(|f| DEV_COOP.iter().any(|n| f == *n));
        if path.extension().is_some_and(|e| e == "wgsl") && !coop {
            let includes = DEV_INCLUDES
                .iter()
                .find(|(n, _)| path.file_name().is_some_and(|f| f == *n))
                .map_or(&[][..], |(_, libs)| *libs);
            let own = std::fs::read_to_string(&path).unwrap();
            let source = [includes, &[own.as_str()]].concat().join("\n");
            translate(
                &path.display().to_string(),
                &source,
                &PipelineConstants::default(),
            );
        }
    }
}
